/**
 * The service watchdog of `sd_watchdog_enabled(3)`: the interval the
 * manager expects keep-alive pings at (`$WATCHDOG_USEC`, for the process
 * named by `$WATCHDOG_PID`), and a timer that sends `WATCHDOG=1` at half of
 * it, as sd_watchdog_enabled(3) recommends.
 *
 * @module
 */

import { checkOptions, describeValue } from "../core/checks.ts";
import type { UnixAddress } from "../core/address.ts";
import { notify, notifySocket } from "./notify.ts";

/** Options for {@linkcode watchdogInterval}. */
export interface WatchdogIntervalOptions {
  /**
   * Remove `$WATCHDOG_USEC` and `$WATCHDOG_PID` from the environment
   * afterwards, so that child processes do not take them for their own.
   *
   * @default {false}
   */
  unsetEnvironment?: boolean;
}

/** Options for {@linkcode startWatchdog}. */
export interface StartWatchdogOptions {
  /** Where to send instead of `$NOTIFY_SOCKET`. */
  socket?: UnixAddress;
  /**
   * Called with the error of a ping that could not be sent. Without it such
   * errors are dropped: the manager, missing the ping, acts on its own.
   */
  onError?: (error: unknown) => void;
}

/** A running keep-alive timer from {@linkcode startWatchdog}. */
export interface Watchdog extends Disposable {
  /** The manager's interval in microseconds; pings go out at half of it. */
  readonly intervalMicroseconds: number;
  /** Stops the pings. Safe to call twice. */
  stop(): void;
}

/**
 * The watchdog interval the service manager set for this process
 * (`sd_watchdog_enabled(3)`): `$WATCHDOG_USEC`, when `$WATCHDOG_PID` is
 * unset or names this process. Needs `--allow-env`.
 *
 * @param options Whether to unset the variables afterwards.
 * @returns The interval in microseconds, or `null` when the watchdog is
 * off or meant for another process.
 * @throws {TypeError} When `$WATCHDOG_USEC` or `$WATCHDOG_PID` is not a
 * positive integer (`sd_watchdog_enabled` returns `-EINVAL`).
 *
 * @example Read the interval
 * ```ts
 * import { watchdogInterval } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * Deno.env.set("WATCHDOG_USEC", "30000000");
 * Deno.env.set("WATCHDOG_PID", String(Deno.pid));
 * assertEquals(watchdogInterval({ unsetEnvironment: true }), 30_000_000);
 * assertEquals(watchdogInterval(), null); // unset now
 * ```
 */
export function watchdogInterval(options?: WatchdogIntervalOptions): number | null {
  const opts = checkOptions(options);
  if (opts.unsetEnvironment !== undefined && typeof opts.unsetEnvironment !== "boolean") {
    throw new TypeError(
      `Option "unsetEnvironment" must be a boolean, received ${
        describeValue(opts.unsetEnvironment)
      }`,
    );
  }
  try {
    const usec = Deno.env.get("WATCHDOG_USEC");
    if (usec === undefined) return null;
    const interval = positiveInteger(usec, "WATCHDOG_USEC");
    const pid = Deno.env.get("WATCHDOG_PID");
    if (pid !== undefined && positiveInteger(pid, "WATCHDOG_PID") !== Deno.pid) return null;
    return interval;
  } finally {
    if (opts.unsetEnvironment) {
      Deno.env.delete("WATCHDOG_USEC");
      Deno.env.delete("WATCHDOG_PID");
    }
  }
}

function positiveInteger(text: string, variable: string): number {
  const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`$${variable} must be a positive integer, received "${text}"`);
  }
  return value;
}

/**
 * Sends `WATCHDOG=1` every half {@linkcode watchdogInterval} until
 * stopped. The timer does not keep the process alive: when nothing else
 * is left to do, the process exits as if the watchdog were not there.
 *
 * @param options An address override and an error callback.
 * @returns The running watchdog, or `null` when the watchdog is off (or
 * meant for another process) or there is no `$NOTIFY_SOCKET` to ping.
 *
 * @example Ping a stand-in manager
 * ```ts
 * import { startWatchdog, UnixSocket } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const name = `fdpass-doc-watchdog-${Deno.pid}`;
 * using manager = UnixSocket.datagram({ abstract: name });
 * Deno.env.set("NOTIFY_SOCKET", `@${name}`);
 * Deno.env.set("WATCHDOG_USEC", "40000"); // 40 ms: a ping every 20 ms
 *
 * using watchdog = startWatchdog()!;
 * assertEquals(watchdog.intervalMicroseconds, 40_000);
 * const { data } = await manager.recvFrom();
 * assertEquals(new TextDecoder().decode(data), "WATCHDOG=1");
 * watchdog.stop();
 * Deno.env.delete("WATCHDOG_USEC");
 * Deno.env.delete("NOTIFY_SOCKET");
 * ```
 */
export function startWatchdog(options?: StartWatchdogOptions): Watchdog | null {
  const opts = checkOptions(options);
  if (opts.onError !== undefined && typeof opts.onError !== "function") {
    throw new TypeError(
      `Option "onError" must be a function, received ${describeValue(opts.onError)}`,
    );
  }
  const intervalMicroseconds = watchdogInterval();
  if (intervalMicroseconds === null) return null;
  // Read once, so that a later `unsetEnvironment` does not silence the pings.
  const socket = notifySocket(opts.socket);
  if (socket === null) return null;
  const onError = opts.onError ?? (() => {});
  // Whole milliseconds, at least 1: setInterval has no finer resolution.
  const period = Math.max(1, Math.floor(intervalMicroseconds / 2000));
  const id = setInterval(() => {
    notify({ watchdog: true }, { socket }).catch(onError);
  }, period);
  Deno.unrefTimer(id);
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(id);
  };
  return { intervalMicroseconds, stop, [Symbol.dispose]: stop };
}
