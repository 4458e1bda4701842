/**
 * `fdpass recv`: listen on a Unix socket, receive messages, and describe
 * every fd that arrives.
 *
 * @module
 */

import { UnixSocket } from "../unix_socket.ts";
import type { ReceivedMessage } from "../unix_socket.ts";
import type { UnixListener } from "../unix_listener.ts";
import type { UnixAddress } from "../address.ts";
import {
  EXIT_OK,
  nonNegativeInteger,
  parseCommand,
  requireValue,
  socketAddress,
  UsageError,
} from "./args.ts";
import {
  catable,
  describeFd,
  encodeBytes,
  type Encoding,
  type FdReport,
  readContent,
} from "./describe_fd.ts";

/** One received message, as printed by `fdpass recv --json` (one object per line). */
export interface MessageReport {
  /** The data bytes, as text or hex. */
  data: string;
  /** How `data` is encoded. */
  dataEncoding: Encoding;
  /** The fds that came with the data, in order. */
  fds: FdReport[];
}

/** Default for `--cat-limit`: 1 MiB per fd. */
export const DEFAULT_CAT_LIMIT = 1024 * 1024;

/** The `--help` text of `fdpass recv`. */
export const RECV_HELP = `fdpass recv: receive messages and file descriptors on a Unix socket

Usage:
  fdpass recv --listen PATH [--abstract] [--count N] [--json] [--cat] [--cat-limit BYTES]

Listens on PATH, accepts connections one after another, and receives
messages until N messages have arrived. For each message it prints the data
(as text when it is valid UTF-8, else as hex) and, for each fd: its number
here, kind, path (from /proc/self/fd), size and flags. Every received fd is
closed after it is printed.

A stale socket file at PATH (one nobody listens on) is replaced; a live
socket or any other kind of file is left alone and is an error. The socket
file is removed on exit, also on Ctrl-C (SIGINT) and SIGTERM.

Options:
  --listen PATH       Socket path to listen on (required).
  --abstract          PATH is a Linux abstract socket name (no file).
  --count N           Messages to receive before exiting; 0 means no limit.
                      A connection that ends moves on to the next one.
                      Default: 1.
  --json              One JSON object per message, one per line:
                      {"data", "dataEncoding", "fds": [{"fd", "kind", "path",
                      "size", "closeOnExec", "nonblocking", "access",
                      "append", "content"?, ...}]}.
  --cat               Print the contents of received regular files (read
                      from offset 0 with pread, which leaves the sender's
                      offset alone) and pipes (read until every writer has
                      closed, which consumes the data).
  --cat-limit BYTES   Most bytes --cat reads per fd. Default: 1048576.
  -h, --help          Show this help.

Exit codes:
  0    all N messages received
  1    runtime failure (the socket cannot be bound, a receive failed)
  2    usage error (unknown option, missing or too long PATH, bad N)
  130  interrupted by SIGINT (143 for SIGTERM); the socket file is removed

Permissions: --allow-ffi.

Example:
  fdpass recv --listen /tmp/fdpass.sock --cat
`;

const SPEC = {
  command: "recv",
  booleans: ["abstract", "json", "cat"],
  strings: ["listen", "count", "cat-limit"],
  positionals: false,
} as const;

interface RecvOptions {
  readonly json: boolean;
  readonly cat: boolean;
  readonly catLimit: number;
}

/**
 * Runs `fdpass recv`.
 *
 * @param args The arguments after `recv`.
 * @returns The exit status.
 * @throws {UsageError} For bad arguments; other errors are runtime failures.
 */
export async function recvCommand(args: readonly string[]): Promise<number> {
  const parsed = parseCommand(SPEC, args);
  if (parsed.help) {
    console.log(RECV_HELP);
    return EXIT_OK;
  }
  const path = requireValue(parsed, "listen", "recv", "a socket path");
  const address = socketAddress(path, parsed.booleans.get("abstract")!, "listen", "recv");
  const countText = parsed.strings.get("count");
  const count = countText === undefined
    ? 1
    : nonNegativeInteger(countText, "count", "recv", Number.MAX_SAFE_INTEGER);
  const cat = parsed.booleans.get("cat")!;
  const limitText = parsed.strings.get("cat-limit");
  if (limitText !== undefined && !cat) {
    throw new UsageError(`Option "--cat-limit" only makes sense with "--cat"`, "recv");
  }
  const catLimit = limitText === undefined
    ? DEFAULT_CAT_LIMIT
    : nonNegativeInteger(limitText, "cat-limit", "recv", 1024 * 1024 * 1024);
  const options: RecvOptions = { json: parsed.booleans.get("json")!, cat, catLimit };

  // Signals stop the waits, so that the finally below removes the socket
  // file; the exit status is then 128 + the signal number, as in a shell.
  const controller = new AbortController();
  let exitStatus = EXIT_OK;
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", () => {
      exitStatus = 130;
      controller.abort();
    }],
    ["SIGTERM", () => {
      exitStatus = 143;
      controller.abort();
    }],
  ];
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  let listener: UnixListener | null = null;
  try {
    listener = listenOn(address);
    await receiveMessages(listener, count, options, controller.signal);
    return EXIT_OK;
  } catch (error) {
    if (controller.signal.aborted) return exitStatus;
    throw error;
  } finally {
    listener?.close();
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  }
}

/**
 * Listens on `address`, replacing a stale socket file: one that exists but
 * refuses connections because its listener died.
 *
 * @param address The address.
 * @returns The listener.
 */
function listenOn(address: UnixAddress): UnixListener {
  try {
    return UnixSocket.listen(address);
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse) || typeof address !== "string") throw error;
    try {
      UnixSocket.connectSync(address).close();
    } catch (probe) {
      if (probe instanceof Deno.errors.ConnectionRefused) {
        return UnixSocket.listen(address, { removeExisting: true });
      }
      throw error;
    }
    throw new Error(`Another process is listening on "${address}"`);
  }
}

async function receiveMessages(
  listener: UnixListener,
  count: number,
  options: RecvOptions,
  signal: AbortSignal,
): Promise<void> {
  let received = 0;
  while (count === 0 || received < count) {
    using conn = await listener.accept({ signal });
    while (count === 0 || received < count) {
      const message = await conn.recv({ signal });
      if (message === null) break;
      received++;
      const report = await reportMessage(message, options, signal);
      console.log(options.json ? JSON.stringify(report) : formatMessage(report, received));
    }
  }
}

/**
 * Describes a message and closes its fds.
 *
 * @param message The received message; its fds are closed on return.
 * @param options What to print.
 * @param signal Stops a `--cat` wait on a pipe.
 * @returns The report.
 */
async function reportMessage(
  message: ReceivedMessage,
  options: RecvOptions,
  signal: AbortSignal,
): Promise<MessageReport> {
  const { fds } = message;
  try {
    const reports = fds.map((fd) => describeFd(fd));
    if (options.cat) {
      // Read after closing the fds that are not read (a stable sort keeps
      // the order within each group): a pipe's write end that came in the
      // same message would keep its read end from reaching end of file.
      const order = [...fds.keys()].sort((a, b) =>
        Number(catable(reports[a]!)) - Number(catable(reports[b]!))
      );
      for (const i of order) {
        // For a write-only file or pipe this records "Not open for reading".
        await readContent(fds[i]!, reports[i]!, options.catLimit, signal);
        fds[i]!.close();
      }
    }
    const { text, encoding } = encodeBytes(message.data);
    return { data: text, dataEncoding: encoding, fds: reports };
  } finally {
    for (const fd of fds) fd.close();
  }
}

/**
 * The human-readable form of a message report.
 *
 * @param report The report.
 * @param index The message's number, from 1.
 * @returns Lines of text, without a final newline.
 */
export function formatMessage(report: MessageReport, index: number): string {
  const bytes = report.dataEncoding === "hex"
    ? report.data.length / 2
    : new TextEncoder().encode(report.data).byteLength;
  const lines = [
    `message ${index}: ${plural(bytes, "byte")}, ${plural(report.fds.length, "fd")}`,
    report.dataEncoding === "utf8"
      ? `  data: ${JSON.stringify(report.data)}`
      : `  data (hex): ${report.data}`,
  ];
  for (const fd of report.fds) {
    const details = [fd.path ?? "(no path)"];
    if (fd.kind === "file") details.push(plural(fd.size, "byte"));
    details.push(fd.access);
    if (fd.append) details.push("append");
    if (fd.closeOnExec) details.push("close-on-exec");
    if (fd.nonblocking) details.push("nonblocking");
    lines.push(`  fd ${fd.fd}: ${fd.kind} ${details.join(", ")}`);
    lines.push(...formatContent(fd));
  }
  return lines.join("\n");
}

function formatContent(fd: FdReport): string[] {
  if (fd.contentError !== undefined) return [`    (cannot read: ${fd.contentError})`];
  if (fd.content === undefined) return [];
  const lines: string[] = [];
  if (fd.contentBytes === 0) {
    lines.push("    (empty)");
  } else if (fd.contentEncoding === "hex") {
    lines.push(`    (${plural(fd.contentBytes!, "byte")} of binary data, as hex)`);
    for (let at = 0; at < fd.content.length; at += 64) {
      lines.push(`    | ${fd.content.slice(at, at + 64)}`);
    }
  } else {
    const text = fd.content.endsWith("\n") ? fd.content.slice(0, -1) : fd.content;
    for (const line of text.split("\n")) lines.push(`    | ${line}`);
  }
  if (fd.contentTruncated) lines.push(`    (stopped after ${plural(fd.contentBytes!, "byte")})`);
  return lines;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
