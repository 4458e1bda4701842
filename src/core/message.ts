/**
 * `sendmsg`/`recvmsg` marshalling over reused, off-heap buffers.
 *
 * One {@linkcode MessageKit} holds a `msghdr`, its `iovec`, a `sockaddr_un`
 * and the control buffer in a single explicitly allocated `ArrayBuffer`, and
 * the data in a second one. Both have off-heap backing stores, so the
 * addresses written into the header stay valid for as long as the kit lives
 * (a small `new Uint8Array(n)` lives in the V8 heap and moves on GC). The
 * kits are shared per isolate: every call that uses them is synchronous,
 * and nothing handed to a caller is a view into them.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import type { Layout } from "../../ffi/layout.ts";
import {
  cmsgAlign,
  cmsgDataOffset,
  cmsgLen,
  cmsgSpace,
  FD_SIZE,
  receiveControlCapacity,
} from "../../ffi/cmsg.ts";
import { ControlTruncatedError } from "./errors.ts";
import { decodeAddress, SOCKADDR_CAPACITY, type SocketAddress } from "./address.ts";
import type { MessageCredentials } from "./credentials.ts";

/** Default data capacity of a kit; grows on demand. */
const INITIAL_DATA_CAPACITY = 64 * 1024;

function addressOf(buffer: ArrayBuffer): bigint {
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer));
}

/** A reusable `msghdr` with its iovec, name, control and data buffers. */
export class MessageKit {
  /** Header, iovec, name and control, in one off-heap allocation. */
  readonly memory: ArrayBuffer;
  /** A view over {@linkcode MessageKit.memory}. */
  readonly view: DataView;
  /** Bytes of {@linkcode MessageKit.memory}. */
  readonly bytes: Uint8Array;
  /** The `msghdr` pointer passed to `sendmsg`/`recvmsg`. */
  readonly header: Deno.PointerObject;
  /** Offset of the `sockaddr_un` in {@linkcode MessageKit.memory}. */
  readonly nameOffset: number;
  /** Offset of the control buffer in {@linkcode MessageKit.memory}. */
  readonly controlOffset: number;
  /** Size of the control buffer. */
  readonly controlCapacity: number;
  /** The data buffer; replaced when it grows. */
  data: Uint8Array;
  // Kept so the data's backing store lives as long as its address is in use.
  #dataMemory: ArrayBuffer;

  constructor(controlCapacity: number) {
    const { layout } = libc();
    const iovOffset = align8(layout.msghdr.size);
    this.nameOffset = iovOffset + layout.iovec.size;
    this.controlOffset = align8(this.nameOffset + SOCKADDR_CAPACITY);
    this.controlCapacity = controlCapacity;
    this.#controlCapacityBig = BigInt(controlCapacity);
    this.memory = new ArrayBuffer(this.controlOffset + controlCapacity);
    this.view = new DataView(this.memory);
    this.bytes = new Uint8Array(this.memory);
    const base = addressOf(this.memory);
    this.header = Deno.UnsafePointer.create(base)!;
    const m = layout.msghdr;
    this.view.setBigUint64(m.iov, base + BigInt(iovOffset), true);
    this.#setWord(m.iovlen, m.iovlenSize, 1);
    this.view.setBigUint64(m.control, base + BigInt(this.controlOffset), true);
    this.view.setBigUint64(m.name, base + BigInt(this.nameOffset), true);
    this.#dataMemory = new ArrayBuffer(INITIAL_DATA_CAPACITY);
    this.data = new Uint8Array(this.#dataMemory);
    this.#pointIov(iovOffset);
  }

  /** Makes the data buffer at least `size` bytes. */
  ensureData(size: number): void {
    if (size <= this.data.byteLength) return;
    let capacity = this.data.byteLength;
    while (capacity < size) capacity *= 2;
    this.#dataMemory = new ArrayBuffer(capacity);
    this.data = new Uint8Array(this.#dataMemory);
    this.#pointIov(align8(libc().layout.msghdr.size));
  }

  /** Sets `iov_base` to `offset` bytes into the data buffer and `iov_len`. */
  setIov(offset: number, length: number): void {
    // Most messages repeat the previous iovec: skip the BigInt writes then.
    if (offset === this.#iovOffset && length === this.#iovLength) return;
    const { layout } = libc();
    const iov = align8(layout.msghdr.size);
    this.view.setBigUint64(
      iov + layout.iovec.base,
      this.#dataBase + BigInt(offset),
      true,
    );
    this.view.setBigUint64(iov + layout.iovec.len, BigInt(length), true);
    this.#iovOffset = offset;
    this.#iovLength = length;
  }

  #iovOffset = -1;
  #iovLength = -1;

  /** Sets `msg_namelen` (0 for no address). */
  setNameLength(length: number): void {
    this.view.setUint32(libc().layout.msghdr.namelen, length, true);
  }

  /** Reads `msg_namelen`. */
  nameLength(): number {
    return this.view.getUint32(libc().layout.msghdr.namelen, true);
  }

  /** The `sockaddr_un` area. */
  name(): Uint8Array {
    return this.bytes.subarray(this.nameOffset, this.nameOffset + SOCKADDR_CAPACITY);
  }

  /** Sets `msg_controllen`. */
  setControlLength(length: number): void {
    const m = libc().layout.msghdr;
    if (length === 0 && m.controllenSize === 8) this.view.setBigUint64(m.controllen, 0n, true);
    else this.#setWord(m.controllen, m.controllenSize, length);
  }

  /** Fd count of the `SCM_RIGHTS` header now in the control buffer, or -1. */
  rightsCount = -1;
  /** `CMSG_SPACE` of that header, as a number and as a BigInt. */
  rightsSpace = 0;
  rightsSpaceBig = 0n;

  /** Sets `msg_controllen` to the whole control buffer (before `recvmsg`). */
  offerWholeControl(): void {
    const m = libc().layout.msghdr;
    if (m.controllenSize === 8) {
      this.view.setBigUint64(m.controllen, this.#controlCapacityBig, true);
    } else this.view.setUint32(m.controllen, this.controlCapacity, true);
  }

  #controlCapacityBig = 0n;

  /** Reads `msg_controllen`. */
  controlLength(): number {
    // A 64-bit msg_controllen never exceeds our buffer, and every supported
    // target is little-endian: its low half is the value (the kernel and
    // musl leave the high half 0, docs/abi.md). No BigInt needed.
    const m = libc().layout.msghdr;
    const low = this.view.getUint32(m.controllen, true);
    if (m.controllenSize === 8 && this.view.getUint32(m.controllen + 4, true) !== 0) {
      return Number.MAX_SAFE_INTEGER;
    }
    return low;
  }

  /** Reads and clears `msg_flags`. */
  takeFlags(): number {
    const offset = libc().layout.msghdr.flags;
    const flags = this.view.getInt32(offset, true);
    this.view.setInt32(offset, 0, true);
    return flags;
  }

  #dataBase = 0n;

  #pointIov(iovOffset: number): void {
    this.#dataBase = addressOf(this.#dataMemory);
    this.#iovOffset = 0;
    this.#iovLength = 0;
    const { layout } = libc();
    this.view.setBigUint64(iovOffset + layout.iovec.base, this.#dataBase, true);
    this.view.setBigUint64(iovOffset + layout.iovec.len, 0n, true);
  }

  #setWord(offset: number, size: 4 | 8, value: number): void {
    // Writing 8 bytes also zeroes musl's pad word (docs/abi.md).
    if (size === 8) this.view.setBigUint64(offset, BigInt(value), true);
    else this.view.setUint32(offset, value, true);
  }
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

let sendKit: MessageKit | undefined;
let recvKit: MessageKit | undefined;

/** The shared send kit (control room for the largest fd message). */
export function getSendKit(): MessageKit {
  return sendKit ??= new MessageKit(
    cmsgSpace(libc().layout, libc().layout.maxFdsPerMessage * FD_SIZE),
  );
}

/** The shared receive kit (control room for anything the kernel delivers). */
export function getRecvKit(): MessageKit {
  return recvKit ??= new MessageKit(receiveControlCapacity(libc().layout));
}

/**
 * Writes one `SCM_RIGHTS` message with `fds` into the send kit's control
 * buffer and sets `msg_controllen`, or sets it to 0 for no fds.
 *
 * `msg_controllen` is exactly `CMSG_SPACE(n * 4)`: 16 or more zero bytes of
 * slack give EINVAL on Linux (`__scm_send` in net/core/scm.c), and macOS
 * wants `cmsg_len == msg_controllen` (docs/abi.md), which `CMSG_SPACE`
 * equals there for ints.
 *
 * @param kit The send kit.
 * @param fds The fd numbers, already validated.
 */
export function writeRights(kit: MessageKit, fds: readonly number[]): void {
  const { layout } = libc();
  const n = fds.length;
  if (n === 0) {
    kit.setControlLength(0);
    return;
  }
  const base = kit.controlOffset;
  const view = kit.view;
  // The header only changes with the fd count: most messages reuse it.
  if (n !== kit.rightsCount) {
    const h = layout.cmsghdr;
    const space = cmsgSpace(layout, n * FD_SIZE);
    kit.bytes.fill(0, base, base + space);
    const len = cmsgLen(layout, n * FD_SIZE);
    if (h.lenSize === 8) view.setBigUint64(base + h.len, BigInt(len), true);
    else view.setUint32(base + h.len, len, true);
    view.setInt32(base + h.level, layout.constants.SOL_SOCKET, true);
    view.setInt32(base + h.type, layout.constants.SCM_RIGHTS, true);
    kit.rightsCount = n;
    kit.rightsSpace = space;
    kit.rightsSpaceBig = BigInt(space);
  }
  const data = base + cmsgDataOffset(layout);
  for (let i = 0; i < n; i++) view.setInt32(data + i * FD_SIZE, fds[i]!, true);
  const m = layout.msghdr;
  if (m.controllenSize === 8) view.setBigUint64(m.controllen, kit.rightsSpaceBig, true);
  else view.setUint32(m.controllen, kit.rightsSpace, true);
}

/** What one `recvmsg` delivered, after the control data was parsed. */
export interface Received<F> {
  /** The data bytes, in a buffer of their own (never shared with another message). */
  data: Uint8Array;
  /** The received fds, close-on-exec and owned by the caller. */
  fds: F[];
  /**
   * Whether a datagram or record was cut to `maxBytes` (`MSG_TRUNC`); the
   * rest of it is lost. Always `false` on a stream.
   */
  truncated: boolean;
  /** The sender's `SCM_CREDENTIALS`, when the socket has `SO_PASSCRED` on (Linux). */
  credentials: MessageCredentials | null;
  /** The sender's address; present only when asked for. */
  address?: SocketAddress;
}

/** What {@linkcode walkControl} found in a control buffer. */
export interface ControlContents {
  /** The fd numbers of every `SCM_RIGHTS` message, in order. */
  readonly fds: number[];
  /** `SCM_CREDENTIALS`, or `null`. */
  credentials: MessageCredentials | null;
}

/**
 * Walks every cmsg in a control buffer (`CMSG_FIRSTHDR`/`CMSG_NXTHDR`,
 * cmsg(3)) and collects the fds of every `SCM_RIGHTS` message and the
 * `SCM_CREDENTIALS` struct. Linux may deliver `SCM_CREDENTIALS` before
 * `SCM_RIGHTS`, and other stacks split rights over several cmsgs. A header
 * whose length is impossible ends the walk. Pure: it reads only `view`.
 *
 * @param layout The platform layout.
 * @param view The memory holding the control buffer.
 * @param base Offset of the control buffer in `view`.
 * @param length `msg_controllen` (at most the buffer's size).
 * @param into Where to collect; its `fds` array is appended to.
 * @returns `into`.
 */
export function walkControl(
  layout: Layout,
  view: DataView,
  base: number,
  length: number,
  into: ControlContents,
): ControlContents {
  const c = layout.constants;
  const h = layout.cmsghdr;
  const dataOffset = cmsgDataOffset(layout);
  let offset = 0;
  while (offset + h.size <= length) {
    // cmsg_len: the low half of a 64-bit field (little-endian); a high half
    // that is not 0 means a corrupt header, which ends the walk.
    const len = h.lenSize === 8 && view.getUint32(base + offset + h.len + 4, true) !== 0
      ? 0
      : view.getUint32(base + offset + h.len, true);
    if (len < h.size || offset + len > length) break;
    const level = view.getInt32(base + offset + h.level, true);
    const type = view.getInt32(base + offset + h.type, true);
    if (level === c.SOL_SOCKET && type === c.SCM_RIGHTS) {
      // Whole ints only; CMSG_DATA may be unaligned for int on some ABIs,
      // which DataView reads handle.
      const n = Math.floor((len - dataOffset) / FD_SIZE);
      for (let i = 0; i < n; i++) {
        into.fds.push(view.getInt32(base + offset + dataOffset + i * FD_SIZE, true));
      }
    } else if (
      layout.features.passCredentials && level === c.SOL_SOCKET &&
      type === c.SCM_CREDENTIALS && len - dataOffset >= layout.ucredSize
    ) {
      const at = base + offset + dataOffset;
      // SCM_CREDENTIALS carries a struct ucred, the struct SO_PEERCRED
      // returns on Linux (unix(7)).
      into.credentials = {
        pid: view.getInt32(at + layout.peerCredentials.pidOffset, true),
        uid: view.getUint32(at + layout.peerCredentials.uidOffset, true),
        gid: view.getUint32(at + layout.peerCredentials.gidOffset, true),
      };
    }
    offset += cmsgAlign(layout, len);
  }
  return into;
}

const found: ControlContents = { fds: [], credentials: null };

/** Below this many bytes a plain loop copies faster than `set(subarray())`. */
const LOOP_COPY_MAX = 64;

/**
 * Copies `count` bytes of `source` into a new buffer of their own.
 *
 * @param source The kit's data.
 * @param count How many bytes.
 * @returns The copy.
 */
function copyOut(source: Uint8Array, count: number): Uint8Array {
  // slice() copies into a buffer it does not zero first.
  if (count > LOOP_COPY_MAX) return source.slice(0, count);
  const data = new Uint8Array(count);
  for (let i = 0; i < count; i++) data[i] = source[i]!;
  return data;
}

/**
 * Parses the receive kit after a successful `recvmsg` of `count` bytes.
 * Closes every received fd and throws when the control data was truncated
 * or more than `maxFds` fds arrived.
 *
 * @param kit The receive kit.
 * @param count The byte count `recvmsg` returned.
 * @param maxFds The most fds the caller accepts.
 * @param wantAddress Whether to decode `msg_name`.
 * @param adopt Wraps each received fd number in the caller's owner type.
 * @returns The message.
 */
export function parseReceived<F>(
  kit: MessageKit,
  count: number,
  maxFds: number,
  wantAddress: boolean,
  adopt: (fd: number) => F,
): Received<F> {
  const { lib, layout, fcntl } = libc();
  const c = layout.constants;
  const flags = kit.takeFlags();
  const controlLength = Math.min(kit.controlLength(), kit.controlCapacity);
  found.fds.length = 0;
  found.credentials = null;
  if (controlLength > 0) walkControl(layout, kit.view, kit.controlOffset, controlLength, found);
  const received = found.fds;
  const credentials = found.credentials;
  const data = copyOut(kit.data, count);
  const truncatedControl = (flags & c.MSG_CTRUNC) !== 0;
  if (truncatedControl || received.length > maxFds) {
    const n = received.length;
    for (const fd of received) lib.close(fd);
    received.length = 0;
    const message = truncatedControl
      ? `recvmsg truncated the control data (MSG_CTRUNC): ${n} fd${
        n === 1 ? "" : "s"
      } arrived and were closed; the sender's other fds were dropped by the kernel (receiver at its fd limit, a security module, or a peer sending too many)`
      : `Received ${n} fd${n === 1 ? "" : "s"}, more than maxFds (${maxFds}): all were closed`;
    throw new ControlTruncatedError(
      message,
      data,
      n,
      truncatedControl ? "kernel" : "max-fds",
    );
  }
  const fds: F[] = new Array(received.length);
  for (let i = 0; i < received.length; i++) {
    const fd = received[i]!;
    // No MSG_CMSG_CLOEXEC (macOS): set it now. This races with a concurrent
    // fork+exec in another thread, as in every library on macOS.
    if (!layout.features.msgCmsgCloexec) fcntl(fd, c.F_SETFD, c.FD_CLOEXEC);
    fds[i] = adopt(fd);
  }
  received.length = 0;
  const message: Received<F> = {
    data,
    fds,
    truncated: (flags & c.MSG_TRUNC) !== 0,
    credentials,
  };
  if (wantAddress) message.address = decodeAddress(kit.name(), kit.nameLength());
  return message;
}

/**
 * Prepares the receive kit for one `recvmsg` of up to `maxBytes`.
 *
 * @param kit The receive kit.
 * @param maxBytes The data capacity to offer.
 * @param wantAddress Whether to ask for the sender's address.
 */
export function prepareReceive(
  kit: MessageKit,
  maxBytes: number,
  wantAddress: boolean,
): void {
  kit.ensureData(maxBytes);
  kit.setIov(0, maxBytes);
  kit.offerWholeControl();
  kit.setNameLength(wantAddress ? SOCKADDR_CAPACITY : 0);
}
