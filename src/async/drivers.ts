/**
 * The async forms of the blocking operations. Each tries the nonblocking
 * call first (`MSG_DONTWAIT`, a nonblocking listener, or a zero-timeout
 * `poll` for plain fds); only when it would block does it spin for the
 * configured budget and then park in the shared poller.
 *
 * Every driver takes an {@linkcode FdHandle}, reads its fd number afresh
 * for each attempt, and re-checks after every wait that the handle is
 * still open: a closed resource rejects with `Deno.errors.BadResource`,
 * never acts on whatever new file got its number.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { closedWhileWaiting, errnoError } from "../core/errors.ts";
import { formatAddress, type UnixAddress } from "../core/address.ts";
import { readStep, setNonblocking, statusFlags, writeStep } from "../core/fd_ops.ts";
import type { Received, ReceivedInto } from "../core/message.ts";
import {
  acceptStep,
  connectResult,
  connectStep,
  createUnixSocket,
  type SocketType,
} from "../core/socket_calls.ts";
import { readyNow, WOULD_BLOCK, type WouldBlock } from "../core/syscall.ts";
import {
  checkReceiveInto,
  type Outgoing,
  recvIntoStep,
  recvStep,
  sendStep,
} from "../core/transfer.ts";
import { type FdHandle, waitOn } from "./handle.ts";
import { type Operation, poller } from "./poller.ts";

function checkOpen(handle: FdHandle, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
  if (handle.closed) throw closedWhileWaiting();
}

/** The longest pause between tries of a datagram send to a full receiver. */
const MAX_BACKOFF_MS = 32;

/**
 * Sends `out` without blocking the thread. The caller has made the message
 * independent of its own buffers and fds (see `SendQueue`).
 *
 * A datagram sent to an address whose receiver is full would block while
 * the sender itself polls writable (writability is the sender's buffer,
 * not the receiver's queue: net/unix/af_unix.c), so after a wait that did
 * not help such a send backs off on a timer instead of spinning.
 *
 * @param handle The socket.
 * @param out The message.
 * @param signal Cancels the wait.
 * @returns The number of bytes sent.
 */
export async function sendAsync(
  handle: FdHandle,
  out: Outgoing,
  signal: AbortSignal | undefined,
): Promise<number> {
  const operation = new Send(handle, out);
  let backoff = 0;
  for (;;) {
    checkOpen(handle, signal);
    if (operation.attempt() !== WOULD_BLOCK || poller().spin(operation) !== WOULD_BLOCK) {
      return out.sent;
    }
    if (out.address !== null && backoff > 0) {
      await delay(backoff, signal);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    } else {
      await waitOn(handle, true, signal);
      if (out.address !== null) backoff = 1;
    }
  }
}

/** The next `sendmsg` of a message; done once all of it is out. */
class Send implements Operation<true> {
  readonly #handle: FdHandle;
  readonly #out: Outgoing;
  readonly #flags = libc().layout.constants.MSG_DONTWAIT;

  constructor(handle: FdHandle, out: Outgoing) {
    this.#handle = handle;
    this.#out = out;
  }

  attempt(): true | WouldBlock {
    return sendStep(this.#handle.fd, this.#out, this.#flags) && this.#out.done ? true : WOULD_BLOCK;
  }
}

function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * One `recvmsg` for a waiting receive, made by the poller the moment the
 * socket is reported readable.
 */
class Receive<F> implements Operation<Received<F> | null> {
  readonly #handle: FdHandle;
  readonly #type: SocketType;
  readonly #maxBytes: number;
  readonly #maxFds: number;
  readonly #wantAddress: boolean;
  readonly #adopt: (fd: number) => F;

  constructor(
    handle: FdHandle,
    type: SocketType,
    maxBytes: number,
    maxFds: number,
    wantAddress: boolean,
    adopt: (fd: number) => F,
  ) {
    this.#handle = handle;
    this.#type = type;
    this.#maxBytes = maxBytes;
    this.#maxFds = maxFds;
    this.#wantAddress = wantAddress;
    this.#adopt = adopt;
  }

  attempt(): Received<F> | null | WouldBlock {
    // Runs inside the poller's report too: the owner may have been closed
    // since the wait began, and its number may belong to a new file.
    if (this.#handle.closed) throw closedWhileWaiting();
    return recvStep(
      this.#handle.fd,
      this.#type,
      this.#maxBytes,
      this.#maxFds,
      this.#wantAddress,
      libc().layout.constants.MSG_DONTWAIT,
      this.#adopt,
    );
  }
}

/**
 * Receives one message without blocking the thread: one `recvmsg` now,
 * and when that would block, the next one is made by the poller the moment
 * the socket is reported readable (the promise then settles with its
 * result, with no other hop).
 *
 * @param handle The socket.
 * @param type The socket type.
 * @param maxBytes Data capacity.
 * @param maxFds Most fds accepted.
 * @param wantAddress Whether to decode the sender's address.
 * @param signal Cancels the wait; nothing is consumed then.
 * @param adopt Wraps each received fd number.
 * @returns The message, or `null` at end of stream.
 */
export function recvAsync<F>(
  handle: FdHandle,
  type: SocketType,
  maxBytes: number,
  maxFds: number,
  wantAddress: boolean,
  signal: AbortSignal | undefined,
  adopt: (fd: number) => F,
): Promise<Received<F> | null> {
  const operation = new Receive(handle, type, maxBytes, maxFds, wantAddress, adopt);
  return attemptThenWait(handle, signal, operation, true);
}

/**
 * Settles with what `operation` gives: its call now, then (with `spin`)
 * the poller's bounded spin, then the poller's call each time the fd is
 * reported readable. Errors come as rejections.
 *
 * @param handle The fd's owner.
 * @param signal Cancels the wait; the operation is not called after it.
 * @param operation The nonblocking call.
 * @param spin Whether the spin budget applies.
 * @returns The operation's result.
 */
function attemptThenWait<T>(
  handle: FdHandle,
  signal: AbortSignal | undefined,
  operation: Operation<T>,
  spin: boolean,
): Promise<T> {
  try {
    checkOpen(handle, signal);
    const now = operation.attempt();
    if (now !== WOULD_BLOCK) return Promise.resolve(now);
    if (spin) {
      const spun = poller().spin(operation);
      if (spun !== WOULD_BLOCK) return Promise.resolve(spun);
    }
    return poller().wait(handle.fd, false, signal, operation);
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * One `recvmsg` into the caller's buffers for a waiting `recvInto()`, made
 * by the poller the moment the socket is reported readable. The caller's
 * buffers may have changed during the wait (a detached or shrunk
 * `ArrayBuffer`, a frozen result): they are checked again first, so that a
 * message is never taken into memory that cannot hold it.
 */
class ReceiveInto implements Operation<ReceivedInto | null> {
  readonly #handle: FdHandle;
  readonly #type: SocketType;
  readonly #buffer: Uint8Array;
  readonly #fds: Int32Array | null;
  readonly #result: ReceivedInto;

  constructor(
    handle: FdHandle,
    type: SocketType,
    buffer: Uint8Array,
    fds: Int32Array | null,
    result: ReceivedInto,
  ) {
    this.#handle = handle;
    this.#type = type;
    this.#buffer = buffer;
    this.#fds = fds;
    this.#result = result;
  }

  attempt(): ReceivedInto | null | WouldBlock {
    if (this.#handle.closed) throw closedWhileWaiting();
    checkReceiveInto(this.#buffer, this.#fds, this.#result, this.#type);
    return recvIntoStep(
      this.#handle.fd,
      this.#type,
      this.#buffer,
      this.#fds,
      this.#result,
      libc().layout.constants.MSG_DONTWAIT,
    );
  }
}

/**
 * Receives one message into the caller's buffers without blocking the
 * thread, as {@linkcode recvAsync} does with a message of its own. The
 * caller has checked the arguments.
 *
 * @param handle The socket.
 * @param type The socket type.
 * @param buffer Where the data goes.
 * @param fds Where the fd numbers go, or `null`.
 * @param result Where the counts go.
 * @param signal Cancels the wait; nothing is consumed then.
 * @returns `result`, or `null` at end of stream.
 */
export function recvIntoAsync(
  handle: FdHandle,
  type: SocketType,
  buffer: Uint8Array,
  fds: Int32Array | null,
  result: ReceivedInto,
  signal: AbortSignal | undefined,
): Promise<ReceivedInto | null> {
  return attemptThenWait(handle, signal, new ReceiveInto(handle, type, buffer, fds, result), true);
}

/** One `accept` for a waiting accept, made when the listener is reported readable. */
class Accept implements Operation<number> {
  readonly #handle: FdHandle;

  constructor(handle: FdHandle) {
    this.#handle = handle;
  }

  attempt(): number | WouldBlock {
    if (this.#handle.closed) throw closedWhileWaiting();
    return acceptStep(this.#handle.fd);
  }
}

/**
 * Accepts one connection without blocking the thread.
 *
 * @param handle The nonblocking listening socket.
 * @param signal Cancels the wait.
 * @returns The connection's fd number, owned by the caller.
 */
export function acceptAsync(
  handle: FdHandle,
  signal: AbortSignal | undefined,
): Promise<number> {
  // No spin: a connection is not an answer that comes within microseconds.
  return attemptThenWait(handle, signal, new Accept(handle), false);
}

/**
 * Connects a new Unix socket without blocking the thread.
 *
 * @param address The address.
 * @param type The socket type.
 * @param signal Cancels the wait; the socket is closed then.
 * @param adopt Wraps the new socket's fd number at once, so that it is owned while it waits.
 * @returns The connected socket's owner (blocking mode).
 */
export async function connectAsync<F extends FdHandle>(
  address: UnixAddress,
  type: SocketType,
  signal: AbortSignal | undefined,
  adopt: (fd: number) => F & { close(): void },
): Promise<F> {
  if (signal?.aborted) throw signal.reason;
  const handle = adopt(createUnixSocket(type, true));
  try {
    const state = connectStep(handle.fd, address);
    if (state === WOULD_BLOCK) {
      // Linux, the listener's backlog is full. Nothing pollable reports room
      // (a blocking connect sleeps on the listener's peer_wait,
      // net/unix/af_unix.c) and the unconnected socket polls writable at
      // once, so waiting could only spin or poll a timer: report it, as
      // libuv and Node do.
      throw errnoError(libc().layout.errno.EAGAIN!, "connect", formatAddress(address));
    }
    if (state === "in-progress") {
      // Writable once connected or failed.
      await waitOn(handle, true, signal);
      connectResult(handle.fd, address);
    }
    // Connections stay in blocking mode, like those from connectSync().
    setNonblocking(handle.fd, false);
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
 * @param handle The fd's owner.
 * @param buffer Where to put the bytes.
 * @param signal Cancels the wait.
 * @returns Bytes read, or `null` at end of file.
 */
export async function readAsync(
  handle: FdHandle,
  buffer: Uint8Array,
  signal: AbortSignal | undefined,
): Promise<number | null> {
  if (buffer.byteLength === 0) return 0;
  const POLLIN = libc().layout.constants.POLLIN;
  for (;;) {
    checkOpen(handle, signal);
    // The caller's buffer may have been detached or shrunk while we waited.
    if (buffer.byteLength === 0) return 0;
    const fd = handle.fd;
    if (readyNow(fd, POLLIN)) {
      const n = readStep(fd, buffer);
      if (n !== WOULD_BLOCK) return n === 0 ? null : n;
    }
    await waitOn(handle, false, signal);
  }
}

/**
 * Writes some of `data` to any fd without blocking the thread.
 *
 * @param handle The fd's owner.
 * @param data The bytes.
 * @param signal Cancels the wait.
 * @returns Bytes written (at least one).
 */
export async function writeAsync(
  handle: FdHandle,
  data: Uint8Array,
  signal: AbortSignal | undefined,
): Promise<number> {
  if (data.byteLength === 0) return 0;
  const c = libc().layout.constants;
  for (;;) {
    checkOpen(handle, signal);
    const fd = handle.fd;
    if (readyNow(fd, c.POLLOUT)) {
      // On a blocking fd, writability promises room for PIPE_BUF bytes
      // (POSIX), not for all of `data`: write no more, so the call cannot
      // block.
      const nonblocking = (statusFlags(fd) & c.O_NONBLOCK) !== 0;
      const n = writeStep(fd, nonblocking ? data : data.subarray(0, c.PIPE_BUF));
      if (n !== WOULD_BLOCK) return n;
    }
    await waitOn(handle, true, signal);
  }
}
