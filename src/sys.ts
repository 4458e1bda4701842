/**
 * Small checked wrappers shared by the core: C strings, `EINTR` retries and
 * the synchronous readiness wait that `...Sync` methods fall back to when a
 * descriptor is in nonblocking mode.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { throwErrno } from "./errors.ts";

const encoder = new TextEncoder();

/**
 * Encodes a string as a NUL-terminated C string.
 *
 * @param value The string.
 * @param name The argument name for errors.
 * @returns The bytes, ending in NUL.
 */
export function cString(value: string, name: string): Uint8Array {
  if (value.includes("\0")) {
    throw new TypeError(
      `Argument "${name}" must not contain a NUL character, received "${
        value.replaceAll("\0", "\\0")
      }"`,
    );
  }
  const bytes = new Uint8Array(value.length * 3 + 1);
  const { written } = encoder.encodeInto(value, bytes);
  return bytes.subarray(0, written + 1);
}

/**
 * Turns a `string | URL` path argument into a string.
 *
 * @param path The path.
 * @param name The argument name for errors.
 * @returns The path as a string.
 */
export function pathString(path: string | URL, name: string): string {
  if (path instanceof URL) {
    if (path.protocol !== "file:") {
      throw new TypeError(
        `Argument "${name}" must be a file: URL, received "${path.href}"`,
      );
    }
    return decodeURIComponent(path.pathname);
  }
  if (typeof path !== "string") {
    throw new TypeError(`Argument "${name}" must be a string or a URL`);
  }
  if (path === "") {
    throw new TypeError(`Argument "${name}" must not be empty`);
  }
  return path;
}

const pollBuffer = new Uint8Array(8);
const pollView = new DataView(pollBuffer.buffer);

/**
 * Blocks the calling thread until `fd` is ready for `events` (poll flags).
 * Used by the `...Sync` methods on descriptors in nonblocking mode.
 *
 * @param fd The descriptor.
 * @param events `POLLIN` and/or `POLLOUT`.
 */
export function waitSync(fd: number, events: number): void {
  pollOnce(fd, events, -1);
}

/**
 * One `poll` of a single fd (`EINTR` retried).
 *
 * @param fd The descriptor.
 * @param events `POLLIN` and/or `POLLOUT`.
 * @param timeout Milliseconds; -1 waits without bound, 0 does not wait.
 * @returns The `revents` bits.
 */
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
        throw new TypeError(`Cannot wait on fd ${fd}: it is not open`);
      }
      return revents;
    }
    if (errno[0] !== layout.errno.EINTR) throwErrno("poll");
  }
}

/**
 * Classifies the errno left by a failed call: `"now"` to call again at once
 * (`EINTR`), `"wait"` to wait for readiness first (`EAGAIN`), `"no"` to throw.
 *
 * @returns What to do next.
 */
export function retryKind(): "now" | "wait" | "no" {
  const { layout, errno } = libc();
  const e = errno[0];
  if (e === layout.errno.EINTR) return "now";
  if (e === layout.errno.EAGAIN) return "wait";
  return "no";
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
