/**
 * The in-process round trip next to the same loop in C, in one
 * `deno bench` run: send 1 byte + 1 fd on a stream socketpair, receive it,
 * close the received fd.
 *
 *   deno bench --allow-ffi --allow-read --allow-write --allow-run --allow-env bench/
 *
 * `peers/roundtrip.c` is compiled with `cc -O2` into `.bench-build/` when
 * the file loads, twice: as a program and as a shared library. Before the
 * benches run, a comparison table is printed: the library's loop and the C
 * program's own loop (in its own process, timed with `CLOCK_MONOTONIC`)
 * take turns for a few rounds, and the median of each is compared.
 *
 * The `deno bench` table then has four benches in one group:
 * - the library (`sendSync`, `recvSync`, `close`);
 * - the library's zero-allocation receive (`sendSync`, `recvIntoSync` into
 *   a reused buffer, `Int32Array` and result, `close` of the number);
 * - C through `Deno.dlopen`: one call of `fdpass_c_roundtrip()` per
 *   iteration, which does the whole round trip in C, so each iteration is C
 *   plus one FFI call (a few ns);
 * - the FFI floor: the same three syscalls called from JS with a prebuilt
 *   `msghdr` and no library code, which shows what the library itself
 *   costs on top of the FFI calls.
 *
 * Targets (issue 13): `recvSync` at least 0.85x C's speed, `recvIntoSync`
 * at least 0.90x.
 *
 * @module
 */

import { openFd, OwnedFd, type ReceivedInto, UnixSocket } from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { cmsgDataOffset, cmsgLen, cmsgSpace, FD_SIZE } from "../ffi/cmsg.ts";
import { buildC, median, runPeer } from "./support.ts";

const COMPARISON_ITERATIONS = 100_000;
const COMPARISON_ROUNDS = 3;

const devNull = openFd("/dev/null");
const one = new Uint8Array([120]);
const options = { fds: [devNull] };

const [libA, libB] = UnixSocket.pair();

/** One round trip through the library. */
function libraryRoundTrip(): void {
  libA.sendSync(one, options);
  const message = libB.recvSync();
  if (message === null || message.fds.length !== 1) throw new Error("Lost the fd");
  message.fds[0]!.close();
}

const intoBuffer = new Uint8Array(64 * 1024);
const intoFds = new Int32Array(253);
const intoResult: ReceivedInto = { bytes: 0, fds: 0, truncated: false, credentials: null };

/** One round trip with the zero-allocation receive. */
function libraryIntoRoundTrip(): void {
  libA.sendSync(one, options);
  const result = libB.recvIntoSync(intoBuffer, intoFds, intoResult);
  if (result === null || result.fds !== 1) throw new Error("Lost the fd");
  OwnedFd.closeNumber(intoFds[0]!);
}

// --- C, built now ---
const cProgram = buildC();
const cLibraryPath = buildC(true);
const cLibrary = typeof cLibraryPath === "string"
  ? Deno.dlopen(cLibraryPath, {
    fdpass_c_roundtrip: {
      parameters: [
        "i32", // int a
        "i32", // int b
        "i32", // int fd
      ],
      result: "i32",
    },
  })
  : null;
const [cA, cB] = UnixSocket.pair();

/** One round trip in C: a single FFI call does sendmsg, recvmsg and close. */
function cRoundTrip(): void {
  if (cLibrary!.symbols.fdpass_c_roundtrip(cA.fd, cB.fd, devNull.fd) !== 0) {
    throw new Error("fdpass_c_roundtrip failed");
  }
}

// --- the FFI floor: the syscalls from JS with no library code ---
const { lib, layout } = libc();
const [floorA, floorB] = UnixSocket.pair();

/** A msghdr with its iovec, 1 data byte and a control buffer, off-heap. */
function prebuiltHeader(controlBytes: number): { view: DataView; pointer: Deno.PointerObject } {
  const m = layout.msghdr;
  const iovOffset = 64;
  const dataOffset = iovOffset + layout.iovec.size;
  const controlOffset = dataOffset + 8;
  const memory = new ArrayBuffer(controlOffset + controlBytes);
  const view = new DataView(memory);
  const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(memory));
  const word = (offset: number, size: number, value: bigint) => {
    if (size === 8) view.setBigUint64(offset, value, true);
    else view.setUint32(offset, Number(value), true);
  };
  view.setBigUint64(m.iov, base + BigInt(iovOffset), true);
  word(m.iovlen, m.iovlenSize, 1n);
  view.setBigUint64(m.control, base + BigInt(controlOffset), true);
  word(m.controllen, m.controllenSize, BigInt(controlBytes));
  view.setBigUint64(iovOffset + layout.iovec.base, base + BigInt(dataOffset), true);
  view.setBigUint64(iovOffset + layout.iovec.len, 1n, true);
  view.setUint8(dataOffset, 120);
  // `memory` stays reachable through the view for as long as the header is used.
  return { view, pointer: Deno.UnsafePointer.create(base)! };
}
const floorSend = prebuiltHeader(cmsgSpace(layout, FD_SIZE));
{
  const h = layout.cmsghdr;
  const control = 64 + layout.iovec.size + 8;
  const len = cmsgLen(layout, FD_SIZE);
  if (h.lenSize === 8) floorSend.view.setBigUint64(control + h.len, BigInt(len), true);
  else floorSend.view.setUint32(control + h.len, len, true);
  floorSend.view.setInt32(control + h.level, layout.constants.SOL_SOCKET, true);
  floorSend.view.setInt32(control + h.type, layout.constants.SCM_RIGHTS, true);
  floorSend.view.setInt32(control + cmsgDataOffset(layout), devNull.fd, true);
}
const floorReceiveControl = cmsgSpace(layout, FD_SIZE);
const floorReceive = prebuiltHeader(floorReceiveControl);
const floorFdOffset = 64 + layout.iovec.size + 8 + cmsgDataOffset(layout);
const sendFlags = layout.constants.MSG_NOSIGNAL;
const receiveFlags = layout.constants.MSG_CMSG_CLOEXEC;
const controllen = layout.msghdr.controllen;

/** One round trip with raw FFI calls: the floor under any FFI library. */
function floorRoundTrip(): void {
  if (Number(lib.sendmsg(floorA.fd, floorSend.pointer, sendFlags)) !== 1) {
    throw new Error("sendmsg");
  }
  floorReceive.view.setUint32(controllen, floorReceiveControl, true);
  if (Number(lib.recvmsg(floorB.fd, floorReceive.pointer, receiveFlags)) !== 1) {
    throw new Error("recvmsg");
  }
  lib.close(floorReceive.view.getInt32(floorFdOffset, true));
}

// --- the printed comparison, measured before the benches run ---
function timeLoop(fn: () => void, iterations: number): number {
  for (let i = 0; i < Math.floor(iterations / 10) + 1; i++) fn();
  const start = performance.now();
  for (let i = 0; i < iterations; i++) fn();
  return (performance.now() - start) * 1e6 / iterations;
}

{
  const rows: [string, number[]][] = [
    ["fdpass: sendSync + recvSync + close", []],
    ["fdpass: sendSync + recvIntoSync + close", []],
    ["C (cc -O2), own process, own loop", []],
    ["C via Deno.dlopen, one call per round trip", []],
    ["FFI floor: the syscalls from JS, no library", []],
  ];
  for (let round = 0; round < COMPARISON_ROUNDS; round++) {
    rows[0]![1].push(timeLoop(libraryRoundTrip, COMPARISON_ITERATIONS));
    rows[1]![1].push(timeLoop(libraryIntoRoundTrip, COMPARISON_ITERATIONS));
    if (typeof cProgram === "string") {
      rows[2]![1].push(runPeer(cProgram, ["roundtrip", String(COMPARISON_ITERATIONS), "1", "1"]));
    }
    if (cLibrary !== null) rows[3]![1].push(timeLoop(cRoundTrip, COMPARISON_ITERATIONS));
    rows[4]![1].push(timeLoop(floorRoundTrip, COMPARISON_ITERATIONS));
  }
  const cNs = rows[2]![1].length > 0 ? median(rows[2]![1]) : NaN;
  const lines = [
    `Round trip, 1 byte + 1 fd (median of ${COMPARISON_ROUNDS} interleaved rounds of ${COMPARISON_ITERATIONS}):`,
    "| implementation | ns/op | ops/s | time ÷ C's |",
    "| --- | ---: | ---: | ---: |",
  ];
  for (const [name, values] of rows) {
    if (values.length === 0) {
      lines.push(`| ${name} | missing (${(cProgram as { missing: string }).missing}) | | |`);
      continue;
    }
    const ns = median(values);
    const ratio = Number.isNaN(cNs) ? "-" : `${(ns / cNs).toFixed(2)}x`;
    lines.push(`| ${name} | ${ns.toFixed(0)} | ${(1e9 / ns).toFixed(0)} | ${ratio} |`);
  }
  if (!Number.isNaN(cNs)) {
    for (const [row, goal] of [[0, 0.85], [1, 0.9]] as const) {
      const speed = cNs / median(rows[row]![1]);
      lines.push(
        `${rows[row]![0]}: ${speed.toFixed(2)}x C's ops/s; target: at least ${goal}x: ${
          speed >= goal ? "met" : "MISSED"
        }`,
      );
    }
  }
  console.log(lines.join("\n") + "\n");
}

Deno.bench({
  name: "fdpass: sendSync + recvSync + close",
  group: "round trip, 1 byte + 1 fd",
  fn: libraryRoundTrip,
});

Deno.bench({
  name: "fdpass: sendSync + recvIntoSync + close",
  group: "round trip, 1 byte + 1 fd",
  fn: libraryIntoRoundTrip,
});

Deno.bench({
  name: "C (cc -O2) via Deno.dlopen, one call per round trip",
  group: "round trip, 1 byte + 1 fd",
  baseline: true,
  ignore: cLibrary === null,
  fn: cRoundTrip,
});

Deno.bench({
  name: "FFI floor: sendmsg + recvmsg + close from JS, no library",
  group: "round trip, 1 byte + 1 fd",
  fn: floorRoundTrip,
});
