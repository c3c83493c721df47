/*
 * A growable byte queue (what a socket did not take yet), shared by the fdio addon
 * (sidecar/native/fdio.c) and the relay experiments (e2e/bench/experiments/uring-relay.c).
 */
#ifndef DBWARD_BYTES_H
#define DBWARD_BYTES_H

#include <stdlib.h>
#include <string.h>

typedef struct {
  char *data;
  size_t start, len, cap;
} bytes_t;

/* Appends p[0..n); 0, or -1 when out of memory (the queue is unchanged). */
static inline int bytes_append(bytes_t *b, const char *p, size_t n) {
  if (b->start > 0 && b->start + b->len + n > b->cap) {
    memmove(b->data, b->data + b->start, b->len);
    b->start = 0;
  }
  if (b->start + b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) return -1;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->start + b->len, p, n);
  b->len += n;
  return 0;
}

static inline void bytes_free(bytes_t *b) {
  free(b->data);
  b->data = NULL;
  b->start = b->len = b->cap = 0;
}

#endif
