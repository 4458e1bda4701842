/**
 * Shared memory between two processes: a memfd mapped in both as an
 * `ArrayBuffer`, with an eventfd passed alongside for notification.
 *
 * The parent creates a 1 MiB memfd, writes a question at the start, seals
 * the size (so that the child can map it without fear of the file
 * shrinking under it, which would crash it with SIGBUS), and sends the
 * memfd and an eventfd to the child. The child maps the memfd, reads the
 * question, writes an answer and fills the rest with a pattern, then
 * signals the eventfd. The parent, waiting on the eventfd asynchronously,
 * wakes up and reads it all from its own mapping: no bytes were copied
 * through the socket.
 *
 * Run it (Linux):
 *
 *     deno run --allow-ffi --allow-write --allow-run examples/shared_memory.ts
 *
 * @module
 */

import { EventFd, MemFd, UnixSocket } from "../mod.ts";

const PERMISSIONS = ["--allow-ffi"];
const TIMEOUT_MS = 15_000;
const SIZE = 1024 * 1024;
const HEADER = 4096; // question and answer live in the first page
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const [role = "parent", ...args] = Deno.args;

/** A NUL-terminated string at `offset`. */
function readString(bytes: Uint8Array, offset: number): string {
  const end = bytes.indexOf(0, offset);
  return decoder.decode(bytes.subarray(offset, end < 0 ? bytes.length : end));
}

/** The byte the child writes at `i` in the bulk area. */
function pattern(i: number): number {
  return (i * 31 + 7) & 0xff;
}

async function parent(dir: string): Promise<boolean> {
  const path = `${dir}/control.sock`;
  using listener = UnixSocket.listen(path);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMISSIONS, import.meta.filename!, "child", path],
    stdin: "null",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  try {
    using memfd = MemFd.create({ name: "fdpass-example", size: SIZE });
    using mapping = memfd.map();
    const bytes = new Uint8Array(mapping.buffer);
    encoder.encodeInto("what is six times seven?\0", bytes);
    memfd.seal(["shrink", "grow"]);
    using done = EventFd.create();

    using socket = await listener.accept({ signal });
    socket.sendSync("shared memory + eventfd", { fds: [memfd, done] });
    console.log(
      `parent: sent a ${SIZE / 1024} KiB memfd (sealed: ${
        memfd.seals.join(", ")
      }) and an eventfd; waiting`,
    );

    const count = await done.wait({ signal });
    const answer = readString(bytes, 1024);
    let mismatches = 0;
    for (let i = HEADER; i < SIZE; i++) if (bytes[i] !== pattern(i)) mismatches++;
    console.log(`parent: woken with count ${count}; the child wrote "${answer}"`);
    console.log(
      `parent: checked ${SIZE - HEADER} pattern bytes in my own mapping: ${mismatches} mismatches`,
    );
    return (await child.status).success && count === 1n &&
      answer === "42, from the other process" && mismatches === 0;
  } finally {
    clearTimeout(timer);
  }
}

function childRole(path: string): void {
  using socket = UnixSocket.connectSync(path);
  const message = socket.recvSync();
  if (message?.fds.length !== 2) throw new Error("expected a memfd and an eventfd");
  using memfd = MemFd.from(message.fds[0]!);
  using done = EventFd.from(message.fds[1]!);
  // Only map memory whose size cannot shrink under us.
  if (!memfd.seals.includes("shrink")) throw new Error("the memfd is not sealed against shrinking");
  using mapping = memfd.map();
  const bytes = new Uint8Array(mapping.buffer);
  const question = readString(bytes, 0);
  console.log(`child:  mapped ${memfd.size / 1024} KiB; the parent asks "${question}"`);
  encoder.encodeInto("42, from the other process\0", bytes.subarray(1024));
  for (let i = HEADER; i < bytes.length; i++) bytes[i] = pattern(i);
  done.signal();
  console.log("child:  answered in shared memory and signalled the eventfd");
}

if (role === "parent") {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-shm-" });
  try {
    const ok = await parent(dir);
    console.log(ok ? "parent: ok" : "parent: FAILED");
    Deno.exitCode = ok ? 0 : 1;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
} else if (role === "child") {
  childRole(args[0]!);
} else {
  console.error(`unknown role "${role}"`);
  Deno.exitCode = 2;
}
