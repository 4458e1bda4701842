/**
 * {@linkcode UnixSocket}: a Unix domain socket that sends and receives data
 * with open file descriptors.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { checkFdNumber, describeValue, throwErrno } from "./errors.ts";
import { lstatPath, OwnedFd } from "./fd.ts";
import type { SocketAddress, UnixAddress } from "./address.ts";
import { type PeerCredentials, peerCredentialsOf } from "./credentials.ts";
import type { MessageCredentials } from "./message.ts";
import {
  bindFd,
  connectFd,
  createSocketFd,
  localAddressOf,
  remoteAddressOf,
  setIntOption,
  socketPairFds,
  socketTypeOf,
} from "./socket_fd.ts";
import {
  collectFds,
  type FdLike,
  receiveLimits,
  type ReceiveOptions,
  recvOnFd,
  sendOnFd,
  type SocketType,
} from "./transfer.ts";
import { UnixListener, type UnixListenOptions } from "./unix_listener.ts";
import { connectAsync, recvAsync, sendAsync } from "./async_ops.ts";
import { startSend } from "./transfer.ts";
import type { Socket } from "node:net";

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

/** A received message. */
export interface ReceivedMessage {
  /** The data bytes. */
  data: Uint8Array;
  /** The received fds, owned by the caller and close-on-exec. */
  fds: OwnedFd[];
  /**
   * Whether a datagram or record was cut to `maxBytes` (`MSG_TRUNC`); the
   * rest of it is lost. Always `false` on a stream.
   */
  truncated: boolean;
  /** The sender's `SCM_CREDENTIALS`, when {@linkcode UnixSocket.passCredentials} is on (Linux). */
  credentials: MessageCredentials | null;
}

/** A received datagram, with the sender's address. */
export interface ReceivedDatagram extends ReceivedMessage {
  /** The sender's address, or `null` when the sender is unbound. */
  address: SocketAddress;
}

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
  #unlinkPath: { path: string; dev: bigint; ino: bigint } | null = null;
  #sending: Promise<number> | null = null;
  #broken = false;

  private constructor(handle: OwnedFd, type: SocketType) {
    this.#handle = handle;
    this.#type = type;
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
    const [a, b] = socketPairFds(type);
    return [new UnixSocket(a, type), new UnixSocket(b, type)];
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
    const type = options.type ?? "stream";
    const handle = createSocketFd(type);
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
    const type = options.type ?? "stream";
    return new UnixSocket(await connectAsync(address, type, options.signal), type);
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
    const handle = createSocketFd("dgram");
    const socket = new UnixSocket(handle, "dgram");
    if (address !== undefined) {
      try {
        socket.#unlinkPath = bindAndRemember(handle.fd, address, options.removeExisting ?? false);
      } catch (error) {
        handle.close();
        throw error;
      }
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
    if (typeof fd !== "number" && !(fd instanceof OwnedFd)) {
      throw new TypeError(
        `Argument "fd" must be an OwnedFd or an fd number, received ${describeValue(fd)}`,
      );
    }
    const number = typeof fd === "number" ? checkFdNumber(fd, "fd") : fd.fd;
    const type = socketTypeOf(number, "fd");
    const handle = typeof fd === "number" ? new OwnedFd(fd) : new OwnedFd(fd.release());
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
    return sendOnFd(fd, this.#type, data, collectFds(options?.fds), null);
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
    return sendOnFd(fd, "dgram", data, collectFds(options?.fds), address);
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
    return recvOnFd(fd, this.#type, maxBytes, maxFds, false);
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
    return recvOnFd(fd, "dgram", maxBytes, maxFds, true) as ReceivedDatagram;
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
      const fd = this.fd;
      if (this.#broken) throw brokenError();
      const out = startSend(this.#type, data, [...collectFds(options?.fds)], null, true);
      return this.#queueSend(fd, out, options?.signal);
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
      const fd = this.fd;
      if (this.#type !== "dgram") {
        throw new TypeError(
          `Cannot use sendTo() on a ${this.#type} socket: only dgram sockets send to an address`,
        );
      }
      const out = startSend("dgram", data, [...collectFds(options?.fds)], address, true);
      return this.#queueSend(fd, out, options?.signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #queueSend(
    fd: number,
    out: Parameters<typeof sendAsync>[1],
    signal?: AbortSignal,
  ): Promise<number> {
    const run = async (): Promise<number> => {
      if (this.#broken) throw brokenError();
      try {
        return await sendAsync(fd, out, signal);
      } catch (error) {
        // A stream message that is partly out cannot be taken back.
        if (this.#type === "stream" && out.sent > 0 && !out.done) this.#broken = true;
        throw error;
      }
    };
    const previous = this.#sending;
    const current: Promise<number> = previous === null ? run() : previous.then(run, run);
    this.#sending = current;
    const clear = () => {
      if (this.#sending === current) this.#sending = null;
    };
    current.then(clear, clear);
    return current;
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
  async recv(options?: AsyncReceiveOptions): Promise<ReceivedMessage | null> {
    const fd = this.fd;
    const [maxBytes, maxFds] = receiveLimits(options, this.#type);
    return await recvAsync(fd, this.#type, maxBytes, maxFds, false, options?.signal);
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
    const fd = this.fd;
    if (this.#type !== "dgram") {
      throw new TypeError(
        `Cannot use recvFrom() on a ${this.#type} socket: only dgram sockets receive from an address`,
      );
    }
    const [maxBytes, maxFds] = receiveLimits(options, "dgram");
    return (await recvAsync(
      fd,
      "dgram",
      maxBytes,
      maxFds,
      true,
      options?.signal,
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
    const c = libc().layout.constants;
    if (c.SO_PASSCRED === 0) {
      throw new Deno.errors.NotSupported("SO_PASSCRED exists only on Linux");
    }
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
    const c = libc().layout.constants;
    const value = how === "read"
      ? c.SHUT_RD
      : how === "write"
      ? c.SHUT_WR
      : how === "both"
      ? c.SHUT_RDWR
      : -1;
    if (value < 0) {
      throw new TypeError(
        `Argument "how" must be "read", "write" or "both", received "${String(how)}"`,
      );
    }
    if (libc().lib.shutdown(this.fd, value) !== 0) throwErrno("shutdown");
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
    this.#unlinkPath = null;
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
    return this.toOwnedFd().toNetSocket();
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
    const unlink = this.#unlinkPath;
    this.#unlinkPath = null;
    if (unlink !== null) unlinkIfSame(unlink);
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

function brokenError(): Error {
  return new Deno.errors.BrokenPipe(
    "Cannot send: an aborted send left a partial message on this stream socket",
  );
}

/**
 * Binds `fd` to `address` and, for a path, remembers the socket file's
 * identity so that close removes it only if it is still ours.
 *
 * @param fd The socket.
 * @param address The address.
 * @param removeExisting Whether to remove an existing socket file first.
 * @returns What to unlink on close, or `null` for abstract names.
 */
export function bindAndRemember(
  fd: number,
  address: UnixAddress,
  removeExisting: boolean,
): { path: string; dev: bigint; ino: bigint } | null {
  if (removeExisting && typeof address === "string") {
    const existing = lstatPath(address);
    if (existing !== null) {
      if (existing.kind !== "socket") {
        throw new TypeError(
          `Cannot remove "${address}" before binding: it is a ${existing.kind}, not a socket`,
        );
      }
      unlinkPath(address);
    }
  }
  bindFd(fd, address);
  if (typeof address !== "string") return null;
  const stat = lstatPath(address);
  return stat === null ? null : { path: address, dev: stat.dev, ino: stat.ino };
}

function unlinkPath(path: string): void {
  const bytes = new TextEncoder().encode(path + "\0");
  const { lib, layout, errno } = libc();
  if (lib.unlink(bytes) !== 0 && errno[0] !== layout.errno.ENOENT) {
    throwErrno("unlink", path);
  }
}

/**
 * Removes a socket file if it is still the one this process bound.
 *
 * @param entry The path and identity recorded at bind time.
 */
export function unlinkIfSame(entry: { path: string; dev: bigint; ino: bigint }): void {
  const stat = lstatPath(entry.path);
  if (stat !== null && stat.dev === entry.dev && stat.ino === entry.ino) {
    unlinkPath(entry.path);
  }
}
