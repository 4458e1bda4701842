/**
 * A broker introduces two processes: the parent makes a socketpair and
 * hands one end to each of two children over their control connections.
 * From then on the children talk to each other directly; the parent is no
 * longer in the path (it closes its copies right after sending).
 *
 * Each child sends its pid through the new socket and reports the pid it
 * heard to the broker, which checks they match the children it started.
 * `peerCredentials()` on a socketpair names the process that *created* the
 * pair: here, the broker, not the other child.
 *
 * Run it:
 *
 *     deno run --allow-ffi --allow-write --allow-run examples/broker.ts
 *
 * @module
 */

import { UnixSocket } from "../mod.ts";

const PERMISSIONS = ["--allow-ffi"];
const TIMEOUT_MS = 15_000;
const decoder = new TextDecoder();
const [role = "broker", ...args] = Deno.args;

function text(message: { data: Uint8Array } | null): string {
  return message === null ? "(end of stream)" : decoder.decode(message.data);
}

async function broker(dir: string): Promise<boolean> {
  const path = `${dir}/broker.sock`;
  using listener = UnixSocket.listen(path);
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  const children = new Map<string, Deno.ChildProcess>();
  for (const name of ["alice", "bob"]) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...PERMISSIONS, import.meta.filename!, name, path],
      stdin: "null",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
    child.status.finally(() => clearTimeout(timer));
    children.set(name, child);
  }

  // Each child connects and says who it is.
  const control = new Map<string, UnixSocket>();
  for (let i = 0; i < 2; i++) {
    const socket = await listener.accept({ signal });
    control.set(text(await socket.recv({ signal })), socket);
  }
  const alice = control.get("alice")!;
  const bob = control.get("bob")!;

  // The introduction: one socketpair, one end each.
  const [forAlice, forBob] = UnixSocket.pair();
  alice.sendSync("your peer is bob", { fds: [forAlice] });
  bob.sendSync("your peer is alice", { fds: [forBob] });
  forAlice.close();
  forBob.close();
  console.log(`broker ${Deno.pid}: introduced alice and bob, and closed my copies of the pair`);

  const reports = new Map<string, string>();
  for (const [name, socket] of control) {
    reports.set(name, text(await socket.recv({ signal })));
    socket.close();
  }
  for (const [name, report] of reports) console.log(`broker: ${name} reports: ${report}`);

  const aliceStatus = await children.get("alice")!.status;
  const bobStatus = await children.get("bob")!.status;
  const alicePid = children.get("alice")!.pid;
  const bobPid = children.get("bob")!.pid;
  return aliceStatus.success && bobStatus.success &&
    reports.get("alice") === `got "pong from ${bobPid}"; pair made by ${Deno.pid}` &&
    reports.get("bob") === `got "ping from ${alicePid}"; pair made by ${Deno.pid}`;
}

async function peer(name: "alice" | "bob", path: string): Promise<void> {
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  using control = await UnixSocket.connect(path, { signal });
  control.sendSync(name);
  const introduction = await control.recv({ signal });
  if (introduction?.fds.length !== 1) throw new Error(`${name}: expected one socket`);
  using direct = UnixSocket.from(introduction.fds[0]!);
  const creator = direct.peerCredentials().pid;
  console.log(`${name} ${Deno.pid}: ${text(introduction)}`);

  let heard: string;
  if (name === "alice") {
    direct.sendSync(`ping from ${Deno.pid}`);
    heard = text(await direct.recv({ signal }));
  } else {
    heard = text(await direct.recv({ signal }));
    direct.sendSync(`pong from ${Deno.pid}`);
  }
  console.log(`${name} ${Deno.pid}: heard "${heard}" directly from my peer`);
  control.sendSync(`got "${heard}"; pair made by ${creator}`);
}

if (role === "broker") {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-broker-" });
  try {
    const ok = await broker(dir);
    console.log(ok ? "broker: ok, alice and bob talked directly" : "broker: FAILED");
    Deno.exitCode = ok ? 0 : 1;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
} else if (role === "alice" || role === "bob") {
  await peer(role, args[0]!);
} else {
  console.error(`unknown role "${role}"`);
  Deno.exitCode = 2;
}
