/*
 * The C reference for the fdpass benchmarks: plain sendmsg/recvmsg with
 * SCM_RIGHTS, written the textbook way (CMSG_SPACE control buffer, memcpy of
 * the fd array, MSG_CMSG_CLOEXEC on receive).
 *
 *   roundtrip <iterations> <fds> <bytes>   send, receive, close, in-process
 *   pingpong <iterations>                  a forked child echoes the fd back
 *   pingpong-epoll <iterations>            the same on nonblocking sockets, both
 *                                          sides waiting in epoll_wait before
 *                                          each recvmsg (an event loop's way)
 *
 * Prints "<ns per operation> <operations>" on stdout.
 *
 * Built with -DROUNDTRIP_SHARED -shared -fPIC, it is a library exporting
 * fdpass_c_roundtrip() for a per-call comparison through Deno.dlopen.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#define MAX_FDS 253

static union {
  char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  struct cmsghdr align;
} send_control, recv_control;

/* Sends `len` bytes from `data` with `nfds` fds attached to the first chunk. */
static int send_fds(int sock, const char *data, size_t len, const int *fds, int nfds) {
  size_t sent = 0;
  while (sent < len) {
    struct iovec iov = {.iov_base = (char *)data + sent, .iov_len = len - sent};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (sent == 0 && nfds > 0) {
      msg.msg_control = send_control.buf;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
      struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
      memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
    }
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n < 0) return -1;
    sent += (size_t)n;
  }
  return 0;
}

/* Receives up to `len` bytes and the fds that come with them; returns the byte count. */
static ssize_t recv_fds(int sock, char *data, size_t len, int *fds, int *nfds) {
  struct iovec iov = {.iov_base = data, .iov_len = len};
  struct msghdr msg = {
      .msg_iov = &iov,
      .msg_iovlen = 1,
      .msg_control = recv_control.buf,
      .msg_controllen = sizeof(recv_control.buf),
  };
  ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  *nfds = 0;
  if (n < 0) return -1;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      memcpy(fds + *nfds, CMSG_DATA(c), sizeof(int) * count);
      *nfds += count;
    }
  }
  return n;
}

/* For Deno.dlopen: one round trip of 1 byte + 1 fd per call. Returns 0 or -1. */
int fdpass_c_roundtrip(int a, int b, int fd) {
  char byte = 'x';
  int received[MAX_FDS];
  int n_received;
  if (send_fds(a, &byte, 1, &fd, 1) < 0) return -1;
  if (recv_fds(b, &byte, 1, received, &n_received) != 1 || n_received != 1) return -1;
  close(received[0]);
  return 0;
}

#ifndef ROUNDTRIP_SHARED
/* Receives `bytes` bytes and closes every fd that comes with them. */
static int recv_all_and_close(int sock, char *data, size_t bytes) {
  int received[MAX_FDS];
  size_t got = 0;
  while (got < bytes) {
    int n_received;
    ssize_t n = recv_fds(sock, data + got, bytes - got, received, &n_received);
    if (n <= 0) return -1;
    for (int i = 0; i < n_received; i++) close(received[i]);
    got += (size_t)n;
  }
  return 0;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int roundtrip(long iterations, int nfds, size_t bytes) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return 1;
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int fds[MAX_FDS];
  for (int i = 0; i < nfds; i++) fds[i] = fd;
  char *out = calloc(bytes, 1);
  char *in = malloc(bytes);
  long warmup = iterations / 10 + 1;
  double start = 0;
  for (long i = -warmup; i < iterations; i++) {
    if (i == 0) start = now_ns();
    if (send_fds(sv[0], out, bytes, fds, nfds) < 0) return perror("sendmsg"), 1;
    if (recv_all_and_close(sv[1], in, bytes) < 0) return perror("recvmsg"), 1;
  }
  double elapsed = now_ns() - start;
  printf("%.1f %ld\n", elapsed / (double)iterations, iterations);
  return 0;
}

/* The parent sends 1 byte + 1 fd; the child sends the received fd back and closes its copy. */
static int pingpong(long iterations) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return 1;
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  char byte = 'x';
  int received[MAX_FDS];
  int n_received;
  pid_t child = fork();
  if (child == 0) {
    close(sv[0]);
    while (recv_fds(sv[1], &byte, 1, received, &n_received) == 1 && n_received == 1) {
      if (send_fds(sv[1], &byte, 1, received, 1) < 0) _exit(1);
      close(received[0]);
    }
    _exit(0);
  }
  close(sv[1]);
  long warmup = iterations / 10 + 1;
  double start = 0;
  for (long i = -warmup; i < iterations; i++) {
    if (i == 0) start = now_ns();
    if (send_fds(sv[0], &byte, 1, &fd, 1) < 0) return perror("sendmsg"), 1;
    if (recv_fds(sv[0], &byte, 1, received, &n_received) != 1 || n_received != 1) {
      return perror("recvmsg"), 1;
    }
    close(received[0]);
  }
  double elapsed = now_ns() - start;
  close(sv[0]);
  waitpid(child, NULL, 0);
  printf("%.1f %ld\n", elapsed / (double)iterations, iterations);
  return 0;
}

/* Waits until `sock` is readable, as an event loop does before it reads. */
static int wait_readable(int epfd) {
  struct epoll_event event;
  for (;;) {
    int n = epoll_wait(epfd, &event, 1, -1);
    if (n == 1) return 0;
    if (n < 0) return -1;
  }
}

/* One epoll instance watching `sock` for input (level-triggered). */
static int epoll_for(int sock) {
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event event = {.events = EPOLLIN, .data.fd = sock};
  if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, sock, &event) < 0) return -1;
  return epfd;
}

/* pingpong with O_NONBLOCK sockets and epoll_wait on both sides. A 1-byte
 * send to an empty socket buffer does not block, so only receives wait. */
static int pingpong_epoll(long iterations) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) return 1;
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  char byte = 'x';
  int received[MAX_FDS];
  int n_received;
  pid_t child = fork();
  if (child == 0) {
    close(sv[0]);
    int epfd = epoll_for(sv[1]);
    if (epfd < 0) _exit(1);
    for (;;) {
      if (wait_readable(epfd) < 0) _exit(1);
      ssize_t n = recv_fds(sv[1], &byte, 1, received, &n_received);
      if (n < 0) continue; /* EAGAIN: woken without data */
      if (n != 1 || n_received != 1) break;
      if (send_fds(sv[1], &byte, 1, received, 1) < 0) _exit(1);
      close(received[0]);
    }
    _exit(0);
  }
  close(sv[1]);
  int epfd = epoll_for(sv[0]);
  if (epfd < 0) return perror("epoll"), 1;
  long warmup = iterations / 10 + 1;
  double start = 0;
  for (long i = -warmup; i < iterations; i++) {
    if (i == 0) start = now_ns();
    if (send_fds(sv[0], &byte, 1, &fd, 1) < 0) return perror("sendmsg"), 1;
    ssize_t n;
    do {
      if (wait_readable(epfd) < 0) return perror("epoll_wait"), 1;
      n = recv_fds(sv[0], &byte, 1, received, &n_received);
    } while (n < 0);
    if (n != 1 || n_received != 1) return perror("recvmsg"), 1;
    close(received[0]);
  }
  double elapsed = now_ns() - start;
  close(sv[0]);
  waitpid(child, NULL, 0);
  printf("%.1f %ld\n", elapsed / (double)iterations, iterations);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "roundtrip") == 0) {
    int nfds = atoi(argv[3]);
    if (nfds < 0 || nfds > MAX_FDS) return 2;
    return roundtrip(atol(argv[2]), nfds, (size_t)atol(argv[4]));
  }
  if (argc == 3 && strcmp(argv[1], "pingpong") == 0) return pingpong(atol(argv[2]));
  if (argc == 3 && strcmp(argv[1], "pingpong-epoll") == 0) return pingpong_epoll(atol(argv[2]));
  fprintf(stderr, "usage: %s roundtrip <iterations> <fds> <bytes> | pingpong[-epoll] <iterations>\n", argv[0]);
  return 2;
}
#endif
