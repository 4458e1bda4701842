/**
 * The contract between the poller and its backends (io_uring, epoll, poll): arm
 * interest in an fd, make the one waiting FFI call, report what fired.
 *
 * @module
 */

/**
 * The poller's backends: `"io_uring"` (Linux 5.7+, a doorbell that Deno's
 * event loop watches), `"epoll"` (Linux, one `epoll_wait` in Deno's
 * blocking pool) and `"poll"` (anywhere).
 *
 * @example The backend waits use here
 * ```ts
 * import { type BackendName, pollerStats, waitWritable } from "@fdpass/fdpass";
 *
 * await waitWritable(1); // the first wait starts the poller
 * const backend: BackendName = pollerStats().backend;
 * console.log(backend, pollerStats().fallbackReason ?? "");
 * ```
 */
export type BackendName = "io_uring" | "epoll" | "poll";

/** What the poller wants to know about one fd. */
export interface Interest {
  /** Whether someone waits to read. */
  readonly read: boolean;
  /** Whether someone waits to write. */
  readonly write: boolean;
}

/** Called for each fd a wait reported. */
export type Report = (fd: number, read: boolean, write: boolean, hangup: boolean) => void;

/** What a backend does for the poller. */
export interface Backend {
  /** Which backend this is. */
  readonly name: BackendName;
  /** Whether interest changed during a wait is seen without a wake. */
  readonly dynamic: boolean;
  /**
   * Whether registrations stay armed after a report and report edges
   * (epoll's `EPOLLET`): an fd is reported when it becomes ready, not for
   * as long as it is. The poller then arms an fd only when
   * {@linkcode Backend.matches} says its registration must change, or when
   * readiness must be looked at afresh (a wait without an operation, an
   * attempt budget spent). Otherwise a reported fd is disarmed (one-shot)
   * and every wait arms it.
   */
  readonly edge: boolean;
  /**
   * Arms `fd` for the given directions.
   *
   * @returns `false` when the fd cannot be polled (a regular file: always ready).
   * @throws {ErrnoError} When the fd is not open (`EBADF`) or cannot be armed.
   */
  arm(fd: number, read: boolean, write: boolean): boolean;
  /**
   * Whether `fd`'s edge registration is armed for exactly these
   * directions, so that it needs no call. Always `false` for one-shot
   * backends.
   */
  matches(fd: number, read: boolean, write: boolean): boolean;
  /**
   * Nobody waits on `fd` any more: stop reporting it, but keep it
   * registered so that the next wait costs one call (with edge
   * registrations: none, unless it was armed for writing). `fired` says
   * the backend just reported it (a one-shot registration is already
   * disarmed). Never throws.
   */
  idle(fd: number, fired: boolean): void;
  /**
   * `fd` was reported while nobody waits on it: an edge registration is
   * disarmed, so that an fd nobody reads costs at most one report. Never
   * throws.
   */
  unwanted(fd: number): void;
  /** Forgets `fd` entirely; called before the fd is closed. Never throws. */
  forget(fd: number): void;
  /**
   * The one wait: a waiting FFI call (`nonblocking: true`), or the io_uring
   * doorbell, bounded by `timeout` milliseconds. Resolves to the event
   * count, or -1 on failure.
   */
  wait(interests: ReadonlyMap<number, Interest>, timeout: number): Promise<number>;
  /** Calls `report` for each event of the last wait, skipping the wake fd. */
  events(count: number, report: Report): void;
  /** Makes the outstanding wait return. */
  wake(): void;
  /** Empties the wake fd once the wait has returned. */
  drainWake(): void;
  /**
   * After a wait failed: the errno of the same wait made again at once on
   * this thread, or 0 when it succeeds now (the failure was transient).
   */
  probe(interests: ReadonlyMap<number, Interest>): number;
  /** Closes the backend's own fds. */
  close(): void;
}
