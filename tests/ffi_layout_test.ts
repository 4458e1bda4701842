/**
 * Unit tests for the ffi/ layer: the per-platform rows of ffi/platforms/*.ts
 * against values written out a second time below (from the system headers,
 * kernel sources and man pages named beside them, so that a wrong edit to a
 * row fails here), the features against the constants they gate, the CMSG
 * arithmetic of ffi/cmsg.ts against CPython's `CmsgMacroTests`, the running
 * platform's row against this machine's C headers and kernel
 * (tests/c/layout_probe.c, compiled at test time when `cc` is present), and
 * the lazily opened libc context.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertGreater,
  assertGreaterOrEqual,
  assertLessOrEqual,
  assertStrictEquals,
} from "@std/assert";
import {
  cmsgAlign,
  cmsgDataOffset,
  cmsgLen,
  cmsgSpace,
  FD_SIZE,
  receiveControlCapacity,
} from "../ffi/cmsg.ts";
import {
  type CmsghdrLayout,
  type Constants,
  currentLayout,
  type EpollEventLayout,
  type Features,
  type IoUringLayout,
  type IovecLayout,
  type Layout,
  layouts,
  type MsghdrLayout,
  type PeerCredentialsLayout,
  type PidfsLayout,
  platformKey,
  type PollfdLayout,
  type SockaddrInLayout,
  type SockaddrUnLayout,
  type TimespecLayout,
} from "../ffi/layout.ts";
import type { SockaddrIn6Layout } from "../ffi/types.ts";
import { libc } from "../ffi/libc.ts";
import { darwinArm64, darwinX86_64, freebsdX86_64 } from "../ffi/platforms/bsd.ts";
import { linuxAarch64, linuxX86_64 } from "../ffi/platforms/linux.ts";
import { hasCommand, leakCheckedTest } from "./helpers.ts";

type Platform =
  | "linux-x86_64"
  | "linux-aarch64"
  | "darwin-aarch64"
  | "darwin-x86_64"
  | "freebsd-x86_64";

const PLATFORMS: readonly Platform[] = [
  "linux-x86_64",
  "linux-aarch64",
  "darwin-aarch64",
  "darwin-x86_64",
  "freebsd-x86_64",
];

/** The exported name of each platform's row, for test names. */
const EXPORT_NAMES: Readonly<Record<Platform, string>> = {
  "linux-x86_64": "linuxX86_64",
  "linux-aarch64": "linuxAarch64",
  "darwin-aarch64": "darwinArm64",
  "darwin-x86_64": "darwinX86_64",
  "freebsd-x86_64": "freebsdX86_64",
};

/** The expected values for one platform, written out apart from ffi/platforms/. */
interface Expected {
  libraryPath: string;
  errnoSymbol: "__errno_location" | "__error";
  features: Features;
  msghdr: MsghdrLayout;
  iovec: IovecLayout;
  cmsghdr: CmsghdrLayout;
  cmsgDataOffset: number;
  /** CMSG_LEN / CMSG_SPACE for n fds. */
  cmsgForFds: Readonly<Record<1 | 2 | 3 | 253, readonly [len: number, space: number]>>;
  sockaddrUn: SockaddrUnLayout;
  sockaddrIn: SockaddrInLayout;
  sockaddrIn6: SockaddrIn6Layout;
  peerCredentials: PeerCredentialsLayout;
  ucredSize: number;
  /** The 0 placeholder where the platform lacks the constant. */
  constants: Partial<Constants>;
  pollfd: PollfdLayout;
  timespec: TimespecLayout;
  errno: Readonly<Record<string, number>>;
  epollEvent: EpollEventLayout | null;
  ioUring: IoUringLayout | null;
  pidfs: PidfsLayout | null;
  /** The kernel's per-message fd limit. */
  kernelMaxFds: number;
}

// --- struct msghdr and struct iovec (sys/socket.h, sys/uio.h) ---

const LINUX_MSGHDR: MsghdrLayout = {
  size: 56,
  name: 0,
  namelen: 8,
  iov: 16,
  iovlen: 24,
  iovlenSize: 8, // glibc size_t; musl int + zero pad, written as one u64
  control: 32,
  controllen: 40,
  controllenSize: 8, // glibc size_t; musl socklen_t + zero pad
  flags: 48,
};

const BSD_MSGHDR: MsghdrLayout = {
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

const IOVEC: IovecLayout = { size: 16, base: 0, len: 8 };

// --- struct cmsghdr and the CMSG macros (cmsg(3); docs/abi.md) ---

const LINUX_CMSGHDR: CmsghdrLayout = { size: 16, len: 0, lenSize: 8, level: 8, type: 12, align: 8 };
// xnu bsd/sys/socket.h: __DARWIN_ALIGN32.
const MACOS_CMSGHDR: CmsghdrLayout = { size: 12, len: 0, lenSize: 4, level: 4, type: 8, align: 4 };
// freebsd-src sys/sys/socket.h: _ALIGN is sizeof(register_t).
const FREEBSD_CMSGHDR: CmsghdrLayout = {
  size: 12,
  len: 0,
  lenSize: 4,
  level: 4,
  type: 8,
  align: 8,
};

const LINUX_CMSG_FOR_FDS = { 1: [20, 24], 2: [24, 24], 3: [28, 32], 253: [1028, 1032] } as const;
const MACOS_CMSG_FOR_FDS = { 1: [16, 16], 2: [20, 20], 3: [24, 24], 253: [1024, 1024] } as const;
const FREEBSD_CMSG_FOR_FDS = { 1: [20, 24], 2: [24, 24], 3: [28, 32], 253: [1028, 1032] } as const;

// --- socket addresses (unix(7), ip(7), ipv6(7); sys/un.h, netinet/in.h) ---

const LINUX_SOCKADDR_UN: SockaddrUnLayout = {
  size: 110,
  lenOffset: -1,
  familyOffset: 0,
  familySize: 2,
  pathOffset: 2,
  maxPathBytes: 108, // all 108 bytes with no NUL are accepted; 109 gives EINVAL
};

const BSD_SOCKADDR_UN: SockaddrUnLayout = {
  size: 106,
  lenOffset: 0,
  familyOffset: 1,
  familySize: 1,
  pathOffset: 2,
  // sun_path[104]: the library keeps one byte for the NUL.
  maxPathBytes: 103,
};

const SOCKADDR_IN: SockaddrInLayout = { size: 16, port: 2, address: 4 };
// The same on all three: BSD's u8 sin6_len + u8 sin6_family fill Linux's u16 family.
const SOCKADDR_IN6: SockaddrIn6Layout = {
  size: 28,
  port: 2,
  flowinfo: 4,
  address: 8,
  scopeId: 24,
};
// --- peer credentials (unix(7) SO_PEERCRED; sys/ucred.h on BSD) ---

const LINUX_PEER_CREDENTIALS: PeerCredentialsLayout = {
  level: 1, // SOL_SOCKET
  option: 17, // SO_PEERCRED
  size: 12, // struct ucred {pid @0, uid @4, gid @8}
  versionOffset: -1,
  pidOffset: 0,
  pidOption: -1,
  uidOffset: 4,
  gidOffset: 8,
};

const MACOS_PEER_CREDENTIALS: PeerCredentialsLayout = {
  level: 0, // SOL_LOCAL
  option: 1, // LOCAL_PEERCRED
  size: 76, // struct xucred
  versionOffset: 0, // cr_version, must be XUCRED_VERSION = 0
  pidOffset: -1,
  pidOption: 2, // LOCAL_PEERPID
  uidOffset: 4,
  gidOffset: 12, // cr_groups[0], the effective gid
};

const FREEBSD_PEER_CREDENTIALS: PeerCredentialsLayout = {
  level: 0,
  option: 1, // LOCAL_PEERCRED
  size: 88, // struct xucred, align 8
  versionOffset: 0,
  pidOffset: 80, // cr_pid (FreeBSD 13+)
  pidOption: -1,
  uidOffset: 4,
  gidOffset: 12,
};

// --- features ---

const LINUX_FEATURES: Features = {
  seqpacket: true,
  abstractNames: true,
  accept4: true,
  socketFlags: true,
  pipe2: true,
  msgCmsgCloexec: true,
  soNosigpipe: false, // there is no SO_NOSIGPIPE; MSG_NOSIGNAL does the job
  passCredentials: true,
  memfd: true,
  fileSeals: true,
  eventfd: true,
  epoll: true,
  procSelfFd: true,
  ioUring: true, // may exist: the poller tries it at run time
};

const MACOS_FEATURES: Features = {
  seqpacket: false, // bsd/kern/uipc_proto.c lists only STREAM and DGRAM
  abstractNames: false,
  accept4: false,
  socketFlags: false,
  pipe2: false,
  msgCmsgCloexec: false,
  soNosigpipe: true,
  passCredentials: false,
  memfd: false,
  fileSeals: false,
  eventfd: false,
  epoll: false,
  procSelfFd: false,
  ioUring: false,
};

const FREEBSD_FEATURES: Features = {
  seqpacket: true,
  abstractNames: false,
  accept4: true,
  socketFlags: true,
  pipe2: true,
  msgCmsgCloexec: true,
  soNosigpipe: true,
  passCredentials: false,
  memfd: true,
  fileSeals: true,
  eventfd: true,
  epoll: false,
  procSelfFd: false,
  ioUring: false,
};

// --- constants (include/uapi/linux/*.h; xnu and freebsd-src sys/*.h) ---

const SHARED_CONSTANTS: Partial<Constants> = {
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
  FD_CLOEXEC: 1,
  F_GETFL: 3,
  F_SETFL: 4,
  POLLIN: 1,
  POLLOUT: 4,
  POLLERR: 8,
  POLLHUP: 0x10,
  POLLNVAL: 0x20,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
};

const LINUX_EPOLL: Partial<Constants> = {
  EPOLLIN: 1,
  EPOLLOUT: 4,
  EPOLLERR: 8,
  EPOLLHUP: 0x10,
  EPOLLONESHOT: 1 << 30,
  EPOLLET: 0x80000000,
  EPOLL_CTL_ADD: 1,
  EPOLL_CTL_DEL: 2,
  EPOLL_CTL_MOD: 3,
  EPOLL_CLOEXEC: 0x80000,
};

const NO_EPOLL: Partial<Constants> = {
  EPOLLIN: 0,
  EPOLLOUT: 0,
  EPOLLERR: 0,
  EPOLLHUP: 0,
  EPOLLONESHOT: 0,
  EPOLLET: 0,
  EPOLL_CTL_ADD: 0,
  EPOLL_CTL_DEL: 0,
  EPOLL_CTL_MOD: 0,
  EPOLL_CLOEXEC: 0,
};

const LINUX_CONSTANTS: Partial<Constants> = {
  ...SHARED_CONSTANTS,
  ...LINUX_EPOLL,
  SOCK_CLOEXEC: 0x80000,
  SOCK_NONBLOCK: 0x800,
  SOL_SOCKET: 1,
  SCM_CREDENTIALS: 2,
  SO_PASSCRED: 16,
  SO_REUSEADDR: 2,
  SO_ERROR: 4,
  SO_TYPE: 3,
  AF_INET6: 10,
  SO_REUSEPORT: 15,
  SO_ACCEPTCONN: 30,
  IPV6_V6ONLY: 26,
  SO_NOSIGPIPE: 0,
  MSG_TRUNC: 0x20,
  MSG_CTRUNC: 0x8,
  MSG_DONTWAIT: 0x40,
  MSG_NOSIGNAL: 0x4000,
  MSG_CMSG_CLOEXEC: 0x40000000,
  O_NONBLOCK: 0x800,
  O_CLOEXEC: 0x80000,
  F_DUPFD_CLOEXEC: 1030,
  RLIMIT_NOFILE: 7,
  MFD_CLOEXEC: 1,
  EFD_CLOEXEC: 0x80000,
  F_ADD_SEALS: 1033,
  CLOCK_MONOTONIC: 1, // include/uapi/linux/time.h
};

const BSD_SOCKET_CONSTANTS: Partial<Constants> = {
  SOL_SOCKET: 0xffff,
  SCM_CREDENTIALS: 0,
  SO_PASSCRED: 0,
  SO_REUSEADDR: 4,
  SO_ERROR: 0x1007,
  SO_TYPE: 0x1008,
  SO_REUSEPORT: 0x200,
  SO_ACCEPTCONN: 0x2,
  IPV6_V6ONLY: 27,
  MSG_TRUNC: 0x10,
  MSG_CTRUNC: 0x20,
  MSG_DONTWAIT: 0x80,
  O_NONBLOCK: 0x4,
};

const MACOS_CONSTANTS: Partial<Constants> = {
  ...SHARED_CONSTANTS,
  ...NO_EPOLL,
  ...BSD_SOCKET_CONSTANTS,
  AF_INET6: 30,
  SOCK_CLOEXEC: 0,
  SOCK_NONBLOCK: 0,
  SO_NOSIGPIPE: 0x1022,
  MSG_NOSIGNAL: 0x80000,
  MSG_CMSG_CLOEXEC: 0,
  O_CLOEXEC: 0x1000000,
  F_DUPFD_CLOEXEC: 67,
  RLIMIT_NOFILE: 8,
  MFD_CLOEXEC: 0,
  EFD_CLOEXEC: 0,
  F_ADD_SEALS: 0,
  CLOCK_MONOTONIC: 6, // macOS <time.h>
};

const FREEBSD_CONSTANTS: Partial<Constants> = {
  ...SHARED_CONSTANTS,
  ...NO_EPOLL,
  ...BSD_SOCKET_CONSTANTS,
  AF_INET6: 28,
  SOCK_CLOEXEC: 0x10000000,
  SOCK_NONBLOCK: 0x20000000,
  SO_NOSIGPIPE: 0x0800,
  MSG_NOSIGNAL: 0x20000,
  MSG_CMSG_CLOEXEC: 0x40000,
  O_CLOEXEC: 0x100000,
  F_DUPFD_CLOEXEC: 17,
  RLIMIT_NOFILE: 8,
  MFD_CLOEXEC: 1,
  EFD_CLOEXEC: 0x100000,
  F_ADD_SEALS: 19,
  CLOCK_MONOTONIC: 4, // freebsd-src sys/sys/_clock_id.h
};

const POLLFD: PollfdLayout = { size: 8, fd: 0, events: 4, revents: 6 };

// time.h on LP64: time_t and long are both 64 bits.
const TIMESPEC: TimespecLayout = { size: 16, seconds: 0, nanoseconds: 8 };

// --- errno (include/uapi/asm-generic/errno*.h; xnu and freebsd-src sys/errno.h) ---

const SHARED_ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EBADF: 9,
  ENOMEM: 12,
  EACCES: 13,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  EPIPE: 32,
};

const LINUX_ERRNO = {
  ...SHARED_ERRNO,
  EAGAIN: 11,
  EINPROGRESS: 115,
  ENOTSOCK: 88,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ETOOMANYREFS: 109,
  ECONNREFUSED: 111,
  ENAMETOOLONG: 36,
};

const BSD_ERRNO = {
  ...SHARED_ERRNO,
  EAGAIN: 35,
  EINPROGRESS: 36,
  ENOTSOCK: 38,
  EMSGSIZE: 40,
  EADDRINUSE: 48,
  ECONNRESET: 54,
  ENOBUFS: 55,
  EISCONN: 56,
  ENOTCONN: 57,
  ETOOMANYREFS: 59,
  ECONNREFUSED: 61,
  ENAMETOOLONG: 63,
};

const MACOS_ERRNO = { ...BSD_ERRNO, EOPNOTSUPP: 102 };
const FREEBSD_ERRNO = { ...BSD_ERRNO, EOPNOTSUPP: 45 };

const LINUX_COMMON = {
  libraryPath: "libc.so.6",
  errnoSymbol: "__errno_location",
  features: LINUX_FEATURES,
  msghdr: LINUX_MSGHDR,
  iovec: IOVEC,
  cmsghdr: LINUX_CMSGHDR,
  cmsgDataOffset: 16,
  cmsgForFds: LINUX_CMSG_FOR_FDS,
  sockaddrUn: LINUX_SOCKADDR_UN,
  sockaddrIn: SOCKADDR_IN,
  sockaddrIn6: SOCKADDR_IN6,
  peerCredentials: LINUX_PEER_CREDENTIALS,
  ucredSize: 12,
  constants: LINUX_CONSTANTS,
  pollfd: POLLFD,
  timespec: TIMESPEC,
  errno: LINUX_ERRNO,
  kernelMaxFds: 253, // SCM_MAX_FD, include/net/scm.h
} as const;

const MACOS_COMMON = {
  libraryPath: "/usr/lib/libSystem.B.dylib",
  errnoSymbol: "__error",
  features: MACOS_FEATURES,
  msghdr: BSD_MSGHDR,
  iovec: IOVEC,
  cmsghdr: MACOS_CMSGHDR,
  cmsgDataOffset: 12,
  cmsgForFds: MACOS_CMSG_FOR_FDS,
  sockaddrUn: BSD_SOCKADDR_UN,
  sockaddrIn: SOCKADDR_IN,
  sockaddrIn6: SOCKADDR_IN6,
  peerCredentials: MACOS_PEER_CREDENTIALS,
  ucredSize: 0,
  constants: MACOS_CONSTANTS,
  pollfd: POLLFD,
  timespec: TIMESPEC,
  errno: MACOS_ERRNO,
  epollEvent: null,
  ioUring: null,
  pidfs: null,
  kernelMaxFds: 254, // xnu unp_internalize: (len - 12) * 2 + 12 <= MCLBYTES
} as const;

/** asm-generic/statfs.h on both Linux architectures; PID_FS_MAGIC from linux/magic.h. */
const LINUX_PIDFS: PidfsLayout = { statfsSize: 120, statfsType: 0, magic: 0x50494446 };

/** include/uapi/linux/io_uring.h and asm-generic/unistd.h: the same on both architectures. */
const LINUX_IO_URING: IoUringLayout = {
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
  setupCqsize: 8,
  offSqRing: 0,
  offSqes: 0x10000000,
  opPollAdd: 6,
  opWrite: 23,
  sqeIoHardlink: 8,
  featSingleMmap: 1,
  featNodrop: 2,
  featFastPoll: 32,
  mapPopulate: 0x8000,
};

const EXPECTED: Readonly<Record<Platform, Expected>> = {
  "linux-x86_64": {
    ...LINUX_COMMON,
    epollEvent: { size: 12, events: 0, data: 4 }, // packed on x86_64
    ioUring: LINUX_IO_URING,
    pidfs: LINUX_PIDFS,
  },
  "linux-aarch64": {
    ...LINUX_COMMON,
    epollEvent: { size: 16, events: 0, data: 8 },
    ioUring: LINUX_IO_URING,
    pidfs: LINUX_PIDFS,
  },
  "darwin-aarch64": MACOS_COMMON,
  "darwin-x86_64": MACOS_COMMON,
  "freebsd-x86_64": {
    libraryPath: "libc.so.7",
    errnoSymbol: "__error",
    features: FREEBSD_FEATURES,
    msghdr: BSD_MSGHDR,
    iovec: IOVEC,
    cmsghdr: FREEBSD_CMSGHDR,
    cmsgDataOffset: 16,
    cmsgForFds: FREEBSD_CMSG_FOR_FDS,
    sockaddrUn: BSD_SOCKADDR_UN,
    sockaddrIn: SOCKADDR_IN,
    sockaddrIn6: SOCKADDR_IN6,
    peerCredentials: FREEBSD_PEER_CREDENTIALS,
    ucredSize: 0,
    constants: FREEBSD_CONSTANTS,
    pollfd: POLLFD,
    timespec: TIMESPEC,
    errno: FREEBSD_ERRNO,
    epollEvent: null,
    ioUring: null,
    pidfs: null,
    kernelMaxFds: 508, // freebsd-src sockargs: msg_controllen <= MCLBYTES (2048)
  },
};

/** The fields of `Layout`, sorted: a removed or added field must be added here too. */
const LAYOUT_FIELDS = [
  "cmsghdr",
  "constants",
  "epollEvent",
  "errno",
  "errnoSymbol",
  "features",
  "ioUring",
  "iovec",
  "libraryPath",
  "maxFdsPerMessage",
  "msghdr",
  "name",
  "peerCredentials",
  "pidfs",
  "pollfd",
  "sockaddrIn",
  "sockaddrIn6",
  "sockaddrUn",
  "stat",
  "timespec",
  "ucredSize",
  "variadicOnStack",
];

/**
 * The constants that hold the 0 placeholder where a feature is missing, and
 * that feature. Every other constant is non-zero everywhere, except the three
 * whose real value is 0.
 */
const GATED_BY: Readonly<Partial<Record<keyof Constants, keyof Features>>> = {
  SOCK_CLOEXEC: "socketFlags",
  SOCK_NONBLOCK: "socketFlags",
  SCM_CREDENTIALS: "passCredentials",
  SO_PASSCRED: "passCredentials",
  SO_NOSIGPIPE: "soNosigpipe",
  MSG_CMSG_CLOEXEC: "msgCmsgCloexec",
  MFD_CLOEXEC: "memfd",
  MFD_ALLOW_SEALING: "memfd",
  EFD_CLOEXEC: "eventfd",
  EFD_NONBLOCK: "eventfd",
  EFD_SEMAPHORE: "eventfd",
  EPOLL_CLOEXEC: "epoll",
  EPOLL_CTL_ADD: "epoll",
  EPOLL_CTL_DEL: "epoll",
  EPOLL_CTL_MOD: "epoll",
  EPOLLIN: "epoll",
  EPOLLOUT: "epoll",
  EPOLLERR: "epoll",
  EPOLLHUP: "epoll",
  EPOLLONESHOT: "epoll",
  EPOLLET: "epoll",
  F_ADD_SEALS: "fileSeals",
  F_GET_SEALS: "fileSeals",
  F_SEAL_SEAL: "fileSeals",
  F_SEAL_SHRINK: "fileSeals",
  F_SEAL_GROW: "fileSeals",
  F_SEAL_WRITE: "fileSeals",
};

const REALLY_ZERO: ReadonlySet<string> = new Set(["O_RDONLY", "SHUT_RD", "SEEK_SET"]);

function layoutOf(platform: Platform): Layout {
  const layout = layouts[platform];
  if (layout === undefined) throw new Error(`No layout for "${platform}"`);
  return layout;
}

leakCheckedTest("layouts holds exactly the five supported platforms, each under its name", () => {
  assertEquals(Object.keys(layouts).sort(), [...PLATFORMS].sort());
  for (const platform of PLATFORMS) assertEquals(layoutOf(platform).name, platform);
  assertStrictEquals(currentLayout(), layouts[platformKey()]);
});

leakCheckedTest("layouts serves the rows exported by ffi/platforms/linux.ts and bsd.ts", () => {
  assertStrictEquals(layoutOf("linux-x86_64"), linuxX86_64);
  assertStrictEquals(layoutOf("linux-aarch64"), linuxAarch64);
  assertStrictEquals(layoutOf("darwin-aarch64"), darwinArm64);
  assertStrictEquals(layoutOf("darwin-x86_64"), darwinX86_64);
  assertStrictEquals(layoutOf("freebsd-x86_64"), freebsdX86_64);
  for (const platform of PLATFORMS) assert(Object.isFrozen(layoutOf(platform)), platform);
});

leakCheckedTest("every layout has exactly the fields of Layout and all thirteen features", () => {
  for (const platform of PLATFORMS) {
    const layout = layoutOf(platform);
    assertEquals(Object.keys(layout).sort(), LAYOUT_FIELDS, platform);
    assertEquals(
      Object.keys(layout.features).sort(),
      Object.keys(LINUX_FEATURES).sort(),
      `${platform} features`,
    );
    // The abstract namespace is a feature now, not a sockaddr_un field.
    assertEquals(Object.keys(layout.sockaddrUn).sort(), Object.keys(LINUX_SOCKADDR_UN).sort());
  }
});

for (const platform of PLATFORMS) {
  leakCheckedTest(
    `${EXPORT_NAMES[platform]} matches the values written out in this test`,
    async (t) => {
      const layout = layoutOf(platform);
      const expected = EXPECTED[platform];

      await t.step("the library and errno accessor are the platform's libc", () => {
        assertEquals(layout.libraryPath, expected.libraryPath);
        assertEquals(layout.errnoSymbol, expected.errnoSymbol);
      });

      await t.step("features say what the platform offers", () => {
        assertEquals(layout.features, expected.features);
      });

      await t.step("struct msghdr and struct iovec match sys/socket.h", () => {
        assertEquals(layout.msghdr, expected.msghdr);
        assertEquals(layout.iovec, expected.iovec);
        assertLessOrEqual(layout.msghdr.flags + 4, layout.msghdr.size);
      });

      await t.step("struct cmsghdr, CMSG_LEN and CMSG_SPACE match cmsg(3)", () => {
        assertEquals(layout.cmsghdr, expected.cmsghdr);
        assertEquals(cmsgDataOffset(layout), expected.cmsgDataOffset);
        assertEquals(cmsgLen(layout, 0), expected.cmsgDataOffset);
        for (const n of [1, 2, 3, 253] as const) {
          const [len, space] = expected.cmsgForFds[n];
          assertEquals(cmsgLen(layout, n * FD_SIZE), len, `CMSG_LEN for ${n} fds`);
          assertEquals(cmsgSpace(layout, n * FD_SIZE), space, `CMSG_SPACE for ${n} fds`);
        }
        assertEquals(cmsgAlign(layout, 1), layout.cmsghdr.align);
        assertEquals(cmsgAlign(layout, layout.cmsghdr.align), layout.cmsghdr.align);
      });

      await t.step("the socket addresses match sys/un.h and netinet/in.h", () => {
        assertEquals(layout.sockaddrUn, expected.sockaddrUn);
        assertEquals(layout.sockaddrIn, expected.sockaddrIn);
        assertEquals(layout.sockaddrIn6, expected.sockaddrIn6);
        // sun_path runs to the end of the struct: 108 bytes on Linux, 104 on BSD.
        assertLessOrEqual(
          layout.sockaddrUn.maxPathBytes,
          layout.sockaddrUn.size - layout.sockaddrUn.pathOffset,
        );
      });

      await t.step("peer credentials are read from the right struct", () => {
        assertEquals(layout.peerCredentials, expected.peerCredentials);
        assertEquals(layout.ucredSize, expected.ucredSize);
      });

      await t.step("struct timespec matches time.h", () => {
        assertEquals(layout.timespec, expected.timespec);
      });

      await t.step("constants and struct pollfd match the headers", () => {
        for (const [name, value] of Object.entries(expected.constants)) {
          assertEquals(layout.constants[name as keyof Constants], value, `constant ${name}`);
        }
        assertEquals(layout.pollfd, expected.pollfd);
      });

      await t.step("errno numbers match sys/errno.h and no number has two names", () => {
        for (const [name, value] of Object.entries(expected.errno)) {
          assertEquals(layout.errno[name], value, `errno ${name}`);
        }
        // ErrnoError maps numbers back to names, so no number may have two.
        const seen = new Map<number, string>();
        for (const [name, value] of Object.entries(layout.errno)) {
          const other = seen.get(value);
          assert(other === undefined, `errno ${value} is both ${other} and ${name}`);
          seen.set(value, name);
        }
      });

      await t.step("struct epoll_event matches include/uapi/linux/eventpoll.h", () => {
        assertEquals(layout.epollEvent, expected.epollEvent);
      });

      await t.step("the io_uring interface matches include/uapi/linux/io_uring.h", () => {
        assertEquals(layout.ioUring, expected.ioUring);
      });

      await t.step("pidfs recognition matches sys/vfs.h and linux/magic.h", () => {
        assertEquals(layout.pidfs, expected.pidfs);
      });

      await t.step("fds per message stay within the kernel limit", () => {
        assertEquals(layout.maxFdsPerMessage, 253);
        assertLessOrEqual(layout.maxFdsPerMessage, expected.kernelMaxFds);
      });
    },
  );
}

leakCheckedTest("a constant holds the 0 placeholder exactly where its feature is off", () => {
  for (const platform of PLATFORMS) {
    const { constants, features, epollEvent, ioUring, ucredSize } = layoutOf(platform);
    for (const [name, value] of Object.entries(constants)) {
      const gate = GATED_BY[name as keyof Constants];
      if (gate !== undefined) {
        assertEquals(value !== 0, features[gate], `${platform}: ${name} against features.${gate}`);
      } else {
        assertEquals(value === 0, REALLY_ZERO.has(name), `${platform}: ${name} is ${value}`);
      }
    }
    assertEquals(epollEvent !== null, features.epoll, `${platform}: epollEvent`);
    assertEquals(ioUring !== null, features.ioUring, `${platform}: ioUring`);
    assertEquals(ucredSize > 0, features.passCredentials, `${platform}: ucredSize`);
    assertEquals(features.abstractNames, platform.startsWith("linux-"), platform);
    assertEquals(features.procSelfFd, platform.startsWith("linux-"), platform);
    assert(!features.fileSeals || features.memfd, `${platform}: seals need memfd`);
  }
});

leakCheckedTest("cmsgLen() and cmsgSpace() pass CPython's CmsgMacroTests on every layout", () => {
  // Lib/test/test_socket.py CmsgMacroTests: 0..256 and the values just
  // below the socklen_t limit (0x7fffffff).
  const socklenLimit = 0x7fffffff;
  for (const platform of PLATFORMS) {
    const layout = layoutOf(platform);
    const where = `(${platform})`;
    // struct cmsghdr has at least three members, two of which are ints.
    assertGreater(cmsgLen(layout, 0), 2 * 4, `CMSG_LEN(0) ${where}`);
    assertGreater(cmsgSpace(layout, 0), 2 * 4, `CMSG_SPACE(0) ${where}`);

    const lenTooBig = socklenLimit - cmsgLen(layout, 0) + 1;
    const lenValues = [...range(0, 257), ...range(lenTooBig - 257, lenTooBig)];
    for (const n of lenValues) {
      const ret = cmsgLen(layout, n);
      assertEquals(ret - cmsgLen(layout, 0), n, `CMSG_LEN(${n}) - CMSG_LEN(0) ${where}`);
      assertLessOrEqual(ret, socklenLimit, `CMSG_LEN(${n}) ${where}`);
    }

    const spaceTooBig = socklenLimit - cmsgSpace(layout, 1) + 1;
    const spaceValues = [...range(0, 257), ...range(spaceTooBig - 257, spaceTooBig)];
    let last = cmsgSpace(layout, 0);
    for (const n of spaceValues) {
      const ret = cmsgSpace(layout, n);
      assertGreaterOrEqual(ret, last, `CMSG_SPACE(${n}) is monotonic ${where}`);
      assertGreaterOrEqual(ret, cmsgLen(layout, n), `CMSG_SPACE(${n}) >= CMSG_LEN ${where}`);
      assertGreaterOrEqual(ret, n + cmsgLen(layout, 0), `CMSG_SPACE(${n}) ${where}`);
      assertLessOrEqual(ret, socklenLimit, `CMSG_SPACE(${n}) ${where}`);
      assertEquals(ret % layout.cmsghdr.align, 0, `CMSG_SPACE(${n}) is aligned ${where}`);
      last = ret;
    }
  }
});

leakCheckedTest(
  "receiveControlCapacity() holds the most fds a peer can send plus credentials",
  () => {
    for (const platform of PLATFORMS) {
      const layout = layoutOf(platform);
      const capacity = receiveControlCapacity(layout);
      // docs/abi.md, "Control buffer sizes": CMSG_SPACE(253 * 4), plus
      // CMSG_SPACE(sizeof(struct ucred)) when SO_PASSCRED is on.
      const credentials = layout.features.passCredentials ? cmsgSpace(layout, layout.ucredSize) : 0;
      assertGreaterOrEqual(capacity, cmsgSpace(layout, 253 * FD_SIZE) + credentials, platform);
      // docs/abi.md, "Fds per message": macOS installs fds before the copy-out,
      // so the buffer must hold the kernel's maximum of 254 or the cut-off fds leak.
      assertGreaterOrEqual(capacity, cmsgSpace(layout, 254 * FD_SIZE) + credentials, platform);
    }
    const linux = layoutOf("linux-x86_64");
    assertEquals(cmsgSpace(linux, 12), 32);
    assertGreaterOrEqual(receiveControlCapacity(linux), 1032 + 32);
    assertGreaterOrEqual(receiveControlCapacity(layoutOf("darwin-aarch64")), 1028);
  },
);

function range(start: number, end: number): number[] {
  const values: number[] = [];
  for (let n = start; n < end; n++) values.push(n);
  return values;
}

// --- this machine's C headers ---

const probeSource = decodeURIComponent(new URL("./c/layout_probe.c", import.meta.url).pathname);
const ccAvailable = hasCommand("cc");
const probeSkipReason = !platformKey().startsWith("linux-")
  ? `tests/c/layout_probe.c covers Linux only, not ${platformKey()}`
  : ccAvailable
  ? null
  : "no cc on PATH";
if (probeSkipReason !== null) {
  console.warn(`ffi_layout_test.ts: skipping the C layout probe: ${probeSkipReason}`);
}

/** Compiles and runs the probe, returning its `key=value` lines. */
function runProbe(): Map<string, string> {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-layout-probe-" });
  try {
    const binary = `${dir}/layout_probe`;
    const compiled = new Deno.Command("cc", {
      args: ["-O0", "-o", binary, probeSource],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const decoder = new TextDecoder();
    assert(
      compiled.success,
      `cc failed on ${probeSource}:\n${decoder.decode(compiled.stderr)}`,
    );
    const ran = new Deno.Command(binary, { stdout: "piped", stderr: "piped" }).outputSync();
    assert(ran.success, `layout_probe failed:\n${decoder.decode(ran.stderr)}`);
    const values = new Map<string, string>();
    for (const line of decoder.decode(ran.stdout).split("\n")) {
      if (line === "") continue;
      const eq = line.indexOf("=");
      assert(eq > 0, `unexpected probe line "${line}"`);
      const key = line.slice(0, eq);
      assert(!values.has(key), `probe printed "${key}" twice`);
      values.set(key, line.slice(eq + 1));
    }
    return values;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** The value a layout gives for a probe key; features read as 1 or 0. */
function layoutValue(layout: Layout, key: string): unknown {
  const cmsg = /^cmsg\.(len|space)\.(\d+)$/.exec(key);
  if (cmsg !== null) {
    const bytes = Number(cmsg[2]);
    return cmsg[1] === "len" ? cmsgLen(layout, bytes) : cmsgSpace(layout, bytes);
  }
  if (key === "cmsg.dataOffset") return cmsgDataOffset(layout);
  let value: unknown = layout;
  for (const part of key.split(".")) {
    if (typeof value !== "object" || value === null || !(part in value)) {
      throw new Error(`Probe key "${key}" names no field of the layout`);
    }
    value = (value as Record<string, unknown>)[part];
  }
  return typeof value === "boolean" ? (value ? 1 : 0) : value;
}

/** Every key whose value in `layout` differs from the probe, with both values. */
function probeMismatches(layout: Layout, probe: ReadonlyMap<string, string>): string[] {
  const mismatches: string[] = [];
  for (const [key, text] of probe) {
    const actual = layoutValue(layout, key);
    if (text === "absent") {
      // Not in the headers: the layout must hold the 0 placeholder.
      if (actual !== 0) mismatches.push(`${key}: absent in C, ${actual} in ${layout.name}`);
    } else if (actual !== Number(text)) {
      mismatches.push(`${key}: ${text} in C, ${actual} in ${layout.name}`);
    }
  }
  return mismatches;
}

const currentExportName = EXPORT_NAMES[platformKey() as Platform] ??
  "currentLayout()";

leakCheckedTest(
  `${currentExportName} matches the C probe on this machine${
    probeSkipReason === null ? "" : ` (skipped: ${probeSkipReason})`
  }`,
  async (t) => {
    const layout = currentLayout();
    const probe = runProbe();

    await t.step("every probed offset, constant, feature and errno equals the layout", () => {
      assertEquals(probeMismatches(layout, probe), []);
    });

    await t.step("the probe covers every constant, feature and errno name", () => {
      for (const name of Object.keys(layout.constants)) {
        assert(probe.has(`constants.${name}`), `probe lacks constants.${name}`);
      }
      for (const name of Object.keys(layout.features)) {
        assert(probe.has(`features.${name}`), `probe lacks features.${name}`);
      }
      for (const name of Object.keys(layout.errno)) {
        assert(probe.has(`errno.${name}`), `probe lacks errno.${name}`);
      }
    });

    await t.step("a deliberately wrong layout is reported field by field", () => {
      // Guards the comparison itself: each mutation must surface as one mismatch.
      const wrong: Layout = {
        ...layout,
        msghdr: { ...layout.msghdr, flags: layout.msghdr.flags - 4 },
        sockaddrIn: { ...layout.sockaddrIn, port: layout.sockaddrIn.port + 2 },
        sockaddrIn6: { ...layout.sockaddrIn6, scopeId: layout.sockaddrIn6.scopeId - 4 },
        constants: { ...layout.constants, SO_REUSEADDR: layout.constants.SO_REUSEADDR + 1 },
        features: { ...layout.features, memfd: !layout.features.memfd },
        errno: { ...layout.errno, EBADF: 0 },
      };
      const keys = probeMismatches(wrong, probe).map((line) => line.slice(0, line.indexOf(":")));
      assertEquals(keys.sort(), [
        "constants.SO_REUSEADDR",
        "errno.EBADF",
        "features.memfd",
        "msghdr.flags",
        "sockaddrIn.port",
        "sockaddrIn6.scopeId",
      ]);
    });

    await t.step("CMSG_LEN and CMSG_SPACE for 1..4, 253 and 254 fds match the C macros", () => {
      for (const n of [1, 2, 3, 4, 253, 254]) {
        const bytes = n * FD_SIZE;
        assertEquals(Number(probe.get(`cmsg.len.${bytes}`)), cmsgLen(layout, bytes), `${n} fds`);
        assertEquals(
          Number(probe.get(`cmsg.space.${bytes}`)),
          cmsgSpace(layout, bytes),
          `${n} fds`,
        );
      }
    });

    await t.step("receiveControlCapacity() covers CMSG_SPACE(254 * 4) + CMSG_SPACE(ucred)", () => {
      const needed = Number(probe.get(`cmsg.space.${254 * 4}`)) +
        Number(probe.get(`cmsg.space.${Number(probe.get("ucredSize"))}`));
      assert(Number.isInteger(needed), "probe lacks the CMSG_SPACE values");
      assertGreaterOrEqual(receiveControlCapacity(layout), needed);
    });
  },
  { ignore: probeSkipReason !== null },
);

// --- libc() ---

leakCheckedTest("libc() opens libc once per isolate and reads errno after each call", async (t) => {
  const context = libc();

  await t.step("opens the library for the running platform", () => {
    assertStrictEquals(context.layout, currentLayout());
    assertEquals(typeof context.lib.close, "function");
    assertEquals(context.errno.length, 1);
  });

  await t.step("returns the same context on every call", () => {
    assertStrictEquals(libc(), context);
    assertStrictEquals(libc().lib, context.lib);
    assertStrictEquals(libc().errno, context.errno);
  });

  await t.step("errno[0] holds EBADF right after close(-1)", () => {
    context.errno[0] = 0;
    assertEquals(context.lib.close(-1), -1);
    assertEquals(context.errno[0], 9);
    assertEquals(context.errno[0], context.layout.errno.EBADF);
  });

  await t.step("errno[0] holds ENOENT right after open() of a missing path", () => {
    const { O_RDONLY, O_CLOEXEC } = context.layout.constants;
    const path = new TextEncoder().encode("/nonexistent/fdpass-layout-test\0");
    context.errno[0] = 0;
    assertEquals(context.open(path, O_RDONLY | O_CLOEXEC, 0), -1);
    assertEquals(context.errno[0], context.layout.errno.ENOENT);
  });

  await t.step("fcntl() reads the flags of fd 1 and rejects a bad fd", () => {
    const { F_GETFD, FD_CLOEXEC } = context.layout.constants;
    const flags = context.fcntl(1, F_GETFD, 0);
    assertGreaterOrEqual(flags, 0);
    assertEquals(flags & ~FD_CLOEXEC, 0);
    context.errno[0] = 0;
    assertEquals(context.fcntl(-1, F_GETFD, 0), -1);
    assertEquals(context.errno[0], context.layout.errno.EBADF);
  });

  await t.step("fcntl() passes its third argument (F_DUPFD_CLOEXEC with a minimum fd)", () => {
    const { F_DUPFD_CLOEXEC, F_GETFD, FD_CLOEXEC } = context.layout.constants;
    const fd = context.fcntl(1, F_DUPFD_CLOEXEC, 200);
    assertGreaterOrEqual(fd, 200);
    try {
      assertEquals(context.fcntl(fd, F_GETFD, 0), FD_CLOEXEC);
    } finally {
      assertEquals(context.lib.close(fd), 0);
    }
  });
});
