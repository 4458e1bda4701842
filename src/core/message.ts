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
import { type Layout, layouts, platformKey } from "../../ffi/layout.ts";
import {
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

const TWO_32 = 2 ** 32;

/**
 * Writes `value` (a non-negative integer below 2^53, such as an address)
 * into a field of `size` bytes. An 8-byte field is written as two
 * little-endian u32 halves (every supported target is little-endian), which
 * needs no BigInt and also zeroes musl's pad word (docs/abi.md).
 */
function writeWord(view: DataView, offset: number, size: number, value: number): void {
  if (size === 8) {
    view.setUint32(offset, value % TWO_32, true);
    view.setUint32(offset + 4, Math.floor(value / TWO_32), true);
  } else {
    view.setUint32(offset, value, true);
  }
}

/**
 * {@linkcode writeWord} for a length below 2^32: the high half of an 8-byte
 * field is 0, and no division is needed.
 */
function writeLength(view: DataView, offset: number, size: number, value: number): void {
  view.setUint32(offset, value, true);
  if (size === 8) view.setUint32(offset + 4, 0, true);
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
  // Field offsets and widths from the layout, read once: the hot paths make
  // no libc() call and no BigInt.
  readonly #iovBase: number;
  readonly #iovLen: number;
  readonly #iovLenSize: number;
  readonly #pointerSize: number;
  /** Offset of `msg_namelen` (u32). */
  readonly namelenAt: number;
  /** Offset of `msg_controllen`. */
  readonly controllenAt: number;
  /** Whether `msg_controllen` is 8 bytes wide (its high half is then written 0). */
  readonly controllenWide: boolean;
  /** Offset of `msg_flags`. */
  readonly flagsAt: number;
  // The data buffer's address as a Number (exact: user-space addresses are
  // below 2^53 on every supported platform).
  #dataBase = 0;

  constructor(controlCapacity: number) {
    const { layout } = libc();
    const m = layout.msghdr;
    const iovOffset = align8(m.size);
    this.nameOffset = iovOffset + layout.iovec.size;
    this.controlOffset = align8(this.nameOffset + SOCKADDR_CAPACITY);
    this.controlCapacity = controlCapacity;
    this.#iovBase = iovOffset + layout.iovec.base;
    this.#iovLen = iovOffset + layout.iovec.len;
    this.#iovLenSize = layout.iovec.size - layout.iovec.len;
    this.#pointerSize = layout.iovec.len - layout.iovec.base;
    this.namelenAt = m.namelen;
    this.controllenAt = m.controllen;
    this.controllenWide = m.controllenSize === 8;
    this.flagsAt = m.flags;
    this.memory = new ArrayBuffer(this.controlOffset + controlCapacity);
    this.view = new DataView(this.memory);
    this.bytes = new Uint8Array(this.memory);
    const base = addressOf(this.memory);
    this.header = Deno.UnsafePointer.create(base)!;
    this.view.setBigUint64(m.iov, base + BigInt(iovOffset), true);
    writeLength(this.view, m.iovlen, m.iovlenSize, 1);
    this.view.setBigUint64(m.control, base + BigInt(this.controlOffset), true);
    this.view.setBigUint64(m.name, base + BigInt(this.nameOffset), true);
    this.#dataMemory = new ArrayBuffer(INITIAL_DATA_CAPACITY);
    this.data = new Uint8Array(this.#dataMemory);
    this.#pointIov();
  }

  /** Makes the data buffer at least `size` bytes. */
  ensureData(size: number): void {
    if (size <= this.data.byteLength) return;
    let capacity = this.data.byteLength;
    while (capacity < size) capacity *= 2;
    this.#dataMemory = new ArrayBuffer(capacity);
    this.data = new Uint8Array(this.#dataMemory);
    this.#pointIov();
  }

  /** Sets `iov_base` to `offset` bytes into the data buffer and `iov_len`. */
  setIov(offset: number, length: number): void {
    // Most messages repeat the previous iovec: skip the writes then.
    if (offset === this.#iovOffset && length === this.#iovLength) return;
    if (offset !== this.#iovOffset) {
      writeWord(this.view, this.#iovBase, this.#pointerSize, this.#dataBase + offset);
      this.#iovOffset = offset;
    }
    writeLength(this.view, this.#iovLen, this.#iovLenSize, length);
    this.#iovLength = length;
  }

  #iovOffset = -1;
  #iovLength = -1;

  /** Sets `msg_namelen` (0 for no address). */
  setNameLength(length: number): void {
    this.view.setUint32(this.namelenAt, length, true);
  }

  /** Reads `msg_namelen`. */
  nameLength(): number {
    return this.view.getUint32(this.namelenAt, true);
  }

  /** The `sockaddr_un` area. */
  name(): Uint8Array {
    return this.bytes.subarray(this.nameOffset, this.nameOffset + SOCKADDR_CAPACITY);
  }

  /**
   * Sets `msg_controllen`: its low 32 bits. The high half of a 64-bit field
   * (or musl's pad word) is 0 from the start and stays 0: this kit writes
   * only values below 2^32 there, and so does the kernel (docs/abi.md).
   */
  setControlLength(length: number): void {
    this.view.setUint32(this.controllenAt, length, true);
  }

  /** Fd count of the `SCM_RIGHTS` header now in the control buffer, or -1. */
  rightsCount = -1;
  /** `CMSG_SPACE` of that header. */
  rightsSpace = 0;
  /** Offset in {@linkcode MessageKit.view} of its first fd. */
  rightsAt = 0;

  /** Sets `msg_controllen` to the whole control buffer (before `recvmsg`). */
  offerWholeControl(): void {
    this.setControlLength(this.controlCapacity);
  }

  #pointIov(): void {
    this.#dataBase = Number(addressOf(this.#dataMemory));
    writeWord(this.view, this.#iovBase, this.#pointerSize, this.#dataBase);
    writeLength(this.view, this.#iovLen, this.#iovLenSize, 0);
    this.#iovOffset = 0;
    this.#iovLength = 0;
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
 * Prepares the `SCM_RIGHTS` header for `n` fds in the send kit's control
 * buffer (kept while the count stays the same) and sets `msg_controllen`.
 *
 * `msg_controllen` is exactly `CMSG_SPACE(n * 4)`: 16 or more zero bytes of
 * slack give EINVAL on Linux (`__scm_send` in net/core/scm.c), and macOS
 * wants `cmsg_len == msg_controllen` (docs/abi.md), which `CMSG_SPACE`
 * equals there for ints.
 *
 * @returns The offset in `kit.view` where the first fd goes.
 */
function rightsHeader(kit: MessageKit, n: number): number {
  // The header only changes with the fd count: most messages reuse it.
  if (n !== kit.rightsCount) buildRightsHeader(kit, n);
  kit.setControlLength(kit.rightsSpace);
  return kit.rightsAt;
}

function buildRightsHeader(kit: MessageKit, n: number): void {
  const { layout } = libc();
  const base = kit.controlOffset;
  const h = layout.cmsghdr;
  const space = cmsgSpace(layout, n * FD_SIZE);
  kit.bytes.fill(0, base, base + space);
  writeLength(kit.view, base + h.len, h.lenSize, cmsgLen(layout, n * FD_SIZE));
  kit.view.setInt32(base + h.level, layout.constants.SOL_SOCKET, true);
  kit.view.setInt32(base + h.type, layout.constants.SCM_RIGHTS, true);
  kit.rightsCount = n;
  kit.rightsSpace = space;
  kit.rightsAt = base + cmsgDataOffset(layout);
}

/**
 * Writes one `SCM_RIGHTS` message with the first `count` of `fds` into the
 * send kit's control buffer and sets `msg_controllen`, or sets it to 0 for
 * no fds.
 *
 * @param kit The send kit.
 * @param fds The fd numbers, already validated (an array, or the
 * synchronous send's `Int32Array`).
 * @param count How many of them to send.
 */
export function writeRights(kit: MessageKit, fds: ArrayLike<number>, count: number): void {
  if (count === 0) {
    kit.setControlLength(0);
    return;
  }
  const at = rightsHeader(kit, count);
  const view = kit.view;
  for (let i = 0; i < count; i++) view.setInt32(at + i * FD_SIZE, fds[i]!, true);
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

/**
 * What a receive into the caller's buffers delivered: counts, written into
 * an object the caller may pass again for the next message.
 */
export interface ReceivedInto {
  /** How many data bytes were written to the start of the buffer. */
  bytes: number;
  /**
   * How many fds were written to the start of the fds array. They are
   * close-on-exec, and the caller owns them: close each one
   * (`OwnedFd.closeNumber(n)`), adopt it with `new OwnedFd(n)`, or pass it on.
   */
  fds: number;
  /**
   * Whether a datagram or record was longer than the buffer (`MSG_TRUNC`);
   * the rest of it is lost. Always `false` on a stream.
   */
  truncated: boolean;
  /** The sender's `SCM_CREDENTIALS`, when the socket has `SO_PASSCRED` on (Linux). */
  credentials: MessageCredentials | null;
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
  // Every fd takes 4 bytes of the buffer: room for all of them.
  const fds = new Int32Array(Math.floor(length / FD_SIZE));
  const count = scanControl(shapeOf(layout), view, base, length, fds);
  for (let i = 0; i < count; i++) into.fds.push(fds[i]!);
  if (scannedCredentials !== null) into.credentials = scannedCredentials;
  return into;
}

/** The `SCM_CREDENTIALS` found by the last {@linkcode scanControl}, or `null`. */
let scannedCredentials: MessageCredentials | null = null;

/** What the control walk needs of a layout, read out once per layout. */
interface ControlShape {
  readonly layout: Layout;
  readonly headerSize: number;
  readonly lenAt: number;
  readonly wideLen: boolean;
  readonly levelAt: number;
  readonly typeAt: number;
  readonly alignMask: number;
  readonly dataOffset: number;
  readonly solSocket: number;
  readonly scmRights: number;
  /** `SCM_CREDENTIALS`, or -1 where the layout has none. */
  readonly scmCredentials: number;
  readonly ucredSize: number;
  readonly pidAt: number;
  readonly uidAt: number;
  readonly gidAt: number;
  readonly msgTrunc: number;
  readonly msgCtrunc: number;
  /** `MSG_TRUNC | MSG_CTRUNC`. */
  readonly cutFlags: number;
  /** Whether received fds need `FD_CLOEXEC` set one by one (no `MSG_CMSG_CLOEXEC`). */
  readonly slowFds: boolean;
}

let lastShape: ControlShape | undefined;

function shapeOf(layout: Layout): ControlShape {
  if (lastShape !== undefined && lastShape.layout === layout) return lastShape;
  const c = layout.constants;
  const h = layout.cmsghdr;
  return lastShape = {
    layout,
    headerSize: h.size,
    lenAt: h.len,
    wideLen: h.lenSize === 8,
    levelAt: h.level,
    typeAt: h.type,
    alignMask: h.align - 1,
    dataOffset: cmsgDataOffset(layout),
    solSocket: c.SOL_SOCKET,
    scmRights: c.SCM_RIGHTS,
    scmCredentials: layout.features.passCredentials ? c.SCM_CREDENTIALS : -1,
    ucredSize: layout.ucredSize,
    pidAt: layout.peerCredentials.pidOffset,
    uidAt: layout.peerCredentials.uidOffset,
    gidAt: layout.peerCredentials.gidOffset,
    msgTrunc: c.MSG_TRUNC,
    msgCtrunc: c.MSG_CTRUNC,
    cutFlags: c.MSG_TRUNC | c.MSG_CTRUNC,
    slowFds: !layout.features.msgCmsgCloexec,
  };
}

/**
 * The walk of {@linkcode walkControl}, writing the fd numbers into `fds`
 * (which has room for `length / 4` of them) and the credentials into
 * {@linkcode scannedCredentials}.
 *
 * @returns How many fds were found.
 */
function scanControl(
  shape: ControlShape,
  view: DataView,
  base: number,
  length: number,
  fds: Int32Array,
): number {
  const headerSize = shape.headerSize;
  const lenAt = shape.lenAt;
  const dataOffset = shape.dataOffset;
  scannedCredentials = null;
  let count = 0;
  let offset = 0;
  while (offset + headerSize <= length) {
    const at = base + offset;
    // cmsg_len: the low half of a 64-bit field (little-endian); a high half
    // that is not 0 means a corrupt header, which ends the walk.
    const len = shape.wideLen && view.getUint32(at + lenAt + 4, true) !== 0
      ? 0
      : view.getUint32(at + lenAt, true);
    if (len < headerSize || offset + len > length) break;
    if (view.getInt32(at + shape.levelAt, true) === shape.solSocket) {
      const type = view.getInt32(at + shape.typeAt, true);
      if (type === shape.scmRights) {
        // Whole ints only; CMSG_DATA may be unaligned for int on some ABIs,
        // which DataView reads handle.
        const n = len > dataOffset ? (len - dataOffset) >>> 2 : 0;
        const first = at + dataOffset;
        for (let i = 0; i < n; i++) fds[count++] = view.getInt32(first + i * FD_SIZE, true);
      } else if (type === shape.scmCredentials && len - dataOffset >= shape.ucredSize) {
        scannedCredentials = readCredentials(shape, view, at + dataOffset);
      }
    }
    // CMSG_NXTHDR: the length rounded up to the alignment (CMSG_ALIGN).
    offset += (len + shape.alignMask) & ~shape.alignMask;
  }
  return count;
}

/**
 * Reads the `struct ucred` that `SCM_CREDENTIALS` carries, the struct
 * `SO_PEERCRED` returns on Linux (unix(7)).
 */
function readCredentials(shape: ControlShape, view: DataView, at: number): MessageCredentials {
  return {
    pid: view.getInt32(at + shape.pidAt, true),
    uid: view.getUint32(at + shape.uidAt, true),
    gid: view.getUint32(at + shape.gidAt, true),
  };
}

// The running platform's layout (`undefined` where there is none: libc()
// throws then before any kit exists) and its control shape, as constants:
// data only, so that importing this module needs no FFI.
const hostLayout: Layout | undefined = layouts[platformKey()];
const hostShape: ControlShape = shapeOf(hostLayout ?? layouts["linux-x86_64"]!);

// The fd numbers of the message just received, before they are handed
// out: room for all that fit the receive kit's control buffer. Every
// receive is synchronous, so one array serves them all.
const receivedFds = new Int32Array(
  hostLayout === undefined ? 0 : Math.ceil(receiveControlCapacity(hostLayout) / FD_SIZE),
);
// msg_flags of the message just received.
let receivedFlags = 0;

/**
 * Reads `msg_flags` and the control data of the receive kit after a
 * successful `recvmsg`: the fds go to {@linkcode receivedFds}, the flags to
 * {@linkcode receivedFlags}, the credentials to {@linkcode scannedCredentials}.
 *
 * @returns How many fds arrived.
 */
function takeControl(kit: MessageKit): number {
  const view = kit.view;
  receivedFlags = view.getInt32(kit.flagsAt, true);
  scannedCredentials = null;
  let length = view.getUint32(kit.controllenAt, true);
  if (length === 0) return 0;
  // Never past the buffer (whose fds all fit receivedFds).
  if (
    length > kit.controlCapacity ||
    (kit.controllenWide && view.getUint32(kit.controllenAt + 4, true) !== 0)
  ) {
    length = kit.controlCapacity;
  }
  const base = kit.controlOffset;
  const n = singleRights(view, base, length);
  if (n < 0) return scanControl(hostShape, view, base, length, receivedFds);
  const first = base + hostShape.dataOffset;
  for (let i = 0; i < n; i++) receivedFds[i] = view.getInt32(first + i * FD_SIZE, true);
  return n;
}

/**
 * The common control data, told in a few reads: one `SCM_RIGHTS` message
 * that is all of it (`msg_controllen` is its `CMSG_SPACE`).
 *
 * @param view The kit's memory.
 * @param base Offset of the control buffer.
 * @param length `msg_controllen`.
 * @returns Its fd count, or -1 for anything else (no control data, several
 * messages, credentials, a corrupt header): the walk's case.
 */
function singleRights(view: DataView, base: number, length: number): number {
  const shape = hostShape;
  const len = view.getUint32(base + shape.lenAt, true);
  if (
    ((len + shape.alignMask) & ~shape.alignMask) === length && len >= shape.dataOffset &&
    (!shape.wideLen || view.getUint32(base + shape.lenAt + 4, true) === 0) &&
    view.getInt32(base + shape.levelAt, true) === shape.solSocket &&
    view.getInt32(base + shape.typeAt, true) === shape.scmRights
  ) {
    return (len - shape.dataOffset) >>> 2;
  }
  return -1;
}

/**
 * Whether the message just received must be refused: the kernel cut the
 * control data (`MSG_CTRUNC`), or more than `maxFds` fds arrived.
 */
function mustRefuse(count: number, maxFds: number): boolean {
  return count > maxFds || (receivedFlags & hostShape.msgCtrunc) !== 0;
}

/**
 * Closes every fd of the message just received and makes the
 * {@linkcode ControlTruncatedError} that refuses it.
 *
 * @param count How many fds arrived.
 * @param maxFds The most the caller accepts.
 * @param data The message's data, for the error.
 * @param limit How the limit is named in the message.
 * @returns The error to throw.
 */
function refusal(
  count: number,
  maxFds: number,
  data: Uint8Array,
  limit: string,
): ControlTruncatedError {
  closeReceived(0, count);
  const truncatedControl = (receivedFlags & hostShape.msgCtrunc) !== 0;
  const message = truncatedControl
    ? `recvmsg truncated the control data (MSG_CTRUNC): ${count} fd${
      count === 1 ? "" : "s"
    } arrived and were closed; the sender's other fds were dropped by the kernel (receiver at its fd limit, a security module, or a peer sending too many)`
    : `Received ${count} fd${
      count === 1 ? "" : "s"
    }, more than ${limit} (${maxFds}): all were closed`;
  return new ControlTruncatedError(
    message,
    data,
    count,
    truncatedControl ? "kernel" : "max-fds",
  );
}

/** Closes the received fds from `from` up to `count`. */
function closeReceived(from: number, count: number): void {
  const { lib } = libc();
  for (let i = from; i < count; i++) lib.close(receivedFds[i]!);
}

/**
 * Makes a received fd close-on-exec where `recvmsg` cannot
 * (no `MSG_CMSG_CLOEXEC`: macOS). This races with a concurrent fork+exec in
 * another thread, as in every library on macOS.
 */
function setCloseOnExec(fds: Int32Array, count: number): void {
  const { layout, fcntl } = libc();
  const c = layout.constants;
  for (let i = 0; i < count; i++) fcntl(fds[i]!, c.F_SETFD, c.FD_CLOEXEC);
}

/** Below this many bytes a plain loop copies faster than `set()` or `slice()`. */
const LOOP_COPY_MAX = 64;

/**
 * Copies `count` bytes of `source`, from `start`, to the start of `target`.
 *
 * @param target Where the bytes go.
 * @param source Where they come from.
 * @param start The first byte of `source` to copy.
 * @param count How many bytes.
 */
export function copyBytes(
  target: Uint8Array,
  source: Uint8Array,
  start: number,
  count: number,
): void {
  if (count <= LOOP_COPY_MAX) {
    for (let i = 0; i < count; i++) target[i] = source[start + i]!;
  } else if (start === 0 && count === source.byteLength) {
    target.set(source);
  } else {
    target.set(source.subarray(start, start + count));
  }
}

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
  copyBytes(data, source, 0, count);
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
  const n = takeControl(kit);
  const credentials = scannedCredentials;
  const data = copyOut(kit.data, count);
  if (mustRefuse(n, maxFds)) throw refusal(n, maxFds, data, "maxFds");
  // Sized once: a message of many fds does not grow the array step by step.
  const fds: F[] = n === 0 ? [] : new Array<F>(n);
  if (n > 0) {
    if (hostShape.slowFds) setCloseOnExec(receivedFds, n);
    let i = 0;
    try {
      for (; i < n; i++) fds[i] = adopt(receivedFds[i]!);
    } catch (error) {
      // Not expected (adopt only wraps a number), but no fd may go unowned.
      closeReceived(i, n);
      throw error;
    }
  }
  const message: Received<F> = {
    data,
    fds,
    truncated: (receivedFlags & hostShape.msgTrunc) !== 0,
    credentials,
  };
  if (wantAddress) message.address = decodeAddress(kit.name(), kit.nameLength());
  return message;
}

/**
 * Makes one `recvmsg` into the receive kit and parses it (see
 * {@linkcode parseReceived}), with the end-of-stream rule: 0 bytes is the
 * end on a stream, and 0 bytes with no fds on a seqpacket socket unless
 * the kernel says a longer record was cut (`MSG_TRUNC`, as with
 * `maxBytes: 0`).
 *
 * @param fd The socket.
 * @param maxBytes Data capacity.
 * @param maxFds Most fds accepted.
 * @param wantAddress Whether to decode the sender's address.
 * @param adopt Wraps each received fd number.
 * @param endOnEmpty Whether the end-of-stream rule applies (not on dgram sockets).
 * @param flags `recvmsg` flags (`MSG_CMSG_CLOEXEC` and `MSG_DONTWAIT` as needed).
 * @returns The message; `null` at end of stream; or {@linkcode RECEIVE_FAILED}
 * when `recvmsg` returned -1 (read errno next).
 */
export function receiveMessage<F>(
  fd: number,
  maxBytes: number,
  maxFds: number,
  wantAddress: boolean,
  adopt: (fd: number) => F,
  endOnEmpty: boolean,
  flags: number,
): Received<F> | null | typeof RECEIVE_FAILED {
  const kit = recvKit ?? getRecvKit();
  if (maxBytes > kit.data.byteLength) kit.ensureData(maxBytes);
  kit.setIov(0, maxBytes);
  kit.offerWholeControl();
  kit.view.setUint32(kit.namelenAt, wantAddress ? SOCKADDR_CAPACITY : 0, true);
  const count = libc().lib.recvmsg(fd, kit.header, flags);
  if (count < 0) return RECEIVE_FAILED;
  const message = parseReceived(kit, count, maxFds, wantAddress, adopt);
  if (count === 0 && endOnEmpty && message.fds.length === 0 && !message.truncated) return null;
  return message;
}

/** What {@linkcode receiveInto} returns when `recvmsg` failed: errno says why. */
export const RECEIVE_FAILED = -1;

/**
 * Makes one `recvmsg` into the receive kit and copies the message into the
 * caller's buffers: the data into `buffer`, the fd numbers into `fds` (the
 * caller owns them from here), the counts into `result`. Nothing is
 * allocated on this path. When the control data was truncated or more fds
 * arrived than `fds` holds, the data is still written, every received fd is
 * closed and a {@linkcode ControlTruncatedError} is thrown.
 *
 * @param fd The socket.
 * @param buffer Where the data goes; its length (up to 2^31 - 1) is the capacity.
 * @param fds Where the fd numbers go, or `null` for none.
 * @param result Where the counts go.
 * @param endOnEmpty Whether an empty message without fds that was not cut
 * short is the end of the stream (stream and seqpacket sockets).
 * @param flags `recvmsg` flags (`MSG_CMSG_CLOEXEC` and `MSG_DONTWAIT` as needed).
 * @returns `result`; `null` at end of stream (`result` untouched then); or
 * {@linkcode RECEIVE_FAILED} when `recvmsg` returned -1 (read errno next).
 */
export function receiveInto(
  fd: number,
  buffer: Uint8Array,
  fds: Int32Array | null,
  result: ReceivedInto,
  endOnEmpty: boolean,
  flags: number,
): ReceivedInto | null | typeof RECEIVE_FAILED {
  const kit = recvKit ?? getRecvKit();
  const view = kit.view;
  let capacity = buffer.byteLength;
  if (capacity > kit.data.byteLength) capacity = growFor(kit, capacity);
  kit.setIov(0, capacity);
  kit.offerWholeControl();
  view.setUint32(kit.namelenAt, 0, true);
  const count = libc().lib.recvmsg(fd, kit.header, flags);
  if (count < 0) return RECEIVE_FAILED;
  // The data first: a refused message still delivers it.
  copyBytes(buffer, kit.data, 0, count);
  // The common case: one SCM_RIGHTS message, nothing cut, and room for its
  // fds, which go straight from the kit into the caller's array. Anything
  // else (no fds included) is finishInto().
  const shape = hostShape;
  const base = kit.controlOffset;
  const n = fds === null || shape.slowFds ||
      (view.getInt32(kit.flagsAt, true) & shape.cutFlags) !== 0
    ? -1
    : singleRights(view, base, view.getUint32(kit.controllenAt, true));
  if (fds === null || n < 0 || n > fds.length) {
    return finishInto(kit, count, buffer, fds, result, endOnEmpty);
  }
  const first = base + shape.dataOffset;
  for (let i = 0; i < n; i++) fds[i] = view.getInt32(first + i * FD_SIZE, true);
  return deliver(result, count, n, false, null, fds);
}

/** Grows the kit's data buffer for a capacity beyond it; returns the capacity offered. */
function growFor(kit: MessageKit, size: number): number {
  const capacity = size > 0x7fffffff ? 0x7fffffff : size;
  kit.ensureData(capacity);
  return capacity;
}

/**
 * Writes the counts into the caller's result. If that throws (a frozen
 * object, a setter), the caller cannot learn how many fds arrived, so none
 * of them may stay open: they are closed.
 */
function deliver(
  result: ReceivedInto,
  count: number,
  n: number,
  truncated: boolean,
  credentials: MessageCredentials | null,
  fds: Int32Array | null,
): ReceivedInto {
  try {
    result.bytes = count;
    result.fds = n;
    result.truncated = truncated;
    result.credentials = credentials;
  } catch (error) {
    closeFdsOf(fds, n);
    throw error;
  }
  return result;
}

/**
 * The rest of {@linkcode receiveInto} for every message but the common
 * one: no control data, cut data or control, several cmsgs, credentials,
 * more fds than `fds` holds, platforms without `MSG_CMSG_CLOEXEC`.
 */
function finishInto(
  kit: MessageKit,
  count: number,
  buffer: Uint8Array,
  fds: Int32Array | null,
  result: ReceivedInto,
  endOnEmpty: boolean,
): ReceivedInto | null {
  const shape = hostShape;
  const n = takeControl(kit);
  const got = receivedFlags;
  const credentials = scannedCredentials;
  const room = fds === null ? 0 : fds.length;
  if (n > room || (got & shape.msgCtrunc) !== 0) {
    throw refusal(n, room, buffer.slice(0, count), "the fds array holds");
  }
  const truncated = (got & shape.msgTrunc) !== 0;
  if (count === 0 && n === 0 && !truncated && endOnEmpty) return null;
  if (n > 0) {
    if (shape.slowFds) setCloseOnExec(receivedFds, n);
    for (let i = 0; i < n; i++) fds![i] = receivedFds[i]!;
  }
  return deliver(result, count, n, truncated, credentials, fds);
}

function closeFdsOf(fds: Int32Array | null, count: number): void {
  const { lib } = libc();
  for (let i = 0; i < count; i++) lib.close(fds![i]!);
}
