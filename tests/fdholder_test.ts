/**
 * The fd holder against s6 (Debian's `s6` package): FdHolder against
 * s6-fdholder-daemon, and s6's own clients against FdHolderServer, for every
 * operation, with real traffic. Skipped, visibly, when s6 is missing.
 */

import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { FdHolder, type FdHolderEntry } from "../src/extras/fdholder.ts";
import { FdHolderServer } from "../src/extras/fdholder_server.ts";
import { openFd, pipe } from "../src/owned_fd.ts";
import { hasCommand, leakCheckedTest, startPoller, tempSocketPath, until } from "./helpers.ts";

await startPoller();

const HAS_S6 = hasCommand("s6-fdholder-daemon") && hasCommand("s6-fdholder-store");
const HAS_SETPRIV = hasCommand("setpriv");
if (!HAS_S6) console.warn("fdholder_test: s6 is not installed; the s6 tests are skipped");
const ignore = !HAS_S6;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function sh(script: string): Promise<Run> {
  const out = await new Deno.Command("sh", { args: ["-c", script], stdin: "null" }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

// Rules for s6-fdholder-daemon -i: uid 0 allowed, with the env that grants
// store/retrieve ids matching `storeRegex`, list and both dumps.
function writeRules(dir: string, storeRegex: string): string {
  const env = `${dir}/rules/uid/${0}/env`;
  Deno.mkdirSync(env, { recursive: true });
  Deno.writeTextFileSync(`${dir}/rules/uid/0/allow`, "");
  Deno.writeTextFileSync(`${env}/S6_FDHOLDER_STORE_REGEX`, `${storeRegex}\n`);
  Deno.writeTextFileSync(`${env}/S6_FDHOLDER_RETRIEVE_REGEX`, `${storeRegex}\n`);
  // An empty file unsets the variable in s6-accessrules: give a value.
  for (const flag of ["LIST", "GETDUMP", "SETDUMP"]) {
    Deno.writeTextFileSync(`${env}/S6_FDHOLDER_${flag}`, "1\n");
  }
  return `${dir}/rules`;
}

async function withDaemon(
  storeRegex: string,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const temp = tempSocketPath("s6.sock");
  const rules = writeRules(temp.dir, storeRegex);
  const daemon = new Deno.Command("s6-fdholder-daemon", {
    args: ["-i", rules, temp.path],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await until(() => {
      try {
        return Deno.lstatSync(temp.path).isSocket === true;
      } catch {
        return false;
      }
    }, "s6-fdholder-daemon to listen");
    await fn(temp.path);
  } finally {
    daemon.kill("SIGTERM");
    await daemon.status;
    temp.cleanup();
  }
}

// s6 gives its dump in its own order.
function byId(a: FdHolderEntry, b: FdHolderEntry): number {
  return a.id < b.id ? -1 : 1;
}

leakCheckedTest(
  "FdHolder stores, lists, retrieves, deletes and dumps fds in s6-fdholder-daemon",
  async () => {
    await withDaemon(".*", async (path) => {
      using holder = await FdHolder.connect(path);
      using hosts = openFd("/etc/hosts");
      await holder.store("file:hosts", hosts, { timeout: 60_000 });
      await holder.store("file:hosts2", hosts);
      assertEquals(await holder.list(), ["file:hosts", "file:hosts2"]);
      const busy = await assertRejects(() => holder.store("file:hosts", hosts), Deno.errors.Busy);
      assertEquals((busy as { code?: string }).code, "EBUSY");

      {
        using copy = await holder.retrieve("file:hosts");
        assertEquals(copy.kind, "file");
        assert(copy.fd !== hosts.fd);
      }
      const dump = await holder.getDump();
      try {
        dump.sort(byId);
        assertEquals(dump.map((entry) => entry.id), ["file:hosts", "file:hosts2"]);
        const deadline = dump[0]!.deadline!.getTime();
        assert(Math.abs(deadline - (Date.now() + 60_000)) < 5_000, `deadline ${dump[0]!.deadline}`);
        assertEquals(dump[1]!.deadline, null);
        assertEquals(dump.map((entry) => entry.fd.kind), ["file", "file"]);

        {
          using removed = await holder.retrieve("file:hosts", { remove: true });
          assertEquals(removed.kind, "file");
        }
        await holder.delete("file:hosts2");
        assertEquals(await holder.list(), []);
        const missing = await assertRejects(
          () => holder.delete("file:hosts2"),
          Deno.errors.NotFound,
        );
        assertEquals((missing as { code?: string }).code, "ENOENT");
        await assertRejects(() => holder.retrieve("nothing"), Deno.errors.NotFound);

        // Put the dump back: the deadlines come back as they were.
        await holder.setDump(dump);
        const again = await holder.getDump();
        assertEquals(
          again.sort(byId).map((entry) => [entry.id, entry.deadline?.getTime() ?? null]),
          dump.map((entry) => [entry.id, entry.deadline?.getTime() ?? null]),
        );
        for (const entry of again) entry.fd.close();
      } finally {
        for (const entry of dump) entry.fd.close();
      }
      // And s6's own list agrees.
      const listed = await sh(`s6-fdholder-list '${path}'`);
      assertEquals(listed.stdout.trim().split("\n").sort(), ["file:hosts", "file:hosts2"]);
    });
  },
  { ignore },
);

leakCheckedTest(
  "FdHolder gets EPERM from s6-fdholder-daemon for an id its rules do not grant",
  async () => {
    await withDaemon("^allowed:", async (path) => {
      using holder = await FdHolder.connect(path);
      using hosts = openFd("/etc/hosts");
      await holder.store("allowed:a", hosts);
      const denied = await assertRejects(
        () => holder.store("other:a", hosts),
        Deno.errors.PermissionDenied,
      );
      assertEquals((denied as { code?: string }).code, "EPERM");
      assertStringIncludes((denied as Error).message, "fdholder store");
      await assertRejects(() => holder.retrieve("other:a"), Deno.errors.PermissionDenied);
      await assertRejects(() => holder.delete("other:a"), Deno.errors.PermissionDenied);
      // The connection stays usable after a refusal.
      assertEquals(await holder.list(), ["allowed:a"]);
    });
  },
  { ignore },
);

leakCheckedTest(
  "s6's clients store, list, retrieve, delete, getdump and setdump against FdHolderServer",
  async () => {
    const temp = tempSocketPath("ours.sock");
    const path = temp.path;
    await using server = FdHolderServer.listen(path);
    try {
      const stored = await sh(
        `s6-fdholder-store '${path}' file:hostname < /etc/hostname && s6-fdholder-store -T 60000 '${path}' file:hosts < /etc/hosts`,
      );
      assertEquals(stored, { code: 0, stdout: "", stderr: "" });
      assertEquals(server.ids(), ["file:hostname", "file:hosts"]);
      const busy = await sh(`s6-fdholder-store '${path}' file:hosts < /etc/hosts`);
      assertEquals(busy.code, 1);
      assertStringIncludes(busy.stderr, "busy");

      const listed = await sh(`s6-fdholder-list '${path}'`);
      assertEquals(listed.stdout, "file:hostname\nfile:hosts\n");

      const hostname = Deno.readTextFileSync("/etc/hostname");
      const retrieved = await sh(`s6-fdholder-retrieve '${path}' file:hostname cat`);
      assertEquals(retrieved.stdout, hostname);
      const removed = await sh(`s6-fdholder-retrieve -D '${path}' file:hostname sh -c 'head -c 0'`);
      assertEquals(removed.code, 0);
      assertEquals(server.ids(), ["file:hosts"]);
      const gone = await sh(`s6-fdholder-retrieve '${path}' file:hostname true`);
      assertEquals(gone.code, 1);
      assertStringIncludes(gone.stderr, "No such file or directory");

      // getdump hands fds and ids to setdump (exec'd directly: dash drops the
      // S6_FD# variable), which puts them in a second holder.
      const other = tempSocketPath("other.sock");
      await using target = FdHolderServer.listen(other.path);
      try {
        const moved = await sh(`s6-fdholder-getdump '${path}' s6-fdholder-setdump '${other.path}'`);
        assertEquals(moved, { code: 0, stdout: "", stderr: "" });
        assertEquals(target.ids(), ["file:hosts"]);
        using fromTarget = await FdHolder.connect(other.path);
        const [copied] = await fromTarget.getDump();
        using copiedFd = copied!.fd;
        assertEquals(copiedFd.kind, "file");
        assert(Math.abs(copied!.deadline!.getTime() - (Date.now() + 60_000)) < 5_000);
      } finally {
        await target.close();
        other.cleanup();
      }

      const deleted = await sh(`s6-fdholder-delete '${path}' file:hosts`);
      assertEquals(deleted.code, 0);
      assertEquals(server.size, 0);
      const deletedAgain = await sh(`s6-fdholder-delete '${path}' file:hosts`);
      assertEquals(deletedAgain.code, 1);
    } finally {
      await server.close();
      temp.cleanup();
    }
  },
  { ignore },
);

leakCheckedTest(
  "FdHolderServer answers EPERM to s6-fdholder-store run as another uid",
  async () => {
    const temp = tempSocketPath("ours.sock");
    await using server = FdHolderServer.listen(temp.path);
    try {
      Deno.chmodSync(temp.dir, 0o755);
      Deno.chmodSync(temp.path, 0o777);
      const nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups";
      const denied = await sh(`${nobody} s6-fdholder-store '${temp.path}' x:y < /etc/hostname`);
      assertEquals(denied.code, 1);
      assertStringIncludes(denied.stderr, "Operation not permitted");
      const listDenied = await sh(`${nobody} s6-fdholder-list '${temp.path}'`);
      assertStringIncludes(listDenied.stderr, "Operation not permitted");
      assertEquals(server.size, 0);
      // Allowed once its uid is in allowUids.
      await server.close();
      await using allowing = FdHolderServer.listen(temp.path, { allowUids: [65534] });
      Deno.chmodSync(temp.path, 0o777);
      const stored = await sh(`${nobody} s6-fdholder-store '${temp.path}' x:y < /etc/hostname`);
      assertEquals(stored.code, 0, stored.stderr);
      assertEquals(allowing.ids(), ["x:y"]);
    } finally {
      temp.cleanup();
    }
  },
  { ignore: ignore || !HAS_SETPRIV },
);

leakCheckedTest(
  "FdHolderServer closes an fd and forgets its id when its deadline passes",
  async () => {
    const temp = tempSocketPath("ours.sock");
    await using server = FdHolderServer.listen(temp.path);
    try {
      using holder = await FdHolder.connect(temp.path);
      using hosts = openFd("/etc/hosts");
      await holder.store("short", hosts, { timeout: 150 });
      await holder.store("long", hosts, { timeout: 60_000 });
      // s6's client's -T deadline too.
      const stored = await sh(`s6-fdholder-store -T 150 '${temp.path}' s6short < /etc/hostname`);
      assertEquals(stored.code, 0, stored.stderr);
      assertEquals(server.size, 3);
      await until(() => server.size === 1, "the short deadlines to pass");
      assertEquals(await holder.list(), ["long"]);
      await assertRejects(() => holder.retrieve("short"), Deno.errors.NotFound);
      // A deadline already past: stored, then closed at once.
      await holder.store("past", hosts, { deadline: new Date(Date.now() - 1000) });
      assertEquals(server.ids(), ["long"]);
    } finally {
      await server.close();
      temp.cleanup();
    }
  },
  { ignore },
);

leakCheckedTest(
  "FdHolderServer refuses fds past maxFds with ENFILE and connections past maxConnections",
  async () => {
    const temp = tempSocketPath("ours.sock");
    await using server = FdHolderServer.listen(temp.path, { maxFds: 2, maxConnections: 1 });
    try {
      using holder = await FdHolder.connect(temp.path);
      using hosts = openFd("/etc/hosts");
      await holder.store("a", hosts);
      await holder.store("b", hosts);
      const full = await assertRejects(
        () => holder.store("c", hosts),
        Error,
      );
      assertEquals((full as { code?: string }).code, "ENFILE");
      const s6Full = await sh(`s6-fdholder-store '${temp.path}' c < /etc/hosts`);
      assertEquals(s6Full.code, 1); // Closed at once: a second connection.
      await until(() => server.connections === 1, "one connection");
      holder.close();
      await until(() => server.connections === 0, "the connection to end");
      const s6Again = await sh(`s6-fdholder-store '${temp.path}' c < /etc/hosts`);
      assertStringIncludes(s6Again.stderr, "Too many open files in system");
      assertEquals(server.ids(), ["a", "b"]);
    } finally {
      await server.close();
      temp.cleanup();
    }
  },
  { ignore },
);

leakCheckedTest(
  "FdHolderServer.close() closes every held fd and removes the socket file",
  async () => {
    const temp = tempSocketPath("ours.sock");
    const server = FdHolderServer.listen(temp.path);
    try {
      using holder = await FdHolder.connect(temp.path);
      using hosts = openFd("/etc/hosts");
      await holder.store("a", hosts);
      await holder.store("b", hosts);
      await server.close();
      assertEquals(server.size, 0);
      assert(
        !(() => {
          try {
            Deno.lstatSync(temp.path);
            return true;
          } catch {
            return false;
          }
        })(),
      );
      await assertRejects(() => holder.list());
    } finally {
      await server.close();
      temp.cleanup();
    }
  },
);

leakCheckedTest(
  "a dump of more fds than one frame carries goes out and comes back whole, in frames of 253",
  async () => {
    // getdump replies and setdump requests carry at most 253 fds a frame;
    // 300 distinct pipes need two of each.
    const temp = tempSocketPath("ours.sock");
    const second = tempSocketPath("second.sock");
    await using server = FdHolderServer.listen(temp.path, { maxFds: 400 });
    await using target = FdHolderServer.listen(second.path, { maxFds: 400 });
    const pipes = Array.from({ length: 300 }, () => pipe());
    try {
      using holder = await FdHolder.connect(temp.path);
      await holder.setDump(pipes.map(([r], i) => ({ id: `pipe-${i}`, fd: r })));
      assertEquals(server.size, 300);
      const dump = await holder.getDump();
      try {
        assertEquals(dump.length, 300);
        assertEquals(
          dump.map((entry) => entry.id).sort(),
          pipes.map((_, i) => `pipe-${i}`).sort(),
        );
        // Each fd is the read end stored under its id: write through the
        // matching write end, read through the dumped fd.
        for (const entry of dump) {
          const i = Number(entry.id.slice(5));
          pipes[i]![1].writeAllSync(String(i));
          const bytes = new Uint8Array(8);
          const n = entry.fd.readSync(bytes)!;
          assertEquals(new TextDecoder().decode(bytes.subarray(0, n)), String(i));
        }
        // And the same dump into another holder.
        using other = await FdHolder.connect(second.path);
        await other.setDump(dump.map(({ id, fd, deadline }) => ({ id, fd, deadline })));
        assertEquals(target.size, 300);
      } finally {
        for (const entry of dump) entry.fd.close();
      }
    } finally {
      for (const [r, w] of pipes) {
        r.close();
        w.close();
      }
      await server.close();
      await target.close();
      temp.cleanup();
      second.cleanup();
    }
  },
);
