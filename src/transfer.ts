/**
 * Sending and receiving one message with fds on a socket fd number: the
 * argument checks, the stream rules and the retry loops shared by
 * {@linkcode UnixSocket} and the IO::FDPass helpers.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { checkFdNumber, describeValue, throwErrno } from "./errors.ts";
import {
  getRecvKit,
  getSendKit,
  type MessageKit,
  type ParsedMessage,
  parseReceived,
  prepareReceive,
  writeRights,
} from "./message.ts";
import { retryKind, waitSync } from "./sys.ts";
import { encodeAddress, type UnixAddress } from "./address.ts";

/** Something that names an fd: a number, or an object with an `fd` (such as {@linkcode OwnedFd}). */
export type FdLike = number | { readonly fd: number };

/** The kinds of Unix socket. */
export type SocketType = "stream" | "seqpacket" | "dgram";

/** Default receive capacity in bytes. */
export const DEFAULT_MAX_BYTES = 64 * 1024;

const encoder = new TextEncoder();
const fdNumbers: number[] = [];

/**
 * Validates the `fds` option and returns their numbers in a shared array.
 *
 * @param fds The fds to send.
 * @returns The numbers (valid until the next call).
 */
export function collectFds(fds: Iterable<FdLike> | undefined): number[] {
  fdNumbers.length = 0;
  if (fds === undefined) return fdNumbers;
  if (fds === null || typeof (fds as Iterable<FdLike>)[Symbol.iterator] !== "function") {
    throw new TypeError(
      `Option "fds" must be an array of fds, received ${describeValue(fds)}`,
    );
  }
  const max = libc().layout.maxFdsPerMessage;
  let i = 0;
  for (const item of fds) {
    if (i === max) {
      // Count them all; a one-shot iterator (a generator) resumes past `item`.
      const oneShot = (fds[Symbol.iterator]() as unknown) === fds;
      const count = (oneShot ? i + 1 : 0) + [...fds].length;
      fdNumbers.length = 0;
      throw new RangeError(
        `Option "fds" has ${count} fds, but the kernel accepts at most ${max} in one message (SCM_MAX_FD); split them over several messages`,
      );
    }
    fdNumbers.push(fdNumberOf(item, `fds[${i}]`));
    i++;
  }
  return fdNumbers;
}

/**
 * The fd number of an {@linkcode FdLike}.
 *
 * @param item A number or an object with an `fd`.
 * @param name The argument name for errors.
 * @returns The number.
 */
export function fdNumberOf(item: FdLike, name: string): number {
  if (typeof item === "number") return checkFdNumber(item, name);
  if (typeof item === "object" && item !== null && "fd" in item) {
    if ((item as { closed?: unknown }).closed === true) {
      throw new TypeError(`Argument "${name}" is closed`);
    }
    return checkFdNumber(item.fd, name);
  }
  throw new TypeError(
    `Argument "${name}" must be an fd number or an object with an fd, received ${
      describeValue(item)
    }`,
  );
}

/**
 * Turns the `data` argument into bytes.
 *
 * @param data Bytes or a string (sent as UTF-8).
 * @returns The bytes.
 */
export function dataBytes(data: Uint8Array | string): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === "string") return encoder.encode(data);
  throw new TypeError(
    `Argument "data" must be a Uint8Array or a string, received ${describeValue(data)}`,
  );
}

/** A message being sent: its bytes, fds, destination and progress. */
export interface Outgoing {
  /** The socket type. */
  type: SocketType;
  /** The bytes, or `null` when they were encoded straight into the send kit. */
  bytes: Uint8Array | null;
  /** Total bytes. */
  length: number;
  /** The fd numbers, sent with the first chunk. */
  fds: readonly number[];
  /** The datagram destination, or `null`. */
  address: UnixAddress | null;
  /** Bytes sent so far. */
  sent: number;
  /** Whether the whole message is out. */
  done: boolean;
}

const MAX_MESSAGE_BYTES = 0x7fffffff;

/**
 * Checks a message and prepares it for {@linkcode sendStep}.
 *
 * @param type The socket type.
 * @param data The bytes or text.
 * @param fds The fds (validated by {@linkcode collectFds}).
 * @param address The destination of a datagram, or `null`.
 * @param keep `true` when the message outlives this call (async sends):
 * then a string is encoded into its own bytes, not into the shared kit.
 * @returns The outgoing message.
 */
export function startSend(
  type: SocketType,
  data: Uint8Array | string,
  fds: readonly number[],
  address: UnixAddress | null,
  keep: boolean,
): Outgoing {
  let bytes: Uint8Array | null;
  let length: number;
  if (!keep && typeof data === "string" && data.length * 3 <= getSendKit().data.byteLength) {
    // Encode straight into the kit: no intermediate allocation.
    length = encoder.encodeInto(data, getSendKit().data).written;
    bytes = null;
  } else {
    bytes = dataBytes(data);
    length = bytes.byteLength;
  }
  if (length > MAX_MESSAGE_BYTES) {
    throw new RangeError(
      `Argument "data" is ${length} bytes, more than the ${MAX_MESSAGE_BYTES} one call can send`,
    );
  }
  if (type === "stream" && length === 0 && fds.length > 0) {
    throw new TypeError(
      `Argument "data" must not be empty when sending fds on a stream socket: the kernel drops fds sent with no data byte`,
    );
  }
  // An empty stream write sends nothing and needs no call.
  const done = type === "stream" && length === 0;
  if (keep) return { type, bytes, length, fds, address, sent: 0, done };
  // A synchronous send finishes before anything else can start one: reuse
  // one record instead of allocating per message.
  const out = syncOutgoing;
  out.type = type;
  out.bytes = bytes;
  out.length = length;
  out.fds = fds;
  out.address = address;
  out.sent = 0;
  out.done = done;
  return out;
}

const syncOutgoing: Outgoing = {
  type: "stream",
  bytes: null,
  length: 0,
  fds: [],
  address: null,
  sent: 0,
  done: true,
};

/** Below this many bytes a plain loop copies faster than `set(subarray())`. */
const LOOP_COPY_MAX = 64;

function copyInto(target: Uint8Array, source: Uint8Array, start: number, count: number): void {
  if (count <= LOOP_COPY_MAX) {
    for (let i = 0; i < count; i++) target[i] = source[start + i]!;
  } else if (start === 0 && count === source.byteLength) {
    target.set(source);
  } else {
    target.set(source.subarray(start, start + count));
  }
}

/**
 * Makes one `sendmsg` call for the next part of `out`: the whole message on
 * seqpacket and dgram sockets, the next chunk on a stream (the fds go with
 * the first chunk only). `EINTR` is retried.
 *
 * @param fd The socket.
 * @param out The message; `sent` and `done` are updated.
 * @param flags Extra flags (`MSG_DONTWAIT` for async sends).
 * @returns `false` when the call would block (`EAGAIN`).
 */
export function sendStep(fd: number, out: Outgoing, flags: number): boolean {
  const { lib, layout } = libc();
  const kit = getSendKit();
  let chunk: number;
  if (out.bytes === null) {
    chunk = out.length - out.sent;
    kit.setIov(out.sent, chunk);
  } else if (out.type !== "stream") {
    chunk = out.length;
    kit.ensureData(chunk);
    copyInto(kit.data, out.bytes, 0, chunk);
    kit.setIov(0, chunk);
  } else {
    chunk = Math.min(out.length - out.sent, kit.data.byteLength);
    copyInto(kit.data, out.bytes, out.sent, chunk);
    kit.setIov(0, chunk);
  }
  if (out.sent === 0) writeRights(kit, out.fds);
  else kit.setControlLength(0);
  kit.setNameLength(
    out.address === null ? 0 : encodeAddress(out.address, kit.name(), "address"),
  );
  for (;;) {
    const n = lib.sendmsg(fd, kit.header, layout.constants.MSG_NOSIGNAL | flags);
    if (n >= 0) {
      out.sent += n;
      out.done = out.type !== "stream" || out.sent >= out.length;
      if (out.type !== "stream") out.sent = n;
      return true;
    }
    const retry = retryKind();
    if (retry === "wait") return false;
    if (retry === "no") throwErrno("sendmsg");
  }
}

/**
 * Sends `data` with `fds` on a socket, blocking until done.
 *
 * On a stream, a send that the kernel cuts short is continued until every
 * byte is out; the fds travel with the first chunk. On seqpacket and dgram
 * sockets the message is sent whole or not at all.
 *
 * @param fd The socket.
 * @param type The socket type.
 * @param data The bytes or text.
 * @param fds The fds (validated by {@linkcode collectFds}).
 * @param address The destination of a datagram, or `null`.
 * @returns The number of bytes sent.
 */
export function sendOnFd(
  fd: number,
  type: SocketType,
  data: Uint8Array | string,
  fds: readonly number[],
  address: UnixAddress | null,
): number {
  const out = startSend(type, data, fds, address, false);
  while (!out.done) {
    if (!sendStep(fd, out, 0)) waitSync(fd, libc().layout.constants.POLLOUT);
  }
  return out.sent;
}

/** Options for receiving one message. */
export interface ReceiveOptions {
  /**
   * Most data bytes to take. On a stream, a message with fds is a read
   * barrier: bytes after it come with the next call.
   *
   * @default {65536}
   */
  maxBytes?: number;
  /**
   * Most fds to accept. When more arrive, all of them are closed and a
   * {@linkcode ControlTruncatedError} is thrown (carrying the data).
   *
   * @default {253}
   */
  maxFds?: number;
}

/**
 * Checks and fills in receive options.
 *
 * @param options The caller's options.
 * @param type The socket type.
 * @returns `[maxBytes, maxFds]`.
 */
export function receiveLimits(
  options: ReceiveOptions | undefined,
  type: SocketType,
): [number, number] {
  const maxBytes = options?.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxFds = options?.maxFds ?? libc().layout.maxFdsPerMessage;
  if (
    typeof maxBytes !== "number" || !Number.isInteger(maxBytes) ||
    maxBytes < (type === "stream" ? 1 : 0) || maxBytes > 0x7fffffff
  ) {
    throw new RangeError(
      `Option "maxBytes" must be an integer from ${type === "stream" ? 1 : 0} to 2147483647${
        type === "stream" ? " on a stream socket" : ""
      }, received ${String(maxBytes)}`,
    );
  }
  if (typeof maxFds !== "number" || !Number.isInteger(maxFds) || maxFds < 0) {
    throw new RangeError(
      `Option "maxFds" must be a non-negative integer, received ${String(maxFds)}`,
    );
  }
  return [maxBytes, maxFds];
}

/**
 * Receives one message, blocking until one is there.
 *
 * @param fd The socket.
 * @param type The socket type.
 * @param maxBytes Data capacity.
 * @param maxFds Most fds accepted.
 * @param wantAddress Whether to decode the sender's address.
 * @returns The message, or `null` at end of stream.
 */
export function recvOnFd(
  fd: number,
  type: SocketType,
  maxBytes: number,
  maxFds: number,
  wantAddress: boolean,
): ParsedMessage | null {
  for (;;) {
    const message = recvStep(fd, type, maxBytes, maxFds, wantAddress, 0);
    if (message !== WOULD_BLOCK) return message;
    waitSync(fd, libc().layout.constants.POLLIN);
  }
}

/** What {@linkcode recvStep} returns when the call would block. */
export const WOULD_BLOCK: unique symbol = Symbol("would block");

/**
 * Makes one `recvmsg` call (`EINTR` retried).
 *
 * @param fd The socket.
 * @param type The socket type.
 * @param maxBytes Data capacity.
 * @param maxFds Most fds accepted.
 * @param wantAddress Whether to decode the sender's address.
 * @param flags Extra flags (`MSG_DONTWAIT` for async receives).
 * @returns The message, `null` at end of stream, or {@linkcode WOULD_BLOCK}.
 */
export function recvStep(
  fd: number,
  type: SocketType,
  maxBytes: number,
  maxFds: number,
  wantAddress: boolean,
  flags: number,
): ParsedMessage | null | typeof WOULD_BLOCK {
  const { lib, layout } = libc();
  const kit = getRecvKit();
  for (;;) {
    prepareReceive(kit, maxBytes, wantAddress);
    const n = lib.recvmsg(fd, kit.header, layout.constants.MSG_CMSG_CLOEXEC | flags);
    if (n >= 0) return finishReceive(kit, n, type, maxFds, wantAddress);
    const retry = retryKind();
    if (retry === "wait") return WOULD_BLOCK;
    if (retry === "no") throwErrno("recvmsg");
  }
}

/**
 * Parses a successful `recvmsg` and applies the end-of-stream rule: 0 bytes
 * is the end on a stream, and 0 bytes with no fds on a seqpacket socket.
 *
 * @param kit The receive kit.
 * @param n The byte count.
 * @param type The socket type.
 * @param maxFds Most fds accepted.
 * @param wantAddress Whether to decode the sender's address.
 * @returns The message, or `null` at end of stream.
 */
export function finishReceive(
  kit: MessageKit,
  n: number,
  type: SocketType,
  maxFds: number,
  wantAddress: boolean,
): ParsedMessage | null {
  const message = parseReceived(kit, n, maxFds, wantAddress);
  if (n === 0 && type !== "dgram" && message.fds.length === 0) return null;
  return message;
}
