/**
 * The shared readiness poller: one per isolate, at most ONE outstanding
 * `nonblocking: true` FFI call (`epoll_wait` on Linux, `poll` elsewhere)
 * for every fd that is waited on, plus a wake fd so that cancelling or
 * changing interest never waits for a timeout.
 *
 * Why not one blocking FFI call per waiting socket: each holds one of
 * Deno's blocking-pool threads (shared with file system ops) and keeps the
 * process alive. When nothing waits, no FFI call is pending, so a script
 * exits as soon as its last receive completes.
 *
 * Failures stay with the waits they concern: an fd that cannot be armed
 * (closed behind the poller's back) rejects the waits on that fd; a wait
 * call that keeps failing rejects every wait instead of spinning.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { errnoError } from "../core/errors.ts";
import type { Backend, BackendName, Interest } from "./backend.ts";
import { EpollBackend } from "./epoll_backend.ts";
import { PollBackend } from "./poll_backend.ts";
import { UringBackend } from "./uring_backend.ts";

/** Counters for tests and benchmarks. */
export interface PollerStats {
  /**
   * The backend in use (or to be used by the next wait): `"io_uring"` (the
   * doorbell through Deno's event loop), `"epoll"` or `"poll"`.
   */
  readonly backend: BackendName;
  /**
   * Why io_uring is not in use although the platform may have it (for
   * example `"io_uring_setup: EPERM"` under a seccomp filter or
   * `kernel.io_uring_disabled`), or `null`.
   */
  readonly fallbackReason: string | null;
  /** FFI waits in flight right now: 0 or 1. */
  readonly outstandingWaits: number;
  /** Fds with at least one waiter. */
  readonly registeredFds: number;
  /** Pending waits (readers plus writers). */
  readonly waiters: number;
  /** FFI waits issued since start. */
  readonly waits: number;
  /** Times the wake fd was signalled to cut a wait short. */
  readonly wakeups: number;
  /** Waits resolved because their fd was reported ready, since start. */
  readonly wokenWaiters: number;
  /** Retries made while spinning before parking in the poller. */
  readonly spins: number;
  /** The largest number of FFI waits ever outstanding at once (never above 1). */
  readonly maxOutstandingWaits: number;
}

/**
 * What a waiter can do the moment its fd is reported ready: make its
 * nonblocking call then and there. Returns `true` when it is done (the
 * waiter is then resolved), `false` when the call would block (it keeps
 * waiting); a throw rejects the waiter.
 */
export type Attempt = () => boolean;

/** How many attempting readers one readiness report serves at most. */
const ATTEMPTS_PER_REPORT = 64;

interface Waiter {
  readonly fd: number;
  readonly write: boolean;
  readonly attempt: Attempt | undefined;
  resolve(): void;
  reject(reason: unknown): void;
  cleanup(): void;
}

class Entry implements Interest {
  readonly readers = new Set<Waiter>();
  readonly writers = new Set<Waiter>();
  get read(): boolean {
    return this.readers.size > 0;
  }
  get write(): boolean {
    return this.writers.size > 0;
  }
  get empty(): boolean {
    return this.readers.size === 0 && this.writers.size === 0;
  }
}

/** Consecutive failed waits after which the loop pauses between tries. */
const FAILURES_BEFORE_PAUSE = 3;

/** Waits on fds for the whole isolate; see the module doc. */
export class Poller {
  readonly #entries = new Map<number, Entry>();
  #backend: Backend | null = null;
  #backendName: BackendName = defaultBackend();
  #fallbackReason: string | null = null;
  #inFlight = false;
  #wakePending = false;
  #waiters = 0;
  #waits = 0;
  #wakeups = 0;
  #woken = 0;
  #spins = 0;
  #maxOutstanding = 0;
  #spinMicroseconds = 0;
  #maxWait = 10_000;

  /** A snapshot of the counters. */
  get stats(): PollerStats {
    return {
      backend: this.#backendName,
      fallbackReason: this.#fallbackReason,
      outstandingWaits: this.#inFlight ? 1 : 0,
      registeredFds: this.#entries.size,
      waiters: this.#waiters,
      waits: this.#waits,
      wakeups: this.#wakeups,
      wokenWaiters: this.#woken,
      spins: this.#spins,
      maxOutstandingWaits: this.#maxOutstanding,
    };
  }

  /**
   * Sets the spin budget and the bound of one FFI wait (checked by the caller).
   *
   * @param spinMicroseconds Microseconds to retry before parking, or `undefined`.
   * @param maxWaitMilliseconds Bound of one wait, or `undefined`.
   */
  configure(spinMicroseconds: number | undefined, maxWaitMilliseconds: number | undefined): void {
    if (spinMicroseconds !== undefined) this.#spinMicroseconds = spinMicroseconds;
    if (maxWaitMilliseconds !== undefined) this.#maxWait = maxWaitMilliseconds;
  }

  /**
   * Switches the backend; only while nothing waits.
   *
   * @param name The backend.
   */
  setBackend(name: BackendName): void {
    if (name === this.#backendName) return;
    if (name === "epoll" && !libc().layout.features.epoll) {
      throw new Deno.errors.NotSupported(`epoll is not available on ${libc().layout.name}`);
    }
    if (this.#inFlight || this.#entries.size > 0) {
      throw new TypeError("Cannot change the poller backend while operations wait");
    }
    // Asked for by name: io_uring must work now, or the call throws.
    const next = name === "io_uring" ? new UringBackend() : null;
    this.#backendName = name;
    this.#fallbackReason = null;
    this.#backend?.close();
    this.#backend = next;
  }

  /**
   * Makes the backend now if no wait has made it yet, so that the name and
   * fallback reason in {@linkcode stats} are what waits will use.
   */
  start(): void {
    this.#backend ??= this.#createBackend();
  }

  /** Makes the chosen backend; io_uring falls back to epoll when refused. */
  #createBackend(): Backend {
    if (this.#backendName === "io_uring") {
      try {
        return new UringBackend();
      } catch (error) {
        this.#backendName = "epoll";
        this.#fallbackReason = describeFailure(error);
      }
    }
    return this.#backendName === "epoll" ? new EpollBackend() : new PollBackend();
  }

  /**
   * Retries `attempt` for up to the spin budget.
   *
   * @param attempt Returns `true` once it succeeded.
   * @returns Whether it succeeded while spinning.
   */
  spin(attempt: () => boolean): boolean {
    const budget = this.#spinMicroseconds;
    if (budget <= 0) return false;
    const deadline = performance.now() + budget / 1000;
    do {
      this.#spins++;
      if (attempt()) return true;
    } while (performance.now() < deadline);
    return false;
  }

  /**
   * Resolves when `fd` is ready for reading or writing (or at end of file,
   * or in error).
   *
   * A reader that gives an `attempt` makes its call when the fd is
   * reported readable, before any other code runs, and in the order the
   * readers came: the first takes the first message, the next the next,
   * and the first that would block ends the round, so N readers of one
   * socket cost one report per burst of messages, not N wake-ups per
   * message. Readers without an attempt and writers are all resolved.
   *
   * @param fd The fd number (the caller holds its owner).
   * @param write Whether to wait for writability.
   * @param signal Cancels the wait (already checked to be an `AbortSignal`).
   * @param attempt The reader's nonblocking call; see {@linkcode Attempt}.
   * @returns A promise that resolves when the fd is ready (and, with an
   * attempt, once the attempt is done).
   */
  wait(
    fd: number,
    write: boolean,
    signal: AbortSignal | undefined,
    attempt?: Attempt,
  ): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let backend: Backend;
    try {
      backend = this.#backend ??= this.#createBackend();
    } catch (error) {
      return Promise.reject(error);
    }
    let entry = this.#entries.get(fd);
    const fresh = entry === undefined;
    entry ??= new Entry();
    try {
      if (!backend.arm(fd, entry.read || !write, entry.write || write)) {
        // Not pollable (a regular file): always ready.
        return Promise.resolve();
      }
    } catch (error) {
      if (!fresh) this.#fail(fd, error);
      return Promise.reject(error);
    }
    if (fresh) this.#entries.set(fd, entry);
    const target = entry;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#remove(waiter);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        fd,
        write,
        attempt: write ? undefined : attempt,
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener("abort", onAbort),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      (write ? target.writers : target.readers).add(waiter);
      this.#waiters++;
      if (!backend.dynamic && this.#inFlight) this.#wake();
      void this.#run();
    });
  }

  /**
   * Rejects every wait on `fd` and forgets it; call before `fd` is closed.
   *
   * @param fd The fd number.
   * @param reason Makes the rejection for each waiter.
   */
  forget(fd: number, reason: () => unknown): void {
    const entry = this.#entries.get(fd);
    if (entry !== undefined) {
      this.#entries.delete(fd);
      for (const waiter of [...entry.readers, ...entry.writers]) {
        this.#drop(entry, waiter);
        waiter.reject(reason());
      }
    }
    // Idle registrations stay in epoll between waits: drop this one before
    // the number can be reused.
    this.#backend?.forget(fd);
    this.#wakeIfIdle();
  }

  /** Takes a waiter out of its set; `true` if it was still there. */
  #drop(entry: Entry, waiter: Waiter): boolean {
    if (!(waiter.write ? entry.writers : entry.readers).delete(waiter)) return false;
    waiter.cleanup();
    this.#waiters--;
    return true;
  }

  /** Rejects every wait on `fd` with `error`: the fd cannot be waited on. */
  #fail(fd: number, error: unknown): void {
    this.forget(fd, () => error);
  }

  #remove(waiter: Waiter): void {
    const entry = this.#entries.get(waiter.fd);
    if (entry === undefined || !this.#drop(entry, waiter)) return;
    this.#update(waiter.fd, entry, false);
    this.#wakeIfIdle();
  }

  /** Nobody left to wait for: end the outstanding call, so the process can exit. */
  #wakeIfIdle(): void {
    if (this.#inFlight && (this.#entries.size === 0 || !this.#backend!.dynamic)) this.#wake();
  }

  /** Re-arms `fd` for the waiters left, or lets it idle; contains failures. */
  #update(fd: number, entry: Entry, fired: boolean): void {
    const backend = this.#backend!;
    if (entry.empty) {
      this.#entries.delete(fd);
      backend.idle(fd, fired);
      return;
    }
    try {
      backend.arm(fd, entry.read, entry.write);
    } catch (error) {
      this.#fail(fd, error);
    }
  }

  #wake(): void {
    if (this.#wakePending) return;
    this.#wakePending = true;
    this.#wakeups++;
    this.#backend!.wake();
  }

  #report = (fd: number, read: boolean, write: boolean, _hangup: boolean): void => {
    const entry = this.#entries.get(fd);
    if (entry === undefined) return;
    if (read) {
      let drained = false;
      let budget = ATTEMPTS_PER_REPORT;
      // Deleting the current element while iterating a Set is safe.
      for (const waiter of entry.readers) {
        const attempt = waiter.attempt;
        if (attempt === undefined) {
          this.#ready(entry, waiter);
          continue;
        }
        if (drained) continue;
        let done: boolean;
        try {
          done = attempt();
        } catch (error) {
          this.#drop(entry, waiter);
          waiter.reject(error);
          continue;
        }
        if (done) this.#ready(entry, waiter);
        // Would block: the data is gone and the others keep waiting. A spent
        // budget: the level-triggered registration reports the rest.
        if (!done || --budget === 0) drained = true;
      }
    }
    if (write) {
      for (const waiter of entry.writers) this.#ready(entry, waiter);
    }
    // Every attempt above has run, so the re-armed registration sees the
    // fd as it is now.
    this.#update(fd, entry, true);
  };

  #ready(entry: Entry, waiter: Waiter): void {
    this.#drop(entry, waiter);
    this.#woken++;
    waiter.resolve();
  }

  async #run(): Promise<void> {
    if (this.#inFlight) return;
    this.#inFlight = true;
    this.#maxOutstanding = Math.max(this.#maxOutstanding, 1);
    const backend = this.#backend!;
    const { layout } = libc();
    let failures = 0;
    try {
      while (this.#entries.size > 0) {
        this.#waits++;
        const count = await backend.wait(this.#entries, this.#maxWait);
        if (this.#wakePending) {
          backend.drainWake();
          this.#wakePending = false;
        }
        if (count < 0) {
          // errno of the blocking thread cannot be read here: make the same
          // call again on this thread to tell EINTR from a lasting error.
          const errno = backend.probe(this.#entries);
          if (errno !== 0 && errno !== layout.errno.EINTR) {
            throw errnoError(errno, WAIT_CALLS[backend.name]);
          }
          if (++failures > FAILURES_BEFORE_PAUSE) {
            await new Promise((resolve) => setTimeout(resolve, Math.min(failures, 100)));
          }
          continue;
        }
        failures = 0;
        backend.events(count, this.#report);
      }
    } catch (error) {
      // Nothing else can be done for the waits: reject them all, and start
      // over with a fresh backend on the next wait.
      for (const fd of [...this.#entries.keys()]) this.#fail(fd, error);
      if (this.#backend === backend) {
        this.#backend = null;
        backend.close();
      }
    } finally {
      this.#inFlight = false;
      if (this.#wakePending && this.#backend === backend) {
        backend.drainWake();
      }
      this.#wakePending = false;
    }
  }
}

/** The call each backend waits with, for errors. */
const WAIT_CALLS: Readonly<Record<BackendName, string>> = {
  io_uring: "io_uring_enter",
  epoll: "epoll_wait",
  poll: "poll",
};

function defaultBackend(): BackendName {
  const { features } = libc().layout;
  return features.ioUring ? "io_uring" : features.epoll ? "epoll" : "poll";
}

function describeFailure(error: unknown): string {
  if (error instanceof Error) {
    const { code, syscall } = error as { code?: unknown; syscall?: unknown };
    if (typeof code === "string" && typeof syscall === "string") return `${syscall}: ${code}`;
    return error.message;
  }
  return String(error);
}

let shared: Poller | undefined;

/**
 * The isolate's poller.
 *
 * @returns The shared poller.
 */
export function poller(): Poller {
  return shared ??= new Poller();
}

/**
 * The poller if one was made (without creating one).
 *
 * @returns The poller, or `undefined` before first use.
 */
export function existingPoller(): Poller | undefined {
  return shared;
}
