/**
 * The control-message walker of src/core/message.ts, driven with control
 * buffers built by hand for each platform layout (docs/abi.md, "struct
 * cmsghdr and the CMSG macros"): no sockets and no kernel, so the cases a
 * kernel never produces here (corrupt lengths, partial ints, another
 * platform's alignment) are covered too.
 *
 * Every buffer sits at a non-zero offset in a DataView that ends exactly
 * where the control data ends, so a read past `msg_controllen` throws a
 * RangeError instead of passing unnoticed.
 *
 * @module
 */

import { assertEquals } from "@std/assert";
import { cmsgAlign, cmsgDataOffset, cmsgLen, cmsgSpace, FD_SIZE } from "../ffi/cmsg.ts";
import type { Layout } from "../ffi/types.ts";
import { linuxAarch64, linuxX86_64 } from "../ffi/platforms/linux.ts";
import { darwinArm64, freebsdX86_64 } from "../ffi/platforms/bsd.ts";
import { type ControlContents, walkControl } from "../src/core/message.ts";
import { leakCheckedTest } from "./helpers.ts";

const LAYOUTS: readonly Layout[] = [linuxX86_64, linuxAarch64, darwinArm64, freebsdX86_64];

/** Where the control buffer starts in the view: not 0, so that `base` is honoured. */
const BASE = 8;

/** Filler for the bytes around and between cmsgs: never a plausible header. */
const FILL = 0xa5;

/** One cmsg to write. */
interface CmsgSpec {
  level: number;
  type: number;
  /** The payload bytes. */
  data: Uint8Array;
  /** `cmsg_len` to write instead of `CMSG_LEN(data.length)`. */
  len?: number;
  /** High half of a 64-bit `cmsg_len` (0 unless testing corruption). */
  lenHigh?: number;
}

/** The payload of an `SCM_RIGHTS` message holding `fds`. */
function ints(fds: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(fds.length * FD_SIZE);
  const view = new DataView(bytes.buffer);
  fds.forEach((fd, i) => view.setInt32(i * FD_SIZE, fd, true));
  return bytes;
}

function rights(layout: Layout, fds: readonly number[]): CmsgSpec {
  return { level: layout.constants.SOL_SOCKET, type: layout.constants.SCM_RIGHTS, data: ints(fds) };
}

/** A Linux `struct ucred` as `SCM_CREDENTIALS` carries it. */
function credentials(layout: Layout, pid: number, uid: number, gid: number): CmsgSpec {
  const data = new Uint8Array(layout.ucredSize);
  const view = new DataView(data.buffer);
  view.setInt32(layout.peerCredentials.pidOffset, pid, true);
  view.setUint32(layout.peerCredentials.uidOffset, uid, true);
  view.setUint32(layout.peerCredentials.gidOffset, gid, true);
  return {
    level: layout.constants.SOL_SOCKET,
    type: layout.constants.SCM_CREDENTIALS,
    data,
  };
}

/**
 * Lays out `cmsgs` as `CMSG_FIRSTHDR`/`CMSG_NXTHDR` expect them: each header
 * at the previous one plus `CMSG_ALIGN(cmsg_len)`, padding filled with
 * {@linkcode FILL}.
 *
 * @returns The view (ending where the control data ends unless `length` says
 * otherwise) and `msg_controllen`.
 */
function controlBuffer(
  layout: Layout,
  cmsgs: readonly CmsgSpec[],
  options: { length?: number; trailing?: Uint8Array } = {},
): { view: DataView; length: number } {
  const h = layout.cmsghdr;
  let total = 0;
  for (const cmsg of cmsgs) {
    total += cmsg.len === undefined
      ? cmsgSpace(layout, cmsg.data.byteLength)
      : cmsgAlign(layout, Math.max(cmsg.len, cmsgLen(layout, cmsg.data.byteLength)));
  }
  const trailing = options.trailing ?? new Uint8Array(0);
  const length = options.length ?? total;
  const bytes = new Uint8Array(BASE + Math.max(length, total + trailing.byteLength)).fill(FILL);
  const view = new DataView(bytes.buffer);
  let offset = BASE;
  for (const cmsg of cmsgs) {
    const len = cmsg.len ?? cmsgLen(layout, cmsg.data.byteLength);
    if (h.lenSize === 8) {
      view.setUint32(offset + h.len, len, true);
      view.setUint32(offset + h.len + 4, cmsg.lenHigh ?? 0, true);
    } else {
      view.setUint32(offset + h.len, len, true);
    }
    view.setInt32(offset + h.level, cmsg.level, true);
    view.setInt32(offset + h.type, cmsg.type, true);
    bytes.set(cmsg.data, offset + cmsgDataOffset(layout));
    offset += cmsg.len === undefined
      ? cmsgSpace(layout, cmsg.data.byteLength)
      : cmsgAlign(layout, Math.max(cmsg.len, cmsgLen(layout, cmsg.data.byteLength)));
  }
  bytes.set(trailing, offset);
  // The view ends at msg_controllen: reading past it is a RangeError.
  return { view: new DataView(bytes.buffer, 0, BASE + length), length };
}

function walk(layout: Layout, control: { view: DataView; length: number }): ControlContents {
  return walkControl(layout, control.view, BASE, control.length, { fds: [], credentials: null });
}

function range(n: number, from = 3): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

const linux = linuxX86_64;

for (const layout of LAYOUTS) {
  leakCheckedTest(
    `walkControl() returns the one fd of an SCM_RIGHTS message (${layout.name})`,
    () => {
      const found = walk(layout, controlBuffer(layout, [rights(layout, [42])]));
      assertEquals(found, { fds: [42], credentials: null });
    },
  );

  leakCheckedTest(
    `walkControl() returns all 253 fds of one SCM_RIGHTS message in order (${layout.name})`,
    () => {
      const fds = range(253, 1000);
      const found = walk(layout, controlBuffer(layout, [rights(layout, fds)]));
      assertEquals(found.fds, fds);
      assertEquals(found.credentials, null);
    },
  );

  leakCheckedTest(
    `walkControl() joins the fds of two SCM_RIGHTS messages in order (${layout.name})`,
    () => {
      // Odd counts, so that CMSG_SPACE pads the first cmsg where the
      // alignment is 8 and does not where it is 4.
      const control = controlBuffer(layout, [rights(layout, [5]), rights(layout, [6, 7, 8])]);
      assertEquals(walk(layout, control).fds, [5, 6, 7, 8]);
    },
  );
}

leakCheckedTest(
  "walkControl() parses SCM_CREDENTIALS before SCM_RIGHTS and still finds the fds",
  () => {
    const control = controlBuffer(linux, [
      credentials(linux, 4321, 1000, 100),
      rights(linux, [9, 10]),
    ]);
    // CMSG_SPACE(12) is 32 on Linux: the fds start at 32 + 16.
    assertEquals(cmsgSpace(linux, linux.ucredSize), 32);
    assertEquals(walk(linux, control), {
      fds: [9, 10],
      credentials: { pid: 4321, uid: 1000, gid: 100 },
    });
  },
);

leakCheckedTest("walkControl() parses SCM_CREDENTIALS after SCM_RIGHTS too", () => {
  const control = controlBuffer(linux, [
    rights(linux, [11]),
    credentials(linux, 77, 0xfffffffe, 5),
  ]);
  assertEquals(walk(linux, control), {
    fds: [11],
    credentials: { pid: 77, uid: 0xfffffffe, gid: 5 },
  });
});

leakCheckedTest("walkControl() ignores an SCM_CREDENTIALS message too short for a ucred", () => {
  const short = { ...credentials(linux, 1, 2, 3), data: new Uint8Array(8) };
  const control = controlBuffer(linux, [short, rights(linux, [12])]);
  assertEquals(walk(linux, control), { fds: [12], credentials: null });
});

for (const layout of [darwinArm64, freebsdX86_64]) {
  leakCheckedTest(
    `walkControl() does not read credentials where the layout has no SCM_CREDENTIALS (${layout.name})`,
    () => {
      // SCM_CREDENTIALS is 0 in the BSD table: a SOL_SOCKET cmsg of type 0
      // is not a ucred there.
      const other = {
        level: layout.constants.SOL_SOCKET,
        type: layout.constants.SCM_CREDENTIALS,
        data: new Uint8Array(12).fill(1),
      };
      const control = controlBuffer(layout, [other, rights(layout, [13])]);
      assertEquals(walk(layout, control), { fds: [13], credentials: null });
    },
  );
}

leakCheckedTest("walkControl() skips a cmsg of another level or type", () => {
  const c = linux.constants;
  const control = controlBuffer(linux, [
    // IPPROTO_IP / IP_TTL-like: another level.
    { level: 0, type: c.SCM_RIGHTS, data: ints([100, 101]) },
    // SOL_SOCKET with an unknown type (SCM_TIMESTAMP is 29).
    { level: c.SOL_SOCKET, type: 29, data: new Uint8Array(16).fill(7) },
    rights(linux, [14]),
  ]);
  assertEquals(walk(linux, control), { fds: [14], credentials: null });
});

leakCheckedTest("walkControl() finds nothing in an empty or header-less control buffer", () => {
  assertEquals(walk(linux, controlBuffer(linux, [])), { fds: [], credentials: null });
  // Fewer bytes than one cmsghdr: no header to read.
  const control = controlBuffer(linux, [rights(linux, [15])], { length: linux.cmsghdr.size - 1 });
  assertEquals(walk(linux, control), { fds: [], credentials: null });
});

leakCheckedTest("walkControl() reads an SCM_RIGHTS message without fds and goes on", () => {
  const empty = { ...rights(linux, []), len: linux.cmsghdr.size };
  const control = controlBuffer(linux, [empty, rights(linux, [16])]);
  assertEquals(walk(linux, control).fds, [16]);
});

leakCheckedTest("walkControl() appends to the fds already collected", () => {
  const control = controlBuffer(linux, [rights(linux, [18, 19])]);
  const into: ControlContents = { fds: [17], credentials: null };
  const result = walkControl(linux, control.view, BASE, control.length, into);
  assertEquals(result.fds, [17, 18, 19]);
  assertEquals(result, into);
});

for (const layout of LAYOUTS) {
  leakCheckedTest(
    `walkControl() ends the walk at a cmsg_len smaller than the header (${layout.name})`,
    () => {
      for (const len of [0, 1, layout.cmsghdr.size - 1]) {
        // A valid SCM_RIGHTS follows: finding it would mean the walk went on.
        const bad = { ...rights(layout, [20]), len };
        const control = controlBuffer(layout, [
          rights(layout, [21]),
          { ...bad, data: new Uint8Array(0) },
          rights(layout, [22]),
        ]);
        assertEquals(walk(layout, control).fds, [21], `cmsg_len ${len}`);
      }
    },
  );

  leakCheckedTest(
    `walkControl() ends the walk at a cmsg_len that runs past the buffer without reading past it (${layout.name})`,
    () => {
      // The second header claims two fds, but msg_controllen stops after
      // its first: the view ends there, so reading the second would throw.
      const first = rights(layout, [23]);
      const firstSpace = cmsgSpace(layout, FD_SIZE);
      const claimed = rights(layout, [24, 25]);
      const length = firstSpace + cmsgLen(layout, FD_SIZE);
      const control = controlBuffer(layout, [first, claimed], { length });
      assertEquals(walk(layout, control), { fds: [23], credentials: null });
      // One byte short of a whole single-fd cmsg also ends the walk.
      const short = controlBuffer(layout, [rights(layout, [26])], {
        length: cmsgLen(layout, FD_SIZE) - 1,
      });
      assertEquals(walk(layout, short).fds, []);
    },
  );

  leakCheckedTest(
    `walkControl() ignores a partial int at the end of SCM_RIGHTS data (${layout.name})`,
    () => {
      const data = new Uint8Array(2 * FD_SIZE + 3);
      data.set(ints([27, 28]));
      data.set([0xff, 0xff, 0xff], 2 * FD_SIZE);
      const partial = { ...rights(layout, []), data };
      const control = controlBuffer(layout, [partial, rights(layout, [29])]);
      assertEquals(walk(layout, control).fds, [27, 28, 29]);
      // Fewer than four data bytes: no fd at all.
      const tiny = { ...rights(layout, []), data: new Uint8Array(3).fill(0xff) };
      assertEquals(walk(layout, controlBuffer(layout, [tiny])).fds, []);
    },
  );
}

leakCheckedTest(
  "walkControl() ends the walk at a 64-bit cmsg_len whose high half is not zero",
  () => {
    assertEquals(linux.cmsghdr.lenSize, 8);
    const corrupt = { ...rights(linux, [30]), lenHigh: 1 };
    const control = controlBuffer(linux, [rights(linux, [31]), corrupt, rights(linux, [32])]);
    assertEquals(walk(linux, control), { fds: [31], credentials: null });
    // With the high half 0 the same buffer walks to the end.
    const clean = controlBuffer(linux, [
      rights(linux, [31]),
      rights(linux, [30]),
      rights(linux, [32]),
    ]);
    assertEquals(walk(linux, clean).fds, [31, 30, 32]);
  },
);

leakCheckedTest("walkControl() walks macOS cmsgs: data at 12, aligned to 4 bytes", () => {
  const layout = darwinArm64;
  assertEquals(cmsgDataOffset(layout), 12);
  // Two fds: CMSG_LEN is 20 and CMSG_SPACE 20 with 4-byte alignment (24
  // with 8), so the next header sits at 20.
  assertEquals(cmsgSpace(layout, 2 * FD_SIZE), 20);
  const control = controlBuffer(layout, [rights(layout, [33, 34]), rights(layout, [35])]);
  assertEquals(control.view.getUint32(BASE + 20, true), cmsgLen(layout, FD_SIZE));
  assertEquals(walk(layout, control).fds, [33, 34, 35]);
});

leakCheckedTest(
  "walkControl() walks FreeBSD cmsgs: 12-byte header, data at 16, aligned to 8 bytes",
  () => {
    const layout = freebsdX86_64;
    assertEquals(layout.cmsghdr.size, 12);
    assertEquals(cmsgDataOffset(layout), 16);
    // One fd: CMSG_LEN is 20 and CMSG_SPACE 24, so the next header sits at 24.
    assertEquals(cmsgSpace(layout, FD_SIZE), 24);
    const control = controlBuffer(layout, [rights(layout, [36]), rights(layout, [37, 38])]);
    assertEquals(control.view.getUint32(BASE + 24, true), cmsgLen(layout, 2 * FD_SIZE));
    assertEquals(walk(layout, control).fds, [36, 37, 38]);
  },
);
