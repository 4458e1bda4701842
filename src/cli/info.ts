/**
 * `fdpass info`: the platform layout, sizes and constants fdpass uses here.
 *
 * @module
 */

import { libc } from "../../ffi/libc.ts";
import {
  cmsgDataOffset,
  cmsgLen,
  cmsgSpace,
  FD_SIZE,
  receiveControlCapacity,
} from "../../ffi/layout.ts";
import { pollerStats } from "../poller.ts";
import { EXIT_OK, parseCommand } from "./args.ts";

/** What `fdpass info --json` prints. */
export interface InfoReport {
  /** `Deno.build.os`, `arch` and `target`. */
  platform: { os: string; arch: string; target: string };
  /** `Deno.version.deno`. */
  deno: string;
  /** The layout table in use, such as `"linux-x86_64"`. */
  layout: string;
  /** The library opened with `Deno.dlopen`. */
  libraryPath: string;
  /** The errno accessor. */
  errnoSymbol: string;
  /** Whether variadic arguments (`fcntl`, `open`) go on the stack. */
  variadicOnStack: boolean;
  /** The async poller's backend. */
  poller: string;
  /** `sizeof` the structs fdpass fills in by hand, in bytes. */
  sizes: Record<string, number>;
  /** The `CMSG_*` macro results for fds. */
  cmsg: {
    align: number;
    dataOffset: number;
    lenOneFd: number;
    spaceOneFd: number;
    spaceMaxFds: number;
  };
  /** Bytes of control buffer each receive offers. */
  receiveControlCapacity: number;
  /** Most fds in one message. */
  maxFdsPerMessage: number;
  /** Longest socket path in bytes. */
  maxPathBytes: number;
  /** Whether Linux abstract socket names exist. */
  abstractNamespace: boolean;
  /** Whether `AF_UNIX` has `SOCK_SEQPACKET`. */
  seqpacket: boolean;
  /** Whether `accept4` is used. */
  accept4: boolean;
  /** The socket and fd constants fdpass passes to libc (0 = not available). */
  constants: Record<string, number>;
}

/** The `--help` text of `fdpass info`. */
export const INFO_HELP = `fdpass info: show the platform layout fdpass uses

Usage:
  fdpass info [--json]

Prints the platform, the libc it opens, the poller backend, the sizes of
the structs it fills in by hand (msghdr, cmsghdr, sockaddr_un, ...), the
CMSG_* values for fds, the receive control capacity, the fd and path limits
and the constants it passes to libc.

Options:
  --json       One JSON object instead of text.
  -h, --help   Show this help.

Exit codes:
  0  printed
  1  runtime failure (libc cannot be opened, unsupported platform)
  2  usage error (unknown option, unexpected argument)

Permissions: --allow-ffi.
`;

const CONSTANT_NAMES = [
  "AF_UNIX",
  "SOCK_STREAM",
  "SOCK_SEQPACKET",
  "SOCK_DGRAM",
  "SOCK_CLOEXEC",
  "SOCK_NONBLOCK",
  "SOL_SOCKET",
  "SCM_RIGHTS",
  "SCM_CREDENTIALS",
  "SO_PASSCRED",
  "SO_NOSIGPIPE",
  "MSG_CMSG_CLOEXEC",
  "MSG_NOSIGNAL",
  "MSG_DONTWAIT",
  "MSG_PEEK",
  "MSG_TRUNC",
  "MSG_CTRUNC",
  "O_CLOEXEC",
  "O_NONBLOCK",
  "F_DUPFD_CLOEXEC",
  "FD_CLOEXEC",
] as const;

/**
 * Collects what `fdpass info` prints. Opens libc.
 *
 * @returns The report.
 */
export function infoReport(): InfoReport {
  const { layout } = libc();
  const sizes: Record<string, number> = {
    msghdr: layout.msghdr.size,
    iovec: layout.iovec.size,
    cmsghdr: layout.cmsghdr.size,
    sockaddr_un: layout.sockaddrUn.size,
    stat: layout.stat.size,
    pollfd: layout.pollfd.size,
  };
  if (layout.epollEvent !== null) sizes.epoll_event = layout.epollEvent.size;
  if (layout.kevent !== null) sizes.kevent = layout.kevent.size;
  const constants: Record<string, number> = {};
  for (const name of CONSTANT_NAMES) constants[name] = layout.constants[name];
  return {
    platform: { os: Deno.build.os, arch: Deno.build.arch, target: Deno.build.target },
    deno: Deno.version.deno,
    layout: layout.name,
    libraryPath: layout.libraryPath,
    errnoSymbol: layout.errnoSymbol,
    variadicOnStack: layout.variadicOnStack,
    poller: pollerStats().backend,
    sizes,
    cmsg: {
      align: layout.cmsghdr.align,
      dataOffset: cmsgDataOffset(layout),
      lenOneFd: cmsgLen(layout, FD_SIZE),
      spaceOneFd: cmsgSpace(layout, FD_SIZE),
      spaceMaxFds: cmsgSpace(layout, layout.maxFdsPerMessage * FD_SIZE),
    },
    receiveControlCapacity: receiveControlCapacity(layout),
    maxFdsPerMessage: layout.maxFdsPerMessage,
    maxPathBytes: layout.sockaddrUn.maxPathBytes,
    abstractNamespace: layout.sockaddrUn.abstractNamespace,
    seqpacket: layout.seqpacket,
    accept4: layout.accept4,
    constants,
  };
}

/**
 * The human-readable form of the report.
 *
 * @param info The report.
 * @returns Lines of text, without a final newline.
 */
export function formatInfo(info: InfoReport): string {
  const yes = (value: boolean): string => value ? "yes" : "no";
  const rows: [string, string][] = [
    ["platform", `${info.platform.os} ${info.platform.arch} (${info.platform.target})`],
    ["deno", info.deno],
    ["layout", info.layout],
    ["libc", `${info.libraryPath} (errno via ${info.errnoSymbol})`],
    ["variadic on stack", yes(info.variadicOnStack)],
    ["poller", info.poller],
    [
      "struct sizes",
      Object.entries(info.sizes).map(([name, size]) => `${name} ${size}`).join(", "),
    ],
    ["CMSG_ALIGN", `${info.cmsg.align}`],
    ["CMSG_DATA offset", `${info.cmsg.dataOffset}`],
    ["CMSG_LEN(4)", `${info.cmsg.lenOneFd}`],
    ["CMSG_SPACE(4)", `${info.cmsg.spaceOneFd}`],
    [`CMSG_SPACE(${info.maxFdsPerMessage * FD_SIZE})`, `${info.cmsg.spaceMaxFds}`],
    ["receive control", `${info.receiveControlCapacity} bytes`],
    ["max fds/message", `${info.maxFdsPerMessage}`],
    ["max socket path", `${info.maxPathBytes} bytes`],
    ["abstract names", yes(info.abstractNamespace)],
    ["seqpacket", yes(info.seqpacket)],
    ["accept4", yes(info.accept4)],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const lines = rows.map(([name, value]) => `${name.padEnd(width)}  ${value}`);
  lines.push("constants");
  for (const [name, value] of Object.entries(info.constants)) {
    lines.push(`  ${name.padEnd(width)}${value} (0x${value.toString(16)})`);
  }
  return lines.join("\n");
}

/**
 * Runs `fdpass info`.
 *
 * @param args The arguments after `info`.
 * @returns The exit status.
 * @throws {UsageError} For bad arguments.
 */
export function infoCommand(args: readonly string[]): number {
  const parsed = parseCommand(
    { command: "info", booleans: ["json"], strings: [], positionals: false },
    args,
  );
  if (parsed.help) {
    console.log(INFO_HELP);
    return EXIT_OK;
  }
  const info = infoReport();
  console.log(parsed.booleans.get("json") ? JSON.stringify(info, null, 2) : formatInfo(info));
  return EXIT_OK;
}
