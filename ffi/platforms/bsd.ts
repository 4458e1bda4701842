/**
 * macOS and FreeBSD layouts.
 *
 * Taken from the system headers (xnu `bsd/sys/*.h`, freebsd-src `sys/sys/*.h`)
 * compiled as LP64; no test machine runs them, so `tests/ffi_layout_test.ts`
 * checks these rows against values written out a second time.
 *
 * @module
 */

import type {
  CmsghdrLayout,
  Constants,
  Features,
  Layout,
  MsghdrLayout,
  SockaddrUnLayout,
} from "../types.ts";
import {
  iovec,
  pollfd,
  posixConstants,
  posixErrno,
  sockaddrIn,
  sockaddrIn6,
  timespec,
} from "./posix.ts";

// sys/socket.h: `int msg_iovlen` and `socklen_t msg_controllen`, no padding.
const msghdr: MsghdrLayout = {
  size: 48,
  name: 0,
  namelen: 8,
  iov: 16,
  iovlen: 24,
  iovlenSize: 4,
  control: 32,
  controllen: 40,
  controllenSize: 4,
  flags: 44,
};

// sys/socket.h: `socklen_t cmsg_len`; macOS aligns to 4 (`__DARWIN_ALIGN32`).
const cmsghdr: CmsghdrLayout = { size: 12, len: 0, lenSize: 4, level: 4, type: 8, align: 4 };

// sys/un.h: `u8 sun_len`, `u8 sun_family`, `char sun_path[104]`.
const sockaddrUn: SockaddrUnLayout = {
  size: 106,
  lenOffset: 0,
  familyOffset: 1,
  familySize: 1,
  pathOffset: 2,
  // 103 bytes and the NUL.
  maxPathBytes: 103,
};

// Values macOS and FreeBSD share (sys/socket.h, sys/fcntl.h, sys/stat.h,
// sys/poll.h, sys/mman.h, sys/errno.h).
const commonConstants = {
  RLIMIT_NOFILE: 8, // sys/resource.h
  ...posixConstants,
  SOL_SOCKET: 0xffff,
  SCM_CREDENTIALS: 0,
  SO_PASSCRED: 0,
  SO_TYPE: 0x1008,
  SO_REUSEADDR: 4,
  SO_ERROR: 0x1007,
  SO_REUSEPORT: 0x200,
  SO_ACCEPTCONN: 0x2,
  IPV6_V6ONLY: 27, // netinet6/in6.h
  MSG_TRUNC: 0x10,
  MSG_CTRUNC: 0x20,
  MSG_DONTWAIT: 0x80,
  O_CREAT: 0x200,
  O_EXCL: 0x800,
  O_TRUNC: 0x400,
  O_APPEND: 0x8,
  O_NONBLOCK: 0x4,
  O_NOFOLLOW: 0x100,
  EPOLL_CLOEXEC: 0,
  EPOLL_CTL_ADD: 0,
  EPOLL_CTL_DEL: 0,
  EPOLL_CTL_MOD: 0,
  EPOLLIN: 0,
  EPOLLOUT: 0,
  EPOLLERR: 0,
  EPOLLHUP: 0,
  EPOLLONESHOT: 0,
  EPOLLET: 0,
  PIPE_BUF: 512,
} as const satisfies Partial<Constants>;

// macOS and FreeBSD share the BSD numbering below 100; they differ above it.
const commonErrno = {
  ...posixErrno,
  EDEADLK: 11,
  EAGAIN: 35,
  EINPROGRESS: 36,
  EALREADY: 37,
  ENOTSOCK: 38,
  EDESTADDRREQ: 39,
  EMSGSIZE: 40,
  EPROTOTYPE: 41,
  ENOPROTOOPT: 42,
  EPROTONOSUPPORT: 43,
  EAFNOSUPPORT: 47,
  EADDRINUSE: 48,
  EADDRNOTAVAIL: 49,
  ENETUNREACH: 51,
  ECONNABORTED: 53,
  ECONNRESET: 54,
  ENOBUFS: 55,
  EISCONN: 56,
  ENOTCONN: 57,
  ETOOMANYREFS: 59,
  ETIMEDOUT: 60,
  ECONNREFUSED: 61,
  ELOOP: 62,
  ENAMETOOLONG: 63,
  ENOTEMPTY: 66,
  ENOSYS: 78,
} as const;

const common = {
  errnoSymbol: "__error",
  // Linux's limit, kept everywhere so that a message sent here can be
  // received anywhere; macOS delivers up to 254 (docs/abi.md, "Fds per message").
  maxFdsPerMessage: 253,
  msghdr,
  iovec,
  sockaddrUn,
  sockaddrIn,
  // netinet6/in6.h: `u8 sin6_len` and `u8 sin6_family` where Linux has a u16 family.
  sockaddrIn6,
  // No SCM_CREDENTIALS.
  ucredSize: 0,
  pollfd,
  timespec,
  epollEvent: null,
  ioUring: null,
  pidfs: null,
} as const;

/** macOS offers none of the Linux extras. */
const darwinFeatures: Features = Object.freeze<Features>({
  // bsd/kern/uipc_proto.c lists only SOCK_STREAM and SOCK_DGRAM for AF_UNIX.
  seqpacket: false,
  abstractNames: false,
  accept4: false,
  socketFlags: false,
  pipe2: false,
  msgCmsgCloexec: false,
  // MSG_NOSIGNAL is honoured only since macOS 11, and never by write(2).
  soNosigpipe: true,
  passCredentials: false,
  memfd: false,
  fileSeals: false,
  eventfd: false,
  epoll: false,
  ioUring: false,
  procSelfFd: false,
});

/** FreeBSD 13+ has most Linux extras, but no epoll or abstract names. */
const freebsdFeatures: Features = Object.freeze<Features>({
  seqpacket: true,
  abstractNames: false,
  accept4: true,
  socketFlags: true,
  pipe2: true,
  msgCmsgCloexec: true,
  // MSG_NOSIGNAL covers send(2) but not write(2).
  soNosigpipe: true,
  passCredentials: false,
  memfd: true,
  fileSeals: true,
  eventfd: true,
  epoll: false,
  ioUring: false,
  procSelfFd: false,
});

/** macOS on arm64 (Apple silicon). Taken from the xnu headers; not verified on a Mac. */
export const darwinArm64: Layout = Object.freeze<Layout>({
  ...common,
  name: "darwin-aarch64",
  libraryPath: "/usr/lib/libSystem.B.dylib",
  variadicOnStack: true,
  features: darwinFeatures,
  cmsghdr,
  peerCredentials: {
    level: 0, // SOL_LOCAL
    option: 1, // LOCAL_PEERCRED
    size: 76, // struct xucred (sys/ucred.h)
    versionOffset: 0,
    pidOffset: -1,
    pidOption: 2, // LOCAL_PEERPID
    uidOffset: 4,
    gidOffset: 12,
  },
  // 64-bit inode `struct stat` (sys/stat.h).
  stat: { size: 144, dev: 0, devSize: 4, ino: 8, mode: 4, modeSize: 2, fileSize: 96 },
  constants: {
    ...commonConstants,
    AF_INET6: 30,
    SOCK_CLOEXEC: 0,
    SOCK_NONBLOCK: 0,
    SO_NOSIGPIPE: 0x1022,
    MSG_NOSIGNAL: 0x80000,
    MSG_CMSG_CLOEXEC: 0,
    F_DUPFD_CLOEXEC: 67,
    O_CLOEXEC: 0x1000000,
    O_DIRECTORY: 0x100000,
    MFD_CLOEXEC: 0,
    MFD_ALLOW_SEALING: 0,
    EFD_CLOEXEC: 0,
    EFD_NONBLOCK: 0,
    EFD_SEMAPHORE: 0,
    F_ADD_SEALS: 0,
    F_GET_SEALS: 0,
    F_SEAL_SEAL: 0,
    F_SEAL_SHRINK: 0,
    F_SEAL_GROW: 0,
    F_SEAL_WRITE: 0,
    CLOCK_MONOTONIC: 6, // macOS <time.h> (_CLOCK_MONOTONIC)
  },
  errno: Object.freeze({ ...commonErrno, EOPNOTSUPP: 102 }),
});

/** macOS on x86_64: the arm64 layout with the System V variadic convention. */
export const darwinX86_64: Layout = Object.freeze<Layout>({
  ...darwinArm64,
  name: "darwin-x86_64",
  variadicOnStack: false,
});

/** FreeBSD 13+ on amd64. Taken from freebsd-src headers; not verified on FreeBSD. */
export const freebsdX86_64: Layout = Object.freeze<Layout>({
  ...common,
  name: "freebsd-x86_64",
  libraryPath: "libc.so.7",
  variadicOnStack: false,
  features: freebsdFeatures,
  // sys/socket.h aligns cmsgs with `_ALIGN` (8 on amd64), so data sits at 16 as on Linux.
  cmsghdr: { ...cmsghdr, align: 8 },
  peerCredentials: {
    level: 0,
    option: 1, // LOCAL_PEERCRED
    size: 88, // struct xucred (sys/ucred.h), align 8
    versionOffset: 0,
    pidOffset: 80, // cr_pid, FreeBSD 13+
    pidOption: -1,
    uidOffset: 4,
    gidOffset: 12,
  },
  stat: { size: 224, dev: 0, devSize: 8, ino: 8, mode: 24, modeSize: 2, fileSize: 112 },
  constants: {
    ...commonConstants,
    AF_INET6: 28,
    SOCK_CLOEXEC: 0x10000000,
    SOCK_NONBLOCK: 0x20000000,
    SO_NOSIGPIPE: 0x0800,
    MSG_NOSIGNAL: 0x20000,
    MSG_CMSG_CLOEXEC: 0x40000,
    F_DUPFD_CLOEXEC: 17,
    O_CLOEXEC: 0x100000,
    O_DIRECTORY: 0x20000,
    MFD_CLOEXEC: 1,
    MFD_ALLOW_SEALING: 2,
    EFD_CLOEXEC: 0x100000,
    EFD_NONBLOCK: 0x4,
    EFD_SEMAPHORE: 1,
    F_ADD_SEALS: 19,
    F_GET_SEALS: 20,
    F_SEAL_SEAL: 1,
    F_SEAL_SHRINK: 2,
    F_SEAL_GROW: 4,
    F_SEAL_WRITE: 8,
    CLOCK_MONOTONIC: 4, // freebsd-src sys/sys/_clock_id.h
  },
  errno: Object.freeze({ ...commonErrno, EOPNOTSUPP: 45 }),
});
