/**
 * The order and the state of the sends on one socket: async sends go out
 * in call order, a send that has to wait holds its own copies of its bytes
 * and fds from the moment of the call, a stream left with half a message
 * by an aborted send is broken for every later send, and a synchronous
 * send refuses to jump the queue.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { closeFd, dupFd } from "../core/fd_ops.ts";
import { type Outgoing, ownBytes, sendStep } from "../core/transfer.ts";
import { sendAsync } from "./drivers.ts";
import type { FdHandle } from "./handle.ts";

function brokenError(): Error {
  return new Deno.errors.BrokenPipe(
    "Cannot send: an aborted send left a partial message on this stream socket",
  );
}

function busyError(): Error {
  return new Deno.errors.Busy(
    "Cannot send synchronously while async sends are pending on this socket: await them first",
  );
}

/** Duplicates every fd of `out` (close-on-exec); closes what it made on failure. */
function holdFds(out: Outgoing): number[] | null {
  if (out.sent > 0 || out.fds.length === 0) return null;
  const copies: number[] = [];
  try {
    for (const fd of out.fds) copies.push(dupFd(fd));
  } catch (error) {
    for (const copy of copies) libc().lib.close(copy);
    throw error;
  }
  out.fds = copies;
  return copies;
}

/** The send queue of one socket; see the module doc. */
export class SendQueue {
  #tail: Promise<void> | null = null;
  #pending = 0;
  #broken = false;

  /** Whether an async send is still pending. */
  get busy(): boolean {
    return this.#pending > 0;
  }

  /**
   * Throws unless a synchronous send may go out now.
   *
   * @throws {Deno.errors.BrokenPipe} After an aborted partial stream send.
   * @throws {Deno.errors.Busy} While async sends are pending.
   */
  checkSync(): void {
    if (this.#broken) throw brokenError();
    if (this.#pending > 0) throw busyError();
  }

  /**
   * Sends `out` in order: at once when nothing is queued and the socket
   * takes it, otherwise after the sends before it, holding its own copies
   * of the bytes and fds from now on.
   *
   * @param handle The socket.
   * @param out The message (an own record, from `startSend(..., true)`).
   * @param signal Cancels the send while it waits.
   * @returns The number of bytes sent.
   */
  send(handle: FdHandle, out: Outgoing, signal: AbortSignal | undefined): Promise<number> {
    if (this.#broken) return Promise.reject(brokenError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#pending === 0) {
      if (sendStep(handle.fd, out, libc().layout.constants.MSG_DONTWAIT) && out.done) {
        return Promise.resolve(out.sent);
      }
    }
    ownBytes(out);
    const copies = holdFds(out);
    const result = Promise.withResolvers<number>();
    let state: "queued" | "running" | "cancelled" = "queued";
    const onAbort = () => {
      if (state !== "queued") return;
      state = "cancelled";
      result.reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const job = async (): Promise<void> => {
      signal?.removeEventListener("abort", onAbort);
      try {
        if (state === "cancelled") return;
        state = "running";
        if (this.#broken) throw brokenError();
        result.resolve(await sendAsync(handle, out, signal));
      } catch (error) {
        // A stream message that is partly out cannot be taken back.
        if (out.type === "stream" && out.sent > 0 && !out.done) this.#broken = true;
        result.reject(error);
      } finally {
        if (copies !== null) { for (const copy of copies) closeQuietly(copy); }
        this.#pending--;
      }
    };
    this.#pending++;
    const tail: Promise<void> = this.#tail === null ? job() : this.#tail.then(job);
    this.#tail = tail;
    void tail.then(() => {
      if (this.#tail === tail) this.#tail = null;
    });
    return result.promise;
  }
}

function closeQuietly(fd: number): void {
  try {
    closeFd(fd);
  } catch {
    // The copy was ours; EBADF cannot happen.
  }
}
