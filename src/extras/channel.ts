/**
 * {@linkcode Channel}: framed messages with fds over a connected stream or
 * seqpacket {@linkcode UnixSocket}, in skalibs' `unixmessage` format (what
 * s6 speaks), with continuation frames for more than 253 fds and JSON values
 * whose fds come back as {@linkcode OwnedFd}s in the same places.
 *
 * The format (docs/channel.md has the details):
 * - A frame is a `u32be` payload length, a `u16be` fd count and the payload;
 *   the frame's fds ride on its first byte (skalibs
 *   `src/libunixonacid/unixmessage_sender_flush.c`). At most 253 fds and
 *   2^28 bytes per frame.
 * - Extension: a message with more than 253 fds is sent as continuation
 *   frames (fd count `0x8000 | 253`, empty payload) followed by a final
 *   ordinary frame with the payload and the remaining fds. The receiver
 *   appends the fds in order. s6 rejects the flag, and a channel made with
 *   `{ s6: true }` never sends it and refuses it on receipt.
 * - Values: the payload is JSON in which fds are `{"$fd": index}`,
 *   `Uint8Array`s are `{"$bytes": base64}`, and every key of the value's own
 *   objects that starts with `$` gets one more `$`.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { checkOptions, checkSignal, type FdLike } from "../core/checks.ts";
import { ControlTruncatedError } from "../core/errors.ts";
import type { Received } from "../core/message.ts";
import type { SocketType } from "../core/socket_calls.ts";
import { waitReadable } from "../async/wait.ts";
import type { OwnedFd } from "../owned_fd.ts";
import { UnixSocket } from "../unix_socket.ts";
import {
  decodeHeader,
  decodeValue,
  encodeFrames,
  encodeValue,
  HEADER_BYTES,
  MAX_FRAME_BYTES,
  MAX_FRAME_FDS,
  type OutgoingFrame,
} from "./channel_frame.ts";

/** Options for {@linkcode Channel}. */
export interface ChannelOptions {
  /**
   * Talk to s6 programs: refuse to send more than 253 fds in one message
   * (a `RangeError`) and treat a continuation frame from the peer as a
   * protocol error.
   *
   * @default {false}
   */
  s6?: boolean;
  /**
   * Fd numbers to keep free besides the 253 a frame can bring: before each
   * read that can carry fds, the channel checks that 253 + `fdReserve`
   * descriptors can still be opened below `RLIMIT_NOFILE`, and throws an
   * {@linkcode FdHeadroomError} (receiving nothing) when not.
   *
   * @default {8}
   */
  fdReserve?: number;
  /**
   * Whether to check the fd headroom before reads that can carry fds. Off,
   * a receiver at its limit learns it from `MSG_CTRUNC` afterwards (the
   * channel then breaks).
   *
   * @default {true}
   */
  checkFdHeadroom?: boolean;
}

/** Options for {@linkcode Channel.sendMessage}. */
export interface ChannelSendOptions {
  /**
   * Fds to send with the bytes; they stay open here. More than 253 are
   * split over continuation frames (refused on an s6 channel).
   *
   * @default {[]}
   */
  fds?: Iterable<FdLike>;
  /** Cancels an async send while it waits. */
  signal?: AbortSignal;
}

/** Options for async receives and value sends. */
export interface ChannelSignalOptions {
  /** Cancels the operation while it waits; a partly read frame is kept for the next call. */
  signal?: AbortSignal;
}

/** A message as bytes: the payload and the fds, owned by the caller. */
export interface ChannelMessage {
  /** The payload. */
  data: Uint8Array;
  /** The fds, in the order they were sent. */
  fds: OwnedFd[];
}

/**
 * A receive was refused because this process could not open the fds the
 * next frame may carry: fewer than 253 + `fdReserve` fd numbers are free
 * below the soft `RLIMIT_NOFILE`. Nothing was received: the fds stay queued
 * in the socket, and the channel is not broken. Close fds (or raise the
 * limit) and receive again.
 *
 * @example Tell the headroom error apart
 * ```ts
 * import { FdHeadroomError } from "@fdpass/fdpass";
 *
 * const error = new FdHeadroomError(261, 100, 1024);
 * console.log(error instanceof RangeError, error.needed, error.available);
 * ```
 */
export class FdHeadroomError extends RangeError {
  /** Fd numbers the receive needs free. */
  readonly needed: number;
  /** Fd numbers that were free (at most `needed`). */
  readonly available: number;
  /** The soft `RLIMIT_NOFILE`. */
  readonly limit: number;

  /**
   * Creates the error; the channel throws it.
   *
   * @param needed Fd numbers needed.
   * @param available Fd numbers free.
   * @param limit The soft limit.
   */
  constructor(needed: number, available: number, limit: number) {
    super(
      `Cannot receive: a frame may bring ${MAX_FRAME_FDS} fds and ${
        needed - MAX_FRAME_FDS
      } are kept in reserve, but only ${available} fd numbers are free below RLIMIT_NOFILE (${limit}); nothing was received`,
    );
    this.name = "FdHeadroomError";
    this.needed = needed;
    this.available = available;
    this.limit = limit;
  }
}

/** Record buffer on seqpacket: the kernel caps a record at the sender's SO_SNDBUF. */
const SEQPACKET_RECORD = HEADER_BYTES + (1 << 22);
/** Largest single read of payload on a stream. */
const STREAM_CHUNK = 1 << 20;

const rlimitBuffer = new Uint8Array(16);

/**
 * How many of `wanted` fd numbers are free below the soft `RLIMIT_NOFILE`,
 * and the limit. Exact, at the cost of `wanted` `fcntl` and `close` calls:
 * `F_DUPFD_CLOEXEC` from 0 allocates the lowest free numbers with the same
 * kernel check as receiving (`alloc_fd()` against `RLIMIT_NOFILE`,
 * fs/file.c), and the probes are closed at once.
 */
function fdHeadroom(probe: number, wanted: number): { available: number; limit: number } {
  const { lib, layout, fcntl } = libc();
  const opened: number[] = [];
  try {
    for (let i = 0; i < wanted; i++) {
      const fd = fcntl(probe, layout.constants.F_DUPFD_CLOEXEC, 0);
      if (fd < 0) break;
      opened.push(fd);
    }
  } finally {
    for (const fd of opened) lib.close(fd);
  }
  let limit = -1;
  if (opened.length < wanted && lib.getrlimit(layout.constants.RLIMIT_NOFILE, rlimitBuffer) === 0) {
    limit = Number(new DataView(rlimitBuffer.buffer).getBigUint64(0, true));
  }
  return { available: opened.length, limit };
}

const CONTINUE: unique symbol = Symbol("continue");

/**
 * Framed messages with fds over a connected stream or seqpacket
 * {@linkcode UnixSocket}, byte-compatible with skalibs' `unixmessage` (s6).
 *
 * Two levels share one stream of frames:
 * - bytes: {@linkcode Channel.sendMessage} / {@linkcode Channel.recvMessage}
 *   carry a payload and a list of fds (`{ data, fds }`);
 * - values: {@linkcode Channel.send} / {@linkcode Channel.recv} carry JSON
 *   values in which any `OwnedFd`, `UnixSocket` or other class instance with
 *   an integer `fd` travels as an fd and comes back as an `OwnedFd` in the
 *   same place. `for await` yields values.
 *
 * Sends go out in call order; async sends wait (in order) while the socket
 * buffer is full. Failures are loud: a truncated control message, fds where
 * none were announced, a malformed header or a peer that closes mid-frame
 * close every fd of the message and break the channel, and every later
 * receive throws the same error.
 *
 * @example Send a value with a pipe in it
 * ```ts
 * import { Channel, pipe } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const [left, right] = Channel.pair();
 * const [r, w] = pipe();
 * left.sendSync({ name: "log", output: w });
 * w.close();
 * const value = right.recvSync() as { name: string; output: import("@fdpass/fdpass").OwnedFd };
 * assertEquals(value.name, "log");
 * value.output.writeAllSync(new TextEncoder().encode("hi"));
 * value.output.close();
 * const buffer = new Uint8Array(2);
 * r.readSync(buffer);
 * assertEquals(new TextDecoder().decode(buffer), "hi");
 * r.close();
 * left.close();
 * right.close();
 * ```
 */
export class Channel {
  readonly #socket: UnixSocket;
  readonly #stream: boolean;
  readonly #s6: boolean;
  readonly #fdReserve: number;
  readonly #checkHeadroom: boolean;
  #failure: Error | null = null;
  #sendFailure: Error | null = null;
  #ended = false;
  #pendingReceives = 0;
  #receiveChain: Promise<unknown> = Promise.resolve();

  // The frame being read (stream), and the message being assembled.
  readonly #header = new Uint8Array(HEADER_BYTES);
  #headerFilled = 0;
  #continued = false;
  #payload: Uint8Array | null = null;
  #payloadFilled = 0;
  #frameFds: OwnedFd[] = [];
  #messageFds: OwnedFd[] = [];
  #messageParts: Uint8Array[] = [];
  #messageBytes = 0;

  /**
   * Wraps a connected stream or seqpacket socket; the channel owns it from
   * now on ({@linkcode Channel.close} closes it).
   *
   * @param socket The socket.
   * @param options s6 compatibility and the fd headroom check.
   *
   * @example Wrap a connected socket
   * ```ts
   * import { Channel, UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair("seqpacket");
   * using left = new Channel(a, { s6: true });
   * using right = new Channel(b, { s6: true });
   * left.sendMessageSync("hello");
   * assertEquals(new TextDecoder().decode(right.recvMessageSync()!.data), "hello");
   * ```
   */
  constructor(socket: UnixSocket, options: ChannelOptions = {}) {
    if (!(socket instanceof UnixSocket)) {
      throw new TypeError(`Argument "socket" must be a UnixSocket`);
    }
    checkOptions(options);
    if (socket.type === "dgram") {
      throw new TypeError(`Argument "socket" must be a stream or seqpacket socket, not "dgram"`);
    }
    const reserve = options.fdReserve ?? 8;
    if (!Number.isInteger(reserve) || reserve < 0) {
      throw new RangeError(
        `Option "fdReserve" must be a non-negative integer, received ${reserve}`,
      );
    }
    this.#socket = socket;
    this.#stream = socket.type === "stream";
    this.#s6 = options.s6 ?? false;
    this.#fdReserve = reserve;
    this.#checkHeadroom = options.checkFdHeadroom ?? true;
  }

  /**
   * Creates two connected channels over a new socket pair.
   *
   * @param type `"stream"` or `"seqpacket"`.
   * @param options Options for both ends.
   * @returns The two ends.
   *
   * @example A seqpacket pair
   * ```ts
   * import { Channel } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = Channel.pair("seqpacket");
   * a.sendSync([1, "two", { three: 3 }]);
   * assertEquals(b.recvSync(), [1, "two", { three: 3 }]);
   * a.close();
   * b.close();
   * ```
   */
  static pair(
    type: Exclude<SocketType, "dgram"> = "stream",
    options: ChannelOptions = {},
  ): [Channel, Channel] {
    const [a, b] = UnixSocket.pair(type);
    return [new Channel(a, options), new Channel(b, options)];
  }

  /** The socket underneath (for `peerCredentials()`, hand-off, ...). Owned by the channel. */
  get socket(): UnixSocket {
    return this.#socket;
  }

  /** Whether the channel is closed. */
  get closed(): boolean {
    return this.#socket.closed;
  }

  /**
   * Sends bytes with fds, blocking while the socket buffer is full.
   *
   * @param data Bytes, or a string sent as UTF-8 (at most 2^28 bytes).
   * @param options The fds.
   *
   * @example Send 600 fds in one message
   * ```ts
   * import { Channel, openFd } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = Channel.pair();
   * using devNull = openFd("/dev/null");
   * const sending = a.sendMessage("many", { fds: new Array(600).fill(devNull) });
   * const message = await b.recvMessage();
   * await sending;
   * assertEquals(message!.fds.length, 600);
   * for (const fd of message!.fds) fd.close();
   * a.close();
   * b.close();
   * ```
   */
  sendMessageSync(data: Uint8Array | string, options: ChannelSendOptions = {}): void {
    checkOptions(options);
    this.#sendFramesSync(encodeFrames(bytesOf(data), options.fds ?? [], this.#s6));
  }

  /**
   * Sends bytes with fds without blocking the thread; sends go out in call
   * order and wait while the socket buffer is full.
   *
   * @param data Bytes, or a string sent as UTF-8 (at most 2^28 bytes).
   * @param options The fds and an abort signal.
   * @returns Resolves once every frame is sent.
   *
   * @example Send and receive bytes
   * ```ts
   * import { Channel } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = Channel.pair();
   * await a.sendMessage(new Uint8Array([1, 2, 3]));
   * assertEquals((await b.recvMessage())!.data, new Uint8Array([1, 2, 3]));
   * a.close();
   * b.close();
   * ```
   */
  sendMessage(data: Uint8Array | string, options: ChannelSendOptions = {}): Promise<void> {
    try {
      checkOptions(options);
      const signal = checkSignal(options.signal);
      return this.#sendFrames(encodeFrames(bytesOf(data), options.fds ?? [], this.#s6), signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Sends a JSON value; fds inside it (any class instance with an integer
   * `fd`, such as `OwnedFd` or `UnixSocket`) travel as fds and stay open
   * here. Plain objects such as `{ fd: 3 }` are data.
   *
   * @param value The value (not `undefined`).
   *
   * @example Send nested fds
   * ```ts
   * import { Channel, openFd, OwnedFd } from "@fdpass/fdpass";
   * import { assert } from "@std/assert";
   *
   * const [a, b] = Channel.pair();
   * using file = openFd("/dev/null");
   * a.sendSync({ files: [file, { inner: file }] });
   * const value = b.recvSync() as { files: [OwnedFd, { inner: OwnedFd }] };
   * assert(value.files[0] instanceof OwnedFd);
   * value.files[0].close();
   * value.files[1].inner.close();
   * a.close();
   * b.close();
   * ```
   */
  sendSync(value: unknown): void {
    const { json, fds } = encodeValue(value);
    this.sendMessageSync(json, { fds });
  }

  /**
   * Sends a JSON value without blocking the thread; see {@linkcode Channel.sendSync}.
   *
   * @param value The value (not `undefined`).
   * @param options An abort signal.
   * @returns Resolves once the value is sent.
   *
   * @example Send a value asynchronously
   * ```ts
   * import { Channel } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = Channel.pair();
   * await a.send({ hello: "world" });
   * assertEquals(await b.recv(), { hello: "world" });
   * a.close();
   * b.close();
   * ```
   */
  send(value: unknown, options: ChannelSignalOptions = {}): Promise<void> {
    try {
      const { json, fds } = encodeValue(value);
      return this.sendMessage(json, { fds, signal: options.signal });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Receives one message as bytes, blocking until it is complete.
   *
   * @returns The message, or `null` at end of stream between messages.
   * @throws {FdHeadroomError} When the fds of a frame might not fit (nothing received).
   * @throws {Deno.errors.InvalidData} For a malformed frame (channel broken).
   * @throws {Deno.errors.UnexpectedEof} When the peer closed mid-message (channel broken).
   * @throws {ControlTruncatedError} When the kernel cut the fds (channel broken).
   *
   * @example Receive until the end
   * ```ts
   * import { Channel } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = Channel.pair();
   * a.sendMessageSync("only");
   * a.close();
   * assertEquals(b.recvMessageSync()!.data.length, 4);
   * assertEquals(b.recvMessageSync(), null);
   * b.close();
   * ```
   */
  recvMessageSync(): ChannelMessage | null {
    if (this.#pendingReceives > 0) {
      throw new TypeError("Cannot receive synchronously while an async receive is pending");
    }
    for (;;) {
      const maxBytes = this.#prepareRead();
      if (maxBytes === 0) return null;
      let received: Received<OwnedFd> | null;
      try {
        received = this.#socket.recvSync({ maxBytes });
      } catch (error) {
        throw this.#receiveError(error);
      }
      const out = this.#absorb(received);
      if (out !== CONTINUE) return out;
    }
  }

  /**
   * Receives one message as bytes without blocking the thread. Receives
   * are served in call order; an aborted receive keeps what it read of a
   * frame for the next one.
   *
   * @param options An abort signal.
   * @returns The message, or `null` at end of stream between messages.
   *
   * @example Abort a receive
   * ```ts
   * import { Channel } from "@fdpass/fdpass";
   * import { assertRejects } from "@std/assert";
   *
   * const [a, b] = Channel.pair();
   * await assertRejects(() => b.recvMessage({ signal: AbortSignal.timeout(10) }));
   * a.close();
   * b.close();
   * ```
   */
  recvMessage(options: ChannelSignalOptions = {}): Promise<ChannelMessage | null> {
    let signal: AbortSignal | undefined;
    try {
      checkOptions(options);
      signal = checkSignal(options.signal);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#pendingReceives++;
    const run = this.#receiveChain.then(() => this.#receiveNow(signal));
    this.#receiveChain = run.then(noop, noop);
    return run.finally(() => this.#pendingReceives--);
  }

  async #receiveNow(signal: AbortSignal | undefined): Promise<ChannelMessage | null> {
    for (;;) {
      this.#checkReceivable();
      if (this.#ended) return null;
      // Wait first, so that the headroom check runs right before recvmsg.
      await waitReadable(this.#socket, { signal });
      const maxBytes = this.#prepareRead();
      if (maxBytes === 0) return null;
      let received: Received<OwnedFd> | null;
      try {
        received = await this.#socket.recv({ maxBytes, signal });
      } catch (error) {
        throw this.#receiveError(error);
      }
      const out = this.#absorb(received);
      if (out !== CONTINUE) return out;
    }
  }

  /**
   * Receives one JSON value, blocking; fds come back as `OwnedFd`s where
   * the sender had them.
   *
   * @returns The value, or `undefined` at end of stream (no value is `undefined`).
   * @throws {Deno.errors.InvalidData} When the payload is not a channel
   * value; its fds are closed, and the channel stays usable.
   *
   * @example Receive a value
   * ```ts
   * import { Channel } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = Channel.pair();
   * a.sendSync({ $fd: "just a string key" });
   * assertEquals(b.recvSync(), { $fd: "just a string key" });
   * a.close();
   * b.close();
   * ```
   */
  recvSync(): unknown {
    return decodeMessage(this.recvMessageSync());
  }

  /**
   * Receives one JSON value without blocking the thread; see {@linkcode Channel.recvSync}.
   *
   * @param options An abort signal.
   * @returns The value, or `undefined` at end of stream.
   *
   * @example Receive a value asynchronously
   * ```ts
   * import { Channel } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = Channel.pair();
   * const value = b.recv();
   * a.sendSync(42);
   * assertEquals(await value, 42);
   * a.close();
   * b.close();
   * ```
   */
  async recv(options: ChannelSignalOptions = {}): Promise<unknown> {
    return decodeMessage(await this.recvMessage(options));
  }

  /**
   * Yields received values until end of stream.
   *
   * @returns An async iterator of values.
   *
   * @example Read every value
   * ```ts
   * import { Channel } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = Channel.pair();
   * a.sendSync("one");
   * a.sendSync("two");
   * a.close();
   * const seen: unknown[] = [];
   * for await (const value of b) seen.push(value);
   * assertEquals(seen, ["one", "two"]);
   * b.close();
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncIterableIterator<unknown> {
    for (;;) {
      const value = await this.recv();
      if (value === undefined) return;
      yield value;
    }
  }

  /**
   * Yields received messages as bytes until end of stream.
   *
   * @returns An async iterator of messages.
   *
   * @example Read every message
   * ```ts
   * import { Channel } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = Channel.pair();
   * a.sendMessageSync("x");
   * a.close();
   * let count = 0;
   * for await (const message of b.messages()) count += message.data.length;
   * assertEquals(count, 1);
   * b.close();
   * ```
   */
  async *messages(): AsyncIterableIterator<ChannelMessage> {
    for (;;) {
      const message = await this.recvMessage();
      if (message === null) return;
      yield message;
    }
  }

  /**
   * Closes the socket and every fd of a partly received message. Calling
   * it again does nothing.
   *
   * @example Close with `using`
   * ```ts
   * import { Channel } from "@fdpass/fdpass";
   *
   * const [a, b] = Channel.pair();
   * a.close();
   * a.close();
   * b.close();
   * ```
   */
  close(): void {
    this.#discardPartial();
    this.#socket.close();
  }

  /** Closes the channel; lets `using` manage it. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Shows the socket in `console.log` and the REPL. */
  [Symbol.for("Deno.customInspect")](): string {
    const state = this.#socket.closed ? "closed" : this.#failure !== null ? "broken" : "open";
    return `Channel { type: "${this.#socket.type}", ${state}${this.#s6 ? ", s6" : ""} }`;
  }

  // -------------------------------------------------------------------------
  // Sending.

  #checkSendable(): void {
    this.#socket.fd; // Throws once closed.
    if (this.#sendFailure !== null) throw this.#sendFailure;
  }

  #sendFramesSync(frames: OutgoingFrame[]): void {
    this.#checkSendable();
    for (let i = 0; i < frames.length; i++) {
      try {
        this.#socket.sendSync(frames[i]!.bytes, { fds: frames[i]!.fds });
      } catch (error) {
        if (i > 0) this.#breakSends(error);
        throw error;
      }
    }
  }

  async #sendFrames(frames: OutgoingFrame[], signal: AbortSignal | undefined): Promise<void> {
    this.#checkSendable();
    // All frames are queued now, in one go, so no other message can come
    // between them; the socket's send queue keeps call order.
    const results = await Promise.allSettled(
      frames.map((frame) => this.#socket.send(frame.bytes, { fds: frame.fds, signal })),
    );
    const failed = results.find((r) => r.status === "rejected");
    if (failed === undefined) return;
    if (results.some((r) => r.status === "fulfilled")) this.#breakSends(failed.reason);
    throw failed.reason;
  }

  #breakSends(cause: unknown): void {
    this.#sendFailure ??= new Deno.errors.BrokenPipe(
      "Cannot send: a message with continuation frames was cut short, so the peer cannot resynchronise",
      { cause },
    );
  }

  // -------------------------------------------------------------------------
  // Receiving.

  #checkReceivable(): void {
    this.#socket.fd; // Throws once closed.
    if (this.#failure !== null) throw this.#failure;
  }

  /** The byte count of the next read (0 once ended), after the headroom check when fds may come. */
  #prepareRead(): number {
    this.#checkReceivable();
    if (this.#ended) return 0;
    const fdsPossible = !this.#stream || this.#headerFilled === 0;
    if (fdsPossible && this.#checkHeadroom) {
      const needed = MAX_FRAME_FDS + this.#fdReserve;
      const { available, limit } = fdHeadroom(this.#socket.fd, needed);
      if (available < needed) throw new FdHeadroomError(needed, available, limit);
    }
    if (!this.#stream) return SEQPACKET_RECORD;
    if (this.#headerFilled < HEADER_BYTES) return HEADER_BYTES - this.#headerFilled;
    return Math.min(STREAM_CHUNK, this.#payload!.length - this.#payloadFilled);
  }

  #receiveError(error: unknown): unknown {
    // recv() closed the fds that did arrive; the stream cannot resynchronise.
    if (error instanceof ControlTruncatedError) return this.#fail(error);
    return error;
  }

  /** Breaks the channel: closes every fd held for the message and remembers `error`. */
  #fail(error: Error): Error {
    this.#discardPartial();
    this.#failure = error;
    return error;
  }

  #discardPartial(): void {
    for (const fd of this.#frameFds) fd.close();
    for (const fd of this.#messageFds) fd.close();
    this.#frameFds = [];
    this.#messageFds = [];
    this.#messageParts = [];
    this.#messageBytes = 0;
    this.#payload = null;
    this.#headerFilled = 0;
  }

  #absorb(received: Received<OwnedFd> | null): ChannelMessage | null | typeof CONTINUE {
    if (received === null) {
      if (this.#headerFilled === 0 && this.#messageParts.length === 0) {
        this.#ended = true;
        return null;
      }
      throw this.#fail(
        new Deno.errors.UnexpectedEof(
          this.#headerFilled < HEADER_BYTES
            ? `Peer closed the channel after ${this.#headerFilled} of ${HEADER_BYTES} header bytes`
            : `Peer closed the channel after ${this.#payloadFilled} of ${
              this.#payload!.length
            } payload bytes`,
        ),
      );
    }
    const { data, fds } = received;
    if (!this.#stream) {
      this.#frameFds = fds;
      if (received.truncated) {
        throw this.#fail(
          new Deno.errors.InvalidData(
            `Record is longer than ${SEQPACKET_RECORD} bytes, the most a channel reads`,
          ),
        );
      }
      if (data.length < HEADER_BYTES) {
        throw this.#fail(
          new Deno.errors.InvalidData(
            `Record of ${data.length} bytes is shorter than a frame header`,
          ),
        );
      }
      this.#header.set(data.subarray(0, HEADER_BYTES));
      this.#headerFilled = HEADER_BYTES;
      this.#startFrame();
      if (data.length - HEADER_BYTES !== this.#announcedLength) {
        throw this.#fail(
          new Deno.errors.InvalidData(
            `Record holds ${
              data.length - HEADER_BYTES
            } payload bytes, but its header announces ${this.#announcedLength}`,
          ),
        );
      }
      this.#payload = data.subarray(HEADER_BYTES);
      this.#payloadFilled = this.#payload.length;
      return this.#finishFrame();
    }
    if (this.#headerFilled === 0) {
      this.#frameFds = fds;
    } else if (fds.length > 0) {
      for (const fd of fds) fd.close();
      const at = this.#headerFilled < HEADER_BYTES
        ? `header byte ${this.#headerFilled}`
        : `payload byte ${this.#payloadFilled}`;
      throw this.#fail(
        new Deno.errors.InvalidData(
          `${fds.length} fds arrived in a read that starts at ${at} of a frame; fds must come with its first byte (closed)`,
        ),
      );
    }
    if (this.#headerFilled < HEADER_BYTES) {
      this.#header.set(data, this.#headerFilled);
      this.#headerFilled += data.length;
      if (this.#headerFilled < HEADER_BYTES) return CONTINUE;
      this.#startFrame();
    } else {
      this.#payload!.set(data, this.#payloadFilled);
      this.#payloadFilled += data.length;
    }
    if (this.#payloadFilled < this.#payload!.length) return CONTINUE;
    return this.#finishFrame();
  }

  #announcedLength = 0;

  /** Checks a complete header against the fds that came with it. */
  #startFrame(): void {
    let header;
    try {
      header = decodeHeader(this.#header, this.#s6);
    } catch (error) {
      throw this.#fail(error as Error);
    }
    if (this.#frameFds.length !== header.fds) {
      throw this.#fail(
        new Deno.errors.InvalidData(
          `Frame header announces ${header.fds} fds, but ${this.#frameFds.length} arrived with it (closed)`,
        ),
      );
    }
    if (this.#messageBytes + header.length > MAX_FRAME_BYTES) {
      throw this.#fail(
        new Deno.errors.InvalidData(
          `Message would exceed ${MAX_FRAME_BYTES} (2^28) bytes`,
        ),
      );
    }
    this.#continued = header.continued;
    this.#announcedLength = header.length;
    if (this.#stream) {
      this.#payload = new Uint8Array(header.length);
      this.#payloadFilled = 0;
    }
  }

  #finishFrame(): ChannelMessage | typeof CONTINUE {
    for (const fd of this.#frameFds) this.#messageFds.push(fd);
    this.#frameFds = [];
    this.#messageParts.push(this.#payload!);
    this.#messageBytes += this.#payload!.length;
    this.#payload = null;
    this.#headerFilled = 0;
    if (this.#continued) return CONTINUE;
    const parts = this.#messageParts;
    const data = parts.length === 1 ? parts[0]! : concat(parts, this.#messageBytes);
    const message = { data, fds: this.#messageFds };
    this.#messageFds = [];
    this.#messageParts = [];
    this.#messageBytes = 0;
    return message;
  }
}

function noop(): void {}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function bytesOf(data: Uint8Array | string): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === "string") return encoder.encode(data);
  throw new TypeError(`Argument "data" must be a Uint8Array or a string`);
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Decodes a value message; on failure its fds are closed and the error thrown. */
function decodeMessage(message: ChannelMessage | null): unknown {
  if (message === null) return undefined;
  try {
    return decodeValue(decoder.decode(message.data), message.fds);
  } catch (error) {
    for (const fd of message.fds) fd.close();
    if (error instanceof TypeError) {
      throw new Deno.errors.InvalidData("Channel value is not UTF-8", { cause: error });
    }
    throw error;
  }
}
