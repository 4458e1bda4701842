/**
 * The libc symbol table, opened lazily once per isolate.
 *
 * Every parameter carries its C type as a comment. 64-bit parameters
 * (`size_t`, `off_t`, pointers as integers) are `usize`/`isize`/`i64`, and
 * callers pass `bigint`s so that the calls stay on Deno's fast path.
 *
 * @module
 */

import { currentLayout, type Layout } from "./layout.ts";

/** The symbols fdpass calls. Symbols a platform may lack are `optional`. */
export const symbols = {
  // --- descriptors ---
  close: {
    parameters: [
      "i32", // int fd
    ],
    result: "i32",
  },
  read: {
    parameters: [
      "i32", // int fd
      "buffer", // void *buf
      "usize", // size_t count
    ],
    result: "isize",
  },
  write: {
    parameters: [
      "i32", // int fd
      "buffer", // const void *buf
      "usize", // size_t count
    ],
    result: "isize",
  },
  pread: {
    parameters: [
      "i32", // int fd
      "buffer", // void *buf
      "usize", // size_t count
      "i64", // off_t offset
    ],
    result: "isize",
  },
  getrlimit: {
    parameters: [
      "i32", // int resource
      "buffer", // struct rlimit *rlim (two rlim_t, 64-bit on every supported platform)
    ],
    result: "i32",
  },
  lseek: {
    parameters: [
      "i32", // int fd
      "i64", // off_t offset
      "i32", // int whence
    ],
    result: "i64",
  },
  // int fcntl(int fd, int cmd, ...): the third argument travels as a 64-bit
  // register, which the callee reads as an int (System V, AAPCS64 on Linux).
  fcntl: {
    parameters: [
      "i32", // int fd
      "i32", // int cmd
      "i64", // int arg (variadic)
    ],
    result: "i32",
  },
  // Apple arm64 passes variadic arguments on the stack: fill the eight
  // argument registers, then the ninth parameter lands where va_arg reads.
  fcntl_variadic_stack: {
    name: "fcntl",
    parameters: [
      "i32", // int fd
      "i32", // int cmd
      "i64", // (x2, unused)
      "i64", // (x3, unused)
      "i64", // (x4, unused)
      "i64", // (x5, unused)
      "i64", // (x6, unused)
      "i64", // (x7, unused)
      "i64", // int arg (variadic, first stack slot)
    ],
    result: "i32",
  },
  open: {
    parameters: [
      "buffer", // const char *pathname
      "i32", // int flags
      "i64", // mode_t mode (variadic)
    ],
    result: "i32",
  },
  open_variadic_stack: {
    name: "open",
    parameters: [
      "buffer", // const char *pathname
      "i32", // int flags
      "i64", // (x2, unused)
      "i64", // (x3, unused)
      "i64", // (x4, unused)
      "i64", // (x5, unused)
      "i64", // (x6, unused)
      "i64", // (x7, unused)
      "i64", // mode_t mode (variadic, first stack slot)
    ],
    result: "i32",
  },
  fstat: {
    parameters: [
      "i32", // int fd
      "buffer", // struct stat *statbuf
    ],
    result: "i32",
  },
  lstat: {
    parameters: [
      "buffer", // const char *pathname
      "buffer", // struct stat *statbuf
    ],
    result: "i32",
  },
  unlink: {
    parameters: [
      "buffer", // const char *pathname
    ],
    result: "i32",
  },
  readlink: {
    parameters: [
      "buffer", // const char *pathname
      "buffer", // char *buf
      "usize", // size_t bufsiz
    ],
    result: "isize",
  },
  pipe: {
    parameters: [
      "buffer", // int pipefd[2]
    ],
    result: "i32",
  },
  pipe2: {
    parameters: [
      "buffer", // int pipefd[2]
      "i32", // int flags
    ],
    result: "i32",
    optional: true,
  },
  // Linux 5.3+, glibc 2.36+: a pidfd for LISTEN_PIDFDID.
  pidfd_open: {
    parameters: [
      "i32", // pid_t pid
      "u32", // unsigned int flags
    ],
    result: "i32",
    optional: true,
  },
  fstatfs: {
    parameters: [
      "i32", // int fd
      "buffer", // struct statfs *buf
    ],
    result: "i32",
    optional: true,
  },
  // --- sockets ---
  socket: {
    parameters: [
      "i32", // int domain
      "i32", // int type
      "i32", // int protocol
    ],
    result: "i32",
  },
  socketpair: {
    parameters: [
      "i32", // int domain
      "i32", // int type
      "i32", // int protocol
      "buffer", // int sv[2]
    ],
    result: "i32",
  },
  bind: {
    parameters: [
      "i32", // int sockfd
      "buffer", // const struct sockaddr *addr
      "u32", // socklen_t addrlen
    ],
    result: "i32",
  },
  listen: {
    parameters: [
      "i32", // int sockfd
      "i32", // int backlog
    ],
    result: "i32",
  },
  accept: {
    parameters: [
      "i32", // int sockfd
      "buffer", // struct sockaddr *addr
      "buffer", // socklen_t *addrlen
    ],
    result: "i32",
  },
  accept4: {
    parameters: [
      "i32", // int sockfd
      "buffer", // struct sockaddr *addr
      "buffer", // socklen_t *addrlen
      "i32", // int flags
    ],
    result: "i32",
    optional: true,
  },
  connect: {
    parameters: [
      "i32", // int sockfd
      "buffer", // const struct sockaddr *addr
      "u32", // socklen_t addrlen
    ],
    result: "i32",
  },
  // ssize_t sendmsg/recvmsg, declared as a 32-bit result: callers never
  // transfer 2 GiB or more in one call, so the low half (eax / w0) carries
  // the whole count and -1 stays -1, and no BigInt is made per message.
  sendmsg: {
    parameters: [
      "i32", // int sockfd
      "pointer", // const struct msghdr *msg
      "i32", // int flags
    ],
    result: "i32",
  },
  recvmsg: {
    parameters: [
      "i32", // int sockfd
      "pointer", // struct msghdr *msg
      "i32", // int flags
    ],
    result: "i32",
  },
  getsockopt: {
    parameters: [
      "i32", // int sockfd
      "i32", // int level
      "i32", // int optname
      "buffer", // void *optval
      "buffer", // socklen_t *optlen
    ],
    result: "i32",
  },
  setsockopt: {
    parameters: [
      "i32", // int sockfd
      "i32", // int level
      "i32", // int optname
      "buffer", // const void *optval
      "u32", // socklen_t optlen
    ],
    result: "i32",
  },
  getsockname: {
    parameters: [
      "i32", // int sockfd
      "buffer", // struct sockaddr *addr
      "buffer", // socklen_t *addrlen
    ],
    result: "i32",
  },
  getpeername: {
    parameters: [
      "i32", // int sockfd
      "buffer", // struct sockaddr *addr
      "buffer", // socklen_t *addrlen
    ],
    result: "i32",
  },
  shutdown: {
    parameters: [
      "i32", // int sockfd
      "i32", // int how
    ],
    result: "i32",
  },
  // --- waiting ---
  poll: {
    parameters: [
      "buffer", // struct pollfd *fds
      "u64", // nfds_t nfds (u32 on BSD; the upper half is ignored there)
      "i32", // int timeout
    ],
    result: "i32",
  },
  // The poller's only waiting call: at most one is outstanding per isolate,
  // always with a finite timeout (src/poller.ts).
  poll_wait: {
    name: "poll",
    parameters: [
      "buffer", // struct pollfd *fds
      "u64", // nfds_t nfds
      "i32", // int timeout
    ],
    result: "i32",
    nonblocking: true,
  },
  epoll_create1: {
    parameters: [
      "i32", // int flags
    ],
    result: "i32",
    optional: true,
  },
  epoll_ctl: {
    parameters: [
      "i32", // int epfd
      "i32", // int op
      "i32", // int fd
      "buffer", // struct epoll_event *event
    ],
    result: "i32",
    optional: true,
  },
  epoll_wait: {
    parameters: [
      "i32", // int epfd
      "buffer", // struct epoll_event *events
      "i32", // int maxevents
      "i32", // int timeout
    ],
    result: "i32",
    nonblocking: true,
    optional: true,
  },
  // The same call on the JavaScript thread with a zero timeout: collects
  // what is ready without a blocking-pool thread (the io_uring doorbell).
  epoll_wait_now: {
    name: "epoll_wait",
    parameters: [
      "i32", // int epfd
      "buffer", // struct epoll_event *events
      "i32", // int maxevents
      "i32", // int timeout (always 0)
    ],
    result: "i32",
    optional: true,
  },
  // --- io_uring (no libc wrappers: syscall(2), whose variadic arguments
  // travel in registers like fixed ones on Linux's x86_64 and aarch64) ---
  io_uring_setup: {
    name: "syscall",
    parameters: [
      "i64", // long number (__NR_io_uring_setup)
      "u32", // u32 entries
      "buffer", // struct io_uring_params *p
    ],
    result: "i64",
    optional: true,
  },
  io_uring_enter: {
    name: "syscall",
    parameters: [
      "i64", // long number (__NR_io_uring_enter)
      "i32", // unsigned int fd
      "u32", // u32 to_submit
      "u32", // u32 min_complete
      "u32", // u32 flags
      "pointer", // const sigset_t *sig (NULL)
      "usize", // size_t sz
    ],
    result: "i64",
    optional: true,
  },
  // --- shared memory and events ---
  memfd_create: {
    parameters: [
      "buffer", // const char *name
      "u32", // unsigned int flags
    ],
    result: "i32",
    optional: true,
  },
  eventfd: {
    parameters: [
      "u32", // unsigned int initval
      "i32", // int flags
    ],
    result: "i32",
    optional: true,
  },
  ftruncate: {
    parameters: [
      "i32", // int fd
      "i64", // off_t length
    ],
    result: "i32",
  },
  mmap: {
    parameters: [
      "pointer", // void *addr
      "usize", // size_t length
      "i32", // int prot
      "i32", // int flags
      "i32", // int fd
      "i64", // off_t offset
    ],
    result: "pointer",
  },
  munmap: {
    parameters: [
      "pointer", // void *addr
      "usize", // size_t length
    ],
    result: "i32",
  },
  // --- time ---
  clock_gettime: {
    parameters: [
      "i32", // clockid_t clockid
      "buffer", // struct timespec *tp
    ],
    result: "i32",
  },
  // --- errors ---
  strerror: {
    parameters: [
      "i32", // int errnum
    ],
    result: "pointer",
  },
  __errno_location: { parameters: [], result: "pointer", optional: true },
  __error: { parameters: [], result: "pointer", optional: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened symbols. */
export type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];

/** The libc handle plus the per-isolate pieces read from it once. */
export interface LibcContext {
  /** The symbols. */
  readonly lib: Libc;
  /** The platform layout the library was opened with. */
  readonly layout: Layout;
  /** A view over this thread's `errno`; read `errno[0]` right after a call. */
  readonly errno: Int32Array;
  /** `fcntl(fd, cmd, arg)` with the platform's variadic convention. */
  readonly fcntl: (fd: number, cmd: number, arg: number) => number;
  /** `open(path, flags, mode)` with the platform's variadic convention. */
  readonly open: (path: Uint8Array, flags: number, mode: number) => number;
}

let context: LibcContext | undefined;

/**
 * Opens libc on first use and returns the shared context.
 *
 * @throws {Deno.errors.NotCapable} Without unscoped FFI permission, after
 * asking for it when Deno can prompt.
 * @throws {Error} When the library cannot be opened, with the cause attached.
 */
export function libc(): LibcContext {
  return context ??= openLibc();
}

/**
 * The message of the `NotCapable` thrown without unscoped FFI permission.
 *
 * @param state The state of the unscoped `ffi` permission.
 * @returns The message.
 */
function ffiPermissionMessage(state: Deno.PermissionState): string {
  return `fdpass needs unscoped FFI permission, but it is "${state}": run with --allow-ffi ` +
    `(no path). A path-scoped grant such as --allow-ffi=<path> is not enough: Deno's pointer ` +
    `APIs (Deno.UnsafePointer, Deno.UnsafePointerView), which fdpass needs to read errno and ` +
    `fill in message headers, check for unscoped FFI permission`;
}

/**
 * Makes sure the unscoped `ffi` permission is granted before `dlopen`.
 *
 * Asking first matters in two ways. Deno's own prompt from `dlopen` asks for
 * the bare library name only, and once granted resolves that name against the
 * current directory, so `dlopen("libc.so.6")` fails with "Could not open
 * library: <cwd>/libc.so.6" (Deno 2.9). And a grant for one path would let
 * `dlopen` pass but make the pointer APIs throw later. An unscoped request
 * prompts for all FFI (when stdin is a terminal and `--no-prompt` is absent)
 * and, once granted, `dlopen` by name goes through the dynamic loader as with
 * `--allow-ffi`.
 */
function requireFfiPermission(): void {
  let state = Deno.permissions.querySync({ name: "ffi" }).state;
  // Without a terminal or under --no-prompt the request answers "denied"
  // at once, without printing anything.
  if (state === "prompt") state = Deno.permissions.requestSync({ name: "ffi" }).state;
  if (state !== "granted") throw new Deno.errors.NotCapable(ffiPermissionMessage(state));
}

function openLibc(): LibcContext {
  const layout = currentLayout();
  requireFfiPermission();
  let dylib: Deno.DynamicLibrary<typeof symbols>;
  try {
    dylib = Deno.dlopen(layout.libraryPath, symbols);
  } catch (cause) {
    if (cause instanceof Deno.errors.NotCapable) {
      throw new Deno.errors.NotCapable(ffiPermissionMessage("denied"), { cause });
    }
    throw new Error(`Failed to open libc "${layout.libraryPath}"`, { cause });
  }
  const lib = dylib.symbols;
  const errnoLocation = lib[layout.errnoSymbol];
  if (errnoLocation === null) {
    throw new Error(`libc has no errno accessor "${layout.errnoSymbol}"`);
  }
  const errnoPointer = errnoLocation();
  if (errnoPointer === null) {
    throw new Error(`"${layout.errnoSymbol}" returned a null pointer`);
  }
  const errno = new Int32Array(
    Deno.UnsafePointerView.getArrayBuffer(errnoPointer, 4),
  );
  const fcntl = layout.variadicOnStack
    ? (fd: number, cmd: number, arg: number) =>
      lib.fcntl_variadic_stack(fd, cmd, 0n, 0n, 0n, 0n, 0n, 0n, BigInt(arg))
    : (fd: number, cmd: number, arg: number) => lib.fcntl(fd, cmd, BigInt(arg));
  const open = layout.variadicOnStack
    ? (path: Uint8Array, flags: number, mode: number) =>
      lib.open_variadic_stack(path, flags, 0n, 0n, 0n, 0n, 0n, 0n, BigInt(mode))
    : (path: Uint8Array, flags: number, mode: number) => lib.open(path, flags, BigInt(mode));
  return Object.freeze({ lib, layout, errno, fcntl, open });
}
