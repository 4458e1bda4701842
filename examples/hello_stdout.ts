/**
 * Keith Packard's first fd-passing experiment: a parent hands its stdout to
 * a child over a Unix socket, and the child writes `hello, world` through it.
 *
 * The child is started with its own stdout going to /dev/null, so the only
 * way its words can reach the parent's stdout is through the passed fd.
 * To check that, the example runs the parent as a subprocess with its
 * stdout captured, then looks for the line in the capture.
 *
 * Run it:
 *
 *     deno run --allow-ffi --allow-write --allow-run examples/hello_stdout.ts
 *
 * Roles (the first argument): none starts `parent` and checks its stdout;
 * `parent` passes fd 1 to a `child`; `child` writes through what it got.
 *
 * @module
 */

import { borrowFd, UnixSocket } from "../mod.ts";

const PERMISSIONS = ["--allow-ffi", "--allow-write", "--allow-run"];
const TIMEOUT_MS = 15_000;
const [role = "main", ...args] = Deno.args;

/** Starts this file again in another role. */
function spawnSelf(role: string, roleArgs: string[], stdout: "piped" | "null"): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", ...PERMISSIONS, import.meta.filename!, role, ...roleArgs],
    stdin: "null",
    stdout,
    stderr: "inherit",
  }).spawn();
}

if (role === "main") {
  // Run the parent with its stdout captured, so that we can read what
  // arrived there.
  const parent = spawnSelf("parent", [], "piped");
  const timer = setTimeout(() => parent.kill("SIGKILL"), TIMEOUT_MS);
  const { code, stdout } = await parent.output();
  clearTimeout(timer);
  const lines = new TextDecoder().decode(stdout).split("\n").filter((line) => line !== "");
  console.log("main: the parent's stdout (a pipe) carried these lines:");
  for (const line of lines) console.log(`  | ${line}`);
  const ok = code === 0 && lines.filter((line) => line === "hello, world").length === 1;
  console.log(
    ok
      ? `main: ok, "hello, world" reached the parent's stdout, written by a child whose own stdout is /dev/null`
      : `main: FAILED (parent exit code ${code})`,
  );
  Deno.exitCode = ok ? 0 : 1;
} else if (role === "parent") {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-hello-" });
  try {
    const path = `${dir}/control.sock`;
    using listener = UnixSocket.listen(path);
    const child = spawnSelf("child", [path], "null");
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
    const signal = AbortSignal.timeout(TIMEOUT_MS);
    using socket = await listener.accept({ signal });
    const stdout = borrowFd(1);
    console.log(
      `parent ${Deno.pid}: passing my stdout (fd 1, a ${stdout.kind}) to child ${child.pid}`,
    );
    socket.sendSync("here is my stdout", { fds: [stdout] });
    const reply = await socket.recv({ signal });
    const status = await child.status;
    clearTimeout(timer);
    const text = reply === null ? "(nothing)" : new TextDecoder().decode(reply.data);
    console.log(`parent ${Deno.pid}: child says "${text}" and exited with code ${status.code}`);
    if (text !== "done" || !status.success) Deno.exitCode = 1;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
} else if (role === "child") {
  using socket = UnixSocket.connectSync(args[0]!);
  const message = socket.recvSync();
  if (message === null || message.fds.length !== 1) {
    throw new Error(`child ${Deno.pid}: expected one fd`);
  }
  using theirStdout = message.fds[0]!;
  theirStdout.writeAllSync("hello, world\n");
  socket.sendSync("done");
} else {
  console.error(`unknown role "${role}"`);
  Deno.exitCode = 2;
}
