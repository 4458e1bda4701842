/**
 * 253 fds in one message, the most Linux accepts (`SCM_MAX_FD`).
 *
 * The parent makes 253 pipes, writes `pipe #i` into each and closes the
 * write ends, then sends all 253 read ends in a single message. The child
 * reads every received fd to its end and checks that fd number `i` in the
 * message says `pipe #i`: all arrived, in order, none mixed up. A 254th fd
 * is refused before anything is sent.
 *
 * Run it:
 *
 *     deno run --allow-ffi --allow-write --allow-run examples/many_fds.ts
 *
 * @module
 */

import { type OwnedFd, pipe, UnixSocket } from "../mod.ts";

const PERMISSIONS = ["--allow-ffi"];
const TIMEOUT_MS = 15_000;
const COUNT = 253;
const decoder = new TextDecoder();
const [role = "parent", ...args] = Deno.args;

async function parent(dir: string): Promise<boolean> {
  const path = `${dir}/control.sock`;
  using listener = UnixSocket.listen(path);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMISSIONS, import.meta.filename!, "child", path],
    stdin: "null",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  const readEnds: OwnedFd[] = [];
  try {
    for (let i = 0; i < COUNT; i++) {
      const [r, w] = pipe();
      w.writeAllSync(`pipe #${i}`);
      w.close();
      readEnds.push(r);
    }
    using socket = await listener.accept({ signal });
    try {
      socket.sendSync("one too many", { fds: [...readEnds, readEnds[0]!] });
      console.log("parent: FAILED, 254 fds were accepted");
      return false;
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      console.log(`parent: 254 fds refused: ${error.message}`);
    }
    socket.sendSync(`${COUNT} pipes`, { fds: readEnds });
    const numbers = readEnds.map((fd) => fd.fd);
    console.log(
      `parent: sent ${COUNT} read ends (fds ${Math.min(...numbers)}..${
        Math.max(...numbers)
      }) in one message`,
    );
    for (const fd of readEnds) fd.close();
    const report = await socket.recv({ signal });
    const text = report === null ? "(nothing)" : decoder.decode(report.data);
    console.log(`parent: the child reports "${text}"`);
    return (await child.status).success && text === `${COUNT} of ${COUNT} fds checked`;
  } finally {
    clearTimeout(timer);
    for (const fd of readEnds) fd.close();
  }
}

function childRole(path: string): void {
  using socket = UnixSocket.connectSync(path);
  const message = socket.recvSync({ maxFds: COUNT });
  if (message === null) throw new Error("no message");
  console.log(
    `child:  received "${decoder.decode(message.data)}" with ${message.fds.length} fds, numbered ${
      message.fds[0]?.fd
    }..${message.fds.at(-1)?.fd}`,
  );
  const buffer = new Uint8Array(64);
  let good = 0;
  message.fds.forEach((fd, i) => {
    let text = "";
    for (let n = fd.readSync(buffer); n !== null; n = fd.readSync(buffer)) {
      text += decoder.decode(buffer.subarray(0, n));
    }
    if (text === `pipe #${i}`) good++;
    else console.log(`child:  fd ${i} says "${text}", expected "pipe #${i}"`);
    fd.close();
  });
  socket.sendSync(`${good} of ${COUNT} fds checked`);
}

if (role === "parent") {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-many-" });
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
