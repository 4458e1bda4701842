/**
 * The pidfd inode id of this process: what `LISTEN_PIDFDID` holds
 * (sd_listen_fds(3)). On pidfs (Linux 6.9+) the inode number of a pidfd
 * identifies the process for as long as the system runs, so a number
 * cannot be mistaken for a reused pid; systemd reads it as `fstat().st_ino`
 * after checking `fstatfs().f_type` (src/basic/pidfd-util.c), and skips the
 * comparison where pidfs is missing. So does this module.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { statFd } from "./fd_ops.ts";

let cached: bigint | null | undefined;

/**
 * This process's pidfd inode id.
 *
 * @returns The id, or `null` where it cannot be known (no pidfds, no pidfs,
 * or a libc without `pidfd_open`).
 */
export function ownPidfdId(): bigint | null {
  if (cached !== undefined) return cached;
  const { lib, layout } = libc();
  const pidfs = layout.pidfs;
  if (pidfs === null || lib.pidfd_open === null || lib.fstatfs === null) return cached = null;
  const fd = lib.pidfd_open(Deno.pid, 0);
  if (fd < 0) return cached = null;
  try {
    const statfs = new Uint8Array(new ArrayBuffer(pidfs.statfsSize));
    if (lib.fstatfs(fd, statfs) !== 0) return cached = null;
    // f_type is a native word; the magic fits its low 32 bits.
    const view = new DataView(statfs.buffer);
    if (view.getUint32(pidfs.statfsType, true) !== pidfs.magic) return cached = null;
    return cached = statFd(fd).ino;
  } finally {
    lib.close(fd);
  }
}
