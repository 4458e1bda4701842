/**
 * Typed errors: {@linkcode ErrnoError} for failed system calls,
 * {@linkcode ControlTruncatedError} for fd messages that did not arrive whole,
 * and the `Deno.errors` the library throws for closed resources.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";

const errnoBrand: unique symbol = Symbol("fdpass.ErrnoError");

/**
 * A system call failed. Carries the errno as a number and a name.
 *
 * Where Deno has a matching error class (`Deno.errors.NotFound` for
 * `ENOENT`, `BrokenPipe` for `EPIPE`, ...), the thrown error is an instance of
 * that class too, so both `instanceof ErrnoError` and
 * `instanceof Deno.errors.NotFound` hold, and its `name` is the Deno class
 * name. Otherwise its `name` is `"ErrnoError"`.
 *
 * @example Catch a failed connect
 * ```ts
 * import { ErrnoError, UnixSocket } from "@fdpass/fdpass";
 * import { assert, assertEquals } from "@std/assert";
 *
 * try {
 *   UnixSocket.connectSync("/nonexistent/fdpass.sock");
 * } catch (error) {
 *   if (!(error instanceof ErrnoError)) throw error;
 *   assert(error instanceof Deno.errors.NotFound);
 *   assertEquals(error.code, "ENOENT");
 *   assertEquals(error.syscall, "connect");
 * }
 * ```
 */
export class ErrnoError extends Error {
  /** The errno name, such as `"EBADF"`, or `"E123"` for an unknown number. */
  readonly code: string;
  /** The errno number on this platform. */
  readonly errno: number;
  /** The libc function that failed, such as `"sendmsg"`. */
  readonly syscall: string;
  /** The path involved, if any. */
  readonly path: string | undefined;

  /**
   * Creates the error without choosing a Deno class; use
   * {@linkcode ErrnoError.from} to get the matching `Deno.errors` class.
   *
   * @param errno The errno number.
   * @param syscall The libc function that failed.
   * @param path The path involved, if any.
   */
  constructor(errno: number, syscall: string, path?: string) {
    const fields = describe(errno, syscall, path);
    super(fields.message);
    this.name = "ErrnoError";
    this.code = fields.code;
    this.errno = errno;
    this.syscall = syscall;
    this.path = path;
  }

  /**
   * Whether `value` is an errno error, including those that are instances
   * of a `Deno.errors` class.
   *
   * @param value Any value.
   * @returns `true` for errors made by this library from an errno.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && errnoBrand in value;
  }

  /**
   * Builds the error for `errno`, as an instance of the matching
   * `Deno.errors` class where one exists.
   *
   * @param errno The errno number.
   * @param syscall The libc function that failed.
   * @param path The path involved, if any.
   * @returns The error.
   */
  static from(errno: number, syscall: string, path?: string): ErrnoError {
    const code = errnoName(errno);
    const DenoClass = denoErrorClass(code);
    if (DenoClass === undefined) return new ErrnoError(errno, syscall, path);
    const fields = describe(errno, syscall, path);
    const error = new DenoClass(fields.message);
    Object.defineProperties(error, {
      code: { value: fields.code, enumerable: true },
      errno: { value: errno, enumerable: true },
      syscall: { value: syscall, enumerable: true },
      path: { value: path, enumerable: true },
      [errnoBrand]: { value: true },
    });
    return error as unknown as ErrnoError;
  }

  /**
   * The errno name for a number on this platform.
   *
   * @param errno The errno number.
   * @returns The name, such as `"EAGAIN"`, or `"E<n>"` when unknown.
   */
  static nameOf(errno: number): string {
    return errnoName(errno);
  }
}
Object.defineProperty(ErrnoError.prototype, errnoBrand, { value: true });

/**
 * Received file descriptors did not all arrive, or more arrived than the
 * caller accepts. Every fd that did arrive has been closed; the message data
 * (already taken off the socket) is in {@linkcode ControlTruncatedError.data}.
 *
 * The kernel sets `MSG_CTRUNC` when the receiver is at its fd limit
 * (`RLIMIT_NOFILE`), when a security module refuses an fd, or when the
 * control buffer is too small. fdpass always passes a buffer large enough for
 * the largest message, and enforces `maxFds` itself.
 *
 * @example Refuse fds when none are wanted
 * ```ts
 * import { ControlTruncatedError, UnixSocket, openFd } from "@fdpass/fdpass";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * const [a, b] = UnixSocket.pair();
 * using file = openFd("/dev/null");
 * a.sendSync("x", { fds: [file] });
 * const error = assertThrows(
 *   () => b.recvSync({ maxFds: 0 }),
 *   ControlTruncatedError,
 * );
 * assertEquals(new TextDecoder().decode(error.data), "x");
 * assertEquals(error.reason, "max-fds");
 * a.close();
 * b.close();
 * ```
 */
export class ControlTruncatedError extends Error {
  /** The data bytes of the message, which were received. */
  readonly data: Uint8Array;
  /** How many fds arrived (and were closed). */
  readonly received: number;
  /**
   * `"kernel"` when the kernel reported `MSG_CTRUNC`, `"max-fds"` when more
   * fds arrived than the `maxFds` option allows.
   */
  readonly reason: "kernel" | "max-fds";

  /**
   * Creates the error; the library throws it from receives.
   *
   * @param message The message.
   * @param data The data bytes that were received.
   * @param received How many fds arrived and were closed.
   * @param reason Why the message is incomplete.
   */
  constructor(
    message: string,
    data: Uint8Array,
    received: number,
    reason: "kernel" | "max-fds",
  ) {
    super(message);
    this.name = "ControlTruncatedError";
    this.data = data;
    this.received = received;
    this.reason = reason;
  }
}

let names: Map<number, string> | undefined;

function errnoName(errno: number): string {
  if (names === undefined) {
    names = new Map();
    for (const [name, value] of Object.entries(libc().layout.errno)) {
      if (!names.has(value)) names.set(value, name);
    }
  }
  return names.get(errno) ?? `E${errno}`;
}

function describe(
  errno: number,
  syscall: string,
  path: string | undefined,
): { code: string; message: string } {
  const code = errnoName(errno);
  let text = "";
  try {
    const pointer = libc().lib.strerror(errno);
    if (pointer !== null) text = new Deno.UnsafePointerView(pointer).getCString();
  } catch {
    // strerror is for the message only.
  }
  const where = path === undefined ? "" : ` "${path}"`;
  const detail = text === "" ? code : `${code} (${text})`;
  return { code, message: `${syscall}${where} failed: ${detail}` };
}

type DenoErrorClass = new (message: string) => Error;

function denoErrorClass(code: string): DenoErrorClass | undefined {
  const e = Deno.errors;
  switch (code) {
    case "ENOENT":
      return e.NotFound;
    case "EACCES":
    case "EPERM":
      return e.PermissionDenied;
    case "ECONNREFUSED":
      return e.ConnectionRefused;
    case "ECONNRESET":
      return e.ConnectionReset;
    case "ECONNABORTED":
      return e.ConnectionAborted;
    case "ENOTCONN":
      return e.NotConnected;
    case "EADDRINUSE":
      return e.AddrInUse;
    case "EADDRNOTAVAIL":
      return e.AddrNotAvailable;
    case "EPIPE":
      return e.BrokenPipe;
    case "EEXIST":
      return e.AlreadyExists;
    case "EAGAIN":
      return e.WouldBlock;
    case "ETIMEDOUT":
      return e.TimedOut;
    case "EINTR":
      return e.Interrupted;
    case "EBADF":
      return e.BadResource;
    case "EBUSY":
      return e.Busy;
    case "EOPNOTSUPP":
    case "ENOSYS":
      return e.NotSupported;
    case "ELOOP":
      return e.FilesystemLoop;
    case "EISDIR":
      return e.IsADirectory;
    case "ENOTDIR":
      return e.NotADirectory;
    case "ENETUNREACH":
      return e.NetworkUnreachable;
    default:
      return undefined;
  }
}

/**
 * Throws the error for the errno just left by a failed call. Call it in the
 * statement right after the FFI call, before anything else can touch errno.
 *
 * @param syscall The libc function that failed.
 * @param path The path involved, if any.
 */
export function throwErrno(syscall: string, path?: string): never {
  throw ErrnoError.from(libc().errno[0]!, syscall, path);
}

/**
 * The error for an errno number, as an instance of the matching
 * `Deno.errors` class where one exists.
 *
 * @param errno The errno number.
 * @param syscall The libc function that failed.
 * @param path The path involved, if any.
 * @returns The error.
 */
export function errnoError(errno: number, syscall: string, path?: string): ErrnoError {
  return ErrnoError.from(errno, syscall, path);
}

/**
 * The rejection of an operation whose resource was closed while it waited.
 *
 * @returns A `Deno.errors.BadResource`.
 */
export function closedWhileWaiting(): Error {
  return new Deno.errors.BadResource("The fd was closed while an operation waited on it");
}
