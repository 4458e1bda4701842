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
import { WOULD_BLOCK, type WouldBlock } from "../core/syscall.ts";
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
  /**
   * Times an fd's registration was armed or re-armed, since start: one
   * `epoll_ctl` each with the epoll and io_uring backends. A wait in a
   * direction the registration is already armed for makes none.
   */
  readonly arms: number;
  /** Retries made while spinning before parking in the poller. */
  readonly spins: number;
  /** The largest number of FFI waits ever outstanding at once (never above 1). */
  readonly maxOutstandingWaits: number;
}

/**
 * A nonblocking call that a waiter makes the moment its fd is reported
 * ready: its result, or {@linkcode WOULD_BLOCK} to keep waiting. A throw
 * rejects the waiter. The operation holds the resource it acts on, so a
 * pending operation keeps its owner reachable.
 */
export interface Operation<T> {
  attempt(): T | WouldBlock;
}

/** What an attempt that threw returns in the report (its waiter is rejected). */
const FAILED: unique symbol = Symbol("failed");

/** How many attempting readers one readiness report serves at most. */
const ATTEMPTS_PER_REPORT = 64;

/**
 * One pending wait, linked into its fd's list of readers or writers. It is
 * its own abort listener (no closure per wait).
 */
class Waiter implements EventListenerObject {
  readonly poller: Poller;
  readonly fd: number;
  readonly write: boolean;
  /** The call to make when the fd is reported ready, or `null` (just resolve). */
  readonly operation: Operation<unknown> | null;
  /** What the wait keeps reachable: the owner of the fd. */
  readonly holder: unknown;
  readonly signal: AbortSignal | undefined;
  resolve!: (value: unknown) => void;
  reject!: (reason: unknown) => void;
  prev: Waiter | null = null;
  next: Waiter | null = null;
  /** Whether the waiter is still in its list. */
  linked = false;

  constructor(
    poller: Poller,
    fd: number,
    write: boolean,
    operation: Operation<unknown> | null,
    holder: unknown,
    signal: AbortSignal | undefined,
  ) {
    this.poller = poller;
    this.fd = fd;
    this.write = write;
    this.operation = operation;
    this.holder = holder;
    this.signal = signal;
  }

  /** The abort listener. */
  handleEvent(): void {
    this.poller.cancel(this);
  }
}

/** The waiters of one direction, in arrival order. */
class WaiterList {
  head: Waiter | null = null;
  tail: Waiter | null = null;

  push(waiter: Waiter): void {
    waiter.prev = this.tail;
    waiter.next = null;
    if (this.tail === null) this.head = waiter;
    else this.tail.next = waiter;
    this.tail = waiter;
    waiter.linked = true;
  }

  remove(waiter: Waiter): void {
    if (waiter.prev === null) this.head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === null) this.tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = waiter.next = null;
    waiter.linked = false;
  }
}

class Entry implements Interest {
  readonly readers = new WaiterList();
  readonly writers = new WaiterList();
  /**
   * The directions a one-shot backend was last armed for, cleared when it
   * reports the fd (the registration is disarmed then): a new waiter for a
   * direction already armed needs no call. Edge backends keep this
   * themselves ({@linkcode Backend.matches}).
   */
  armedRead = false;
  armedWrite = false;
  get read(): boolean {
    return this.readers.head !== null;
  }
  get write(): boolean {
    return this.writers.head !== null;
  }
  get empty(): boolean {
    return this.readers.head === null && this.writers.head === null;
  }
}

/** Empty entries kept for reuse. */
const ENTRY_POOL = 256;

/** Consecutive failed waits after which the loop pauses between tries. */
const FAILURES_BEFORE_PAUSE = 3;

/** Waits on fds for the whole isolate; see the module doc. */
export class Poller {
  readonly #entries = new Map<number, Entry>();
  /** Entries of fds nobody waits on any more, for reuse. */
  readonly #pool: Entry[] = [];
  #backend: Backend | null = null;
  #backendName: BackendName = defaultBackend();
  #fallbackReason: string | null = null;
  #inFlight = false;
  #wakePending = false;
  #waiters = 0;
  #waits = 0;
  #wakeups = 0;
  #woken = 0;
  #arms = 0;
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
      arms: this.#arms,
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
    // The old backend's fds go first, so that the new one's get the same
    // numbers. Asked for by name, io_uring must work now, or the call
    // throws (and the next wait makes the backend in use before).
    this.#backend?.close();
    this.#backend = null;
    const next = name === "io_uring" ? new UringBackend() : null;
    this.#backendName = name;
    this.#fallbackReason = null;
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
   * Retries `operation` for up to the spin budget.
   *
   * @param operation The nonblocking call.
   * @returns Its result, or {@linkcode WOULD_BLOCK} when it would still block.
   */
  spin<T>(operation: Operation<T>): T | WouldBlock {
    const budget = this.#spinMicroseconds;
    if (budget <= 0) return WOULD_BLOCK;
    const deadline = performance.now() + budget / 1000;
    do {
      this.#spins++;
      const result = operation.attempt();
      if (result !== WOULD_BLOCK) return result;
    } while (performance.now() < deadline);
    return WOULD_BLOCK;
  }

  /**
   * Resolves when `fd` is ready for reading or writing (or at end of file,
   * or in error), or, with an `operation`, with the operation's result once
   * a readiness report let it finish.
   *
   * A waiter with an operation makes its call when the fd is reported
   * ready, before any other code runs, and readers do so in the order they
   * came: the first takes the first message, the next the next, and the
   * first that would block ends the round, so N readers of one socket cost
   * one report per burst of messages, not N wake-ups per message. Waiters
   * without an operation are all resolved.
   *
   * @param fd The fd number (the caller holds its owner).
   * @param write Whether to wait for writability.
   * @param signal Cancels the wait (already checked to be an `AbortSignal`).
   * @param operation The nonblocking call; see {@linkcode Operation}.
   * @param holder What the wait keeps reachable while it is pending (the
   * fd's owner); an operation holds its own.
   * @returns A promise of the operation's result (`undefined` without one).
   */
  wait<T = void>(
    fd: number,
    write: boolean,
    signal: AbortSignal | undefined,
    operation: Operation<T> | null = null,
    holder: unknown = null,
  ): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    let backend: Backend;
    try {
      backend = this.#backend ??= this.#createBackend();
    } catch (error) {
      return Promise.reject(error);
    }
    let entry = this.#entries.get(fd);
    const fresh = entry === undefined;
    entry ??= this.#pool.pop() ?? new Entry();
    const read = entry.read || !write;
    const writable = entry.write || write;
    // A direction the registration is already armed for needs no call. An
    // edge registration stays armed across waits: a wait with an operation
    // comes straight after an attempt that would block, so the next edge is
    // all it needs; a wait without one has the fd looked at afresh, since
    // the fd may have become ready before, with nobody waiting.
    if (
      backend.edge
        ? operation === null || !backend.matches(fd, read, writable)
        : write
        ? !entry.armedWrite
        : !entry.armedRead
    ) {
      try {
        this.#arms++;
        if (!backend.arm(fd, read, writable)) {
          // Not pollable (a regular file): always ready.
          if (fresh) this.#release(entry);
          return operation === null ? Promise.resolve(undefined as T) : this.#attemptNow(operation);
        }
      } catch (error) {
        if (fresh) this.#release(entry);
        else this.#fail(fd, error);
        return Promise.reject(error);
      }
      entry.armedRead = read;
      entry.armedWrite = writable;
      if (!backend.dynamic && this.#inFlight) this.#wake();
    }
    if (fresh) this.#entries.set(fd, entry);
    const waiter = new Waiter(this, fd, write, operation, holder, signal);
    const promise = new Promise<T>((resolve, reject) => {
      waiter.resolve = resolve as (value: unknown) => void;
      waiter.reject = reject;
    });
    signal?.addEventListener("abort", waiter, { once: true });
    (write ? entry.writers : entry.readers).push(waiter);
    this.#waiters++;
    if (!this.#inFlight) void this.#run();
    return promise;
  }

  /** An operation on an fd that is always ready: one try now. */
  #attemptNow<T>(operation: Operation<T>): Promise<T> {
    try {
      const result = operation.attempt();
      if (result !== WOULD_BLOCK) return Promise.resolve(result);
      return Promise.reject(new Deno.errors.WouldBlock("The fd cannot be polled and is not ready"));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Rejects every wait on `fd` and forgets it; call before `fd` is closed.
   *
   * @param fd The fd number.
   * @param reason Makes the rejection for each waiter.
   */
  forget(fd: number, reason: () => unknown): void {
    const backend = this.#backend;
    if (backend === null) return;
    const entry = this.#entries.get(fd);
    if (entry !== undefined) {
      this.#entries.delete(fd);
      for (const list of [entry.readers, entry.writers]) {
        for (let waiter = list.head; waiter !== null; waiter = list.head) {
          this.#drop(entry, waiter);
          waiter.reject(reason());
        }
      }
      this.#release(entry);
    }
    // Idle registrations stay in epoll between waits: drop this one before
    // the number can be reused.
    backend.forget(fd);
    this.#wakeIfIdle();
  }

  /**
   * Cancels a pending wait (its signal fired): rejects it with the
   * signal's reason.
   *
   * @param waiter The wait.
   */
  cancel(waiter: Waiter): void {
    if (!waiter.linked) return;
    const entry = this.#entries.get(waiter.fd)!;
    this.#drop(entry, waiter);
    waiter.reject(waiter.signal!.reason);
    this.#update(waiter.fd, entry, false);
    this.#wakeIfIdle();
  }

  /** Takes a waiter out of its list. */
  #drop(entry: Entry, waiter: Waiter): void {
    (waiter.write ? entry.writers : entry.readers).remove(waiter);
    waiter.signal?.removeEventListener("abort", waiter);
    this.#waiters--;
  }

  /** Returns an empty entry to the pool. */
  #release(entry: Entry): void {
    entry.armedRead = entry.armedWrite = false;
    if (this.#pool.length < ENTRY_POOL) this.#pool.push(entry);
  }

  /** Rejects every wait on `fd` with `error`: the fd cannot be waited on. */
  #fail(fd: number, error: unknown): void {
    this.forget(fd, () => error);
  }

  /** Nobody left to wait for: end the outstanding call, so the process can exit. */
  #wakeIfIdle(): void {
    if (this.#inFlight && (this.#entries.size === 0 || !this.#backend!.dynamic)) this.#wake();
  }

  /**
   * Re-arms `fd` for the waiters left, or lets it idle; contains failures.
   * `recheck` (edge registrations) has the fd looked at afresh: readers
   * may have left data unread.
   */
  #update(fd: number, entry: Entry, fired: boolean, recheck = false): void {
    const backend = this.#backend!;
    if (entry.empty) {
      this.#entries.delete(fd);
      this.#release(entry);
      backend.idle(fd, fired);
      return;
    }
    const read = entry.read;
    const write = entry.write;
    if (backend.edge) {
      // After a report, waiters left are re-armed as with one-shot
      // registrations: the call also finds an fd closed behind our back.
      if (!recheck && !fired && backend.matches(fd, read, write)) return;
    } else if (!fired && entry.armedRead === read && entry.armedWrite === write) return;
    try {
      this.#arms++;
      backend.arm(fd, read, write);
      entry.armedRead = read;
      entry.armedWrite = write;
    } catch (error) {
      this.#fail(fd, error);
    }
  }

  /**
   * A wait reached its bound with nothing reported: has every waited-on fd
   * looked at afresh. An edge registration is armed for the file the
   * number had when it was armed; if the number was closed behind our
   * back and reused, the re-arm registers the new file, so its waiters are
   * woken by the bound at the latest.
   */
  #recheck(): void {
    for (const [fd, entry] of [...this.#entries]) this.#update(fd, entry, false, true);
  }

  #wake(): void {
    if (this.#wakePending) return;
    this.#wakePending = true;
    this.#wakeups++;
    this.#backend!.wake();
  }

  #report = (fd: number, read: boolean, write: boolean, _hangup: boolean): void => {
    const entry = this.#entries.get(fd);
    const edge = this.#backend!.edge;
    if (entry === undefined) {
      // Only an edge registration reports an fd nobody waits on.
      if (edge) this.#backend!.unwanted(fd);
      return;
    }
    // A one-shot registration is disarmed now.
    if (!edge) entry.armedRead = entry.armedWrite = false;
    let spent = false;
    // Whether the report concerns a waiter (an edge registration may report
    // a direction nobody waits in, such as writability to a reader).
    const served = (read && entry.readers.head !== null) || (write && entry.writers.head !== null);
    if (read) {
      let drained = false;
      let budget = ATTEMPTS_PER_REPORT;
      for (let waiter = entry.readers.head; waiter !== null;) {
        const next = waiter.next;
        const operation = waiter.operation;
        if (operation === null) {
          this.#ready(entry, waiter, undefined);
        } else if (!drained) {
          const result = this.#attempt(entry, waiter, operation);
          // Would block: the data is gone and the others keep waiting. A spent
          // budget: the re-armed registration reports the rest (an edge one
          // is looked at afresh for it).
          if (result === WOULD_BLOCK) drained = true;
          else if (result !== FAILED && --budget === 0) drained = spent = true;
        }
        waiter = next;
      }
    }
    if (write) {
      for (let waiter = entry.writers.head; waiter !== null;) {
        const next = waiter.next;
        const operation = waiter.operation;
        if (operation === null) {
          this.#ready(entry, waiter, undefined);
        } else {
          this.#attempt(entry, waiter, operation);
        }
        waiter = next;
      }
    }
    // Every attempt above has run, so the re-armed registration sees the
    // fd as it is now.
    this.#update(fd, entry, !edge || served, spent);
  };

  /**
   * Makes a waiter's call now: settles the waiter with its result, or
   * rejects it with what the call threw ({@linkcode FAILED}), or leaves it
   * waiting ({@linkcode WOULD_BLOCK}).
   */
  #attempt(entry: Entry, waiter: Waiter, operation: Operation<unknown>): unknown {
    let result: unknown;
    try {
      result = operation.attempt();
    } catch (error) {
      this.#drop(entry, waiter);
      waiter.reject(error);
      return FAILED;
    }
    if (result !== WOULD_BLOCK) this.#ready(entry, waiter, result);
    return result;
  }

  #ready(entry: Entry, waiter: Waiter, result: unknown): void {
    this.#drop(entry, waiter);
    this.#woken++;
    waiter.resolve(result);
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
        if (count === 0 && backend.edge) {
          // Not the fds' fault if the backend itself went bad meanwhile.
          const errno = backend.probe(this.#entries);
          if (errno !== 0) throw errnoError(errno, WAIT_CALLS[backend.name]);
          this.#recheck();
        }
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
