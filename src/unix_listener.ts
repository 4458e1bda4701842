/**
 * {@linkcode UnixListener}: a listening Unix socket.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { throwErrno } from "./errors.ts";
import type { OwnedFd } from "./fd.ts";
import type { SocketAddress, UnixAddress } from "./address.ts";
import { acceptFd, createSocketFd, localAddressOf } from "./socket_fd.ts";
import { acceptAsync } from "./async_ops.ts";
import type { SocketType } from "./transfer.ts";
import { bindAndRemember, UnixSocket, unlinkIfSame } from "./unix_socket.ts";

/** Options for {@linkcode UnixSocket.listen}. */
export interface UnixListenOptions {
  /**
   * The socket type: connection-oriented only.
   *
   * @default {"stream"}
   */
  type?: "stream" | "seqpacket";
  /**
   * The `listen` backlog.
   *
   * @default {128}
   */
  backlog?: number;
  /**
   * Remove an existing socket file at the path first (a stale socket left
   * by a process that died). A path that is not a socket is never removed.
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
  #unlink: { path: string; dev: bigint; ino: bigint } | null;

  private constructor(
    handle: OwnedFd,
    type: SocketType,
    address: UnixAddress,
    unlink: { path: string; dev: bigint; ino: bigint } | null,
  ) {
    this.#handle = handle;
    this.#type = type;
    this.#address = address;
    this.#unlink = unlink;
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
    const type = options.type ?? "stream";
    if (type !== "stream" && type !== "seqpacket") {
      throw new TypeError(
        `Option "type" must be "stream" or "seqpacket" for a listener, received "${String(type)}"`,
      );
    }
    const backlog = options.backlog ?? 128;
    if (!Number.isInteger(backlog) || backlog < 0) {
      throw new RangeError(
        `Option "backlog" must be a non-negative integer, received ${backlog}`,
      );
    }
    // Nonblocking, so that an async accept never blocks the thread; the
    // sync accept waits with poll when nothing is queued.
    const handle = createSocketFd(type, true);
    let unlink: { path: string; dev: bigint; ino: bigint } | null = null;
    try {
      unlink = bindAndRemember(handle.fd, address, options.removeExisting ?? false);
      if (libc().lib.listen(handle.fd, backlog) !== 0) throwErrno("listen");
    } catch (error) {
      handle.close();
      if (unlink !== null) unlinkIfSame(unlink);
      throw error;
    }
    return new UnixListener(handle, type, address, unlink);
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
    return UnixSocket.from(acceptFd(this.fd));
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
    return UnixSocket.from(await acceptAsync(this.fd, options?.signal));
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
  async *[Symbol.asyncIterator](): AsyncIterableIterator<UnixSocket> {
    while (!this.closed) {
      let conn: UnixSocket;
      try {
        conn = await this.accept();
      } catch (error) {
        if (this.closed) return;
        throw error;
      }
      yield conn;
    }
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
    const unlink = this.#unlink;
    this.#unlink = null;
    if (unlink !== null) unlinkIfSame(unlink);
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
