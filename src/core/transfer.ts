/**
 * Sending and receiving one message with fds on a socket fd number: the
 * argument checks, the stream rules and the single `sendmsg`/`recvmsg`
 * steps that the sync and async forms share.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { checkFdNumber, describeValue, type FdLike, fdNumberOf } from "./checks.ts";
import {
  copyBytes,
  getSendKit,
  type MessageKit,
  RECEIVE_FAILED,
  type Received,
  type ReceivedInto,
  receiveInto,
  receiveMessage,
  writeRights,
} from "./message.ts";
import { failure, waitSync, WOULD_BLOCK, type WouldBlock } from "./syscall.ts";
import { encodeAddress, type UnixAddress } from "./address.ts";
import type { SocketType } from "./socket_calls.ts";

/** Default receive capacity in bytes. */
const DEFAULT_MAX_BYTES = 64 * 1024;

const encoder = new TextEncoder();
const NO_FDS: readonly number[] = Object.freeze([]);

// The numbers of the message being collected. Reused while no collection
// is under way; a collection started from inside another one (an `fd`
// getter or an iterator that sends) gets an array of its own.
const scratch: number[] = [];
let scratchNumbers: Int32Array | undefined;
let scratchInUse = false;

function tooMany(max: number, count: string): RangeError {
  return new RangeError(
    `Option "fds" has ${count} fds, but the kernel accepts at most ${max} in one message (SCM_MAX_FD); split them over several messages`,
  );
}

/**
 * Validates the `fds` option and returns their numbers. Reentrant, and
 * bounded: an iterator is read for at most one item more than a message
 * holds.
 *
 * @param fds The fds to send.
 * @returns The numbers; use them before any other code runs (the array
 * may be reused by the next call).
 */
export function collectFds(fds: Iterable<FdLike> | undefined): readonly number[] {
  if (fds === undefined) return NO_FDS;
  const max = libc().layout.maxFdsPerMessage;
  const own = !scratchInUse;
  let numbers: Int32Array;
  let count: number;
  if (own) scratchInUse = true;
  try {
    numbers = own ? (scratchNumbers ??= new Int32Array(max)) : new Int32Array(max);
    count = gatherFds(fds, numbers, max);
  } finally {
    if (own) scratchInUse = false;
  }
  if (count === 0) return NO_FDS;
  const out = own ? scratch : [];
  for (let i = 0; i < count; i++) out[i] = numbers[i]!;
  if (out.length !== count) out.length = count;
  return out;
}

function fdAt(item: FdLike, i: number): number {
  // The common cases without building the argument name: an open fd
  // object, or a number (`(n | 0) === n` is an integer in int32 range).
  if (typeof item === "object" && item !== null && (item as { closed?: unknown }).closed !== true) {
    const fd = (item as { fd?: unknown }).fd;
    if (typeof fd === "number" && (fd | 0) === fd && fd >= 0) return fd;
  } else if (typeof item === "number" && (item | 0) === item && item >= 0) {
    return item;
  }
  return fdNumberOf(item, `fds[${i}]`);
}

/** What the synchronous send reads on every call, looked up once. */
interface SendState {
  readonly kit: MessageKit;
  readonly lib: ReturnType<typeof libc>["lib"];
  readonly max: number;
  readonly noSignal: number;
  readonly pollOut: number;
  /**
   * The numbers of the send under way, from the collection to the sendmsg.
   * A send started from inside another one (an `fd` getter or an iterator
   * that sends) gets an array of its own.
   */
  readonly numbers: Int32Array;
}

let sendState: SendState | undefined;
let sendInProgress = false;

function initSendState(): SendState {
  const { lib, layout } = libc();
  return sendState = {
    kit: getSendKit(),
    lib,
    max: layout.maxFdsPerMessage,
    noSignal: layout.constants.MSG_NOSIGNAL,
    pollOut: layout.constants.POLLOUT,
    numbers: new Int32Array(layout.maxFdsPerMessage),
  };
}

/**
 * Validates the `fds` option into `into` (which has room for `max`).
 *
 * @returns How many fds.
 */
function gatherFds(fds: Iterable<FdLike>, into: Int32Array, max: number): number {
  if (Array.isArray(fds)) {
    const n = fds.length;
    if (n > max) throw tooMany(max, String(n));
    for (let i = 0; i < n; i++) into[i] = fdAt(fds[i], i);
    return n;
  }
  if (
    fds === null || typeof fds !== "object" ||
    typeof (fds as Iterable<FdLike>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(
      `Option "fds" must be an array of fds, received ${describeValue(fds)}`,
    );
  }
  if (fds instanceof Int32Array) {
    // Raw numbers, as recvIntoSync() delivers them.
    const n = fds.length;
    if (n > max) throw tooMany(max, String(n));
    for (let i = 0; i < n; i++) {
      const fd = fds[i]!;
      into[i] = fd >= 0 ? fd : checkFdNumber(fd, `fds[${i}]`);
    }
    return n;
  }
  let i = 0;
  for (const item of fds) {
    if (i === max) throw tooMany(max, `more than ${max}`);
    into[i] = fdAt(item, i);
    i++;
  }
  return i;
}

/**
 * Sends one message on a socket, blocking until done (waiting with `poll`
 * on a nonblocking socket): the synchronous send. The same rules as
 * the async send's {@linkcode startSend} and {@linkcode sendStep}, without
 * the record and the array they use: the fd numbers go from the caller's list to the
 * control buffer through one reused `Int32Array`.
 *
 * On a stream, a send that the kernel cuts short is continued until every
 * byte is out; the fds travel with the first chunk. On seqpacket and dgram
 * sockets the message is sent whole or not at all.
 *
 * @param fd The socket.
 * @param type The socket type.
 * @param data Bytes, or a string sent as UTF-8.
 * @param fds The fds to send (the `fds` option, unchecked).
 * @param address The destination of a datagram, or `null`.
 * @returns The number of bytes sent.
 */
export function sendMessageSync(
  fd: number,
  type: SocketType,
  data: Uint8Array | string,
  fds: Iterable<FdLike> | undefined,
  address: UnixAddress | null,
): number {
  const state = sendState ?? initSendState();
  if (sendInProgress) {
    const numbers = new Int32Array(state.max);
    const count = fds === undefined ? 0 : gatherFds(fds, numbers, state.max);
    return sendGathered(state, fd, type, data, numbers, count, address);
  }
  sendInProgress = true;
  try {
    const count = fds === undefined ? 0 : gatherFds(fds, state.numbers, state.max);
    return sendGathered(state, fd, type, data, state.numbers, count, address);
  } finally {
    sendInProgress = false;
  }
}

function sendGathered(
  state: SendState,
  fd: number,
  type: SocketType,
  data: Uint8Array | string,
  numbers: Int32Array,
  count: number,
  address: UnixAddress | null,
): number {
  // The common case in a few lines: bytes that fit the kit, no address,
  // and a sendmsg that takes them all. Everything else is sendChunks().
  if (address === null && data instanceof Uint8Array) {
    const kit = state.kit;
    const length = data.byteLength;
    const target = kit.data;
    if (length > 0 && length <= target.byteLength) {
      copyBytes(target, data, 0, length);
      kit.setIov(0, length);
      writeRights(kit, numbers, count);
      kit.setNameLength(0);
      const n = state.lib.sendmsg(fd, kit.header, state.noSignal);
      if (n === length || (n >= 0 && type !== "stream")) return n;
      // A short stream send: the rest follows, without the fds.
      if (n >= 0) return sendChunks(state, fd, type, data, numbers, n > 0 ? 0 : count, null, n);
      // EINTR or EAGAIN: try again below (with the fds); anything else throws.
      if (failure("sendmsg") === WOULD_BLOCK) waitSync(fd, state.pollOut);
    }
  }
  return sendChunks(state, fd, type, data, numbers, count, address, 0);
}

/**
 * The general synchronous send: strings, large or empty data, addresses,
 * short sends on a stream and sockets that would block.
 *
 * @param sent Bytes of a stream message already sent (with its fds).
 */
function sendChunks(
  state: SendState,
  fd: number,
  type: SocketType,
  data: Uint8Array | string,
  numbers: Int32Array,
  count: number,
  address: UnixAddress | null,
  sent: number,
): number {
  const kit = state.kit;
  let bytes: Uint8Array | null = null;
  let length: number;
  if (data instanceof Uint8Array) {
    bytes = data;
    length = data.byteLength;
  } else if (typeof data === "string") {
    // Encoded below, straight into the kit when it fits.
    length = data.length * 3;
    if (length > kit.data.byteLength) {
      bytes = encoder.encode(data);
      length = bytes.byteLength;
    }
  } else {
    throw new TypeError(
      `Argument "data" must be a Uint8Array or a string, received ${describeValue(data)}`,
    );
  }
  // The address is checked (and written into the kit) before the data is.
  const nameLength = address === null ? 0 : encodeAddress(address, kit.name(), "address");
  if (bytes === null) length = encoder.encodeInto(data as string, kit.data).written;
  if (length > MAX_MESSAGE_BYTES) {
    throw new RangeError(
      `Argument "data" is ${length} bytes, more than the ${MAX_MESSAGE_BYTES} one call can send`,
    );
  }
  const stream = type === "stream";
  if (stream && length === 0) {
    if (count > 0) throw emptyStreamWithFds();
    // An empty stream write sends nothing and needs no call.
    return 0;
  }
  const first = sent;
  for (;;) {
    // One sendmsg: the whole message on seqpacket and dgram sockets, the
    // next chunk on a stream, with the fds on the first chunk only.
    if (bytes === null) {
      kit.setIov(sent, length - sent);
    } else {
      let chunk = length - sent;
      if (!stream) kit.ensureData(chunk);
      else if (chunk > kit.data.byteLength) chunk = kit.data.byteLength;
      copyBytes(kit.data, bytes, sent, chunk);
      kit.setIov(0, chunk);
    }
    if (sent === first) writeRights(kit, numbers, count);
    else kit.setControlLength(0);
    kit.setNameLength(nameLength);
    const n = state.lib.sendmsg(fd, kit.header, state.noSignal);
    if (n >= 0) {
      if (!stream) return n;
      sent += n;
      if (sent >= length) return sent;
    } else if (failure("sendmsg") === WOULD_BLOCK) {
      waitSync(fd, state.pollOut);
    }
  }
}

function emptyStreamWithFds(): TypeError {
  return new TypeError(
    `Argument "data" must not be empty when sending fds on a stream socket: the kernel drops fds sent with no data byte`,
  );
}

/**
 * Turns the `data` argument into bytes.
 *
 * @param data Bytes or a string (sent as UTF-8).
 * @returns The bytes.
 */
function dataBytes(data: Uint8Array | string): Uint8Array {
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
  /** The bytes. */
  bytes: Uint8Array;
  /** Whether `bytes` belongs to the message (encoded or copied), not to the caller. */
  ownsBytes: boolean;
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
 * Checks a message and prepares it for {@linkcode sendStep}: the record of
 * an async send, which may outlive the call (a string gets bytes of its
 * own). Synchronous sends go through {@linkcode sendMessageSync}.
 *
 * @param type The socket type.
 * @param data The bytes or text.
 * @param fds The fds (validated by {@linkcode collectFds}).
 * @param address The destination of a datagram, or `null`.
 * @returns The outgoing message.
 */
export function startSend(
  type: SocketType,
  data: Uint8Array | string,
  fds: readonly number[],
  address: UnixAddress | null,
): Outgoing {
  const ownsBytes = typeof data === "string";
  const bytes = dataBytes(data);
  const length = bytes.byteLength;
  if (length > MAX_MESSAGE_BYTES) {
    throw new RangeError(
      `Argument "data" is ${length} bytes, more than the ${MAX_MESSAGE_BYTES} one call can send`,
    );
  }
  if (type === "stream" && length === 0 && fds.length > 0) throw emptyStreamWithFds();
  if (address !== null) encodeAddress(address, getSendKit().name(), "address");
  // An empty stream write sends nothing and needs no call.
  const done = type === "stream" && length === 0;
  return { type, bytes, ownsBytes, length, fds, address, sent: 0, done };
}

/**
 * Makes the message independent of the caller: its own copy of the bytes
 * (a resizable buffer shrunk later, or a reused one, cannot change what is
 * sent). Called before a send waits.
 *
 * @param out The message.
 */
export function ownBytes(out: Outgoing): void {
  if (out.ownsBytes) return;
  out.bytes = out.bytes.slice(0, out.length);
  out.ownsBytes = true;
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
  if (out.type !== "stream") {
    chunk = out.length;
    kit.ensureData(chunk);
    copyBytes(kit.data, out.bytes, 0, chunk);
  } else {
    chunk = Math.min(out.length - out.sent, kit.data.byteLength);
    copyBytes(kit.data, out.bytes, out.sent, chunk);
  }
  kit.setIov(0, chunk);
  if (out.sent === 0) writeRights(kit, out.fds, out.fds.length);
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
    if (failure("sendmsg") === WOULD_BLOCK) return false;
  }
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
   * `ControlTruncatedError` is thrown (carrying the data).
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
 * @returns `[maxBytes, maxFds]` (a shared frozen pair when `options` is
 * `undefined`).
 */
export function receiveLimits(
  options: ReceiveOptions | undefined,
  type: SocketType,
): readonly [number, number] {
  if (options === undefined) {
    return defaultLimits ??= Object.freeze(
      [DEFAULT_MAX_BYTES, libc().layout.maxFdsPerMessage] as const,
    );
  }
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Argument "options" must be an object, received ${describeValue(options)}`,
    );
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxFds = options.maxFds ?? libc().layout.maxFdsPerMessage;
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

// The limits without options, the same for every socket type.
let defaultLimits: readonly [number, number] | undefined;

/**
 * Makes one `recvmsg` call (`EINTR` retried).
 *
 * @param fd The socket.
 * @param type The socket type.
 * @param maxBytes Data capacity.
 * @param maxFds Most fds accepted.
 * @param wantAddress Whether to decode the sender's address.
 * @param flags Extra flags (`MSG_DONTWAIT` for async receives).
 * @param adopt Wraps each received fd number.
 * @returns The message, `null` at end of stream, or {@linkcode WOULD_BLOCK}.
 */
export function recvStep<F>(
  fd: number,
  type: SocketType,
  maxBytes: number,
  maxFds: number,
  wantAddress: boolean,
  flags: number,
  adopt: (fd: number) => F,
): Received<F> | null | WouldBlock {
  const all = (recvState ?? initRecvState()).cloexec | flags;
  const endOnEmpty = type !== "dgram";
  for (;;) {
    const message = receiveMessage(fd, maxBytes, maxFds, wantAddress, adopt, endOnEmpty, all);
    if (message !== RECEIVE_FAILED) return message;
    if (failure("recvmsg") === WOULD_BLOCK) return WOULD_BLOCK;
  }
}

/**
 * Receives one message, blocking until one is there (waiting with `poll`
 * on a nonblocking socket).
 *
 * @param fd The socket.
 * @param type The socket type.
 * @param maxBytes Data capacity.
 * @param maxFds Most fds accepted.
 * @param wantAddress Whether to decode the sender's address.
 * @param adopt Wraps each received fd number.
 * @returns The message, or `null` at end of stream.
 */
export function recvBlocking<F>(
  fd: number,
  type: SocketType,
  maxBytes: number,
  maxFds: number,
  wantAddress: boolean,
  adopt: (fd: number) => F,
): Received<F> | null {
  for (;;) {
    const message = recvStep(fd, type, maxBytes, maxFds, wantAddress, 0, adopt);
    if (message !== WOULD_BLOCK) return message;
    waitSync(fd, (recvState ?? initRecvState()).pollIn);
  }
}

/**
 * Checks the arguments of a receive into the caller's buffers before
 * anything is received.
 *
 * @param buffer Where the data goes.
 * @param fds Where the fd numbers go.
 * @param result Where the counts go.
 * @param type The socket type.
 */
export function checkReceiveInto(
  buffer: Uint8Array,
  fds: Int32Array | null | undefined,
  result: ReceivedInto | undefined,
  type: SocketType,
): void {
  if (!(buffer instanceof Uint8Array)) {
    throw new TypeError(
      `Argument "buffer" must be a Uint8Array, received ${describeValue(buffer)}`,
    );
  }
  if (buffer.byteLength === 0) {
    checkUsable(buffer, "buffer");
    if (type === "stream") {
      throw new RangeError(
        `Argument "buffer" must not be empty on a stream socket: reading 0 bytes would look like end of stream`,
      );
    }
  }
  if (fds !== undefined && fds !== null) {
    if (!(fds instanceof Int32Array)) {
      throw new TypeError(
        `Argument "fds" must be an Int32Array, null or undefined, received ${describeValue(fds)}`,
      );
    }
    if (fds.length === 0) checkUsable(fds, "fds");
  }
  if (result !== undefined && (typeof result !== "object" || result === null)) {
    throw new TypeError(
      `Argument "result" must be an object, received ${describeValue(result)}`,
    );
  }
}

/**
 * Throws when a typed array of length 0 is so because its buffer was
 * detached (transferred) or shrunk below it, not because it is empty.
 */
function checkUsable(view: Uint8Array | Int32Array, name: string): void {
  try {
    // Validates the view: throws for a detached or out-of-bounds one.
    view.at(0);
  } catch {
    throw new TypeError(
      `Argument "${name}" cannot be used: its ArrayBuffer was detached (transferred) or resized below it`,
    );
  }
}

/** What the receives read on every call, looked up once. */
interface RecvState {
  readonly cloexec: number;
  readonly pollIn: number;
}

let recvState: RecvState | undefined;

function initRecvState(): RecvState {
  const { layout } = libc();
  return recvState = {
    cloexec: layout.constants.MSG_CMSG_CLOEXEC,
    pollIn: layout.constants.POLLIN,
  };
}

/**
 * Makes one `recvmsg` into the caller's buffers (`EINTR` retried). The
 * caller has checked the arguments with {@linkcode checkReceiveInto}, on
 * this turn of the event loop.
 *
 * @param fd The socket.
 * @param type The socket type.
 * @param buffer Where the data goes; its length is the capacity.
 * @param fds Where the fd numbers go, or `null` for none.
 * @param result Where the counts go.
 * @param flags Extra flags (`MSG_DONTWAIT` for async receives).
 * @returns `result`, `null` at end of stream, or {@linkcode WOULD_BLOCK}.
 */
export function recvIntoStep(
  fd: number,
  type: SocketType,
  buffer: Uint8Array,
  fds: Int32Array | null,
  result: ReceivedInto,
  flags: number,
): ReceivedInto | null | WouldBlock {
  const all = (recvState ?? initRecvState()).cloexec | flags;
  const endOnEmpty = type !== "dgram";
  for (;;) {
    const received = receiveInto(fd, buffer, fds, result, endOnEmpty, all);
    if (received !== RECEIVE_FAILED) return received;
    if (failure("recvmsg") === WOULD_BLOCK) return WOULD_BLOCK;
  }
}

/**
 * Receives one message into the caller's buffers, blocking until one is
 * there (waiting with `poll` on a nonblocking socket). The caller has
 * checked the arguments with {@linkcode checkReceiveInto}.
 *
 * @param fd The socket.
 * @param type The socket type.
 * @param buffer Where the data goes; its length is the capacity.
 * @param fds Where the fd numbers go, or `null` for none.
 * @param result Where the counts go.
 * @returns `result`, or `null` at end of stream.
 */
export function recvIntoBlocking(
  fd: number,
  type: SocketType,
  buffer: Uint8Array,
  fds: Int32Array | null,
  result: ReceivedInto,
): ReceivedInto | null {
  for (;;) {
    const received = recvIntoStep(fd, type, buffer, fds, result, 0);
    if (received !== WOULD_BLOCK) return received;
    waitSync(fd, (recvState ?? initRecvState()).pollIn);
  }
}
