/**
 * What fdpass knows about the platform it runs on, as one plain read-only
 * object: the layout row in use, the struct sizes it fills in by hand, the
 * `CMSG_*` numbers for fds, its limits, its features and the constants it
 * passes to libc. `fdpass info` prints it; the CLI reads platform facts
 * here instead of from `ffi/`.
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
} from "../../ffi/cmsg.ts";
import type { Features } from "../../ffi/layout.ts";

export type { Features };

/** The `CMSG_*` macro results for fd payloads (`cmsg(3)`). */
export interface CmsgFacts {
  /** `CMSG_ALIGN` rounds to this many bytes. */
  readonly align: number;
  /** `CMSG_DATA(c) - c`: where the payload starts. */
  readonly dataOffset: number;
  /** `CMSG_LEN(sizeof(int))`: `cmsg_len` of a message with one fd. */
  readonly lenOneFd: number;
  /** `CMSG_SPACE(sizeof(int))`: control bytes one fd takes. */
  readonly spaceOneFd: number;
  /** `CMSG_SPACE(maxFdsPerMessage * sizeof(int))`. */
  readonly spaceMaxFds: number;
}

/** What {@linkcode platformFacts} returns; everything in it is frozen. */
export interface PlatformFacts {
  /** The layout row in use, such as `"linux-x86_64"`: the OS and architecture. */
  readonly layout: string;
  /** The library opened with `Deno.dlopen`. */
  readonly libraryPath: string;
  /** The errno accessor: `__errno_location` or `__error`. */
  readonly errnoSymbol: string;
  /** Whether variadic arguments (`fcntl`, `open`) travel on the stack (Apple arm64). */
  readonly variadicOnStack: boolean;
  /**
   * `sizeof` each struct fdpass fills in by hand, in bytes, by C name;
   * `epoll_event` and `ucred` only where the platform has them.
   */
  readonly sizes: Readonly<Record<string, number>>;
  /** Bytes of one fd in an `SCM_RIGHTS` payload (`sizeof(int)`). */
  readonly fdSize: number;
  /** The `CMSG_*` results for fds. */
  readonly cmsg: CmsgFacts;
  /** Bytes of control buffer each receive offers. */
  readonly receiveControlCapacity: number;
  /** Most fds fdpass sends or accepts in one message. */
  readonly maxFdsPerMessage: number;
  /** Longest socket path in bytes (an abstract name holds one byte less). */
  readonly maxPathBytes: number;
  /** What the platform offers. */
  readonly features: Features;
  /**
   * The socket, message and fd constants fdpass uses, by C name. A constant
   * the platform lacks holds 0: check {@linkcode PlatformFacts.features}.
   */
  readonly constants: Readonly<Record<ConstantName, number>>;
}

/** The constants {@linkcode PlatformFacts.constants} holds, in the order `fdpass info` shows them. */
export const CONSTANT_NAMES = [
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
  "O_RDONLY",
  "O_WRONLY",
  "O_RDWR",
  "O_ACCMODE",
  "O_APPEND",
  "O_CLOEXEC",
  "O_NONBLOCK",
  "F_DUPFD_CLOEXEC",
  "FD_CLOEXEC",
] as const;

/** One of {@linkcode CONSTANT_NAMES}. */
export type ConstantName = typeof CONSTANT_NAMES[number];

let facts: PlatformFacts | undefined;

/**
 * The facts about the running platform. Opens libc on first use (and throws
 * `Deno.errors.NotSupported` where fdpass has no layout); later calls return
 * the same frozen object.
 *
 * @returns The facts.
 *
 * @example Limits and features
 * ```ts
 * import { platformFacts } from "./platform.ts";
 * import { assert } from "@std/assert";
 *
 * const facts = platformFacts();
 * assert(facts.maxFdsPerMessage > 0);
 * assert(Object.isFrozen(facts.features));
 * console.log(facts.layout, facts.features.abstractNames);
 * ```
 */
export function platformFacts(): PlatformFacts {
  if (facts !== undefined) return facts;
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
  if (layout.features.passCredentials) sizes.ucred = layout.ucredSize;
  const constants = {} as Record<ConstantName, number>;
  for (const name of CONSTANT_NAMES) constants[name] = layout.constants[name];
  facts = Object.freeze({
    layout: layout.name,
    libraryPath: layout.libraryPath,
    errnoSymbol: layout.errnoSymbol,
    variadicOnStack: layout.variadicOnStack,
    sizes: Object.freeze(sizes),
    fdSize: FD_SIZE,
    cmsg: Object.freeze({
      align: layout.cmsghdr.align,
      dataOffset: cmsgDataOffset(layout),
      lenOneFd: cmsgLen(layout, FD_SIZE),
      spaceOneFd: cmsgSpace(layout, FD_SIZE),
      spaceMaxFds: cmsgSpace(layout, layout.maxFdsPerMessage * FD_SIZE),
    }),
    receiveControlCapacity: receiveControlCapacity(layout),
    maxFdsPerMessage: layout.maxFdsPerMessage,
    maxPathBytes: layout.sockaddrUn.maxPathBytes,
    features: Object.freeze({ ...layout.features }),
    constants: Object.freeze(constants),
  });
  return facts;
}
