/*
 * A minimal io_uring (raw system calls and <linux/io_uring.h>, no liburing), used by the fdio addon
 * (sidecar/native/fdio.c) as a system-call batcher: a loop iteration's non-blocking receives, then
 * its sends, each go to the kernel in one io_uring_enter. See docs/adr/0023-io-uring-batching.md.
 */
#ifndef DBWARD_RING_H
#define DBWARD_RING_H

#include <errno.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
  int fd;
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array, sq_entries;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
  unsigned local_tail; /* SQEs handed out so far */
  unsigned pending;    /* ... of which not yet submitted */
  void *rings;
  size_t rings_size, sqes_size;
} ring_t;

/* Sets the ring up; 0, or -errno (ENOSYS: no io_uring; EPERM: denied, e.g. by a seccomp profile). */
static inline int ring_setup(ring_t *r, unsigned entries, unsigned flags) {
  memset(r, 0, sizeof *r);
  r->fd = -1;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = flags;
  int fd = (int)syscall(SYS_io_uring_setup, entries, &p);
  if (fd < 0) return -errno;
  if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
    close(fd);
    return -ENOSYS; /* kernels before 5.4 */
  }
  size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_size = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  r->rings_size = sq_size > cq_size ? sq_size : cq_size;
  r->rings = mmap(NULL, r->rings_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (r->rings == MAP_FAILED) {
    int e = errno;
    close(fd);
    return -e;
  }
  r->sqes_size = p.sq_entries * sizeof(struct io_uring_sqe);
  r->sqes = mmap(NULL, r->sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (r->sqes == MAP_FAILED) {
    int e = errno;
    munmap(r->rings, r->rings_size);
    close(fd);
    return -e;
  }
  char *base = r->rings;
  r->sq_head = (unsigned *)(base + p.sq_off.head);
  r->sq_tail = (unsigned *)(base + p.sq_off.tail);
  r->sq_mask = (unsigned *)(base + p.sq_off.ring_mask);
  r->sq_array = (unsigned *)(base + p.sq_off.array);
  r->sq_entries = p.sq_entries;
  r->cq_head = (unsigned *)(base + p.cq_off.head);
  r->cq_tail = (unsigned *)(base + p.cq_off.tail);
  r->cq_mask = (unsigned *)(base + p.cq_off.ring_mask);
  r->cqes = (struct io_uring_cqe *)(base + p.cq_off.cqes);
  r->local_tail = *r->sq_tail;
  r->fd = fd;
  return 0;
}

/* The next free submission entry, zeroed; NULL when the submission queue is full. */
static inline struct io_uring_sqe *ring_sqe(ring_t *r) {
  unsigned head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
  if (r->local_tail - head >= r->sq_entries) return NULL;
  unsigned idx = r->local_tail & *r->sq_mask;
  struct io_uring_sqe *sqe = &r->sqes[idx];
  memset(sqe, 0, sizeof *sqe);
  r->sq_array[idx] = idx;
  r->local_tail++;
  __atomic_store_n(r->sq_tail, r->local_tail, __ATOMIC_RELEASE);
  r->pending++;
  return sqe;
}

/* Queues a send or receive (IORING_OP_SEND / IORING_OP_RECV); 0, or -1 when the queue is full. */
static inline int ring_prep_io(ring_t *r, uint8_t opcode, int fd, const void *addr, uint32_t len, uint32_t msg_flags, uint64_t user_data) {
  struct io_uring_sqe *sqe = ring_sqe(r);
  if (sqe == NULL) return -1;
  sqe->opcode = opcode;
  sqe->fd = fd;
  sqe->addr = (uint64_t)(uintptr_t)addr;
  sqe->len = len;
  sqe->msg_flags = msg_flags;
  sqe->user_data = user_data;
  return 0;
}

/*
 * Submits the pending entries (all of them when `submit`, none otherwise) and waits until `wait`
 * completions are there; operations that cannot block complete during the call, so it does not
 * sleep for them. The kernel skips the wait when it took fewer entries than offered. Returns the
 * number of entries submitted, or -errno.
 */
static inline int ring_enter(ring_t *r, int submit, unsigned wait) {
  unsigned n = submit ? r->pending : 0;
  for (;;) {
    int done = (int)syscall(SYS_io_uring_enter, r->fd, n, wait, wait > 0 ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
    if (done >= 0) {
      r->pending -= (unsigned)done;
      return done;
    }
    if (errno != EINTR) return -errno;
  }
}

/* The oldest completion not yet consumed, or NULL. */
static inline struct io_uring_cqe *ring_cqe(ring_t *r) {
  unsigned head = *r->cq_head;
  if (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) return NULL;
  return &r->cqes[head & *r->cq_mask];
}

static inline void ring_cqe_done(ring_t *r) {
  __atomic_store_n(r->cq_head, *r->cq_head + 1, __ATOMIC_RELEASE);
}

static inline void ring_free(ring_t *r) {
  if (r->fd < 0) return;
  munmap(r->sqes, r->sqes_size);
  munmap(r->rings, r->rings_size);
  close(r->fd);
  r->fd = -1;
}

#endif
