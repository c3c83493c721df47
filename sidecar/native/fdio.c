/*
 * fdio: socket I/O for the sidecar done directly on Node's own libuv loop (uv_poll_t on the fd,
 * read()/write() without Node's stream machinery), single-threaded like pgbouncer.
 * See docs/adr/0010-node-data-plane-floor.md ("Native I/O experiment").
 *
 *   splice(fdA, fdB, onClose(errno))       bytes both ways entirely in C; returns nothing.
 *   open(fd, onData(buf, n), onClose(errno), onDrain())  -> handle (a JS-callback transport)
 *   write(h, buf[, length])  -> true when everything went to the kernel, false when a tail was
 *                               queued (onDrain follows once it is written) or h is closed
 *   end(h)                      shutdown(SHUT_WR) once the queue is empty
 *   pause(h) / resume(h)        stop / restart reading
 *   close(h)                    close now; onClose(0) follows from the loop
 *   queued(h)                   bytes waiting in the write queue
 *   unread(h)                   bytes received but not read yet (FIONREAD, plus a header held in fast mode)
 *   setCallMode(0|1|2)          0: napi_make_callback (microtasks and nextTick run after each
 *                               callback, like a Node socket's 'data'); 1: napi_call_function in
 *                               a handle scope (no microtask checkpoint: measurement only, a
 *                               promise continuation may wait for an unrelated event);
 *                               2: napi_call_function, then one callback scope per loop
 *                               iteration (uv_check) that runs nextTick + microtasks
 *   readBuffer                  the one Buffer every onData view is read into (reused)
 *
 * The pass-through fast path (docs/adr/0010, "Frame splitting in C"):
 *   open(fd, onData(buf, n, start), onClose, onDrain, stats)  stats: a Uint32Array(258) the
 *                               addon writes while the transport is in fast mode (below)
 *   link(a, b)                  pairs two transports: in fast mode, a's frames go to b and b's to a;
 *                               false when one of them has already closed
 *   fast(h, table, maxLength)   fast mode on: every read of h is split into PostgreSQL messages
 *                               (type byte, int32 length) in C; a message whose type has a non-zero
 *                               entry in `table` (a Uint8Array(256)) and whose length is in
 *                               [4, maxLength] is written to the linked transport as the bytes
 *                               read, without calling JavaScript. The first message that is not
 *                               (or any message after fast(h, null)) ends fast mode: everything from
 *                               its first byte on goes to onData, which may then see start > 0.
 *                               Returns false (fast mode stays off) when h or its peer has closed.
 *   fast(h, null)               fast mode off at the next message boundary: true when it is off
 *                               now; false when a message is still being forwarded, in which case
 *                               an onData (possibly empty) marks the hand-over.
 *   stats[type]                 messages of each type forwarded in fast mode (JS may reset them)
 *   stats[256]                  1 while fast mode is inside a message (a partial header is held,
 *                               or body bytes are still to come), else 0
 *   stats[257]                  the status byte of the last ReadyForQuery ('Z') forwarded
 *
 * Both functions dup() the descriptors they are given: the caller then destroys its Node socket
 * (its close() does not shut the connection down while the dup is open). Every callback is
 * invoked from the loop, never from inside write()/close().
 */
#define _GNU_SOURCE /* pthread_setname_np */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bytes.h"
#include "ring.h"

#define READ_SIZE 65536
/* Room before a read for a message header held back from the previous read (fast mode). */
#define HEADROOM 8
#define STAT_PARTIAL 256
#define STAT_READY_STATUS 257
#define STATS_LENGTH 258

/* ---------- a byte queue (bytes.h) ---------- */

/* Writes as much of the queue as the kernel takes. 0 when done or EAGAIN, else -errno. */
static int bytes_flush(bytes_t *b, int fd) {
  while (b->len > 0) {
    ssize_t w = write(fd, b->data + b->start, b->len);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -errno;
    }
    b->start += (size_t)w;
    b->len -= (size_t)w;
  }
  b->start = 0;
  return 0;
}

/* Writes p[0..n) directly; the unwritten tail goes to the queue. 0, or -errno on a write error. */
static int write_or_queue(int fd, bytes_t *q, const char *p, size_t n) {
  if (q->len > 0) return bytes_append(q, p, n) == 0 ? 0 : -ENOMEM;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
  }
  if (n > 0 && bytes_append(q, p, n) != 0) return -ENOMEM;
  return 0;
}

/* libuv reports POLLERR as UV_EBADF: the socket's own pending error says what happened. */
static int poll_error(int fd, int status) {
  int e = 0;
  socklen_t len = sizeof e;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) == 0 && e != 0) return e;
  return -status;
}

static int dup_socket(int fd) {
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (d < 0) return -errno;
  int one = 1;
  setsockopt(d, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* not TCP (unix socket): ignored */
  int flags = fcntl(d, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) fcntl(d, F_SETFL, flags | O_NONBLOCK);
  return d;
}

/* ---------- calling JavaScript from the loop ---------- */

static int call_mode = 0;
static napi_ref read_buffer_ref = NULL;
static char *read_buffer_data = NULL;

/* Mode 2: napi_call_function per event, then one callback scope per loop iteration (a uv_check_t,
 * right after the poll phase) so nextTick and microtasks still run before the loop waits again. */
static uv_check_t drain_check;
static int drain_check_started = 0;
static int drain_pending = 0;
static napi_env drain_env = NULL;
static napi_ref drain_resource = NULL;
static napi_async_context drain_ctx = NULL;

static void drain_check_cb(uv_check_t *handle) {
  (void)handle;
  if (!drain_pending) return;
  drain_pending = 0;
  napi_env env = drain_env;
  napi_handle_scope hs;
  napi_open_handle_scope(env, &hs);
  napi_value resource;
  napi_get_reference_value(env, drain_resource, &resource);
  napi_callback_scope cs;
  if (napi_open_callback_scope(env, resource, drain_ctx, &cs) == napi_ok) napi_close_callback_scope(env, cs);
  napi_close_handle_scope(env, hs);
}

static int drain_setup(napi_env env) {
  if (drain_check_started) return 0;
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return -1;
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &drain_resource);
  napi_create_string_utf8(env, "dbward.fdio.drain", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &drain_ctx);
  drain_env = env;
  uv_check_init(loop, &drain_check);
  uv_check_start(&drain_check, drain_check_cb);
  uv_unref((uv_handle_t *)&drain_check);
  drain_check_started = 1;
  return 0;
}

static void invoke(napi_env env, napi_async_context ctx, napi_ref fn_ref, size_t argc, const napi_value *argv) {
  napi_value fn, recv;
  if (fn_ref == NULL || napi_get_reference_value(env, fn_ref, &fn) != napi_ok || fn == NULL) return;
  napi_status st;
  if (call_mode == 0) {
    napi_get_global(env, &recv); /* napi_make_callback wants an object receiver */
    st = napi_make_callback(env, ctx, recv, fn, argc, argv, NULL);
  } else {
    napi_get_undefined(env, &recv);
    st = napi_call_function(env, recv, fn, argc, argv, NULL);
    if (call_mode == 2) drain_pending = 1;
  }
  if (st == napi_pending_exception) {
    napi_value e;
    if (napi_get_and_clear_last_exception(env, &e) == napi_ok) napi_fatal_exception(env, e);
  } else if (st != napi_ok) {
    napi_fatal_error("dbward fdio", NAPI_AUTO_LENGTH, "calling a JavaScript callback failed", NAPI_AUTO_LENGTH);
  }
}

/* Calls a transport's or splice's onClose(err) from the loop. */
static void call_on_close(napi_env env, napi_async_context ctx, napi_ref on_close, int err) {
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value arg;
  napi_create_int32(env, err, &arg);
  invoke(env, ctx, on_close, 1, &arg);
  napi_close_handle_scope(env, scope);
}

static napi_value throw_error(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static int arg_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static int is_function(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && t == napi_function;
}

/* ---------- (a) splice: both directions in C ---------- */

typedef struct {
  napi_env env;
  int fd[2];
  uv_poll_t poll[2];
  bytes_t out[2]; /* bytes waiting to be written to fd[i] */
  int events[2];
  int closing;
  int open_handles;
  int err;
  napi_ref on_close;
  napi_async_context ctx;
} splice_t;

static char splice_buffer[READ_SIZE];

static void splice_poll_cb(uv_poll_t *handle, int status, int events);

static void splice_update(splice_t *s, int i) {
  int want = 0;
  if (!s->closing) {
    if (s->out[1 - i].len == 0) want |= UV_READABLE; /* read i only while 1-i has no backlog */
    if (s->out[i].len > 0) want |= UV_WRITABLE;
  }
  if (want == s->events[i]) return;
  s->events[i] = want;
  if (want == 0) uv_poll_stop(&s->poll[i]);
  else uv_poll_start(&s->poll[i], want, splice_poll_cb);
}

static void splice_closed_cb(uv_handle_t *handle) {
  splice_t *s = handle->data;
  if (--s->open_handles > 0) return;
  close(s->fd[0]);
  close(s->fd[1]);
  bytes_free(&s->out[0]);
  bytes_free(&s->out[1]);
  napi_env env = s->env;
  call_on_close(env, s->ctx, s->on_close, s->err);
  napi_delete_reference(env, s->on_close);
  napi_async_destroy(env, s->ctx);
  free(s);
}

static void splice_close(splice_t *s, int err) {
  if (s->closing) return;
  s->closing = 1;
  s->err = err;
  for (int i = 0; i < 2; i++) {
    s->events[i] = 0;
    uv_poll_stop(&s->poll[i]);
    uv_close((uv_handle_t *)&s->poll[i], splice_closed_cb);
  }
}

static void splice_poll_cb(uv_poll_t *handle, int status, int events) {
  splice_t *s = handle->data;
  int i = handle == &s->poll[0] ? 0 : 1;
  if (s->closing) return;
  if (status < 0) {
    splice_close(s, poll_error(s->fd[i], status));
    return;
  }
  if (events & UV_WRITABLE) {
    int r = bytes_flush(&s->out[i], s->fd[i]);
    if (r < 0) {
      splice_close(s, -r);
      return;
    }
  }
  if ((events & UV_READABLE) && s->out[1 - i].len == 0) {
    ssize_t n;
    do n = read(s->fd[i], splice_buffer, READ_SIZE);
    while (n < 0 && errno == EINTR);
    if (n == 0) {
      splice_close(s, 0);
      return;
    }
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        splice_close(s, errno);
        return;
      }
    } else {
      int r = write_or_queue(s->fd[1 - i], &s->out[1 - i], splice_buffer, (size_t)n);
      if (r < 0) {
        splice_close(s, -r);
        return;
      }
    }
  }
  splice_update(s, 0);
  splice_update(s, 1);
}

static napi_value js_splice(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t a, b;
  if (argc < 3 || !arg_int(env, argv[0], &a) || !arg_int(env, argv[1], &b) || !is_function(env, argv[2]))
    return throw_error(env, "ERR_INVALID_ARG_TYPE", "splice(fdA: number, fdB: number, onClose: function)");
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_error(env, "ERR_FDIO", "no event loop");
  splice_t *s = calloc(1, sizeof *s);
  if (s == NULL) return throw_error(env, "ERR_FDIO", "out of memory");
  s->env = env;
  s->fd[0] = dup_socket(a);
  s->fd[1] = dup_socket(b);
  if (s->fd[0] < 0 || s->fd[1] < 0) {
    if (s->fd[0] >= 0) close(s->fd[0]);
    if (s->fd[1] >= 0) close(s->fd[1]);
    free(s);
    return throw_error(env, "ERR_FDIO", "dup() failed: bad file descriptor");
  }
  for (int i = 0; i < 2; i++) {
    if (uv_poll_init(loop, &s->poll[i], s->fd[i]) != 0) {
      if (i == 1) uv_close((uv_handle_t *)&s->poll[0], NULL); /* not reached in practice */
      close(s->fd[0]);
      close(s->fd[1]);
      free(s);
      return throw_error(env, "ERR_FDIO", "uv_poll_init failed");
    }
    s->poll[i].data = s;
  }
  s->open_handles = 2;
  napi_create_reference(env, argv[2], 1, &s->on_close);
  napi_value name;
  napi_create_string_utf8(env, "dbward.fdio.splice", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &s->ctx);
  splice_update(s, 0);
  splice_update(s, 1);
  return NULL;
}

/* ---------- (b) a transport with JavaScript callbacks ---------- */

typedef struct transport {
  napi_env env;
  int fd;
  uv_poll_t poll;
  bytes_t out;
  int events;
  int paused;
  int ending;   /* end() called: shutdown once the queue is empty */
  int shut;     /* shutdown done */
  int eof;      /* the peer ended its stream: close once the queue is written */
  int closing;
  int need_drain;
  int err;
  napi_ref on_data, on_close, on_drain, self, stats_ref;
  napi_async_context ctx;
  /* fast mode (see the header) */
  struct transport *peer; /* linked transport: where fast mode forwards */
  int linked;             /* link() was called (peer may since have closed) */
  int fast;               /* reads are split and forwarded in C */
  int slow_requested;     /* fast(h, null) while inside a message: hand over at its end */
  uint8_t pass[256];      /* types fast mode forwards */
  uint32_t max_len;       /* longer messages go to JavaScript */
  uint8_t hdr[5];         /* a message header split across reads, held back */
  int hdr_len;
  uint32_t remain;        /* body bytes of the current message still to forward */
  int note_status;        /* the next body byte is a ReadyForQuery status */
  uint32_t *stats;        /* STATS_LENGTH entries, owned by the Uint32Array behind stats_ref */
  int in_reads;           /* in this loop iteration's batch of receives (io_uring batching) */
  int in_flushes;         /* in this loop iteration's batch of sends: out holds deferred bytes */
  uint64_t stream_bytes;  /* bytes of consecutive DataRow/CopyData messages forwarded in fast mode */
  int coalescing;         /* not read until the coalescing timer fires (see below) */
  struct transport *co_next, *co_prev;
  /* relay thread (see "The relay thread" below); `owner` is read and written under rt.mu */
  int owner;              /* OWN_MAIN, OWN_THREAD (the pair is relayed by the thread), OWN_RETURNED */
  int held;               /* input received by the thread that the loop has not processed yet */
  bytes_t pending;        /* ... its bytes, */
  int pending_eof, pending_err; /* ... and how the stream ended there (EOF, or an errno) */
  int in_outbox, in_recalls, on_held, hinted;
  struct transport *ob_next, *rq_next, *held_next;
  /* thread-only while owner == OWN_THREAD */
  int rt_recv, rt_pollout, rt_sending, rt_paused, rt_stopping, rt_dirty, rt_starved, rt_stream;
  struct transport *rt_dirty_next, *rt_starved_next;
} transport_t;

static void transport_poll_cb(uv_poll_t *handle, int status, int events);

/* In fast mode a transport reads only while its peer has less than this queued (the session's
 * own high-water mark is 16 kB; a 64 kB allowance keeps a streaming result flowing without
 * waiting for each partial write to drain). At most FAST_HIGH_WATER + one read is queued. */
#define FAST_HIGH_WATER 65536
static int fast_blocked(const transport_t *t) {
  return t->fast && t->peer != NULL && t->peer->out.len >= FAST_HIGH_WATER;
}

/* ---------- io_uring batching (ring.h; docs/adr/0023-io-uring-batching.md) ----------
 *
 * With the ring on, a fast-mode transport that poll reports readable is not read at once: it joins
 * the loop iteration's batch, and a uv_check_t (right after the poll phase) receives for the whole
 * batch in one io_uring_enter, each into its own slice of the read buffer, splits and forwards
 * them as usual, then sends every queue those reads filled in a second io_uring_enter. Receives
 * and sends carry MSG_DONTWAIT, so they complete during the call, like read() and write() on a
 * non-blocking socket (a short send leaves the tail queued for POLLOUT, as before). Forwarded bytes
 * wait in the peer's queue between the two calls, so a write from JavaScript meanwhile lands
 * behind them. Without a ring (no io_uring, or denied by seccomp), or with it turned off, every
 * read and write is the plain system call.
 */
#define RING_ENTRIES 256
#define MAX_BATCH 64
#define ARENA_SIZE (4 * READ_SIZE) /* the read buffer: up to 4 receives of 64 kB, or more, smaller */
#define RES_NOT_RUN INT32_MIN        /* not submitted: do it with a plain system call */
#define RES_LOST (INT32_MIN + 1)     /* submitted, but no completion came back */
#define SMALL_QUEUE 16384            /* a write queue's allocation kept once it is empty */

static ring_t ring = {.fd = -1};
static int ring_error = ENOSYS; /* 0 when the ring is set up, else why not (errno) */
static int ring_on = 0;
static int in_batch = 0; /* receives of a batch are being processed: forwards are deferred */
static transport_t *batch_reads[MAX_BATCH];
static int n_batch_reads = 0;
static transport_t *batch_flushes[MAX_BATCH];
static int n_batch_flushes = 0;
static double ring_enters = 0, ring_ops = 0;
static uv_check_t batch_check;

/* ---------- read coalescing for streamed results (docs/adr/0023, "Large results") ----------
 *
 * A fast-mode leg that has forwarded more than COALESCE_AFTER bytes of consecutive DataRow or
 * CopyData messages, and whose last read emptied the socket, is not read again until the next
 * tick of a COALESCE_MS timer. The sender keeps writing into the socket meanwhile, so the next
 * read takes what a millisecond brought (64 kB per read) instead of each 8 kB piece PostgreSQL
 * writes, and the receiver is woken once per read instead of once per piece. Short results never
 * get there; the cost is at most one tick of delay on the tail of a long stream.
 */
#ifndef COALESCE_AFTER /* -DCOALESCE_AFTER=0xffffffffu compiles coalescing out (for comparisons) */
#define COALESCE_AFTER (1u << 18)
#endif
#define COALESCE_MS 1
static uv_timer_t coalesce_timer;
static int coalesce_timer_ready = 0;
static transport_t *coalescing_list = NULL;
static double coalesce_waits = 0;

static void transport_update(transport_t *t);

enum { OWN_MAIN = 0, OWN_THREAD = 1, OWN_RETURNED = 2 };

static void coalesce_stop(transport_t *t) {
  if (!t->coalescing) return;
  t->coalescing = 0;
  if (t->co_prev != NULL) t->co_prev->co_next = t->co_next;
  else coalescing_list = t->co_next;
  if (t->co_next != NULL) t->co_next->co_prev = t->co_prev;
  t->co_next = t->co_prev = NULL;
}

static void coalesce_timer_cb(uv_timer_t *timer) {
  (void)timer;
  while (coalescing_list != NULL) {
    transport_t *t = coalescing_list;
    coalesce_stop(t);
    transport_update(t);
  }
}

/* After a read of n bytes of `room` that emptied the socket (n < room): wait for the timer? */
static void coalesce_after_read(transport_t *t, ssize_t n, size_t room) {
  if (!coalesce_timer_ready || t->closing || !t->fast || t->coalescing || t->stream_bytes < COALESCE_AFTER) return;
  if (n <= 0 || (size_t)n >= room) return;
  t->coalescing = 1;
  coalesce_waits++;
  t->co_prev = NULL;
  t->co_next = coalescing_list;
  if (coalescing_list != NULL) coalescing_list->co_prev = t;
  coalescing_list = t;
  if (!uv_is_active((uv_handle_t *)&coalesce_timer)) uv_timer_start(&coalesce_timer, coalesce_timer_cb, COALESCE_MS, 0);
  transport_update(t);
}

static void transport_update(transport_t *t) {
  if (t->owner != OWN_MAIN) return; /* the relay thread polls it */
  int want = 0;
  if (!t->closing) {
    if (!t->paused && !t->eof && !fast_blocked(t) && !t->coalescing && !t->held) want |= UV_READABLE;
    if (t->out.len > 0) want |= UV_WRITABLE;
  }
  if (want == t->events) return;
  t->events = want;
  if (want == 0) uv_poll_stop(&t->poll);
  else uv_poll_start(&t->poll, want, transport_poll_cb);
}

static void transport_closed_cb(uv_handle_t *handle) {
  transport_t *t = handle->data;
  napi_env env = t->env;
  close(t->fd);
  t->fd = -1;
  bytes_free(&t->out);
  bytes_free(&t->pending);
  call_on_close(env, t->ctx, t->on_close, t->err);
  napi_delete_reference(env, t->on_data);
  napi_delete_reference(env, t->on_close);
  if (t->on_drain != NULL) napi_delete_reference(env, t->on_drain);
  if (t->stats_ref != NULL) napi_delete_reference(env, t->stats_ref);
  t->on_data = t->on_close = t->on_drain = t->stats_ref = NULL;
  t->stats = NULL;
  napi_async_destroy(env, t->ctx);
  napi_ref self = t->self;
  t->self = NULL;
  napi_delete_reference(env, self); /* the handle may now be collected; its finalizer frees t */
}

static void transport_unlink(transport_t *t) {
  transport_t *o = t->peer;
  if (o == NULL) return;
  t->peer = NULL;
  if (o->peer == t) {
    o->peer = NULL;
    transport_update(o); /* it may have waited for this one's queue */
  }
}

static void rt_forget(transport_t *t);

static void transport_close(transport_t *t, int err) {
  if (t->closing) return;
  coalesce_stop(t);
  rt_forget(t);
  transport_unlink(t);
  t->closing = 1;
  t->err = err;
  t->events = 0;
  uv_poll_stop(&t->poll);
  uv_close((uv_handle_t *)&t->poll, transport_closed_cb);
}

static void transport_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  transport_t *t = data;
  /* Only reachable once closed: `self` keeps the handle alive while the poll is open. */
  free(t);
}

static void transport_after_flush(transport_t *t) {
  if (t->closing) return;
  if (t->peer != NULL && t->peer->fast) transport_update(t->peer); /* it may have waited for this queue */
  if (t->out.len > 0) return;
  if (t->eof) {
    transport_close(t, 0);
    return;
  }
  if (t->ending && !t->shut) {
    t->shut = 1;
    shutdown(t->fd, SHUT_WR);
  }
  if (t->need_drain) {
    t->need_drain = 0;
    if (t->on_drain != NULL) {
      napi_handle_scope scope;
      napi_open_handle_scope(t->env, &scope);
      invoke(t->env, t->ctx, t->on_drain, 0, NULL);
      napi_close_handle_scope(t->env, scope);
    }
  }
}

static void transport_deliver(transport_t *t, size_t start, size_t end) {
  napi_env env = t->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value argv[3];
  napi_get_reference_value(env, read_buffer_ref, &argv[0]);
  napi_create_int32(env, (int32_t)(end - start), &argv[1]);
  napi_create_int32(env, (int32_t)start, &argv[2]);
  invoke(env, t->ctx, t->on_data, 3, argv);
  napi_close_handle_scope(env, scope);
}

/* Fast mode leaves at a message boundary; from here on onData gets the bytes. */
static void fast_leave(transport_t *t) {
  t->fast = 0;
  t->slow_requested = 0;
  t->stream_bytes = 0;
  coalesce_stop(t);
}

static __thread int on_relay_thread = 0; /* this thread is the relay thread */
static void rt_forward(transport_t *o, const char *p, size_t n);
static void offload_hint(transport_t *t);

/* Writes base[from, to) to the peer, or drops it when the peer is gone or ending (as write() on it
 * would). 0, or -1 when t was closed because the write failed. */
static int fast_forward(transport_t *t, const char *base, size_t from, size_t to) {
  transport_t *o = t->peer;
  if (to <= from || o == NULL || o->closing || o->ending) return 0;
  if (on_relay_thread) {
    rt_forward(o, base + from, to - from);
    return 0;
  }
  if (in_batch && (o->in_flushes || n_batch_flushes < MAX_BATCH)) { /* sent with the batch */
    if (bytes_append(&o->out, base + from, to - from) != 0) {
      transport_close(o, ENOMEM);
      return 0;
    }
    if (!o->in_flushes) {
      o->in_flushes = 1;
      batch_flushes[n_batch_flushes++] = o;
    }
    return 0;
  }
  int r = write_or_queue(o->fd, &o->out, base + from, to - from);
  if (r < 0) {
    transport_close(o, -r);
    return 0;
  }
  if (o->out.len > 0) transport_update(o); /* POLLOUT; t stops reading until o drains */
  return 0;
}

/*
 * Splits base[start, end) into messages and forwards those fast mode may pass, in one write per
 * run. Returns where JavaScript takes over (end when it does not), with *deliver set when onData
 * must be called (a hand-over, possibly of zero bytes after fast(h, null)). Runs on the loop
 * (base: the read buffer) and on the relay thread (base: a received buffer).
 */
static size_t fast_input(transport_t *t, const char *base, size_t start, size_t end, int *deliver) {
  const uint8_t *b = (const uint8_t *)base;
  size_t p = start;
  *deliver = 0;
  for (;;) {
    if (t->remain > 0) {
      size_t k = end - p < t->remain ? end - p : t->remain;
      if (k > 0 && t->note_status) {
        t->stats[STAT_READY_STATUS] = b[p];
        t->note_status = 0;
      }
      p += k;
      t->remain -= (uint32_t)k;
      if (t->remain > 0) break; /* the read ended inside this body */
    }
    if (t->slow_requested) {
      fast_forward(t, base, start, p);
      fast_leave(t);
      *deliver = 1;
      t->stats[STAT_PARTIAL] = 0;
      return p;
    }
    if (p == end) break;
    if (end - p < 5) {
      t->hdr_len = (int)(end - p);
      memcpy(t->hdr, b + p, end - p);
      fast_forward(t, base, start, p);
      t->stats[STAT_PARTIAL] = 0; /* nothing of it was forwarded yet */
      return end;
    }
    uint8_t type = b[p];
    uint32_t len = ((uint32_t)b[p + 1] << 24) | ((uint32_t)b[p + 2] << 16) | ((uint32_t)b[p + 3] << 8) | b[p + 4];
    if (!t->pass[type] || len < 4 || len > t->max_len) {
      fast_forward(t, base, start, p);
      fast_leave(t);
      *deliver = 1;
      t->stats[STAT_PARTIAL] = 0;
      return p;
    }
    t->stats[type]++;
    t->stream_bytes = type == 'D' || type == 'd' ? t->stream_bytes + len + 1 : 0;
    if (on_relay_thread) {
      if (t->stream_bytes >= COALESCE_AFTER) t->rt_stream = 1; /* long streams are read on the loop (coalescing) */
    } else if (type == 'Z') {
      offload_hint(t); /* a statement ended: the pair may go (back) to the relay thread */
    }
    t->note_status = type == 'Z' && len > 4;
    t->remain = len - 4;
    p += 5;
  }
  fast_forward(t, base, start, p);
  t->stats[STAT_PARTIAL] = t->remain > 0;
  return end;
}

/* read() into read_buffer[at, at + size): the byte count, 0 at EOF, or -errno. */
static ssize_t read_at(transport_t *t, size_t at, size_t size) {
  ssize_t n;
  do n = read(t->fd, read_buffer_data + at, size);
  while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : n;
}

/*
 * What a read of t returned (n bytes at read_buffer + at, 0 at EOF, or -errno): EOF and errors
 * close, bytes go through fast mode and/or to onData. A held-back header is put in front of the
 * bytes, in the HEADROOM before `at` (which a read leaves whenever a header is held).
 */
static void transport_input(transport_t *t, size_t at, ssize_t n) {
  if (n == 0) {
    /* Like a Node socket without allowHalfOpen: what is queued is still written, then close. */
    t->eof = 1;
    if (t->out.len == 0) transport_close(t, 0);
    return;
  }
  if (n < 0) {
    if (n != -EAGAIN && n != -EWOULDBLOCK) transport_close(t, (int)-n);
    return;
  }
  size_t start = at, end = at + (size_t)n;
  if (t->hdr_len > 0) {
    start -= (size_t)t->hdr_len;
    memcpy(read_buffer_data + start, t->hdr, (size_t)t->hdr_len);
    t->hdr_len = 0;
  }
  int deliver = 1;
  if (t->fast) {
    start = fast_input(t, read_buffer_data, start, end, &deliver);
    if (t->closing) return;
  }
  if (deliver) transport_deliver(t, start, end);
}

/*
 * Submits the k entries prepared for this batch (user_data 0..k-1) and collects their results into
 * res: a byte count or -errno; RES_NOT_RUN for an entry the kernel did not take (the caller does
 * it with a plain system call), RES_LOST for one it took but did not complete. A failure turns
 * the ring off for good (every later read and write is a plain system call); ring_error says why.
 */
static void ring_run(int k, int32_t *res) {
  for (int j = 0; j < k; j++) res[j] = RES_NOT_RUN;
  if (k == 0 || !ring_on) return;
  if (ring.pending != (unsigned)k) { /* an entry could not be had: the queue is not ours to guess */
    ring_error = EBUSY;
    ring_on = 0;
    return;
  }
  ring_enters++;
  int submitted = ring_enter(&ring, 1, 0); /* MSG_DONTWAIT: each completes during the call */
  if (submitted < 0) {
    ring_error = -submitted;
    ring_on = 0;
    return;
  }
  ring_ops += submitted;
  int seen = 0;
  struct io_uring_cqe *cqe;
  while ((cqe = ring_cqe(&ring)) != NULL) {
    uint64_t j = cqe->user_data;
    if (j < (uint64_t)submitted && res[j] == RES_NOT_RUN) {
      res[j] = cqe->res;
      seen++;
    }
    ring_cqe_done(&ring);
  }
  if (seen < submitted) { /* went asynchronous after all (ring_probe says this kernel does not) */
    ring_error = EINPROGRESS;
    ring_on = 0;
    for (int j = 0; j < submitted; j++)
      if (res[j] == RES_NOT_RUN) res[j] = RES_LOST;
  }
  if (submitted < k) { /* not expected with IORING_SETUP_SUBMIT_ALL; the rest stay unsubmitted */
    ring_error = EIO;
    ring_on = 0;
  }
}

/* Sends each queue the batch's receives filled, in one io_uring_enter. */
static void batch_flush(void) {
  int n = n_batch_flushes;
  n_batch_flushes = 0;
  transport_t *sub[MAX_BATCH];
  int32_t res[MAX_BATCH];
  int k = 0;
  for (int i = 0; i < n; i++) {
    transport_t *o = batch_flushes[i];
    o->in_flushes = 0;
    if (o->closing || o->out.len == 0) continue;
    if (ring_on) /* a full queue shows in ring_run, which then leaves the batch to plain calls */
      ring_prep_io(&ring, IORING_OP_SEND, o->fd, o->out.data + o->out.start, o->out.len > UINT32_MAX ? UINT32_MAX : (uint32_t)o->out.len,
                   MSG_DONTWAIT | MSG_NOSIGNAL, (uint64_t)k);
    sub[k++] = o;
  }
  ring_run(k, res);
  for (int j = 0; j < k; j++) {
    transport_t *o = sub[j];
    int32_t r = res[j];
    if (o->closing) continue;
    if (r == RES_NOT_RUN) {
      r = bytes_flush(&o->out, o->fd); /* the plain way: 0, or -errno */
      if (r == 0) continue;
    } else if (r >= 0) {
      o->out.start += (size_t)r;
      o->out.len -= (size_t)r;
      if (o->out.len == 0) {
        o->out.start = 0;
        /* Forwards pass through the queue here: do not keep a streamed result's 64 kB per leg. */
        if (o->out.cap > SMALL_QUEUE) bytes_free(&o->out);
      }
      continue;
    } else if (r == -EAGAIN || r == -EWOULDBLOCK || r == -EINTR) {
      continue;
    }
    transport_close(o, r == RES_LOST ? EIO : -r);
  }
  for (int j = 0; j < k; j++) {
    transport_t *o = sub[j];
    if (o->closing) continue;
    transport_update(o); /* POLLOUT for a tail */
    transport_after_flush(o);
  }
}

static void rt_process_hints(void);

/* After the poll phase: the batch's receives in one io_uring_enter, then its sends in another. */
static void batch_check_cb(uv_check_t *handle) {
  (void)handle;
  int n = n_batch_reads;
  if (n == 0) return;
  n_batch_reads = 0;
  size_t slice = (ARENA_SIZE / (size_t)(n < 4 ? 4 : n)) & ~(size_t)63;
  transport_t *sub[MAX_BATCH];
  size_t at[MAX_BATCH];
  int32_t res[MAX_BATCH];
  int k = 0;
  for (int i = 0; i < n; i++) {
    transport_t *t = batch_reads[i];
    t->in_reads = 0;
    /* Changed since poll reported it: left as is, poll (level-triggered) reports it again. */
    if (t->closing || t->paused || t->eof || !t->fast || fast_blocked(t)) continue;
    at[k] = (size_t)k * slice + HEADROOM;
    if (ring_on) ring_prep_io(&ring, IORING_OP_RECV, t->fd, read_buffer_data + at[k], (uint32_t)(slice - HEADROOM), MSG_DONTWAIT, (uint64_t)k);
    sub[k++] = t;
  }
  ring_run(k, res);
  in_batch = 1;
  for (int j = 0; j < k; j++) {
    transport_t *t = sub[j];
    if (t->closing) continue;
    int32_t r = res[j];
    if (r == RES_NOT_RUN) r = (int32_t)read_at(t, at[j], slice - HEADROOM);
    else if (r == RES_LOST) r = -EIO;
    transport_input(t, at[j], r);
    if (t->closing) continue;
    coalesce_after_read(t, r, slice - HEADROOM);
    transport_update(t);
  }
  in_batch = 0;
  batch_flush();
  rt_process_hints(); /* a ReadyForQuery forwarded in this batch: the pair may go to the thread now, not after the next poll */
}

static void transport_poll_cb(uv_poll_t *handle, int status, int events) {
  transport_t *t = handle->data;
  if (t->closing) return;
  if (status < 0) {
    transport_close(t, poll_error(t->fd, status));
    return;
  }
  if (events & UV_WRITABLE) {
    int r = bytes_flush(&t->out, t->fd);
    if (r < 0) {
      transport_close(t, -r);
      return;
    }
    transport_after_flush(t);
    if (t->closing) return;
  }
  if ((events & UV_READABLE) && !t->paused && !t->eof && !fast_blocked(t)) {
    if (ring_on && t->fast && (t->in_reads || n_batch_reads < MAX_BATCH)) {
      if (!t->in_reads) { /* received with the loop iteration's batch (batch_check_cb) */
        t->in_reads = 1;
        batch_reads[n_batch_reads++] = t;
      }
    } else {
      /* A header held back in fast mode is put back in front of what is read next. */
      size_t at = t->hdr_len > 0 ? HEADROOM : 0;
      ssize_t n = read_at(t, at, READ_SIZE - at);
      transport_input(t, at, n);
      if (t->closing) return;
      coalesce_after_read(t, n, READ_SIZE - at);
    }
  }
  transport_update(t);
}

/* ---------- the relay thread (docs/adr/0024-relay-thread.md) ----------
 *
 * A pass-through pair (two linked transports, both in fast mode, nothing held for JavaScript) is
 * handed to one relay thread per process, which relays it without Node's loop: one io_uring
 * (IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN, created by the thread) with a multishot receive per
 * leg into provided buffers; a wake-up is one io_uring_enter that returns the received bytes, which
 * are split and forwarded exactly as on the loop (fast_input), then written with send(). The
 * thread gives a pair back to the loop when a leg meets a message JavaScript must see (its bytes
 * from there on wait in `pending`), at EOF or an error, when a result grows into a long stream
 * (read coalescing lives on the loop), and when JavaScript calls any function on one of its
 * transports (rt_recall: the call waits until the thread has let go, at most one thread wake-up).
 * The loop takes it back from an uv_async_t, feeds `pending` through transport_input as if it had
 * just been read, and offers the pair to the thread again after the next ReadyForQuery.
 *
 * Ownership: `owner` changes under rt.mu; MAIN -> THREAD on the loop (rt_offload), THREAD ->
 * RETURNED on the thread, RETURNED -> MAIN on the loop. Only the owner touches a transport's
 * descriptor, queues and fast-mode state; the JavaScript-visible stats are read through hold().
 */
enum { RT_RECV = 1, RT_POLLOUT = 2, RT_CANCEL = 3, RT_EVENT = 4, RT_SEND = 5 }; /* user_data: transport | op */
#define RT_NBUFS 128                   /* provided buffers (a power of two); tests may start the thread with fewer */
#define RT_BUF_SIZE 16384
#define RT_STRIDE (RT_BUF_SIZE + 64)   /* each buffer has HEADROOM in front for a held header */
#define RT_BGID 1
#define RT_HINTS 64

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int state;    /* 0 not started, 1 running, -1 could not start (error) */
  int error;    /* errno when state == -1 */
  int on;       /* pairs are offered to the thread */
  int stop;     /* the thread is asked to exit (environment teardown) */
  int evfd;     /* wakes the thread: inbox or recalls */
  transport_t *inbox;   /* pairs to adopt (linked by ob_next), under mu */
  transport_t *recalls; /* pairs the loop wants back (rq_next), under mu */
  transport_t *outbox;  /* pairs given back (ob_next), under mu */
  uv_async_t async;
  uv_check_t check;
  int async_ready;
  /* loop only (on its own cache lines: the thread writes its fields at every wake-up) */
  _Alignas(64) transport_t *held_list; /* legs whose pending input the loop has yet to process (held_next) */
  transport_t *hints[RT_HINTS];
  int n_hints;
  double offloads, returns, recalled;
  /* thread only */
  _Alignas(64) ring_t ring;
  struct io_uring_buf_ring *br;
  char *bufs;
  unsigned br_tail;
  transport_t *dirty; /* legs with bytes to send (rt_dirty_next) */
  transport_t *starved; /* legs whose receive ended for want of a buffer (rt_starved_next), re-armed after the reap */
  int ring_sends; /* several legs' sends go in one io_uring_enter (off after a send that did not complete in it) */
  uint64_t waits, enters, sends, starvations; /* read by relayThread() with relaxed atomics */
} rt = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .evfd = -1};

static unsigned rt_nbufs = RT_NBUFS; /* set before the thread starts (setRelayThread's second argument) */

static int owner_of(const transport_t *t) { return __atomic_load_n(&t->owner, __ATOMIC_ACQUIRE); }
static void set_owner(transport_t *t, int o) { __atomic_store_n(&t->owner, o, __ATOMIC_RELEASE); }

static void rt_wake_thread(void) {
  uint64_t one = 1;
  ssize_t r;
  do r = write(rt.evfd, &one, sizeof one);
  while (r < 0 && errno == EINTR);
}

/* ---- on the thread ---- */

static uint64_t rt_tag(transport_t *t, int op) { return (uint64_t)(uintptr_t)t | (uint64_t)op; }

/*
 * Completions moved out of the completion queue to make room (rt_submit), reaped before the
 * queue's own: everything here is older than anything still in the queue, so order is kept.
 */
static struct {
  struct io_uring_cqe *cqes;
  unsigned head, len, cap;
} rt_stash;

static void rt_stash_cqes(void) {
  struct io_uring_cqe *cqe;
  while ((cqe = ring_cqe(&rt.ring)) != NULL) {
    if (rt_stash.len == rt_stash.cap) {
      unsigned cap = rt_stash.cap == 0 ? 256 : rt_stash.cap * 2;
      struct io_uring_cqe *grown = realloc(rt_stash.cqes, cap * sizeof *grown);
      if (grown == NULL) return; /* the rest stays in the queue */
      rt_stash.cqes = grown;
      rt_stash.cap = cap;
    }
    rt_stash.cqes[rt_stash.len++] = *cqe;
    ring_cqe_done(&rt.ring);
  }
}

/* The next completion (stashed ones first), copied out; 0 when there is none. */
static int rt_next_cqe(struct io_uring_cqe *c) {
  if (rt_stash.head < rt_stash.len) {
    *c = rt_stash.cqes[rt_stash.head++];
    if (rt_stash.head == rt_stash.len) rt_stash.head = rt_stash.len = 0;
    return 1;
  }
  struct io_uring_cqe *cqe = ring_cqe(&rt.ring);
  if (cqe == NULL) return 0;
  *c = *cqe;
  ring_cqe_done(&rt.ring);
  return 1;
}

/*
 * Submits the queued entries. The kernel refuses a submission while completions it could not post
 * wait for room (-EBUSY): they are stashed, which makes the room, and the call retried. A ring
 * that refuses for a second (not expected: nothing else fails a submission of valid entries) is
 * a broken process, which stops here rather than relaying with requests it cannot make.
 */
static void rt_submit(void) {
  for (int tries = 0;; tries++) {
    int r = ring_enter(&rt.ring, 1, 0);
    if (r >= 0 || rt.ring.pending == 0) return;
    if (tries == 1000) {
      fprintf(stderr, "dbward-relay: io_uring_enter failed: %s\n", strerror(-r));
      abort();
    }
    rt_stash_cqes();
    if (r != -EBUSY) usleep(1000);
  }
}

static struct io_uring_sqe *rt_sqe(void) {
  struct io_uring_sqe *sqe;
  while ((sqe = ring_sqe(&rt.ring)) == NULL) rt_submit(); /* full: submit what is there first (SUBMIT_ALL takes all of it) */
  return sqe;
}

static void rt_arm_recv(transport_t *t) {
  struct io_uring_sqe *sqe = rt_sqe();
  sqe->opcode = IORING_OP_RECV;
  sqe->fd = t->fd;
  sqe->ioprio = IORING_RECV_MULTISHOT;
  sqe->flags = IOSQE_BUFFER_SELECT;
  sqe->buf_group = RT_BGID;
  sqe->user_data = rt_tag(t, RT_RECV);
  t->rt_recv = 1;
}

static void rt_cancel(transport_t *t, int op) {
  struct io_uring_sqe *sqe = rt_sqe();
  sqe->opcode = IORING_OP_ASYNC_CANCEL;
  sqe->addr = rt_tag(t, op);
  sqe->flags = IOSQE_CQE_SKIP_SUCCESS;
  sqe->user_data = RT_CANCEL; /* a failed cancel (the operation had ended) is ignored */
}

static void rt_arm_pollout(transport_t *t) {
  if (t->rt_pollout) return;
  struct io_uring_sqe *sqe = rt_sqe();
  sqe->opcode = IORING_OP_POLL_ADD;
  sqe->fd = t->fd;
  sqe->poll32_events = POLLOUT;
  sqe->user_data = rt_tag(t, RT_POLLOUT);
  t->rt_pollout = 1;
}

static void rt_arm_event(void) {
  struct io_uring_sqe *sqe = rt_sqe();
  sqe->opcode = IORING_OP_POLL_ADD;
  sqe->fd = rt.evfd;
  sqe->poll32_events = POLLIN;
  sqe->len = IORING_POLL_ADD_MULTI;
  sqe->user_data = RT_EVENT;
}

static void rt_recycle(uint16_t bid) {
  struct io_uring_buf *b = &rt.br->bufs[rt.br_tail & (rt_nbufs - 1)];
  b->addr = (uint64_t)(uintptr_t)(rt.bufs + (size_t)bid * RT_STRIDE + HEADROOM);
  b->len = RT_BUF_SIZE;
  b->bid = bid;
  rt.br_tail++;
  __atomic_store_n(&rt.br->tail, (uint16_t)rt.br_tail, __ATOMIC_RELEASE);
}

static void rt_mark_dirty(transport_t *o) {
  if (o->rt_dirty) return;
  o->rt_dirty = 1;
  o->rt_dirty_next = rt.dirty;
  rt.dirty = o;
}

static void rt_ended(transport_t *t, int err);

/* fast_forward on the thread: queued, and written by rt_flush after this wake-up's receives. */
static void rt_forward(transport_t *o, const char *p, size_t n) {
  if (o->pending_err != 0) return; /* failed: the pair is on its way back to be closed */
  if (bytes_append(&o->out, p, n) != 0) rt_ended(o, ENOMEM); /* the pair goes back and o is closed */
  else rt_mark_dirty(o);
}

static void rt_hold(transport_t *t, const char *p, size_t n) {
  t->held = 1;
  if (n > 0 && bytes_append(&t->pending, p, n) != 0) t->pending_err = ENOMEM;
}

/* Stops relaying the pair: its receives and write polls are cancelled; rt_settle gives it back. */
static void rt_stop(transport_t *t) {
  transport_t *legs[2] = {t, t->peer};
  for (int i = 0; i < 2; i++) {
    transport_t *l = legs[i];
    if (l->rt_stopping) continue;
    l->rt_stopping = 1;
    if (l->rt_recv) rt_cancel(l, RT_RECV);
    if (l->rt_pollout) rt_cancel(l, RT_POLLOUT);
  }
}

/* A stopping pair with nothing in flight goes back to the loop. */
static void rt_settle(transport_t *t) {
  transport_t *o = t->peer;
  if (!t->rt_stopping || !o->rt_stopping || t->rt_recv || o->rt_recv || t->rt_pollout || o->rt_pollout || t->rt_sending || o->rt_sending) return;
  if (t->rt_dirty || o->rt_dirty) return; /* after rt_flush */
  transport_t *legs[2] = {t, o};
  for (int i = 0; i < 2; i++) { /* no pointer to a leg the thread no longer owns */
    if (!legs[i]->rt_starved) continue;
    transport_t **pp = &rt.starved;
    while (*pp != NULL && *pp != legs[i]) pp = &(*pp)->rt_starved_next;
    if (*pp == legs[i]) *pp = legs[i]->rt_starved_next;
    legs[i]->rt_starved_next = NULL;
  }
  for (int i = 0; i < 2; i++) {
    legs[i]->rt_stopping = legs[i]->rt_paused = legs[i]->rt_stream = legs[i]->rt_starved = 0;
    if (legs[i]->pending_err != 0) legs[i]->held = 1;
  }
  pthread_mutex_lock(&rt.mu);
  set_owner(t, OWN_RETURNED);
  set_owner(o, OWN_RETURNED);
  if (!t->in_outbox) {
    t->in_outbox = 1;
    t->ob_next = rt.outbox;
    rt.outbox = t;
  }
  pthread_cond_broadcast(&rt.cv);
  pthread_mutex_unlock(&rt.mu);
  uv_async_send(&rt.async);
}

/* Received bytes of t: relayed in fast mode, held for the loop from a hand-over on. */
static void rt_input(transport_t *t, char *p, size_t n) {
  if (t->rt_stopping || !t->fast || t->held) {
    rt_hold(t, p, n);
    return;
  }
  size_t start = 0;
  if (t->hdr_len > 0) { /* a header held back from the last receive goes in front (HEADROOM) */
    p -= t->hdr_len;
    memcpy(p, t->hdr, (size_t)t->hdr_len);
    n += (size_t)t->hdr_len;
    t->hdr_len = 0;
  }
  int deliver = 0;
  size_t stop = fast_input(t, p, start, n, &deliver);
  if (deliver) {
    rt_hold(t, p + stop, n - stop);
    rt_stop(t);
  } else if (t->rt_stream) {
    rt_stop(t);
  }
  transport_t *o = t->peer;
  if (!t->rt_stopping && !t->rt_paused && o->out.len >= FAST_HIGH_WATER) { /* backpressure */
    t->rt_paused = 1;
    if (t->rt_recv) rt_cancel(t, RT_RECV);
  }
}

static void rt_ended(transport_t *t, int err) {
  if (err == 0) t->pending_eof = 1;
  else if (t->pending_err == 0) t->pending_err = err;
  t->held = 1;
  rt_stop(t);
}

static void rt_on_recv(transport_t *t, struct io_uring_cqe *cqe) {
  int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  if (cqe->flags & IORING_CQE_F_BUFFER) {
    uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (cqe->res > 0) rt_input(t, rt.bufs + (size_t)bid * RT_STRIDE + HEADROOM, (size_t)cqe->res);
    rt_recycle(bid);
  }
  if (more) return;
  t->rt_recv = 0;
  int res = cqe->res;
  if (res == 0) rt_ended(t, 0);
  else if (res == -ENOBUFS) { /* every buffer was taken in this wake-up: re-armed once they are back */
    __atomic_fetch_add(&rt.starvations, 1, __ATOMIC_RELAXED);
    if (!t->rt_stopping && !t->rt_starved) {
      t->rt_starved = 1;
      t->rt_starved_next = rt.starved;
      rt.starved = t;
    }
  } else if (res < 0 && res != -ECANCELED) rt_ended(t, -res);
  else if (!t->rt_stopping && !t->rt_paused) rt_arm_recv(t); /* ended with data, or cancelled by a pause that is over */
  rt_settle(t);
}

/* After a send of o (r: 0, or -errno): a tail waits for POLLOUT; its source may resume receiving. */
static void rt_after_send(transport_t *o, int r) {
  if (r < 0) rt_ended(o, -r);
  else if (o->out.len > 0 && !o->rt_stopping) rt_arm_pollout(o); /* a stopping pair's tail goes back with it */
  else if (o->out.len == 0 && o->out.cap > SMALL_QUEUE) bytes_free(&o->out);
  if (o->pending_err != 0 && !o->rt_stopping) rt_stop(o);
  transport_t *src = o->peer; /* it may have paused for this queue */
  if (src->rt_paused && o->out.len < FAST_HIGH_WATER && !src->rt_stopping) {
    src->rt_paused = 0;
    if (!src->rt_recv) rt_arm_recv(src);
  }
  rt_settle(o);
}

static void rt_on_send(transport_t *o, int32_t res) {
  o->rt_sending = 0;
  if (res >= 0) {
    o->out.start += (size_t)res;
    o->out.len -= (size_t)res;
    if (o->out.len == 0) o->out.start = 0;
  }
  rt_after_send(o, res >= 0 || res == -EAGAIN || res == -EINTR ? 0 : res);
}

static void rt_reap(void);

/*
 * Writes every queue this wake-up filled: one send() for a single leg, one io_uring_enter of
 * MSG_DONTWAIT sends (each completes during the call, as on the loop) for several.
 */
static void rt_flush(void) {
  while (rt.dirty != NULL) {
    transport_t *batch[MAX_BATCH];
    int k = 0;
    while (rt.dirty != NULL && k < MAX_BATCH) {
      transport_t *o = rt.dirty;
      rt.dirty = o->rt_dirty_next;
      o->rt_dirty = 0;
      if (o->pending_err == 0 && o->out.len > 0 && !o->rt_pollout && !o->rt_sending) {
        o->rt_sending = 1; /* claimed: the pair is not settled (given back) before this send is done */
        batch[k++] = o;
      } else {
        rt_after_send(o, 0);
      }
    }
    if (k >= 2 && rt.ring_sends) {
      for (int i = 0; i < k; i++) {
        transport_t *o = batch[i];
        struct io_uring_sqe *sqe = rt_sqe();
        sqe->opcode = IORING_OP_SEND;
        sqe->fd = o->fd;
        sqe->addr = (uint64_t)(uintptr_t)(o->out.data + o->out.start);
        sqe->len = o->out.len > UINT32_MAX ? UINT32_MAX : (uint32_t)o->out.len;
        sqe->msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL;
        sqe->user_data = rt_tag(o, RT_SEND);
      }
      __atomic_fetch_add(&rt.sends, (uint64_t)k, __ATOMIC_RELAXED);
      __atomic_fetch_add(&rt.enters, 1, __ATOMIC_RELAXED);
      rt_submit();
      rt_reap(); /* the sends' completions, and whatever else arrived meanwhile */
      for (int i = 0; i < k; i++) {
        transport_t *o = batch[i];
        if (!o->rt_sending) continue;
        /* Not completed during the call (not expected with MSG_DONTWAIT): the kernel may still read
         * the queue, so the leg fails once its completion comes; later sends are plain calls. */
        rt.ring_sends = 0;
        if (o->pending_err == 0) o->pending_err = EIO;
        o->held = 1;
        if (!o->rt_stopping) rt_stop(o);
      }
      continue;
    }
    for (int i = 0; i < k; i++) {
      transport_t *o = batch[i];
      __atomic_fetch_add(&rt.sends, 1, __ATOMIC_RELAXED);
      int r = bytes_flush(&o->out, o->fd);
      o->rt_sending = 0;
      rt_after_send(o, r);
    }
  }
}

static void rt_adopt(transport_t *t) {
  transport_t *legs[2] = {t, t->peer};
  for (int i = 0; i < 2; i++) {
    transport_t *l = legs[i];
    l->rt_recv = l->rt_pollout = l->rt_paused = l->rt_stopping = l->rt_stream = 0;
    rt_arm_recv(l);
    if (l->out.len > 0) rt_mark_dirty(l);
  }
}

static void rt_on_event(void) {
  uint64_t v;
  while (read(rt.evfd, &v, sizeof v) < 0 && errno == EINTR) {
  }
  pthread_mutex_lock(&rt.mu);
  transport_t *in = rt.inbox;
  rt.inbox = NULL;
  pthread_mutex_unlock(&rt.mu);
  transport_t *t;
  /* Adopted first: a pair handed over and recalled before this wake-up is adopted, then stopped
   * (the other way round, adoption would undo the stop, and the recall would wait forever). */
  while (in != NULL) {
    t = in;
    in = t->ob_next;
    t->ob_next = NULL;
    rt_adopt(t);
  }
  /* Recalls are taken off their list under the mutex: a leg the loop closes meanwhile (rt_forget)
   * is either still on it and unlinked there, or already off it and never touched here again. */
  pthread_mutex_lock(&rt.mu);
  while ((t = rt.recalls) != NULL) {
    rt.recalls = t->rq_next;
    t->rq_next = NULL;
    t->in_recalls = 0;
    if (owner_of(t) == OWN_THREAD && !t->rt_stopping) rt_stop(t);
  }
  pthread_mutex_unlock(&rt.mu);
}

static void rt_reap(void) {
  struct io_uring_cqe c;
  while (rt_next_cqe(&c)) {
    int op = (int)(c.user_data & 7);
    transport_t *t = (transport_t *)(uintptr_t)(c.user_data & ~(uint64_t)7);
    switch (op) {
      case RT_RECV:
        rt_on_recv(t, &c);
        break;
      case RT_POLLOUT:
        t->rt_pollout = 0;
        if (c.res < 0 && c.res != -ECANCELED) rt_ended(t, -c.res);
        else if (t->out.len > 0) rt_mark_dirty(t);
        else rt_settle(t);
        break;
      case RT_EVENT:
        if (!(c.flags & IORING_CQE_F_MORE)) rt_arm_event();
        rt_on_event();
        break;
      case RT_SEND:
        rt_on_send(t, c.res);
        break;
      default:
        break; /* RT_CANCEL: a cancel that found nothing to cancel */
    }
  }
}

static int rt_setup(void) {
  int r = ring_setup(&rt.ring, RING_ENTRIES,
                     IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
  if (r < 0) return -r;
  size_t br_size = rt_nbufs * sizeof(struct io_uring_buf);
  rt.br = mmap(NULL, br_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  rt.bufs = mmap(NULL, (size_t)rt_nbufs * RT_STRIDE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (rt.br == MAP_FAILED || rt.bufs == MAP_FAILED) return ENOMEM;
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)rt.br;
  reg.ring_entries = rt_nbufs;
  reg.bgid = RT_BGID;
  if (syscall(SYS_io_uring_register, rt.ring.fd, IORING_REGISTER_PBUF_RING, &reg, 1) != 0) return errno;
  for (unsigned b = 0; b < rt_nbufs; b++) rt_recycle((uint16_t)b);
  rt_arm_event();
  rt.ring_sends = 1;
  return 0;
}

static void *rt_main(void *arg) {
  (void)arg;
  on_relay_thread = 1;
  pthread_setname_np(pthread_self(), "dbward-relay"); /* as top -H and /proc/<pid>/task show it */
  int e = rt_setup();
  pthread_mutex_lock(&rt.mu);
  rt.state = e == 0 ? 1 : -1;
  rt.error = e;
  pthread_cond_broadcast(&rt.cv);
  pthread_mutex_unlock(&rt.mu);
  if (e != 0) return NULL;
  while (!__atomic_load_n(&rt.stop, __ATOMIC_ACQUIRE)) {
    transport_t *t;
    while ((t = rt.starved) != NULL) { /* buffers came back since -ENOBUFS (one at a time: rt_settle unlinks) */
      rt.starved = t->rt_starved_next;
      t->rt_starved_next = NULL;
      t->rt_starved = 0;
      if (!t->rt_stopping && !t->rt_paused && !t->rt_recv) rt_arm_recv(t);
      rt_settle(t);
    }
    __atomic_fetch_add(&rt.waits, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&rt.enters, 1, __ATOMIC_RELAXED);
    int r = ring_enter(&rt.ring, 1, 1);
    if (r < 0 && r != -EBUSY && r != -EAGAIN && r != -ETIME) usleep(1000); /* not expected; never spin */
    rt_reap();
    rt_flush();
  }
  return NULL;
}

/* ---- on the loop ---- */

static void rt_feed_held(transport_t *t);
static void rt_schedule_held(transport_t *t);

/* The thread gave pairs back: the loop owns them again and processes what they hold. */
static void rt_take_back(transport_t *t) {
  transport_t *legs[2] = {t, t->peer};
  pthread_mutex_lock(&rt.mu);
  for (int i = 0; i < 2; i++)
    if (owner_of(legs[i]) == OWN_RETURNED) set_owner(legs[i], OWN_MAIN);
  pthread_mutex_unlock(&rt.mu);
  rt.returns++;
  for (int i = 0; i < 2; i++) {
    rt_schedule_held(legs[i]);
    transport_update(legs[i]);
  }
}


static void rt_async_cb(uv_async_t *handle) {
  (void)handle;
  pthread_mutex_lock(&rt.mu);
  transport_t *ob = rt.outbox;
  rt.outbox = NULL;
  for (transport_t *t = ob; t != NULL; t = t->ob_next) t->in_outbox = 0;
  pthread_mutex_unlock(&rt.mu);
  while (ob != NULL) {
    transport_t *t = ob;
    ob = t->ob_next;
    t->ob_next = NULL;
    if (owner_of(t) == OWN_RETURNED) rt_take_back(t);
  }
  /* What the legs held, in order, as if just read (a callback may close or pause a leg). */
  transport_t *list = rt.held_list;
  rt.held_list = NULL;
  while (list != NULL) {
    transport_t *t = list;
    list = t->held_next;
    t->on_held = 0;
    rt_feed_held(t);
  }
}

static void rt_feed_held(transport_t *t) {
  while (t->held && !t->closing && !t->paused && owner_of(t) == OWN_MAIN) {
    if (t->pending.len > 0) {
      size_t n = t->pending.len < READ_SIZE - HEADROOM ? t->pending.len : READ_SIZE - HEADROOM;
      memcpy(read_buffer_data + HEADROOM, t->pending.data + t->pending.start, n);
      t->pending.start += n;
      t->pending.len -= n;
      if (t->pending.len == 0) bytes_free(&t->pending);
      transport_input(t, HEADROOM, (ssize_t)n);
      continue;
    }
    t->held = 0;
    int err = t->pending_err, eof = t->pending_eof;
    t->pending_err = t->pending_eof = 0;
    if (err != 0) transport_close(t, err);
    else if (eof) transport_input(t, 0, 0);
    if (!t->closing) transport_update(t);
  }
  /* Paused by a callback with input still held: resume() schedules it again. */
}

/* Before any function touches t from JavaScript: the loop owns its pair again (waits for the thread). */
static void rt_recall(transport_t *t) {
  if (owner_of(t) == OWN_MAIN) return;
  pthread_mutex_lock(&rt.mu);
  if (owner_of(t) == OWN_THREAD) {
    if (!t->in_recalls) {
      t->in_recalls = 1;
      t->rq_next = rt.recalls;
      rt.recalls = t;
    }
    rt_wake_thread();
    while (owner_of(t) == OWN_THREAD) pthread_cond_wait(&rt.cv, &rt.mu);
  }
  pthread_mutex_unlock(&rt.mu);
  rt.recalled++;
  rt_take_back(t); /* what the legs hold is processed from the loop (rt_async_cb) */
}

/* Removes t from the loop's lists (it is closing). */
static void rt_forget(transport_t *t) {
  for (int i = 0; i < rt.n_hints; i++)
    if (rt.hints[i] == t) rt.hints[i] = NULL;
  t->hinted = 0;
  if (t->on_held) {
    transport_t **pp = &rt.held_list;
    while (*pp != NULL && *pp != t) pp = &(*pp)->held_next;
    if (*pp == t) *pp = t->held_next;
    t->on_held = 0;
  }
  if (rt.state != 1) return;
  pthread_mutex_lock(&rt.mu);
  if (t->in_outbox) {
    transport_t **pp = &rt.outbox;
    while (*pp != NULL && *pp != t) pp = &(*pp)->ob_next;
    if (*pp == t) *pp = t->ob_next;
    t->in_outbox = 0;
  }
  if (t->in_recalls) { /* recalled, then given back for another reason before the thread read the recall */
    transport_t **pp = &rt.recalls;
    while (*pp != NULL && *pp != t) pp = &(*pp)->rq_next;
    if (*pp == t) *pp = t->rq_next;
    t->in_recalls = 0;
  }
  pthread_mutex_unlock(&rt.mu);
}

static int rt_can_offload(const transport_t *t) {
  return owner_of(t) == OWN_MAIN && t->fast && !t->slow_requested && !t->closing && !t->ending && !t->eof && !t->paused && !t->coalescing && !t->held &&
         !t->need_drain && !t->in_reads && !t->in_flushes && !t->in_outbox && t->stream_bytes < COALESCE_AFTER;
}

/* Hands the pair of t to the thread when both legs are ready for it. */
static void rt_offload(transport_t *t) {
  transport_t *o = t->peer;
  if (rt.state != 1 || !rt.on || o == NULL || o->peer != t || !rt_can_offload(t) || !rt_can_offload(o)) return;
  transport_t *legs[2] = {t, o};
  for (int i = 0; i < 2; i++) {
    legs[i]->events = 0;
    uv_poll_stop(&legs[i]->poll);
  }
  pthread_mutex_lock(&rt.mu);
  set_owner(t, OWN_THREAD);
  set_owner(o, OWN_THREAD);
  t->ob_next = rt.inbox;
  rt.inbox = t;
  pthread_mutex_unlock(&rt.mu);
  rt_wake_thread();
  rt.offloads++;
}

/* The pair of t may go to the thread once the loop is between callbacks (rt_process_hints). */
static void offload_hint(transport_t *t) {
  if (rt.state != 1 || !rt.on || t->hinted) return;
  if (rt.n_hints == RT_HINTS) return; /* the next ReadyForQuery hints again */
  t->hinted = 1;
  rt.hints[rt.n_hints++] = t;
}

/* A leg with held input is fed from the loop (rt_async_cb): once given back, and after resume(). */
static void rt_schedule_held(transport_t *t) {
  if (!t->held || t->paused || t->on_held || owner_of(t) != OWN_MAIN) return;
  t->on_held = 1;
  t->held_next = rt.held_list;
  rt.held_list = t;
  uv_async_send(&rt.async);
}

static void rt_process_hints(void) {
  int n = rt.n_hints;
  rt.n_hints = 0;
  for (int i = 0; i < n; i++) {
    transport_t *t = rt.hints[i];
    if (t == NULL) continue;
    t->hinted = 0;
    rt_offload(t);
  }
}

/* After the poll phase: pairs that JavaScript or a ReadyForQuery made ready go to the thread. */
static void rt_check_cb(uv_check_t *handle) {
  (void)handle;
  if (rt.n_hints > 0) rt_process_hints();
}

/* Starts the thread (once) and waits for its ring: 0, or the errno that keeps it off. */
static int rt_start(napi_env env) {
  if (rt.state != 0) return rt.state == 1 ? 0 : rt.error;
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return EINVAL;
  if (!rt.async_ready) {
    if (uv_async_init(loop, &rt.async, rt_async_cb) != 0 || uv_check_init(loop, &rt.check) != 0) return EINVAL;
    uv_unref((uv_handle_t *)&rt.async);
    uv_check_start(&rt.check, rt_check_cb);
    uv_unref((uv_handle_t *)&rt.check);
    rt.async_ready = 1;
  }
  rt.evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (rt.evfd < 0) {
    rt.state = -1;
    rt.error = errno;
    return rt.error;
  }
  pthread_mutex_lock(&rt.mu);
  sigset_t all, old; /* the thread starts with every signal blocked: Node's handlers run on the loop's thread */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int e = pthread_create(&rt.thread, NULL, rt_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (e != 0) {
    rt.state = -1;
    rt.error = e;
  }
  while (rt.state == 0) pthread_cond_wait(&rt.cv, &rt.mu);
  pthread_mutex_unlock(&rt.mu);
  if (rt.state != 1) pthread_join(rt.thread, NULL);
  return rt.state == 1 ? 0 : rt.error;
}

/* Environment teardown: the thread exits before the memory it writes (stats arrays) goes away. */
static void rt_cleanup(void *arg) {
  (void)arg;
  if (rt.state != 1) return;
  __atomic_store_n(&rt.stop, 1, __ATOMIC_RELEASE);
  rt_wake_thread();
  pthread_join(rt.thread, NULL);
  rt.state = -1;
  rt.error = ESHUTDOWN;
}

static transport_t *get_transport(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a handle returned by open()");
    return NULL;
  }
  rt_recall(p); /* JavaScript touches a transport only while the loop owns it */
  return p;
}

/* The data of a Uint32Array of at least STATS_LENGTH entries, or NULL. */
static uint32_t *stats_array(napi_env env, napi_value v) {
  bool is_typed = false;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return NULL;
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok) return NULL;
  if (type != napi_uint32_array || length < STATS_LENGTH || data == NULL) return NULL;
  return data;
}

/*
 * The arguments of a call whose first is a handle: fills argv (up to `max`, the rest undefined),
 * sets *argc, and returns the transport; NULL with a TypeError thrown when there are fewer than
 * `min` arguments (`usage` says which) or the first is not a handle.
 */
static transport_t *handle_args(napi_env env, napi_callback_info info, size_t min, size_t max, napi_value *argv, size_t *argc, const char *usage) {
  *argc = max;
  napi_get_cb_info(env, info, argc, argv, NULL, NULL);
  if (*argc < min) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", usage);
    return NULL;
  }
  return get_transport(env, argv[0]);
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  napi_valuetype drain_type = napi_undefined;
  if (argc > 3) napi_typeof(env, argv[3], &drain_type);
  uint32_t *stats = argc > 4 ? stats_array(env, argv[4]) : NULL;
  if (argc < 3 || !arg_int(env, argv[0], &fd) || !is_function(env, argv[1]) || !is_function(env, argv[2]) ||
      (drain_type != napi_undefined && drain_type != napi_function) || (argc > 4 && stats == NULL))
    return throw_error(env, "ERR_INVALID_ARG_TYPE",
                       "open(fd: number, onData: function, onClose: function, onDrain?: function, stats?: Uint32Array(258))");
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_error(env, "ERR_FDIO", "no event loop");
  transport_t *t = calloc(1, sizeof *t);
  if (t == NULL) return throw_error(env, "ERR_FDIO", "out of memory");
  t->env = env;
  t->fd = dup_socket(fd);
  if (t->fd < 0) {
    free(t);
    return throw_error(env, "ERR_FDIO", "dup() failed: bad file descriptor");
  }
  if (uv_poll_init(loop, &t->poll, t->fd) != 0) {
    close(t->fd);
    free(t);
    return throw_error(env, "ERR_FDIO", "uv_poll_init failed");
  }
  t->poll.data = t;
  napi_create_reference(env, argv[1], 1, &t->on_data);
  napi_create_reference(env, argv[2], 1, &t->on_close);
  if (drain_type == napi_function) napi_create_reference(env, argv[3], 1, &t->on_drain);
  if (stats != NULL) {
    napi_create_reference(env, argv[4], 1, &t->stats_ref); /* keeps the memory alive until close */
    t->stats = stats;
  }
  napi_value name, handle;
  napi_create_string_utf8(env, "dbward.fdio.transport", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &t->ctx);
  napi_create_external(env, t, transport_finalize, NULL, &handle);
  napi_create_reference(env, handle, 1, &t->self);
  transport_update(t);
  return handle;
}

static napi_value js_write(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[3];
  transport_t *t = handle_args(env, info, 2, 3, argv, &argc, "write(handle, buffer[, length])");
  if (t == NULL) return NULL;
  void *data = NULL;
  size_t len = 0;
  bool is_buffer = false;
  napi_is_buffer(env, argv[1], &is_buffer);
  if (!is_buffer || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok)
    return throw_error(env, "ERR_INVALID_ARG_TYPE", "write(handle, buffer: Buffer|Uint8Array[, length])");
  if (argc > 2) {
    int32_t n;
    if (!arg_int(env, argv[2], &n) || n < 0 || (size_t)n > len)
      return throw_error(env, "ERR_OUT_OF_RANGE", "write(): length outside the buffer");
    len = (size_t)n;
  }
  napi_value result;
  if (t->closing || t->ending) {
    napi_get_boolean(env, false, &result);
    return result;
  }
  int r = write_or_queue(t->fd, &t->out, data, len);
  if (r < 0) {
    transport_close(t, -r);
    napi_get_boolean(env, false, &result);
    return result;
  }
  if (t->out.len > 0) {
    t->need_drain = 1;
    transport_update(t);
  }
  napi_get_boolean(env, t->out.len == 0, &result);
  return result;
}

typedef enum { OP_END, OP_PAUSE, OP_RESUME, OP_CLOSE, OP_QUEUED, OP_UNREAD } op_t;

static napi_value transport_op(napi_env env, napi_callback_info info, op_t op) {
  size_t argc;
  napi_value argv[1];
  transport_t *t = handle_args(env, info, 1, 1, argv, &argc, "expected a handle");
  if (t == NULL) return NULL;
  switch (op) {
    case OP_END:
      if (!t->closing && !t->ending) {
        t->ending = 1;
        if (t->out.len == 0) {
          t->shut = 1;
          shutdown(t->fd, SHUT_WR);
        }
      }
      break;
    case OP_PAUSE:
      t->paused = 1;
      transport_update(t);
      break;
    case OP_RESUME:
      t->paused = 0;
      transport_update(t);
      rt_schedule_held(t);
      break;
    case OP_CLOSE:
      transport_close(t, 0);
      break;
    case OP_UNREAD: { /* received but not read yet: in the kernel, plus a header held back in fast mode */
      int n = 0;
      if (t->closing || ioctl(t->fd, FIONREAD, &n) != 0 || n < 0) n = 0;
      napi_value v;
      napi_create_double(env, (double)n + (double)t->hdr_len + (double)t->pending.len, &v);
      return v;
    }
    case OP_QUEUED: {
      napi_value v;
      napi_create_double(env, (double)t->out.len, &v);
      return v;
    }
  }
  return NULL;
}

static napi_value js_end(napi_env env, napi_callback_info info) { return transport_op(env, info, OP_END); }
static napi_value js_pause(napi_env env, napi_callback_info info) { return transport_op(env, info, OP_PAUSE); }
static napi_value js_resume(napi_env env, napi_callback_info info) { return transport_op(env, info, OP_RESUME); }
static napi_value js_close(napi_env env, napi_callback_info info) { return transport_op(env, info, OP_CLOSE); }
static napi_value js_queued(napi_env env, napi_callback_info info) { return transport_op(env, info, OP_QUEUED); }
static napi_value js_unread(napi_env env, napi_callback_info info) { return transport_op(env, info, OP_UNREAD); }

static napi_value js_link(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[2];
  transport_t *a = handle_args(env, info, 2, 2, argv, &argc, "link(a, b)");
  if (a == NULL) return NULL;
  transport_t *b = get_transport(env, argv[1]);
  if (b == NULL) return NULL;
  if (a == b) return throw_error(env, "ERR_INVALID_ARG_VALUE", "link(): a transport cannot be linked to itself");
  napi_value result;
  if (a->closing || b->closing) { /* closed in the loop; the session hears of it from there */
    napi_get_boolean(env, false, &result);
    return result;
  }
  transport_unlink(a);
  transport_unlink(b);
  a->peer = b;
  b->peer = a;
  a->linked = b->linked = 1;
  napi_get_boolean(env, true, &result);
  return result;
}

static napi_value js_fast(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[3];
  transport_t *t = handle_args(env, info, 2, 3, argv, &argc, "fast(handle, table: Uint8Array(256) | null, maxLength?: number)");
  if (t == NULL) return NULL;
  napi_valuetype table_type;
  napi_typeof(env, argv[1], &table_type);
  napi_value result;
  if (table_type == napi_null) {
    if (t->fast && t->remain > 0) {
      t->slow_requested = 1;
      napi_get_boolean(env, false, &result);
      return result;
    }
    fast_leave(t);
    transport_update(t);
    napi_get_boolean(env, true, &result);
    return result;
  }
  bool is_typed = false;
  napi_typedarray_type type;
  size_t length = 0;
  void *data = NULL;
  double max_len = 0;
  if (napi_is_typedarray(env, argv[1], &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array ||
      length != 256 || argc < 3 || napi_get_value_double(env, argv[2], &max_len) != napi_ok || !(max_len >= 4) ||
      max_len > 4294967295.0)
    return throw_error(env, "ERR_INVALID_ARG_TYPE", "fast(handle, table: Uint8Array(256) | null, maxLength: number in [4, 2^32))");
  if (t->stats == NULL) return throw_error(env, "ERR_FDIO", "fast(): the transport was opened without a stats array");
  if (!t->linked) return throw_error(env, "ERR_FDIO", "fast(): the transport is not linked");
  if (t->closing || t->peer == NULL) { /* it or its peer closed (the session hears of it from the loop) */
    napi_get_boolean(env, false, &result);
    return result;
  }
  memcpy(t->pass, data, 256);
  t->max_len = (uint32_t)max_len;
  t->slow_requested = 0;
  t->fast = 1;
  transport_update(t);
  offload_hint(t);
  napi_get_boolean(env, true, &result);
  return result;
}

/*
 * Sets the ring up (kernel 6.0+: IORING_SETUP_SINGLE_ISSUER) and checks that a receive with
 * MSG_DONTWAIT on an empty socket completes during io_uring_enter with -EAGAIN (batching relies on
 * every operation completing there). 0, or the errno that keeps the ring off.
 */
static int ring_probe(void) {
  int r = ring_setup(&ring, RING_ENTRIES, IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER);
  if (r < 0) return -r;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    int e = errno;
    ring_free(&ring);
    return e;
  }
  char byte;
  ring_prep_io(&ring, IORING_OP_RECV, sv[0], &byte, 1, MSG_DONTWAIT, 7); /* a fresh ring has room */
  int e = 0;
  r = ring_enter(&ring, 1, 0);
  struct io_uring_cqe *cqe = ring_cqe(&ring);
  if (r != 1) e = r < 0 ? -r : EIO;
  else if (cqe == NULL || cqe->user_data != 7 || cqe->res != -EAGAIN) e = EINPROGRESS;
  if (cqe != NULL) ring_cqe_done(&ring);
  close(sv[0]); /* a receive still pending ends with the socket */
  close(sv[1]);
  if (e != 0) ring_free(&ring);
  return e;
}

static void ring_init(napi_env env) {
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return;
  ring_error = ring_probe();
  if (ring_error != 0) return;
  uv_check_init(loop, &batch_check);
  uv_check_start(&batch_check, batch_check_cb);
  uv_unref((uv_handle_t *)&batch_check);
  ring_on = 1;
}

/* The first argument of a call, or NULL when there is none. */
static napi_value first_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  return argc < 1 ? NULL : argv[0];
}

/* The boolean first argument of a call: 1, or 0 after throwing a TypeError that shows `usage`. */
static int bool_arg(napi_env env, napi_callback_info info, const char *usage, bool *out) {
  napi_value arg = first_arg(env, info);
  if (arg != NULL && napi_get_value_bool(env, arg, out) == napi_ok) return 1;
  throw_error(env, "ERR_INVALID_ARG_TYPE", usage);
  return 0;
}

static napi_value boolean(napi_env env, int v) {
  napi_value r;
  napi_get_boolean(env, v, &r);
  return r;
}

static void set_number(napi_env env, napi_value o, const char *name, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, o, name, v);
}

/* ring() -> { available, on, error (errno, 0 when available), enters, operations, coalescingWaits } */
static napi_value js_ring(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o, v;
  napi_create_object(env, &o);
  napi_get_boolean(env, ring.fd >= 0, &v);
  napi_set_named_property(env, o, "available", v);
  napi_get_boolean(env, ring_on, &v);
  napi_set_named_property(env, o, "on", v);
  set_number(env, o, "error", ring_error);
  set_number(env, o, "enters", ring_enters);
  set_number(env, o, "operations", ring_ops);
  set_number(env, o, "coalescingWaits", coalesce_waits);
  return o;
}

/* relayThread() -> { on, running, error (errno, 0 when running or not tried), offloads, returns, recalls, waits, enters, sends, starvations } */
static napi_value js_relay_thread(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o, v;
  napi_create_object(env, &o);
  napi_get_boolean(env, rt.on && rt.state == 1, &v);
  napi_set_named_property(env, o, "on", v);
  napi_get_boolean(env, rt.state == 1, &v);
  napi_set_named_property(env, o, "running", v);
  set_number(env, o, "error", rt.state == -1 ? rt.error : 0);
  set_number(env, o, "offloads", rt.offloads);
  set_number(env, o, "returns", rt.returns);
  set_number(env, o, "recalls", rt.recalled);
  set_number(env, o, "waits", (double)__atomic_load_n(&rt.waits, __ATOMIC_RELAXED));
  set_number(env, o, "enters", (double)__atomic_load_n(&rt.enters, __ATOMIC_RELAXED));
  set_number(env, o, "sends", (double)__atomic_load_n(&rt.sends, __ATOMIC_RELAXED));
  set_number(env, o, "starvations", (double)__atomic_load_n(&rt.starvations, __ATOMIC_RELAXED));
  return o;
}

/*
 * setRelayThread(on[, buffers]) -> whether pass-through pairs now go to the relay thread (started
 * on first use). `buffers` (a power of two up to 128; tests use few to exercise running out of
 * them) sets how many provided buffers the thread gets when this call starts it.
 */
static napi_value js_set_relay_thread(napi_env env, napi_callback_info info) {
  const char *usage = "setRelayThread(on: boolean, buffers?: power of two from 1 to 128)";
  bool on;
  if (!bool_arg(env, info, usage, &on)) return NULL;
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype type = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &type);
  if (type != napi_undefined) {
    double d = 0;
    if (type != napi_number || napi_get_value_double(env, argv[1], &d) != napi_ok || !(d >= 1 && d <= RT_NBUFS) || d != (double)(unsigned)d ||
        ((unsigned)d & ((unsigned)d - 1)) != 0) {
      throw_error(env, "ERR_INVALID_ARG_VALUE", usage);
      return NULL;
    }
    if (rt.state == 0) rt_nbufs = (unsigned)d;
  }
  rt.on = on && rt_start(env) == 0;
  return boolean(env, rt.on);
}

/* hold(h): the loop owns h's pair again (its fast-mode stats are then settled); nothing else. */
static napi_value js_hold(napi_env env, napi_callback_info info) {
  size_t argc;
  napi_value argv[1];
  handle_args(env, info, 1, 1, argv, &argc, "hold(handle)");
  return NULL;
}

/* setRing(on) -> whether batching is now on (it cannot be turned on without a working ring). */
static napi_value js_set_ring(napi_env env, napi_callback_info info) {
  bool on;
  if (!bool_arg(env, info, "setRing(on: boolean)", &on)) return NULL;
  ring_on = on && ring_error == 0;
  return boolean(env, ring_on);
}

static napi_value js_set_call_mode(napi_env env, napi_callback_info info) {
  napi_value arg = first_arg(env, info);
  int32_t m;
  if (arg == NULL || !arg_int(env, arg, &m) || m < 0 || m > 2)
    return throw_error(env, "ERR_INVALID_ARG_VALUE", "setCallMode(0 | 1 | 2)");
  if (m == 2 && drain_setup(env) != 0) return throw_error(env, "ERR_FDIO", "no event loop");
  call_mode = m;
  return NULL;
}

static napi_env owner_env = NULL;

NAPI_MODULE_INIT() {
  /* One read buffer and one call mode per process: the addon serves the thread that loads it
   * first (the main thread), not worker threads. */
  if (owner_env != NULL && owner_env != env) {
    napi_throw_error(env, "ERR_FDIO", "the fdio addon can only be used by one JavaScript thread (the first that loaded it)");
    return NULL;
  }
  owner_env = env;
  struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"splice", js_splice}, {"open", js_open},   {"write", js_write}, {"end", js_end},
      {"pause", js_pause},   {"resume", js_resume}, {"close", js_close}, {"queued", js_queued},
      {"setCallMode", js_set_call_mode}, {"link", js_link}, {"fast", js_fast},
      {"ring", js_ring}, {"setRing", js_set_ring}, {"unread", js_unread},
      {"relayThread", js_relay_thread}, {"setRelayThread", js_set_relay_thread}, {"hold", js_hold},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  if (read_buffer_ref == NULL) {
    ring_init(env);
    napi_add_env_cleanup_hook(env, rt_cleanup, NULL);
    uv_loop_t *loop;
    /* Active only while a transport waits for it: then it keeps the loop alive, as the poll would. */
    if (napi_get_uv_event_loop(env, &loop) == napi_ok && uv_timer_init(loop, &coalesce_timer) == 0) coalesce_timer_ready = 1;
    napi_value buf;
    void *data;
    napi_create_buffer(env, ARENA_SIZE, &data, &buf);
    napi_create_reference(env, buf, 1, &read_buffer_ref);
    read_buffer_data = data;
  }
  napi_value buf;
  napi_get_reference_value(env, read_buffer_ref, &buf);
  napi_set_named_property(env, exports, "readBuffer", buf);
  napi_value size;
  napi_create_int32(env, ARENA_SIZE, &size);
  napi_set_named_property(env, exports, "readSize", size);
  return exports;
}
