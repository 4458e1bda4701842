/**
 * A broker introduces two processes: the parent makes one socketpair per
 * child and starts each child with its end at fd 3 (`spawn` with `fds`; no
 * socket file anywhere). Then it makes a third socketpair and hands one end
 * to each child over those control sockets. From then on the children talk
 * to each other directly; the parent is no longer in the path (it closes
 * its copies right after sending).
 *
 * Each child sends its pid through the new socket and reports the pid it
 * heard to the broker, which checks they match the children it started.
 * `peerCredentials()` on a socketpair names the process that *created* the
 * pair: here, the broker, not the other child.
 *
 * Run it:
 *
 *     deno run --allow-ffi --allow-env --allow-run examples/broker.ts
 *
 * The children get only `--allow-ffi`; `spawn` reads the environment to pass
 * it on (`--allow-env`) and starts children through `/bin/sh`.
 *
 * @module
 */

import { spawn, type SpawnedProcess, UnixSocket } from "../mod.ts";

const PERMISSIONS = ["--allow-ffi"];
const TIMEOUT_MS = 15_000;
const decoder = new TextDecoder();
const [role = "broker"] = Deno.args;

function text(message: { data: Uint8Array } | null): string {
  return message === null ? "(end of stream)" : decoder.decode(message.data);
}

async function broker(): Promise<boolean> {
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  const children = new Map<string, SpawnedProcess>();
  const control = new Map<string, UnixSocket>();
  for (const name of ["alice", "bob"]) {
    const [mine, theirs] = UnixSocket.pair();
    // The child gets its end at fd 3; the parent's copy is closed at once,
    // so that the child's exit shows as end of stream.
    children.set(
      name,
      spawn(Deno.execPath(), {
        args: ["run", "--quiet", ...PERMISSIONS, import.meta.filename!, name],
        fds: [theirs],
        stdin: "null",
        signal,
      }),
    );
    theirs.close();
    control.set(name, mine);
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

async function peer(name: "alice" | "bob"): Promise<void> {
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  // fd 3: the control socket the broker started us with.
  using control = UnixSocket.from(3);
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
  const ok = await broker();
  console.log(ok ? "broker: ok, alice and bob talked directly" : "broker: FAILED");
  Deno.exitCode = ok ? 0 : 1;
} else if (role === "alice" || role === "bob") {
  await peer(role);
} else {
  console.error(`unknown role "${role}"`);
  Deno.exitCode = 2;
}
