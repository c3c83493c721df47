/*
 * uring-relay: a standalone, single-threaded, logic-free TCP relay for the io_uring experiment of
 * docs/adr/0010-node-data-plane-floor.md ("io_uring experiment"). Bytes read on one leg are
 * written to the other; a short write queues the tail and stops reading the other leg until it
 * drains; EOF or an error on either leg closes both. TCP_NODELAY on both legs.
 *
 *   gcc -O2 -Wall -Wextra -o .cache/experiments/uring-relay e2e/bench/experiments/uring-relay.c
 *   .cache/experiments/uring-relay <mode> <listen-port> <upstream-host> <upstream-port>
 *
 * Prints "listening on 127.0.0.1:<port>" once the port is open. SIGUSR1 prints counters
 * (loop wake-ups, system calls of the loop, completions/events) to stderr.
 *
 * Modes (raw syscalls and <linux/io_uring.h>, no liburing):
 *   epoll          epoll_wait + read + write, level-triggered, 64 kB reads (what pgbouncer and
 *                  the c-splice relay do: the control)
 *   uring          multishot IORING_OP_RECV into a provided-buffer ring, IORING_OP_SEND queued
 *                  as SQEs, one io_uring_enter per loop iteration (submit + wait for 1),
 *                  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN
 *   uring-count    as uring, but the wait also counts the sends submitted in the same call
 *                  (they complete inline, so the call still sleeps until one new event): one
 *                  io_uring_enter per wake-up instead of two. A send that goes async could then
 *                  leave the loop waiting for an event that never comes, so such a wait carries
 *                  a 1 ms timeout.
 *   uring-coop     as uring with IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG instead of
 *                  DEFER_TASKRUN
 *   uring-batch:N:U  as uring-count, waiting for N more completions, but at most U µs once at
 *                  least one is there (IORING_ENTER_EXT_ARG, min_wait_usec: kernel 6.12+)
 *
 * One send is in flight per direction (the kernel may run sends to one socket out of order once
 * they go async); received buffers wait in a per-direction queue. A queue of PAUSE_AT buffers or
 * more cancels that leg's multishot receive until the queue drains (backpressure); a receive that
 * ran out of provided buffers (-ENOBUFS) is re-armed once buffers come back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/time_types.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../../../sidecar/native/bytes.h"

#define READ_SIZE 65536
#define PAUSE_AT 8

#ifndef IORING_FEAT_MIN_TIMEOUT
#define IORING_FEAT_MIN_TIMEOUT (1U << 15)
#endif
/* struct io_uring_getevents_arg since 6.12: `pad` became `min_wait_usec` (same layout). */
struct getevents_arg {
  uint64_t sigmask;
  uint32_t sigmask_sz;
  uint32_t min_wait_usec;
  uint64_t ts;
};

static void die(const char *what) {
  fprintf(stderr, "uring-relay: %s: %s\n", what, strerror(errno));
  exit(1);
}

static volatile sig_atomic_t want_stats = 0;
static unsigned long long st_waits, st_syscalls, st_events, st_accepts;
static void on_usr1(int sig) {
  (void)sig;
  want_stats = 1;
}
static void print_stats(void) {
  want_stats = 0;
  fprintf(stderr, "stats waits=%llu syscalls=%llu events=%llu accepts=%llu\n", st_waits, st_syscalls, st_events, st_accepts);
}

static int set_nodelay(int fd) {
  int one = 1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct sockaddr_storage upstream_addr;
static socklen_t upstream_len;

static void resolve_upstream(const char *host, const char *port) {
  struct addrinfo hints = {0}, *res;
  hints.ai_socktype = SOCK_STREAM;
  int r = getaddrinfo(host, port, &hints, &res);
  if (r != 0) {
    fprintf(stderr, "uring-relay: %s:%s: %s\n", host, port, gai_strerror(r));
    exit(2);
  }
  memcpy(&upstream_addr, res->ai_addr, res->ai_addrlen);
  upstream_len = res->ai_addrlen;
  freeaddrinfo(res);
}

/* A blocking connect (loopback: immediate); -1 on failure. Connection set-up is not measured. */
static int connect_upstream(void) {
  int fd = socket(upstream_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&upstream_addr, upstream_len) != 0) {
    close(fd);
    return -1;
  }
  set_nodelay(fd);
  return fd;
}

static int listen_on(int port, int nonblock) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
  if (listen(fd, 512) != 0) die("listen");
  printf("listening on 127.0.0.1:%d\n", port);
  fflush(stdout);
  return fd;
}

/* ======================= epoll (the control) ======================= */

/* The byte queue of a leg: bytes_t, bytes_append (shared with the fdio addon). */

struct econn;
typedef struct {
  struct econn *c;
  int i;
} eside_t;

typedef struct econn {
  int fd[2];
  bytes_t out[2]; /* waiting to be written to fd[i] */
  uint32_t events[2];
  eside_t side[2];
  int closed;
  struct econn *next_dead;
} econn_t;

static int epfd;
static econn_t *dead;
static char ebuf[READ_SIZE];

static void e_close(econn_t *c) {
  if (c->closed) return;
  c->closed = 1;
  for (int i = 0; i < 2; i++) {
    close(c->fd[i]); /* also leaves the epoll set */
    free(c->out[i].data);
  }
  c->next_dead = dead; /* freed after the current batch of events */
  dead = c;
}

static void e_update(econn_t *c, int i) {
  uint32_t want = 0;
  if (c->out[1 - i].len == 0) want |= EPOLLIN;
  if (c->out[i].len > 0) want |= EPOLLOUT;
  if (want == c->events[i]) return;
  c->events[i] = want;
  struct epoll_event ev = {.events = want, .data.ptr = &c->side[i]};
  st_syscalls++;
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd[i], &ev);
}

/* 0 when all is written or EAGAIN, -1 on error. */
static int e_flush(econn_t *c, int i) {
  bytes_t *b = &c->out[i];
  while (b->len > 0) {
    st_syscalls++;
    ssize_t w = write(c->fd[i], b->data + b->start, b->len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? 0 : -1;
    }
    b->start += (size_t)w;
    b->len -= (size_t)w;
  }
  b->start = 0;
  return 0;
}

static int e_write(econn_t *c, int i, const char *p, size_t n) {
  if (c->out[i].len > 0) return bytes_append(&c->out[i], p, n);
  while (n > 0) {
    st_syscalls++;
    ssize_t w = write(c->fd[i], p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return n > 0 ? bytes_append(&c->out[i], p, n) : 0;
}

static void e_accept(int lfd) {
  for (;;) {
    st_syscalls++;
    int a = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (a < 0) return;
    st_accepts++;
    int u = connect_upstream();
    if (u < 0) {
      close(a);
      continue;
    }
    fcntl(u, F_SETFL, fcntl(u, F_GETFL) | O_NONBLOCK);
    set_nodelay(a);
    econn_t *c = calloc(1, sizeof *c);
    if (c == NULL) die("calloc");
    c->fd[0] = a;
    c->fd[1] = u;
    for (int i = 0; i < 2; i++) {
      c->side[i] = (eside_t){c, i};
      c->events[i] = EPOLLIN;
      struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &c->side[i]};
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd[i], &ev) != 0) die("epoll_ctl");
    }
  }
}

static void run_epoll(int port) {
  int lfd = listen_on(port, 1);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) != 0) die("epoll_ctl");
  struct epoll_event evs[64];
  for (;;) {
    if (want_stats) print_stats();
    st_waits++;
    st_syscalls++;
    int n = epoll_wait(epfd, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int k = 0; k < n; k++) {
      st_events++;
      eside_t *s = evs[k].data.ptr;
      if (s == NULL) {
        e_accept(lfd);
        continue;
      }
      econn_t *c = s->c;
      int i = s->i;
      if (c->closed) continue;
      uint32_t e = evs[k].events;
      if (e & EPOLLOUT) {
        if (e_flush(c, i) < 0) {
          e_close(c);
          continue;
        }
      }
      if ((e & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->out[1 - i].len == 0) {
        st_syscalls++;
        ssize_t r = read(c->fd[i], ebuf, READ_SIZE);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
          e_close(c);
          continue;
        }
        if (r > 0 && e_write(c, 1 - i, ebuf, (size_t)r) < 0) {
          e_close(c);
          continue;
        }
      } else if ((e & (EPOLLHUP | EPOLLERR)) && !(e & EPOLLIN)) {
        e_close(c);
        continue;
      }
      e_update(c, 0);
      e_update(c, 1);
    }
    while (dead != NULL) {
      econn_t *d = dead;
      dead = d->next_dead;
      free(d);
    }
  }
}

/* ======================= io_uring ======================= */

#define SQ_ENTRIES 256
#define CQ_ENTRIES 4096
#define NBUFS 256 /* provided buffers (power of two) */
#define BUF_SIZE 32768
#define BGID 1

enum { OP_RECV0 = 0, OP_RECV1 = 1, OP_SEND0 = 2, OP_SEND1 = 3, OP_ACCEPT = 4, OP_CANCEL = 5 };

static int ring_fd;
static unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
static unsigned *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;
static unsigned sq_local_tail, to_submit;
static struct io_uring_buf_ring *br;
static char *buf_base;
static unsigned br_tail;
static int buf_free = NBUFS;

/* Mode settings. */
static int count_sends;        /* uring-count / uring-batch */
static unsigned batch_extra;   /* uring-batch: more completions to wait for */
static unsigned batch_usec;    /* uring-batch: min_wait_usec */
static unsigned sends_this_round;

static int io_uring_enter(int fd, unsigned submit, unsigned min_complete, unsigned flags, void *arg, size_t argsz) {
  return (int)syscall(SYS_io_uring_enter, fd, submit, min_complete, flags, arg, argsz);
}

typedef struct {
  uint16_t bid;
  uint32_t off, len;
} seg_t;

typedef struct {
  seg_t *q; /* data to be written to this leg */
  unsigned head, len, cap;
  int sending;     /* a send to this leg is in flight */
  int recv_armed;  /* a multishot receive on this leg is armed */
  int paused;      /* receive cancelled for backpressure */
  int starved;     /* receive ended with -ENOBUFS: re-arm when buffers return */
} uside_t;

typedef struct uconn {
  int fd[2];
  uside_t s[2];
  int refs; /* in-flight requests */
  int closing;
  struct uconn *next_starved;
  int on_starved;
} uconn_t;

static uconn_t *starved_list;

static void buf_recycle(uint16_t bid) {
  struct io_uring_buf *b = &br->bufs[br_tail & (NBUFS - 1)];
  b->addr = (uint64_t)(uintptr_t)(buf_base + (size_t)bid * BUF_SIZE);
  b->len = BUF_SIZE;
  b->bid = bid;
  br_tail++;
  __atomic_store_n(&br->tail, (uint16_t)br_tail, __ATOMIC_RELEASE);
  buf_free++;
}

static struct io_uring_sqe *get_sqe(void) {
  unsigned head = __atomic_load_n(sq_head, __ATOMIC_ACQUIRE);
  if (sq_local_tail - head >= SQ_ENTRIES) {
    /* SQ full: submit what is there without waiting. */
    st_syscalls++;
    int r = io_uring_enter(ring_fd, to_submit, 0, 0, NULL, 0);
    if (r < 0) die("io_uring_enter (flush)");
    to_submit -= (unsigned)r;
    head = __atomic_load_n(sq_head, __ATOMIC_ACQUIRE);
    if (sq_local_tail - head >= SQ_ENTRIES) die("submission queue full");
  }
  unsigned idx = sq_local_tail & *sq_mask;
  struct io_uring_sqe *sqe = &sqes[idx];
  memset(sqe, 0, sizeof *sqe);
  sq_array[idx] = idx;
  sq_local_tail++;
  __atomic_store_n(sq_tail, sq_local_tail, __ATOMIC_RELEASE);
  to_submit++;
  return sqe;
}

static uint64_t tag(void *p, int op) {
  return (uint64_t)(uintptr_t)p | (uint64_t)op;
}

static void arm_recv(uconn_t *c, int i) {
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_RECV;
  sqe->fd = c->fd[i];
  sqe->ioprio = IORING_RECV_MULTISHOT;
  sqe->flags = IOSQE_BUFFER_SELECT;
  sqe->buf_group = BGID;
  sqe->user_data = tag(c, OP_RECV0 + i);
  c->s[i].recv_armed = 1;
  c->refs++;
}

static void cancel_recv(uconn_t *c, int i) {
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_ASYNC_CANCEL;
  sqe->addr = tag(c, OP_RECV0 + i);
  sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
  sqe->user_data = OP_CANCEL;
}

static void kick_send(uconn_t *c, int d) {
  uside_t *s = &c->s[d];
  if (s->sending || s->len == 0 || c->closing) return;
  seg_t *g = &s->q[s->head];
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_SEND;
  sqe->fd = c->fd[d];
  sqe->addr = (uint64_t)(uintptr_t)(buf_base + (size_t)g->bid * BUF_SIZE + g->off);
  sqe->len = g->len;
  sqe->msg_flags = MSG_WAITALL | MSG_NOSIGNAL;
  sqe->user_data = tag(c, OP_SEND0 + d);
  s->sending = 1;
  c->refs++;
  sends_this_round++;
}

static void push_seg(uside_t *s, uint16_t bid, uint32_t len) {
  if (s->head + s->len == s->cap) {
    if (s->head > 0) {
      memmove(s->q, s->q + s->head, s->len * sizeof *s->q);
      s->head = 0;
    } else {
      s->cap = s->cap ? s->cap * 2 : 16;
      s->q = realloc(s->q, s->cap * sizeof *s->q);
      if (s->q == NULL) die("realloc");
    }
  }
  s->q[s->head + s->len] = (seg_t){bid, 0, len};
  s->len++;
}

static void u_maybe_free(uconn_t *c) {
  if (!c->closing || c->refs > 0 || c->on_starved) return;
  close(c->fd[0]);
  close(c->fd[1]);
  free(c->s[0].q);
  free(c->s[1].q);
  free(c);
}

static void u_close(uconn_t *c) {
  if (c->closing) return;
  c->closing = 1;
  /* Wakes the armed receives (EOF) and fails in-flight sends; their completions drop the refs. */
  shutdown(c->fd[0], SHUT_RDWR);
  shutdown(c->fd[1], SHUT_RDWR);
  for (int d = 0; d < 2; d++) {
    uside_t *s = &c->s[d];
    /* The head segment of a leg with a send in flight is recycled when that send completes. */
    for (unsigned k = s->sending ? 1 : 0; k < s->len; k++) buf_recycle(s->q[s->head + k].bid);
    s->len = s->sending ? (s->len > 0 ? 1 : 0) : 0;
  }
}

static void mark_starved(uconn_t *c, int i) {
  c->s[i].starved = 1;
  if (!c->on_starved) {
    c->on_starved = 1;
    c->next_starved = starved_list;
    starved_list = c;
  }
}

static void rearm_starved(void) {
  if (buf_free == 0) return;
  uconn_t *c = starved_list;
  starved_list = NULL;
  while (c != NULL) {
    uconn_t *next = c->next_starved;
    c->on_starved = 0;
    for (int i = 0; i < 2; i++) {
      if (!c->s[i].starved) continue;
      c->s[i].starved = 0;
      if (!c->closing && !c->s[i].paused && !c->s[i].recv_armed) arm_recv(c, i);
    }
    u_maybe_free(c);
    c = next;
  }
}

static void on_recv(uconn_t *c, int i, struct io_uring_cqe *cqe) {
  int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  if (cqe->flags & IORING_CQE_F_BUFFER) {
    uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    buf_free--;
    if (cqe->res > 0 && !c->closing) {
      uside_t *d = &c->s[1 - i];
      push_seg(d, bid, (uint32_t)cqe->res);
      kick_send(c, 1 - i);
      if (d->len >= PAUSE_AT && !c->s[i].paused && more) {
        c->s[i].paused = 1;
        cancel_recv(c, i);
      }
    } else {
      buf_recycle(bid);
    }
  }
  if (more) return;
  c->s[i].recv_armed = 0;
  c->refs--;
  if (c->closing) {
    u_maybe_free(c);
    return;
  }
  if (cqe->res == 0) {
    u_close(c); /* EOF */
  } else if (cqe->res == -ENOBUFS) {
    mark_starved(c, i);
  } else if (cqe->res == -ECANCELED) {
    /* paused for backpressure; re-armed when the other leg's queue drains */
    if (!c->s[i].paused) arm_recv(c, i);
  } else if (cqe->res < 0) {
    u_close(c);
  } else if (!c->s[i].paused) {
    arm_recv(c, i); /* the multishot receive ended with data: re-arm */
  }
  u_maybe_free(c);
}

static void on_send(uconn_t *c, int d, struct io_uring_cqe *cqe) {
  uside_t *s = &c->s[d];
  s->sending = 0;
  c->refs--;
  seg_t *g = &s->q[s->head];
  if (cqe->res < 0 || c->closing) {
    if (s->len > 0) {
      buf_recycle(g->bid);
      s->head++;
      s->len--;
    }
    u_close(c);
    u_maybe_free(c);
    return;
  }
  g->off += (uint32_t)cqe->res;
  g->len -= (uint32_t)cqe->res;
  if (g->len == 0) {
    buf_recycle(g->bid);
    s->head++;
    s->len--;
    if (s->len == 0) s->head = 0;
  }
  kick_send(c, d);
  uside_t *src = &c->s[1 - d];
  if (s->len == 0 && src->paused) {
    src->paused = 0;
    if (!src->recv_armed) arm_recv(c, 1 - d);
  }
}

static void arm_accept(int lfd) {
  struct io_uring_sqe *sqe = get_sqe();
  sqe->opcode = IORING_OP_ACCEPT;
  sqe->fd = lfd;
  sqe->ioprio = IORING_ACCEPT_MULTISHOT;
  sqe->accept_flags = SOCK_CLOEXEC;
  sqe->user_data = OP_ACCEPT;
}

static void on_accept(int lfd, struct io_uring_cqe *cqe) {
  if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(lfd);
  if (cqe->res < 0) return;
  st_accepts++;
  int a = cqe->res;
  int u = connect_upstream();
  if (u < 0) {
    close(a);
    return;
  }
  set_nodelay(a);
  uconn_t *c = calloc(1, sizeof *c);
  if (c == NULL) die("calloc");
  c->fd[0] = a;
  c->fd[1] = u;
  arm_recv(c, 0);
  arm_recv(c, 1);
}

static void setup_ring(unsigned flags) {
  struct io_uring_params p = {0};
  p.flags = flags | IORING_SETUP_CQSIZE;
  p.cq_entries = CQ_ENTRIES;
  ring_fd = (int)syscall(SYS_io_uring_setup, SQ_ENTRIES, &p);
  if (ring_fd < 0) die("io_uring_setup");
  if (!(p.features & IORING_FEAT_SINGLE_MMAP) || !(p.features & IORING_FEAT_EXT_ARG)) {
    fprintf(stderr, "uring-relay: kernel too old (needs SINGLE_MMAP and EXT_ARG)\n");
    exit(1);
  }
  if (batch_usec > 0 && !(p.features & IORING_FEAT_MIN_TIMEOUT)) {
    fprintf(stderr, "uring-relay: this kernel has no min_wait_usec (IORING_FEAT_MIN_TIMEOUT)\n");
    exit(1);
  }
  size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  size_t sz = sq_sz > cq_sz ? sq_sz : cq_sz;
  char *rings = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQ_RING);
  if (rings == MAP_FAILED) die("mmap rings");
  sq_head = (unsigned *)(rings + p.sq_off.head);
  sq_tail = (unsigned *)(rings + p.sq_off.tail);
  sq_mask = (unsigned *)(rings + p.sq_off.ring_mask);
  sq_array = (unsigned *)(rings + p.sq_off.array);
  cq_head = (unsigned *)(rings + p.cq_off.head);
  cq_tail = (unsigned *)(rings + p.cq_off.tail);
  cq_mask = (unsigned *)(rings + p.cq_off.ring_mask);
  cqes = (struct io_uring_cqe *)(rings + p.cq_off.cqes);
  sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) die("mmap sqes");
  sq_local_tail = *sq_tail;

  /* The provided-buffer ring: NBUFS entries, registered, then filled. */
  size_t br_sz = NBUFS * sizeof(struct io_uring_buf);
  br = mmap(NULL, br_sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (br == MAP_FAILED) die("mmap buffer ring");
  buf_base = mmap(NULL, (size_t)NBUFS * BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (buf_base == MAP_FAILED) die("mmap buffers");
  struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = NBUFS, .bgid = BGID};
  if (syscall(SYS_io_uring_register, ring_fd, IORING_REGISTER_PBUF_RING, &reg, 1) != 0) die("IORING_REGISTER_PBUF_RING");
  buf_free = 0;
  for (unsigned b = 0; b < NBUFS; b++) buf_recycle((uint16_t)b);
  fprintf(stderr, "uring-relay: features=0x%x min_timeout=%s\n", p.features, (p.features & IORING_FEAT_MIN_TIMEOUT) ? "yes" : "no");
}

static void run_uring(int port, unsigned setup_flags) {
  setup_ring(setup_flags);
  int lfd = listen_on(port, 0);
  arm_accept(lfd);
  struct __kernel_timespec guard = {.tv_sec = 0, .tv_nsec = 1000000}; /* 1 ms */
  struct __kernel_timespec forever = {.tv_sec = 1, .tv_nsec = 0};
  for (;;) {
    if (want_stats) print_stats();
    rearm_starved();
    unsigned wait_nr = 1;
    struct getevents_arg arg = {0};
    void *argp = NULL;
    size_t argsz = 0;
    unsigned flags = IORING_ENTER_GETEVENTS;
    if (count_sends) {
      wait_nr += sends_this_round + batch_extra;
      if (batch_usec > 0) {
        arg.min_wait_usec = batch_usec;
        arg.ts = (uint64_t)(uintptr_t)&forever;
      } else if (sends_this_round > 0) {
        arg.ts = (uint64_t)(uintptr_t)&guard;
      }
      if (arg.ts != 0) {
        argp = &arg;
        argsz = sizeof arg;
        flags |= IORING_ENTER_EXT_ARG;
      }
    }
    /* Completions already in the ring (e.g. left by a flush) need no sleep. */
    unsigned ready = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE) - *cq_head;
    if (ready >= wait_nr && to_submit == 0) goto reap;
    sends_this_round = 0;
    st_waits++;
    st_syscalls++;
    int r = io_uring_enter(ring_fd, to_submit, wait_nr, flags, argp, argsz);
    if (r < 0) {
      if (errno != EINTR && errno != ETIME && errno != EAGAIN && errno != EBUSY) die("io_uring_enter");
    } else {
      to_submit -= (unsigned)r;
    }
  reap:
    sends_this_round = 0;
    {
      unsigned head = *cq_head;
      unsigned tail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
      while (head != tail) {
        struct io_uring_cqe *cqe = &cqes[head & *cq_mask];
        head++;
        st_events++;
        uint64_t ud = cqe->user_data;
        int op = (int)(ud & 7);
        uconn_t *c = (uconn_t *)(uintptr_t)(ud & ~(uint64_t)7);
        switch (op) {
          case OP_RECV0:
          case OP_RECV1:
            on_recv(c, op - OP_RECV0, cqe);
            break;
          case OP_SEND0:
          case OP_SEND1:
            on_send(c, op - OP_SEND0, cqe);
            break;
          case OP_ACCEPT:
            on_accept(lfd, cqe);
            break;
          default:
            break; /* a failed cancel: the receive ended by itself */
        }
        if (head == tail) {
          __atomic_store_n(cq_head, head, __ATOMIC_RELEASE);
          tail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
        }
      }
      __atomic_store_n(cq_head, head, __ATOMIC_RELEASE);
    }
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: uring-relay epoll|uring|uring-count|uring-coop|uring-batch:N:USEC <listen-port> <upstream-host> <upstream-port>\n");
    return 2;
  }
  const char *mode = argv[1];
  int port = atoi(argv[2]);
  resolve_upstream(argv[3], argv[4]);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1; /* no SA_RESTART: the wait returns EINTR and the loop prints */
  sigaction(SIGUSR1, &sa, NULL);
  unsigned defer = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if (strcmp(mode, "epoll") == 0) {
    run_epoll(port);
  } else if (strcmp(mode, "uring") == 0) {
    run_uring(port, defer);
  } else if (strcmp(mode, "uring-count") == 0) {
    count_sends = 1;
    run_uring(port, defer);
  } else if (strcmp(mode, "uring-coop") == 0) {
    run_uring(port, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
  } else if (strncmp(mode, "uring-batch:", 12) == 0) {
    unsigned n, us;
    if (sscanf(mode + 12, "%u:%u", &n, &us) != 2 || n < 1 || us < 1) {
      fprintf(stderr, "uring-relay: uring-batch:N:USEC wants N >= 1 and USEC >= 1\n");
      return 2;
    }
    count_sends = 1;
    batch_extra = n - 1;
    batch_usec = us;
    run_uring(port, defer);
  } else {
    fprintf(stderr, "uring-relay: unknown mode %s\n", mode);
    return 2;
  }
  return 0;
}
