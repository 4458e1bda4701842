/**
 * Web streams over an fd owner: a byte `ReadableStream` and a
 * `WritableStream`, both driven by the owner's async read/write (and so by
 * the shared poller), with backpressure. They take a structural owner and
 * know no class.
 *
 * @module
 */

/** What the streams need from an fd owner. */
export interface ByteChannel {
  /** Reads into `buffer`; `null` at end of file. */
  read(buffer: Uint8Array, options?: { signal?: AbortSignal }): Promise<number | null>;
  /** Writes some of `data`. */
  write(data: Uint8Array, options?: { signal?: AbortSignal }): Promise<number>;
  /** Closes the fd; idempotent. */
  close(): void;
}

/** Chunk size the readable stream allocates when the reader brings no buffer. */
const CHUNK_SIZE = 64 * 1024;

/**
 * A byte stream reading `owner` until end of file; closes it at the end,
 * on cancel, or on error.
 *
 * @param owner The fd owner.
 * @returns The stream.
 */
export function readableFrom(owner: ByteChannel): ReadableStream<Uint8Array> {
  // Cancels a read that waits, so that cancel() settles at once.
  const cancelled = new AbortController();
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: CHUNK_SIZE,
    async pull(controller): Promise<void> {
      const request = controller.byobRequest!;
      const view = request.view!;
      const target = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
      try {
        const n = await owner.read(target, { signal: cancelled.signal });
        if (n === null) {
          owner.close();
          controller.close();
          request.respond(0);
        } else {
          request.respond(n);
        }
      } catch (error) {
        owner.close();
        if (cancelled.signal.aborted) return;
        throw error;
      }
    },
    cancel(reason): void {
      cancelled.abort(reason);
      owner.close();
    },
  });
}

/**
 * A writable stream writing every chunk fully to `owner`; closing or
 * aborting it closes the fd. An abort also cancels a write that waits for
 * room (the stream's own signal), so that it settles at once.
 *
 * @param owner The fd owner.
 * @returns The stream.
 */
export function writableTo(owner: ByteChannel): WritableStream<Uint8Array> {
  let signal: AbortSignal | undefined;
  return new WritableStream<Uint8Array>({
    start(controller): void {
      signal = controller.signal;
    },
    async write(chunk): Promise<void> {
      let rest = chunk;
      try {
        while (rest.byteLength > 0) {
          rest = rest.subarray(await owner.write(rest, { signal }));
        }
      } catch (error) {
        owner.close();
        throw error;
      }
    },
    close(): void {
      owner.close();
    },
    abort(): void {
      owner.close();
    },
  }, new CountQueuingStrategy({ highWaterMark: 1 }));
}
