/**
 * What an async operation holds while it waits: the resource itself (never
 * a bare fd number, which the kernel reuses at once after a close), kept
 * reachable so that the garbage-collection backstop cannot close it under
 * the operation.
 *
 * @module
 */

import { closedWhileWaiting } from "../core/errors.ts";
import { poller } from "./poller.ts";

/** The structural handle the drivers take: an fd owner that can say it was closed. */
export interface FdHandle {
  /** The fd number; throws once the owner is closed. */
  readonly fd: number;
  /** Whether the owner was closed (or released its fd). */
  readonly closed: boolean;
}

/**
 * Waits in the shared poller until `handle`'s fd is ready, holding the
 * handle meanwhile (the poller's record of the wait refers to it, so a
 * `FinalizationRegistry` never fires for it), and checks afterwards that it
 * is still open.
 *
 * @param handle The owner of the fd.
 * @param write Whether to wait for writability.
 * @param signal Cancels the wait.
 * @throws {Deno.errors.BadResource} When the owner was closed meanwhile.
 */
export async function waitOn(
  handle: FdHandle,
  write: boolean,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (handle.closed) throw closedWhileWaiting();
  await poller().wait(handle.fd, write, signal, null, handle);
  if (handle.closed) throw closedWhileWaiting();
}
