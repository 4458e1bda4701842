/**
 * What an async operation holds while it waits: the resource itself (never
 * a bare fd number, which the kernel reuses at once after a close), kept
 * reachable so that the garbage-collection backstop cannot close it under
 * the operation.
 *
 * @module
 */

import { closedWhileWaiting } from "../core/errors.ts";
import { type Attempt, poller } from "./poller.ts";

/** The structural handle the drivers take: an fd owner that can say it was closed. */
export interface FdHandle {
  /** The fd number; throws once the owner is closed. */
  readonly fd: number;
  /** Whether the owner was closed (or released its fd). */
  readonly closed: boolean;
}

// Strong references to the owners of pending operations, with a count per
// owner: a FinalizationRegistry never fires for an object listed here.
const pending = new Map<FdHandle, number>();

/**
 * Waits in the shared poller until `handle`'s fd is ready, holding the
 * handle meanwhile, and checks afterwards that it is still open.
 *
 * @param handle The owner of the fd.
 * @param write Whether to wait for writability.
 * @param signal Cancels the wait.
 * @param attempt A reader's nonblocking call, made the moment the fd is
 * reported readable (see `Poller.wait`).
 * @throws {Deno.errors.BadResource} When the owner was closed meanwhile.
 */
export async function waitOn(
  handle: FdHandle,
  write: boolean,
  signal: AbortSignal | undefined,
  attempt?: Attempt,
): Promise<void> {
  if (handle.closed) throw closedWhileWaiting();
  pending.set(handle, (pending.get(handle) ?? 0) + 1);
  try {
    await poller().wait(
      handle.fd,
      write,
      signal,
      attempt === undefined ? undefined : () => {
        // Runs inside the poller's report: the owner may have been closed
        // since the wait began, and its number may belong to a new file.
        if (handle.closed) throw closedWhileWaiting();
        return attempt();
      },
    );
  } finally {
    const count = pending.get(handle)! - 1;
    if (count === 0) pending.delete(handle);
    else pending.set(handle, count);
  }
  if (handle.closed) throw closedWhileWaiting();
}
