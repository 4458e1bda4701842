/**
 * fd passing across languages: this program receives an fd from Python
 * (`socket.send_fds`) and from Perl (`IO::FDPass::send`), and sends one
 * to each (`socket.recv_fds`, `IO::FDPass::recv`).
 *
 * Each peer connects to a Unix socket this program listens on, sends the
 * read end of a pipe it wrote a line into, then receives the write end of
 * a pipe of ours and writes a line back through it. A peer that is not
 * installed (python3 3.9+, perl with IO::FDPass) is skipped with a note.
 *
 * Perl's IO::FDPass sends exactly one fd with one zero byte per message;
 * `sendFd`/`recvFd` speak that convention. Python's `send_fds` takes any
 * data and a list of fds, like `sendSync`.
 *
 * Run it:
 *
 *     deno run --allow-ffi --allow-write --allow-run examples/peers.ts
 *
 * @module
 */

import { type OwnedFd, pipe, recvFd, sendFd, UnixSocket, waitReadable } from "../mod.ts";

const TIMEOUT_MS = 15_000;
const decoder = new TextDecoder();

const PYTHON = `
import os, signal, socket, sys
signal.alarm(15)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
r, w = os.pipe()
os.write(w, b"hello from python, through a pipe it sent with socket.send_fds")
os.close(w)
socket.send_fds(s, [b"from python"], [r])
os.close(r)
data, fds, flags, address = socket.recv_fds(s, 1024, 1)
os.write(fds[0], b"python wrote this into the fd it received with socket.recv_fds")
os.close(fds[0])
s.close()
`;

const PERL = `
use strict; use warnings; use IO::Socket::UNIX; use IO::FDPass;
alarm 15;
my $s = IO::Socket::UNIX->new(Peer => $ARGV[0], Type => SOCK_STREAM) or die "connect: $!";
pipe(my $r, my $w) or die "pipe: $!";
syswrite($w, "hello from perl, through a pipe it sent with IO::FDPass::send") or die;
close $w;
IO::FDPass::send(fileno $s, fileno $r) or die "IO::FDPass::send: $!";
close $r;
my $fd = IO::FDPass::recv(fileno $s);
die "IO::FDPass::recv: $!" if $fd < 0;
open(my $out, ">&=", $fd) or die "fdopen: $!";
syswrite($out, "perl wrote this into the fd it received with IO::FDPass::recv") or die;
close $out;
`;

/** Whether a command runs and exits 0. */
async function works(command: string, args: string[]): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(command, { args, stdout: "null", stderr: "null" })
      .output();
    return success;
  } catch {
    return false;
  }
}

/** Reads a pipe to its end, without blocking the event loop, and closes it. */
async function drain(fd: OwnedFd, signal: AbortSignal): Promise<string> {
  const buffer = new Uint8Array(1024);
  let text = "";
  for (
    let n = await fd.read(buffer, { signal });
    n !== null;
    n = await fd.read(buffer, { signal })
  ) {
    text += decoder.decode(buffer.subarray(0, n));
  }
  fd.close();
  return text;
}

interface Peer {
  name: string;
  command: string;
  args: string[];
  /** Receives the peer's fd with the peer's own convention. */
  receive(socket: UnixSocket, signal: AbortSignal): Promise<OwnedFd>;
  /** Sends our fd with the peer's own convention. */
  send(socket: UnixSocket, fd: OwnedFd): void;
}

const peers: Peer[] = [
  {
    name: "python",
    command: "python3",
    args: ["-c", PYTHON],
    async receive(socket, signal): Promise<OwnedFd> {
      const message = await socket.recv({ signal });
      if (message?.fds.length !== 1) throw new Error("expected one fd from python");
      console.log(`  received "${decoder.decode(message.data)}" with 1 fd`);
      return message.fds[0]!;
    },
    send(socket, fd): void {
      socket.sendSync("from deno", { fds: [fd] });
    },
  },
  {
    name: "perl",
    command: "perl",
    args: ["-e", PERL],
    async receive(socket, signal): Promise<OwnedFd> {
      // IO::FDPass's message is one zero byte: wait until it is there, then
      // take it with recvFd(), which checks the convention.
      await waitReadable(socket, { signal });
      const fd = recvFd(socket);
      console.log("  received one fd with one zero byte (IO::FDPass convention)");
      return fd;
    },
    send(socket, fd): void {
      sendFd(socket, fd);
    },
  },
];

async function exchange(peer: Peer, dir: string): Promise<boolean> {
  const path = `${dir}/${peer.name}.sock`;
  using listener = UnixSocket.listen(path);
  const child = new Deno.Command(peer.command, { args: [...peer.args, path], stdin: "null" })
    .spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  try {
    using socket = await listener.accept({ signal });
    const theirs = await peer.receive(socket, signal);
    const fromThem = await drain(theirs, signal);
    console.log(`  their pipe says: "${fromThem}"`);

    const [r, w] = pipe();
    peer.send(socket, w);
    w.close();
    const fromOurs = await drain(r, signal);
    console.log(`  our pipe says:   "${fromOurs}"`);
    const status = await child.status;
    return status.success && fromThem.startsWith(`hello from ${peer.name}`) &&
      fromOurs.startsWith(`${peer.name} wrote this`);
  } finally {
    clearTimeout(timer);
  }
}

const dir = Deno.makeTempDirSync({ prefix: "fdpass-peers-" });
let failed = 0;
let ran = 0;
try {
  for (const peer of peers) {
    const available = peer.name === "python"
      ? await works("python3", ["-c", "import socket; socket.send_fds"])
      : await works("perl", ["-MIO::FDPass", "-e", "1"]);
    if (!available) {
      console.log(
        peer.name === "python"
          ? "python: skipped, python3 3.9+ (for socket.send_fds) is not installed"
          : "perl: skipped, perl with IO::FDPass (libio-fdpass-perl) is not installed",
      );
      continue;
    }
    console.log(`${peer.name}:`);
    ran++;
    const ok = await exchange(peer, dir);
    console.log(ok ? "  ok" : "  FAILED");
    if (!ok) failed++;
  }
} finally {
  Deno.removeSync(dir, { recursive: true });
}
if (failed > 0) console.log(`${failed} peer(s) FAILED`);
else if (ran === 0) console.log("no peer is installed: nothing was exchanged");
else console.log(`ok: exchanged fds with ${ran} peer(s) written in other languages`);
Deno.exitCode = failed > 0 ? 1 : 0;
