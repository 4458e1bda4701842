/**
 * {@linkcode listenTcp} and {@linkcode TcpListener}: a listening TCP socket
 * (IPv4 or IPv6) as an owned fd, for a parent that accepts connections and
 * hands them to workers, or that hands the live listener itself to another
 * process (zero-downtime restarts).
 *
 * Deno's own listeners (`Deno.listen`, `node:net`) do not expose their fd,
 * so a listener that is to be passed on is created here, through libc.
 * Connections come out as {@linkcode OwnedFd}s, ready to send over a Unix
 * socket or to wrap with `toNetSocket()`; the listener itself can be served
 * with `node:http`/`node:net` `server.listen({ fd })` in whichever process
 * holds it. There is no DNS: the address is an IP literal or `"localhost"`.
 *
 * @module
 */

import { acceptUntilClosed } from "../async/accept_loop.ts";
import { libc } from "../../ffi/libc.ts";
import { checkSignal, describeValue } from "../core/checks.ts";
import { errnoError } from "../core/errors.ts";
import { setCloseOnExec, setNonblocking } from "../core/fd_ops.ts";
import { check } from "../core/syscall.ts";
import {
  acceptFd,
  createSocket,
  getIntOption,
  listenFd,
  setIntOption,
} from "../core/socket_calls.ts";
import { acceptAsync } from "../async/drivers.ts";
import { adoptFd, OwnedFd } from "../owned_fd.ts";

/** Options for {@linkcode listenTcp}. */
export interface TcpListenOptions {
  /**
   * The address to bind: an IPv4 dotted quad (`"0.0.0.0"` listens on every
   * interface), an IPv6 literal such as `"::1"` or `"::"` (a link-local one
   * may carry a numeric scope id, `"fe80::1%2"`), or `"localhost"`, which
   * means `127.0.0.1`. Names are not looked up.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The port; 0 lets the kernel pick a free one (see the returned `port`).
   *
   * @default {0}
   */
  port?: number;
  /**
   * The length of the queue of connections not yet accepted
   * (`listen(2)`; the kernel caps it at `net.core.somaxconn`).
   *
   * @default {511}
   */
  backlog?: number;
  /**
   * Sets `SO_REUSEPORT`, so that several sockets (in this process or
   * others, of the same user) bind the same address and port. Linux then
   * spreads new connections over them; macOS and FreeBSD give them all to
   * the most recent one.
   *
   * @default {false}
   */
  reusePort?: boolean;
  /**
   * For an IPv6 address: sets `IPV6_V6ONLY`, so that a listener on `"::"`
   * takes IPv6 connections only. Off, it takes IPv4 ones too, as
   * `::ffff:a.b.c.d` (the same default as `node:net`, whatever the
   * system's default is). Ignored for an IPv4 address.
   *
   * @default {false}
   */
  ipv6Only?: boolean;
}

/** A listening TCP socket made by {@linkcode listenTcp}. */
export interface TcpListenerFd {
  /** The listening socket; close it, pass it on, or serve it with `server.listen({ fd })`. */
  readonly handle: OwnedFd;
  /** The bound address. */
  readonly hostname: string;
  /** The bound port (the kernel's pick when `port` was 0). */
  readonly port: number;
}

/** An IP address as the kernel takes it. */
interface InetAddress {
  /** `AF_INET` or `AF_INET6`. */
  readonly family: number;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
  /** `sin6_scope_id`; 0 for IPv4. */
  readonly scopeId: number;
}

/** Room for a `sockaddr_in6` on every platform, and for any address getsockname returns. */
const SOCKADDR_CAPACITY = 128;

function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return null;
    bytes[i] = Number(part);
  }
  return bytes;
}

function parseGroups(text: string): number[] | null {
  if (text === "") return [];
  const groups: number[] = [];
  for (const group of text.split(":")) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
    groups.push(parseInt(group, 16));
  }
  return groups;
}

/**
 * Parses an IPv6 literal without a zone (RFC 4291 section 2.2): eight
 * groups, `::` for one run of zero groups, and an IPv4 tail.
 */
function parseIpv6(text: string): Uint8Array | null {
  let ipv4Tail: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(":");
  if (lastColon < 0) return null;
  if (text.includes(".", lastColon)) {
    ipv4Tail = parseIpv4(text.slice(lastColon + 1));
    if (ipv4Tail === null) return null;
    // The tail stands for the last two groups.
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = parseGroups(halves[0]!);
  if (head === null) return null;
  let groups = head;
  if (halves.length === 2) {
    const tail = parseGroups(halves[1]!);
    if (tail === null || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  if (groups.length !== 8) return null;
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  groups.forEach((group, i) => view.setUint16(i * 2, group, false));
  if (ipv4Tail !== null) bytes.set(ipv4Tail, 12);
  return bytes;
}

function hostnameError(hostname: unknown, detail = ""): TypeError {
  return new TypeError(
    `Option "hostname" must be an IP address such as "127.0.0.1" or "::1", or "localhost" (names are not looked up), received ${
      describeValue(hostname)
    }${detail}`,
  );
}

/**
 * The address a `hostname` option names.
 *
 * @param hostname The option.
 * @returns The family, bytes and scope id.
 */
function resolveHostname(hostname: unknown): InetAddress {
  const c = libc().layout.constants;
  if (typeof hostname !== "string") throw hostnameError(hostname);
  if (hostname === "localhost") {
    return { family: c.AF_INET, bytes: new Uint8Array([127, 0, 0, 1]), scopeId: 0 };
  }
  const ipv4 = parseIpv4(hostname);
  if (ipv4 !== null) return { family: c.AF_INET, bytes: ipv4, scopeId: 0 };
  const percent = hostname.indexOf("%");
  const bytes = parseIpv6(percent < 0 ? hostname : hostname.slice(0, percent));
  if (bytes === null) throw hostnameError(hostname);
  let scopeId = 0;
  if (percent >= 0) {
    const zone = hostname.slice(percent + 1);
    if (!/^(0|[1-9][0-9]{0,9})$/.test(zone) || Number(zone) > 0xffffffff) {
      throw hostnameError(hostname, `: the zone must be a numeric scope id such as "%2"`);
    }
    scopeId = Number(zone);
  }
  return { family: c.AF_INET6, bytes, scopeId };
}

/** RFC 5952 text for an IPv6 address: lower case, the longest zero run as `::`. */
function formatIpv6(bytes: Uint8Array, scopeId: number): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, 16);
  const groups = Array.from({ length: 8 }, (_, i) => view.getUint16(i * 2, false));
  const zone = scopeId === 0 ? "" : `%${scopeId}`;
  // ::ffff:a.b.c.d, an IPv4 client of a dual-stack listener (RFC 5952 section 5).
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes.subarray(12, 16).join(".")}${zone}`;
  }
  let bestStart = -1;
  let bestLength = 1; // A single zero group is not shortened.
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":") + zone;
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}${zone}`;
}

/**
 * Writes a `sockaddr_in` or `sockaddr_in6`. Its family field sits where
 * `sockaddr_un`'s does: a u16 on Linux, `sin_len` and a u8 on BSD.
 *
 * @returns The buffer and the `socklen_t` to pass with it.
 */
function encodeSockaddr(address: InetAddress, port: number): [Uint8Array, number] {
  const layout = libc().layout;
  const s = layout.sockaddrUn;
  const ipv6 = address.family === layout.constants.AF_INET6;
  const size = ipv6 ? layout.sockaddrIn6.size : layout.sockaddrIn.size;
  const buffer = new Uint8Array(SOCKADDR_CAPACITY);
  const view = new DataView(buffer.buffer);
  if (s.lenOffset >= 0) buffer[s.lenOffset] = size;
  if (s.familySize === 2) view.setUint16(s.familyOffset, address.family, true);
  else buffer[s.familyOffset] = address.family;
  // ip(7), ipv6(7): the port is big-endian, the scope id in host order.
  if (ipv6) {
    const in6 = layout.sockaddrIn6;
    view.setUint16(in6.port, port, false);
    buffer.set(address.bytes, in6.address);
    view.setUint32(in6.scopeId, address.scopeId, true);
  } else {
    view.setUint16(layout.sockaddrIn.port, port, false);
    buffer.set(address.bytes, layout.sockaddrIn.address);
  }
  return [buffer, size];
}

/** The address family of a socket address buffer. */
function familyOf(buffer: Uint8Array): number {
  const s = libc().layout.sockaddrUn;
  return s.familySize === 2
    ? buffer[s.familyOffset]! | (buffer[s.familyOffset + 1]! << 8)
    : buffer[s.familyOffset]!;
}

/**
 * `getsockname` of a socket.
 *
 * @returns The address buffer.
 */
function sockname(fd: number): Uint8Array {
  const buffer = new Uint8Array(SOCKADDR_CAPACITY);
  const length = new Uint32Array([SOCKADDR_CAPACITY]);
  check(() => libc().lib.getsockname(fd, buffer, length), "getsockname");
  return buffer;
}

/**
 * The bound address and port of an `AF_INET` or `AF_INET6` socket.
 *
 * @returns The address as text and the port.
 */
function boundAddress(fd: number): { hostname: string; port: number } {
  const layout = libc().layout;
  const buffer = sockname(fd);
  const view = new DataView(buffer.buffer);
  if (familyOf(buffer) === layout.constants.AF_INET6) {
    const in6 = layout.sockaddrIn6;
    return {
      hostname: formatIpv6(
        buffer.subarray(in6.address, in6.address + 16),
        view.getUint32(in6.scopeId, true),
      ),
      port: view.getUint16(in6.port, false),
    };
  }
  const inet = layout.sockaddrIn;
  return {
    hostname: buffer.subarray(inet.address, inet.address + 4).join("."),
    port: view.getUint16(inet.port, false),
  };
}

/**
 * Throws a `TypeError` unless `fd` is a listening TCP socket.
 *
 * @param fd The fd.
 */
function checkTcpListener(fd: number): void {
  const { lib, layout, errno } = libc();
  const c = layout.constants;
  const type = new Int32Array(1);
  const length = new Uint32Array([4]);
  if (lib.getsockopt(fd, c.SOL_SOCKET, c.SO_TYPE, type, length) !== 0) {
    if (errno[0] === layout.errno.ENOTSOCK) {
      throw new TypeError(`Argument "fd" (fd ${fd}) is not a socket`);
    }
    throw errnoError(errno[0]!, "getsockopt");
  }
  const family = familyOf(sockname(fd));
  if (family !== c.AF_INET && family !== c.AF_INET6) {
    throw new TypeError(
      family === c.AF_UNIX
        ? `Argument "fd" (fd ${fd}) is a Unix socket, not a TCP socket: adopt it with UnixSocket.from()`
        : `Argument "fd" (fd ${fd}) is not a TCP socket: its address family is ${family}`,
    );
  }
  if (type[0] !== c.SOCK_STREAM) {
    throw new TypeError(
      `Argument "fd" (fd ${fd}) is not a TCP socket: its type is ${type[0]}, not SOCK_STREAM`,
    );
  }
  // socket(7): SO_ACCEPTCONN reads non-zero once listen() was called.
  if (getIntOption(fd, c.SOL_SOCKET, c.SO_ACCEPTCONN) === 0) {
    throw new TypeError(
      `Argument "fd" (fd ${fd}) is a TCP socket that is not listening (a connection, or not yet listen()ed)`,
    );
  }
}

function checkBooleanOption(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    throw new TypeError(`Option "${name}" must be a boolean, received ${describeValue(value)}`);
  }
  return value;
}

// Set by TcpListener's static block: listenTcp's access to the private constructor.
let createListener: (handle: OwnedFd, hostname: string, port: number) => TcpListener;

/**
 * A listening TCP socket, IPv4 or IPv6: accepts connections as
 * {@linkcode OwnedFd}s (blocking, close-on-exec), to send to another
 * process over a Unix socket or to wrap with `toNetSocket()`. The listening
 * fd itself is nonblocking and close-on-exec; it can be passed on whole
 * (see {@linkcode TcpListener.handle}) and served with `server.listen({ fd })`.
 *
 * Make one with {@linkcode listenTcp}, or adopt an inherited one with
 * {@linkcode TcpListener.from}.
 */
export class TcpListener implements TcpListenerFd {
  readonly #handle: OwnedFd;
  readonly #hostname: string;
  readonly #port: number;

  private constructor(handle: OwnedFd, hostname: string, port: number) {
    this.#handle = handle;
    this.#hostname = hostname;
    this.#port = port;
  }

  static {
    createListener = (handle, hostname, port) => new TcpListener(handle, hostname, port);
  }

  /**
   * Adopts a listening TCP socket: one inherited from a parent or a
   * service manager, or received over a Unix socket. It must be an
   * `AF_INET` or `AF_INET6` `SOCK_STREAM` socket on which `listen()` was
   * called; anything else throws a `TypeError` and stays with the caller.
   * The fd is made close-on-exec and nonblocking (`O_NONBLOCK` is shared
   * with every holder of the same socket; `node:net` servers set it
   * anyway).
   *
   * @param fd The socket; an {@linkcode OwnedFd} is released into the
   * listener, a number is owned from now on.
   * @returns The listener, with the bound address and port.
   *
   * @example Adopt a listener received from another process
   * ```ts
   * import { listenTcp, TcpListener, UnixSocket } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * using original = listenTcp();
   * const [a, b] = UnixSocket.pair();
   * a.sendSync("listener", { fds: [original.handle] });
   * using adopted = TcpListener.from(b.recvSync()!.fds[0]!);
   * assertEquals(adopted.port, original.port);
   * a.close();
   * b.close();
   * ```
   */
  static from(fd: OwnedFd | number): TcpListener {
    let bound = { hostname: "", port: 0 };
    const handle = adoptFd(fd, (n) => {
      checkTcpListener(n);
      // Set before adopting, so that a failure leaves the fd with the caller.
      setCloseOnExec(n, true);
      setNonblocking(n, true);
      bound = boundAddress(n);
    });
    return new TcpListener(handle, bound.hostname, bound.port);
  }

  /**
   * The listening socket. Releasing it (`handle.release()`, for example to
   * give it to `server.listen({ fd })`) or closing it closes the listener.
   */
  get handle(): OwnedFd {
    return this.#handle;
  }

  /**
   * The fd number.
   *
   * @throws {TypeError} After {@linkcode TcpListener.close}.
   */
  get fd(): number {
    if (this.#handle.closed) {
      throw new TypeError("Cannot use the listener: it is closed");
    }
    return this.#handle.fd;
  }

  /** The bound address: `"127.0.0.1"` for `"localhost"`, IPv6 in RFC 5952 form. */
  get hostname(): string {
    return this.#hostname;
  }

  /** The bound port (the kernel's pick when `port` was 0). */
  get port(): number {
    return this.#port;
  }

  /** Whether the listener is closed (or its handle released). */
  get closed(): boolean {
    return this.#handle.closed;
  }

  /**
   * Accepts one connection, blocking the thread until a client connects.
   *
   * @returns The connection: blocking, close-on-exec, owned by the caller.
   *
   * @example Accept a client
   * ```ts
   * import { listenTcp } from "@fdpass/fdpass";
   * import { assertEquals } from "@std/assert";
   *
   * using listener = listenTcp();
   * // A client in another process (connecting needs --allow-net there).
   * const client = new Deno.Command(Deno.execPath(), {
   *   args: ["eval", `(await Deno.connect({ port: ${listener.port} })).close()`],
   * }).spawn();
   * using conn = listener.acceptSync();
   * assertEquals(conn.kind, "socket");
   * await client.status;
   * ```
   */
  acceptSync(): OwnedFd {
    return new OwnedFd(acceptFd(this.fd));
  }

  /**
   * Accepts one connection without blocking the thread. Closing the
   * listener rejects a pending accept with `Deno.errors.BadResource`.
   *
   * @param options An abort signal.
   * @returns The connection: blocking, close-on-exec, owned by the caller.
   *
   * @example Accept a client and hand it to node:net
   * ```ts
   * import { listenTcp } from "@fdpass/fdpass";
   *
   * using listener = listenTcp({ hostname: "localhost" });
   * const client = new Deno.Command(Deno.execPath(), {
   *   args: ["eval", `(await Deno.connect({ port: ${listener.port} })).close()`],
   * }).spawn();
   * const conn = await listener.accept({ signal: AbortSignal.timeout(10_000) });
   * const socket = conn.toNetSocket();
   * await new Promise((resolve) => socket.once("end", resolve).resume());
   * socket.destroy();
   * await client.status;
   * ```
   */
  async accept(options?: { signal?: AbortSignal }): Promise<OwnedFd> {
    this.fd;
    const signal = checkSignal(options?.signal);
    return new OwnedFd(await acceptAsync(this.#handle, signal));
  }

  /**
   * Yields connections until the listener is closed.
   *
   * @returns An async iterator of connections, each owned by the caller.
   *
   * @example Serve connections in a loop
   * ```ts
   * import { listenTcp } from "@fdpass/fdpass";
   *
   * const listener = listenTcp();
   * const client = new Deno.Command(Deno.execPath(), {
   *   args: ["eval", `(await Deno.connect({ port: ${listener.port} })).close()`],
   * }).spawn();
   * for await (const conn of listener) {
   *   conn.close();
   *   listener.close(); // Ends the loop.
   * }
   * await client.status;
   * ```
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<OwnedFd> {
    return acceptUntilClosed(this);
  }

  /**
   * Stops listening: closes the socket. Calling it again does nothing.
   *
   * @example Close a listener
   * ```ts
   * import { listenTcp } from "@fdpass/fdpass";
   * import { assert } from "@std/assert";
   *
   * const listener = listenTcp();
   * listener.close();
   * assert(listener.closed);
   * ```
   */
  close(): void {
    this.#handle.close();
  }

  /** Closes the listener; lets `using` manage it. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Shows the fd and address in `console.log` and the REPL. */
  [Symbol.for("Deno.customInspect")](): string {
    if (this.#handle.closed) return "TcpListener { closed }";
    const host = this.#hostname.includes(":") ? `[${this.#hostname}]` : this.#hostname;
    return `TcpListener { fd: ${this.#handle.fd}, address: ${host}:${this.#port} }`;
  }
}

/**
 * Creates a listening TCP socket (`socket`, `SO_REUSEADDR`, `bind`,
 * `listen`), close-on-exec and nonblocking. Accept connections from it
 * ({@linkcode TcpListener.accept}, `for await`) to pass them on, or serve
 * it whole with `node:http` `server.listen({ fd: listener.handle.release() })`,
 * here or in another process it was sent to: processes that hold the same
 * listener accept from the same queue, so no connection is refused while
 * one hands over to another.
 *
 * @param options Address, port, backlog, `SO_REUSEPORT` and `IPV6_V6ONLY`.
 * @returns The listener, which also has the owned socket as `handle` and
 * the port it is bound to.
 *
 * @example Serve HTTP on a listener made here
 * ```ts
 * import { listenTcp } from "@fdpass/fdpass";
 * import { createServer } from "node:http";
 * import { assert } from "@std/assert";
 *
 * const { handle, port } = listenTcp({ hostname: "127.0.0.1", port: 0 });
 * assert(port > 0);
 * const server = createServer((_request, response) => response.end("ok"));
 * // node:http takes the fd over and closes it in server.close().
 * await new Promise<void>((resolve) => server.listen({ fd: handle.release() }, resolve));
 * await new Promise((resolve) => server.close(resolve));
 * ```
 *
 * @example Listen on the IPv6 loopback, with SO_REUSEPORT
 * ```ts
 * import { ErrnoError, listenTcp } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * try {
 *   using first = listenTcp({ hostname: "::1", reusePort: true });
 *   using second = listenTcp({ hostname: "::1", port: first.port, reusePort: true });
 *   assertEquals(second.hostname, "::1");
 * } catch (error) {
 *   // A machine without IPv6 has no ::1 to bind.
 *   const noIpv6 = error instanceof ErrnoError &&
 *     (error.code === "EADDRNOTAVAIL" || error.code === "EAFNOSUPPORT");
 *   if (!noIpv6) throw error;
 * }
 * ```
 */
export function listenTcp(options: TcpListenOptions = {}): TcpListener {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Argument "options" must be an object, received ${describeValue(options)}`);
  }
  const address = resolveHostname(options.hostname ?? "127.0.0.1");
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Option "port" must be an integer from 0 to 65535, received ${port}`);
  }
  const backlog = options.backlog ?? 511;
  if (!Number.isInteger(backlog) || backlog < 1 || backlog > 65535) {
    throw new RangeError(
      `Option "backlog" must be an integer from 1 to 65535, received ${backlog}`,
    );
  }
  const reusePort = checkBooleanOption(options.reusePort, "reusePort");
  const ipv6Only = checkBooleanOption(options.ipv6Only, "ipv6Only");
  const { lib, layout } = libc();
  const c = layout.constants;
  const ipv6 = address.family === c.AF_INET6;
  // Nonblocking, so that an async accept never blocks the thread; the sync
  // accept waits with poll when nothing is queued.
  const handle = new OwnedFd(createSocket(address.family, c.SOCK_STREAM, true));
  try {
    const fd = handle.fd;
    setIntOption(fd, c.SOL_SOCKET, c.SO_REUSEADDR, 1);
    if (reusePort) setIntOption(fd, c.SOL_SOCKET, c.SO_REUSEPORT, 1);
    // Set either way, as libuv does: the system default differs (Linux
    // net.ipv6.bindv6only = 0, FreeBSD net.inet6.ip6.v6only = 1).
    if (ipv6) setIntOption(fd, c.IPPROTO_IPV6, c.IPV6_V6ONLY, ipv6Only ? 1 : 0);
    const [sockaddr, size] = encodeSockaddr(address, port);
    const text = ipv6 ? formatIpv6(address.bytes, address.scopeId) : address.bytes.join(".");
    const where = ipv6 ? `[${text}]:${port}` : `${text}:${port}`;
    check(() => lib.bind(fd, sockaddr, size), "bind", where);
    listenFd(fd, backlog);
    const bound = boundAddress(fd);
    return createListener(handle, bound.hostname, bound.port);
  } catch (error) {
    handle.close();
    throw error;
  }
}
