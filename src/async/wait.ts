/**
 * The public face of the poller: readiness waits on any fd, its counters
 * and its settings.
 *
 * @module
 */

import { checkFdNumber, checkIntegerOption, checkOptions, checkSignal } from "../core/checks.ts";
import { poller, type PollerStats } from "./poller.ts";
import type { BackendName } from "./backend.ts";
import { type FdHandle, waitOn } from "./handle.ts";

export type { PollerStats };
export type { BackendName } from "./backend.ts";

/** Options for {@linkcode waitReadable} and {@linkcode waitWritable}. */
export interface WaitOptions {
  /** Cancels the wait; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Options for {@linkcode configurePoller}. */
export interface PollerOptions {
  /**
   * Microseconds an async operation keeps retrying a nonblocking call
   * before it parks in the poller. Spinning trades CPU (one core busy for up
   * to this long per wait) for latency: it skips the thread hop of the
   * poller (tens of microseconds). 0 disables it.
   *
   * @default {0}
   */
  spinMicroseconds?: number;
  /**
   * The backend. `"io_uring"` (Linux 5.7 or later) waits through Deno's own
   * event loop, woken by a doorbell the kernel rings: no thread and no FFI
   * call wait. `"epoll"` waits in one `epoll_wait` in Deno's blocking pool;
   * `"poll"` is the portable fallback. Only changeable while nothing waits;
   * asking for `"io_uring"` where it is refused throws.
   *
   * @default {"io_uring" where it works (else "epoll", see `pollerStats().fallbackReason`), "poll" off Linux}
   */
  backend?: BackendName;
  /**
   * Upper bound in milliseconds of one FFI wait; a wait that times out is
   * re-issued while someone still waits.
   *
   * @default {10000}
   */
  maxWaitMilliseconds?: number;
}

/** A bare number handle: a wait on a number the caller owns. */
class NumberHandle implements FdHandle {
  readonly fd: number;
  constructor(fd: number) {
    this.fd = fd;
  }
  get closed(): boolean {
    return false;
  }
}

async function waitFor(
  fd: number | { readonly fd: number; readonly closed?: boolean },
  write: boolean,
  options: WaitOptions,
): Promise<void> {
  checkOptions(options);
  const signal = checkSignal(options.signal);
  let handle: FdHandle;
  if (typeof fd === "number") {
    handle = new NumberHandle(checkFdNumber(fd, "fd"));
  } else if (typeof fd === "object" && fd !== null && typeof fd.closed === "boolean") {
    // An owner that can say it was closed: hold it, not its number.
    checkFdNumber(fd.fd, "fd");
    handle = fd as FdHandle;
  } else {
    handle = new NumberHandle(checkFdNumber(fd?.fd, "fd"));
  }
  await waitOn(handle, write, signal);
}

/**
 * Resolves when `fd` is readable (or at end of file, or in error), without
 * tying up a thread per waiting fd. Use it to wait on an `eventfd`, a pipe
 * or any pollable fd. A regular file is always ready. As with `poll(2)`, a
 * readiness report can be spurious (another reader took the data first):
 * retry the operation, and wait again if it would still block.
 *
 * @param fd An fd number or an object with an `fd`.
 * @param options An abort signal.
 * @returns A promise that resolves when the fd is ready.
 *
 * @example Wait for a pipe to have data
 * ```ts
 * import { pipe, waitReadable } from "@fdpass/fdpass";
 *
 * const [r, w] = pipe();
 * const ready = waitReadable(r);
 * w.writeAllSync("x");
 * await ready;
 * r.close();
 * w.close();
 * ```
 */
export function waitReadable(
  fd: number | { readonly fd: number },
  options: WaitOptions = {},
): Promise<void> {
  return waitFor(fd, false, options);
}

/**
 * Resolves when `fd` is writable (or in error), without tying up a thread
 * per waiting fd.
 *
 * @param fd An fd number or an object with an `fd`.
 * @param options An abort signal.
 * @returns A promise that resolves when the fd is ready.
 *
 * @example Wait until a socket can take more data
 * ```ts
 * import { UnixSocket, waitWritable } from "@fdpass/fdpass";
 *
 * const [a, b] = UnixSocket.pair();
 * await waitWritable(a);
 * a.close();
 * b.close();
 * ```
 */
export function waitWritable(
  fd: number | { readonly fd: number },
  options: WaitOptions = {},
): Promise<void> {
  return waitFor(fd, true, options);
}

/**
 * The poller's counters: outstanding FFI waits (never more than one),
 * registered fds, wakeups and spins.
 *
 * @returns A snapshot.
 *
 * @example Nothing waits when idle
 * ```ts
 * import { pollerStats } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * assertEquals(pollerStats().outstandingWaits, 0);
 * ```
 */
export function pollerStats(): PollerStats {
  return poller().stats;
}

/**
 * Starts the poller's backend without waiting (for reports): afterwards
 * `pollerStats().backend` names the backend waits use, and
 * `fallbackReason` says why io_uring was refused, if it was.
 *
 * @returns The counters, once the backend exists.
 * @throws {ErrnoError} When even the fallback backend cannot be created.
 */
export function startedPollerStats(): PollerStats {
  const p = poller();
  p.start();
  return p.stats;
}

/**
 * Sets the poller's spin budget, backend and wait bound.
 *
 * @param options What to change.
 *
 * @example Spin up to 50 µs before parking
 * ```ts
 * import { configurePoller } from "@fdpass/fdpass";
 *
 * configurePoller({ spinMicroseconds: 50 });
 * configurePoller({ spinMicroseconds: 0 });
 * ```
 */
export function configurePoller(options: PollerOptions): void {
  checkOptions(options);
  const spin = options.spinMicroseconds;
  if (
    spin !== undefined && (typeof spin !== "number" || !Number.isFinite(spin) || spin < 0 ||
      spin > 1_000_000)
  ) {
    throw new RangeError(
      `Option "spinMicroseconds" must be from 0 to 1000000, received ${String(spin)}`,
    );
  }
  const wait = options.maxWaitMilliseconds === undefined
    ? undefined
    : checkIntegerOption(options.maxWaitMilliseconds, "maxWaitMilliseconds", 1, 3_600_000);
  if (
    options.backend !== undefined && options.backend !== "io_uring" &&
    options.backend !== "epoll" && options.backend !== "poll"
  ) {
    throw new TypeError(
      `Option "backend" must be "io_uring", "epoll" or "poll", received "${
        String(options.backend)
      }"`,
    );
  }
  const p = poller();
  if (options.backend !== undefined) p.setBackend(options.backend);
  p.configure(spin, wait);
}
