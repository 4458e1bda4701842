/*
 * Prints the struct layouts and constants that ffi/layout.ts encodes, as
 * `key=value` lines, for tests/ffi_layout_test.ts to compare against
 * currentLayout(). Linux only (glibc or musl).
 *
 * Keys name the layout field they are compared with: `msghdr.flags` is
 * `layout.msghdr.flags`, `constants.O_CLOEXEC` is `layout.constants.O_CLOEXEC`,
 * `errno.EBADF` is `layout.errno.EBADF`. `cmsg.*` keys are compared with the
 * CMSG helper functions. A constant the headers lack prints as `absent`, and
 * the layout must hold 0 for it ("not available").
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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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

static void print_cmsg(size_t bytes) {
  printf("cmsg.len.%zu=%zu\n", bytes, (size_t)CMSG_LEN(bytes));
  printf("cmsg.space.%zu=%zu\n", bytes, (size_t)CMSG_SPACE(bytes));
}

int main(void) {
  /* struct msghdr. The widths of msg_iovlen and msg_controllen are the gap
   * to the next field: glibc's size_t, or musl's 4-byte field plus its zero
   * pad, which the layout writes as one u64 (abi.md section 1). */
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

  /* struct sockaddr_un. Linux accepts a path that fills sun_path with no NUL
   * (abi.md section 3). */
  PRINT("sockaddrIn.size", sizeof(struct sockaddr_in));
  OFFSET("sockaddrIn", "port", struct sockaddr_in, sin_port);
  OFFSET("sockaddrIn", "address", struct sockaddr_in, sin_addr);
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

  /* struct epoll_event */
  PRINT("epollEvent.size", sizeof(struct epoll_event));
  OFFSET("epollEvent", "events", struct epoll_event, events);
  OFFSET("epollEvent", "data", struct epoll_event, data);

  /* Constants, in the order of the Constants interface. */
  CONSTANT(AF_UNIX);
  CONSTANT(AF_INET);
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
  CONSTANT(SO_SNDBUF);
  CONSTANT(SO_RCVBUF);
#ifdef SO_NOSIGPIPE
  CONSTANT(SO_NOSIGPIPE);
#else
  ABSENT("SO_NOSIGPIPE");
#endif
  CONSTANT(MSG_PEEK);
  CONSTANT(MSG_TRUNC);
  CONSTANT(MSG_CTRUNC);
  CONSTANT(MSG_WAITALL);
  CONSTANT(MSG_DONTWAIT);
  CONSTANT(MSG_EOR);
  CONSTANT(MSG_NOSIGNAL);
  CONSTANT(MSG_CMSG_CLOEXEC);
  CONSTANT(F_DUPFD_CLOEXEC);
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
  /* kqueue does not exist on Linux. */
  ABSENT("EVFILT_READ");
  ABSENT("EVFILT_WRITE");
  ABSENT("EV_ADD");
  ABSENT("EV_DELETE");
  ABSENT("EV_ONESHOT");
  ABSENT("EV_ERROR");
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
