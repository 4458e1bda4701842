/**
 * A passed fd shares its file offset: the parent opens a file, reads the
 * first 32 bytes and passes the fd; the child's first read continues at
 * byte 32, exactly where the parent stopped. Both hold the same open file
 * description, so the child's reads move the parent's offset too: when the
 * child is done, the parent is at the end of the file.
 *
 * Run it:
 *
 *     deno run --allow-ffi --allow-write --allow-run examples/shared_offset.ts
 *
 * @module
 */

import { openFd, UnixSocket } from "../mod.ts";

const PERMISSIONS = ["--allow-ffi"];
const TIMEOUT_MS = 15_000;
const decoder = new TextDecoder();
const [role = "parent", ...args] = Deno.args;

const HEAD = "0123456789abcdefghijklmnopqrstuv"; // 32 bytes
const TAIL = "the child starts reading here, at byte 32: the offset travels with the fd\n";

if (role === "parent") {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-offset-" });
  try {
    const file = `${dir}/data.txt`;
    Deno.writeTextFileSync(file, HEAD + TAIL);
    const path = `${dir}/control.sock`;
    using listener = UnixSocket.listen(path);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...PERMISSIONS, import.meta.filename!, "child", path],
      stdin: "null",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
    const signal = AbortSignal.timeout(TIMEOUT_MS);

    using fd = openFd(file);
    const head = new Uint8Array(32);
    if (fd.readSync(head) !== 32) throw new Error("short read");
    console.log(`parent: read bytes 0..31: "${decoder.decode(head)}"`);

    using socket = await listener.accept({ signal });
    socket.sendSync("continue reading", { fds: [fd] });
    console.log("parent: passed the fd; the child reads on from the shared offset");
    const reply = await socket.recv({ signal });
    const childRead = reply === null ? "" : decoder.decode(reply.data);
    const status = await child.status;
    clearTimeout(timer);

    // The child read to the end through the same open file description,
    // so this fd is at the end of the file too.
    const after = fd.readSync(new Uint8Array(1));
    console.log(`parent: my next read returns ${after === null ? "end of file" : `${after} byte`}`);
    const ok = status.success && childRead === TAIL && after === null;
    console.log(ok ? "parent: ok" : `parent: FAILED (child read "${childRead}")`);
    Deno.exitCode = ok ? 0 : 1;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
} else if (role === "child") {
  using socket = UnixSocket.connectSync(args[0]!);
  const message = socket.recvSync();
  if (message === null || message.fds.length !== 1) throw new Error("expected one fd");
  using fd = message.fds[0]!;
  // Read to the end: the first read starts where the parent stopped.
  const buffer = new Uint8Array(4096);
  let text = "";
  for (let n = fd.readSync(buffer); n !== null; n = fd.readSync(buffer)) {
    text += decoder.decode(buffer.subarray(0, n));
  }
  console.log(`child:  read bytes 32..${32 + text.length - 1}: "${text.trimEnd()}"`);
  socket.sendSync(text);
} else {
  console.error(`unknown role "${role}"`);
  Deno.exitCode = 2;
}
