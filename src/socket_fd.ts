/**
 * Socket calls on fd numbers: create (close-on-exec, no SIGPIPE), bind,
 * connect, accept, addresses and socket options.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { ErrnoError, throwErrno } from "./errors.ts";
import {
  decodeAddress,
  encodeAddress,
  formatAddress,
  SOCKADDR_CAPACITY,
  type SocketAddress,
  type UnixAddress,
} from "./address.ts";
import { OwnedFd } from "./fd.ts";
import { retryKind, waitSync } from "./sys.ts";
import type { SocketType } from "./transfer.ts";

const addressBuffer = new Uint8Array(SOCKADDR_CAPACITY);
const lengthBuffer = new Uint32Array(1);
const intBuffer = new Int32Array(1);
const pairBuffer = new Int32Array(2);

/**
 * The `SOCK_*` number for a socket type.
 *
 * @param type The type name.
 * @returns The constant.
 */
export function socketTypeNumber(type: SocketType): number {
  const c = libc().layout;
  switch (type) {
    case "stream":
      return c.constants.SOCK_STREAM;
    case "dgram":
      return c.constants.SOCK_DGRAM;
    case "seqpacket":
      if (!c.seqpacket) {
        throw new Deno.errors.NotSupported(
          `Unix seqpacket sockets are not supported on ${c.name}`,
        );
      }
      return c.constants.SOCK_SEQPACKET;
    default:
      throw new TypeError(
        `Argument "type" must be "stream", "seqpacket" or "dgram", received "${String(type)}"`,
      );
  }
}

/**
 * Makes fds created on platforms without `SOCK_CLOEXEC` close-on-exec and
 * turns off `SIGPIPE` where `MSG_NOSIGNAL` may not be honoured.
 *
 * @param owned The new socket.
 */
export function finishNewSocket(owned: OwnedFd): void {
  const c = libc().layout.constants;
  if (c.SOCK_CLOEXEC === 0) owned.closeOnExec = true;
  if (c.SO_NOSIGPIPE !== 0) setIntOption(owned.fd, c.SOL_SOCKET, c.SO_NOSIGPIPE, 1);
}

/**
 * Creates an `AF_UNIX` socket, close-on-exec.
 *
 * @param type The socket type.
 * @param nonblocking Whether to set `O_NONBLOCK`.
 * @returns The owned socket fd.
 */
export function createSocketFd(type: SocketType, nonblocking = false): OwnedFd {
  const { lib, layout } = libc();
  const c = layout.constants;
  const flags = c.SOCK_CLOEXEC | (nonblocking ? c.SOCK_NONBLOCK : 0);
  const fd = lib.socket(c.AF_UNIX, socketTypeNumber(type) | flags, 0);
  if (fd < 0) throwErrno("socket");
  const owned = new OwnedFd(fd);
  try {
    finishNewSocket(owned);
    if (nonblocking && c.SOCK_NONBLOCK === 0) owned.nonblocking = true;
  } catch (error) {
    owned.close();
    throw error;
  }
  return owned;
}

/**
 * Creates a connected pair of `AF_UNIX` sockets, close-on-exec.
 *
 * @param type The socket type.
 * @returns The two owned fds.
 */
export function socketPairFds(type: SocketType): [OwnedFd, OwnedFd] {
  const { lib, layout } = libc();
  const c = layout.constants;
  if (lib.socketpair(c.AF_UNIX, socketTypeNumber(type) | c.SOCK_CLOEXEC, 0, pairBuffer) !== 0) {
    throwErrno("socketpair");
  }
  const pair: [OwnedFd, OwnedFd] = [new OwnedFd(pairBuffer[0]!), new OwnedFd(pairBuffer[1]!)];
  try {
    finishNewSocket(pair[0]);
    finishNewSocket(pair[1]);
  } catch (error) {
    pair[0].close();
    pair[1].close();
    throw error;
  }
  return pair;
}

/**
 * Binds a socket to an address.
 *
 * @param fd The socket.
 * @param address The address.
 */
export function bindFd(fd: number, address: UnixAddress): void {
  const length = encodeAddress(address, addressBuffer);
  if (libc().lib.bind(fd, addressBuffer, length) !== 0) {
    throwErrno("bind", formatAddress(address));
  }
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
    // "in-progress": an interrupted or nonblocking connect completes in the
    // background; wait for it, then read its result (connect(2)).
    // "retry" (Linux, nonblocking, full backlog): wait, then try again.
    waitSync(fd, POLLOUT);
    if (state === "in-progress") return connectResult(fd, address);
  }
}

/**
 * Accepts one connection, blocking until one arrives.
 *
 * @param fd The listening socket.
 * @returns The new connection's fd, close-on-exec.
 */
export function acceptFd(fd: number): OwnedFd {
  for (;;) {
    const conn = acceptStep(fd);
    if (conn !== null) return conn;
    waitSync(fd, libc().layout.constants.POLLIN);
  }
}

/**
 * Makes one `accept` call (`EINTR` retried). The connection is blocking and
 * close-on-exec.
 *
 * @param fd The listening socket (nonblocking).
 * @returns The new connection's fd, or `null` when none is waiting.
 */
export function acceptStep(fd: number): OwnedFd | null {
  const { lib, layout } = libc();
  const c = layout.constants;
  for (;;) {
    const conn = lib.accept4 !== null && layout.accept4
      ? lib.accept4(fd, null, null, c.SOCK_CLOEXEC)
      : lib.accept(fd, null, null);
    if (conn >= 0) {
      const owned = new OwnedFd(conn);
      if (!layout.accept4) {
        try {
          finishNewSocket(owned);
          // BSD accept() inherits O_NONBLOCK from the listener.
          owned.nonblocking = false;
        } catch (error) {
          owned.close();
          throw error;
        }
      }
      return owned;
    }
    const retry = retryKind();
    if (retry === "wait") return null;
    if (retry === "no") throwErrno("accept");
  }
}

/**
 * Starts a connect on a nonblocking socket.
 *
 * @param fd The socket.
 * @param address The address.
 * @returns `"done"`, `"in-progress"` (wait for writable, then
 * {@linkcode connectResult}) or `"retry"` (the listener's backlog is full).
 */
export function connectStep(fd: number, address: UnixAddress): "done" | "in-progress" | "retry" {
  const { lib, layout, errno } = libc();
  const length = encodeAddress(address, addressBuffer);
  for (;;) {
    if (lib.connect(fd, addressBuffer, length) === 0) return "done";
    const e = errno[0];
    if (e === layout.errno.EINTR || e === layout.errno.EINPROGRESS) return "in-progress";
    if (e === layout.errno.EAGAIN) return "retry";
    if (e === layout.errno.EISCONN) return "done";
    throwErrno("connect", formatAddress(address));
  }
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
  if (error !== 0) throw ErrnoError.from(error, "connect", formatAddress(address));
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
  if (libc().lib.getsockopt(fd, level, option, intBuffer, lengthBuffer) !== 0) {
    throwErrno("getsockopt");
  }
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
  if (libc().lib.setsockopt(fd, level, option, intBuffer, 4) !== 0) {
    throwErrno("setsockopt");
  }
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
  const { lib, layout } = libc();
  const c = layout.constants;
  lengthBuffer[0] = 4;
  if (lib.getsockopt(fd, c.SOL_SOCKET, c.SO_TYPE, intBuffer, lengthBuffer) !== 0) {
    if (libc().errno[0] === layout.errno.ENOTSOCK) {
      throw new TypeError(`Argument "${name}" (fd ${fd}) is not a socket`);
    }
    throwErrno("getsockopt");
  }
  const type = intBuffer[0];
  lengthBuffer[0] = SOCKADDR_CAPACITY;
  if (lib.getsockname(fd, addressBuffer, lengthBuffer) !== 0) throwErrno("getsockname");
  const s = layout.sockaddrUn;
  const family = s.familySize === 2
    ? addressBuffer[s.familyOffset]! | (addressBuffer[s.familyOffset + 1]! << 8)
    : addressBuffer[s.familyOffset]!;
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
 * The local address (`getsockname`) of a socket.
 *
 * @param fd The socket.
 * @returns The address, or `null` when unnamed.
 */
export function localAddressOf(fd: number): SocketAddress {
  lengthBuffer[0] = SOCKADDR_CAPACITY;
  if (libc().lib.getsockname(fd, addressBuffer, lengthBuffer) !== 0) {
    throwErrno("getsockname");
  }
  return decodeAddress(addressBuffer, lengthBuffer[0]!);
}

/**
 * The peer address (`getpeername`) of a connected socket.
 *
 * @param fd The socket.
 * @returns The address, or `null` when the peer is unnamed.
 */
export function remoteAddressOf(fd: number): SocketAddress {
  lengthBuffer[0] = SOCKADDR_CAPACITY;
  if (libc().lib.getpeername(fd, addressBuffer, lengthBuffer) !== 0) {
    throwErrno("getpeername");
  }
  return decodeAddress(addressBuffer, lengthBuffer[0]!);
}
