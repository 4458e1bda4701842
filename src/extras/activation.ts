/**
 * Socket activation, receiving side: {@linkcode listenFds} takes the fds a
 * service manager (systemd, `systemd-socket-activate`, or a parent process
 * speaking the same protocol) passed at 3, 4, ... with `LISTEN_FDS`,
 * `LISTEN_PID` and `LISTEN_FDNAMES`, as `sd_listen_fds_with_names(3)` does;
 * {@linkcode describeSocket} and {@linkcode isSocket} say what each one is,
 * in the spirit of `sd_is_socket(3)`.
 *
 * Reading the variables needs `--allow-env` (or
 * `--allow-env=LISTEN_FDS,LISTEN_PID,LISTEN_FDNAMES,LISTEN_PIDFDID`).
 *
 * @module
 */

import { checkOptions, describeValue, type FdLike, fdNumberOf } from "../core/checks.ts";
import { ownPidfdId } from "../core/pidfd.ts";
import { getCloseOnExec, setCloseOnExec } from "../core/fd_ops.ts";
import {
  type SocketFamily,
  type SocketInfo,
  socketInfoOf,
  type SocketKind,
} from "../core/socket_info.ts";
import { OwnedFd } from "../owned_fd.ts";

export type { SocketFamily, SocketKind };

/** The first passed fd (`SD_LISTEN_FDS_START` in `<systemd/sd-daemon.h>`). */
const LISTEN_FDS_START = 3;

/** The variables of the protocol, all unset together (sd-daemon.c `unsetenv_listen`). */
const VARIABLES = ["LISTEN_PID", "LISTEN_PIDFDID", "LISTEN_FDS", "LISTEN_FDNAMES"] as const;

/** Options for {@linkcode listenFds}. */
export interface ListenFdsOptions {
  /**
   * Whether `LISTEN_PID` must be this process's pid. A wrapper between
   * the service manager and Deno (`deno task`, a shell that does not
   * `exec`) runs Deno under another pid; pass `false` there to take the
   * fds anyway. `false` also skips `LISTEN_PIDFDID`, and takes the fds
   * when `LISTEN_PID` is missing.
   *
   * @default {true}
   */
  checkPid?: boolean;
  /**
   * Whether to remove `LISTEN_PID`, `LISTEN_PIDFDID`, `LISTEN_FDS` and
   * `LISTEN_FDNAMES` from the environment once the fds are taken, so
   * that child processes do not take them again (`sd_listen_fds(1)`).
   * After an error the environment is left as it was.
   *
   * @default {true}
   */
  unsetEnv?: boolean;
}

/** One fd passed by a service manager, from {@linkcode listenFds}. */
export interface ListenFd {
  /**
   * Its name from `LISTEN_FDNAMES` (systemd's `FileDescriptorName=`, the
   * socket unit's name by default, `systemd-socket-activate --fdname`), or
   * `"unknown"` when no names were passed.
   */
  readonly name: string;
  /** The fd, now owned by the caller and close-on-exec. */
  readonly fd: OwnedFd;
}

/** What {@linkcode describeSocket} reports. */
export type SocketDescription = SocketInfo;

/** What {@linkcode isSocket} checks; a field left out matches anything. */
export interface SocketCriteria {
  /** The address family: `"unix"`, `"inet"`, `"inet6"` or `"other"`. */
  family?: SocketFamily;
  /** The socket type: `"stream"`, `"dgram"`, `"seqpacket"` or `"other"`. */
  type?: SocketKind;
  /** Whether it must be listening (`true`) or must not be (`false`). */
  listening?: boolean;
}

function checkBoolean(value: unknown, name: string): boolean {
  if (value === undefined) return true;
  if (typeof value !== "boolean") {
    throw new TypeError(`Option "${name}" must be a boolean, received ${describeValue(value)}`);
  }
  return value;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * Checks `LISTEN_PID` and `LISTEN_PIDFDID` against this process.
 *
 * @param pidText The value of `LISTEN_PID`, if set.
 * @param fdsText The value of `LISTEN_FDS`, for the message.
 */
function checkListenPid(pidText: string | undefined, fdsText: string): void {
  if (pidText === undefined) {
    throw new TypeError(
      `LISTEN_FDS is set ("${fdsText}") but LISTEN_PID is not, so the fds cannot be checked to be for this process; pass { checkPid: false } to take them anyway`,
    );
  }
  if (!/^[1-9][0-9]*$/.test(pidText)) {
    throw new TypeError(`LISTEN_PID must be a process id, received "${pidText}"`);
  }
  if (Number(pidText) !== Deno.pid) {
    throw new RangeError(
      `LISTEN_PID is "${pidText}" but this process is ${Deno.pid}: the fds were passed to another process. A wrapper between the service manager and Deno ("deno task", or a shell that does not exec) runs Deno under a new pid; start deno directly, or pass { checkPid: false } to take the fds anyway`,
    );
  }
  // systemd also sets LISTEN_PIDFDID, the inode id of a pidfd for the
  // receiver (sd-daemon.c sd_listen_fds): a pid can be reused, the id not.
  // Like systemd, compare it where this process's id can be read (pidfs),
  // and skip the comparison elsewhere.
  const pidfdId = Deno.env.get("LISTEN_PIDFDID");
  if (pidfdId === undefined) return;
  if (!/^[0-9]{1,20}$/.test(pidfdId) || BigInt(pidfdId) > 0xffff_ffff_ffff_ffffn) {
    throw new TypeError(`LISTEN_PIDFDID must be an unsigned 64-bit integer, received "${pidfdId}"`);
  }
  const own = ownPidfdId();
  if (own !== null && own !== BigInt(pidfdId)) {
    throw new RangeError(
      `LISTEN_PIDFDID is "${pidfdId}" but this process's pidfd id is ${own}: the fds were passed to another process that had this pid; pass { checkPid: false } to take them anyway`,
    );
  }
}

/**
 * Parses `LISTEN_FDS`, as sd-daemon.c does: a positive count.
 *
 * @param text The value.
 * @returns The count.
 */
function parseCount(text: string): number {
  if (/^-[0-9]+$/.test(text) || /^0+$/.test(text)) {
    throw new RangeError(`LISTEN_FDS must be a positive number of fds, received "${text}"`);
  }
  if (!/^[0-9]+$/.test(text)) {
    throw new TypeError(`LISTEN_FDS must be a number of fds, received "${text}"`);
  }
  const count = Number(text);
  if (count > 0x7fffffff - LISTEN_FDS_START) {
    throw new RangeError(`LISTEN_FDS is too large, received "${text}"`);
  }
  return count;
}

/**
 * Takes the fds passed by a service manager under the socket activation
 * protocol (`sd_listen_fds_with_names(3)`): `LISTEN_FDS` fds numbered from
 * 3, meant for the process whose pid is `LISTEN_PID`, named by
 * `LISTEN_FDNAMES` (`:`-separated, one name per fd; `"unknown"` for each
 * when the variable is absent). Each fd is made close-on-exec (systemd
 * passes them without `FD_CLOEXEC`, and `systemd-socket-activate` does too)
 * and returned as an {@linkcode OwnedFd}; by default the variables are then
 * removed from the environment.
 *
 * A listening TCP or Unix socket goes straight to `node:http`/`node:net`
 * with `server.listen({ fd: entry.fd.release() })`, or to
 * {@linkcode TcpListener.from} and {@linkcode UnixListener.from} to accept
 * connections as fds. {@linkcode describeSocket} tells them apart.
 *
 * Needs `--allow-env` (at least for the four `LISTEN_*` variables). With
 * `unsetEnv: false`, a second call returns new owners for the same numbers:
 * close only one set.
 *
 * Errors leave every fd where it was and the environment unchanged:
 * - `LISTEN_PID` that is not this process's pid: `RangeError`. A wrapper
 *   such as `deno task` or a shell without `exec` changes the pid; see
 *   {@linkcode ListenFdsOptions.checkPid}.
 * - `LISTEN_FDS` that is not a number (`TypeError`) or not positive
 *   (`RangeError`); `LISTEN_FDS` without `LISTEN_PID` (`TypeError`); a
 *   malformed `LISTEN_PID` or `LISTEN_PIDFDID` (`TypeError`).
 * - `LISTEN_FDNAMES` with more or fewer names than fds: `RangeError`.
 * - A passed fd that is not open: `Deno.errors.BadResource`.
 *
 * `LISTEN_PIDFDID` (set by newer systemd next to `LISTEN_PID`) must be a
 * 64-bit number, and, where this process's pidfd id can be read (pidfs,
 * Linux 6.9+), equal to it: a `RangeError` otherwise. systemd skips that
 * comparison on kernels without pidfs, and so does this.
 *
 * @param options Whether to check `LISTEN_PID` and to unset the variables.
 * @returns The passed fds in order, each with its name; an empty list when
 * `LISTEN_FDS` is not set.
 *
 * @example Serve node:http on a passed listener, or on one of your own
 * ```ts
 * import { listenFds, listenTcp } from "@fdpass/fdpass";
 * import { createServer } from "node:http";
 *
 * // Under systemd (a socket unit with FileDescriptorName=http), or under
 * // `systemd-socket-activate -l 8080 --fdname=http deno run ...`:
 * const passed = listenFds().find((entry) => entry.name === "http");
 * // Run directly, nothing is passed: make a listener here instead.
 * const handle = passed?.fd ?? listenTcp({ port: 0 }).handle;
 *
 * const server = createServer((_request, response) => response.end("hello\n"));
 * await new Promise<void>((resolve) => server.listen({ fd: handle.release() }, resolve));
 * await new Promise((resolve) => server.close(resolve));
 * ```
 *
 * @example A child started with an fd at 3 and the variables set
 * ```ts
 * import { assertEquals } from "@std/assert";
 *
 * // In the child: take the fds and report what they are.
 * const library = import.meta.resolve("@fdpass/fdpass");
 * const child = `
 *   import { listenFds } from "${library}";
 *   const fds = listenFds();
 *   console.log(JSON.stringify({
 *     names: fds.map((entry) => entry.name),
 *     kinds: fds.map((entry) => entry.fd.kind),
 *     closeOnExec: fds.map((entry) => entry.fd.closeOnExec),
 *     unset: Deno.env.get("LISTEN_FDS") === undefined,
 *   }));
 * `;
 * // sh sets LISTEN_PID to its own pid, which `exec` hands to deno, and
 * // opens /dev/null at fd 3 without close-on-exec.
 * const { stdout } = await new Deno.Command("sh", {
 *   args: [
 *     "-c",
 *     'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@" 3</dev/null',
 *     Deno.execPath(), "eval", "--allow-ffi", "--allow-env", child,
 *   ],
 *   env: { LISTEN_FDS: "1", LISTEN_FDNAMES: "devnull" },
 * }).output();
 * assertEquals(JSON.parse(new TextDecoder().decode(stdout)), {
 *   names: ["devnull"],
 *   kinds: ["character"],
 *   closeOnExec: [true],
 *   unset: true,
 * });
 * ```
 */
export function listenFds(options?: ListenFdsOptions): ListenFd[] {
  const { checkPid: checkPidOption, unsetEnv: unsetEnvOption } = checkOptions(options);
  const checkPid = checkBoolean(checkPidOption, "checkPid");
  const unsetEnv = checkBoolean(unsetEnvOption, "unsetEnv");
  const fdsText = Deno.env.get("LISTEN_FDS");
  const unset = (): void => {
    if (unsetEnv) { for (const name of VARIABLES) Deno.env.delete(name); }
  };
  if (fdsText === undefined) {
    unset();
    return [];
  }
  if (checkPid) checkListenPid(Deno.env.get("LISTEN_PID"), fdsText);
  const count = parseCount(fdsText);

  const namesText = Deno.env.get("LISTEN_FDNAMES");
  // sd-daemon.c splits on ":" without coalescing empty names.
  const names = namesText === undefined
    ? new Array<string>(count).fill("unknown")
    : namesText.split(":");
  if (names.length !== count) {
    throw new RangeError(
      `LISTEN_FDNAMES has ${
        plural(names.length, "name")
      } ("${namesText}") but LISTEN_FDS is ${count}: there must be one name per fd`,
    );
  }

  // Check that every fd is open before changing any of them.
  const closeOnExec: boolean[] = [];
  for (let i = 0; i < count; i++) {
    const fd = LISTEN_FDS_START + i;
    try {
      closeOnExec.push(getCloseOnExec(fd));
    } catch (error) {
      throw new Deno.errors.BadResource(
        `LISTEN_FDS is ${count}, but fd ${fd} (named "${
          names[i]
        }") is not open: it was closed, or never passed`,
        { cause: error },
      );
    }
  }
  for (let i = 0; i < count; i++) {
    if (!closeOnExec[i]) setCloseOnExec(LISTEN_FDS_START + i, true);
  }
  unset();
  return names.map((name, i) => ({ name, fd: new OwnedFd(LISTEN_FDS_START + i) }));
}

/**
 * Describes a socket fd, as `sd_is_socket(3)` inspects one: its address
 * family (from `getsockname`), its type (`SO_TYPE`) and whether `listen()`
 * was called on it (`SO_ACCEPTCONN`).
 *
 * @param fd An fd number, {@linkcode OwnedFd}, socket or listener.
 * @returns The description, or `null` when the fd is not a socket. A
 * closed fd throws `Deno.errors.BadResource`.
 *
 * @example Tell a listener from a connected socket
 * ```ts
 * import { describeSocket, openFd, UnixSocket } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * using listener = UnixSocket.listen(`${Deno.makeTempDirSync()}/d.sock`);
 * assertEquals(describeSocket(listener), { family: "unix", type: "stream", listening: true });
 *
 * const [a, b] = UnixSocket.pair("seqpacket");
 * assertEquals(describeSocket(a), { family: "unix", type: "seqpacket", listening: false });
 * a.close();
 * b.close();
 *
 * using file = openFd("/dev/null");
 * assertEquals(describeSocket(file), null);
 * ```
 */
export function describeSocket(fd: FdLike): SocketDescription | null {
  return socketInfoOf(fdNumberOf(fd, "fd"));
}

const FAMILIES: readonly string[] = ["unix", "inet", "inet6", "other"];
const KINDS: readonly string[] = ["stream", "dgram", "seqpacket", "other"];

/**
 * Whether an fd is a socket matching the criteria, in the manner of
 * `sd_is_socket(fd, family, type, listening)`: a criterion left out
 * matches anything. An open fd that is not a socket is `false`; a closed
 * one throws `Deno.errors.BadResource`.
 *
 * @param fd An fd number, {@linkcode OwnedFd}, socket or listener.
 * @param criteria The family, type and listening state to require.
 * @returns `true` when the fd is a socket and matches every criterion.
 *
 * @example Check passed fds before serving them
 * ```ts
 * import { isSocket, listenFds, listenTcp } from "@fdpass/fdpass";
 * import { assert } from "@std/assert";
 *
 * for (const { name, fd } of listenFds()) {
 *   if (!isSocket(fd, { type: "stream", listening: true })) {
 *     throw new TypeError(`fd "${name}" is not a listening stream socket`);
 *   }
 * }
 *
 * using tcp = listenTcp();
 * assert(isSocket(tcp.handle, { family: "inet", type: "stream", listening: true }));
 * assert(!isSocket(tcp.handle, { family: "unix" }));
 * ```
 */
export function isSocket(fd: FdLike, criteria: SocketCriteria = {}): boolean {
  const { family, type, listening } = checkOptions(criteria);
  if (family !== undefined && !FAMILIES.includes(family)) {
    throw new TypeError(
      `Option "family" must be "unix", "inet", "inet6" or "other", received ${
        describeValue(family)
      }`,
    );
  }
  if (type !== undefined && !KINDS.includes(type)) {
    throw new TypeError(
      `Option "type" must be "stream", "dgram", "seqpacket" or "other", received ${
        describeValue(type)
      }`,
    );
  }
  if (listening !== undefined && typeof listening !== "boolean") {
    throw new TypeError(
      `Option "listening" must be a boolean, received ${describeValue(listening)}`,
    );
  }
  const info = describeSocket(fd);
  if (info === null) return false;
  return (family === undefined || info.family === family) &&
    (type === undefined || info.type === type) &&
    (listening === undefined || info.listening === listening);
}
