/**
 * OwnedFd, BorrowedFd, openFd() and pipe() (src/owned_fd.ts): ownership,
 * kinds, flags, sync I/O, the garbage-collection backstop, and the hand-offs
 * to `Deno.FsFile` and `node:net`.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertFalse,
  assertNotEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { BorrowedFd, borrowFd, Descriptor, openFd, OwnedFd, pipe, UnixSocket } from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import {
  decoder,
  encoder,
  expectSuccess,
  isOpen,
  isReady,
  leakCheckedTest,
  offsetOf,
  readUpTo,
  spawnDeno,
} from "./helpers.ts";

function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** A temp directory removed by `cleanup()`. */
function tempDir(): { dir: string; cleanup(): void } {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-fd-test-" });
  return { dir, cleanup: () => Deno.removeSync(dir, { recursive: true }) };
}

/** An openable block device, if this machine has one (listing /dev needs --allow-all). */

function findBlockDevice(): OwnedFd | null {
  for (const path of ["/dev/loop0", "/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/xvda"]) {
    try {
      const fd = openFd(path, { nonblocking: true });
      if (fd.kind === "block") return fd;
      fd.close();
    } catch {
      // Missing or not permitted.
    }
  }
  return null;
}

/** The process umask, read without changing it (via a shell). */

function umask(): number {
  const output = new Deno.Command("sh", { args: ["-c", "umask"], stdout: "piped" }).outputSync();
  return parseInt(decoder.decode(output.stdout).trim(), 8);
}

leakCheckedTest("OwnedFd.close() is idempotent and `closed` reports it", () => {
  const fd = openFd("/dev/null");
  const number = fd.fd;
  assertFalse(fd.closed);
  fd.close();
  assert(fd.closed);
  assertFalse(isOpen(number));
  fd.close();
  assert(fd.closed);
});

leakCheckedTest("`using` closes an OwnedFd at the end of the scope", () => {
  let number: number;
  {
    using fd = openFd("/dev/null");
    number = fd.fd;
    assert(isOpen(number));
  }
  assertFalse(isOpen(number));
  const fd = openFd("/dev/null");
  fd[Symbol.dispose]();
  assert(fd.closed);
});

leakCheckedTest("OwnedFd.release() gives up ownership without closing", () => {
  const fd = openFd("/dev/null");
  const number = fd.release();
  assert(fd.closed);
  assert(isOpen(number));
  fd.close(); // Does not close the released number.
  assert(isOpen(number));
  assertThrows(() => fd.release(), TypeError);
  const adopted = new OwnedFd(number);
  assertEquals(adopted.fd, number);
  adopted.close();
  assertFalse(isOpen(number));
});

leakCheckedTest("dup() makes a new close-on-exec number for the same open file description", () => {
  const path = Deno.makeTempFileSync({ prefix: "fdpass-fd-" });
  try {
    Deno.writeTextFileSync(path, "0123456789");
    const original = openFd(path);
    original.closeOnExec = false;
    const copy = original.dup();
    assertNotEquals(copy.fd, original.fd);
    assert(copy.closeOnExec, "F_DUPFD_CLOEXEC");
    assertFalse(original.closeOnExec, "the fd flag is per number");
    assertEquals(copy.stat().ino, original.stat().ino);
    // Shared open file description: offset and status flags.
    assertEquals(text(readUpTo(original, 4)), "0123");
    assertEquals(text(readUpTo(copy, 2)), "45");
    copy.nonblocking = true;
    assert(original.nonblocking, "O_NONBLOCK is per open file description");
    // Closing one leaves the other.
    original.close();
    assertEquals(text(readUpTo(copy, 10)), "6789");
    copy.close();
    // A borrowed fd can be duplicated into an owned one.
    using stdoutCopy = borrowFd(1).dup();
    assert(stdoutCopy.fd > 2);
  } finally {
    Deno.removeSync(path);
  }
});

leakCheckedTest("kind tells a file, directory, socket, pipe and character device apart", () => {
  const path = Deno.makeTempFileSync({ prefix: "fdpass-fd-" });
  try {
    using file = openFd(path);
    const dirPath = Deno.makeTempDirSync({ prefix: "fdpass-fd-" });
    using directory = openFd(dirPath, { directory: true });
    using devNull = openFd("/dev/null");
    const [r, w] = pipe();
    const [a, b] = UnixSocket.pair();
    using socket = a.toOwnedFd();
    assertEquals(file.kind, "file");
    assertEquals(directory.kind, "directory");
    assertEquals(devNull.kind, "character");
    assertEquals(r.kind, "pipe");
    assertEquals(w.kind, "pipe");
    assertEquals(socket.kind, "socket");
    assertEquals(borrowFd(b.fd).kind, "socket");
    Deno.removeSync(dirPath);
    r.close();
    w.close();
    b.close();
  } finally {
    Deno.removeSync(path);
  }
});

leakCheckedTest("kind tells a block device, when one can be opened", () => {
  const block = findBlockDevice();
  if (block === null) return; // No block device in this container.
  assertEquals(block.kind, "block");
  block.close();
});

leakCheckedTest("stat() matches Deno.statSync()", () => {
  const path = Deno.makeTempFileSync({ prefix: "fdpass-fd-" });
  try {
    Deno.writeTextFileSync(path, "twelve bytes");
    using fd = openFd(path);
    const mine = fd.stat();
    const deno = Deno.statSync(path);
    assertEquals(mine.kind, "file");
    assertEquals(mine.size, 12);
    assertEquals(mine.ino, BigInt(deno.ino!));
    assertEquals(mine.dev, BigInt(deno.dev));
    assertEquals(mine.mode, deno.mode);
  } finally {
    Deno.removeSync(path);
  }
});

leakCheckedTest("closeOnExec and nonblocking read and set the fd and status flags", () => {
  const [r, w] = pipe();
  assert(r.closeOnExec);
  assert(w.closeOnExec);
  assertFalse(r.nonblocking);
  r.closeOnExec = false;
  assertFalse(r.closeOnExec);
  r.closeOnExec = true;
  assert(r.closeOnExec);
  r.nonblocking = true;
  assert(r.nonblocking);
  assertFalse(w.nonblocking, "the two ends are separate descriptions");
  // Nonblocking does not disturb other status flags.
  const { fcntl, layout } = libc();
  const c = layout.constants;
  assertEquals(fcntl(w.fd, c.F_GETFL, 0) & c.O_ACCMODE, c.O_WRONLY);
  w.nonblocking = true;
  assertEquals(fcntl(w.fd, c.F_GETFL, 0) & c.O_ACCMODE, c.O_WRONLY);
  r.nonblocking = false;
  assertFalse(r.nonblocking);
  r.close();
  w.close();
});

leakCheckedTest(
  "readSync() and writeSync() move bytes through a pipe and fail with EBADF on the wrong end",
  () => {
    const [r, w] = pipe();
    assertEquals(w.writeSync(encoder.encode("abc")), 3);
    assertEquals(w.writeSync(new Uint8Array(0)), 0);
    w.writeAllSync("def");
    assertEquals(r.readSync(new Uint8Array(0)), 0);
    const buffer = new Uint8Array(16);
    assertEquals(r.readSync(buffer), 6);
    assertEquals(text(buffer.subarray(0, 6)), "abcdef");
    w.close();
    assertEquals(r.readSync(buffer), null);
    // Reading the write end fails with the errno, not a hang.
    const [r2, w2] = pipe();
    assertThrows(() => w2.readSync(buffer), Deno.errors.BadResource, "read failed: EBADF");
    assertThrows(() => r2.writeSync(buffer), Deno.errors.BadResource, "write failed: EBADF");
    r.close();
    r2.close();
    w2.close();
  },
);

leakCheckedTest(
  "readSync() on a nonblocking fd waits for data instead of throwing EAGAIN",
  async () => {
    const [r, w] = pipe();
    w.closeOnExec = false; // Hand the write end to a shell (dash takes only fds 0-9 in redirections).
    const child = new Deno.Command("sh", {
      args: ["-c", `sleep 0.2; printf late > /proc/self/fd/${w.fd}`],
      stdin: "null",
    }).spawn();
    w.close();
    r.nonblocking = true;
    try {
      assertFalse(isReady(r.fd));
      // Blocks in poll until the shell writes, or returns null if it exits.
      const buffer = new Uint8Array(8);
      const n = r.readSync(buffer);
      assertEquals(n, 4);
      assertEquals(text(buffer.subarray(0, 4)), "late");
      assert(r.nonblocking, "the mode is left as it was");
      assertEquals((await child.status).code, 0);
    } finally {
      r.close();
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await child.status;
    }
  },
);

leakCheckedTest(
  "writeSync() on a full nonblocking pipe waits instead of throwing EAGAIN",
  async () => {
    const [r, w] = pipe();
    w.nonblocking = true;
    // Fill the pipe with raw writes until the kernel says EAGAIN.
    const { lib, errno, layout } = libc();
    const chunk = new Uint8Array(4096);
    let filled = 0;
    for (;;) {
      const n = Number(lib.write(w.fd, chunk, BigInt(chunk.byteLength)));
      if (n < 0) {
        assertEquals(errno[0], layout.errno.EAGAIN);
        break;
      }
      filled += n;
    }
    assert(filled > 0);
    r.closeOnExec = false;
    const child = new Deno.Command("sh", {
      args: ["-c", `sleep 0.2; cat /proc/self/fd/${r.fd} >/dev/null`],
      stdin: "null",
    }).spawn();
    r.close();
    try {
      assertEquals(w.writeSync(encoder.encode("more")), 4);
      w.close(); // cat sees EOF.
      assertEquals((await child.status).code, 0);
    } finally {
      w.close();
      try {
        child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await child.status;
    }
  },
);

leakCheckedTest("borrowFd() never closes the number", () => {
  const owned = openFd("/dev/null");
  const borrowed = borrowFd(owned.fd);
  assert(borrowed instanceof BorrowedFd);
  assert(borrowed instanceof Descriptor);
  assertFalse("close" in borrowed);
  assertFalse(Symbol.dispose in borrowed);
  assertEquals(borrowed.fd, owned.fd);
  assertEquals(borrowed.kind, "character");
  // Sending a borrowed fd leaves it open.
  const [a, b] = UnixSocket.pair();
  a.sendSync("x", { fds: [borrowed] });
  b.recvSync()!.fds[0]!.close();
  assert(isOpen(owned.fd));
  owned.close();
  a.close();
  b.close();
  assertStringIncludes(Deno.inspect(borrowFd(2)), "BorrowedFd { fd: 2 }");
});

leakCheckedTest("Deno.inspect() shows an OwnedFd's fd, or closed", () => {
  const fd = openFd("/dev/null");
  assertEquals(Deno.inspect(fd), `OwnedFd { fd: ${fd.fd} }`);
  fd.close();
  assertEquals(Deno.inspect(fd), "OwnedFd { closed }");
});

leakCheckedTest("pipe() ends are close-on-exec and point one way", () => {
  const [r, w] = pipe();
  const { fcntl, layout } = libc();
  const c = layout.constants;
  assertEquals(fcntl(r.fd, c.F_GETFL, 0) & c.O_ACCMODE, c.O_RDONLY);
  assertEquals(fcntl(w.fd, c.F_GETFL, 0) & c.O_ACCMODE, c.O_WRONLY);
  assert(r.closeOnExec && w.closeOnExec);
  r.close();
  w.close();
});

leakCheckedTest("openFd() honours create, createNew, truncate, append and mode", () => {
  const temp = tempDir();
  try {
    const path = `${temp.dir}/file.txt`;
    assertThrows(() => openFd(path), Deno.errors.NotFound);
    assertThrows(() => openFd(path, { write: true }), Deno.errors.NotFound);

    const created = openFd(path, { write: true, create: true, mode: 0o640 });
    created.writeAllSync("first line\n");
    created.close();
    assertEquals(Deno.statSync(path).mode! & 0o777, 0o640 & ~umask());
    assertEquals(Deno.readTextFileSync(path), "first line\n");

    const error = assertThrows(() => openFd(path, { write: true, createNew: true }));
    assert(error instanceof Deno.errors.AlreadyExists);
    assertStringIncludes((error as Error).message, `open "${path}" failed: EEXIST`);

    // create on an existing file keeps its content; write starts at 0.
    const overwrite = openFd(path, { write: true, create: true });
    overwrite.writeAllSync("FIRST");
    overwrite.close();
    assertEquals(Deno.readTextFileSync(path), "FIRST line\n");

    // append writes at the end whatever the offset.
    const appender = openFd(path, { append: true });
    appender.writeAllSync("second line\n");
    appender.close();
    assertEquals(Deno.readTextFileSync(path), "FIRST line\nsecond line\n");
    const both = openFd(path, { read: true, append: true });
    assertEquals(text(readUpTo(both, 5)), "FIRST");
    both.writeAllSync("third\n");
    assertEquals(Deno.readTextFileSync(path), "FIRST line\nsecond line\nthird\n");
    both.close();

    const truncated = openFd(path, { write: true, truncate: true });
    assertEquals(truncated.stat().size, 0);
    truncated.close();
    assertEquals(Deno.readTextFileSync(path), "");

    // createNew on a missing path creates it.
    using fresh = openFd(`${temp.dir}/new.txt`, { write: true, createNew: true, mode: 0o600 });
    assertEquals(fresh.stat().mode & 0o777, 0o600);
  } finally {
    temp.cleanup();
  }
});

leakCheckedTest("openFd() opens read-only by default and write-only with write", () => {
  const temp = tempDir();
  try {
    const path = `${temp.dir}/f`;
    Deno.writeTextFileSync(path, "data");
    using reader = openFd(path);
    assertThrows(() => reader.writeSync(encoder.encode("x")), Deno.errors.BadResource);
    using writer = openFd(path, { write: true });
    assertThrows(() => writer.readSync(new Uint8Array(1)), Deno.errors.BadResource);
    using readWrite = openFd(path, { read: true, write: true });
    assertEquals(text(readUpTo(readWrite, 4)), "data");
    readWrite.writeAllSync("!");
    assertEquals(Deno.readTextFileSync(path), "data!");
  } finally {
    temp.cleanup();
  }
});

leakCheckedTest(
  "openFd() honours directory, noFollow and nonblocking, and accepts file: URLs",
  () => {
    const temp = tempDir();
    try {
      const path = `${temp.dir}/target`;
      Deno.writeTextFileSync(path, "x");
      Deno.symlinkSync(path, `${temp.dir}/link`);
      using directory = openFd(temp.dir, { directory: true });
      assertEquals(directory.kind, "directory");
      assertThrows(() => openFd(path, { directory: true }), Deno.errors.NotADirectory);
      assertThrows(
        () => openFd(`${temp.dir}/link`, { noFollow: true }),
        Deno.errors.FilesystemLoop,
      );
      using followed = openFd(`${temp.dir}/link`);
      assertEquals(followed.kind, "file");
      using nonblocking = openFd(path, { nonblocking: true });
      assert(nonblocking.nonblocking);
      using fromUrl = openFd(new URL(`file://${path}`));
      assertEquals(fromUrl.stat().ino, followed.stat().ino);
      assert(fromUrl.closeOnExec);
    } finally {
      temp.cleanup();
    }
  },
);

leakCheckedTest(
  "toFsFile() keeps the offset of a file and works on pipes (child with --allow-all)",
  async () => {
    // Deno 2.9 opens /proc/self/fd/N only with --allow-all.
    const temp = tempDir();
    try {
      const child = spawnDeno("fs_file_child.ts", [`${temp.dir}/file.txt`], {
        permissions: ["--allow-all"],
      });
      const report = JSON.parse(await expectSuccess(child));
      assertEquals(report, {
        file: { rest: "abcdef", ownedClosed: true, numberClosed: true },
        pipe: { text: "through FsFile", eof: null },
      });
    } finally {
      temp.cleanup();
    }
  },
);

leakCheckedTest("toFsFile() in this process works, or leaves the fd open when Deno refuses", () => {
  const path = Deno.makeTempFileSync({ prefix: "fdpass-fd-" });
  try {
    Deno.writeTextFileSync(path, "0123456789");
    const fd = openFd(path);
    readUpTo(fd, 4);
    let file: Deno.FsFile;
    try {
      file = fd.toFsFile();
    } catch (error) {
      assert(error instanceof Deno.errors.NotCapable, String(error));
      assertFalse(fd.closed, "a refused hand-off must leave the fd owned");
      assertEquals(offsetOf(fd.fd), 4);
      fd.close();
      return;
    }
    assert(fd.closed);
    assertEquals(text(readUpTo({ readSync: (b) => file.readSync(b) }, 16)), "456789");
    file.close();
  } finally {
    Deno.removeSync(path);
  }
});

leakCheckedTest("toFsFile() on a socket or directory throws a TypeError and keeps the fd", () => {
  const [a, b] = UnixSocket.pair();
  const socket = a.toOwnedFd();
  assertThrows(
    () => socket.toFsFile(),
    TypeError,
    "Cannot reopen a socket fd as a Deno.FsFile: only files and pipes can be reopened",
  );
  assertFalse(socket.closed);
  socket.close();
  b.close();
  using directory = openFd("/", { directory: true });
  assertThrows(() => directory.toFsFile(), TypeError, "Cannot reopen a directory fd");
  assertFalse(directory.closed);
});

leakCheckedTest("toNetSocket() on a file throws a TypeError and keeps the fd", () => {
  using devNull = openFd("/dev/null");
  assertThrows(
    () => devNull.toNetSocket(),
    TypeError,
    "Cannot wrap a character fd in a net.Socket",
  );
  assertFalse(devNull.closed);
});

leakCheckedTest("a garbage-collected OwnedFd closes its fd (child with --expose-gc)", async () => {
  const child = spawnDeno("gc_child.ts", [], {
    flags: ["--v8-flags=--expose-gc"],
    permissions: ["--allow-ffi"],
  });
  const report = JSON.parse(await expectSuccess(child));
  assert(report.openAtFirst);
  assert(report.closed, `fd ${report.fd} stayed open after garbage collection`);
});
