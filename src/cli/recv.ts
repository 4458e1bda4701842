/**
 * `fdpass recv`: listen on a Unix socket, receive messages, and describe
 * every fd that arrives.
 *
 * @module
 */

import { stopOnSignals } from "./signals.ts";
import { type ReceivedMessage, type UnixListener, UnixSocket } from "../unix_socket.ts";
import {
  EXIT_OK,
  integerOption,
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
  type ReadBounds,
  readContent,
} from "./describe_fd.ts";
import { escapeContentLine, escapeField, quote } from "./escape.ts";

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

/** Default for `--cat-timeout`: 2 seconds per fd. */
export const DEFAULT_CAT_TIMEOUT_MS = 2000;

/** The `--help` text of `fdpass recv`. */
export const RECV_HELP = `fdpass recv: receive messages and file descriptors on a Unix socket

Usage:
  fdpass recv --listen PATH [--abstract] [--count N] [--json]
              [--cat] [--cat-limit BYTES] [--cat-timeout MS]

Listens on PATH, serves every connection at the same time (a client that
connects and sends nothing holds up no other), and receives messages until
N messages have arrived in all. For each message it prints the data (as
text when it is valid UTF-8, else as hex) and, for each fd: its number
here, kind, path (from /proc/self/fd), size and flags. Every received fd is
closed after it is printed. Each message is printed whole, never mixed with
another.

In the text output, control characters in the data and paths are shown as
JSON-style escapes (\\n, \\t, \\u001b; a backslash in a path as \\\\), and
in --cat contents every control character but tab is; use --json for the
exact text.

A stale socket file at PATH (one nobody listens on) is replaced; a live
socket or any other kind of file is left alone and is an error. The socket
file is removed on exit, also on Ctrl-C (SIGINT) and SIGTERM.

Options:
  --listen PATH       Socket path to listen on (required).
  --abstract          PATH is a Linux abstract socket name (no file).
  --count N           Messages to receive, over all connections, before
                      exiting (open connections are then closed); 0 means
                      no limit. Default: 1.
  --json              One JSON object per message, one per line:
                      {"data", "dataEncoding", "fds": [{"fd", "kind", "path",
                      "size", "closeOnExec", "nonblocking", "access",
                      "append", "content"?, "contentEncoding"?,
                      "contentBytes"?, "contentTruncated"?,
                      "contentTimedOut"?, "contentError"?}]}.
  --cat               Print the contents of received regular files (read
                      from offset 0 with pread, which leaves the sender's
                      offset alone) and pipes (read until every writer has
                      closed, which consumes the data).
  --cat-limit BYTES   Most bytes --cat reads per fd. Default: 1048576.
  --cat-timeout MS    Most milliseconds --cat spends on one fd. A pipe that
                      has not reached end of file by then (a writer keeps
                      it open; a FIFO the sender opened read-write is its
                      own writer) is cut there: "contentTruncated" and
                      "contentTimedOut" are true, and the text output says
                      "(stopped after MS ms ...)". From 1 to 3600000.
                      Default: 2000.
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
  strings: ["listen", "count", "cat-limit", "cat-timeout"],
  positionals: false,
} as const;

interface RecvOptions {
  readonly json: boolean;
  readonly cat: boolean;
  readonly catBounds: ReadBounds;
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
    : integerOption(countText, "count", "recv", 0, Number.MAX_SAFE_INTEGER);
  const cat = parsed.booleans.get("cat")!;
  for (const option of ["cat-limit", "cat-timeout"]) {
    if (parsed.strings.has(option) && !cat) {
      throw new UsageError(`Option "--${option}" only makes sense with "--cat"`, "recv");
    }
  }
  const limitText = parsed.strings.get("cat-limit");
  const timeoutText = parsed.strings.get("cat-timeout");
  const catBounds: ReadBounds = {
    limit: limitText === undefined
      ? DEFAULT_CAT_LIMIT
      : integerOption(limitText, "cat-limit", "recv", 0, 1024 * 1024 * 1024),
    timeoutMs: timeoutText === undefined
      ? DEFAULT_CAT_TIMEOUT_MS
      : integerOption(timeoutText, "cat-timeout", "recv", 1, 3_600_000),
  };
  const options: RecvOptions = { json: parsed.booleans.get("json")!, cat, catBounds };

  // Signals stop the waits, so that the finally below removes the socket
  // file; the exit status is then 128 + the signal number, as in a shell.
  using stopper = stopOnSignals();
  let listener: UnixListener | null = null;
  try {
    // The library replaces a stale socket file (one whose listener died)
    // and refuses a live socket or any other kind of file.
    listener = UnixSocket.listen(address, { removeExisting: true });
    await serve(listener, count, options, stopper.signal);
    return stopper.exitStatus(EXIT_OK);
  } catch (error) {
    if (stopper.signal.aborted) return stopper.exitStatus(EXIT_OK);
    throw error;
  } finally {
    listener?.close();
  }
}

/**
 * Accepts connections and serves each in its own task until `count`
 * messages have been printed (over all connections), `signal` aborts, or a
 * connection fails; then stops the others and waits for them.
 *
 * @param listener The listener.
 * @param count Messages to print; 0 means no limit.
 * @param options What to print.
 * @param signal SIGINT or SIGTERM.
 * @throws The first error of the accept loop or of a connection.
 */
async function serve(
  listener: UnixListener,
  count: number,
  options: RecvOptions,
  signal: AbortSignal,
): Promise<void> {
  const stop = new AbortController();
  const stopped = AbortSignal.any([signal, stop.signal]);
  const state: ServeState = { count, claimed: 0, printed: 0, stop, failure: null };
  const connections = new Set<Promise<void>>();
  try {
    while (!stopped.aborted) {
      let conn: UnixSocket;
      try {
        conn = await listener.accept({ signal: stopped });
      } catch (error) {
        if (stopped.aborted) break;
        throw error;
      }
      const task = serveConnection(conn, state, options, stopped)
        .catch((error) => {
          state.failure ??= { error };
          stop.abort();
        })
        .finally(() => connections.delete(task));
      connections.add(task);
    }
  } finally {
    stop.abort();
    await Promise.all(connections);
  }
  if (state.failure !== null && !signal.aborted) throw state.failure.error;
}

/** What the connection tasks of one `recv` share. */
interface ServeState {
  /** Messages to print; 0 means no limit. */
  readonly count: number;
  /** Messages a connection has taken on (printed or being described). */
  claimed: number;
  /** Messages printed. */
  printed: number;
  /** Stops every task when the count is reached or one task fails. */
  readonly stop: AbortController;
  /** The first failure of a connection. */
  failure: { error: unknown } | null;
}

/**
 * Receives and prints the messages of one connection until it ends or
 * `stopped` aborts.
 *
 * @param connection The accepted connection; closed on return.
 * @param state The shared count.
 * @param options What to print.
 * @param stopped Aborts the receive wait.
 */
async function serveConnection(
  connection: UnixSocket,
  state: ServeState,
  options: RecvOptions,
  stopped: AbortSignal,
): Promise<void> {
  using conn = connection;
  for (;;) {
    let message: ReceivedMessage | null;
    try {
      message = await conn.recv({ signal: stopped });
    } catch (error) {
      if (stopped.aborted) return;
      throw error;
    }
    if (message === null) return;
    if (state.count !== 0 && state.claimed >= state.count) {
      // Other connections have taken on the rest of the count.
      for (const fd of message.fds) fd.close();
      return;
    }
    state.claimed++;
    const report = await reportMessage(message, options, stopped);
    state.printed++;
    // One console.log call is one write of the whole message: the tasks
    // share one thread, so messages never interleave.
    console.log(
      options.json
        ? JSON.stringify(report)
        : formatMessage(report, state.printed, options.catBounds.timeoutMs),
    );
    if (state.count !== 0 && state.printed >= state.count) {
      state.stop.abort();
      return;
    }
  }
}

/**
 * Describes a message and closes its fds.
 *
 * @param message The received message; its fds are closed on return.
 * @param options What to print.
 * @param signal Stops a `--cat` wait on a pipe; its reason is thrown.
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
        await readContent(fds[i]!, reports[i]!, options.catBounds, signal);
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
 * @param index The message's number, in the order printed, from 1.
 * @param catTimeoutMs The `--cat-timeout`, for the note on a cut pipe.
 * @returns Lines of text, without a final newline.
 */
export function formatMessage(
  report: MessageReport,
  index: number,
  catTimeoutMs: number = DEFAULT_CAT_TIMEOUT_MS,
): string {
  const bytes = report.dataEncoding === "hex"
    ? report.data.length / 2
    : new TextEncoder().encode(report.data).byteLength;
  const lines = [
    `message ${index}: ${plural(bytes, "byte")}, ${plural(report.fds.length, "fd")}`,
    report.dataEncoding === "utf8"
      ? `  data: ${quote(report.data)}`
      : `  data (hex): ${report.data}`,
  ];
  for (const fd of report.fds) {
    const details = [fd.path === null ? "(no path)" : escapeField(fd.path)];
    if (fd.kind === "file") details.push(plural(fd.size, "byte"));
    details.push(fd.access);
    if (fd.append) details.push("append");
    if (fd.closeOnExec) details.push("close-on-exec");
    if (fd.nonblocking) details.push("nonblocking");
    lines.push(`  fd ${fd.fd}: ${fd.kind} ${details.join(", ")}`);
    lines.push(...formatContent(fd, catTimeoutMs));
  }
  return lines.join("\n");
}

function formatContent(fd: FdReport, catTimeoutMs: number): string[] {
  if (fd.contentError !== undefined) {
    return [`    (cannot read: ${escapeField(fd.contentError)})`];
  }
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
    for (const line of text.split("\n")) lines.push(`    | ${escapeContentLine(line)}`);
  }
  if (fd.contentTimedOut) {
    lines.push(
      `    (stopped after ${catTimeoutMs} ms before end of file, ${
        plural(fd.contentBytes!, "byte")
      } read)`,
    );
  } else if (fd.contentTruncated) {
    lines.push(`    (stopped after ${plural(fd.contentBytes!, "byte")})`);
  }
  return lines;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}
