/*
 * uring-poll-check: can an io_uring ring be waited on through its descriptor from another event
 * loop (libuv's epoll, as a uv_poll_t would)? For each setup flag set: arm a receive on a unix
 * socket, epoll_wait on the ring's fd, let a child write to the socket, and report whether epoll
 * saw the ring readable and whether the completion was visible before an io_uring_enter.
 * See docs/adr/0010-node-data-plane-floor.md ("io_uring experiment").
 *
 *   gcc -O2 -o .cache/experiments/uring-poll-check e2e/bench/experiments/uring-poll-check.c
 *   .cache/experiments/uring-poll-check
 */
#define _GNU_SOURCE
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <stdint.h>
#include <errno.h>
#include <sys/wait.h>
static char buf[4096];
static int test(const char *name, unsigned flags) {
  struct io_uring_params p = {0};
  p.flags = flags;
  int fd = syscall(SYS_io_uring_setup, 8, &p);
  if (fd < 0) { perror("setup"); return 1; }
  char *rings = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe) + 4096, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof *sqes, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, fd, IORING_OFF_SQES);
  unsigned *sq_tail = (unsigned*)(rings + p.sq_off.tail), *sq_array = (unsigned*)(rings + p.sq_off.array);
  unsigned *cq_head = (unsigned*)(rings + p.cq_off.head), *cq_tail = (unsigned*)(rings + p.cq_off.tail);
  int sv[2]; socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
  memset(&sqes[0], 0, sizeof sqes[0]);
  sqes[0].opcode = IORING_OP_RECV; sqes[0].fd = sv[0]; sqes[0].addr = (uintptr_t)buf; sqes[0].len = sizeof buf; sqes[0].user_data = 42;
  sq_array[0] = 0; __atomic_store_n(sq_tail, 1, __ATOMIC_RELEASE);
  int r = syscall(SYS_io_uring_enter, fd, 1, 0, 0, NULL, 0);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  struct epoll_event out;
  int n0 = epoll_wait(ep, &out, 1, 0);
  if (fork() == 0) { usleep(100000); write(sv[1], "hello", 5); _exit(0); }
  int n = epoll_wait(ep, &out, 1, 1000); int e1 = n < 0 ? errno : 0; int tries = 1;
  while (n < 0 && errno == EINTR && tries < 5) { n = epoll_wait(ep, &out, 1, 1000); tries++; }
  unsigned before = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE) - *cq_head;
  syscall(SYS_io_uring_enter, fd, 0, 0, IORING_ENTER_GETEVENTS, NULL, 0);
  unsigned after = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE) - *cq_head;
  printf("%-28s submitted=%d ring fd readable before=%d, after the write=%d (first epoll_wait errno %d, %d waits); completions visible before enter=%u, after=%u\n", name, r, n0, n, e1, tries, before, after);
  close(ep); close(sv[0]); close(sv[1]); close(fd);
  while (wait(NULL) > 0) {}
  return 0;
}
int main(void) {
  test("none", 0);
  test("COOP_TASKRUN", IORING_SETUP_COOP_TASKRUN);
  test("COOP|TASKRUN_FLAG", IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
  test("SINGLE_ISSUER|DEFER_TASKRUN", IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
  return 0;
}
