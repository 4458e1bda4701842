/**
 * Unix socket addresses: filesystem paths and Linux abstract names, encoded
 * to and decoded from `struct sockaddr_un`.
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { describeValue } from "./errors.ts";

/**
 * Where a Unix socket lives: a filesystem path, or a name in the Linux
 * abstract namespace (no file; gone when the last socket closes).
 */
export type UnixAddress = string | { readonly abstract: string };

/** An address read back from the kernel; `null` for an unnamed socket. */
export type SocketAddress = string | { readonly abstract: string } | null;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Room for any `sockaddr_un` a kernel returns (Linux may report 111 bytes). */
export const SOCKADDR_CAPACITY = 128;

/**
 * Writes `address` as a `sockaddr_un` into `target` (zero-filled first).
 *
 * @param address The address.
 * @param target At least {@linkcode SOCKADDR_CAPACITY} bytes.
 * @param name The argument name for errors.
 * @returns The `socklen_t` to pass with it.
 */
export function encodeAddress(
  address: UnixAddress,
  target: Uint8Array,
  name = "address",
): number {
  const s = libc().layout.sockaddrUn;
  const c = libc().layout.constants;
  target.fill(0, 0, SOCKADDR_CAPACITY);
  let bytes: Uint8Array;
  let offset = s.pathOffset;
  if (typeof address === "string") {
    if (address === "") {
      throw new TypeError(`Argument "${name}" must not be an empty path`);
    }
    if (address.includes("\0")) {
      throw new TypeError(
        `Argument "${name}" must not contain a NUL character`,
      );
    }
    bytes = encoder.encode(address);
    if (bytes.byteLength > s.maxPathBytes) {
      throw new RangeError(
        `Argument "${name}" is ${bytes.byteLength} bytes long, but a Unix socket path holds at most ${s.maxPathBytes} bytes on this platform: "${address}"`,
      );
    }
  } else if (
    typeof address === "object" && address !== null &&
    typeof (address as { abstract?: unknown }).abstract === "string"
  ) {
    if (!s.abstractNamespace) {
      throw new Deno.errors.NotSupported(
        "Abstract socket names exist only on Linux",
      );
    }
    bytes = encoder.encode(address.abstract);
    // The leading NUL marks the abstract namespace; every byte up to
    // addrlen is part of the name (unix(7)).
    offset += 1;
    if (bytes.byteLength + 1 > s.maxPathBytes) {
      throw new RangeError(
        `Argument "${name}" has an abstract name of ${bytes.byteLength} bytes, but at most ${
          s.maxPathBytes - 1
        } fit`,
      );
    }
  } else {
    throw new TypeError(
      `Argument "${name}" must be a path string or { abstract: string }, received ${
        describeValue(address)
      }`,
    );
  }
  target.set(bytes, offset);
  const length = offset + bytes.byteLength;
  const view = new DataView(target.buffer, target.byteOffset);
  if (s.lenOffset >= 0) view.setUint8(s.lenOffset, length);
  if (s.familySize === 2) view.setUint16(s.familyOffset, c.AF_UNIX, true);
  else view.setUint8(s.familyOffset, c.AF_UNIX);
  return length;
}

/**
 * Reads a `sockaddr_un` of `length` bytes.
 *
 * @param source The bytes the kernel wrote.
 * @param length The `socklen_t` it returned.
 * @returns The address, or `null` for an unnamed socket.
 */
export function decodeAddress(source: Uint8Array, length: number): SocketAddress {
  const s = libc().layout.sockaddrUn;
  const end = Math.min(length, source.byteLength);
  if (end <= s.pathOffset) return null;
  const path = source.subarray(s.pathOffset, end);
  if (path[0] === 0) {
    if (!s.abstractNamespace) return null;
    return { abstract: decoder.decode(path.subarray(1)) };
  }
  const nul = path.indexOf(0);
  return decoder.decode(nul === -1 ? path : path.subarray(0, nul));
}

/**
 * Formats an address for messages.
 *
 * @param address The address.
 * @returns `"/path"` or `"@name"`.
 */
export function formatAddress(address: UnixAddress | SocketAddress): string {
  if (address === null) return "(unnamed)";
  return typeof address === "string" ? address : `@${address.abstract}`;
}
