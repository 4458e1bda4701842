/**
 * SharedMapping and mapShared() (src/extras/shared_mapping.ts): mappings of
 * a MemFd or a regular file, copy-on-write, unmapping, and the argument
 * checks. Gated on memfd support like the MemFd tests, because these tests
 * have only ever run where memfd_create exists.
 *
 * @module
 */

import { assert, assertEquals, assertFalse, assertThrows } from "@std/assert";
import { ErrnoError, mapShared, MemFd, openFd } from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { decoder, encoder, leakCheckedTest } from "./helpers.ts";

const noMemfd = !libc().layout.features.memfd;

function bytesOf(mapping: { buffer: ArrayBuffer }): Uint8Array {
  return new Uint8Array(mapping.buffer);
}

function assertErrno(fn: () => unknown, code: string, syscall: string): ErrnoError {
  const error = assertThrows(fn, ErrnoError);
  assertEquals(error.code, code);
  assertEquals(error.syscall, syscall);
  return error;
}

leakCheckedTest("a copyOnWrite mapping keeps its writes private", () => {
  using memfd = MemFd.create({ size: 4096 });
  using shared = memfd.map();
  using cow = memfd.map({ copyOnWrite: true });
  assert(cow.copyOnWrite);
  bytesOf(shared)[0] = 1;
  assertEquals(bytesOf(cow)[0], 1, "an untouched private page shows the file");
  bytesOf(cow)[0] = 2;
  assertEquals(bytesOf(shared)[0], 1);
}, { ignore: noMemfd });

leakCheckedTest("SharedMapping.unmap() detaches the buffer and is idempotent", () => {
  using memfd = MemFd.create({ size: 4096 });
  const mapping = memfd.map();
  const view = bytesOf(mapping);
  const buffer = mapping.buffer;
  mapping.unmap();
  mapping.unmap();
  assertFalse(mapping.mapped);
  assert(buffer.detached);
  assertEquals(view.length, 0);
  assertEquals(view[0], undefined);
  assertEquals(mapping.byteLength, 4096);
  assertThrows(() => mapping.buffer, TypeError, "unmapped");
}, { ignore: noMemfd });

leakCheckedTest("SharedMapping.unmap() leaves memory mapped that was moved with transfer()", () => {
  using memfd = MemFd.create({ size: 4096 });
  const mapping = memfd.map();
  const moved = mapping.buffer.transfer();
  mapping.unmap();
  assertFalse(mapping.mapped);
  new Uint8Array(moved)[0] = 3; // would crash had the pages been unmapped
  using check = memfd.map();
  assertEquals(bytesOf(check)[0], 3);
}, { ignore: noMemfd });

leakCheckedTest("a mapping made by mapShared() outlives the MemFd", () => {
  const memfd = MemFd.create({ size: 4096 });
  const mapping = mapShared(memfd);
  memfd.close();
  assert(mapping.mapped, "mapShared() mappings are not tied to the MemFd");
  bytesOf(mapping)[0] = 9;
  assertEquals(bytesOf(mapping)[0], 9);
  mapping.unmap();
}, { ignore: noMemfd });

leakCheckedTest("mapShared() maps a regular file, and writes reach the file", () => {
  const path = Deno.makeTempFileSync({ prefix: "fdpass-memfd-test-" });
  try {
    Deno.writeTextFileSync(path, "0123456789");
    {
      using file = openFd(path, { read: true, write: true });
      using mapping = mapShared(file);
      assertEquals(mapping.byteLength, 10);
      assertEquals(decoder.decode(bytesOf(mapping)), "0123456789");
      encoder.encodeInto("ab", bytesOf(mapping));
    }
    assertEquals(Deno.readTextFileSync(path), "ab23456789");
  } finally {
    Deno.removeSync(path);
  }
}, { ignore: noMemfd });

leakCheckedTest("mapShared() of a read-only fd fails with EACCES unless copyOnWrite is set", () => {
  const path = Deno.makeTempFileSync({ prefix: "fdpass-memfd-test-" });
  try {
    Deno.writeTextFileSync(path, "read only");
    using file = openFd(path);
    assertErrno(() => mapShared(file), "EACCES", "mmap");
    using mapping = mapShared(file, { copyOnWrite: true });
    bytesOf(mapping)[0] = 0x52; // "R", private to this process
    assertEquals(Deno.readTextFileSync(path), "read only");
  } finally {
    Deno.removeSync(path);
  }
}, { ignore: noMemfd });

leakCheckedTest("mapShared() needs a length for an fd with no size", () => {
  using zero = openFd("/dev/zero", { read: true, write: true });
  assertThrows(() => mapShared(zero), TypeError, `Option "length" is required`);
  using mapping = mapShared(zero, { length: 4096 });
  assertEquals(bytesOf(mapping)[0], 0);
  assertThrows(() => mapShared("3" as unknown as number), TypeError, `Argument "fd"`);
}, { ignore: noMemfd });
