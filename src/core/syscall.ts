/**
 * The one way the library makes a system call: `EINTR` is retried, `EAGAIN`
 * becomes the single {@linkcode WOULD_BLOCK} value, and any other errno
 * becomes an {@linkcode ErrnoError}. Also the synchronous readiness wait
 * that `...Sync` methods fall back to on descriptors in nonblocking mode.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { errnoError } from "./errors.ts";

/** What a call returns instead of blocking (`EAGAIN`/`EWOULDBLOCK`). */
export const WOULD_BLOCK: unique symbol = Symbol("would block");

/** The type of {@linkcode WOULD_BLOCK}. */
export type WouldBlock = typeof WOULD_BLOCK;

/** What {@linkcode failure} returns when the call should be made again (`EINTR`). */
export const RETRY: unique symbol = Symbol("retry");

/**
 * Classifies the errno just left by a call that returned -1. Call it in
 * the statement right after the FFI call, before anything can touch errno.
 * Hot loops use it directly; other code uses {@linkcode syscall}.
 *
 * @param name The libc function, for the error.
 * @param path The path involved, if any.
 * @returns {@linkcode RETRY} for `EINTR`, {@linkcode WOULD_BLOCK} for `EAGAIN`.
 * @throws {ErrnoError} For every other errno.
 */
export function failure(name: string, path?: string): typeof RETRY | WouldBlock {
  const { layout, errno } = libc();
  const e = errno[0]!;
  if (e === layout.errno.EINTR) return RETRY;
  if (e === layout.errno.EAGAIN) return WOULD_BLOCK;
  throw errnoError(e, name, path);
}

/**
 * Makes a call that returns a non-negative number on success and -1 with
 * errno on failure.
 *
 * @param call The FFI call.
 * @param name The libc function, for the error.
 * @param path The path involved, if any.
 * @returns The result, or {@linkcode WOULD_BLOCK}.
 */
export function syscall(call: () => number, name: string, path?: string): number | WouldBlock {
  for (;;) {
    const rc = call();
    if (rc >= 0) return rc;
    const next = failure(name, path);
    if (next === WOULD_BLOCK) return next;
  }
}

/**
 * Makes a call that returns 0 on success (`EINTR` retried); throws otherwise.
 *
 * @param call The FFI call.
 * @param name The libc function, for the error.
 * @param path The path involved, if any.
 */
export function check(call: () => number, name: string, path?: string): void {
  for (;;) {
    if (call() >= 0) return;
    const { layout, errno } = libc();
    const e = errno[0]!;
    if (e !== layout.errno.EINTR) throw errnoError(e, name, path);
  }
}

// Off-heap, so that the address handed to poll() stays put.
const pollBuffer = new Uint8Array(new ArrayBuffer(8));
const pollView = new DataView(pollBuffer.buffer);

/**
 * Blocks the calling thread until `fd` is ready for `events` (poll flags).
 *
 * @param fd The descriptor.
 * @param events `POLLIN` and/or `POLLOUT`.
 */
export function waitSync(fd: number, events: number): void {
  pollOnce(fd, events, -1);
}

/**
 * Polls `fd` once without waiting.
 *
 * @param fd The descriptor.
 * @param events `POLLIN` and/or `POLLOUT`.
 * @returns Whether the fd is ready for one of `events`, at end of file or
 * in error (so that the next call returns at once).
 */
export function readyNow(fd: number, events: number): boolean {
  return pollOnce(fd, events, 0) !== 0;
}

function pollOnce(fd: number, events: number, timeout: number): number {
  const { lib, layout, errno } = libc();
  const p = layout.pollfd;
  for (;;) {
    pollView.setInt32(p.fd, fd, true);
    pollView.setInt16(p.events, events, true);
    pollView.setInt16(p.revents, 0, true);
    if (lib.poll(pollBuffer, 1n, timeout) >= 0) {
      const revents = pollView.getInt16(p.revents, true);
      if (revents & layout.constants.POLLNVAL) {
        throw errnoError(layout.errno.EBADF!, "poll");
      }
      return revents;
    }
    if (errno[0] !== layout.errno.EINTR) throw errnoError(errno[0]!, "poll");
  }
}
