/**
 * Linux layouts (x86_64 and aarch64; glibc and musl).
 *
 * Every value here is checked against the C headers of the machine the tests
 * run on by `tests/c/layout_probe.c`; the aarch64 row differs from x86_64 only
 * in `struct stat`, `struct epoll_event` and two open flags.
 *
 * @module
 */

import type {
  Constants,
  Features,
  IoUringLayout,
  Layout,
  MsghdrLayout,
  PidfsLayout,
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

/** Linux has everything the library can use. */
const features: Features = Object.freeze<Features>({
  seqpacket: true,
  abstractNames: true,
  accept4: true,
  socketFlags: true,
  pipe2: true,
  msgCmsgCloexec: true,
  // No SO_NOSIGPIPE exists: MSG_NOSIGNAL on every send covers sockets (send(2)).
  soNosigpipe: false,
  passCredentials: true,
  memfd: true,
  fileSeals: true,
  eventfd: true,
  epoll: true,
  ioUring: true,
  procSelfFd: true,
});

// One zero-filled layout serves glibc and musl: musl's `int msg_iovlen` and
// `socklen_t msg_controllen` are followed by zero pads, which are the high
// halves of the u64 fields glibc has (docs/abi.md, "struct msghdr").
// struct statfs (asm-generic/statfs.h; the same on x86_64 and aarch64) and
// PID_FS_MAGIC (include/uapi/linux/magic.h).
const pidfs: PidfsLayout = { statfsSize: 120, statfsType: 0, magic: 0x50494446 };

// include/uapi/linux/io_uring.h and asm-generic/unistd.h: the same numbers
// and structs on every architecture.
const ioUring: IoUringLayout = {
  setupSyscall: 425,
  enterSyscall: 426,
  params: { size: 120, sqEntries: 0, cqEntries: 4, flags: 8, features: 20, sqOff: 40, cqOff: 80 },
  sqOffsets: { head: 0, tail: 4, ringMask: 8, array: 24 },
  cqOffsets: { head: 0, tail: 4, ringMask: 8, cqes: 20 },
  sqe: {
    size: 64,
    opcode: 0,
    flags: 1,
    fd: 4,
    off: 8,
    addr: 16,
    len: 24,
    opFlags: 28,
    userData: 32,
  },
  cqe: { size: 16, userData: 0, res: 8 },
  setupCqsize: 1 << 3,
  offSqRing: 0,
  offSqes: 0x10000000,
  opPollAdd: 6,
  opWrite: 23,
  sqeIoHardlink: 1 << 3,
  featSingleMmap: 1 << 0,
  featNodrop: 1 << 1,
  featFastPoll: 1 << 5,
  mapPopulate: 0x8000,
};

const msghdr: MsghdrLayout = {
  size: 56,
  name: 0,
  namelen: 8,
  iov: 16,
  iovlen: 24,
  iovlenSize: 8,
  control: 32,
  controllen: 40,
  controllenSize: 8,
  flags: 48,
};

// Values shared by every Linux architecture (include/uapi/linux/*.h,
// include/linux/socket.h, include/uapi/asm-generic/*.h).
const commonConstants = {
  ...posixConstants,
  AF_INET6: 10,
  SOCK_CLOEXEC: 0x80000,
  SOCK_NONBLOCK: 0x800,
  SOL_SOCKET: 1,
  SCM_CREDENTIALS: 2,
  SO_PASSCRED: 16,
  SO_TYPE: 3,
  SO_REUSEADDR: 2,
  SO_ERROR: 4,
  SO_REUSEPORT: 15,
  SO_ACCEPTCONN: 30,
  IPV6_V6ONLY: 26, // include/uapi/linux/in6.h
  SO_NOSIGPIPE: 0,
  MSG_TRUNC: 0x20,
  MSG_CTRUNC: 0x8,
  MSG_DONTWAIT: 0x40,
  MSG_NOSIGNAL: 0x4000,
  MSG_CMSG_CLOEXEC: 0x40000000,
  F_DUPFD_CLOEXEC: 1030,
  RLIMIT_NOFILE: 7, // include/uapi/asm-generic/resource.h
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  O_TRUNC: 0o1000,
  O_APPEND: 0o2000,
  O_NONBLOCK: 0o4000,
  O_CLOEXEC: 0o2000000,
  MFD_CLOEXEC: 1,
  MFD_ALLOW_SEALING: 2,
  EFD_CLOEXEC: 0o2000000,
  EFD_NONBLOCK: 0o4000,
  EFD_SEMAPHORE: 1,
  EPOLL_CLOEXEC: 0x80000,
  EPOLL_CTL_ADD: 1,
  EPOLL_CTL_DEL: 2,
  EPOLL_CTL_MOD: 3,
  EPOLLIN: 1,
  EPOLLOUT: 4,
  EPOLLERR: 8,
  EPOLLHUP: 0x10,
  EPOLLONESHOT: 1 << 30,
  EPOLLET: 0x80000000,
  PIPE_BUF: 4096,
  F_ADD_SEALS: 1033,
  F_GET_SEALS: 1034,
  F_SEAL_SEAL: 1,
  F_SEAL_SHRINK: 2,
  F_SEAL_GROW: 4,
  F_SEAL_WRITE: 8,
  CLOCK_MONOTONIC: 1, // include/uapi/linux/time.h
} as const satisfies Omit<Constants, "O_DIRECTORY" | "O_NOFOLLOW">;

// include/uapi/asm-generic/errno-base.h and errno.h.
const errno: Readonly<Record<string, number>> = Object.freeze({
  ...posixErrno,
  EAGAIN: 11,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENOTSOCK: 88,
  EDESTADDRREQ: 89,
  EMSGSIZE: 90,
  EPROTOTYPE: 91,
  ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETUNREACH: 101,
  ECONNABORTED: 103,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ETOOMANYREFS: 109,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EALREADY: 114,
  EINPROGRESS: 115,
});

const common = {
  libraryPath: "libc.so.6",
  errnoSymbol: "__errno_location",
  variadicOnStack: false,
  // SCM_MAX_FD (include/net/scm.h): sending 254 fds fails with EINVAL.
  maxFdsPerMessage: 253,
  features,
  msghdr,
  iovec,
  cmsghdr: { size: 16, len: 0, lenSize: 8, level: 8, type: 12, align: 8 },
  sockaddrUn: {
    size: 110,
    lenOffset: -1,
    familyOffset: 0,
    familySize: 2,
    pathOffset: 2,
    // unix(7): a path may fill all of sun_path with no terminating NUL.
    maxPathBytes: 108,
  },
  sockaddrIn,
  sockaddrIn6,
  peerCredentials: {
    level: 1, // SOL_SOCKET
    option: 17, // SO_PEERCRED
    size: 12, // struct ucred {pid, uid, gid}
    versionOffset: -1,
    pidOffset: 0,
    pidOption: -1,
    uidOffset: 4,
    gidOffset: 8,
  },
  ucredSize: 12,
  pollfd,
  timespec,
  ioUring,
  errno,
} as const;

/** Linux x86_64, glibc or musl. */
export const linuxX86_64: Layout = Object.freeze<Layout>({
  ...common,
  name: "linux-x86_64",
  // arch/x86/include/uapi/asm/stat.h.
  stat: { size: 144, dev: 0, devSize: 8, ino: 8, mode: 24, modeSize: 4, fileSize: 48 },
  // include/uapi/linux/eventpoll.h packs the struct on x86_64: data sits at 4.
  epollEvent: { size: 12, events: 0, data: 4 },
  pidfs,
  constants: { ...commonConstants, O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000 },
});

/** Linux aarch64, glibc or musl. */
export const linuxAarch64: Layout = Object.freeze<Layout>({
  ...common,
  name: "linux-aarch64",
  // include/uapi/asm-generic/stat.h.
  stat: { size: 128, dev: 0, devSize: 8, ino: 8, mode: 16, modeSize: 4, fileSize: 48 },
  epollEvent: { size: 16, events: 0, data: 8 },
  pidfs,
  // arch/arm64/include/uapi/asm/fcntl.h swaps these two against x86.
  constants: { ...commonConstants, O_DIRECTORY: 0o40000, O_NOFOLLOW: 0o100000 },
});
