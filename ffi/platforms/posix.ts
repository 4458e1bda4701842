/**
 * What Linux, macOS and FreeBSD share: the constants and errno numbers
 * that POSIX and the historic BSD values fixed alike everywhere, and the
 * structs laid out the same on every LP64 target (sys/uio.h, poll.h,
 * netinet/in.h).
 *
 * @module
 */

import type {
  IovecLayout,
  PollfdLayout,
  SockaddrIn6Layout,
  SockaddrInLayout,
  TimespecLayout,
} from "../types.ts";

/** Constants with the same value on every supported platform. */
export const posixConstants = {
  AF_UNIX: 1,
  AF_INET: 2,
  IPPROTO_IPV6: 41,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOCK_SEQPACKET: 5,
  SCM_RIGHTS: 1,
  MSG_PEEK: 2,
  F_GETFD: 1,
  F_SETFD: 2,
  F_GETFL: 3,
  F_SETFL: 4,
  FD_CLOEXEC: 1,
  O_RDONLY: 0,
  O_WRONLY: 1,
  O_RDWR: 2,
  O_ACCMODE: 3,
  S_IFMT: 0o170000,
  S_IFSOCK: 0o140000,
  S_IFLNK: 0o120000,
  S_IFREG: 0o100000,
  S_IFBLK: 0o060000,
  S_IFDIR: 0o040000,
  S_IFCHR: 0o020000,
  S_IFIFO: 0o010000,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
  POLLIN: 1,
  POLLOUT: 4,
  POLLERR: 8,
  POLLHUP: 0x10,
  POLLNVAL: 0x20,
  SEEK_SET: 0,
  SEEK_CUR: 1,
  PROT_READ: 1,
  PROT_WRITE: 2,
  MAP_SHARED: 1,
  MAP_PRIVATE: 2,
} as const;

/** errno numbers 1 to 34 (but 11: `EAGAIN` on Linux, `EDEADLK` on BSD), the same everywhere. */
export const posixErrno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  ECHILD: 10,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  ERANGE: 34,
} as const;

/** `struct iovec` on LP64. */
export const iovec: IovecLayout = { size: 16, base: 0, len: 8 };

/** `struct timespec` on LP64: a 64-bit `time_t` and a `long`. */
export const timespec: TimespecLayout = { size: 16, seconds: 0, nanoseconds: 8 };

/** `struct pollfd`. */
export const pollfd: PollfdLayout = { size: 8, fd: 0, events: 4, revents: 6 };

/** `struct sockaddr_in`; its family field sits where `sockaddr_un`'s does. */
export const sockaddrIn: SockaddrInLayout = { size: 16, port: 2, address: 4 };

/**
 * `struct sockaddr_in6` (netinet/in.h): the family field (with `sin6_len`
 * on BSD) takes the first two bytes everywhere, so the offsets agree.
 */
export const sockaddrIn6: SockaddrIn6Layout = {
  size: 28,
  port: 2,
  flowinfo: 4,
  address: 8,
  scopeId: 24,
};
