/**
 * Web streams over owned fds: a byte `ReadableStream` and a
 * `WritableStream`, both driven by the async read/write (and so by the
 * shared poller), with backpressure.
 *
 * @module
 */

import type { OwnedFd } from "./fd.ts";

/** Chunk size the readable stream allocates when the reader brings no buffer. */
const CHUNK_SIZE = 64 * 1024;

/**
 * A byte stream reading `owned` until end of file; closes it at the end.
 *
 * @param owned The fd.
 * @returns The stream.
 */
export function readableFromFd(owned: OwnedFd): ReadableStream<Uint8Array> {
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: CHUNK_SIZE,
    async pull(controller): Promise<void> {
      const request = controller.byobRequest!;
      const view = request.view!;
      const target = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      try {
        const n = await owned.read(target);
        if (n === null) {
          owned.close();
          controller.close();
          request.respond(0);
        } else {
          request.respond(n);
        }
      } catch (error) {
        owned.close();
        throw error;
      }
    },
    cancel(): void {
      owned.close();
    },
  });
}

/**
 * A writable stream writing every chunk fully to `owned`; closing or
 * aborting it closes the fd.
 *
 * @param owned The fd.
 * @returns The stream.
 */
export function writableFromFd(owned: OwnedFd): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    async write(chunk): Promise<void> {
      let rest = chunk;
      while (rest.byteLength > 0) {
        rest = rest.subarray(await owned.write(rest));
      }
    },
    close(): void {
      owned.close();
    },
    abort(): void {
      owned.close();
    },
  }, new CountQueuingStrategy({ highWaterMark: 1 }));
}
