/**
 * Socket calls on fd numbers: create (close-on-exec, no `SIGPIPE`),
 * socketpair, bind, listen, connect, accept, shutdown, addresses and
 * socket options.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { errnoError } from "./errors.ts";
import {
  decodeAddress,
  encodeAddress,
  formatAddress,
  SOCKADDR_CAPACITY,
  type SocketAddress,
  type UnixAddress,
} from "./address.ts";
import { setCloseOnExec, setNonblocking } from "./fd_ops.ts";
import { check, failure, waitSync, WOULD_BLOCK, type WouldBlock } from "./syscall.ts";

/** The kinds of Unix socket. */
export type SocketType = "stream" | "seqpacket" | "dgram";

const addressBuffer = new Uint8Array(new ArrayBuffer(SOCKADDR_CAPACITY));
const lengthBuffer = new Uint32Array(new ArrayBuffer(4));
const intBuffer = new Int32Array(new ArrayBuffer(4));
const pairBuffer = new Int32Array(new ArrayBuffer(8));

/**
 * The `SOCK_*` number for a socket type.
 *
 * @param type The type name.
 * @returns The constant.
 */
function socketTypeNumber(type: SocketType): number {
  const layout = libc().layout;
  switch (type) {
    case "stream":
      return layout.constants.SOCK_STREAM;
    case "dgram":
      return layout.constants.SOCK_DGRAM;
    case "seqpacket":
      if (!layout.features.seqpacket) {
        throw new Deno.errors.NotSupported(
          `Unix seqpacket sockets are not supported on ${layout.name}`,
        );
      }
      return layout.constants.SOCK_SEQPACKET;
    default:
      throw new TypeError(
        `Argument "type" must be "stream", "seqpacket" or "dgram", received "${String(type)}"`,
      );
  }
}

/**
 * Makes a new socket close-on-exec where `socket()` takes no such flag,
 * and turns off `SIGPIPE` where the platform needs `SO_NOSIGPIPE`.
 * Closes the fd when that fails.
 *
 * @param fd The new socket.
 * @param nonblocking Whether it must end up nonblocking.
 */
function finishNewSocket(fd: number, nonblocking = false): void {
  const { lib, layout } = libc();
  const c = layout.constants;
  try {
    if (!layout.features.socketFlags) {
      setCloseOnExec(fd, true);
      if (nonblocking) setNonblocking(fd, true);
    }
    if (layout.features.soNosigpipe) setIntOption(fd, c.SOL_SOCKET, c.SO_NOSIGPIPE, 1);
  } catch (error) {
    lib.close(fd);
    throw error;
  }
}

/**
 * Creates a socket, close-on-exec.
 *
 * @param family `AF_UNIX` or `AF_INET`.
 * @param type The `SOCK_*` number.
 * @param nonblocking Whether to set `O_NONBLOCK`.
 * @returns The new fd number.
 */
export function createSocket(family: number, type: number, nonblocking: boolean): number {
  const { lib, layout } = libc();
  const c = layout.constants;
  const flags = layout.features.socketFlags
    ? c.SOCK_CLOEXEC | (nonblocking ? c.SOCK_NONBLOCK : 0)
    : 0;
  let fd = -1;
  check(() => fd = lib.socket(family, type | flags, 0), "socket");
  finishNewSocket(fd, nonblocking);
  return fd;
}

/**
 * Creates an `AF_UNIX` socket, close-on-exec.
 *
 * @param type The socket type.
 * @param nonblocking Whether to set `O_NONBLOCK`.
 * @returns The new fd number.
 */
export function createUnixSocket(type: SocketType, nonblocking = false): number {
  return createSocket(libc().layout.constants.AF_UNIX, socketTypeNumber(type), nonblocking);
}

/**
 * Creates a connected pair of `AF_UNIX` sockets, close-on-exec.
 *
 * @param type The socket type.
 * @returns The two fd numbers.
 */
export function socketPair(type: SocketType): [number, number] {
  const { lib, layout } = libc();
  const c = layout.constants;
  const flags = layout.features.socketFlags ? c.SOCK_CLOEXEC : 0;
  const typeNumber = socketTypeNumber(type);
  check(() => lib.socketpair(c.AF_UNIX, typeNumber | flags, 0, pairBuffer), "socketpair");
  const a = pairBuffer[0]!;
  const b = pairBuffer[1]!;
  try {
    finishNewSocket(a);
  } catch (error) {
    lib.close(b);
    throw error;
  }
  try {
    finishNewSocket(b);
  } catch (error) {
    lib.close(a);
    throw error;
  }
  return [a, b];
}

/**
 * Binds a socket to a Unix address.
 *
 * @param fd The socket.
 * @param address The address.
 */
export function bindFd(fd: number, address: UnixAddress): void {
  const length = encodeAddress(address, addressBuffer);
  check(() => libc().lib.bind(fd, addressBuffer, length), "bind", formatAddress(address));
}

/**
 * Checks a `backlog` option.
 *
 * @param value The value given.
 * @param fallback The default.
 * @returns The backlog.
 */
export function checkBacklog(value: unknown, fallback: number): number {
  const backlog = value ?? fallback;
  if (
    typeof backlog !== "number" || !Number.isInteger(backlog) || backlog < 0 ||
    backlog > 0x7fffffff
  ) {
    throw new RangeError(
      `Option "backlog" must be an integer from 0 to 2147483647, received ${String(backlog)}`,
    );
  }
  return backlog;
}

/**
 * `listen(fd, backlog)`.
 *
 * @param fd The bound socket.
 * @param backlog The checked backlog.
 */
export function listenFd(fd: number, backlog: number): void {
  check(() => libc().lib.listen(fd, backlog), "listen");
}

/**
 * Starts a connect.
 *
 * @param fd The socket.
 * @param address The address.
 * @returns `"done"`, `"in-progress"` (wait for writable, then
 * {@linkcode connectResult}) or {@linkcode WOULD_BLOCK} (the listener's
 * backlog is full, on a nonblocking socket).
 */
export function connectStep(
  fd: number,
  address: UnixAddress,
): "done" | "in-progress" | WouldBlock {
  const { lib, layout, errno } = libc();
  const length = encodeAddress(address, addressBuffer);
  if (lib.connect(fd, addressBuffer, length) === 0) return "done";
  const e = errno[0];
  // An interrupted connect goes on in the background (connect(2)).
  if (e === layout.errno.EINTR || e === layout.errno.EINPROGRESS) return "in-progress";
  if (e === layout.errno.EAGAIN) return WOULD_BLOCK;
  if (e === layout.errno.EISCONN) return "done";
  throw errnoError(e!, "connect", formatAddress(address));
}

/**
 * Reads the result of a connect that was in progress (`SO_ERROR`).
 *
 * @param fd The socket.
 * @param address The address, for the error message.
 */
export function connectResult(fd: number, address: UnixAddress): void {
  const c = libc().layout.constants;
  const error = getIntOption(fd, c.SOL_SOCKET, c.SO_ERROR);
  if (error !== 0) throw errnoError(error, "connect", formatAddress(address));
}

/**
 * Connects a socket, blocking until done.
 *
 * @param fd The socket.
 * @param address The address.
 */
export function connectFd(fd: number, address: UnixAddress): void {
  const POLLOUT = libc().layout.constants.POLLOUT;
  for (;;) {
    const state = connectStep(fd, address);
    if (state === "done") return;
    // In progress: wait, then read the result. Would block (a nonblocking
    // socket and a full backlog): wait, then try again.
    waitSync(fd, POLLOUT);
    if (state === "in-progress") return connectResult(fd, address);
  }
}

/**
 * Makes one `accept` call (`EINTR` retried). The connection is blocking and
 * close-on-exec.
 *
 * @param fd The listening socket.
 * @returns The new connection's fd, or {@linkcode WOULD_BLOCK}.
 */
export function acceptStep(fd: number): number | WouldBlock {
  const { lib, layout } = libc();
  const c = layout.constants;
  const accept4 = layout.features.accept4;
  for (;;) {
    const conn = accept4
      ? lib.accept4!(fd, null, null, c.SOCK_CLOEXEC)
      : lib.accept(fd, null, null);
    if (conn >= 0) {
      if (!accept4) {
        finishNewSocket(conn);
        try {
          // BSD accept() inherits O_NONBLOCK from the listener.
          setNonblocking(conn, false);
        } catch (error) {
          lib.close(conn);
          throw error;
        }
      }
      return conn;
    }
    if (failure("accept") === WOULD_BLOCK) return WOULD_BLOCK;
  }
}

/**
 * Accepts one connection, blocking until one arrives.
 *
 * @param fd The listening socket.
 * @returns The new connection's fd, close-on-exec.
 */
export function acceptFd(fd: number): number {
  for (;;) {
    const conn = acceptStep(fd);
    if (conn !== WOULD_BLOCK) return conn;
    waitSync(fd, libc().layout.constants.POLLIN);
  }
}

/**
 * Reads an int socket option.
 *
 * @param fd The socket.
 * @param level The level.
 * @param option The option.
 * @returns The value.
 */
export function getIntOption(fd: number, level: number, option: number): number {
  lengthBuffer[0] = 4;
  check(() => libc().lib.getsockopt(fd, level, option, intBuffer, lengthBuffer), "getsockopt");
  return intBuffer[0]!;
}

/**
 * Sets an int socket option.
 *
 * @param fd The socket.
 * @param level The level.
 * @param option The option.
 * @param value The value.
 */
export function setIntOption(fd: number, level: number, option: number, value: number): void {
  intBuffer[0] = value;
  check(() => libc().lib.setsockopt(fd, level, option, intBuffer, 4), "setsockopt");
}

/**
 * The address family of a socket, from `getsockname`.
 *
 * @param fd The socket.
 * @returns The `AF_*` number.
 */
function socketFamily(fd: number): number {
  lengthBuffer[0] = SOCKADDR_CAPACITY;
  check(() => libc().lib.getsockname(fd, addressBuffer, lengthBuffer), "getsockname");
  const s = libc().layout.sockaddrUn;
  return s.familySize === 2
    ? addressBuffer[s.familyOffset]! | (addressBuffer[s.familyOffset + 1]! << 8)
    : addressBuffer[s.familyOffset]!;
}

/**
 * The type of a socket fd, from `SO_TYPE`; throws a `TypeError` when the fd
 * is not an `AF_UNIX` socket.
 *
 * @param fd The fd.
 * @param name The argument name for errors.
 * @returns The type.
 */
export function socketTypeOf(fd: number, name: string): SocketType {
  const { lib, layout, errno } = libc();
  const c = layout.constants;
  lengthBuffer[0] = 4;
  if (lib.getsockopt(fd, c.SOL_SOCKET, c.SO_TYPE, intBuffer, lengthBuffer) !== 0) {
    if (errno[0] === layout.errno.ENOTSOCK) {
      throw new TypeError(`Argument "${name}" (fd ${fd}) is not a socket`);
    }
    throw errnoError(errno[0]!, "getsockopt");
  }
  const type = intBuffer[0];
  const family = socketFamily(fd);
  if (family !== c.AF_UNIX) {
    throw new TypeError(
      `Argument "${name}" (fd ${fd}) is not a Unix socket (address family ${family})`,
    );
  }
  if (type === c.SOCK_STREAM) return "stream";
  if (type === c.SOCK_DGRAM) return "dgram";
  if (type === c.SOCK_SEQPACKET) return "seqpacket";
  throw new TypeError(`Argument "${name}" (fd ${fd}) has unsupported socket type ${type}`);
}

/**
 * The local address (`getsockname`) of a Unix socket.
 *
 * @param fd The socket.
 * @returns The address, or `null` when unnamed.
 */
export function localAddressOf(fd: number): SocketAddress {
  lengthBuffer[0] = SOCKADDR_CAPACITY;
  check(() => libc().lib.getsockname(fd, addressBuffer, lengthBuffer), "getsockname");
  return decodeAddress(addressBuffer, lengthBuffer[0]!);
}

/**
 * The peer address (`getpeername`) of a connected Unix socket.
 *
 * @param fd The socket.
 * @returns The address, or `null` when the peer is unnamed.
 */
export function remoteAddressOf(fd: number): SocketAddress {
  lengthBuffer[0] = SOCKADDR_CAPACITY;
  check(() => libc().lib.getpeername(fd, addressBuffer, lengthBuffer), "getpeername");
  return decodeAddress(addressBuffer, lengthBuffer[0]!);
}

/**
 * Shuts down one or both directions of a socket.
 *
 * @param fd The socket.
 * @param how `"read"`, `"write"` or `"both"`.
 */
export function shutdownFd(fd: number, how: "read" | "write" | "both"): void {
  const c = libc().layout.constants;
  let value: number;
  switch (how) {
    case "read":
      value = c.SHUT_RD;
      break;
    case "write":
      value = c.SHUT_WR;
      break;
    case "both":
      value = c.SHUT_RDWR;
      break;
    default:
      throw new TypeError(
        `Argument "how" must be "read", "write" or "both", received "${String(how)}"`,
      );
  }
  check(() => libc().lib.shutdown(fd, value), "shutdown");
}
