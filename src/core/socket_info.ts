/**
 * What a socket fd is: its address family, type and whether it listens, the
 * questions `sd_is_socket(3)` answers (systemd
 * `src/libsystemd/sd-daemon/sd-daemon.c`, `is_socket_internal`): `fstat`
 * for `S_ISSOCK`, `getsockopt(SO_TYPE)`, `getsockopt(SO_ACCEPTCONN)` and the
 * family from `getsockname`. Works on any family, unlike
 * `socketTypeOf()`, which accepts Unix sockets only.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { statFd } from "./fd_ops.ts";
import { check } from "./syscall.ts";
import { getIntOption } from "./socket_calls.ts";

/** An address family by name; `"other"` for anything but Unix, IPv4 and IPv6 (netlink, vsock, ...). */
export type SocketFamily = "unix" | "inet" | "inet6" | "other";

/** A socket type by name; `"other"` for raw, packet and the like. */
export type SocketKind = "stream" | "dgram" | "seqpacket" | "other";

/** What {@linkcode socketInfoOf} finds out about a socket. */
export interface SocketInfo {
  /** The address family (`AF_UNIX`, `AF_INET`, `AF_INET6`, or another). */
  readonly family: SocketFamily;
  /** The socket type (`SO_TYPE`). */
  readonly type: SocketKind;
  /** Whether `listen()` was called on it (`SO_ACCEPTCONN`). */
  readonly listening: boolean;
}

/** Room for any address `getsockname` returns; only the family is read. */
const ADDRESS_CAPACITY = 128;
// Off-heap: the kernel writes into them.
const addressBuffer = new Uint8Array(new ArrayBuffer(ADDRESS_CAPACITY));
const lengthBuffer = new Uint32Array(new ArrayBuffer(4));

/**
 * The address family of a socket, from `getsockname`. The family field sits
 * where `sockaddr_un`'s does in every `sockaddr` (a u16 on Linux, a u8 after
 * `sa_len` on BSD).
 *
 * @param fd The socket.
 * @returns The `AF_*` number.
 */
function familyNumberOf(fd: number): number {
  lengthBuffer[0] = ADDRESS_CAPACITY;
  check(() => libc().lib.getsockname(fd, addressBuffer, lengthBuffer), "getsockname");
  const s = libc().layout.sockaddrUn;
  return s.familySize === 2
    ? addressBuffer[s.familyOffset]! | (addressBuffer[s.familyOffset + 1]! << 8)
    : addressBuffer[s.familyOffset]!;
}

/**
 * Describes a socket fd.
 *
 * @param fd The fd number.
 * @returns The family, type and listening state, or `null` when the fd is
 * open but not a socket. A closed fd throws an `ErrnoError` (`EBADF`, a
 * `Deno.errors.BadResource`).
 */
export function socketInfoOf(fd: number): SocketInfo | null {
  if (statFd(fd).kind !== "socket") return null;
  const c = libc().layout.constants;
  const typeNumber = getIntOption(fd, c.SOL_SOCKET, c.SO_TYPE);
  const familyNumber = familyNumberOf(fd);
  let type: SocketKind = "other";
  if (typeNumber === c.SOCK_STREAM) type = "stream";
  else if (typeNumber === c.SOCK_DGRAM) type = "dgram";
  else if (typeNumber === c.SOCK_SEQPACKET) type = "seqpacket";
  let family: SocketFamily = "other";
  if (familyNumber === c.AF_UNIX) family = "unix";
  else if (familyNumber === c.AF_INET) family = "inet";
  else if (familyNumber === c.AF_INET6) family = "inet6";
  // socket(7): SO_ACCEPTCONN is non-zero once listen() was called.
  const listening = getIntOption(fd, c.SOL_SOCKET, c.SO_ACCEPTCONN) !== 0;
  return { family, type, listening };
}
