/*
 * Interop peer for tests/interop_test.ts: passes fds over an inherited Unix
 * socket with plain sendmsg/recvmsg, the textbook way (one data byte,
 * CMSG_SPACE, memcpy of the fd array), so that the library is checked
 * against what ordinary C programs do.
 *
 *   c_peer <socket-fd> send <byte> <item>...
 *       Sends one message: the data byte <byte> (a decimal number) and one fd
 *       per item. "p:<text>" is the read end of a pipe holding <text>;
 *       "f:<text>" is an unlinked temporary file holding <text>, at offset 0.
 *   c_peer <socket-fd> recv <max-fds>
 *       Receives one message with room for <max-fds> fds and prints
 *       "bytes=<n> byte=<b> fds=<k> ctrunc=<0|1>", then one line
 *       "fd<i>=<content>" per fd, read from its current offset to the end.
 *
 * Exits 0 on success, 1 on failure (with a message on stderr). An alarm ends
 * the process if the other side never answers.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FDS 253

static void fail(const char *what) {
  perror(what);
  exit(1);
}

static int make_fd(const char *item) {
  const char *text = item + 2;
  size_t length = strlen(text);
  if (strncmp(item, "p:", 2) == 0) {
    int ends[2];
    if (pipe(ends) != 0) fail("pipe");
    if (write(ends[1], text, length) != (ssize_t)length) fail("write");
    close(ends[1]);
    return ends[0];
  }
  if (strncmp(item, "f:", 2) == 0) {
    FILE *file = tmpfile();
    if (file == NULL) fail("tmpfile");
    int fd = dup(fileno(file));
    fclose(file);
    if (fd < 0) fail("dup");
    if (write(fd, text, length) != (ssize_t)length) fail("write");
    if (lseek(fd, 0, SEEK_SET) != 0) fail("lseek");
    return fd;
  }
  fprintf(stderr, "unknown item: %s\n", item);
  exit(1);
}

static int send_fds(int sock, unsigned char byte, const int *fds, int count) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct cmsghdr align;
  } control;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  memset(&control, 0, sizeof control);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
  memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * count);
  return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static void print_content(int index, int fd) {
  char buf[4096];
  printf("fd%d=", index);
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) fail("read");
    if (n == 0) break;
    fwrite(buf, 1, (size_t)n, stdout);
  }
  printf("\n");
}

static int receive(int sock, int max_fds) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct cmsghdr align;
  } control;
  unsigned char byte = 0;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * max_fds);
  ssize_t n = recvmsg(sock, &msg, 0);
  if (n < 0) fail("recvmsg");
  int fds[MAX_FDS];
  int count = 0;
  for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg != NULL; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    int k = (int)((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    if (count + k > MAX_FDS) k = MAX_FDS - count;
    memcpy(fds + count, CMSG_DATA(cmsg), sizeof(int) * (size_t)k);
    count += k;
  }
  printf("bytes=%zd byte=%u fds=%d ctrunc=%d\n", n, byte, count,
         (msg.msg_flags & MSG_CTRUNC) ? 1 : 0);
  for (int i = 0; i < count; i++) {
    print_content(i, fds[i]);
    close(fds[i]);
  }
  return 0;
}

int main(int argc, char **argv) {
  alarm(10);
  if (argc < 4) {
    fprintf(stderr, "usage: c_peer <socket-fd> send <byte> <item>... | recv <max-fds>\n");
    return 1;
  }
  int sock = atoi(argv[1]);
  if (strcmp(argv[2], "send") == 0) {
    int count = argc - 4;
    if (count < 1 || count > MAX_FDS) {
      fprintf(stderr, "send takes 1 to %d items\n", MAX_FDS);
      return 1;
    }
    int fds[MAX_FDS];
    for (int i = 0; i < count; i++) fds[i] = make_fd(argv[4 + i]);
    if (send_fds(sock, (unsigned char)atoi(argv[3]), fds, count) != 0) fail("sendmsg");
    for (int i = 0; i < count; i++) close(fds[i]);
    printf("sent=%d\n", count);
    return 0;
  }
  if (strcmp(argv[2], "recv") == 0) {
    int max_fds = atoi(argv[3]);
    if (max_fds < 0 || max_fds > MAX_FDS) {
      fprintf(stderr, "recv takes 0 to %d fds\n", MAX_FDS);
      return 1;
    }
    return receive(sock, max_fds);
  }
  fprintf(stderr, "unknown command: %s\n", argv[2]);
  return 1;
}
