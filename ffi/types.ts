/**
 * The shape of a platform layout: struct offsets, constants and features.
 *
 * Only types live here, so that `layout.ts` (which imports the rows) and
 * `platforms/*.ts` (which define them) both depend on this file and never on
 * each other.
 *
 * @module
 */

/** Offsets (bytes) of `struct msghdr` (`recvmsg(2)`, `<sys/socket.h>`). */
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

/** Offsets (bytes) of `struct iovec` (`readv(2)`). */
export interface IovecLayout {
  /** `sizeof(struct iovec)`. */
  readonly size: number;
  /** `void *iov_base`. */
  readonly base: number;
  /** `size_t iov_len`. */
  readonly len: number;
}

/** Layout of `struct cmsghdr` and the rule behind `CMSG_ALIGN` (`cmsg(3)`). */
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

/** Layout of `struct sockaddr_un` (`unix(7)`, `<sys/un.h>`). */
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
}

/** Layout of `struct sockaddr_in` (IPv4, `ip(7)`). */
export interface SockaddrInLayout {
  /** `sizeof(struct sockaddr_in)`. */
  readonly size: number;
  /** Offset of `sin_port` (big-endian u16). */
  readonly port: number;
  /** Offset of `sin_addr` (4 bytes, network order). */
  readonly address: number;
}

/** Layout of `struct sockaddr_in6` (IPv6, `ipv6(7)`). */
export interface SockaddrIn6Layout {
  /** `sizeof(struct sockaddr_in6)`. */
  readonly size: number;
  /** Offset of `sin6_port` (big-endian u16). */
  readonly port: number;
  /** Offset of `sin6_flowinfo` (u32, network order). */
  readonly flowinfo: number;
  /** Offset of `sin6_addr` (16 bytes, network order). */
  readonly address: number;
  /** Offset of `sin6_scope_id` (u32, host order): the interface of a link-local address. */
  readonly scopeId: number;
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

/** Offsets of the `struct stat` fields the library reads (`fstat(2)`). */
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

/** Layout of `struct pollfd` (`poll(2)`). */
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

/**
 * How to recognise a pidfd served by pidfs (Linux 6.9+), whose inode number
 * identifies the process (`LISTEN_PIDFDID`, sd_listen_fds(3)).
 */
export interface PidfsLayout {
  /** `sizeof(struct statfs)`. */
  readonly statfsSize: number;
  /** Offset of `f_type` in `struct statfs` (a native-endian word). */
  readonly statfsType: number;
  /** `PID_FS_MAGIC` (include/uapi/linux/magic.h): the `f_type` of pidfs. */
  readonly magic: number;
}

/** Layout of `struct timespec` (`clock_gettime(2)`, `<time.h>`). */
export interface TimespecLayout {
  /** `sizeof(struct timespec)`. */
  readonly size: number;
  /** `time_t tv_sec` (i64 on every supported platform). */
  readonly seconds: number;
  /** `long tv_nsec` (i64 on LP64). */
  readonly nanoseconds: number;
}

/** Layout of `struct epoll_event` (`epoll_ctl(2)`, Linux only). */
export interface EpollEventLayout {
  /** `sizeof(struct epoll_event)`: 12 (packed) on x86_64, 16 on aarch64. */
  readonly size: number;
  /** `u32 events`. */
  readonly events: number;
  /** `u64 data`. */
  readonly data: number;
}

/**
 * The io_uring interface (`io_uring_setup(2)`, `io_uring_enter(2)`,
 * include/uapi/linux/io_uring.h): the same on every Linux architecture.
 */
export interface IoUringLayout {
  /** `__NR_io_uring_setup`. */
  readonly setupSyscall: number;
  /** `__NR_io_uring_enter`. */
  readonly enterSyscall: number;
  /** `struct io_uring_params`. */
  readonly params: {
    /** `sizeof(struct io_uring_params)`. */
    readonly size: number;
    /** `__u32 sq_entries`. */
    readonly sqEntries: number;
    /** `__u32 cq_entries`. */
    readonly cqEntries: number;
    /** `__u32 flags`. */
    readonly flags: number;
    /** `__u32 features`. */
    readonly features: number;
    /** `struct io_sqring_offsets sq_off`. */
    readonly sqOff: number;
    /** `struct io_cqring_offsets cq_off`. */
    readonly cqOff: number;
  };
  /** Fields of `struct io_sqring_offsets`, relative to `sq_off` (all `__u32`). */
  readonly sqOffsets: {
    readonly head: number;
    readonly tail: number;
    readonly ringMask: number;
    readonly array: number;
  };
  /** Fields of `struct io_cqring_offsets`, relative to `cq_off` (all `__u32`). */
  readonly cqOffsets: {
    readonly head: number;
    readonly tail: number;
    readonly ringMask: number;
    readonly cqes: number;
  };
  /** `struct io_uring_sqe`. */
  readonly sqe: {
    /** `sizeof(struct io_uring_sqe)`. */
    readonly size: number;
    /** `__u8 opcode`. */
    readonly opcode: number;
    /** `__u8 flags`. */
    readonly flags: number;
    /** `__s32 fd`. */
    readonly fd: number;
    /** `__u64 off`. */
    readonly off: number;
    /** `__u64 addr`. */
    readonly addr: number;
    /** `__u32 len`. */
    readonly len: number;
    /** The op-specific `__u32` (`poll32_events`, `msg_flags`). */
    readonly opFlags: number;
    /** `__u64 user_data`. */
    readonly userData: number;
  };
  /** `struct io_uring_cqe`. */
  readonly cqe: {
    /** `sizeof(struct io_uring_cqe)` without `IORING_SETUP_CQE32`. */
    readonly size: number;
    /** `__u64 user_data`. */
    readonly userData: number;
    /** `__s32 res`. */
    readonly res: number;
  };
  /** `IORING_SETUP_CQSIZE`: `cq_entries` says the completion queue's size. */
  readonly setupCqsize: number;
  /** `IORING_OFF_SQ_RING`, the mmap offset of the rings. */
  readonly offSqRing: number;
  /** `IORING_OFF_SQES`, the mmap offset of the submission entries. */
  readonly offSqes: number;
  /** `IORING_OP_POLL_ADD`. */
  readonly opPollAdd: number;
  /** `IORING_OP_WRITE` (5.6). */
  readonly opWrite: number;
  /** `IOSQE_IO_HARDLINK`: the next entry runs when this one completes, even with an error. */
  readonly sqeIoHardlink: number;
  /** `IORING_FEAT_SINGLE_MMAP`. */
  readonly featSingleMmap: number;
  /** `IORING_FEAT_NODROP`. */
  readonly featNodrop: number;
  /** `IORING_FEAT_FAST_POLL` (5.7). */
  readonly featFastPoll: number;
  /** `MAP_POPULATE`. */
  readonly mapPopulate: number;
}

/**
 * What the platform offers. Code decides with these flags, never by testing
 * a constant against 0.
 */
export interface Features {
  /** `AF_UNIX` supports `SOCK_SEQPACKET`. */
  readonly seqpacket: boolean;
  /** The Linux abstract socket namespace exists (`unix(7)`). */
  readonly abstractNames: boolean;
  /** `accept4(2)` exists. */
  readonly accept4: boolean;
  /** `socket()` and `socketpair()` accept `SOCK_CLOEXEC | SOCK_NONBLOCK` in the type. */
  readonly socketFlags: boolean;
  /** `pipe2(2)` exists. */
  readonly pipe2: boolean;
  /** `recvmsg()` takes `MSG_CMSG_CLOEXEC`. */
  readonly msgCmsgCloexec: boolean;
  /** Sockets need `SO_NOSIGPIPE` set (`MSG_NOSIGNAL` does not cover every write). */
  readonly soNosigpipe: boolean;
  /** `SO_PASSCRED` and `SCM_CREDENTIALS` exist (Linux). */
  readonly passCredentials: boolean;
  /** `memfd_create(2)` exists. */
  readonly memfd: boolean;
  /** `fcntl` takes `F_ADD_SEALS` and `F_GET_SEALS`. */
  readonly fileSeals: boolean;
  /** `eventfd(2)` exists. */
  readonly eventfd: boolean;
  /** `epoll(7)` exists. */
  readonly epoll: boolean;
  /**
   * `io_uring(7)` may exist (Linux 5.7 or later, not disabled by
   * `kernel.io_uring_disabled` or a seccomp filter): the poller tries it at
   * run time and falls back to epoll.
   */
  readonly ioUring: boolean;
  /** `/proc/self/fd/N` names and reopens fds (Linux, `proc(5)`). */
  readonly procSelfFd: boolean;
}

/**
 * Every constant the library passes to libc, by its C name.
 *
 * A constant the platform lacks holds 0. That 0 is only a placeholder: check
 * {@linkcode Features} for availability, never compare a constant with 0.
 */
export interface Constants {
  /** `AF_UNIX`. */
  readonly AF_UNIX: number;
  /** `AF_INET` (IPv4). */
  readonly AF_INET: number;
  /** `AF_INET6` (IPv6). */
  readonly AF_INET6: number;
  /** `SOCK_STREAM`. */
  readonly SOCK_STREAM: number;
  /** `SOCK_DGRAM`. */
  readonly SOCK_DGRAM: number;
  /** `SOCK_SEQPACKET`; `AF_UNIX` accepts it only where `features.seqpacket`. */
  readonly SOCK_SEQPACKET: number;
  /** 0: the platform has no such flag; check `features.socketFlags`. */
  readonly SOCK_CLOEXEC: number;
  /** 0: the platform has no such flag; check `features.socketFlags`. */
  readonly SOCK_NONBLOCK: number;
  /** `SOL_SOCKET`. */
  readonly SOL_SOCKET: number;
  /** `SCM_RIGHTS`. */
  readonly SCM_RIGHTS: number;
  /** 0: the platform has no such message; check `features.passCredentials`. */
  readonly SCM_CREDENTIALS: number;
  /** 0: the platform has no such option; check `features.passCredentials`. */
  readonly SO_PASSCRED: number;
  /** `SO_TYPE`. */
  readonly SO_TYPE: number;
  /** `SO_REUSEADDR`. */
  readonly SO_REUSEADDR: number;
  /** `SO_ERROR`. */
  readonly SO_ERROR: number;
  /** `SO_REUSEPORT`: several sockets may bind the same address and port. */
  readonly SO_REUSEPORT: number;
  /** `SO_ACCEPTCONN` (`getsockopt` only): non-zero on a listening socket. */
  readonly SO_ACCEPTCONN: number;
  /** `IPPROTO_IPV6`: the `setsockopt` level of the `IPV6_*` options. */
  readonly IPPROTO_IPV6: number;
  /** `IPV6_V6ONLY`: an IPv6 socket bound to `::` takes no IPv4 connections. */
  readonly IPV6_V6ONLY: number;
  /** 0: the platform has no such option; check `features.soNosigpipe`. */
  readonly SO_NOSIGPIPE: number;
  /** `MSG_PEEK`. */
  readonly MSG_PEEK: number;
  /** `MSG_TRUNC`. */
  readonly MSG_TRUNC: number;
  /** `MSG_CTRUNC`. */
  readonly MSG_CTRUNC: number;
  /** `MSG_DONTWAIT`. */
  readonly MSG_DONTWAIT: number;
  /** `MSG_NOSIGNAL`. */
  readonly MSG_NOSIGNAL: number;
  /** 0: the platform has no such flag; check `features.msgCmsgCloexec`. */
  readonly MSG_CMSG_CLOEXEC: number;
  /** `F_DUPFD_CLOEXEC`. */
  readonly F_DUPFD_CLOEXEC: number;
  /** `getrlimit` resource `RLIMIT_NOFILE` (sys/resource.h). */
  readonly RLIMIT_NOFILE: number;
  /** `F_GETFD`. */
  readonly F_GETFD: number;
  /** `F_SETFD`. */
  readonly F_SETFD: number;
  /** `F_GETFL`. */
  readonly F_GETFL: number;
  /** `F_SETFL`. */
  readonly F_SETFL: number;
  /** `FD_CLOEXEC`. */
  readonly FD_CLOEXEC: number;
  /** `O_RDONLY`. */
  readonly O_RDONLY: number;
  /** `O_WRONLY`. */
  readonly O_WRONLY: number;
  /** `O_RDWR`. */
  readonly O_RDWR: number;
  /** `O_ACCMODE`. */
  readonly O_ACCMODE: number;
  /** `O_CREAT`. */
  readonly O_CREAT: number;
  /** `O_EXCL`. */
  readonly O_EXCL: number;
  /** `O_TRUNC`. */
  readonly O_TRUNC: number;
  /** `O_APPEND`. */
  readonly O_APPEND: number;
  /** `O_NONBLOCK`. */
  readonly O_NONBLOCK: number;
  /** `O_CLOEXEC`. */
  readonly O_CLOEXEC: number;
  /** `O_DIRECTORY`. */
  readonly O_DIRECTORY: number;
  /** `O_NOFOLLOW`. */
  readonly O_NOFOLLOW: number;
  /** `S_IFMT`: the file-type bits of `st_mode`. */
  readonly S_IFMT: number;
  /** `S_IFSOCK`. */
  readonly S_IFSOCK: number;
  /** `S_IFLNK`. */
  readonly S_IFLNK: number;
  /** `S_IFREG`. */
  readonly S_IFREG: number;
  /** `S_IFBLK`. */
  readonly S_IFBLK: number;
  /** `S_IFDIR`. */
  readonly S_IFDIR: number;
  /** `S_IFCHR`. */
  readonly S_IFCHR: number;
  /** `S_IFIFO`. */
  readonly S_IFIFO: number;
  /** `SHUT_RD`. */
  readonly SHUT_RD: number;
  /** `SHUT_WR`. */
  readonly SHUT_WR: number;
  /** `SHUT_RDWR`. */
  readonly SHUT_RDWR: number;
  /** `POLLIN`. */
  readonly POLLIN: number;
  /** `POLLOUT`. */
  readonly POLLOUT: number;
  /** `POLLERR`. */
  readonly POLLERR: number;
  /** `POLLHUP`. */
  readonly POLLHUP: number;
  /** `POLLNVAL`. */
  readonly POLLNVAL: number;
  /** `lseek` whence `SEEK_SET`. */
  readonly SEEK_SET: number;
  /** `lseek` whence `SEEK_CUR`. */
  readonly SEEK_CUR: number;
  /** 0: the platform has no such flag; check `features.memfd`. */
  readonly MFD_CLOEXEC: number;
  /** 0: the platform has no such flag; check `features.memfd`. */
  readonly MFD_ALLOW_SEALING: number;
  /** 0: the platform has no such flag; check `features.eventfd`. */
  readonly EFD_CLOEXEC: number;
  /** 0: the platform has no such flag; check `features.eventfd`. */
  readonly EFD_NONBLOCK: number;
  /** 0: the platform has no such flag; check `features.eventfd`. */
  readonly EFD_SEMAPHORE: number;
  /** 0: the platform has no such flag; check `features.epoll`. */
  readonly EPOLL_CLOEXEC: number;
  /** 0: the platform has no such operation; check `features.epoll`. */
  readonly EPOLL_CTL_ADD: number;
  /** 0: the platform has no such operation; check `features.epoll`. */
  readonly EPOLL_CTL_DEL: number;
  /** 0: the platform has no such operation; check `features.epoll`. */
  readonly EPOLL_CTL_MOD: number;
  /** 0: the platform has no such flag; check `features.epoll`. */
  readonly EPOLLIN: number;
  /** 0: the platform has no such flag; check `features.epoll`. */
  readonly EPOLLOUT: number;
  /** 0: the platform has no such flag; check `features.epoll`. */
  readonly EPOLLERR: number;
  /** 0: the platform has no such flag; check `features.epoll`. */
  readonly EPOLLHUP: number;
  /** 0: the platform has no such flag; check `features.epoll`. */
  readonly EPOLLONESHOT: number;
  /** 0: the platform has no such flag; check `features.epoll`. */
  readonly EPOLLET: number;
  /** `mmap` `PROT_READ`. */
  readonly PROT_READ: number;
  /** `mmap` `PROT_WRITE`. */
  readonly PROT_WRITE: number;
  /** `mmap` `MAP_SHARED`. */
  readonly MAP_SHARED: number;
  /** `mmap` `MAP_PRIVATE`. */
  readonly MAP_PRIVATE: number;
  /** `PIPE_BUF`: bytes a pipe takes in one atomic write. */
  readonly PIPE_BUF: number;
  /** 0: the platform has no such command; check `features.fileSeals`. */
  readonly F_ADD_SEALS: number;
  /** 0: the platform has no such command; check `features.fileSeals`. */
  readonly F_GET_SEALS: number;
  /** 0: the platform has no such seal; check `features.fileSeals`. */
  readonly F_SEAL_SEAL: number;
  /** 0: the platform has no such seal; check `features.fileSeals`. */
  readonly F_SEAL_SHRINK: number;
  /** 0: the platform has no such seal; check `features.fileSeals`. */
  readonly F_SEAL_GROW: number;
  /** 0: the platform has no such seal; check `features.fileSeals`. */
  readonly F_SEAL_WRITE: number;
  /** `CLOCK_MONOTONIC`: the clock `MONOTONIC_USEC=` of `sd_notify(3)` is read from. */
  readonly CLOCK_MONOTONIC: number;
}

/** Everything platform-specific about one OS and architecture. */
export interface Layout {
  /** A short name such as `"linux-x86_64"`: the key in `layouts`. */
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
  /** What the platform offers; consult these rather than testing constants for 0. */
  readonly features: Features;
  /** `struct msghdr`. */
  readonly msghdr: MsghdrLayout;
  /** `struct iovec`. */
  readonly iovec: IovecLayout;
  /** `struct cmsghdr`. */
  readonly cmsghdr: CmsghdrLayout;
  /** `struct sockaddr_un`. */
  readonly sockaddrUn: SockaddrUnLayout;
  /** `struct sockaddr_in`; its family field sits where `sockaddrUn`'s does. */
  readonly sockaddrIn: SockaddrInLayout;
  /** `struct sockaddr_in6`; its family field sits where `sockaddrUn`'s does. */
  readonly sockaddrIn6: SockaddrIn6Layout;
  /** How to read the peer's credentials. */
  readonly peerCredentials: PeerCredentialsLayout;
  /** `struct ucred` for `SCM_CREDENTIALS`, or 0 where there is none. */
  readonly ucredSize: number;
  /** `struct stat`. */
  readonly stat: StatLayout;
  /** `struct pollfd`. */
  readonly pollfd: PollfdLayout;
  /** `struct timespec`. */
  readonly timespec: TimespecLayout;
  /** `struct epoll_event`, or `null` without epoll. */
  readonly epollEvent: EpollEventLayout | null;
  /** The io_uring interface, or `null` without one. */
  readonly ioUring: IoUringLayout | null;
  /** pidfs recognition, or `null` where there are no pidfds. */
  readonly pidfs: PidfsLayout | null;
  /** Constants by C name. */
  readonly constants: Constants;
  /** errno names and numbers; no number appears twice. */
  readonly errno: Readonly<Record<string, number>>;
}
