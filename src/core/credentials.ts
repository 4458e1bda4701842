/**
 * The credentials of a connected socket's peer: `SO_PEERCRED` on Linux,
 * `LOCAL_PEERCRED` (+ `LOCAL_PEERPID`) on macOS and FreeBSD; which one is
 * data in the platform layout.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { check } from "./syscall.ts";

/**
 * Who is on the other end of a Unix socket, as the kernel recorded it at
 * `connect`/`socketpair` time, or who sent one message (`SCM_CREDENTIALS`).
 */
export interface PeerCredentials {
  /** The peer's process id at `connect`/`socketpair` time (-1 where unknown). */
  readonly pid: number;
  /** The peer's effective user id. */
  readonly uid: number;
  /** The peer's effective group id. */
  readonly gid: number;
}

const buffer = new Uint8Array(128);
const view = new DataView(buffer.buffer);
const lengthBuffer = new Uint32Array(1);

function getsockopt(fd: number, level: number, option: number, size: number): void {
  lengthBuffer[0] = size;
  buffer.fill(0);
  check(() => libc().lib.getsockopt(fd, level, option, buffer, lengthBuffer), "getsockopt");
}

/**
 * Reads the peer credentials of a connected Unix socket.
 *
 * @param fd The socket.
 * @returns The pid, uid and gid.
 */
export function peerCredentialsOf(fd: number): PeerCredentials {
  const p = libc().layout.peerCredentials;
  getsockopt(fd, p.level, p.option, p.size);
  if (p.versionOffset >= 0 && view.getUint32(p.versionOffset, true) !== 0) {
    throw new Error("getsockopt returned an unknown xucred version");
  }
  const uid = view.getUint32(p.uidOffset, true);
  const gid = view.getUint32(p.gidOffset, true);
  let pid = -1;
  if (p.pidOffset >= 0) {
    pid = view.getInt32(p.pidOffset, true);
  } else if (p.pidOption >= 0) {
    getsockopt(fd, p.level, p.pidOption, 4);
    pid = view.getInt32(0, true);
  }
  return { pid, uid, gid };
}

/** The sender of one message (`SCM_CREDENTIALS`, Linux): the same fields as {@linkcode PeerCredentials}. */
export type MessageCredentials = PeerCredentials;
