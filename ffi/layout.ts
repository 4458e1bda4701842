/**
 * Struct layouts and constants for every supported platform, as data.
 *
 * Every number the library hands to the kernel lives here. The values come
 * from `../shared/reference/abi.md`: Linux rows were verified with C programs
 * on x86_64 and aarch64 (glibc and musl); macOS and FreeBSD rows were taken
 * from the system headers (xnu, freebsd-src) and compiled as LP64.
 *
 * @module
 */

/** Offsets (bytes) of `struct msghdr`. */
export interface MsghdrLayout {
  /** `sizeof(struct msghdr)`. */
  readonly size: number;
  /** `void *msg_name`. */
  readonly name: number;
  /** `socklen_t msg_namelen` (u32). */
  readonly namelen: number;
  /** `struct iovec *msg_iov`. */
  readonly iov: number;
  /** `msg_iovlen`. */
  readonly iovlen: number;
  /** Width of `msg_iovlen`: 8 (`size_t`, or musl's `int` + zero pad) or 4 (`int`). */
  readonly iovlenSize: 4 | 8;
  /** `void *msg_control`. */
  readonly control: number;
  /** `msg_controllen`. */
  readonly controllen: number;
  /** Width of `msg_controllen`: 8 (`size_t`, or musl's `socklen_t` + zero pad) or 4. */
  readonly controllenSize: 4 | 8;
  /** `int msg_flags`. */
  readonly flags: number;
}

/** Offsets (bytes) of `struct iovec`. */
export interface IovecLayout {
  /** `sizeof(struct iovec)`. */
  readonly size: number;
  /** `void *iov_base`. */
  readonly base: number;
  /** `size_t iov_len`. */
  readonly len: number;
}

/** Layout of `struct cmsghdr` and the rule behind `CMSG_ALIGN`. */
export interface CmsghdrLayout {
  /** `sizeof(struct cmsghdr)`. */
  readonly size: number;
  /** `cmsg_len` offset. */
  readonly len: number;
  /** Width of `cmsg_len`: 8 on Linux (glibc `size_t`, musl `socklen_t` + zero pad), 4 on BSD. */
  readonly lenSize: 4 | 8;
  /** `int cmsg_level`. */
  readonly level: number;
  /** `int cmsg_type`. */
  readonly type: number;
  /** The alignment `CMSG_ALIGN` rounds to. */
  readonly align: number;
}

/** Layout of `struct sockaddr_un`. */
export interface SockaddrUnLayout {
  /** `sizeof(struct sockaddr_un)`. */
  readonly size: number;
  /** Offset of `sun_len` (BSD), or -1 where the struct has none. */
  readonly lenOffset: number;
  /** Offset of `sun_family`. */
  readonly familyOffset: number;
  /** Width of `sun_family`: 2 on Linux, 1 on BSD. */
  readonly familySize: 1 | 2;
  /** Offset of `sun_path`. */
  readonly pathOffset: number;
  /** Longest path in bytes the kernel accepts (Linux accepts all 108 bytes with no NUL). */
  readonly maxPathBytes: number;
  /** Whether the Linux abstract namespace exists. */
  readonly abstractNamespace: boolean;
}

/** Layout of `struct sockaddr_in` (IPv4). */
export interface SockaddrInLayout {
  /** `sizeof(struct sockaddr_in)`. */
  readonly size: number;
  /** Offset of `sin_port` (big-endian u16). */
  readonly port: number;
  /** Offset of `sin_addr` (4 bytes, network order). */
  readonly address: number;
}

/** Where the peer's pid, uid and gid are found, and how to ask for them. */
export interface PeerCredentialsLayout {
  /** `getsockopt` level. */
  readonly level: number;
  /** `getsockopt` option returning the credential struct. */
  readonly option: number;
  /** Size of the credential struct (`ucred` or `xucred`). */
  readonly size: number;
  /** Offset of the `u32` version field that must be 0 (`xucred.cr_version`), or -1. */
  readonly versionOffset: number;
  /** Offset of the pid (`i32`) inside the struct, or -1 when it is asked for separately. */
  readonly pidOffset: number;
  /** Option that returns the pid alone (macOS `LOCAL_PEERPID`), or -1. */
  readonly pidOption: number;
  /** Offset of the uid (`u32`). */
  readonly uidOffset: number;
  /** Offset of the gid (`u32`): `ucred.gid`, or `xucred.cr_groups[0]`. */
  readonly gidOffset: number;
}

/** Offsets of the `struct stat` fields the library reads. */
export interface StatLayout {
  /** `sizeof(struct stat)`. */
  readonly size: number;
  /** `st_dev`, read as u64 or u32 per {@linkcode StatLayout.devSize}. */
  readonly dev: number;
  /** Width of `st_dev`. */
  readonly devSize: 4 | 8;
  /** `st_ino` (u64). */
  readonly ino: number;
  /** `st_mode`, read as u32 or u16 per {@linkcode StatLayout.modeSize}. */
  readonly mode: number;
  /** Width of `st_mode`. */
  readonly modeSize: 2 | 4;
  /** `st_size` (i64). */
  readonly fileSize: number;
}

/** Layout of `struct pollfd` and the width of `nfds_t`. */
export interface PollfdLayout {
  /** `sizeof(struct pollfd)`. */
  readonly size: number;
  /** `int fd`. */
  readonly fd: number;
  /** `short events`. */
  readonly events: number;
  /** `short revents`. */
  readonly revents: number;
}

/** Layout of `struct epoll_event` (Linux only). */
export interface EpollEventLayout {
  /** `sizeof(struct epoll_event)`: 12 (packed) on x86_64, 16 on aarch64. */
  readonly size: number;
  /** `u32 events`. */
  readonly events: number;
  /** `u64 data`. */
  readonly data: number;
}

/** Layout of `struct kevent` (macOS and FreeBSD). */
export interface KeventLayout {
  /** `sizeof(struct kevent)`. */
  readonly size: number;
  /** `uintptr_t ident`. */
  readonly ident: number;
  /** `int16_t filter`. */
  readonly filter: number;
  /** `uint16_t flags`. */
  readonly flags: number;
  /** `uint32_t fflags`. */
  readonly fflags: number;
  /** `intptr_t data`. */
  readonly data: number;
  /** `void *udata`. */
  readonly udata: number;
}

/** Every constant the library passes to libc. A value of 0 means "not available". */
export interface Constants {
  readonly AF_UNIX: number;
  /** IPv4, for the one TCP listener (`listenTcp`). */
  readonly AF_INET: number;
  readonly SOCK_STREAM: number;
  readonly SOCK_DGRAM: number;
  readonly SOCK_SEQPACKET: number;
  /** 0 where `socket()` takes no such flag (macOS). */
  readonly SOCK_CLOEXEC: number;
  /** 0 where `socket()` takes no such flag (macOS). */
  readonly SOCK_NONBLOCK: number;
  readonly SOL_SOCKET: number;
  readonly SCM_RIGHTS: number;
  /** 0 where there is none. */
  readonly SCM_CREDENTIALS: number;
  /** 0 where there is none. */
  readonly SO_PASSCRED: number;
  readonly SO_TYPE: number;
  readonly SO_REUSEADDR: number;
  readonly SO_ERROR: number;
  readonly SO_SNDBUF: number;
  readonly SO_RCVBUF: number;
  /** 0 where `MSG_NOSIGNAL` is used instead. */
  readonly SO_NOSIGPIPE: number;
  readonly MSG_PEEK: number;
  readonly MSG_TRUNC: number;
  readonly MSG_CTRUNC: number;
  readonly MSG_WAITALL: number;
  readonly MSG_DONTWAIT: number;
  readonly MSG_EOR: number;
  readonly MSG_NOSIGNAL: number;
  /** 0 where received fds need `fcntl(F_SETFD, FD_CLOEXEC)` afterwards (macOS). */
  readonly MSG_CMSG_CLOEXEC: number;
  readonly F_DUPFD_CLOEXEC: number;
  readonly F_GETFD: number;
  readonly F_SETFD: number;
  readonly F_GETFL: number;
  readonly F_SETFL: number;
  readonly FD_CLOEXEC: number;
  readonly O_RDONLY: number;
  readonly O_WRONLY: number;
  readonly O_RDWR: number;
  readonly O_ACCMODE: number;
  readonly O_CREAT: number;
  readonly O_EXCL: number;
  readonly O_TRUNC: number;
  readonly O_APPEND: number;
  readonly O_NONBLOCK: number;
  readonly O_CLOEXEC: number;
  readonly O_DIRECTORY: number;
  readonly O_NOFOLLOW: number;
  readonly S_IFMT: number;
  readonly S_IFSOCK: number;
  readonly S_IFLNK: number;
  readonly S_IFREG: number;
  readonly S_IFBLK: number;
  readonly S_IFDIR: number;
  readonly S_IFCHR: number;
  readonly S_IFIFO: number;
  readonly SHUT_RD: number;
  readonly SHUT_WR: number;
  readonly SHUT_RDWR: number;
  readonly POLLIN: number;
  readonly POLLOUT: number;
  readonly POLLERR: number;
  readonly POLLHUP: number;
  readonly POLLNVAL: number;
  /** `lseek` whence. */
  readonly SEEK_SET: number;
  readonly SEEK_CUR: number;
  /** `memfd_create` flags (Linux, FreeBSD 13+); 0 where unavailable. */
  readonly MFD_CLOEXEC: number;
  readonly MFD_ALLOW_SEALING: number;
  /** `eventfd` flags (Linux, FreeBSD 13+); 0 where unavailable. */
  readonly EFD_CLOEXEC: number;
  readonly EFD_NONBLOCK: number;
  readonly EFD_SEMAPHORE: number;
  /** epoll (Linux); 0 elsewhere. */
  readonly EPOLL_CLOEXEC: number;
  readonly EPOLL_CTL_ADD: number;
  readonly EPOLL_CTL_DEL: number;
  readonly EPOLL_CTL_MOD: number;
  readonly EPOLLIN: number;
  readonly EPOLLOUT: number;
  readonly EPOLLERR: number;
  readonly EPOLLHUP: number;
  readonly EPOLLONESHOT: number;
  /** kqueue (macOS, FreeBSD); 0 elsewhere. */
  readonly EVFILT_READ: number;
  readonly EVFILT_WRITE: number;
  readonly EV_ADD: number;
  readonly EV_DELETE: number;
  readonly EV_ONESHOT: number;
  readonly EV_ERROR: number;
  /** `mmap` protection and flags. */
  readonly PROT_READ: number;
  readonly PROT_WRITE: number;
  readonly MAP_SHARED: number;
  readonly MAP_PRIVATE: number;
  /** Bytes a writable pipe takes in one write without blocking. */
  readonly PIPE_BUF: number;
  /** `fcntl` file sealing (Linux, FreeBSD 13+); 0 elsewhere. */
  readonly F_ADD_SEALS: number;
  readonly F_GET_SEALS: number;
  readonly F_SEAL_SEAL: number;
  readonly F_SEAL_SHRINK: number;
  readonly F_SEAL_GROW: number;
  readonly F_SEAL_WRITE: number;
}

/** Everything platform-specific about one OS and architecture. */
export interface Layout {
  /** A short name such as `"linux-x86_64"`. */
  readonly name: string;
  /** The library `Deno.dlopen` opens. */
  readonly libraryPath: string;
  /** The errno accessor: `__errno_location` (glibc, musl) or `__error` (BSD). */
  readonly errnoSymbol: "__errno_location" | "__error";
  /**
   * Whether variadic arguments travel on the stack (Apple arm64), so that
   * `fcntl` and `open` need their padded declarations.
   */
  readonly variadicOnStack: boolean;
  /** Most fds the library sends or accepts in one message (`SCM_MAX_FD` on Linux). */
  readonly maxFdsPerMessage: number;
  /** Whether `AF_UNIX` supports `SOCK_SEQPACKET`. */
  readonly seqpacket: boolean;
  /** Whether the platform has `accept4`. */
  readonly accept4: boolean;
  readonly msghdr: MsghdrLayout;
  readonly iovec: IovecLayout;
  readonly cmsghdr: CmsghdrLayout;
  readonly sockaddrUn: SockaddrUnLayout;
  /** `struct sockaddr_in`; its family field sits where `sockaddrUn`'s does. */
  readonly sockaddrIn: SockaddrInLayout;
  readonly peerCredentials: PeerCredentialsLayout;
  /** `struct ucred` for `SCM_CREDENTIALS`, or size 0 where there is none. */
  readonly ucredSize: number;
  readonly stat: StatLayout;
  readonly pollfd: PollfdLayout;
  /** `struct epoll_event`, or `null` without epoll. */
  readonly epollEvent: EpollEventLayout | null;
  /** `struct kevent`, or `null` without kqueue. */
  readonly kevent: KeventLayout | null;
  readonly constants: Constants;
  /** errno names and numbers. */
  readonly errno: Readonly<Record<string, number>>;
}

function define(layout: Layout): Layout {
  return Object.freeze(layout);
}

const iovec: IovecLayout = { size: 16, base: 0, len: 8 };

const sockaddrIn: SockaddrInLayout = { size: 16, port: 2, address: 4 };

const pollfd: PollfdLayout = { size: 8, fd: 0, events: 4, revents: 6 };

// Linux: one zero-filled layout serves glibc and musl on x86_64 and aarch64
// (abi.md section 1): musl's pad words are the high halves of the u64 fields.
const linuxMsghdr: MsghdrLayout = {
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

const bsdMsghdr: MsghdrLayout = {
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

const sharedConstants = {
  AF_UNIX: 1,
  AF_INET: 2,
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

const noEpoll = {
  EPOLL_CLOEXEC: 0,
  EPOLL_CTL_ADD: 0,
  EPOLL_CTL_DEL: 0,
  EPOLL_CTL_MOD: 0,
  EPOLLIN: 0,
  EPOLLOUT: 0,
  EPOLLERR: 0,
  EPOLLHUP: 0,
  EPOLLONESHOT: 0,
} as const;

const kqueueConstants = {
  EVFILT_READ: -1,
  EVFILT_WRITE: -2,
  EV_ADD: 1,
  EV_DELETE: 2,
  EV_ONESHOT: 0x10,
  EV_ERROR: 0x4000,
} as const;

const noKqueue = {
  EVFILT_READ: 0,
  EVFILT_WRITE: 0,
  EV_ADD: 0,
  EV_DELETE: 0,
  EV_ONESHOT: 0,
  EV_ERROR: 0,
} as const;

const linuxConstantsCommon = {
  ...sharedConstants,
  ...noKqueue,
  PIPE_BUF: 4096,
  SOCK_CLOEXEC: 0x80000,
  SOCK_NONBLOCK: 0x800,
  SOL_SOCKET: 1,
  SCM_CREDENTIALS: 2,
  SO_PASSCRED: 16,
  SO_TYPE: 3,
  SO_REUSEADDR: 2,
  SO_ERROR: 4,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_NOSIGPIPE: 0,
  MSG_TRUNC: 0x20,
  MSG_CTRUNC: 0x8,
  MSG_WAITALL: 0x100,
  MSG_DONTWAIT: 0x40,
  MSG_EOR: 0x80,
  MSG_NOSIGNAL: 0x4000,
  MSG_CMSG_CLOEXEC: 0x40000000,
  F_DUPFD_CLOEXEC: 1030,
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
  F_ADD_SEALS: 1033,
  F_GET_SEALS: 1034,
  F_SEAL_SEAL: 1,
  F_SEAL_SHRINK: 2,
  F_SEAL_GROW: 4,
  F_SEAL_WRITE: 8,
} as const;

const linuxErrno: Readonly<Record<string, number>> = Object.freeze({
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
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

// macOS and FreeBSD share the BSD numbering below 100; they differ above it.
const bsdErrnoCommon = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  ECHILD: 10,
  EDEADLK: 11,
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
} as const;

const darwinErrno: Readonly<Record<string, number>> = Object.freeze({
  ...bsdErrnoCommon,
  ENOSYS: 78,
  EOPNOTSUPP: 102,
});

const freebsdErrno: Readonly<Record<string, number>> = Object.freeze({
  ...bsdErrnoCommon,
  EOPNOTSUPP: 45,
  ENOSYS: 78,
});

const linuxCommon = {
  libraryPath: "libc.so.6",
  errnoSymbol: "__errno_location",
  variadicOnStack: false,
  maxFdsPerMessage: 253,
  seqpacket: true,
  accept4: true,
  msghdr: linuxMsghdr,
  iovec,
  sockaddrIn,
  cmsghdr: { size: 16, len: 0, lenSize: 8, level: 8, type: 12, align: 8 },
  sockaddrUn: {
    size: 110,
    lenOffset: -1,
    familyOffset: 0,
    familySize: 2,
    pathOffset: 2,
    maxPathBytes: 108,
    abstractNamespace: true,
  },
  peerCredentials: {
    level: 1, // SOL_SOCKET
    option: 17, // SO_PEERCRED
    size: 12,
    versionOffset: -1,
    pidOffset: 0,
    pidOption: -1,
    uidOffset: 4,
    gidOffset: 8,
  },
  ucredSize: 12,
  pollfd,
  kevent: null,
  errno: linuxErrno,
} as const;

/** Linux x86_64, glibc or musl. */
export const linuxX86_64: Layout = define({
  ...linuxCommon,
  name: "linux-x86_64",
  // x86_64 `struct stat` (asm/stat.h).
  stat: {
    size: 144,
    dev: 0,
    devSize: 8,
    ino: 8,
    mode: 24,
    modeSize: 4,
    fileSize: 48,
  },
  // `struct epoll_event` is packed on x86_64: data sits at offset 4.
  epollEvent: { size: 12, events: 0, data: 4 },
  constants: {
    ...linuxConstantsCommon,
    O_DIRECTORY: 0o200000,
    O_NOFOLLOW: 0o400000,
  },
});

/** Linux aarch64, glibc or musl. */
export const linuxAarch64: Layout = define({
  ...linuxCommon,
  name: "linux-aarch64",
  // asm-generic `struct stat`.
  stat: {
    size: 128,
    dev: 0,
    devSize: 8,
    ino: 8,
    mode: 16,
    modeSize: 4,
    fileSize: 48,
  },
  epollEvent: { size: 16, events: 0, data: 8 },
  constants: {
    ...linuxConstantsCommon,
    // arm64 uses the asm-generic open flags for these two.
    O_DIRECTORY: 0o40000,
    O_NOFOLLOW: 0o100000,
  },
});

const bsdCmsghdr: CmsghdrLayout = {
  size: 12,
  len: 0,
  lenSize: 4,
  level: 4,
  type: 8,
  align: 4,
};

const bsdSockaddrUn: SockaddrUnLayout = {
  size: 106,
  lenOffset: 0,
  familyOffset: 1,
  familySize: 1,
  pathOffset: 2,
  // sun_path[104] holds 103 bytes and the NUL.
  maxPathBytes: 103,
  abstractNamespace: false,
};

const bsdSocketConstants = {
  PIPE_BUF: 512,
  SOL_SOCKET: 0xffff,
  SCM_CREDENTIALS: 0,
  SO_PASSCRED: 0,
  SO_TYPE: 0x1008,
  SO_REUSEADDR: 4,
  SO_ERROR: 0x1007,
  SO_SNDBUF: 0x1001,
  SO_RCVBUF: 0x1002,
  MSG_TRUNC: 0x10,
  MSG_CTRUNC: 0x20,
  MSG_WAITALL: 0x40,
  MSG_DONTWAIT: 0x80,
  MSG_EOR: 0x8,
  O_CREAT: 0x200,
  O_EXCL: 0x800,
  O_TRUNC: 0x400,
  O_APPEND: 0x8,
  O_NONBLOCK: 0x4,
  O_NOFOLLOW: 0x100,
} as const;

/** macOS on arm64 (Apple silicon). Taken from the xnu headers; not verified on a Mac. */
export const darwinArm64: Layout = define({
  name: "darwin-aarch64",
  libraryPath: "/usr/lib/libSystem.B.dylib",
  errnoSymbol: "__error",
  variadicOnStack: true,
  maxFdsPerMessage: 253,
  seqpacket: false,
  accept4: false,
  msghdr: bsdMsghdr,
  iovec,
  sockaddrIn,
  cmsghdr: bsdCmsghdr,
  sockaddrUn: bsdSockaddrUn,
  peerCredentials: {
    level: 0, // SOL_LOCAL
    option: 1, // LOCAL_PEERCRED
    size: 76,
    versionOffset: 0,
    pidOffset: -1,
    pidOption: 2, // LOCAL_PEERPID
    uidOffset: 4,
    gidOffset: 12,
  },
  ucredSize: 0,
  // 64-bit inode `struct stat`.
  stat: {
    size: 144,
    dev: 0,
    devSize: 4,
    ino: 8,
    mode: 4,
    modeSize: 2,
    fileSize: 96,
  },
  pollfd,
  epollEvent: null,
  kevent: {
    size: 32,
    ident: 0,
    filter: 8,
    flags: 10,
    fflags: 12,
    data: 16,
    udata: 24,
  },
  constants: {
    ...sharedConstants,
    ...noEpoll,
    ...kqueueConstants,
    ...bsdSocketConstants,
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
  },
  errno: darwinErrno,
});

/** macOS on x86_64: the arm64 layout with the System V variadic convention. */
export const darwinX86_64: Layout = define({
  ...darwinArm64,
  name: "darwin-x86_64",
  variadicOnStack: false,
});

/** FreeBSD 13+ on amd64. Taken from freebsd-src headers; not verified on FreeBSD. */
export const freebsdX86_64: Layout = define({
  name: "freebsd-x86_64",
  libraryPath: "libc.so.7",
  errnoSymbol: "__error",
  variadicOnStack: false,
  maxFdsPerMessage: 253,
  seqpacket: true,
  accept4: true,
  msghdr: bsdMsghdr,
  iovec,
  sockaddrIn,
  // FreeBSD aligns cmsgs to 8 (`_ALIGN`), so data sits at 16 like Linux.
  cmsghdr: { ...bsdCmsghdr, align: 8 },
  sockaddrUn: bsdSockaddrUn,
  peerCredentials: {
    level: 0,
    option: 1, // LOCAL_PEERCRED
    size: 88,
    versionOffset: 0,
    pidOffset: 80, // cr_pid, FreeBSD 13+
    pidOption: -1,
    uidOffset: 4,
    gidOffset: 12,
  },
  ucredSize: 0,
  stat: {
    size: 224,
    dev: 0,
    devSize: 8,
    ino: 8,
    mode: 24,
    modeSize: 2,
    fileSize: 112,
  },
  pollfd,
  epollEvent: null,
  // The FreeBSD 12+ `struct kevent` with `ext[4]`.
  kevent: {
    size: 64,
    ident: 0,
    filter: 8,
    flags: 10,
    fflags: 12,
    data: 16,
    udata: 24,
  },
  constants: {
    ...sharedConstants,
    ...noEpoll,
    ...kqueueConstants,
    ...bsdSocketConstants,
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
  },
  errno: freebsdErrno,
});

/** Every layout, keyed by `${Deno.build.os}-${Deno.build.arch}`. */
export const layouts: Readonly<Record<string, Layout>> = Object.freeze({
  "linux-x86_64": linuxX86_64,
  "linux-aarch64": linuxAarch64,
  "darwin-aarch64": darwinArm64,
  "darwin-x86_64": darwinX86_64,
  "freebsd-x86_64": freebsdX86_64,
});

/**
 * The layout for the running platform.
 *
 * @throws {Deno.errors.NotSupported} On a platform with no layout (Windows, 32-bit).
 */
export function currentLayout(): Layout {
  const key = `${Deno.build.os}-${Deno.build.arch}`;
  const layout = layouts[key];
  if (layout === undefined) {
    throw new Deno.errors.NotSupported(
      `fdpass does not support platform "${key}": supported are ${Object.keys(layouts).join(", ")}`,
    );
  }
  return layout;
}

/** `CMSG_ALIGN(n)` for a layout. */
export function cmsgAlign(layout: Layout, n: number): number {
  const a = layout.cmsghdr.align;
  return (n + a - 1) & ~(a - 1);
}

/** Offset of the data from the start of a cmsg (`CMSG_DATA(c) - c`). */
export function cmsgDataOffset(layout: Layout): number {
  return cmsgAlign(layout, layout.cmsghdr.size);
}

/** `CMSG_LEN(n)`: header plus `n` data bytes, unpadded. */
export function cmsgLen(layout: Layout, n: number): number {
  return cmsgDataOffset(layout) + n;
}

/** `CMSG_SPACE(n)`: header plus `n` data bytes, padded to the alignment. */
export function cmsgSpace(layout: Layout, n: number): number {
  return cmsgDataOffset(layout) + cmsgAlign(layout, n);
}

/** Size of one fd in an `SCM_RIGHTS` payload (`sizeof(int)`). */
export const FD_SIZE = 4;

/**
 * Control-buffer bytes the receiver allocates: room for the largest fd
 * message plus an `SCM_CREDENTIALS` message, so that our own buffer never
 * truncates what the kernel may deliver (abi.md section 4 and 10).
 */
export function receiveControlCapacity(layout: Layout): number {
  const creds = layout.ucredSize > 0 ? cmsgSpace(layout, layout.ucredSize) : 0;
  // macOS can deliver 254 fds in one message (abi.md section 7): budget for
  // one more than we send so that no peer can make us truncate.
  return cmsgSpace(layout, (layout.maxFdsPerMessage + 1) * FD_SIZE) + creds;
}
