/**
 * {@linkcode notify}: the service manager notification protocol of
 * `sd_notify(3)`, with fds for systemd's file descriptor store
 * (docs/FILE_DESCRIPTOR_STORE.md), and {@linkcode notifyBarrier}
 * (`sd_notify_barrier(3)`). One datagram per call to `$NOTIFY_SOCKET`, as
 * `sd_pid_notify_with_fds()` in src/libsystemd/sd-daemon/sd-daemon.c sends it.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { checkOptions, checkSignal, describeValue, type FdLike } from "../core/checks.ts";
import { check } from "../core/syscall.ts";
import { collectFds } from "../core/transfer.ts";
import type { UnixAddress } from "../core/address.ts";
import { pipe } from "../owned_fd.ts";
import { UnixSocket } from "../unix_socket.ts";

/**
 * The fields of a notification, each mapped to one `sd_notify(3)`
 * assignment. Fields left out (or `false`) are not sent.
 */
export interface NotifyState {
  /** `READY=1`: start-up (or a reload) is finished. */
  ready?: boolean;
  /**
   * `RELOADING=1`, with `MONOTONIC_USEC=` read from `CLOCK_MONOTONIC` at
   * the call, which `Type=notify-reload` services must send.
   */
  reloading?: boolean;
  /** `STOPPING=1`: the service is shutting down. */
  stopping?: boolean;
  /** `STATUS=`: one line of free text for `systemctl status`. */
  status?: string;
  /** `ERRNO=`: the errno the service failed with, a non-negative integer. */
  errno?: number;
  /** `MAINPID=`: the pid of the service's main process. */
  mainPid?: number;
  /** `WATCHDOG=1` (keep-alive ping), or `WATCHDOG=trigger` (act as if the watchdog expired). */
  watchdog?: boolean | "trigger";
  /** `WATCHDOG_USEC=`: a new watchdog interval in microseconds, at least 1. */
  watchdogMicroseconds?: number;
  /** `EXTEND_TIMEOUT_USEC=`: ask for this many more microseconds of start-up, reload or stop time. */
  extendTimeoutMicroseconds?: number;
  /** `FDSTORE=1`: keep the fds of `options.fds` in the manager's fd store. */
  fdStore?: boolean;
  /** `FDSTOREREMOVE=1`: drop the stored fds named {@linkcode NotifyState.fdName}. */
  fdStoreRemove?: boolean;
  /**
   * `FDNAME=`: the name the fds are stored under (and come back with in
   * `$LISTEN_FDNAMES`): 1 to 255 printable ASCII characters, no `:`.
   */
  fdName?: string;
  /**
   * `false` sends `FDPOLL=0`: the manager does not watch the stored fds
   * and remove them when they hang up or fail.
   *
   * @default {true}
   */
  fdPoll?: boolean;
}

/** Options for {@linkcode notify}. */
export interface NotifyOptions {
  /**
   * Fds to send with the message (`SCM_RIGHTS`), at most 253. They stay
   * open here.
   *
   * @default {[]}
   */
  fds?: Iterable<FdLike>;
  /**
   * Where to send instead of `$NOTIFY_SOCKET`: a path or
   * `{ abstract: name }`.
   */
  socket?: UnixAddress;
  /**
   * Remove `$NOTIFY_SOCKET` from the environment afterwards (whether the
   * send worked or not), so that child processes do not inherit it.
   *
   * @default {false}
   */
  unsetEnvironment?: boolean;
}

/** Options for {@linkcode notifyBarrier}. */
export interface NotifyBarrierOptions {
  /**
   * Milliseconds to wait for the manager; then the promise rejects with
   * `Deno.errors.TimedOut`.
   *
   * @default {5000}
   */
  timeoutMilliseconds?: number;
  /** Where to send instead of `$NOTIFY_SOCKET`. */
  socket?: UnixAddress;
  /** Cancels the wait; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** The boolean fields and the assignment each sends. */
const FLAGS = [
  ["ready", "READY=1"],
  ["reloading", "RELOADING=1"],
  ["stopping", "STOPPING=1"],
] as const;

const KNOWN_FIELDS: ReadonlySet<string> = new Set([
  "ready",
  "reloading",
  "stopping",
  "status",
  "errno",
  "mainPid",
  "watchdog",
  "watchdogMicroseconds",
  "extendTimeoutMicroseconds",
  "fdStore",
  "fdStoreRemove",
  "fdName",
  "fdPoll",
]);

// fdname_is_valid() in src/basic/fd-util.c: the names end up in
// $LISTEN_FDNAMES, separated by ":".
const FDNAME_MAX = 255;

/**
 * Checks an fd store name as systemd does (`fdname_is_valid()`), but also
 * refuses the empty name, which systemd would store as it is.
 *
 * @param name The name.
 * @param field The field name for errors.
 * @returns The name.
 */
function checkFdName(name: unknown, field: string): string {
  if (typeof name !== "string") {
    throw new TypeError(`Field "${field}" must be a string, received ${describeValue(name)}`);
  }
  if (name.length === 0) {
    throw new RangeError(
      `Field "${field}" must not be empty: leave it out for systemd's default name "stored"`,
    );
  }
  if (name.length > FDNAME_MAX) {
    throw new RangeError(
      `Field "${field}" must be at most ${FDNAME_MAX} characters, received ${name.length}`,
    );
  }
  for (const char of name) {
    const code = char.codePointAt(0)!;
    if (code < 0x20 || code >= 0x7f || char === ":") {
      throw new RangeError(
        `Field "${field}" must be printable ASCII without ":", received ${JSON.stringify(name)}`,
      );
    }
  }
  return name;
}

function checkFlag(value: unknown, field: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    throw new TypeError(`Field "${field}" must be a boolean, received ${describeValue(value)}`);
  }
  return value;
}

function checkInteger(value: unknown, field: string, min: number): number {
  if (typeof value !== "number") {
    throw new TypeError(`Field "${field}" must be a number, received ${describeValue(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `Field "${field}" must be an integer of at least ${min}, received ${value}`,
    );
  }
  return value;
}

/**
 * `clock_gettime(CLOCK_MONOTONIC)` in microseconds: the clock systemd
 * compares `MONOTONIC_USEC=` with (`sd_notify(3)`). Neither
 * `performance.now()` (counted from the process's start) nor
 * `/proc/uptime` (`CLOCK_BOOTTIME`, which includes suspend) is that clock.
 *
 * @returns The microseconds.
 */
function monotonicMicroseconds(): bigint {
  const { lib, layout } = libc();
  const t = layout.timespec;
  const buffer = new Uint8Array(t.size);
  check(() => lib.clock_gettime(layout.constants.CLOCK_MONOTONIC, buffer), "clock_gettime");
  const view = new DataView(buffer.buffer);
  const seconds = view.getBigInt64(t.seconds, true);
  const nanoseconds = view.getBigInt64(t.nanoseconds, true);
  return seconds * 1_000_000n + nanoseconds / 1000n;
}

/**
 * Turns the fields into the newline-separated assignments `sd_notify`
 * sends, in a fixed order.
 *
 * @param state The fields.
 * @param fdCount How many fds go with the message.
 * @returns The message text.
 */
function formatState(state: NotifyState, fdCount: number): string {
  for (const key of Object.keys(state)) {
    if (!KNOWN_FIELDS.has(key)) {
      throw new TypeError(
        `Unknown field "${key}": the fields are ${[...KNOWN_FIELDS].join(", ")}`,
      );
    }
  }
  const lines: string[] = [];
  for (const [field, line] of FLAGS) {
    if (!checkFlag(state[field], field)) continue;
    lines.push(line);
    if (field === "reloading") lines.push(`MONOTONIC_USEC=${monotonicMicroseconds()}`);
  }
  if (state.status !== undefined) {
    if (typeof state.status !== "string") {
      throw new TypeError(
        `Field "status" must be a string, received ${describeValue(state.status)}`,
      );
    }
    if (/[\n\0]/.test(state.status)) {
      throw new TypeError(
        `Field "status" must be one line without NUL, received ${JSON.stringify(state.status)}`,
      );
    }
    lines.push(`STATUS=${state.status}`);
  }
  if (state.errno !== undefined) lines.push(`ERRNO=${checkInteger(state.errno, "errno", 0)}`);
  if (state.mainPid !== undefined) {
    lines.push(`MAINPID=${checkInteger(state.mainPid, "mainPid", 1)}`);
  }
  if (state.watchdog === "trigger") lines.push("WATCHDOG=trigger");
  else if (checkFlag(state.watchdog, "watchdog")) lines.push("WATCHDOG=1");
  if (state.watchdogMicroseconds !== undefined) {
    lines.push(
      `WATCHDOG_USEC=${checkInteger(state.watchdogMicroseconds, "watchdogMicroseconds", 1)}`,
    );
  }
  if (state.extendTimeoutMicroseconds !== undefined) {
    const usec = checkInteger(state.extendTimeoutMicroseconds, "extendTimeoutMicroseconds", 0);
    lines.push(`EXTEND_TIMEOUT_USEC=${usec}`);
  }
  const fdStore = checkFlag(state.fdStore, "fdStore");
  const fdStoreRemove = checkFlag(state.fdStoreRemove, "fdStoreRemove");
  const fdName = state.fdName === undefined ? undefined : checkFdName(state.fdName, "fdName");
  const fdPoll = state.fdPoll === undefined ? true : checkFlag(state.fdPoll, "fdPoll");
  // src/core/service.c keeps fds only with FDSTORE=1 (it closes any others),
  // and FDSTOREREMOVE=1 and FDPOLL=0 mean nothing without a name or a store.
  if (fdStore && fdCount === 0) {
    throw new TypeError(`Field "fdStore" needs the fds to store in option "fds"`);
  }
  if (!fdStore && fdCount > 0) {
    throw new TypeError(
      `Option "fds" holds ${fdCount} fds, but the manager keeps fds only with "fdStore: true"`,
    );
  }
  if (fdStoreRemove && fdName === undefined) {
    throw new TypeError(`Field "fdStoreRemove" needs "fdName": the name of the fds to remove`);
  }
  if (fdName !== undefined && !fdStore && !fdStoreRemove) {
    throw new TypeError(`Field "fdName" needs "fdStore: true" or "fdStoreRemove: true"`);
  }
  if (!fdPoll && !fdStore) throw new TypeError(`Field "fdPoll" needs "fdStore: true"`);
  if (fdStore) lines.push("FDSTORE=1");
  if (fdStoreRemove) lines.push("FDSTOREREMOVE=1");
  if (fdName !== undefined) lines.push(`FDNAME=${fdName}`);
  if (!fdPoll) lines.push("FDPOLL=0");
  if (lines.length === 0) throw new TypeError(`Argument "state" sets no field`);
  return lines.join("\n");
}

/**
 * Checks a message given as text: no NUL (`sd_notify` sends a C string),
 * and a valid name in any `FDNAME=` line.
 *
 * @param state The text.
 * @returns The text.
 */
function checkStateText(state: string): string {
  if (state.length === 0) throw new TypeError(`Argument "state" must not be empty`);
  if (state.includes("\0")) {
    throw new TypeError(`Argument "state" must not contain a NUL character`);
  }
  for (const line of state.split("\n")) {
    if (line.startsWith("FDNAME=")) checkFdName(line.slice(7), "FDNAME");
  }
  return state;
}

/**
 * Where notifications go: the override, or `$NOTIFY_SOCKET` (a path, or
 * `@name` for an abstract name); `null` when neither is set. Also used by
 * `startWatchdog()`.
 *
 * @param override The `socket` option.
 * @returns The address, or `null`.
 */
export function notifySocket(override: UnixAddress | undefined): UnixAddress | null {
  if (override !== undefined) return override;
  const value = Deno.env.get("NOTIFY_SOCKET");
  if (value === undefined || value === "") return null;
  if (value.startsWith("/")) return value;
  // sd-daemon.c: a leading "@" stands for the NUL of an abstract name.
  if (value.startsWith("@") && value.length > 1) return { abstract: value.slice(1) };
  throw new Deno.errors.NotSupported(
    `$NOTIFY_SOCKET is "${value}", which is neither an absolute path nor an @abstract name`,
  );
}

/**
 * Sends one notification to the service manager (`sd_notify(3)`): a
 * datagram to `$NOTIFY_SOCKET` with the given fields and fds.
 *
 * Without `$NOTIFY_SOCKET` (not started by a manager that listens) nothing
 * is sent and the promise resolves to `false`, as `sd_notify` returns 0.
 * Reads the environment, so it needs `--allow-env` (or
 * `--allow-env=NOTIFY_SOCKET`) as well as `--allow-ffi`.
 *
 * The fields are checked before anything is sent: a bad value is a
 * `TypeError` or `RangeError` naming the field, more than 253 fds a
 * `RangeError`. In the object form fds go only with `fdStore: true` (the
 * manager closes fds it is not asked to store), `fdName` needs `fdStore`
 * or `fdStoreRemove`, and `fdStoreRemove` needs `fdName`.
 *
 * @param state The fields as an object, or as `sd_notify` text
 * (`"READY=1\nSTATUS=serving"`, sent as it is).
 * @param options Fds, the address override, and `unsetEnvironment`.
 * @returns `true` once sent, `false` when there is nowhere to send.
 * @throws {Deno.errors.NotSupported} When `$NOTIFY_SOCKET` is neither a
 * path nor an `@name` (such as a `vsock:` address).
 * @throws {ErrnoError} When the send fails (`ECONNREFUSED`: nobody listens).
 *
 * @example Tell a manager that start-up is done
 * ```ts
 * import { notify, UnixSocket } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * // A stand-in for systemd: a bound datagram socket.
 * const name = `fdpass-doc-notify-${Deno.pid}`;
 * using manager = UnixSocket.datagram({ abstract: name });
 * Deno.env.set("NOTIFY_SOCKET", `@${name}`);
 *
 * assertEquals(await notify({ ready: true, status: "serving" }), true);
 * const { data } = manager.recvFromSync();
 * assertEquals(new TextDecoder().decode(data), "READY=1\nSTATUS=serving");
 * Deno.env.delete("NOTIFY_SOCKET");
 * assertEquals(await notify("READY=1"), false); // no manager: nothing sent
 * ```
 *
 * @example Keep a listening socket in the fd store across restarts
 * ```ts
 * import { notify, UnixSocket } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const dir = Deno.makeTempDirSync();
 * using manager = UnixSocket.datagram(`${dir}/notify.sock`);
 * using listener = UnixSocket.listen(`${dir}/app.sock`);
 *
 * await notify({ fdStore: true, fdName: "app" }, {
 *   fds: [listener],
 *   socket: `${dir}/notify.sock`,
 * });
 * const { data, fds } = manager.recvFromSync();
 * assertEquals(new TextDecoder().decode(data), "FDSTORE=1\nFDNAME=app");
 * assertEquals(fds.length, 1);
 * fds[0]!.close();
 * ```
 */
export async function notify(
  state: NotifyState | string,
  options?: NotifyOptions,
): Promise<boolean> {
  const opts = checkOptions(options);
  const unsetEnvironment = checkFlag(opts.unsetEnvironment, "unsetEnvironment");
  try {
    // Copied: collectFds() hands out an array the next collection reuses.
    const fds = [...collectFds(opts.fds)];
    let text: string;
    if (typeof state === "string") text = checkStateText(state);
    else if (typeof state === "object" && state !== null) text = formatState(state, fds.length);
    else {
      throw new TypeError(
        `Argument "state" must be an object of fields or sd_notify text, received ${
          describeValue(state)
        }`,
      );
    }
    const address = notifySocket(opts.socket);
    if (address === null) return false;
    await sendNotification(address, text, fds);
    return true;
  } finally {
    if (unsetEnvironment) Deno.env.delete("NOTIFY_SOCKET");
  }
}

/**
 * Sends one datagram from a fresh unbound socket, closed afterwards.
 *
 * @param address The manager's socket.
 * @param text The assignments.
 * @param fds The fd numbers.
 */
async function sendNotification(
  address: UnixAddress,
  text: string,
  fds: readonly number[],
): Promise<void> {
  using socket = UnixSocket.datagram();
  await socket.sendTo(address, text, { fds });
}

/**
 * Waits until the service manager has processed every notification sent
 * before it (`sd_notify_barrier(3)`): sends `BARRIER=1` alone with one fd,
 * the write end of a fresh pipe, closes that end here, and waits in the
 * shared poller (no thread is blocked) until the read end reports hang-up,
 * which happens when the manager closes its copy.
 *
 * @param options The timeout, an address override and an abort signal.
 * @returns `true` once the manager caught up, `false` without
 * `$NOTIFY_SOCKET` (nothing sent, nothing awaited).
 * @throws {Deno.errors.TimedOut} When the manager does not close the pipe
 * in time.
 *
 * @example Wait for a manager that processes the barrier
 * ```ts
 * import { notify, notifyBarrier, UnixSocket } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const name = { abstract: `fdpass-doc-barrier-${Deno.pid}` };
 * using manager = UnixSocket.datagram(name);
 * await notify({ status: "about to exit" }, { socket: name });
 * const barrier = notifyBarrier({ socket: name, timeoutMilliseconds: 2000 });
 *
 * // The manager reads both messages and closes the barrier's pipe end.
 * manager.recvFromSync();
 * const { data, fds } = manager.recvFromSync();
 * assertEquals(new TextDecoder().decode(data), "BARRIER=1");
 * fds[0]!.close();
 * assertEquals(await barrier, true);
 * ```
 */
export async function notifyBarrier(options?: NotifyBarrierOptions): Promise<boolean> {
  const opts = checkOptions(options);
  const timeout = opts.timeoutMilliseconds ?? 5000;
  if (typeof timeout !== "number" || !Number.isSafeInteger(timeout) || timeout < 0) {
    throw new RangeError(
      `Option "timeoutMilliseconds" must be a non-negative integer, received ${
        typeof timeout === "number" ? timeout : describeValue(timeout)
      }`,
    );
  }
  const signal = checkSignal(opts.signal);
  const address = notifySocket(opts.socket);
  if (address === null) return false;
  const [readEnd, writeEnd] = pipe();
  try {
    try {
      await sendNotification(address, "BARRIER=1", [writeEnd.fd]);
    } finally {
      writeEnd.close();
    }
    const timer = AbortSignal.timeout(timeout);
    const wait = signal === undefined ? timer : AbortSignal.any([timer, signal]);
    const buffer = new Uint8Array(64);
    try {
      // End of file: every write end, the manager's included, is closed.
      while ((await readEnd.read(buffer, { signal: wait })) !== null) { /* not expected: drain */ }
    } catch (error) {
      if (timer.aborted && !signal?.aborted) {
        throw new Deno.errors.TimedOut(
          `The service manager did not process BARRIER=1 within ${timeout} ms`,
        );
      }
      throw error;
    }
    return true;
  } finally {
    readEnd.close();
  }
}
