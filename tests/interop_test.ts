/**
 * Interop with real peers in separate processes: Python's socket module
 * (`send_fds`/`recv_fds`, `sendmsg`/`recvmsg`), Perl's IO::FDPass, and a C
 * program built here that uses plain `sendmsg`/`recvmsg`. In each direction
 * the receiving side reads through every fd it got and checks the content.
 *
 * The peer gets its end of a `UnixSocket.pair()` as an inherited fd (made
 * inheritable and blocking just before the spawn, then closed here), or
 * connects to a `UnixSocket.listen()` path. Peers arm an alarm, and every
 * wait here is bounded: a peer that does not finish is killed.
 *
 * A missing peer (no python3, no IO::FDPass, no cc) makes its test show up as
 * ignored, with the reason in its name.
 *
 * @module
 */

import { assert, assertEquals } from "@std/assert";
import {
  borrowFd,
  openFd,
  type OwnedFd,
  pipe,
  recvFd,
  sendFd,
  type SocketType,
  UnixSocket,
} from "../mod.ts";
import { libc } from "../ffi/libc.ts";
import { decoder, hasCommand, leakCheckedTest, tempSocketPath } from "./helpers.ts";

const PEERS = new URL("./peers/", import.meta.url);
const PYTHON_PEER = new URL("python_peer.py", PEERS).pathname;
const PERL_PEER = new URL("perl_peer.pl", PEERS).pathname;
const C_PEER_SOURCE = new URL("c_peer.c", PEERS).pathname;

/** How long a peer may run (or take to connect) before it is killed. */
const PEER_TIMEOUT_MS = 15_000;

const TYPES: readonly SocketType[] = ["stream", "seqpacket"];

/** Whether `command args...` runs and exits 0. */
function commandSucceeds(command: string, args: string[]): boolean {
  try {
    return new Deno.Command(command, { args, stdin: "null", stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

const pythonMissing = !hasCommand("python3")
  ? "python3 not installed"
  : !commandSucceeds("python3", ["-c", "import socket; socket.send_fds; socket.recv_fds"])
  ? "python3 has no socket.send_fds (needs 3.9)"
  : null;
const perlMissing = !hasCommand("perl")
  ? "perl not installed"
  : !commandSucceeds("perl", ["-MIO::FDPass", "-e", "1"])
  ? "IO::FDPass not installed"
  : null;
const ccMissing = hasCommand("cc") ? null : "cc not installed";

function testName(name: string, missing: string | null): string {
  return missing === null ? name : `${name} (skipped: ${missing})`;
}

/** A child process running a peer; killed on dispose if still running. */
class Peer implements AsyncDisposable {
  readonly #name: string;
  readonly #child: Deno.ChildProcess;
  readonly #output: Promise<Deno.CommandOutput>;
  #exited = false;

  constructor(name: string, command: string, args: string[]) {
    this.#name = name;
    this.#child = new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#output = this.#child.output();
    this.#output.then(
      () => this.#exited = true,
      () => this.#exited = true,
    );
  }

  get exited(): boolean {
    return this.#exited;
  }

  /**
   * Waits for the peer to exit (killing it after {@linkcode PEER_TIMEOUT_MS})
   * and checks that it succeeded.
   *
   * @returns The non-empty lines it printed.
   */
  async finish(): Promise<string[]> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), PEER_TIMEOUT_MS);
    });
    const result = await Promise.race([this.#output, timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
      this.#kill();
      await this.#output;
      throw new Error(`${this.#name} did not exit within ${PEER_TIMEOUT_MS} ms and was killed`);
    }
    const stdout = decoder.decode(result.stdout);
    const stderr = decoder.decode(result.stderr);
    assert(
      result.success,
      `${this.#name} exited with code ${result.code}\nstdout: ${stdout}\nstderr: ${stderr}`,
    );
    return stdout.split("\n").filter((line) => line !== "");
  }

  #kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) this.#kill();
    await this.#output.catch(() => undefined);
  }
}

/**
 * Starts a peer that inherits `theirs` (made blocking and inheritable for
 * the spawn) and closes `theirs` here, so that the peer's exit is seen as end
 * of stream.
 */
function spawnOn(
  theirs: UnixSocket,
  name: string,
  command: string,
  args: (fd: number) => string[],
): Peer {
  try {
    const fd = borrowFd(theirs.fd);
    fd.nonblocking = false;
    fd.closeOnExec = false;
    return new Peer(name, command, args(theirs.fd));
  } finally {
    theirs.close();
  }
}

/** Polls `fd` for input without blocking the event loop; bounded. */
async function waitReadable(fd: number, peer: Peer): Promise<void> {
  const { lib, layout } = libc();
  const p = layout.pollfd;
  const buffer = new Uint8Array(p.size);
  const view = new DataView(buffer.buffer);
  const deadline = Date.now() + PEER_TIMEOUT_MS;
  for (;;) {
    view.setInt32(p.fd, fd, true);
    view.setInt16(p.events, layout.constants.POLLIN, true);
    view.setInt16(p.revents, 0, true);
    if (lib.poll(buffer, 1n, 0) > 0) return;
    if (peer.exited) throw new Error("The peer exited before fd became readable");
    if (Date.now() > deadline) {
      throw new Error(`fd ${fd} did not become readable within ${PEER_TIMEOUT_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Reads `fd` from its offset to the end. */
function readAll(fd: OwnedFd): string {
  const chunks: string[] = [];
  const buffer = new Uint8Array(4096);
  for (;;) {
    const n = fd.readSync(buffer);
    if (n === null) return chunks.join("");
    chunks.push(decoder.decode(buffer.subarray(0, n)));
  }
}

/** Creates `dir/name` holding `text` and opens it for reading. */
function fileWith(dir: string, name: string, text: string): OwnedFd {
  Deno.writeTextFileSync(`${dir}/${name}`, text);
  return openFd(`${dir}/${name}`);
}

/** A pipe whose write end already holds `text` and is closed. */
function pipeWith(text: string): OwnedFd {
  const [readEnd, writeEnd] = pipe();
  writeEnd.writeAllSync(text);
  writeEnd.close();
  return readEnd;
}

function closeAll(fds: Iterable<OwnedFd>): void {
  for (const fd of fds) fd.close();
}

const bytes = (data: Uint8Array): number[] => Array.from(data);

// --- Python -----------------------------------------------------------------

interface PythonReceived {
  data: string;
  fds: ({ read: string } | { wrote: string })[];
  ctrunc: boolean;
}

function pythonPeer(theirs: UnixSocket, ops: unknown[]): Peer {
  return spawnOn(
    theirs,
    "python peer",
    "python3",
    (fd) => [PYTHON_PEER, String(fd), JSON.stringify(ops)],
  );
}

leakCheckedTest(
  testName("interop with Python socket.send_fds/recv_fds and sendmsg/recvmsg", pythonMissing),
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "fdpass-interop-" });
    try {
      for (const type of TYPES) {
        await t.step(
          `Python receives files and pipe ends sent with sendSync() on a ${type} socket`,
          async () => {
            const [mine, theirs] = UnixSocket.pair(type);
            using _mine = mine;
            const files = [0, 1, 2].map((i) => fileWith(dir, `${type}-${i}`, `deno file ${i}`));
            const readable = pipeWith("deno pipe");
            const [resultEnd, writable] = pipe();
            try {
              // Everything is queued before the peer starts: it never waits.
              mine.sendSync("to recv_fds", { fds: [files[0]!, readable, files[1]!] });
              mine.sendSync("to recvmsg", { fds: [writable, files[2]!] });
            } finally {
              closeAll([...files, readable, writable]);
            }
            using _resultEnd = resultEnd;
            await using peer = pythonPeer(theirs, [
              { op: "recv", api: "recv_fds", maxFds: 8 },
              { op: "recv", api: "recvmsg", maxFds: 8, write: "python wrote " },
            ]);
            const [first, second] = (await peer.finish()).map((line) =>
              JSON.parse(line) as PythonReceived
            );
            assertEquals(first, {
              data: "to recv_fds",
              fds: [{ read: "deno file 0" }, { read: "deno pipe" }, { read: "deno file 1" }],
              ctrunc: false,
            });
            assertEquals(second, {
              data: "to recvmsg",
              fds: [{ wrote: "python wrote 0" }, { read: "deno file 2" }],
              ctrunc: false,
            });
            // The peer closed its copy of the write end and exited: the pipe
            // ends after what it wrote.
            assertEquals(readAll(resultEnd), "python wrote 0");
          },
        );

        await t.step(
          `recvSync() reads five files from one socket.send_fds message and a pipe from socket.sendmsg on a ${type} socket`,
          async () => {
            const [mine, theirs] = UnixSocket.pair(type);
            using _mine = mine;
            await using peer = pythonPeer(theirs, [
              {
                op: "send",
                api: "send_fds",
                data: "five",
                fds: [0, 1, 2, 3, 4].map((i) => ({ tmp: `python file ${i}` })),
              },
              {
                op: "send",
                api: "sendmsg",
                data: "pipe",
                fds: [{ pipe: "python pipe" }, { tmp: "python file 5" }],
              },
            ]);
            assertEquals(await peer.finish(), ['{"sent": 4}', '{"sent": 4}']);

            const five = mine.recvSync()!;
            try {
              assertEquals(decoder.decode(five.data), "five");
              assertEquals(five.truncated, false);
              assertEquals(five.fds.map((fd) => fd.kind), Array(5).fill("file"));
              assertEquals(
                five.fds.map(readAll),
                [0, 1, 2, 3, 4].map((i) => `python file ${i}`),
              );
            } finally {
              closeAll(five.fds);
            }
            const second = mine.recvSync()!;
            try {
              assertEquals(decoder.decode(second.data), "pipe");
              assertEquals(second.fds.map((fd) => fd.kind), ["pipe", "file"]);
              assertEquals(second.fds.map(readAll), ["python pipe", "python file 5"]);
            } finally {
              closeAll(second.fds);
            }
            assertEquals(mine.recvSync(), null);
          },
        );
      }

      await t.step(
        "recvSync() receives fds that socket.send_fds sends with no data on a seqpacket socket",
        async () => {
          const [mine, theirs] = UnixSocket.pair("seqpacket");
          using _mine = mine;
          await using peer = pythonPeer(theirs, [
            { op: "send", api: "send_fds", data: "", fds: [{ tmp: "empty record" }] },
          ]);
          assertEquals(await peer.finish(), ['{"sent": 0}']);
          const message = mine.recvSync();
          if (message === null) {
            throw new Error("An empty record with fds was taken for end of stream");
          }
          try {
            assertEquals(message.data.byteLength, 0);
            assertEquals(message.fds.map(readAll), ["empty record"]);
          } finally {
            closeAll(message.fds);
          }
          assertEquals(mine.recvSync(), null);
        },
      );

      await t.step(
        "fds that socket.send_fds sends with no data on a stream socket never arrive",
        async () => {
          const [mine, theirs] = UnixSocket.pair("stream");
          using _mine = mine;
          await using peer = pythonPeer(theirs, [
            { op: "send", api: "send_fds", data: "", fds: [{ tmp: "lost" }] },
            { op: "send", api: "sendmsg", data: "after", fds: [] },
          ]);
          assertEquals(await peer.finish(), ['{"sent": 0}', '{"sent": 5}']);
          const message = mine.recvSync()!;
          closeAll(message.fds);
          assertEquals(decoder.decode(message.data), "after");
          assertEquals(message.fds.length, 0);
          assertEquals(mine.recvSync(), null);
        },
      );

      await t.step(
        "Python connects to a UnixSocket.listen() path and receives an fd",
        async () => {
          const socketPath = tempSocketPath("python.sock");
          try {
            using listener = UnixSocket.listen(socketPath.path);
            await using peer = new Peer("python peer", "python3", [
              PYTHON_PEER,
              socketPath.path,
              JSON.stringify([{ op: "recv", api: "recv_fds", maxFds: 1 }]),
            ]);
            await waitReadable(listener.fd, peer);
            using server = listener.acceptSync();
            using file = fileWith(dir, "listen", "over a path");
            server.sendSync("via listener", { fds: [file] });
            assertEquals((await peer.finish()).map((line) => JSON.parse(line)), [
              { data: "via listener", fds: [{ read: "over a path" }], ctrunc: false },
            ]);
          } finally {
            socketPath.cleanup();
          }
        },
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
  { ignore: pythonMissing !== null },
);

// --- Perl IO::FDPass -------------------------------------------------------

function perlPeer(theirs: UnixSocket, ops: string[]): Peer {
  return spawnOn(theirs, "perl peer", "perl", (fd) => [PERL_PEER, String(fd), ...ops]);
}

leakCheckedTest(
  testName("interop with Perl IO::FDPass", perlMissing),
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "fdpass-interop-" });
    try {
      for (const type of TYPES) {
        await t.step(
          `recvFd() and recvSync() receive fds sent with IO::FDPass::send on a ${type} socket`,
          async () => {
            const [mine, theirs] = UnixSocket.pair(type);
            using _mine = mine;
            await using peer = perlPeer(theirs, [
              "send-tmp=perl file 0",
              "send-pipe=perl pipe 1",
              "send-tmp=perl file 2",
              "send-pipe=perl pipe 3",
            ]);
            assertEquals(await peer.finish(), Array(4).fill("sent"));

            {
              using fd = recvFd(mine);
              assertEquals(fd.kind, "file");
              assertEquals(readAll(fd), "perl file 0");
            }
            for (const expected of ["perl pipe 1", "perl file 2", "perl pipe 3"]) {
              if (expected.startsWith("perl file")) {
                using fd = recvFd(mine.fd);
                assertEquals(readAll(fd), expected);
                continue;
              }
              // IO::FDPass's wire format, seen through the general API: one
              // zero byte carrying one fd.
              const message = mine.recvSync()!;
              try {
                assertEquals(bytes(message.data), [0]);
                assertEquals(message.fds.length, 1);
                assertEquals(message.fds[0]!.kind, "pipe");
                assertEquals(readAll(message.fds[0]!), expected);
              } finally {
                closeAll(message.fds);
              }
            }
            assertEquals(mine.recvSync(), null);
          },
        );

        await t.step(
          `IO::FDPass::recv reads fds sent with sendFd() and sendSync() on a ${type} socket`,
          async () => {
            const [mine, theirs] = UnixSocket.pair(type);
            using _mine = mine;
            const [resultEnd, writable] = pipe();
            using _resultEnd = resultEnd;
            const file = fileWith(dir, `perl-${type}`, "deno file");
            const readable = pipeWith("deno pipe");
            try {
              sendFd(mine, file);
              sendFd(mine.fd, writable.fd);
              // The same wire format through the general API.
              mine.sendSync(new Uint8Array([0]), { fds: [readable] });
            } finally {
              closeAll([file, writable, readable]);
            }
            await using peer = perlPeer(theirs, [
              "recv-read",
              "recv-write=perl wrote",
              "recv-read",
            ]);
            assertEquals(await peer.finish(), [
              "read=deno file",
              "wrote=perl wrote",
              "read=deno pipe",
            ]);
            assertEquals(readAll(resultEnd), "perl wrote");
          },
        );
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
  { ignore: perlMissing !== null },
);

// --- C sendmsg/recvmsg -------------------------------------------------------

leakCheckedTest(
  testName("interop with a C peer using plain sendmsg/recvmsg", ccMissing),
  async (t) => {
    const dir = Deno.makeTempDirSync({ prefix: "fdpass-interop-" });
    try {
      const binary = `${dir}/c_peer`;
      await t.step("the C peer compiles", async () => {
        const result = await new Deno.Command("cc", {
          args: ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", binary, C_PEER_SOURCE],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert(result.success, `cc failed:\n${decoder.decode(result.stderr)}`);
      });
      const cPeer = (theirs: UnixSocket, args: string[]): Peer =>
        spawnOn(theirs, "C peer", binary, (fd) => [String(fd), ...args]);

      for (const type of TYPES) {
        await t.step(
          `recvSync() reads eight fds sent in one message by C sendmsg on a ${type} socket`,
          async () => {
            const [mine, theirs] = UnixSocket.pair(type);
            using _mine = mine;
            const items = [0, 1, 2, 3, 4, 5, 6, 7].map((i) =>
              i % 2 === 0 ? `p:c pipe ${i}` : `f:c file ${i}`
            );
            await using peer = cPeer(theirs, ["send", "42", ...items]);
            assertEquals(await peer.finish(), ["sent=8"]);
            const message = mine.recvSync()!;
            try {
              assertEquals(bytes(message.data), [42]);
              assertEquals(message.truncated, false);
              assertEquals(
                message.fds.map((fd) => fd.kind),
                items.map((item) => item.startsWith("p:") ? "pipe" : "file"),
              );
              assertEquals(message.fds.map(readAll), items.map((item) => item.slice(2)));
            } finally {
              closeAll(message.fds);
            }
            assertEquals(mine.recvSync(), null);
          },
        );

        await t.step(
          `recvFd() receives an fd sent by C sendmsg with a zero byte on a ${type} socket`,
          async () => {
            const [mine, theirs] = UnixSocket.pair(type);
            using _mine = mine;
            await using peer = cPeer(theirs, ["send", "0", "f:one from c"]);
            assertEquals(await peer.finish(), ["sent=1"]);
            using fd = recvFd(mine);
            assertEquals(readAll(fd), "one from c");
          },
        );

        await t.step(
          `C recvmsg reads sixteen fds sent with sendSync() on a ${type} socket`,
          async () => {
            const [mine, theirs] = UnixSocket.pair(type);
            using _mine = mine;
            const texts = Array.from({ length: 16 }, (_, i) => `deno ${i}`);
            const fds = texts.map((text, i) =>
              i % 2 === 0 ? pipeWith(text) : fileWith(dir, `c-${type}-${i}`, text)
            );
            try {
              mine.sendSync("L", { fds });
            } finally {
              closeAll(fds);
            }
            await using peer = cPeer(theirs, ["recv", "16"]);
            assertEquals(await peer.finish(), [
              "bytes=1 byte=76 fds=16 ctrunc=0",
              ...texts.map((text, i) => `fd${i}=${text}`),
            ]);
          },
        );

        await t.step(
          `C recvmsg with room for two of three fds gets two and MSG_CTRUNC on a ${type} socket`,
          async () => {
            const [mine, theirs] = UnixSocket.pair(type);
            using _mine = mine;
            const fds = ["a", "b", "c"].map((text) => pipeWith(text));
            try {
              mine.sendSync("T", { fds });
            } finally {
              closeAll(fds);
            }
            await using peer = cPeer(theirs, ["recv", "2"]);
            assertEquals(await peer.finish(), [
              "bytes=1 byte=84 fds=2 ctrunc=1",
              "fd0=a",
              "fd1=b",
            ]);
          },
        );
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
  { ignore: ccMissing !== null },
);
