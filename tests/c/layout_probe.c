/*
 * Prints the struct layouts, constants and features that ffi/platforms/linux.ts
 * encodes, as `key=value` lines, for tests/ffi_layout_test.ts to compare
 * against currentLayout(). Linux only (glibc or musl).
 *
 * Keys name the layout field they are compared with: `msghdr.flags` is
 * `layout.msghdr.flags`, `constants.O_CLOEXEC` is `layout.constants.O_CLOEXEC`,
 * `errno.EBADF` is `layout.errno.EBADF`, `features.memfd` is
 * `layout.features.memfd` (1 or 0). `cmsg.*` keys are compared with the
 * functions of ffi/cmsg.ts. A constant the headers lack prints as `absent`,
 * and the layout must hold the 0 placeholder for it.
 *
 * Features are not read from headers but tried: the probe calls each function
 * and prints 1 only when the call does what the feature promises.
 *
 * Build: cc -O0 -o layout_probe layout_probe.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <linux/io_uring.h>
#include <linux/magic.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <sys/vfs.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef __linux__
#error "layout_probe.c covers the Linux layouts only"
#endif

#define PRINT(key, value) printf("%s=%lld\n", key, (long long)(value))
#define OFFSET(prefix, name, type, field) PRINT(prefix "." name, offsetof(type, field))
#define FIELD_SIZE(type, field) sizeof(((type *)0)->field)
#define CONSTANT(name) PRINT("constants." #name, name)
#define ERRNO(name) PRINT("errno." #name, name)
#define ABSENT(name) printf("constants.%s=absent\n", name)
#define FEATURE(name, works) PRINT("features." name, (works) ? 1 : 0)

static void print_cmsg(size_t bytes) {
  printf("cmsg.len.%zu=%zu\n", bytes, (size_t)CMSG_LEN(bytes));
  printf("cmsg.space.%zu=%zu\n", bytes, (size_t)CMSG_SPACE(bytes));
}

static int has_fd_flag(int fd, int flag) { return (fcntl(fd, F_GETFD) & flag) == flag; }

static int has_status_flag(int fd, int flag) { return (fcntl(fd, F_GETFL) & flag) == flag; }

static void close_pair(int fds[2]) {
  close(fds[0]);
  close(fds[1]);
}

/* unix(7): AF_UNIX takes SOCK_SEQPACKET. */
static int try_seqpacket(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0) return 0;
  close_pair(sv);
  return 1;
}

/* socket(2): the type may carry SOCK_CLOEXEC | SOCK_NONBLOCK. */
static int try_socket_flags(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) return 0;
  int works = has_fd_flag(sv[0], FD_CLOEXEC) && has_status_flag(sv[0], O_NONBLOCK);
  close_pair(sv);
  return works;
}

/* unix(7): binding with only the family autobinds to an abstract name, whose
 * first byte is NUL. */
static int bind_abstract(int fd) {
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  return bind(fd, (struct sockaddr *)&address, sizeof(sa_family_t));
}

static int try_abstract_names(void) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  struct sockaddr_un address;
  socklen_t length = sizeof(address);
  int works = bind_abstract(fd) == 0 &&
              getsockname(fd, (struct sockaddr *)&address, &length) == 0 &&
              length > sizeof(sa_family_t) && address.sun_path[0] == '\0';
  close(fd);
  return works;
}

/* accept4(2): accepts a pending connection with SOCK_CLOEXEC set. */
static int try_accept4(void) {
  int works = 0;
  int listener = socket(AF_UNIX, SOCK_STREAM, 0);
  int client = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un address;
  socklen_t length = sizeof(address);
  if (listener >= 0 && client >= 0 && bind_abstract(listener) == 0 && listen(listener, 1) == 0 &&
      getsockname(listener, (struct sockaddr *)&address, &length) == 0 &&
      connect(client, (struct sockaddr *)&address, length) == 0) {
    int accepted = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (accepted >= 0) {
      works = has_fd_flag(accepted, FD_CLOEXEC);
      close(accepted);
    }
  }
  if (client >= 0) close(client);
  if (listener >= 0) close(listener);
  return works;
}

/* pipe2(2) */
static int try_pipe2(void) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return 0;
  int works = has_fd_flag(fds[0], FD_CLOEXEC) && has_status_flag(fds[1], O_NONBLOCK);
  close_pair(fds);
  return works;
}

/* Sends one byte with `fd` attached (or no fd when fd < 0). */
static int send_byte(int socket_fd, int fd) {
  union {
    struct cmsghdr header;
    unsigned char bytes[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof(control));
  char byte = 'x';
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr message = {.msg_iov = &iov, .msg_iovlen = 1};
  if (fd >= 0) {
    message.msg_control = control.bytes;
    message.msg_controllen = CMSG_SPACE(sizeof(int));
    control.header.cmsg_len = CMSG_LEN(sizeof(int));
    control.header.cmsg_level = SOL_SOCKET;
    control.header.cmsg_type = SCM_RIGHTS;
    memcpy(CMSG_DATA(&control.header), &fd, sizeof(int));
  }
  return sendmsg(socket_fd, &message, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/* Receives one byte and returns the first cmsg, copied into `header_out`,
 * with its first data int in `*data_out`; -1 when there is none. */
static int receive_byte(int socket_fd, int flags, struct cmsghdr *header_out, int *data_out) {
  union {
    struct cmsghdr header;
    unsigned char bytes[256];
  } control;
  memset(&control, 0, sizeof(control));
  char byte;
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr message = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = control.bytes,
                           .msg_controllen = sizeof(control.bytes)};
  if (recvmsg(socket_fd, &message, flags) != 1) return -1;
  struct cmsghdr *first = CMSG_FIRSTHDR(&message);
  if (first == NULL) return -1;
  *header_out = *first;
  memcpy(data_out, CMSG_DATA(first), sizeof(int));
  return 0;
}

/* recvmsg(2): MSG_CMSG_CLOEXEC sets FD_CLOEXEC on the fds received. */
static int try_msg_cmsg_cloexec(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 0;
  int works = 0;
  struct cmsghdr header;
  int fd;
  if (send_byte(sv[0], sv[0]) == 0 &&
      receive_byte(sv[1], MSG_CMSG_CLOEXEC, &header, &fd) == 0 && header.cmsg_type == SCM_RIGHTS) {
    works = has_fd_flag(fd, FD_CLOEXEC);
    close(fd);
  }
  close_pair(sv);
  return works;
}

/* unix(7): with SO_PASSCRED on, every message carries SCM_CREDENTIALS. */
static int try_pass_credentials(void) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 0;
  int on = 1;
  struct cmsghdr header;
  int pid;
  int works = setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) == 0 &&
              send_byte(sv[0], -1) == 0 && receive_byte(sv[1], 0, &header, &pid) == 0 &&
              header.cmsg_type == SCM_CREDENTIALS && pid == getpid();
  close_pair(sv);
  return works;
}

/* memfd_create(2), and fcntl(2) file seals on the memfd. */
static int try_memfd(int *seals_work) {
  *seals_work = 0;
  int fd = memfd_create("layout_probe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return 0;
  *seals_work = fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0 &&
                (fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE) == F_SEAL_WRITE;
  close(fd);
  return 1;
}

/* eventfd(2) */
static int try_eventfd(void) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return 0;
  close(fd);
  return 1;
}

/* epoll_create1(2) */
static int try_epoll(void) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return 0;
  close(fd);
  return 1;
}

/* proc(5): /proc/self/fd/N is a link naming the open file. */
static int try_proc_self_fd(void) {
  int fds[2];
  if (pipe(fds) != 0) return 0;
  char path[64];
  char target[64];
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
  ssize_t length = readlink(path, target, sizeof(target) - 1);
  close_pair(fds);
  return length > 5 && strncmp(target, "pipe:", 5) == 0;
}

static void print_features(void) {
  int seals_work;
  FEATURE("seqpacket", try_seqpacket());
  FEATURE("abstractNames", try_abstract_names());
  FEATURE("accept4", try_accept4());
  FEATURE("socketFlags", try_socket_flags());
  FEATURE("pipe2", try_pipe2());
  FEATURE("msgCmsgCloexec", try_msg_cmsg_cloexec());
  /* Linux has no SO_NOSIGPIPE: MSG_NOSIGNAL is enough (send(2)). */
#ifdef SO_NOSIGPIPE
  FEATURE("soNosigpipe", 1);
#else
  FEATURE("soNosigpipe", 0);
#endif
  FEATURE("passCredentials", try_pass_credentials());
  FEATURE("memfd", try_memfd(&seals_work));
  FEATURE("fileSeals", seals_work);
  FEATURE("eventfd", try_eventfd());
  FEATURE("epoll", try_epoll());
  FEATURE("procSelfFd", try_proc_self_fd());
  /* The headers have it; whether the kernel allows it is decided at run time. */
  FEATURE("ioUring", 1);
}

int main(void) {
  /* struct msghdr. The widths of msg_iovlen and msg_controllen are the gap
   * to the next field: glibc's size_t, or musl's 4-byte field plus its zero
   * pad, which the layout writes as one u64 (docs/abi.md, "struct msghdr"). */
  PRINT("msghdr.size", sizeof(struct msghdr));
  OFFSET("msghdr", "name", struct msghdr, msg_name);
  OFFSET("msghdr", "namelen", struct msghdr, msg_namelen);
  OFFSET("msghdr", "iov", struct msghdr, msg_iov);
  OFFSET("msghdr", "iovlen", struct msghdr, msg_iovlen);
  PRINT("msghdr.iovlenSize",
        offsetof(struct msghdr, msg_control) - offsetof(struct msghdr, msg_iovlen));
  OFFSET("msghdr", "control", struct msghdr, msg_control);
  OFFSET("msghdr", "controllen", struct msghdr, msg_controllen);
  PRINT("msghdr.controllenSize",
        offsetof(struct msghdr, msg_flags) - offsetof(struct msghdr, msg_controllen));
  OFFSET("msghdr", "flags", struct msghdr, msg_flags);

  /* struct iovec */
  PRINT("iovec.size", sizeof(struct iovec));
  OFFSET("iovec", "base", struct iovec, iov_base);
  OFFSET("iovec", "len", struct iovec, iov_len);

  /* struct cmsghdr and the CMSG macros */
  PRINT("cmsghdr.size", sizeof(struct cmsghdr));
  OFFSET("cmsghdr", "len", struct cmsghdr, cmsg_len);
  PRINT("cmsghdr.lenSize",
        offsetof(struct cmsghdr, cmsg_level) - offsetof(struct cmsghdr, cmsg_len));
  OFFSET("cmsghdr", "level", struct cmsghdr, cmsg_level);
  OFFSET("cmsghdr", "type", struct cmsghdr, cmsg_type);
  /* CMSG_SPACE(1) = data offset + CMSG_ALIGN(1) = data offset + alignment. */
  PRINT("cmsghdr.align", CMSG_SPACE(1) - CMSG_LEN(0));
  {
    union {
      struct cmsghdr header;
      unsigned char bytes[64];
    } buffer;
    PRINT("cmsg.dataOffset", CMSG_DATA(&buffer.header) - buffer.bytes);
  }
  /* 0..256 bytes covers 1..64 fds and sizeof(struct ucred). */
  for (size_t bytes = 0; bytes <= 256; bytes++) print_cmsg(bytes);
  print_cmsg(253 * sizeof(int));
  print_cmsg(254 * sizeof(int));

  /* struct sockaddr_in and struct sockaddr_in6 (ip(7), ipv6(7)) */
  PRINT("sockaddrIn.size", sizeof(struct sockaddr_in));
  OFFSET("sockaddrIn", "port", struct sockaddr_in, sin_port);
  OFFSET("sockaddrIn", "address", struct sockaddr_in, sin_addr);
  PRINT("sockaddrIn6.size", sizeof(struct sockaddr_in6));
  OFFSET("sockaddrIn6", "port", struct sockaddr_in6, sin6_port);
  OFFSET("sockaddrIn6", "flowinfo", struct sockaddr_in6, sin6_flowinfo);
  OFFSET("sockaddrIn6", "address", struct sockaddr_in6, sin6_addr);
  OFFSET("sockaddrIn6", "scopeId", struct sockaddr_in6, sin6_scope_id);

  /* struct sockaddr_un. unix(7): Linux accepts a path that fills sun_path
   * with no NUL. */
  PRINT("sockaddrUn.size", sizeof(struct sockaddr_un));
  OFFSET("sockaddrUn", "familyOffset", struct sockaddr_un, sun_family);
  PRINT("sockaddrUn.familySize", FIELD_SIZE(struct sockaddr_un, sun_family));
  OFFSET("sockaddrUn", "pathOffset", struct sockaddr_un, sun_path);
  PRINT("sockaddrUn.maxPathBytes", FIELD_SIZE(struct sockaddr_un, sun_path));

  /* struct ucred and SO_PEERCRED */
  PRINT("peerCredentials.level", SOL_SOCKET);
  PRINT("peerCredentials.option", SO_PEERCRED);
  PRINT("peerCredentials.size", sizeof(struct ucred));
  OFFSET("peerCredentials", "pidOffset", struct ucred, pid);
  OFFSET("peerCredentials", "uidOffset", struct ucred, uid);
  OFFSET("peerCredentials", "gidOffset", struct ucred, gid);
  PRINT("ucredSize", sizeof(struct ucred));

  /* struct stat */
  PRINT("stat.size", sizeof(struct stat));
  OFFSET("stat", "dev", struct stat, st_dev);
  PRINT("stat.devSize", FIELD_SIZE(struct stat, st_dev));
  OFFSET("stat", "ino", struct stat, st_ino);
  OFFSET("stat", "mode", struct stat, st_mode);
  PRINT("stat.modeSize", FIELD_SIZE(struct stat, st_mode));
  OFFSET("stat", "fileSize", struct stat, st_size);

  /* struct pollfd */
  PRINT("pollfd.size", sizeof(struct pollfd));
  OFFSET("pollfd", "fd", struct pollfd, fd);
  OFFSET("pollfd", "events", struct pollfd, events);
  OFFSET("pollfd", "revents", struct pollfd, revents);

  /* struct timespec (time.h) */
  PRINT("timespec.size", sizeof(struct timespec));
  OFFSET("timespec", "seconds", struct timespec, tv_sec);
  OFFSET("timespec", "nanoseconds", struct timespec, tv_nsec);

  /* pidfs: struct statfs (sys/vfs.h) and PID_FS_MAGIC (linux/magic.h, 6.9+) */
  PRINT("pidfs.statfsSize", sizeof(struct statfs));
  OFFSET("pidfs", "statfsType", struct statfs, f_type);
#ifndef PID_FS_MAGIC
#define PID_FS_MAGIC 0x50494446 /* include/uapi/linux/magic.h, newer than these headers */
#endif
  PRINT("pidfs.magic", PID_FS_MAGIC);

  /* struct epoll_event (include/uapi/linux/eventpoll.h) */
  PRINT("epollEvent.size", sizeof(struct epoll_event));
  OFFSET("epollEvent", "events", struct epoll_event, events);
  OFFSET("epollEvent", "data", struct epoll_event, data);

  /* io_uring (include/uapi/linux/io_uring.h, asm-generic/unistd.h) */
  PRINT("ioUring.setupSyscall", __NR_io_uring_setup);
  PRINT("ioUring.enterSyscall", __NR_io_uring_enter);
  PRINT("ioUring.params.size", sizeof(struct io_uring_params));
  OFFSET("ioUring.params", "sqEntries", struct io_uring_params, sq_entries);
  OFFSET("ioUring.params", "cqEntries", struct io_uring_params, cq_entries);
  OFFSET("ioUring.params", "flags", struct io_uring_params, flags);
  OFFSET("ioUring.params", "features", struct io_uring_params, features);
  OFFSET("ioUring.params", "sqOff", struct io_uring_params, sq_off);
  OFFSET("ioUring.params", "cqOff", struct io_uring_params, cq_off);
  OFFSET("ioUring.sqOffsets", "head", struct io_sqring_offsets, head);
  OFFSET("ioUring.sqOffsets", "tail", struct io_sqring_offsets, tail);
  OFFSET("ioUring.sqOffsets", "ringMask", struct io_sqring_offsets, ring_mask);
  OFFSET("ioUring.sqOffsets", "array", struct io_sqring_offsets, array);
  OFFSET("ioUring.cqOffsets", "head", struct io_cqring_offsets, head);
  OFFSET("ioUring.cqOffsets", "tail", struct io_cqring_offsets, tail);
  OFFSET("ioUring.cqOffsets", "ringMask", struct io_cqring_offsets, ring_mask);
  OFFSET("ioUring.cqOffsets", "cqes", struct io_cqring_offsets, cqes);
  PRINT("ioUring.sqe.size", sizeof(struct io_uring_sqe));
  OFFSET("ioUring.sqe", "opcode", struct io_uring_sqe, opcode);
  OFFSET("ioUring.sqe", "flags", struct io_uring_sqe, flags);
  OFFSET("ioUring.sqe", "fd", struct io_uring_sqe, fd);
  OFFSET("ioUring.sqe", "off", struct io_uring_sqe, off);
  OFFSET("ioUring.sqe", "addr", struct io_uring_sqe, addr);
  OFFSET("ioUring.sqe", "len", struct io_uring_sqe, len);
  OFFSET("ioUring.sqe", "opFlags", struct io_uring_sqe, poll32_events);
  OFFSET("ioUring.sqe", "userData", struct io_uring_sqe, user_data);
  PRINT("ioUring.cqe.size", sizeof(struct io_uring_cqe));
  OFFSET("ioUring.cqe", "userData", struct io_uring_cqe, user_data);
  OFFSET("ioUring.cqe", "res", struct io_uring_cqe, res);
  PRINT("ioUring.setupCqsize", IORING_SETUP_CQSIZE);
  PRINT("ioUring.offSqRing", IORING_OFF_SQ_RING);
  PRINT("ioUring.offSqes", IORING_OFF_SQES);
  PRINT("ioUring.opPollAdd", IORING_OP_POLL_ADD);
  PRINT("ioUring.opWrite", IORING_OP_WRITE);
  PRINT("ioUring.sqeIoHardlink", IOSQE_IO_HARDLINK);
  PRINT("ioUring.featSingleMmap", IORING_FEAT_SINGLE_MMAP);
  PRINT("ioUring.featNodrop", IORING_FEAT_NODROP);
  PRINT("ioUring.featFastPoll", IORING_FEAT_FAST_POLL);
  PRINT("ioUring.mapPopulate", MAP_POPULATE);

  /* Constants, in the order of the Constants interface. */
  CONSTANT(AF_UNIX);
  CONSTANT(AF_INET);
  CONSTANT(AF_INET6);
  CONSTANT(SOCK_STREAM);
  CONSTANT(SOCK_DGRAM);
  CONSTANT(SOCK_SEQPACKET);
  CONSTANT(SOCK_CLOEXEC);
  CONSTANT(SOCK_NONBLOCK);
  CONSTANT(SOL_SOCKET);
  CONSTANT(SCM_RIGHTS);
  CONSTANT(SCM_CREDENTIALS);
  CONSTANT(SO_PASSCRED);
  CONSTANT(SO_TYPE);
  CONSTANT(SO_REUSEADDR);
  CONSTANT(SO_ERROR);
  CONSTANT(SO_REUSEPORT);
  CONSTANT(SO_ACCEPTCONN);
  CONSTANT(IPPROTO_IPV6);
  CONSTANT(IPV6_V6ONLY);
#ifdef SO_NOSIGPIPE
  CONSTANT(SO_NOSIGPIPE);
#else
  ABSENT("SO_NOSIGPIPE");
#endif
  CONSTANT(MSG_PEEK);
  CONSTANT(MSG_TRUNC);
  CONSTANT(MSG_CTRUNC);
  CONSTANT(MSG_DONTWAIT);
  CONSTANT(MSG_NOSIGNAL);
  CONSTANT(MSG_CMSG_CLOEXEC);
  CONSTANT(F_DUPFD_CLOEXEC);
  CONSTANT(RLIMIT_NOFILE);
  CONSTANT(F_GETFD);
  CONSTANT(F_SETFD);
  CONSTANT(F_GETFL);
  CONSTANT(F_SETFL);
  CONSTANT(FD_CLOEXEC);
  CONSTANT(O_RDONLY);
  CONSTANT(O_WRONLY);
  CONSTANT(O_RDWR);
  CONSTANT(O_ACCMODE);
  CONSTANT(O_CREAT);
  CONSTANT(O_EXCL);
  CONSTANT(O_TRUNC);
  CONSTANT(O_APPEND);
  CONSTANT(O_NONBLOCK);
  CONSTANT(O_CLOEXEC);
  CONSTANT(O_DIRECTORY);
  CONSTANT(O_NOFOLLOW);
  CONSTANT(S_IFMT);
  CONSTANT(S_IFSOCK);
  CONSTANT(S_IFLNK);
  CONSTANT(S_IFREG);
  CONSTANT(S_IFBLK);
  CONSTANT(S_IFDIR);
  CONSTANT(S_IFCHR);
  CONSTANT(S_IFIFO);
  CONSTANT(SHUT_RD);
  CONSTANT(SHUT_WR);
  CONSTANT(SHUT_RDWR);
  CONSTANT(POLLIN);
  CONSTANT(POLLOUT);
  CONSTANT(POLLERR);
  CONSTANT(POLLHUP);
  CONSTANT(POLLNVAL);
  CONSTANT(SEEK_SET);
  CONSTANT(SEEK_CUR);
  CONSTANT(MFD_CLOEXEC);
  CONSTANT(MFD_ALLOW_SEALING);
  CONSTANT(EFD_CLOEXEC);
  CONSTANT(EFD_NONBLOCK);
  CONSTANT(EFD_SEMAPHORE);
  CONSTANT(EPOLL_CLOEXEC);
  CONSTANT(EPOLL_CTL_ADD);
  CONSTANT(EPOLL_CTL_DEL);
  CONSTANT(EPOLL_CTL_MOD);
  CONSTANT(EPOLLIN);
  CONSTANT(EPOLLOUT);
  CONSTANT(EPOLLERR);
  CONSTANT(EPOLLHUP);
  CONSTANT(EPOLLONESHOT);
  CONSTANT(EPOLLET);
  CONSTANT(PROT_READ);
  CONSTANT(PROT_WRITE);
  CONSTANT(MAP_SHARED);
  CONSTANT(MAP_PRIVATE);
  CONSTANT(PIPE_BUF);
  CONSTANT(F_ADD_SEALS);
  CONSTANT(F_GET_SEALS);
  CONSTANT(F_SEAL_SEAL);
  CONSTANT(F_SEAL_SHRINK);
  CONSTANT(F_SEAL_GROW);
  CONSTANT(F_SEAL_WRITE);
  CONSTANT(CLOCK_MONOTONIC);

  print_features();

  /* errno numbers: every name in the layout's errno table. */
  ERRNO(EPERM);
  ERRNO(ENOENT);
  ERRNO(ESRCH);
  ERRNO(EINTR);
  ERRNO(EIO);
  ERRNO(ENXIO);
  ERRNO(E2BIG);
  ERRNO(EBADF);
  ERRNO(ECHILD);
  ERRNO(EAGAIN);
  ERRNO(ENOMEM);
  ERRNO(EACCES);
  ERRNO(EFAULT);
  ERRNO(EBUSY);
  ERRNO(EEXIST);
  ERRNO(EXDEV);
  ERRNO(ENODEV);
  ERRNO(ENOTDIR);
  ERRNO(EISDIR);
  ERRNO(EINVAL);
  ERRNO(ENFILE);
  ERRNO(EMFILE);
  ERRNO(ENOTTY);
  ERRNO(ETXTBSY);
  ERRNO(EFBIG);
  ERRNO(ENOSPC);
  ERRNO(ESPIPE);
  ERRNO(EROFS);
  ERRNO(EMLINK);
  ERRNO(EPIPE);
  ERRNO(ERANGE);
  ERRNO(ENAMETOOLONG);
  ERRNO(ENOSYS);
  ERRNO(ENOTEMPTY);
  ERRNO(ELOOP);
  ERRNO(ENOTSOCK);
  ERRNO(EDESTADDRREQ);
  ERRNO(EMSGSIZE);
  ERRNO(EPROTOTYPE);
  ERRNO(ENOPROTOOPT);
  ERRNO(EPROTONOSUPPORT);
  ERRNO(EOPNOTSUPP);
  ERRNO(EAFNOSUPPORT);
  ERRNO(EADDRINUSE);
  ERRNO(EADDRNOTAVAIL);
  ERRNO(ENETUNREACH);
  ERRNO(ECONNABORTED);
  ERRNO(ECONNRESET);
  ERRNO(ENOBUFS);
  ERRNO(EISCONN);
  ERRNO(ENOTCONN);
  ERRNO(ETOOMANYREFS);
  ERRNO(ETIMEDOUT);
  ERRNO(ECONNREFUSED);
  ERRNO(EALREADY);
  ERRNO(EINPROGRESS);
  return 0;
}
