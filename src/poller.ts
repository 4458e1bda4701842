/**
 * The shared readiness poller: one per isolate, at most ONE outstanding
 * `nonblocking: true` FFI call (`epoll_wait` on Linux, `poll` elsewhere)
 * for every fd that is waited on, plus a wake fd so that cancelling or
 * changing interest never waits for a timeout.
 *
 * Why not one blocking FFI call per waiting socket: each holds one of
 * Deno's 32 blocking threads (shared with file system ops) and keeps the
 * process alive (`../shared/reference/deno-ffi.md` section 2). When nothing
 * waits, no FFI call is pending, so a script exits as soon as its last
 * receive completes.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { ErrnoError, throwErrno } from "./errors.ts";
import { checkFdNumber } from "./errors.ts";

/** Counters for tests and benchmarks. */
export interface PollerStats {
  /** `"epoll"` or `"poll"`. */
  readonly backend: "epoll" | "poll";
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
  /** Retries made while spinning before parking in the poller. */
  readonly spins: number;
  /** The largest number of FFI waits ever outstanding at once (never above 1). */
  readonly maxOutstandingWaits: number;
}

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
   * The backend; `"poll"` is the portable fallback. Only changeable while
   * nothing waits.
   *
   * @default {"epoll" on Linux, "poll" elsewhere}
   */
  backend?: "epoll" | "poll";
  /**
   * Upper bound in milliseconds of one FFI wait; a wait that times out is
   * re-issued while someone still waits.
   *
   * @default {10000}
   */
  maxWaitMilliseconds?: number;
}

interface Waiter {
  readonly fd: number;
  readonly write: boolean;
  resolve(): void;
  reject(reason: unknown): void;
  cleanup(): void;
}

interface Interest {
  readonly readers: Set<Waiter>;
  readonly writers: Set<Waiter>;
}

/** What the backends do: arm interest, wait once, report events. */
interface Backend {
  readonly name: "epoll" | "poll";
  /** Whether interest added during a wait is seen without a wake. */
  readonly dynamic: boolean;
  /** Arms `fd` for the given directions; `false` when the fd cannot be polled (always ready). */
  arm(fd: number, read: boolean, write: boolean): boolean;
  /**
   * Nobody waits on `fd` any more: stop reporting it, but keep it
   * registered so that the next wait costs one call. `fired` says the
   * backend just reported it (a one-shot registration is already disarmed).
   */
  idle(fd: number, fired: boolean): void;
  /** Forgets `fd` entirely; called before the fd is closed. */
  forget(fd: number): void;
  /** The one waiting FFI call. */
  wait(interests: Map<number, Interest>, timeout: number): Promise<number>;
  /** Calls `report` for each event of the last wait. */
  events(count: number, report: (fd: number, read: boolean, write: boolean) => void): void;
  /** Makes the outstanding wait return. */
  wake(): void;
  /** Drains the wake fd after it fired; returns `true` for the wake fd. */
  isWake(fd: number): boolean;
  drainWake(): void;
  /** Closes the backend's own fds. */
  close(): void;
}

const MAX_EVENTS = 256;

class EpollBackend implements Backend {
  readonly name = "epoll";
  readonly dynamic = true;
  readonly #epfd: number;
  readonly #wakeFd: number;
  // Off-heap: the kernel writes events here from Deno's blocking thread.
  readonly #events: Uint8Array;
  readonly #eventsView: DataView;
  readonly #ctl = new Uint8Array(16);
  readonly #ctlView = new DataView(this.#ctl.buffer);
  readonly #counter = new BigUint64Array(1);
  readonly #armed = new Set<number>();

  constructor() {
    const { lib, layout } = libc();
    const c = layout.constants;
    if (lib.epoll_create1 === null || lib.eventfd === null || layout.epollEvent === null) {
      throw new Deno.errors.NotSupported("epoll is not available on this platform");
    }
    const epfd = lib.epoll_create1(c.EPOLL_CLOEXEC);
    if (epfd < 0) throwErrno("epoll_create1");
    const wakeFd = lib.eventfd(0, c.EFD_CLOEXEC | c.EFD_NONBLOCK);
    if (wakeFd < 0) {
      lib.close(epfd);
      throwErrno("eventfd");
    }
    this.#epfd = epfd;
    this.#wakeFd = wakeFd;
    this.#events = new Uint8Array(new ArrayBuffer(layout.epollEvent.size * MAX_EVENTS));
    this.#eventsView = new DataView(this.#events.buffer);
    // The wake fd stays armed, level-triggered.
    this.#control(c.EPOLL_CTL_ADD, wakeFd, c.EPOLLIN);
  }

  #control(op: number, fd: number, events: number): number {
    const { lib, layout } = libc();
    const e = layout.epollEvent!;
    this.#ctlView.setUint32(e.events, events, true);
    this.#ctlView.setBigUint64(e.data, BigInt(fd), true);
    return lib.epoll_ctl!(this.#epfd, op, fd, this.#ctl);
  }

  arm(fd: number, read: boolean, write: boolean): boolean {
    const { layout, errno } = libc();
    const c = layout.constants;
    // One-shot: a reported fd is disarmed until a waiter arms it again, so a
    // ready fd nobody waits for never spins the loop.
    const mask = (read ? c.EPOLLIN : 0) | (write ? c.EPOLLOUT : 0) | c.EPOLLONESHOT;
    const op = this.#armed.has(fd) ? c.EPOLL_CTL_MOD : c.EPOLL_CTL_ADD;
    if (this.#control(op, fd, mask) === 0) {
      this.#armed.add(fd);
      return true;
    }
    const e = errno[0];
    // Regular files and directories cannot be polled: always ready.
    if (e === layout.errno.EPERM) return false;
    if (e === layout.errno.EEXIST && this.#control(c.EPOLL_CTL_MOD, fd, mask) === 0) {
      this.#armed.add(fd);
      return true;
    }
    if (e === layout.errno.ENOENT && this.#control(c.EPOLL_CTL_ADD, fd, mask) === 0) {
      this.#armed.add(fd);
      return true;
    }
    throw ErrnoError.from(e!, "epoll_ctl");
  }

  idle(fd: number, fired: boolean): void {
    if (fired || !this.#armed.has(fd)) return;
    // A one-shot registration with no events never fires.
    const c = libc().layout.constants;
    if (this.#control(c.EPOLL_CTL_MOD, fd, c.EPOLLONESHOT) !== 0) this.#armed.delete(fd);
  }

  forget(fd: number): void {
    if (!this.#armed.delete(fd)) return;
    // ENOENT/EBADF: already gone with a close; nothing to undo.
    this.#control(libc().layout.constants.EPOLL_CTL_DEL, fd, 0);
  }

  wait(_interests: Map<number, Interest>, timeout: number): Promise<number> {
    return libc().lib.epoll_wait!(this.#epfd, this.#events, MAX_EVENTS, timeout);
  }

  events(count: number, report: (fd: number, read: boolean, write: boolean) => void): void {
    const { layout } = libc();
    const e = layout.epollEvent!;
    const c = layout.constants;
    const broken = c.EPOLLERR | c.EPOLLHUP;
    for (let i = 0; i < count; i++) {
      const at = i * e.size;
      const mask = this.#eventsView.getUint32(at + e.events, true);
      const fd = Number(this.#eventsView.getBigUint64(at + e.data, true));
      report(fd, (mask & (c.EPOLLIN | broken)) !== 0, (mask & (c.EPOLLOUT | broken)) !== 0);
    }
  }

  wake(): void {
    this.#counter[0] = 1n;
    libc().lib.write(this.#wakeFd, this.#counter, 8n);
  }

  isWake(fd: number): boolean {
    return fd === this.#wakeFd;
  }

  drainWake(): void {
    libc().lib.read(this.#wakeFd, this.#counter, 8n);
  }

  close(): void {
    libc().lib.close(this.#wakeFd);
    libc().lib.close(this.#epfd);
  }
}

class PollBackend implements Backend {
  readonly name = "poll";
  readonly dynamic = false;
  readonly #wakeRead: number;
  readonly #wakeWrite: number;
  #fds: Uint8Array = new Uint8Array(new ArrayBuffer(8 * 64));
  #view: DataView = new DataView(this.#fds.buffer);
  #count = 0;
  readonly #byte = new Uint8Array(64);

  constructor() {
    const { lib, layout } = libc();
    const pair = new Int32Array(2);
    if (lib.pipe(pair) !== 0) throwErrno("pipe");
    this.#wakeRead = pair[0]!;
    this.#wakeWrite = pair[1]!;
    const c = layout.constants;
    for (const fd of pair) {
      libc().fcntl(fd, c.F_SETFD, c.FD_CLOEXEC);
      libc().fcntl(fd, c.F_SETFL, c.O_NONBLOCK);
    }
  }

  arm(): boolean {
    return true;
  }

  idle(): void {}

  forget(): void {}

  wait(interests: Map<number, Interest>, timeout: number): Promise<number> {
    const { lib, layout } = libc();
    const p = layout.pollfd;
    const c = layout.constants;
    const needed = (interests.size + 1) * p.size;
    if (needed > this.#fds.byteLength) {
      let size = this.#fds.byteLength;
      while (size < needed) size *= 2;
      this.#fds = new Uint8Array(new ArrayBuffer(size));
      this.#view = new DataView(this.#fds.buffer);
    }
    let i = 0;
    const put = (fd: number, events: number) => {
      const at = i++ * p.size;
      this.#view.setInt32(at + p.fd, fd, true);
      this.#view.setInt16(at + p.events, events, true);
      this.#view.setInt16(at + p.revents, 0, true);
    };
    put(this.#wakeRead, c.POLLIN);
    for (const [fd, interest] of interests) {
      put(
        fd,
        (interest.readers.size > 0 ? c.POLLIN : 0) | (interest.writers.size > 0 ? c.POLLOUT : 0),
      );
    }
    this.#count = i;
    return lib.poll_wait(this.#fds, BigInt(i), timeout);
  }

  events(_count: number, report: (fd: number, read: boolean, write: boolean) => void): void {
    const { layout } = libc();
    const p = layout.pollfd;
    const c = layout.constants;
    const broken = c.POLLERR | c.POLLHUP | c.POLLNVAL;
    for (let i = 0; i < this.#count; i++) {
      const at = i * p.size;
      const revents = this.#view.getInt16(at + p.revents, true);
      if (revents === 0) continue;
      report(
        this.#view.getInt32(at + p.fd, true),
        (revents & (c.POLLIN | broken)) !== 0,
        (revents & (c.POLLOUT | broken)) !== 0,
      );
    }
  }

  wake(): void {
    libc().lib.write(this.#wakeWrite, this.#byte, 1n);
  }

  isWake(fd: number): boolean {
    return fd === this.#wakeRead;
  }

  drainWake(): void {
    while (Number(libc().lib.read(this.#wakeRead, this.#byte, 64n)) > 0) {
      // Emptied: the pipe is nonblocking.
    }
  }

  close(): void {
    libc().lib.close(this.#wakeRead);
    libc().lib.close(this.#wakeWrite);
  }
}

class Poller {
  readonly #interests = new Map<number, Interest>();
  #backend: Backend | null = null;
  #backendName: "epoll" | "poll" = Deno.build.os === "linux" ? "epoll" : "poll";
  #inFlight = false;
  #wakePending = false;
  #waiters = 0;
  #waits = 0;
  #wakeups = 0;
  #maxOutstanding = 0;
  spins = 0;
  spinMicroseconds = 0;
  maxWait = 10_000;

  get stats(): PollerStats {
    return {
      backend: this.#backendName,
      outstandingWaits: this.#inFlight ? 1 : 0,
      registeredFds: this.#interests.size,
      waiters: this.#waiters,
      waits: this.#waits,
      wakeups: this.#wakeups,
      spins: this.spins,
      maxOutstandingWaits: this.#maxOutstanding,
    };
  }

  setBackend(name: "epoll" | "poll"): void {
    if (name === this.#backendName) return;
    if (this.#inFlight || this.#interests.size > 0) {
      throw new TypeError("Cannot change the poller backend while operations wait");
    }
    this.#backendName = name;
    // Idle (checked above): nothing uses the old backend's fds any more.
    this.#backend?.close();
    this.#backend = null;
  }

  wait(fd: number, write: boolean, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const backend = this.#backend ??= this.#backendName === "epoll"
      ? new EpollBackend()
      : new PollBackend();
    let interest = this.#interests.get(fd);
    const fresh = interest === undefined;
    interest ??= { readers: new Set(), writers: new Set() };
    const wantRead = interest.readers.size > 0 || !write;
    const wantWrite = interest.writers.size > 0 || write;
    if (!backend.arm(fd, wantRead, wantWrite)) {
      // Not pollable (a regular file): always ready.
      return Promise.resolve();
    }
    if (fresh) this.#interests.set(fd, interest);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.#remove(waiter);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        fd,
        write,
        resolve,
        reject,
        cleanup: () => signal?.removeEventListener("abort", onAbort),
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      (write ? interest.writers : interest.readers).add(waiter);
      this.#waiters++;
      if (!backend.dynamic && this.#inFlight) this.#wake();
      this.#run();
    });
  }

  /** Rejects every wait on `fd` and forgets it; call before closing `fd`. */
  forget(fd: number, reason: () => unknown): void {
    const interest = this.#interests.get(fd);
    if (interest !== undefined) {
      for (const waiter of [...interest.readers, ...interest.writers]) {
        this.#remove(waiter);
        waiter.reject(reason());
      }
    }
    // Idle registrations stay in epoll between waits: drop this one before
    // the number can be reused.
    this.#backend?.forget(fd);
  }

  #remove(waiter: Waiter): void {
    const interest = this.#interests.get(waiter.fd);
    if (interest === undefined) return;
    const set = waiter.write ? interest.writers : interest.readers;
    if (!set.delete(waiter)) return;
    waiter.cleanup();
    this.#waiters--;
    this.#rearm(waiter.fd, interest);
    // Nobody left to wait for: end the outstanding call now, so that the
    // process can exit and no thread stays parked.
    if (this.#inFlight && (this.#interests.size === 0 || !this.#backend!.dynamic)) this.#wake();
  }

  #rearm(fd: number, interest: Interest): void {
    const backend = this.#backend!;
    if (interest.readers.size === 0 && interest.writers.size === 0) {
      this.#interests.delete(fd);
      backend.idle(fd, false);
    } else {
      backend.arm(fd, interest.readers.size > 0, interest.writers.size > 0);
    }
  }

  #wake(): void {
    if (this.#wakePending) return;
    this.#wakePending = true;
    this.#wakeups++;
    this.#backend!.wake();
  }

  async #run(): Promise<void> {
    if (this.#inFlight) return;
    this.#inFlight = true;
    this.#maxOutstanding = Math.max(this.#maxOutstanding, 1);
    const backend = this.#backend!;
    try {
      while (this.#interests.size > 0) {
        this.#waits++;
        const count = await backend.wait(this.#interests, this.maxWait);
        if (count < 0) continue; // EINTR; errno is not readable across threads.
        backend.events(count, (fd, read, write) => {
          if (backend.isWake(fd)) {
            backend.drainWake();
            this.#wakePending = false;
            return;
          }
          const interest = this.#interests.get(fd);
          if (interest === undefined) return;
          const ready: Waiter[] = [];
          if (read) ready.push(...interest.readers);
          if (write) ready.push(...interest.writers);
          for (const waiter of ready) {
            (waiter.write ? interest.writers : interest.readers).delete(waiter);
            waiter.cleanup();
            this.#waiters--;
            waiter.resolve();
          }
          if (this.#interests.get(fd) === interest) {
            if (interest.readers.size === 0 && interest.writers.size === 0) {
              this.#interests.delete(fd);
              backend.idle(fd, true);
            } else if (backend.dynamic) {
              backend.arm(fd, interest.readers.size > 0, interest.writers.size > 0);
            }
          }
        });
      }
    } finally {
      this.#inFlight = false;
      if (this.#wakePending) {
        backend.drainWake();
        this.#wakePending = false;
      }
    }
  }
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
 * Whether a poller exists (without creating one).
 *
 * @returns The poller, or `undefined` before first use.
 */
export function existingPoller(): Poller | undefined {
  return shared;
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
  try {
    const n = typeof fd === "number" ? checkFdNumber(fd, "fd") : checkFdNumber(fd?.fd, "fd");
    return poller().wait(n, false, options.signal);
  } catch (error) {
    return Promise.reject(error);
  }
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
  try {
    const n = typeof fd === "number" ? checkFdNumber(fd, "fd") : checkFdNumber(fd?.fd, "fd");
    return poller().wait(n, true, options.signal);
  } catch (error) {
    return Promise.reject(error);
  }
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
  const p = poller();
  if (options.spinMicroseconds !== undefined) {
    const spin = options.spinMicroseconds;
    if (!Number.isFinite(spin) || spin < 0 || spin > 1_000_000) {
      throw new RangeError(
        `Option "spinMicroseconds" must be from 0 to 1000000, received ${spin}`,
      );
    }
    p.spinMicroseconds = spin;
  }
  if (options.maxWaitMilliseconds !== undefined) {
    const wait = options.maxWaitMilliseconds;
    if (!Number.isInteger(wait) || wait < 1 || wait > 3_600_000) {
      throw new RangeError(
        `Option "maxWaitMilliseconds" must be an integer from 1 to 3600000, received ${wait}`,
      );
    }
    p.maxWait = wait;
  }
  if (options.backend !== undefined) {
    if (options.backend !== "epoll" && options.backend !== "poll") {
      throw new TypeError(
        `Option "backend" must be "epoll" or "poll", received "${String(options.backend)}"`,
      );
    }
    if (options.backend === "epoll" && Deno.build.os !== "linux") {
      throw new Deno.errors.NotSupported("epoll exists only on Linux");
    }
    p.setBackend(options.backend);
  }
}
