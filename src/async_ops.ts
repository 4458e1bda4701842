/**
 * The async forms of the blocking operations. Each tries the nonblocking
 * call first (`MSG_DONTWAIT`, a nonblocking listener, or a zero-timeout
 * `poll` for plain fds); only when it would block does it spin for the
 * configured budget and then park in the shared poller.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { ErrnoError, throwErrno } from "./errors.ts";
import { formatAddress } from "./address.ts";
import type { OwnedFd } from "./fd.ts";
import type { ParsedMessage } from "./message.ts";
import { poller } from "./poller.ts";
import type { UnixAddress } from "./address.ts";
import { acceptStep, connectResult, connectStep, createSocketFd } from "./socket_fd.ts";
import { readyNow, retryKind } from "./sys.ts";
import { type Outgoing, recvStep, sendStep, type SocketType, WOULD_BLOCK } from "./transfer.ts";

/**
 * Retries `attempt` for up to the poller's spin budget.
 *
 * @param attempt Returns `true` once it succeeded.
 * @returns Whether it succeeded while spinning.
 */
function spin(attempt: () => boolean): boolean {
  const p = poller();
  const budget = p.spinMicroseconds;
  if (budget <= 0) return false;
  const deadline = performance.now() + budget / 1000;
  do {
    p.spins++;
    if (attempt()) return true;
  } while (performance.now() < deadline);
  return false;
}

/**
 * Sends `out` without blocking the thread.
 *
 * @param fd The socket.
 * @param out The prepared message.
 * @param signal Cancels the wait.
 * @returns The number of bytes sent.
 */
export async function sendAsync(
  fd: number,
  out: Outgoing,
  signal: AbortSignal | undefined,
): Promise<number> {
  if (signal?.aborted) throw signal.reason;
  const { layout, fcntl } = libc();
  const c = layout.constants;
  const dontWait = c.MSG_DONTWAIT;
  const attempt = () => sendStep(fd, out, dontWait) && out.done;
  let copies: number[] | null = null;
  try {
    while (!out.done) {
      if (attempt() || spin(attempt)) break;
      if (copies === null && out.sent === 0 && out.fds.length > 0) {
        // The message must wait: send duplicates, so that the caller closing
        // (and the process reusing) an fd number meanwhile cannot change
        // what is sent.
        copies = [];
        for (const original of out.fds) {
          const copy = fcntl(original, c.F_DUPFD_CLOEXEC, 0);
          if (copy < 0) throwErrno("fcntl");
          copies.push(copy);
        }
        out.fds = copies;
      }
      await poller().wait(fd, true, signal);
    }
  } finally {
    if (copies !== null) { for (const copy of copies) libc().lib.close(copy); }
  }
  return out.sent;
}

/**
 * Receives one message without blocking the thread.
 *
 * @param fd The socket.
 * @param type The socket type.
 * @param maxBytes Data capacity.
 * @param maxFds Most fds accepted.
 * @param wantAddress Whether to decode the sender's address.
 * @param signal Cancels the wait.
 * @returns The message, or `null` at end of stream.
 */
export async function recvAsync(
  fd: number,
  type: SocketType,
  maxBytes: number,
  maxFds: number,
  wantAddress: boolean,
  signal: AbortSignal | undefined,
): Promise<ParsedMessage | null> {
  const dontWait = libc().layout.constants.MSG_DONTWAIT;
  let message: ParsedMessage | null | typeof WOULD_BLOCK = WOULD_BLOCK;
  const attempt = () => {
    message = recvStep(fd, type, maxBytes, maxFds, wantAddress, dontWait);
    return message !== WOULD_BLOCK;
  };
  for (;;) {
    if (signal?.aborted) throw signal.reason;
    if (attempt() || spin(attempt)) return message as unknown as ParsedMessage | null;
    await poller().wait(fd, false, signal);
  }
}

/**
 * Accepts one connection without blocking the thread.
 *
 * @param fd The nonblocking listening socket.
 * @param signal Cancels the wait.
 * @returns The connection's fd.
 */
export async function acceptAsync(
  fd: number,
  signal: AbortSignal | undefined,
): Promise<OwnedFd> {
  for (;;) {
    if (signal?.aborted) throw signal.reason;
    const conn = acceptStep(fd);
    if (conn !== null) return conn;
    await poller().wait(fd, false, signal);
  }
}

/**
 * Connects a new socket without blocking the thread.
 *
 * @param address The address.
 * @param type The socket type.
 * @param signal Cancels the wait; the socket is closed then.
 * @returns The connected socket's fd (blocking mode).
 */
export async function connectAsync(
  address: UnixAddress,
  type: SocketType,
  signal: AbortSignal | undefined,
): Promise<OwnedFd> {
  if (signal?.aborted) throw signal.reason;
  const handle = createSocketFd(type, true);
  try {
    const state = connectStep(handle.fd, address);
    if (state === "retry") {
      // Linux, the listener's backlog is full. Nothing pollable reports room
      // (a blocking connect sleeps on the listener's peer_wait,
      // net/unix/af_unix.c) and the unconnected socket polls writable at
      // once, so waiting could only spin or poll a timer: report it, as
      // libuv and Node do.
      throw ErrnoError.from(libc().layout.errno.EAGAIN!, "connect", formatAddress(address));
    }
    if (state === "in-progress") {
      // Writable once connected or failed.
      await poller().wait(handle.fd, true, signal);
      connectResult(handle.fd, address);
    }
    handle.nonblocking = false;
    return handle;
  } catch (error) {
    handle.close();
    throw error;
  }
}

/**
 * Reads from any fd without blocking the thread: waits for readability in
 * the poller, then reads.
 *
 * @param fd The fd.
 * @param buffer Where to put the bytes.
 * @param signal Cancels the wait.
 * @returns Bytes read, or `null` at end of file.
 */
export async function readAsync(
  fd: number,
  buffer: Uint8Array,
  signal: AbortSignal | undefined,
): Promise<number | null> {
  if (buffer.byteLength === 0) return 0;
  const { lib, layout } = libc();
  const c = layout.constants;
  for (;;) {
    if (signal?.aborted) throw signal.reason;
    if (readyNow(fd, c.POLLIN)) {
      const n = Number(lib.read(fd, buffer, BigInt(buffer.byteLength)));
      if (n > 0) return n;
      if (n === 0) return null;
      const retry = retryKind();
      if (retry === "now") continue;
      if (retry === "no") throwErrno("read");
    }
    await poller().wait(fd, false, signal);
  }
}

/**
 * Writes some of `data` to any fd without blocking the thread.
 *
 * @param fd The fd.
 * @param data The bytes.
 * @param signal Cancels the wait.
 * @returns Bytes written (at least one).
 */
export async function writeAsync(
  fd: number,
  data: Uint8Array,
  signal: AbortSignal | undefined,
): Promise<number> {
  if (data.byteLength === 0) return 0;
  const { lib, layout, fcntl } = libc();
  const c = layout.constants;
  // On a blocking fd, writability promises room for PIPE_BUF bytes (POSIX),
  // not for all of `data`: write no more, so the call cannot block.
  const flags = fcntl(fd, c.F_GETFL, 0);
  if (flags < 0) throwErrno("fcntl");
  const chunk = (flags & c.O_NONBLOCK) !== 0 ? data : data.subarray(0, c.PIPE_BUF);
  for (;;) {
    if (signal?.aborted) throw signal.reason;
    if (readyNow(fd, c.POLLOUT)) {
      const n = Number(lib.write(fd, chunk, BigInt(chunk.byteLength)));
      if (n >= 0) return n;
      const retry = retryKind();
      if (retry === "now") continue;
      if (retry === "no") throwErrno("write");
    }
    await poller().wait(fd, true, signal);
  }
}
