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
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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
  int want = 0;
  if (!t->closing) {
    if (!t->paused && !t->eof && !fast_blocked(t) && !t->coalescing) want |= UV_READABLE;
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

static void transport_close(transport_t *t, int err) {
  if (t->closing) return;
  coalesce_stop(t);
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

/* Writes read_buffer[from, to) to the peer, or drops it when the peer is gone or ending (as
 * write() on it would). 0, or -1 when t was closed because the write failed. */
static int fast_forward(transport_t *t, size_t from, size_t to) {
  transport_t *o = t->peer;
  if (to <= from || o == NULL || o->closing || o->ending) return 0;
  if (in_batch && (o->in_flushes || n_batch_flushes < MAX_BATCH)) { /* sent with the batch */
    if (bytes_append(&o->out, read_buffer_data + from, to - from) != 0) {
      transport_close(o, ENOMEM);
      return 0;
    }
    if (!o->in_flushes) {
      o->in_flushes = 1;
      batch_flushes[n_batch_flushes++] = o;
    }
    return 0;
  }
  int r = write_or_queue(o->fd, &o->out, read_buffer_data + from, to - from);
  if (r < 0) {
    transport_close(o, -r);
    return 0;
  }
  if (o->out.len > 0) transport_update(o); /* POLLOUT; t stops reading until o drains */
  return 0;
}

/*
 * Splits read_buffer[start, end) into messages and forwards those fast mode may pass, in one write
 * per run. Returns where JavaScript takes over (end when it does not), with *deliver set when
 * onData must be called (a hand-over, possibly of zero bytes after fast(h, null)).
 */
static size_t fast_input(transport_t *t, size_t start, size_t end, int *deliver) {
  const uint8_t *b = (const uint8_t *)read_buffer_data;
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
      fast_forward(t, start, p);
      fast_leave(t);
      *deliver = 1;
      t->stats[STAT_PARTIAL] = 0;
      return p;
    }
    if (p == end) break;
    if (end - p < 5) {
      t->hdr_len = (int)(end - p);
      memcpy(t->hdr, b + p, end - p);
      fast_forward(t, start, p);
      t->stats[STAT_PARTIAL] = 0; /* nothing of it was forwarded yet */
      return end;
    }
    uint8_t type = b[p];
    uint32_t len = ((uint32_t)b[p + 1] << 24) | ((uint32_t)b[p + 2] << 16) | ((uint32_t)b[p + 3] << 8) | b[p + 4];
    if (!t->pass[type] || len < 4 || len > t->max_len) {
      fast_forward(t, start, p);
      fast_leave(t);
      *deliver = 1;
      t->stats[STAT_PARTIAL] = 0;
      return p;
    }
    t->stats[type]++;
    t->stream_bytes = type == 'D' || type == 'd' ? t->stream_bytes + len + 1 : 0;
    t->note_status = type == 'Z' && len > 4;
    t->remain = len - 4;
    p += 5;
  }
  fast_forward(t, start, p);
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
    start = fast_input(t, start, end, &deliver);
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

static transport_t *get_transport(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a handle returned by open()");
    return NULL;
  }
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
      break;
    case OP_CLOSE:
      transport_close(t, 0);
      break;
    case OP_UNREAD: { /* received but not read yet: in the kernel, plus a header held back in fast mode */
      int n = 0;
      if (t->closing || ioctl(t->fd, FIONREAD, &n) != 0 || n < 0) n = 0;
      napi_value v;
      napi_create_double(env, (double)n + (double)t->hdr_len, &v);
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

/* setRing(on) -> whether batching is now on (it cannot be turned on without a working ring). */
static napi_value js_set_ring(napi_env env, napi_callback_info info) {
  napi_value arg = first_arg(env, info);
  bool on;
  if (arg == NULL || napi_get_value_bool(env, arg, &on) != napi_ok)
    return throw_error(env, "ERR_INVALID_ARG_TYPE", "setRing(on: boolean)");
  ring_on = on && ring_error == 0;
  napi_value result;
  napi_get_boolean(env, ring_on, &result);
  return result;
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
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  if (read_buffer_ref == NULL) {
    ring_init(env);
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
