/**
 * How fds travel on a stream socket, in three scenes, each with a child
 * process as the sender and this process as the reader:
 *
 * 1. The fd message is a read barrier. The child writes `AAA`, `BBB` with
 *    an fd, `CCC` with an fd, `DDD`, `EEE` before the parent reads. A read
 *    that reaches an fd-carrying write stops at its end, and two fd-carrying
 *    writes are never merged: the reads return `AAABBB` (fd), `CCC` (fd),
 *    `DDDEEE`.
 * 2. Fds the reader does not accept are closed. The child sends the write
 *    ends of three pipes; the parent receives with `maxFds: 0`, so the
 *    library closes them; the child, holding the read ends, sees end of
 *    file on all three.
 * 3. A zero-byte message with an fd. On a stream the kernel would return 0
 *    from sendmsg and silently drop (close) the fd, because a stream has
 *    no byte for it to ride on; the library refuses the send with a
 *    TypeError instead. On a seqpacket socket the empty record is delivered
 *    with its fd.
 *
 * Run it (Linux, for seqpacket):
 *
 *     deno run --allow-ffi --allow-write --allow-run examples/stream_semantics.ts
 *
 * @module
 */

import { ControlTruncatedError, type OwnedFd, pipe, UnixSocket } from "../mod.ts";

const PERMISSIONS = ["--allow-ffi"];
const TIMEOUT_MS = 15_000;
const decoder = new TextDecoder();
const [role = "parent", ...args] = Deno.args;

/** Reads a pipe to its end and closes it. */
function drain(fd: OwnedFd): string {
  const buffer = new Uint8Array(256);
  let text = "";
  for (let n = fd.readSync(buffer); n !== null; n = fd.readSync(buffer)) {
    text += decoder.decode(buffer.subarray(0, n));
  }
  fd.close();
  return text;
}

/** A pipe whose read end yields `text` and then end of file. */
function pipeHolding(text: string): OwnedFd {
  const [r, w] = pipe();
  w.writeAllSync(text);
  w.close();
  return r;
}

function spawnChild(role: string, roleArgs: string[]): Deno.ChildProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMISSIONS, import.meta.filename!, role, ...roleArgs],
    stdin: "null",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  child.status.finally(() => clearTimeout(timer));
  return child;
}

async function parent(dir: string): Promise<boolean> {
  const streamPath = `${dir}/stream.sock`;
  const seqpacketPath = `${dir}/seqpacket.sock`;
  using listener = UnixSocket.listen(streamPath);
  using seqpacketListener = UnixSocket.listen(seqpacketPath, { type: "seqpacket" });
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  let ok = true;

  console.log("scene 1: the fd message is a read barrier");
  {
    const child = spawnChild("barrier", [streamPath]);
    using socket = await listener.accept({ signal });
    // Let the child write everything first, so the reads show the kernel's
    // boundaries and not the timing.
    const status = await child.status;
    const reads: string[] = [];
    for (let m = socket.recvSync(); m !== null; m = socket.recvSync()) {
      const fds = m.fds.map((fd) => `fd saying "${drain(fd)}"`);
      const line = `"${decoder.decode(m.data)}"${fds.length > 0 ? ` + ${fds.join(", ")}` : ""}`;
      console.log(`  parent read ${line}`);
      reads.push(line);
    }
    const expected = [
      `"AAABBB" + fd saying "first"`,
      `"CCC" + fd saying "second"`,
      `"DDDEEE"`,
    ];
    const passed = status.success && JSON.stringify(reads) === JSON.stringify(expected);
    console.log(passed ? "  ok" : `  FAILED: expected ${expected.join(" | ")}`);
    ok &&= passed;
  }

  console.log("scene 2: fds the reader does not accept are closed");
  {
    const child = spawnChild("refused", [streamPath]);
    using socket = await listener.accept({ signal });
    try {
      await socket.recv({ maxFds: 0, signal });
      console.log("  FAILED: the message was accepted");
      ok = false;
    } catch (error) {
      if (!(error instanceof ControlTruncatedError)) throw error;
      console.log(
        `  parent refused "${
          decoder.decode(error.data)
        }": ${error.received} fds arrived and were closed`,
      );
    }
    const report = await socket.recv({ signal });
    const text = report === null ? "(nothing)" : decoder.decode(report.data);
    console.log(`  child reports: ${text}`);
    const passed = (await child.status).success && text === "3 of 3 pipes reached end of file";
    console.log(passed ? "  ok" : "  FAILED");
    ok &&= passed;
  }

  console.log("scene 3: a zero-byte message with an fd, on a stream and on seqpacket");
  {
    const child = spawnChild("empty", [streamPath, seqpacketPath]);
    using stream = await listener.accept({ signal });
    const refusal = await stream.recv({ signal });
    const refusalText = refusal === null ? "(nothing)" : decoder.decode(refusal.data);
    console.log(`  stream: the child's send was refused: ${refusalText}`);
    using seqpacket = await seqpacketListener.accept({ signal });
    const record = await seqpacket.recv({ signal });
    const fdText = record?.fds.length === 1 ? drain(record.fds[0]!) : "(no fd)";
    console.log(
      `  seqpacket: received a record of ${record?.data.length} bytes with ${record?.fds.length} fd saying "${fdText}"`,
    );
    const passed = (await child.status).success &&
      refusalText.startsWith("TypeError: ") &&
      record?.data.length === 0 && fdText === "sent with zero bytes";
    console.log(passed ? "  ok" : "  FAILED");
    ok &&= passed;
  }
  return ok;
}

async function child(role: string): Promise<void> {
  if (role === "barrier") {
    using socket = UnixSocket.connectSync(args[0]!);
    using first = pipeHolding("first");
    using second = pipeHolding("second");
    socket.sendSync("AAA");
    socket.sendSync("BBB", { fds: [first] });
    socket.sendSync("CCC", { fds: [second] });
    socket.sendSync("DDD");
    socket.sendSync("EEE");
  } else if (role === "refused") {
    using socket = UnixSocket.connectSync(args[0]!);
    const pipes = [pipe(), pipe(), pipe()];
    socket.sendSync("three pipe write ends", { fds: pipes.map(([, w]) => w) });
    for (const [, w] of pipes) w.close();
    // The only other copies of the write ends were in the message: once the
    // parent's side closes them, each read end reports end of file.
    let ended = 0;
    for (const [r] of pipes) {
      const n = await r.read(new Uint8Array(1), { signal: AbortSignal.timeout(TIMEOUT_MS) });
      if (n === null) ended++;
      r.close();
    }
    socket.sendSync(`${ended} of 3 pipes reached end of file`);
  } else if (role === "empty") {
    using fd = pipeHolding("sent with zero bytes");
    using stream = UnixSocket.connectSync(args[0]!);
    try {
      stream.sendSync("", { fds: [fd] });
      stream.sendSync("the empty send went through");
    } catch (error) {
      stream.sendSync(String(error));
    }
    using seqpacket = UnixSocket.connectSync(args[1]!, { type: "seqpacket" });
    seqpacket.sendSync("", { fds: [fd] });
  }
}

if (role === "parent") {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-stream-" });
  try {
    const ok = await parent(dir);
    console.log(ok ? "all scenes ok" : "FAILED");
    Deno.exitCode = ok ? 0 : 1;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
} else if (["barrier", "refused", "empty"].includes(role)) {
  await child(role);
} else {
  console.error(`unknown role "${role}"`);
  Deno.exitCode = 2;
}
