/**
 * {@linkcode UnixSocket}: a Unix domain socket that sends and receives data
 * with open file descriptors, and {@linkcode UnixListener}, a listening
 * socket that accepts them. They name each other, so they share a module.
 *
 * @module
 */

import { acceptUntilClosed } from "./async/accept_loop.ts";
import { libc } from "../ffi/libc.ts";
import { checkOptions, checkSignal, type FdLike } from "./core/checks.ts";
import { checkAddress, type SocketAddress, type UnixAddress } from "./core/address.ts";
import {
  type MessageCredentials,
  type PeerCredentials,
  peerCredentialsOf,
} from "./core/credentials.ts";
import type { Received, ReceivedInto } from "./core/message.ts";
import {
  acceptFd,
  checkBacklog,
  connectFd,
  createUnixSocket,
  getIntOption,
  listenFd,
  localAddressOf,
  remoteAddressOf,
  setIntOption,
  shutdownFd,
  socketPair,
  type SocketType,
  socketTypeOf,
} from "./core/socket_calls.ts";
import { setCloseOnExec, setNonblocking } from "./core/fd_ops.ts";
import { bindAndRemember, type SocketFile, unlinkIfSame } from "./core/socket_file.ts";
import {
  checkReceiveInto,
  collectFds,
  receiveLimits,
  type ReceiveOptions,
  recvBlocking,
  recvIntoBlocking,
  sendMessageSync,
  startSend,
} from "./core/transfer.ts";
import { acceptAsync, connectAsync, recvAsync, recvIntoAsync } from "./async/drivers.ts";
import { SendQueue } from "./async/send_queue.ts";
import { adoptFd, OwnedFd } from "./owned_fd.ts";
import { type Socket, toNetSocket } from "./adapters/handoff.ts";

export type {
  FdLike,
  MessageCredentials,
  PeerCredentials,
  ReceivedInto,
  ReceiveOptions,
  SocketType,
};
export type { SocketAddress, UnixAddress };

const adopt = (fd: number): OwnedFd => new OwnedFd(fd);

// Set by UnixSocket's static block: the module's access to its private
// constructor, for connections accepted by a UnixListener.
let newSocket: (handle: OwnedFd, type: SocketType) => UnixSocket;

// Removes the socket file of a listener or bound datagram socket that was
// garbage-collected without close(), as close() would.
const socketFiles = new FinalizationRegistry<SocketFile>((file) => {
  try {
    unlinkIfSame(file);
  } catch {
    // Best effort: nobody is left to report to.
  }
});

/** Options for sending a message. */
export interface SendOptions {
  /**
   * Fds to send with the data: owned or borrowed fds, sockets, or plain
   * numbers. They stay open here; the receiver gets new fds for the same
   * open files. At most 253.
   *
   * @default {[]}
   */
  fds?: Iterable<FdLike>;
  /**
   * Cancels an async send while it waits. On a stream, a message that was
   * partly sent when the signal fired cannot be taken back: the socket is
   * then marked broken and every later send rejects.
   */
  signal?: AbortSignal;
}

/** Options for async receives. */
export interface AsyncReceiveOptions extends ReceiveOptions {
  /** Cancels the receive while it waits; nothing is consumed then. */
  signal?: AbortSignal;
}

/**
 * A received message: its data bytes (a buffer of their own), the received
 * fds (owned by the caller, close-on-exec), whether a datagram or record was
 * cut to `maxBytes` (`truncated`), and the sender's `SCM_CREDENTIALS` when
 * {@linkcode UnixSocket.passCredentials} is on (Linux).
 */
export type ReceivedMessage = Received<OwnedFd>;

/**
 * A received datagram, with the sender's address (`null` when the sender is
 * unbound; bytes when it is not valid UTF-8, which `sendTo` accepts back).
 */
export type ReceivedDatagram = Received<OwnedFd> & { address: SocketAddress };

/** Options for {@linkcode UnixSocket.connectSync} and {@linkcode UnixSocket.connect}. */
export interface UnixConnectOptions {
  /**
   * The socket type.
   *
   * @default {"stream"}
   */
  type?: SocketType;
  /** Cancels an async connect while it waits. */
  signal?: AbortSignal;
}

/** Options for {@linkcode UnixSocket.datagram}. */
export interface UnixDatagramOptions {
  /**
   * Remove an existing socket file at the path before binding.
   *
   * @default {false}
   */
  removeExisting?: boolean;
}

/**
 * A Unix domain socket (stream, seqpacket or datagram) that owns its fd and
 * passes open file descriptors with `SCM_RIGHTS`.
 *
 * Sockets are created close-on-exec. Sends never raise `SIGPIPE`: a closed
 * peer is a `BrokenPipe` error. Received fds are close-on-exec and owned by
 * the receiver.
 *
 * @example Pass a pipe's write end over a socketpair
 * ```ts
 * import { pipe, UnixSocket } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const [left, right] = UnixSocket.pair();
 * const [r, w] = pipe();
 * left.sendSync("here", { fds: [w] });
 * w.close();
 *
 * const message = right.recvSync()!;
 * assertEquals(new TextDecoder().decode(message.data), "here");
 * using received = message.fds[0]!;
 * received.writeAllSync("through the passed fd");
 * received.close();
 *
 * const buf = new Uint8Array(64);
 * const n = r.readSync(buf)!;
 * assertEquals(new TextDecoder().decode(buf.subarray(0, n)), "through the passed fd");
 * r.close();
 * left.close();
 * right.close();
 * ```
 */
export class UnixSocket {
  readonly #handle: OwnedFd;
  readonly #type: SocketType;
  #socketFile: SocketFile | null = null;
  readonly #sends = new SendQueue();

  private constructor(handle: OwnedFd, type: SocketType) {
    this.#handle = handle;
    this.#type = type;
  }

  static {
    newSocket = (handle, type) => new UnixSocket(handle, type);
  }

  /**
   * Creates a connected pair of sockets (`socketpair`).
   *
   * @param type The socket type.
   * @returns The two ends.
   *
   * @example A seqpacket pair
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair("seqpacket");
   * a.sendSync("one record");
   * assertEquals(b.recvSync()!.data.length, 10);
   * a.close();
   * b.close();
   * ```
   */
  static pair(type: SocketType = "stream"): [UnixSocket, UnixSocket] {
    const [a, b] = socketPair(type);
    return [new UnixSocket(new OwnedFd(a), type), new UnixSocket(new OwnedFd(b), type)];
  }

  /**
   * Connects to a listening socket (or, for `"dgram"`, sets the default
   * destination), blocking until connected.
   *
   * @param address A path, or `{ abstract: "name" }` on Linux.
   * @param options The socket type.
   * @returns The connected socket.
   *
   * @example Connect to a listener
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const path = Deno.makeTempDirSync() + "/s.sock";
   * using listener = UnixSocket.listen(path);
   * using client = UnixSocket.connectSync(path);
   * using server = listener.acceptSync();
   * client.sendSync("hi");
   * assertEquals(server.recvSync()!.data.length, 2);
   * ```
   */
  static connectSync(
    address: UnixAddress,
    options: UnixConnectOptions = {},
  ): UnixSocket {
    const type = checkOptions(options).type ?? "stream";
    checkAddress(address, "address");
    const handle = new OwnedFd(createUnixSocket(type));
    try {
      connectFd(handle.fd, address);
    } catch (error) {
      handle.close();
      throw error;
    }
    return new UnixSocket(handle, type);
  }

  /**
   * Connects without blocking the thread; see {@linkcode UnixSocket.connectSync}.
   * When the listener's backlog is full (Linux), it rejects at once with
   * `Deno.errors.WouldBlock` (`EAGAIN`) instead of waiting, as libuv and
   * Node do: no event reports room in a backlog, so waiting would mean
   * polling on a timer. Retry later, or use `connectSync`, which blocks.
   *
   * @param address A path, or `{ abstract: "name" }` on Linux.
   * @param options The socket type and an abort signal.
   * @returns The connected socket.
   *
   * @example Connect and accept asynchronously
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   *
   * const path = Deno.makeTempDirSync() + "/async.sock";
   * using listener = UnixSocket.listen(path);
   * const [client, server] = await Promise.all([
   *   UnixSocket.connect(path),
   *   listener.accept(),
   * ]);
   * client.close();
   * server.close();
   * ```
   */
  static async connect(
    address: UnixAddress,
    options: UnixConnectOptions = {},
  ): Promise<UnixSocket> {
    const type = checkOptions(options).type ?? "stream";
    const signal = checkSignal(options.signal);
    checkAddress(address, "address");
    return new UnixSocket(await connectAsync(address, type, signal, adopt), type);
  }

  /**
   * Creates a listening socket bound to `address`. Closing the listener
   * removes the socket file it created.
   *
   * @param address A path, or `{ abstract: "name" }` on Linux.
   * @param options Type, backlog and stale-file handling.
   * @returns The listener.
   *
   * @example Listen on an abstract name (Linux)
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const name = { abstract: `fdpass-doc-${Deno.pid}` };
   * using listener = UnixSocket.listen(name);
   * assertEquals(listener.address, name);
   * ```
   */
  static listen(
    address: UnixAddress,
    options: UnixListenOptions = {},
  ): UnixListener {
    return UnixListener.create(address, options);
  }

  /**
   * Creates a datagram socket, bound to `address` when one is given (so
   * that others can send to it). A bound path is removed on close.
   *
   * @param address Where to bind, or nothing for an unbound socket.
   * @param options Stale-file handling.
   * @returns The datagram socket.
   *
   * @example Send a datagram with an fd to a bound socket
   * ```ts
   * import { openFd, UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const path = Deno.makeTempDirSync() + "/d.sock";
   * using server = UnixSocket.datagram(path);
   * using client = UnixSocket.datagram();
   * using devNull = openFd("/dev/null");
   * client.sendToSync(path, "", { fds: [devNull] });
   * const message = server.recvFromSync();
   * assertEquals(message.data.length, 0);
   * assertEquals(message.fds.length, 1);
   * message.fds[0]!.close();
   * ```
   */
  static datagram(
    address?: UnixAddress,
    options: UnixDatagramOptions = {},
  ): UnixSocket {
    checkOptions(options);
    if (address !== undefined) checkAddress(address, "address");
    const handle = new OwnedFd(createUnixSocket("dgram"));
    const socket = new UnixSocket(handle, "dgram");
    if (address !== undefined) {
      try {
        socket.#socketFile = bindAndRemember(
          handle.fd,
          address,
          "dgram",
          options.removeExisting ?? false,
        );
      } catch (error) {
        handle.close();
        throw error;
      }
      if (socket.#socketFile !== null) socketFiles.register(socket, socket.#socketFile, socket);
    }
    return socket;
  }

  /**
   * Adopts an existing Unix socket fd, such as one inherited from a parent
   * or received in a message. The socket takes ownership.
   *
   * @param fd An {@linkcode OwnedFd} (ownership moves) or a number (now owned).
   * @returns The socket.
   *
   * @example Adopt a received socket
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * const [c, d] = UnixSocket.pair();
   * a.sendSync("take this", { fds: [c] });
   * c.close();
   * using adopted = UnixSocket.from(b.recvSync()!.fds[0]!);
   * adopted.sendSync("via adopted");
   * assertEquals(d.recvSync()!.data.length, 11);
   * a.close();
   * b.close();
   * d.close();
   * ```
   */
  static from(fd: OwnedFd | number): UnixSocket {
    let type: SocketType = "stream";
    const handle = adoptFd(fd, (n) => type = socketTypeOf(n, "fd"));
    return new UnixSocket(handle, type);
  }

  /**
   * The fd number.
   *
   * @throws {TypeError} After {@linkcode UnixSocket.close}.
   */
  get fd(): number {
    if (this.#handle.closed) throw closedError();
    return this.#handle.fd;
  }

  /** The socket type. */
  get type(): SocketType {
    return this.#type;
  }

  /** Whether the socket is closed. */
  get closed(): boolean {
    return this.#handle.closed;
  }

  /**
   * The address this socket is bound to, or `null` when unnamed.
   *
   * @example A socketpair is unnamed
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * assertEquals(a.localAddress, null);
   * a.close();
   * b.close();
   * ```
   */
  get localAddress(): SocketAddress {
    return localAddressOf(this.fd);
  }

  /**
   * The address of the connected peer, or `null` when it is unnamed.
   *
   * @example The listener's path, seen from a client
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const path = Deno.makeTempDirSync() + "/p.sock";
   * using listener = UnixSocket.listen(path);
   * using client = UnixSocket.connectSync(path);
   * assertEquals(client.remoteAddress, path);
   * ```
   */
  get remoteAddress(): SocketAddress {
    return remoteAddressOf(this.fd);
  }

  /**
   * Sends `data` with the given fds and returns the number of bytes sent
   * (all of them: on a stream, a short send is continued).
   *
   * On a stream, at least one data byte must go with fds (the kernel drops
   * fds sent with none). On seqpacket and dgram sockets an empty message
   * with fds is fine.
   *
   * @param data Bytes, or a string sent as UTF-8.
   * @param options The fds to send.
   * @returns The number of bytes sent.
   *
   * @example Send three fds in one message
   * ```ts
   * import { openFd, UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * using devNull = openFd("/dev/null");
   * assertEquals(a.sendSync("x", { fds: [devNull, devNull, 0] }), 1);
   * const { fds } = b.recvSync()!;
   * assertEquals(fds.length, 3);
   * for (const fd of fds) fd.close();
   * a.close();
   * b.close();
   * ```
   */
  sendSync(data: Uint8Array | string, options?: SendOptions): number {
    const fd = this.fd;
    this.#sends.checkSync();
    return sendMessageSync(fd, this.#type, data, options?.fds, null);
  }

  /**
   * Sends a datagram to `address` (dgram sockets).
   *
   * @param address The destination.
   * @param data Bytes, or a string sent as UTF-8.
   * @param options The fds to send.
   * @returns The number of bytes sent.
   *
   * @example Send to a bound datagram socket
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const name = { abstract: `fdpass-dgram-${Deno.pid}` };
   * using server = UnixSocket.datagram(name);
   * using client = UnixSocket.datagram();
   * assertEquals(client.sendToSync(name, "ping"), 4);
   * assertEquals(server.recvFromSync().data.length, 4);
   * ```
   */
  sendToSync(
    address: UnixAddress,
    data: Uint8Array | string,
    options?: SendOptions,
  ): number {
    const fd = this.fd;
    if (this.#type !== "dgram") {
      throw new TypeError(
        `Cannot use sendToSync() on a ${this.#type} socket: only dgram sockets send to an address`,
      );
    }
    this.#sends.checkSync();
    return sendMessageSync(fd, "dgram", data, options?.fds, address);
  }

  /**
   * Receives one message, blocking until one arrives.
   *
   * The control buffer always has room for the largest fd message, so the
   * kernel never truncates because of it. If the kernel still reports
   * truncation (`MSG_CTRUNC`: this process at its fd limit, a security
   * module), or more than `maxFds` fds arrive, every fd that did arrive is
   * closed and a {@linkcode ControlTruncatedError} carrying the data is
   * thrown.
   *
   * @param options Capacity for data and fds.
   * @returns The message, or `null` at end of stream (and, on a seqpacket
   * socket, for an empty record with no fds).
   *
   * @example Receive until end of stream
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * a.sendSync("last words");
   * a.close();
   * assertEquals(b.recvSync()!.data.length, 10);
   * assertEquals(b.recvSync(), null);
   * b.close();
   * ```
   */
  recvSync(options?: ReceiveOptions): ReceivedMessage | null {
    const fd = this.fd;
    const [maxBytes, maxFds] = receiveLimits(options, this.#type);
    return recvBlocking(fd, this.#type, maxBytes, maxFds, false, adopt);
  }

  /**
   * Receives one message into buffers the caller owns and reuses, blocking
   * until one arrives: the receive for hot loops, which allocates nothing
   * when `result` is passed.
   *
   * The data is copied into the start of `buffer`, whose length is the
   * capacity (like `maxBytes`; on a seqpacket or dgram socket a longer
   * message is cut and `truncated` set). The buffer is written only after
   * the kernel is done, from the library's own receive buffer, so any
   * `Uint8Array` works, on a resizable or shared `ArrayBuffer` too.
   *
   * The received fds are written as numbers into the start of `fds`, whose
   * length is the most accepted (like `maxFds`). They are close-on-exec and
   * belong to the caller from then on, with no `OwnedFd` around them and no
   * garbage-collection backstop: close each one (`OwnedFd.closeNumber(n)`),
   * adopt it (`new OwnedFd(n)`), or pass it on (`sendSync(data, { fds:
   * fds.subarray(0, count) })`). When more fds arrive than `fds` holds, or
   * the kernel reports `MSG_CTRUNC`, every fd that arrived is closed and a
   * {@linkcode ControlTruncatedError} is thrown, as from `recvSync`; the data
   * is in `buffer` then, and in the error.
   *
   * Bad arguments throw a `TypeError` or `RangeError` before anything is
   * received. Other rules as in {@linkcode UnixSocket.recvSync}.
   *
   * @param buffer Where the data goes; at least 1 byte on a stream socket.
   * @param fds Where the fd numbers go; `null` or nothing accepts none.
   * @param result An object to write the counts into and return, reused
   * from call to call (a new one is made when it is left out).
   * @returns `result` with `bytes` (data bytes in `buffer`), `fds` (fd
   * numbers in `fds`), `truncated` and `credentials`; or `null` at end of
   * stream (and, on a seqpacket socket, for an empty record with no fds),
   * leaving `result` as it was.
   *
   * @example Receive in a loop without allocating
   * ```ts
   * import { openFd, OwnedFd, type ReceivedInto, UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * using devNull = openFd("/dev/null");
   * a.sendSync("one", { fds: [devNull] });
   * a.sendSync("two", { fds: [devNull, devNull] });
   * a.close();
   *
   * const buffer = new Uint8Array(1024);
   * const fds = new Int32Array(8);
   * const result: ReceivedInto = { bytes: 0, fds: 0, truncated: false, credentials: null };
   * const seen: string[] = [];
   * while (b.recvIntoSync(buffer, fds, result) !== null) {
   *   seen.push(`${new TextDecoder().decode(buffer.subarray(0, result.bytes))}: ${result.fds}`);
   *   for (let i = 0; i < result.fds; i++) OwnedFd.closeNumber(fds[i]!); // ours to close
   * }
   * assertEquals(seen, ["one: 1", "two: 2"]);
   * b.close();
   * ```
   */
  recvIntoSync(
    buffer: Uint8Array,
    fds?: Int32Array | null,
    result?: ReceivedInto,
  ): ReceivedInto | null {
    const fd = this.fd;
    checkReceiveInto(buffer, fds, result, this.#type);
    return recvIntoBlocking(
      fd,
      this.#type,
      buffer,
      fds ?? null,
      result ?? { bytes: 0, fds: 0, truncated: false, credentials: null },
    );
  }

  /**
   * Receives one datagram and its sender's address (dgram sockets).
   *
   * @param options Capacity for data and fds.
   * @returns The datagram.
   *
   * @example Reply to the sender
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const dir = Deno.makeTempDirSync();
   * using server = UnixSocket.datagram(`${dir}/server.sock`);
   * using client = UnixSocket.datagram(`${dir}/client.sock`);
   * client.sendToSync(`${dir}/server.sock`, "ping");
   * const { address } = server.recvFromSync();
   * assertEquals(address, `${dir}/client.sock`);
   * server.sendToSync(address!, "pong");
   * assertEquals(client.recvSync()!.data.length, 4);
   * ```
   */
  recvFromSync(options?: ReceiveOptions): ReceivedDatagram {
    const fd = this.fd;
    if (this.#type !== "dgram") {
      throw new TypeError(
        `Cannot use recvFromSync() on a ${this.#type} socket: only dgram sockets receive from an address`,
      );
    }
    const [maxBytes, maxFds] = receiveLimits(options, "dgram");
    return recvBlocking(fd, "dgram", maxBytes, maxFds, true, adopt) as ReceivedDatagram;
  }

  /**
   * Sends `data` with fds without blocking the thread: tries at once, and
   * waits in the shared poller only when the socket buffer is full. Sends on
   * one socket go out in call order. A send that has to wait holds
   * duplicates of its fds, so the caller may close them right away.
   *
   * @param data Bytes, or a string sent as UTF-8.
   * @param options The fds to send and an abort signal.
   * @returns The number of bytes sent.
   *
   * @example Send and receive asynchronously
   * ```ts
   * import { openFd, UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * using devNull = openFd("/dev/null");
   * await a.send("x", { fds: [devNull] });
   * const message = await b.recv();
   * assertEquals(message!.fds.length, 1);
   * message!.fds[0]!.close();
   * a.close();
   * b.close();
   * ```
   */
  send(data: Uint8Array | string, options?: SendOptions): Promise<number> {
    try {
      this.fd;
      const signal = checkSignal(options?.signal);
      const out = startSend(this.#type, data, collectFds(options?.fds), null);
      return this.#sends.send(this.#handle, out, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Sends a datagram to `address` without blocking the thread.
   *
   * @param address The destination.
   * @param data Bytes, or a string sent as UTF-8.
   * @param options The fds to send and an abort signal.
   * @returns The number of bytes sent.
   *
   * @example Send a datagram asynchronously
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const name = { abstract: `fdpass-async-dgram-${Deno.pid}` };
   * using server = UnixSocket.datagram(name);
   * using client = UnixSocket.datagram();
   * await client.sendTo(name, "ping");
   * assertEquals((await server.recvFrom()).data.length, 4);
   * ```
   */
  sendTo(
    address: UnixAddress,
    data: Uint8Array | string,
    options?: SendOptions,
  ): Promise<number> {
    try {
      this.fd;
      if (this.#type !== "dgram") {
        throw new TypeError(
          `Cannot use sendTo() on a ${this.#type} socket: only dgram sockets send to an address`,
        );
      }
      const signal = checkSignal(options?.signal);
      const out = startSend("dgram", data, collectFds(options?.fds), address);
      return this.#sends.send(this.#handle, out, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Receives one message without blocking the thread: tries at once, and
   * waits in the shared poller only when nothing is queued. Same rules as
   * {@linkcode UnixSocket.recvSync}.
   *
   * @param options Capacity for data and fds, and an abort signal.
   * @returns The message, or `null` at end of stream.
   *
   * @example Time out a receive
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertRejects } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * await assertRejects(() => b.recv({ signal: AbortSignal.timeout(10) }));
   * a.close();
   * b.close();
   * ```
   */
  recv(options?: AsyncReceiveOptions): Promise<ReceivedMessage | null> {
    // Not an async function: the driver's promise is returned as it is,
    // one microtask hop less per message. Errors still come as rejections.
    try {
      this.fd;
      const [maxBytes, maxFds] = receiveLimits(options, this.#type);
      const signal = checkSignal(options?.signal);
      return recvAsync(this.#handle, this.#type, maxBytes, maxFds, false, signal, adopt);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Receives one message into buffers the caller owns and reuses, without
   * blocking the thread: {@linkcode UnixSocket.recvIntoSync} for async hot
   * loops. It tries at once, and when nothing is there the next try is made
   * by the shared poller the moment the socket is reported readable, as
   * with {@linkcode UnixSocket.recv}.
   *
   * The arguments are checked when the call is made, and again just
   * before each later try: a `buffer` or `fds` whose `ArrayBuffer` was
   * detached (transferred) while the receive waited rejects it with a
   * `TypeError`, and no message is taken. Keep the buffers for this socket
   * until the promise settles; the data and fd numbers are written when it
   * resolves, not before. Data, fds, truncation and the fds' ownership as
   * in {@linkcode UnixSocket.recvIntoSync}.
   *
   * @param buffer Where the data goes; at least 1 byte on a stream socket.
   * @param fds Where the fd numbers go; `null` or nothing accepts none.
   * @param result An object to write the counts into and resolve with,
   * reused from call to call (a new one is made when it is left out).
   * @param options An abort signal; an aborted receive takes nothing.
   * @returns `result`, or `null` at end of stream, as from `recvIntoSync`.
   *
   * @example Echo in a loop without allocating
   * ```ts
   * import { openFd, OwnedFd, type ReceivedInto, UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * using devNull = openFd("/dev/null");
   * const buffer = new Uint8Array(1024);
   * const fds = new Int32Array(8);
   * const result: ReceivedInto = { bytes: 0, fds: 0, truncated: false, credentials: null };
   * const receiving = (async () => {
   *   let total = 0;
   *   while (await b.recvInto(buffer, fds, result) !== null) {
   *     total += result.fds;
   *     for (let i = 0; i < result.fds; i++) OwnedFd.closeNumber(fds[i]!); // ours to close
   *   }
   *   return total;
   * })();
   * for (let i = 0; i < 3; i++) await a.send("x", { fds: [devNull] });
   * a.close();
   * assertEquals(await receiving, 3);
   * b.close();
   * ```
   */
  recvInto(
    buffer: Uint8Array,
    fds?: Int32Array | null,
    result?: ReceivedInto,
    options?: { signal?: AbortSignal },
  ): Promise<ReceivedInto | null> {
    try {
      this.fd;
      checkReceiveInto(buffer, fds, result, this.#type);
      const signal = checkSignal(options?.signal);
      return recvIntoAsync(
        this.#handle,
        this.#type,
        buffer,
        fds ?? null,
        result ?? { bytes: 0, fds: 0, truncated: false, credentials: null },
        signal,
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Receives one datagram and its sender's address without blocking the
   * thread (dgram sockets).
   *
   * @param options Capacity for data and fds, and an abort signal.
   * @returns The datagram.
   *
   * @example Receive a datagram asynchronously
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const name = { abstract: `fdpass-async-from-${Deno.pid}` };
   * using server = UnixSocket.datagram(name);
   * using client = UnixSocket.datagram();
   * const received = server.recvFrom();
   * client.sendToSync(name, "hi");
   * assertEquals((await received).data.length, 2);
   * ```
   */
  async recvFrom(options?: AsyncReceiveOptions): Promise<ReceivedDatagram> {
    this.fd;
    if (this.#type !== "dgram") {
      throw new TypeError(
        `Cannot use recvFrom() on a ${this.#type} socket: only dgram sockets receive from an address`,
      );
    }
    const [maxBytes, maxFds] = receiveLimits(options, "dgram");
    const signal = checkSignal(options?.signal);
    return (await recvAsync(
      this.#handle,
      "dgram",
      maxBytes,
      maxFds,
      true,
      signal,
      adopt,
    )) as ReceivedDatagram;
  }

  /**
   * Yields received messages until end of stream.
   *
   * @returns An async iterator of messages.
   *
   * @example Read every message
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair("seqpacket");
   * a.sendSync("one");
   * a.sendSync("two");
   * a.close();
   * const seen: string[] = [];
   * for await (const message of b) seen.push(new TextDecoder().decode(message.data));
   * assertEquals(seen, ["one", "two"]);
   * b.close();
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncIterableIterator<ReceivedMessage> {
    for (;;) {
      const message = await this.recv();
      if (message === null) return;
      yield message;
    }
  }

  /**
   * The credentials of the peer process, as recorded by the kernel when
   * the connection was made (`SO_PEERCRED`; `LOCAL_PEERCRED` on BSD).
   *
   * @returns The pid, uid and gid.
   *
   * @example Check the peer is this process
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * assertEquals(a.peerCredentials().pid, Deno.pid);
   * a.close();
   * b.close();
   * ```
   */
  peerCredentials(): PeerCredentials {
    return peerCredentialsOf(this.fd);
  }

  /**
   * Turns on `SO_PASSCRED` (Linux): every received message then carries the
   * sender's credentials in {@linkcode ReceivedMessage.credentials}.
   *
   * @example Receive the sender's pid with each message
   * ```ts ignore
   * import { UnixSocket } from "@fdpass/fdpass";
   *
   * const [a, b] = UnixSocket.pair("seqpacket");
   * b.passCredentials = true;
   * a.sendSync("who am I");
   * console.log(b.recvSync()!.credentials);
   * ```
   */
  set passCredentials(value: boolean) {
    const { layout } = libc();
    if (!layout.features.passCredentials) {
      throw new Deno.errors.NotSupported(`SO_PASSCRED does not exist on ${layout.name}`);
    }
    const c = layout.constants;
    setIntOption(this.fd, c.SOL_SOCKET, c.SO_PASSCRED, value ? 1 : 0);
  }

  /**
   * Shuts down one or both directions: the peer sees end of stream after
   * `"write"`.
   *
   * @param how `"read"`, `"write"` or `"both"`.
   *
   * @example Signal end of stream without closing
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const [a, b] = UnixSocket.pair();
   * a.shutdown("write");
   * assertEquals(b.recvSync(), null);
   * a.close();
   * b.close();
   * ```
   */
  shutdown(how: "read" | "write" | "both" = "both"): void {
    shutdownFd(this.fd, how);
  }

  /**
   * Gives up the socket and returns its fd as an {@linkcode OwnedFd}.
   *
   * @returns The fd, now owned by the caller.
   *
   * @example Send a socket's own fd elsewhere
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   *
   * const [a, b] = UnixSocket.pair();
   * using fd = a.toOwnedFd();
   * b.close();
   * ```
   */
  toOwnedFd(): OwnedFd {
    const fd = this.fd;
    this.#handle.release();
    this.#forgetSocketFile();
    return new OwnedFd(fd);
  }

  /**
   * Hands the socket to `node:net`: the returned `Socket` owns the fd.
   *
   * @returns The `node:net` socket.
   *
   * @example Use a socketpair end with node:net
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   *
   * const [a, b] = UnixSocket.pair();
   * const socket = a.toNetSocket();
   * socket.destroy();
   * b.close();
   * ```
   */
  toNetSocket(): Socket {
    this.fd;
    // Checked before anything moves: a refused socket stays with this object.
    const socket = toNetSocket(this.#handle);
    this.#forgetSocketFile();
    return socket;
  }

  /**
   * Closes the socket (and removes the path a bound datagram socket created).
   * Calling it again does nothing.
   *
   * @example Close twice
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   *
   * const [a, b] = UnixSocket.pair();
   * a.close();
   * a.close();
   * b.close();
   * ```
   */
  close(): void {
    if (this.#handle.closed) return;
    this.#handle.close();
    const file = this.#forgetSocketFile();
    if (file !== null) unlinkIfSame(file);
  }

  #forgetSocketFile(): SocketFile | null {
    const file = this.#socketFile;
    this.#socketFile = null;
    if (file !== null) socketFiles.unregister(this);
    return file;
  }

  /** Closes the socket; lets `using` manage it. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Shows the fd in `console.log` and the REPL. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.#handle.closed
      ? `UnixSocket { type: "${this.#type}", closed }`
      : `UnixSocket { type: "${this.#type}", fd: ${this.#handle.fd} }`;
  }
}

function closedError(): TypeError {
  return new TypeError("Cannot use the socket: it is closed");
}

/** Options for {@linkcode UnixSocket.listen}. */
export interface UnixListenOptions {
  /**
   * The socket type: connection-oriented only.
   *
   * @default {"stream"}
   */
  type?: "stream" | "seqpacket";
  /**
   * The `listen` backlog, from 0 to 2147483647 (the kernel caps it at
   * `net.core.somaxconn`).
   *
   * @default {128}
   */
  backlog?: number;
  /**
   * Replace a stale socket file at the path: one left by a process that
   * died, which refuses connections. A socket somebody still accepts on is
   * `Deno.errors.AddrInUse` naming the path, and a path that is not a
   * socket is never removed.
   *
   * @default {false}
   */
  removeExisting?: boolean;
}

/**
 * A listening Unix socket. It owns its fd, and on close removes the socket
 * file it created (only if that file is still the one it bound).
 *
 * @example Accept a connection and receive an fd
 * ```ts
 * import { openFd, UnixSocket } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const path = Deno.makeTempDirSync() + "/l.sock";
 * using listener = UnixSocket.listen(path);
 * using client = UnixSocket.connectSync(path);
 * using server = listener.acceptSync();
 * using devNull = openFd("/dev/null");
 * client.sendSync("fd", { fds: [devNull] });
 * using received = server.recvSync()!.fds[0]!;
 * assertEquals(received.kind, "character");
 * ```
 */
export class UnixListener {
  readonly #handle: OwnedFd;
  readonly #type: SocketType;
  readonly #address: UnixAddress;
  #socketFile: SocketFile | null;

  private constructor(
    handle: OwnedFd,
    type: SocketType,
    address: UnixAddress,
    socketFile: SocketFile | null,
  ) {
    this.#handle = handle;
    this.#type = type;
    this.#address = address;
    this.#socketFile = socketFile;
    if (socketFile !== null) socketFiles.register(this, socketFile, this);
  }

  /**
   * Binds and listens; see {@linkcode UnixSocket.listen}.
   *
   * @param address A path, or `{ abstract: "name" }` on Linux.
   * @param options Type, backlog and stale-file handling.
   * @returns The listener.
   *
   * @example Listen on a path
   * ```ts
   * import { UnixListener } from "@fdpass/fdpass";
   *
   * const path = Deno.makeTempDirSync() + "/c.sock";
   * using _listener = UnixListener.create(path);
   * ```
   */
  static create(address: UnixAddress, options: UnixListenOptions = {}): UnixListener {
    checkOptions(options);
    const type = options.type ?? "stream";
    if (type !== "stream" && type !== "seqpacket") {
      throw new TypeError(
        `Option "type" must be "stream" or "seqpacket" for a listener, received "${String(type)}"`,
      );
    }
    const backlog = checkBacklog(options.backlog, 128);
    checkAddress(address, "address");
    // Nonblocking, so that an async accept never blocks the thread; the
    // sync accept waits with poll when nothing is queued.
    const handle = new OwnedFd(createUnixSocket(type, true));
    let file: SocketFile | null = null;
    try {
      file = bindAndRemember(handle.fd, address, type, options.removeExisting ?? false);
      listenFd(handle.fd, backlog);
    } catch (error) {
      handle.close();
      if (file !== null) unlinkIfSame(file);
      throw error;
    }
    return new UnixListener(handle, type, address, file);
  }

  /**
   * Adopts a listening Unix socket: one passed by a service manager
   * (`listenFds()`), inherited from a parent, or received in a message. It
   * must be a stream or seqpacket `AF_UNIX` socket on which `listen()` was
   * called; anything else throws a `TypeError` and stays with the caller.
   * The fd is made close-on-exec and nonblocking (`O_NONBLOCK` is shared
   * with every holder of the same socket). Closing the listener does not
   * remove its socket file, which belongs to whoever bound it.
   *
   * @param fd The socket; an {@linkcode OwnedFd} is released into the
   * listener, a number is owned from now on.
   * @returns The listener; its `address` is the bound address the kernel
   * reports.
   *
   * @example Adopt a listener received from another process
   * ```ts
   * import { UnixListener, UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const path = `${Deno.makeTempDirSync()}/adopted.sock`;
   * using original = UnixSocket.listen(path, { type: "seqpacket" });
   * const [a, b] = UnixSocket.pair();
   * a.sendSync("listener", { fds: [original] });
   * using adopted = UnixListener.from(b.recvSync()!.fds[0]!);
   * assertEquals([adopted.type, adopted.address], ["seqpacket", path]);
   *
   * using client = UnixSocket.connectSync(path, { type: "seqpacket" });
   * using server = adopted.acceptSync();
   * client.sendSync("hello");
   * assertEquals(server.recvSync()!.data.length, 5);
   * a.close();
   * b.close();
   * ```
   */
  static from(fd: OwnedFd | number): UnixListener {
    let type: SocketType = "stream";
    let address: UnixAddress = "";
    const handle = adoptFd(fd, (n) => {
      type = socketTypeOf(n, "fd");
      const c = libc().layout.constants;
      if (type === "dgram" || getIntOption(n, c.SOL_SOCKET, c.SO_ACCEPTCONN) === 0) {
        throw new TypeError(
          `Argument "fd" (fd ${n}) is not a listening socket; adopt a connected or datagram socket with UnixSocket.from()`,
        );
      }
      // unix(7): listen() on an unbound socket fails, so a listener has an address.
      address = localAddressOf(n) ?? "";
      // Set before adopting, so that a failure leaves the fd with the caller.
      setCloseOnExec(n, true);
      setNonblocking(n, true);
    });
    return new UnixListener(handle, type, address, null);
  }

  /**
   * The fd number.
   *
   * @throws {TypeError} After {@linkcode UnixListener.close}.
   */
  get fd(): number {
    if (this.#handle.closed) {
      throw new TypeError("Cannot use the listener: it is closed");
    }
    return this.#handle.fd;
  }

  /** The address it was created with. */
  get address(): UnixAddress {
    return this.#address;
  }

  /** The socket type of accepted connections. */
  get type(): SocketType {
    return this.#type;
  }

  /** Whether the listener is closed. */
  get closed(): boolean {
    return this.#handle.closed;
  }

  /**
   * The bound address as the kernel reports it.
   *
   * @example Read the bound path
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * const path = Deno.makeTempDirSync() + "/b.sock";
   * using listener = UnixSocket.listen(path);
   * assertEquals(listener.localAddress, path);
   * ```
   */
  get localAddress(): SocketAddress {
    return localAddressOf(this.fd);
  }

  /**
   * Accepts one connection, blocking until a client connects. The new
   * socket is close-on-exec.
   *
   * @returns The connected socket.
   *
   * @example Accept a client
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   *
   * const path = Deno.makeTempDirSync() + "/a.sock";
   * using listener = UnixSocket.listen(path);
   * using _client = UnixSocket.connectSync(path);
   * using _server = listener.acceptSync();
   * ```
   */
  acceptSync(): UnixSocket {
    return newSocket(new OwnedFd(acceptFd(this.fd)), this.#type);
  }

  /**
   * Accepts one connection without blocking the thread. Closing the
   * listener rejects a pending accept with `Deno.errors.BadResource`.
   *
   * @param options An abort signal.
   * @returns The connected socket.
   *
   * @example Accept asynchronously
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   *
   * const path = Deno.makeTempDirSync() + "/aa.sock";
   * using listener = UnixSocket.listen(path);
   * const accepted = listener.accept();
   * using _client = UnixSocket.connectSync(path);
   * using _server = await accepted;
   * ```
   */
  async accept(options?: { signal?: AbortSignal }): Promise<UnixSocket> {
    this.fd;
    const signal = checkSignal(options?.signal);
    return newSocket(new OwnedFd(await acceptAsync(this.#handle, signal)), this.#type);
  }

  /**
   * Yields connections until the listener is closed.
   *
   * @returns An async iterator of connections.
   *
   * @example Serve connections in a loop
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   *
   * const path = Deno.makeTempDirSync() + "/loop.sock";
   * const listener = UnixSocket.listen(path);
   * const client = UnixSocket.connectSync(path);
   * for await (const conn of listener) {
   *   conn.close();
   *   listener.close();
   * }
   * client.close();
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<UnixSocket> {
    return acceptUntilClosed(this);
  }

  /**
   * Stops listening and removes the socket file it created. Calling it
   * again does nothing.
   *
   * @example Close removes the path
   * ```ts
   * import { UnixSocket } from "@fdpass/fdpass";
   * import { assertThrows } from "@std/assert";
   *
   * const path = Deno.makeTempDirSync() + "/r.sock";
   * const listener = UnixSocket.listen(path);
   * listener.close();
   * assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound);
   * ```
   */
  close(): void {
    if (this.#handle.closed) return;
    this.#handle.close();
    const file = this.#socketFile;
    this.#socketFile = null;
    if (file !== null) {
      socketFiles.unregister(this);
      unlinkIfSame(file);
    }
  }

  /** Closes the listener; lets `using` manage it. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Shows the fd in `console.log` and the REPL. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.#handle.closed
      ? "UnixListener { closed }"
      : `UnixListener { fd: ${this.#handle.fd} }`;
  }
}
