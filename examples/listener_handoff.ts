/**
 * A zero-downtime restart by handing over a live listening socket.
 *
 * An old server process creates a listening TCP socket on 127.0.0.1 and
 * serves HTTP on it with `node:http`. A client hammers the port. A new
 * server process starts, connects to the old one over a Unix socket and
 * receives the listening fd; it serves the same socket with
 * `server.listen({ fd })`. For a moment both accept from the same queue.
 * Then the old one stops accepting (`server.close()`, which lets requests
 * in flight finish) and exits. The socket itself never closes, so the
 * kernel keeps queueing connections throughout: the client sees no refused
 * or failed request.
 *
 * Run it:
 *
 *     deno run --allow-ffi --allow-write --allow-run --allow-net=127.0.0.1 examples/listener_handoff.ts
 *
 * The servers need only `--allow-ffi`: serving an fd needs no net
 * permission. The client (this process) needs `--allow-net=127.0.0.1`.
 *
 * @module
 */

import { createServer, type Server } from "node:http";
import { listenTcp, UnixSocket } from "../mod.ts";

const SERVER_PERMISSIONS = ["--allow-ffi"];
const TIMEOUT_MS = 30_000;
const CLIENT_WORKERS = 8;
const REQUESTS_PER_PHASE = 300; // each server answers at least this many
const MAX_REQUESTS = 20_000;
const decoder = new TextDecoder();
const [role = "main", ...args] = Deno.args;

/** Event reports from the servers to main, one per seqpacket record. */
type Report =
  | { event: "serving"; port: number }
  | { event: "stopped"; served: number };

function parse(message: { data: Uint8Array } | null): Report {
  if (message === null) throw new Error("a server closed its control socket early");
  return JSON.parse(decoder.decode(message.data));
}

/** Starts serving on a listening fd; the server takes ownership of it. */
function serve(fd: number, name: string, onRequest: () => void): Promise<Server> {
  const server = createServer((_request, response) => {
    onRequest();
    // One request per connection, so each request is a fresh connect(),
    // which is what a hand-over can break.
    response.setHeader("connection", "close");
    response.end(`${name} ${Deno.pid}`);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ fd }, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) =>
    server.close((error) => error ? reject(error) : resolve())
  );
}

/** The client: CLIENT_WORKERS loops of fetch until stopped. */
class Hammer {
  readonly counts = { old: 0, new: 0, failed: 0 };
  readonly errors: string[] = [];
  #stopped = false;
  readonly done: Promise<void>;

  constructor(port: number) {
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    const url = `http://127.0.0.1:${port}/`;
    const worker = async (): Promise<void> => {
      while (!this.#stopped && this.total < MAX_REQUESTS) {
        try {
          const response = await fetch(url, { client, signal: AbortSignal.timeout(5_000) });
          const body = await response.text();
          const name = body.split(" ")[0];
          if (response.ok && (name === "old" || name === "new")) this.counts[name]++;
          else throw new Error(`unexpected response ${response.status} "${body}"`);
        } catch (error) {
          this.counts.failed++;
          if (this.errors.length < 5) this.errors.push(String(error));
        }
      }
    };
    const workers = Array.from({ length: CLIENT_WORKERS }, worker);
    this.done = Promise.all(workers).then(() => client.close());
  }

  get total(): number {
    return this.counts.old + this.counts.new + this.counts.failed;
  }

  /** Resolves once `predicate` holds, checking between requests; bounded. */
  async until(predicate: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + TIMEOUT_MS;
    while (!predicate()) {
      if (Date.now() > deadline || this.total >= MAX_REQUESTS) {
        throw new Error(`gave up waiting for ${what}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  stop(): Promise<void> {
    this.#stopped = true;
    return this.done;
  }
}

async function main(dir: string): Promise<boolean> {
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  using control = UnixSocket.listen(`${dir}/control.sock`, { type: "seqpacket" });
  const children: Deno.ChildProcess[] = [];
  const spawn = (role: string): Deno.ChildProcess => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", ...SERVER_PERMISSIONS, import.meta.filename!, role, dir],
      stdin: "null",
    }).spawn();
    children.push(child);
    return child;
  };
  const killer = setTimeout(() => children.forEach((c) => c.kill("SIGKILL")), TIMEOUT_MS);
  try {
    const oldServer = spawn("old");
    using oldControl = await control.accept({ signal });
    const serving = parse(await oldControl.recv({ signal }));
    if (serving.event !== "serving") throw new Error("the old server did not start");
    console.log(`main: old server ${oldServer.pid} serves 127.0.0.1:${serving.port}; hammering it`);

    const hammer = new Hammer(serving.port);
    await hammer.until(() => hammer.counts.old >= REQUESTS_PER_PHASE, "the old server");

    const newServer = spawn("new");
    console.log(
      `main: ${hammer.total} requests so far; starting new server ${newServer.pid} to take over`,
    );
    using newControl = await control.accept({ signal });
    parse(await newControl.recv({ signal }));
    const oldStopped = parse(await oldControl.recv({ signal }));
    const atHandover = { ...hammer.counts };
    console.log(
      `main: the old server stopped after serving ${
        oldStopped.event === "stopped" ? oldStopped.served : "?"
      } requests; ${hammer.total} requests so far`,
    );
    await hammer.until(
      () => hammer.counts.new >= atHandover.new + REQUESTS_PER_PHASE,
      "the new server",
    );
    await hammer.stop();

    newControl.sendSync("stop");
    const newStopped = parse(await newControl.recv({ signal }));
    const statuses = await Promise.all(children.map((c) => c.status));

    const { old, new: fresh, failed } = hammer.counts;
    console.log(
      `main: ${hammer.total} requests: ${old} served by old, ${fresh} by new, ${failed} failed`,
    );
    for (const error of hammer.errors) console.log(`main: failure: ${error}`);
    return failed === 0 && old > 0 && fresh > 0 &&
      oldStopped.event === "stopped" && oldStopped.served === old &&
      newStopped.event === "stopped" && newStopped.served === fresh &&
      statuses.every((s) => s.success);
  } finally {
    clearTimeout(killer);
  }
}

async function oldRole(dir: string): Promise<void> {
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  using control = await UnixSocket.connect(`${dir}/control.sock`, { type: "seqpacket", signal });
  using handoff = UnixSocket.listen(`${dir}/handoff.sock`);

  const { handle, port } = listenTcp({ hostname: "127.0.0.1", port: 0 });
  const fd = handle.release(); // node:http owns it from here; we keep the number to pass on
  let served = 0;
  const server = await serve(fd, "old", () => served++);
  control.sendSync(JSON.stringify({ event: "serving", port }));

  // A successor connects; give it the listening socket (a copy of the fd:
  // the same socket, the same queue of connections).
  using successor = await handoff.accept({ signal });
  successor.sendSync("the listening socket", { fds: [fd] });
  await successor.recv({ signal }); // "accepting": it serves now
  console.log(`old ${Deno.pid}: the new server accepts; I stop accepting after ${served} requests`);
  await close(server); // closes my fd; requests in flight finish first
  control.sendSync(JSON.stringify({ event: "stopped", served }));
}

async function newRole(dir: string): Promise<void> {
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  using control = await UnixSocket.connect(`${dir}/control.sock`, { type: "seqpacket", signal });
  using predecessor = await UnixSocket.connect(`${dir}/handoff.sock`, { signal });
  const message = await predecessor.recv({ signal });
  if (message?.fds.length !== 1) throw new Error("expected the listening socket");
  let served = 0;
  const server = await serve(message.fds[0]!.release(), "new", () => served++);
  predecessor.sendSync("accepting");
  console.log(`new ${Deno.pid}: received the listening socket and serve it`);
  control.sendSync(JSON.stringify({ event: "serving", port: 0 }));
  await control.recv({ signal }); // "stop"
  await close(server);
  control.sendSync(JSON.stringify({ event: "stopped", served }));
}

if (role === "main") {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-handoff-" });
  try {
    const ok = await main(dir);
    console.log(ok ? "main: ok, no request failed across the hand-over" : "main: FAILED");
    Deno.exitCode = ok ? 0 : 1;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
} else if (role === "old") {
  await oldRole(args[0]!);
} else if (role === "new") {
  await newRole(args[0]!);
} else {
  console.error(`unknown role "${role}"`);
  Deno.exitCode = 2;
}
