/**
 * Unit tests for the ffi/ layer: the per-platform layout and constant tables
 * against the values in `../shared/reference/abi.md` (transcribed below as
 * literals, so that a wrong edit to ffi/layout.ts fails here), the CMSG
 * helpers against CPython's `CmsgMacroTests`, the running platform's table
 * against this machine's C headers (tests/c/layout_probe.c, compiled at test
 * time when `cc` is present), and the lazily opened libc context.
 *
 * @module
 */

import {
  assert,
  assertEquals,
  assertGreater,
  assertGreaterOrEqual,
  assertLessOrEqual,
  assertStrictEquals,
} from "@std/assert";
import {
  cmsgAlign,
  cmsgDataOffset,
  type CmsghdrLayout,
  cmsgLen,
  cmsgSpace,
  type Constants,
  currentLayout,
  FD_SIZE,
  type KeventLayout,
  type Layout,
  layouts,
  type MsghdrLayout,
  type PeerCredentialsLayout,
  receiveControlCapacity,
  type SockaddrUnLayout,
} from "../ffi/layout.ts";
import { libc } from "../ffi/libc.ts";
import { hasCommand, leakCheckedTest } from "./helpers.ts";

type Platform =
  | "linux-x86_64"
  | "linux-aarch64"
  | "darwin-aarch64"
  | "darwin-x86_64"
  | "freebsd-x86_64";

const PLATFORMS: readonly Platform[] = [
  "linux-x86_64",
  "linux-aarch64",
  "darwin-aarch64",
  "darwin-x86_64",
  "freebsd-x86_64",
];

/** What abi.md says about one platform. */
interface Expected {
  /** Section 6. */
  libraryPath: string;
  errnoSymbol: "__errno_location" | "__error";
  /** Section 1. */
  msghdr: MsghdrLayout;
  iovec: { size: number; base: number; len: number };
  /** Section 2. */
  cmsghdr: CmsghdrLayout;
  cmsgDataOffset: number;
  /** CMSG_LEN / CMSG_SPACE for n fds. */
  cmsgForFds: Readonly<Record<1 | 2 | 3 | 253, readonly [len: number, space: number]>>;
  /** Section 3. */
  sockaddrUn: SockaddrUnLayout;
  /** Section 4. */
  peerCredentials: PeerCredentialsLayout;
  ucredSize: number;
  /** Section 5 (0 where abi.md says "–" or "none"). */
  constants: Partial<Constants>;
  seqpacket: boolean;
  pollfd: { size: number; fd: number; events: number; revents: number };
  errno: Readonly<Record<string, number>>;
  /** Section 5, epoll and kqueue. */
  epollEvent: { size: number; events: number; data: number } | null;
  kevent: KeventLayout | null;
  /** Section 7: the kernel's per-message fd limit. */
  kernelMaxFds: number;
}

// --- abi.md section 1: struct msghdr and struct iovec ---

const LINUX_MSGHDR: MsghdrLayout = {
  size: 56,
  name: 0,
  namelen: 8,
  iov: 16,
  iovlen: 24,
  iovlenSize: 8, // glibc size_t; musl int + zero pad, written as one u64
  control: 32,
  controllen: 40,
  controllenSize: 8, // glibc size_t; musl socklen_t + zero pad
  flags: 48,
};

const BSD_MSGHDR: MsghdrLayout = {
  size: 48,
  name: 0,
  namelen: 8,
  iov: 16,
  iovlen: 24,
  iovlenSize: 4,
  control: 32,
  controllen: 40,
  controllenSize: 4,
  flags: 44,
};

const IOVEC = { size: 16, base: 0, len: 8 };

// --- abi.md section 2: struct cmsghdr and the CMSG macros ---

const LINUX_CMSGHDR: CmsghdrLayout = { size: 16, len: 0, lenSize: 8, level: 8, type: 12, align: 8 };
const MACOS_CMSGHDR: CmsghdrLayout = { size: 12, len: 0, lenSize: 4, level: 4, type: 8, align: 4 };
const FREEBSD_CMSGHDR: CmsghdrLayout = {
  size: 12,
  len: 0,
  lenSize: 4,
  level: 4,
  type: 8,
  align: 8,
};

const LINUX_CMSG_FOR_FDS = { 1: [20, 24], 2: [24, 24], 3: [28, 32], 253: [1028, 1032] } as const;
const MACOS_CMSG_FOR_FDS = { 1: [16, 16], 2: [20, 20], 3: [24, 24], 253: [1024, 1024] } as const;
const FREEBSD_CMSG_FOR_FDS = { 1: [20, 24], 2: [24, 24], 3: [28, 32], 253: [1028, 1032] } as const;

// --- abi.md section 3: struct sockaddr_un ---

const LINUX_SOCKADDR_UN: SockaddrUnLayout = {
  size: 110,
  lenOffset: -1,
  familyOffset: 0,
  familySize: 2,
  pathOffset: 2,
  maxPathBytes: 108, // all 108 bytes with no NUL are accepted; 109 gives EINVAL
  abstractNamespace: true,
};

const BSD_SOCKADDR_UN: SockaddrUnLayout = {
  size: 106,
  lenOffset: 0,
  familyOffset: 1,
  familySize: 1,
  pathOffset: 2,
  // sun_path[104]: the library keeps one byte for the NUL.
  maxPathBytes: 103,
  abstractNamespace: false,
};

// --- abi.md section 4: peer credentials ---

const LINUX_PEER_CREDENTIALS: PeerCredentialsLayout = {
  level: 1, // SOL_SOCKET
  option: 17, // SO_PEERCRED
  size: 12, // struct ucred {pid @0, uid @4, gid @8}
  versionOffset: -1,
  pidOffset: 0,
  pidOption: -1,
  uidOffset: 4,
  gidOffset: 8,
};

const MACOS_PEER_CREDENTIALS: PeerCredentialsLayout = {
  level: 0, // SOL_LOCAL
  option: 1, // LOCAL_PEERCRED
  size: 76, // struct xucred
  versionOffset: 0, // cr_version, must be XUCRED_VERSION = 0
  pidOffset: -1,
  pidOption: 2, // LOCAL_PEERPID
  uidOffset: 4,
  gidOffset: 12, // cr_groups[0], the effective gid
};

const FREEBSD_PEER_CREDENTIALS: PeerCredentialsLayout = {
  level: 0,
  option: 1, // LOCAL_PEERCRED
  size: 88, // struct xucred, align 8
  versionOffset: 0,
  pidOffset: 80, // cr_pid (FreeBSD 13+)
  pidOption: -1,
  uidOffset: 4,
  gidOffset: 12,
};

// --- abi.md section 5: constants, epoll, kqueue ---

const SHARED_CONSTANTS: Partial<Constants> = {
  AF_UNIX: 1,
  SOCK_STREAM: 1,
  SOCK_DGRAM: 2,
  SOCK_SEQPACKET: 5,
  SCM_RIGHTS: 1,
  MSG_PEEK: 2,
  F_GETFD: 1,
  F_SETFD: 2,
  FD_CLOEXEC: 1,
  F_GETFL: 3,
  F_SETFL: 4,
  POLLIN: 1,
  POLLOUT: 4,
  POLLERR: 8,
  POLLHUP: 0x10,
  POLLNVAL: 0x20,
  SHUT_RD: 0,
  SHUT_WR: 1,
  SHUT_RDWR: 2,
};

const LINUX_EPOLL: Partial<Constants> = {
  EPOLLIN: 1,
  EPOLLOUT: 4,
  EPOLLERR: 8,
  EPOLLHUP: 0x10,
  EPOLLONESHOT: 1 << 30,
  EPOLL_CTL_ADD: 1,
  EPOLL_CTL_DEL: 2,
  EPOLL_CTL_MOD: 3,
  EPOLL_CLOEXEC: 0x80000,
};

const NO_EPOLL: Partial<Constants> = {
  EPOLLIN: 0,
  EPOLLOUT: 0,
  EPOLLERR: 0,
  EPOLLHUP: 0,
  EPOLLONESHOT: 0,
  EPOLL_CTL_ADD: 0,
  EPOLL_CTL_DEL: 0,
  EPOLL_CTL_MOD: 0,
  EPOLL_CLOEXEC: 0,
};

const KQUEUE: Partial<Constants> = {
  EVFILT_READ: -1,
  EVFILT_WRITE: -2,
  EV_ADD: 1,
  EV_DELETE: 2,
  EV_ONESHOT: 0x10,
  EV_ERROR: 0x4000,
};

const NO_KQUEUE: Partial<Constants> = {
  EVFILT_READ: 0,
  EVFILT_WRITE: 0,
  EV_ADD: 0,
  EV_DELETE: 0,
  EV_ONESHOT: 0,
  EV_ERROR: 0,
};

const LINUX_CONSTANTS: Partial<Constants> = {
  ...SHARED_CONSTANTS,
  ...LINUX_EPOLL,
  ...NO_KQUEUE,
  SOCK_CLOEXEC: 0x80000,
  SOCK_NONBLOCK: 0x800,
  SOL_SOCKET: 1,
  SCM_CREDENTIALS: 2,
  SO_PASSCRED: 16,
  SO_SNDBUF: 7,
  SO_RCVBUF: 8,
  SO_ERROR: 4,
  SO_TYPE: 3,
  SO_NOSIGPIPE: 0,
  MSG_TRUNC: 0x20,
  MSG_CTRUNC: 0x8,
  MSG_WAITALL: 0x100,
  MSG_DONTWAIT: 0x40,
  MSG_EOR: 0x80,
  MSG_NOSIGNAL: 0x4000,
  MSG_CMSG_CLOEXEC: 0x40000000,
  O_NONBLOCK: 0x800,
  O_CLOEXEC: 0x80000,
  F_DUPFD_CLOEXEC: 1030,
};

const MACOS_CONSTANTS: Partial<Constants> = {
  ...SHARED_CONSTANTS,
  ...NO_EPOLL,
  ...KQUEUE,
  SOCK_CLOEXEC: 0,
  SOCK_NONBLOCK: 0,
  SOL_SOCKET: 0xffff,
  SCM_CREDENTIALS: 0,
  SO_PASSCRED: 0,
  SO_SNDBUF: 0x1001,
  SO_RCVBUF: 0x1002,
  SO_ERROR: 0x1007,
  SO_TYPE: 0x1008,
  SO_NOSIGPIPE: 0x1022,
  MSG_TRUNC: 0x10,
  MSG_CTRUNC: 0x20,
  MSG_WAITALL: 0x40,
  MSG_DONTWAIT: 0x80,
  MSG_EOR: 0x8,
  MSG_NOSIGNAL: 0x80000,
  MSG_CMSG_CLOEXEC: 0,
  O_NONBLOCK: 0x4,
  O_CLOEXEC: 0x1000000,
  F_DUPFD_CLOEXEC: 67,
};

const FREEBSD_CONSTANTS: Partial<Constants> = {
  ...SHARED_CONSTANTS,
  ...NO_EPOLL,
  ...KQUEUE,
  SOCK_CLOEXEC: 0x10000000,
  SOCK_NONBLOCK: 0x20000000,
  SOL_SOCKET: 0xffff,
  SCM_CREDENTIALS: 0,
  SO_PASSCRED: 0,
  SO_SNDBUF: 0x1001,
  SO_RCVBUF: 0x1002,
  SO_ERROR: 0x1007,
  SO_TYPE: 0x1008,
  SO_NOSIGPIPE: 0x0800,
  MSG_TRUNC: 0x10,
  MSG_CTRUNC: 0x20,
  MSG_WAITALL: 0x40,
  MSG_DONTWAIT: 0x80,
  MSG_EOR: 0x8,
  MSG_NOSIGNAL: 0x20000,
  MSG_CMSG_CLOEXEC: 0x40000,
  O_NONBLOCK: 0x4,
  O_CLOEXEC: 0x100000,
  F_DUPFD_CLOEXEC: 17,
};

const POLLFD = { size: 8, fd: 0, events: 4, revents: 6 };

const SHARED_ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EBADF: 9,
  ENOMEM: 12,
  EACCES: 13,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  EPIPE: 32,
};

const LINUX_ERRNO = {
  ...SHARED_ERRNO,
  EAGAIN: 11,
  EINPROGRESS: 115,
  ENOTSOCK: 88,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ECONNRESET: 104,
  ENOBUFS: 105,
  EISCONN: 106,
  ENOTCONN: 107,
  ETOOMANYREFS: 109,
  ECONNREFUSED: 111,
  ENAMETOOLONG: 36,
};

const BSD_ERRNO = {
  ...SHARED_ERRNO,
  EAGAIN: 35,
  EINPROGRESS: 36,
  ENOTSOCK: 38,
  EMSGSIZE: 40,
  EADDRINUSE: 48,
  ECONNRESET: 54,
  ENOBUFS: 55,
  EISCONN: 56,
  ENOTCONN: 57,
  ETOOMANYREFS: 59,
  ECONNREFUSED: 61,
  ENAMETOOLONG: 63,
};

const MACOS_ERRNO = { ...BSD_ERRNO, EOPNOTSUPP: 102 };
const FREEBSD_ERRNO = { ...BSD_ERRNO, EOPNOTSUPP: 45 };

const MACOS_KEVENT: KeventLayout = {
  size: 32, // #pragma pack(4)
  ident: 0,
  filter: 8,
  flags: 10,
  fflags: 12,
  data: 16,
  udata: 24,
};

// FreeBSD 12+: the same first 32 bytes, then ext[4] u64 at 32.
const FREEBSD_KEVENT: KeventLayout = { ...MACOS_KEVENT, size: 64 };

const LINUX_COMMON = {
  libraryPath: "libc.so.6",
  errnoSymbol: "__errno_location",
  msghdr: LINUX_MSGHDR,
  iovec: IOVEC,
  cmsghdr: LINUX_CMSGHDR,
  cmsgDataOffset: 16,
  cmsgForFds: LINUX_CMSG_FOR_FDS,
  sockaddrUn: LINUX_SOCKADDR_UN,
  peerCredentials: LINUX_PEER_CREDENTIALS,
  ucredSize: 12,
  constants: LINUX_CONSTANTS,
  seqpacket: true,
  pollfd: POLLFD,
  errno: LINUX_ERRNO,
  kevent: null,
  kernelMaxFds: 253, // SCM_MAX_FD
} as const;

const MACOS_COMMON = {
  libraryPath: "/usr/lib/libSystem.B.dylib",
  errnoSymbol: "__error",
  msghdr: BSD_MSGHDR,
  iovec: IOVEC,
  cmsghdr: MACOS_CMSGHDR,
  cmsgDataOffset: 12,
  cmsgForFds: MACOS_CMSG_FOR_FDS,
  sockaddrUn: BSD_SOCKADDR_UN,
  peerCredentials: MACOS_PEER_CREDENTIALS,
  ucredSize: 0,
  constants: MACOS_CONSTANTS,
  seqpacket: false, // uipc_proto.c lists only STREAM and DGRAM
  pollfd: POLLFD,
  errno: MACOS_ERRNO,
  epollEvent: null,
  kevent: MACOS_KEVENT,
  kernelMaxFds: 254, // (len - 12) * 2 + 12 <= MCLBYTES
} as const;

const EXPECTED: Readonly<Record<Platform, Expected>> = {
  "linux-x86_64": {
    ...LINUX_COMMON,
    epollEvent: { size: 12, events: 0, data: 4 }, // packed on x86_64
  },
  "linux-aarch64": {
    ...LINUX_COMMON,
    epollEvent: { size: 16, events: 0, data: 8 },
  },
  "darwin-aarch64": MACOS_COMMON,
  "darwin-x86_64": MACOS_COMMON,
  "freebsd-x86_64": {
    libraryPath: "libc.so.7",
    errnoSymbol: "__error",
    msghdr: BSD_MSGHDR,
    iovec: IOVEC,
    cmsghdr: FREEBSD_CMSGHDR,
    cmsgDataOffset: 16,
    cmsgForFds: FREEBSD_CMSG_FOR_FDS,
    sockaddrUn: BSD_SOCKADDR_UN,
    peerCredentials: FREEBSD_PEER_CREDENTIALS,
    ucredSize: 0,
    constants: FREEBSD_CONSTANTS,
    seqpacket: true,
    pollfd: POLLFD,
    errno: FREEBSD_ERRNO,
    epollEvent: null,
    kevent: FREEBSD_KEVENT,
    kernelMaxFds: 508, // msg_controllen <= MCLBYTES (2048)
  },
};

function layoutOf(platform: Platform): Layout {
  const layout = layouts[platform];
  if (layout === undefined) throw new Error(`No layout for "${platform}"`);
  return layout;
}

leakCheckedTest("layouts has exactly the five supported platforms", () => {
  assertEquals(Object.keys(layouts).sort(), [...PLATFORMS].sort());
  for (const platform of PLATFORMS) assertEquals(layoutOf(platform).name, platform);
  assertStrictEquals(currentLayout(), layouts[`${Deno.build.os}-${Deno.build.arch}`]);
});

leakCheckedTest("layout tables match abi.md on every platform", async (t) => {
  for (const platform of PLATFORMS) {
    await t.step(platform, async (t) => {
      const layout = layoutOf(platform);
      const expected = EXPECTED[platform];

      await t.step("library and errno accessor (abi.md section 6)", () => {
        assertEquals(layout.libraryPath, expected.libraryPath);
        assertEquals(layout.errnoSymbol, expected.errnoSymbol);
      });

      await t.step("struct msghdr and struct iovec (abi.md section 1)", () => {
        assertEquals(layout.msghdr, expected.msghdr);
        assertEquals(layout.iovec, expected.iovec);
        assertLessOrEqual(layout.msghdr.flags + 4, layout.msghdr.size);
      });

      await t.step("struct cmsghdr and CMSG_LEN/CMSG_SPACE (abi.md section 2)", () => {
        assertEquals(layout.cmsghdr, expected.cmsghdr);
        assertEquals(cmsgDataOffset(layout), expected.cmsgDataOffset);
        assertEquals(cmsgLen(layout, 0), expected.cmsgDataOffset);
        for (const n of [1, 2, 3, 253] as const) {
          const [len, space] = expected.cmsgForFds[n];
          assertEquals(cmsgLen(layout, n * FD_SIZE), len, `CMSG_LEN for ${n} fds`);
          assertEquals(cmsgSpace(layout, n * FD_SIZE), space, `CMSG_SPACE for ${n} fds`);
        }
        assertEquals(cmsgAlign(layout, 1), layout.cmsghdr.align);
        assertEquals(cmsgAlign(layout, layout.cmsghdr.align), layout.cmsghdr.align);
      });

      await t.step("struct sockaddr_un (abi.md section 3)", () => {
        assertEquals(layout.sockaddrUn, expected.sockaddrUn);
        // sun_path runs to the end of the struct: 108 bytes on Linux, 104 on BSD.
        assertLessOrEqual(
          layout.sockaddrUn.maxPathBytes,
          layout.sockaddrUn.size - layout.sockaddrUn.pathOffset,
        );
      });

      await t.step("peer credentials (abi.md section 4)", () => {
        assertEquals(layout.peerCredentials, expected.peerCredentials);
        assertEquals(layout.ucredSize, expected.ucredSize);
      });

      await t.step("constants, pollfd and seqpacket support (abi.md section 5)", () => {
        for (const [name, value] of Object.entries(expected.constants)) {
          assertEquals(layout.constants[name as keyof Constants], value, `constant ${name}`);
        }
        assertEquals(layout.pollfd, expected.pollfd);
        assertEquals(layout.seqpacket, expected.seqpacket);
      });

      await t.step("errno numbers (abi.md section 5)", () => {
        for (const [name, value] of Object.entries(expected.errno)) {
          assertEquals(layout.errno[name], value, `errno ${name}`);
        }
        // ErrnoError maps numbers back to names, so no number may have two.
        const seen = new Map<number, string>();
        for (const [name, value] of Object.entries(layout.errno)) {
          const other = seen.get(value);
          assert(other === undefined, `errno ${value} is both ${other} and ${name}`);
          seen.set(value, name);
        }
      });

      await t.step("struct epoll_event and struct kevent (abi.md section 5)", () => {
        assertEquals(layout.epollEvent, expected.epollEvent);
        assertEquals(layout.kevent, expected.kevent);
      });

      await t.step("fds per message stay within the kernel limit (abi.md section 7)", () => {
        assertEquals(layout.maxFdsPerMessage, 253);
        assertLessOrEqual(layout.maxFdsPerMessage, expected.kernelMaxFds);
      });
    });
  }
});

leakCheckedTest("cmsgLen() and cmsgSpace() pass CPython's CmsgMacroTests on every layout", () => {
  // Lib/test/test_socket.py CmsgMacroTests: 0..256 and the values just
  // below the socklen_t limit (0x7fffffff).
  const socklenLimit = 0x7fffffff;
  for (const platform of PLATFORMS) {
    const layout = layoutOf(platform);
    const where = `(${platform})`;
    // struct cmsghdr has at least three members, two of which are ints.
    assertGreater(cmsgLen(layout, 0), 2 * 4, `CMSG_LEN(0) ${where}`);
    assertGreater(cmsgSpace(layout, 0), 2 * 4, `CMSG_SPACE(0) ${where}`);

    const lenTooBig = socklenLimit - cmsgLen(layout, 0) + 1;
    const lenValues = [...range(0, 257), ...range(lenTooBig - 257, lenTooBig)];
    for (const n of lenValues) {
      const ret = cmsgLen(layout, n);
      assertEquals(ret - cmsgLen(layout, 0), n, `CMSG_LEN(${n}) - CMSG_LEN(0) ${where}`);
      assertLessOrEqual(ret, socklenLimit, `CMSG_LEN(${n}) ${where}`);
    }

    const spaceTooBig = socklenLimit - cmsgSpace(layout, 1) + 1;
    const spaceValues = [...range(0, 257), ...range(spaceTooBig - 257, spaceTooBig)];
    let last = cmsgSpace(layout, 0);
    for (const n of spaceValues) {
      const ret = cmsgSpace(layout, n);
      assertGreaterOrEqual(ret, last, `CMSG_SPACE(${n}) is monotonic ${where}`);
      assertGreaterOrEqual(ret, cmsgLen(layout, n), `CMSG_SPACE(${n}) >= CMSG_LEN ${where}`);
      assertGreaterOrEqual(ret, n + cmsgLen(layout, 0), `CMSG_SPACE(${n}) ${where}`);
      assertLessOrEqual(ret, socklenLimit, `CMSG_SPACE(${n}) ${where}`);
      assertEquals(ret % layout.cmsghdr.align, 0, `CMSG_SPACE(${n}) is aligned ${where}`);
      last = ret;
    }
  }
});

leakCheckedTest(
  "receiveControlCapacity() holds the most fds a peer can send plus credentials",
  () => {
    for (const platform of PLATFORMS) {
      const layout = layoutOf(platform);
      const capacity = receiveControlCapacity(layout);
      // abi.md section 10: CMSG_SPACE(253 * 4), plus CMSG_SPACE(sizeof ucred)
      // when SO_PASSCRED is on (section 4 budgets 32 bytes on Linux).
      const credentials = layout.ucredSize > 0 ? cmsgSpace(layout, layout.ucredSize) : 0;
      assertGreaterOrEqual(capacity, cmsgSpace(layout, 253 * FD_SIZE) + credentials, platform);
      // abi.md section 9: macOS installs fds before the copy-out, so the buffer
      // must hold the kernel's maximum of 254 or the cut-off fds leak.
      assertGreaterOrEqual(capacity, cmsgSpace(layout, 254 * FD_SIZE) + credentials, platform);
    }
    const linux = layoutOf("linux-x86_64");
    assertEquals(cmsgSpace(linux, 12), 32);
    assertGreaterOrEqual(receiveControlCapacity(linux), 1032 + 32);
    assertGreaterOrEqual(receiveControlCapacity(layoutOf("darwin-aarch64")), 1028);
  },
);

function range(start: number, end: number): number[] {
  const values: number[] = [];
  for (let n = start; n < end; n++) values.push(n);
  return values;
}

// --- this machine's C headers ---

const probeSource = decodeURIComponent(new URL("./c/layout_probe.c", import.meta.url).pathname);
const ccAvailable = hasCommand("cc");
const probeSkipReason = Deno.build.os !== "linux"
  ? `tests/c/layout_probe.c covers Linux only, not ${Deno.build.os}`
  : ccAvailable
  ? null
  : "no cc on PATH";
if (probeSkipReason !== null) {
  console.warn(`ffi_layout_test.ts: skipping the C layout probe: ${probeSkipReason}`);
}

/** Compiles and runs the probe, returning its `key=value` lines. */
function runProbe(): Map<string, string> {
  const dir = Deno.makeTempDirSync({ prefix: "fdpass-layout-probe-" });
  try {
    const binary = `${dir}/layout_probe`;
    const compiled = new Deno.Command("cc", {
      args: ["-O0", "-o", binary, probeSource],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const decoder = new TextDecoder();
    assert(
      compiled.success,
      `cc failed on ${probeSource}:\n${decoder.decode(compiled.stderr)}`,
    );
    const ran = new Deno.Command(binary, { stdout: "piped", stderr: "piped" }).outputSync();
    assert(ran.success, `layout_probe failed:\n${decoder.decode(ran.stderr)}`);
    const values = new Map<string, string>();
    for (const line of decoder.decode(ran.stdout).split("\n")) {
      if (line === "") continue;
      const eq = line.indexOf("=");
      assert(eq > 0, `unexpected probe line "${line}"`);
      const key = line.slice(0, eq);
      assert(!values.has(key), `probe printed "${key}" twice`);
      values.set(key, line.slice(eq + 1));
    }
    return values;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** The value ffi/layout.ts gives for a probe key. */
function layoutValue(layout: Layout, key: string): unknown {
  const cmsg = /^cmsg\.(len|space)\.(\d+)$/.exec(key);
  if (cmsg !== null) {
    const bytes = Number(cmsg[2]);
    return cmsg[1] === "len" ? cmsgLen(layout, bytes) : cmsgSpace(layout, bytes);
  }
  if (key === "cmsg.dataOffset") return cmsgDataOffset(layout);
  let value: unknown = layout;
  for (const part of key.split(".")) {
    if (typeof value !== "object" || value === null || !(part in value)) {
      throw new Error(`Probe key "${key}" names no field of the layout`);
    }
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

leakCheckedTest(
  `layout tables match this machine's C headers (tests/c/layout_probe.c)${
    probeSkipReason === null ? "" : `: skipped, ${probeSkipReason}`
  }`,
  async (t) => {
    const layout = currentLayout();
    const probe = runProbe();

    await t.step("every probed value equals the layout", () => {
      const mismatches: string[] = [];
      for (const [key, text] of probe) {
        const actual = layoutValue(layout, key);
        if (text === "absent") {
          // Not in the headers: the layout must say "not available".
          if (actual !== 0) mismatches.push(`${key}: absent in C, ${actual} in ${layout.name}`);
        } else if (actual !== Number(text)) {
          mismatches.push(`${key}: ${text} in C, ${actual} in ${layout.name}`);
        }
      }
      assertEquals(mismatches, []);
    });

    await t.step("the probe covers every constant and errno name", () => {
      for (const name of Object.keys(layout.constants)) {
        assert(probe.has(`constants.${name}`), `probe lacks constants.${name}`);
      }
      for (const name of Object.keys(layout.errno)) {
        assert(probe.has(`errno.${name}`), `probe lacks errno.${name}`);
      }
    });

    await t.step("CMSG_LEN and CMSG_SPACE for 1..4 and 253 fds match the C macros", () => {
      for (const n of [1, 2, 3, 4, 253, 254]) {
        const bytes = n * FD_SIZE;
        assertEquals(Number(probe.get(`cmsg.len.${bytes}`)), cmsgLen(layout, bytes), `${n} fds`);
        assertEquals(
          Number(probe.get(`cmsg.space.${bytes}`)),
          cmsgSpace(layout, bytes),
          `${n} fds`,
        );
      }
    });

    await t.step("receiveControlCapacity() covers CMSG_SPACE(253 * 4) + CMSG_SPACE(ucred)", () => {
      const needed = Number(probe.get(`cmsg.space.${253 * 4}`)) +
        Number(probe.get(`cmsg.space.${Number(probe.get("ucredSize"))}`));
      assert(Number.isInteger(needed), "probe lacks the CMSG_SPACE values");
      assertGreaterOrEqual(receiveControlCapacity(layout), needed);
    });
  },
  { ignore: probeSkipReason !== null },
);

// --- libc() ---

leakCheckedTest("libc() opens libc once per isolate and reads errno after each call", async (t) => {
  const context = libc();

  await t.step("opens the library for the running platform", () => {
    assertStrictEquals(context.layout, currentLayout());
    assertEquals(typeof context.lib.close, "function");
    assertEquals(context.errno.length, 1);
  });

  await t.step("returns the same context on every call", () => {
    assertStrictEquals(libc(), context);
    assertStrictEquals(libc().lib, context.lib);
    assertStrictEquals(libc().errno, context.errno);
  });

  await t.step("errno[0] holds EBADF right after close(-1)", () => {
    context.errno[0] = 0;
    assertEquals(context.lib.close(-1), -1);
    assertEquals(context.errno[0], 9);
    assertEquals(context.errno[0], context.layout.errno.EBADF);
  });

  await t.step("errno[0] holds ENOENT right after open() of a missing path", () => {
    const { O_RDONLY, O_CLOEXEC } = context.layout.constants;
    const path = new TextEncoder().encode("/nonexistent/fdpass-layout-test\0");
    context.errno[0] = 0;
    assertEquals(context.open(path, O_RDONLY | O_CLOEXEC, 0), -1);
    assertEquals(context.errno[0], context.layout.errno.ENOENT);
  });

  await t.step("fcntl() reads the flags of fd 1 and rejects a bad fd", () => {
    const { F_GETFD, FD_CLOEXEC } = context.layout.constants;
    const flags = context.fcntl(1, F_GETFD, 0);
    assertGreaterOrEqual(flags, 0);
    assertEquals(flags & ~FD_CLOEXEC, 0);
    context.errno[0] = 0;
    assertEquals(context.fcntl(-1, F_GETFD, 0), -1);
    assertEquals(context.errno[0], context.layout.errno.EBADF);
  });

  await t.step("fcntl() passes its third argument (F_DUPFD_CLOEXEC with a minimum fd)", () => {
    const { F_DUPFD_CLOEXEC, F_GETFD, FD_CLOEXEC } = context.layout.constants;
    const fd = context.fcntl(1, F_DUPFD_CLOEXEC, 200);
    assertGreaterOrEqual(fd, 200);
    try {
      assertEquals(context.fcntl(fd, F_GETFD, 0), FD_CLOEXEC);
    } finally {
      assertEquals(context.lib.close(fd), 0);
    }
  });
});
