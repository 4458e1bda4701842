/**
 * Unix socket addresses: filesystem paths and Linux abstract names, encoded
 * to and decoded from `struct sockaddr_un` (unix(7)).
 *
 * A name that is not valid UTF-8 is kept as bytes, so that a reply to such
 * a sender reaches it.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import { describeValue } from "./checks.ts";

/**
 * Where a Unix socket lives: a filesystem path, or a name in the Linux
 * abstract namespace (no file; gone when the last socket closes). Paths and
 * names are text, or raw bytes for names that are not valid UTF-8.
 */
export type UnixAddress = string | Uint8Array | { readonly abstract: string | Uint8Array };

/**
 * An address read back from the kernel; `null` for an unnamed socket. A
 * path or abstract name that is not valid UTF-8 comes back as a
 * `Uint8Array` (or `{ abstract: Uint8Array }`), which can be passed back
 * to `sendTo` as it is.
 */
export type SocketAddress = UnixAddress | null;

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

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
  const { layout } = libc();
  const s = layout.sockaddrUn;
  let bytes: Uint8Array;
  let offset = s.pathOffset;
  if (typeof address === "string" || address instanceof Uint8Array) {
    bytes = typeof address === "string" ? encoder.encode(address) : address;
    if (bytes.byteLength === 0) {
      throw new TypeError(`Argument "${name}" must not be an empty path`);
    }
    if (bytes.includes(0)) {
      throw new TypeError(`Argument "${name}" must not contain a NUL character`);
    }
    if (bytes.byteLength > s.maxPathBytes) {
      throw new RangeError(
        `Argument "${name}" is ${bytes.byteLength} bytes long, but a Unix socket path holds at most ${s.maxPathBytes} bytes on this platform: "${
          formatAddress(address)
        }"`,
      );
    }
  } else if (
    typeof address === "object" && address !== null &&
    (typeof (address as { abstract?: unknown }).abstract === "string" ||
      (address as { abstract?: unknown }).abstract instanceof Uint8Array)
  ) {
    if (!layout.features.abstractNames) {
      throw new Deno.errors.NotSupported(
        "Abstract socket names exist only on Linux",
      );
    }
    const abstract = address.abstract;
    bytes = typeof abstract === "string" ? encoder.encode(abstract) : abstract;
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
  target.fill(0, 0, SOCKADDR_CAPACITY);
  target.set(bytes, offset);
  const length = offset + bytes.byteLength;
  const view = new DataView(target.buffer, target.byteOffset);
  if (s.lenOffset >= 0) view.setUint8(s.lenOffset, length);
  if (s.familySize === 2) view.setUint16(s.familyOffset, layout.constants.AF_UNIX, true);
  else view.setUint8(s.familyOffset, layout.constants.AF_UNIX);
  return length;
}

const scratch = new Uint8Array(SOCKADDR_CAPACITY);

/**
 * Checks that `address` fits in a `sockaddr_un`, with the same errors
 * {@linkcode encodeAddress} gives.
 *
 * @param address The address.
 * @param name The argument name for errors.
 * @returns The address.
 */
export function checkAddress(address: UnixAddress, name: string): UnixAddress {
  encodeAddress(address, scratch, name);
  return address;
}

function text(bytes: Uint8Array): string | Uint8Array {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return bytes.slice();
  }
}

/**
 * Reads a `sockaddr_un` of `length` bytes.
 *
 * @param source The bytes the kernel wrote.
 * @param length The `socklen_t` it returned.
 * @returns The address, or `null` for an unnamed socket.
 */
export function decodeAddress(source: Uint8Array, length: number): SocketAddress {
  const { layout } = libc();
  const s = layout.sockaddrUn;
  const end = Math.min(length, source.byteLength);
  if (end <= s.pathOffset) return null;
  const path = source.subarray(s.pathOffset, end);
  if (path[0] === 0) {
    if (!layout.features.abstractNames) return null;
    return { abstract: text(path.subarray(1)) };
  }
  const nul = path.indexOf(0);
  return text(nul === -1 ? path : path.subarray(0, nul));
}

function escapeBytes(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) {
    out += byte >= 0x20 && byte < 0x7f && byte !== 0x5c
      ? String.fromCharCode(byte)
      : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/**
 * Formats an address for messages; bytes that are not printable ASCII in
 * a raw name are shown as `\xNN`.
 *
 * @param address The address.
 * @returns `"/path"`, `"@name"` or `"(unnamed)"`.
 */
export function formatAddress(address: SocketAddress): string {
  if (address === null) return "(unnamed)";
  if (typeof address === "string") return address;
  if (address instanceof Uint8Array) return escapeBytes(address);
  const name = address.abstract;
  return `@${typeof name === "string" ? name : escapeBytes(name)}`;
}
