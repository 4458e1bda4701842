/**
 * {@linkcode listenTcp}: a listening IPv4 TCP socket as an owned fd, for
 * handing a live listener to another process (zero-downtime restarts).
 *
 * Deno's own listeners (`Deno.listen`, `node:net`) do not expose their fd,
 * so a listener that is to be passed on is created here, through libc, and
 * served with `node:http`/`node:net` `server.listen({ fd })` in whichever
 * process holds it. fdpass otherwise deals only with Unix sockets; this is
 * the one TCP call, kept small.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { describeValue } from "../core/checks.ts";
import { check } from "../core/syscall.ts";
import { createSocket, listenFd, setIntOption } from "../core/socket_calls.ts";
import { OwnedFd } from "../owned_fd.ts";

/** Options for {@linkcode listenTcp}. */
export interface TcpListenOptions {
  /**
   * The IPv4 address to bind, as a dotted quad. `"0.0.0.0"` listens on
   * every interface.
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

function parseIpv4(hostname: string): Uint8Array | null {
  const parts = hostname.split(".");
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return null;
    bytes[i] = Number(part);
  }
  return bytes;
}

/**
 * Creates a listening IPv4 TCP socket (`socket`, `SO_REUSEADDR`, `bind`,
 * `listen`), close-on-exec. Serve it with `node:http`
 * `server.listen({ fd: listener.handle.fd })`, or send it to another
 * process, which serves it the same way: both processes then accept from
 * the same queue, so no connection is refused while one hands over to the
 * other.
 *
 * @param options Address, port and backlog.
 * @returns The owned socket and the port it is bound to.
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
 */
export function listenTcp(options: TcpListenOptions = {}): TcpListenerFd {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Argument "options" must be an object, received ${describeValue(options)}`);
  }
  const hostname = options.hostname ?? "127.0.0.1";
  const address = typeof hostname === "string" ? parseIpv4(hostname) : null;
  if (address === null) {
    throw new TypeError(
      `Option "hostname" must be an IPv4 address such as "127.0.0.1", received ${
        describeValue(hostname)
      }`,
    );
  }
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
  const { lib, layout } = libc();
  const c = layout.constants;
  const handle = new OwnedFd(createSocket(c.AF_INET, c.SOCK_STREAM, false));
  try {
    const fd = handle.fd;
    setIntOption(fd, c.SOL_SOCKET, c.SO_REUSEADDR, 1);
    // sockaddr_in: the family field is laid out as in sockaddr_un (u16 on
    // Linux, sin_len + u8 on BSD); the port is big-endian (ip(7)).
    const inet = layout.sockaddrIn;
    const sockaddr = new Uint8Array(inet.size);
    const s = layout.sockaddrUn;
    if (s.lenOffset >= 0) sockaddr[s.lenOffset] = inet.size;
    sockaddr[s.familyOffset] = c.AF_INET; // Low byte of a little-endian u16 on Linux.
    new DataView(sockaddr.buffer).setUint16(inet.port, port, false);
    sockaddr.set(address, inet.address);
    check(() => lib.bind(fd, sockaddr, inet.size), "bind", `${hostname}:${port}`);
    listenFd(fd, backlog);
    const length = new Uint32Array([inet.size]);
    check(() => lib.getsockname(fd, sockaddr, length), "getsockname");
    const bound = new DataView(sockaddr.buffer).getUint16(inet.port, false);
    return { handle, hostname, port: bound };
  } catch (error) {
    handle.close();
    throw error;
  }
}
