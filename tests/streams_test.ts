/**
 * The web streams of an fd (src/adapters/streams.ts): `readable` and
 * `writable` wait in the shared poller, close the fd at the end, and keep
 * buffering bounded.
 *
 * @module
 */

import { assert, assertEquals, assertLessOrEqual } from "@std/assert";
import { type OwnedFd, pipe, UnixSocket } from "../mod.ts";
import { assertPollerIdle, encoder, leakCheckedTest, startPoller, within } from "./helpers.ts";

await startPoller();

leakCheckedTest(
  "the readable of a pipe received over a socket pipes through TextDecoderStream",
  async () => {
    const [a, b] = UnixSocket.pair();
    const [r, w] = pipe();
    let received: OwnedFd | undefined;
    try {
      a.sendSync("pipe", { fds: [r] });
      r.close();
      const message = await b.recv();
      received = message!.fds[0]!;
      const text = "héllo, wörld — ✓";
      const bytes = encoder.encode(text);
      // Write in pieces that split multi-byte characters, with pauses, so the
      // stream waits in the poller between them.
      const writing = (async () => {
        for (let i = 0; i < bytes.byteLength; i += 3) {
          await w.write(bytes.subarray(i, Math.min(i + 3, bytes.byteLength)));
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        w.close();
      })();
      let decoded = "";
      const stream = received.readable.pipeThrough(new TextDecoderStream());
      await within(
        (async () => {
          for await (const chunk of stream) decoded += chunk;
        })(),
        10_000,
        "the decoded stream",
      );
      await writing;
      assertEquals(decoded, text);
      assert(received.closed, "the readable closes the fd at end of file");
      await assertPollerIdle();
    } finally {
      a.close();
      b.close();
      r.close();
      w.close();
      received?.close();
    }
  },
);

leakCheckedTest(
  "10 MiB through a socketpair's writable and readable keeps buffering bounded",
  async () => {
    const [a, b] = UnixSocket.pair();
    const reader = a.toOwnedFd();
    const writerFd = b.toOwnedFd();
    const total = 10 << 20;
    const chunkSize = 64 << 10;
    let written = 0; // handed to writer.write()
    let read = 0;
    let maxAhead = 0;
    let minDesiredSize = Infinity;
    try {
      const readAll = (async () => {
        let expected = 0;
        for await (const chunk of reader.readable) {
          for (const byte of chunk) {
            if (byte !== expected % 251) throw new Error(`Byte ${read} is ${byte}`);
            expected++;
            read++;
          }
        }
      })();
      const writeAll = (async () => {
        const writer = writerFd.writable.getWriter();
        const writes: Promise<void>[] = [];
        for (let offset = 0; offset < total; offset += chunkSize) {
          await writer.ready;
          const chunk = new Uint8Array(chunkSize);
          for (let i = 0; i < chunkSize; i++) chunk[i] = (offset + i) % 251;
          writes.push(writer.write(chunk));
          written += chunkSize;
          minDesiredSize = Math.min(minDesiredSize, writer.desiredSize ?? 0);
          maxAhead = Math.max(maxAhead, written - read);
        }
        await Promise.all(writes);
        await writer.close();
      })();
      await within(Promise.all([readAll, writeAll]), 20_000, "10 MiB through the streams");
      assertEquals(read, total);
      assert(writerFd.closed && reader.closed, "both streams closed their fds");
      // The writer never ran ahead of `ready`: at most one chunk queued
      // behind the one being written.
      assertLessOrEqual(-minDesiredSize, 1);
      // What was handed over but not yet read is bounded by the socket
      // buffers plus a couple of chunks, far below the 10 MiB.
      assertLessOrEqual(maxAhead, 4 << 20);
      await assertPollerIdle();
    } finally {
      reader.close();
      writerFd.close();
    }
  },
);
