/**
 * The io_uring doorbell backend (Linux): waits with no FFI call pending and
 * no thread of its own, through Deno's own event loop.
 *
 * The fds stay registered in an epoll set exactly as in the epoll backend
 * (edge-triggered, with generations). A wait submits two linked io_uring requests
 * (`io_uring_enter(2)` from this thread, which returns at once): a poll for
 * `POLLIN` on the epoll fd, which becomes readable when any registered fd is
 * ready (epoll(7)), hard-linked to a one-byte write into a pipe. Deno's
 * event loop reads the pipe's other end (a `node:net` socket, the one
 * public way to hand Deno an fd to watch). When a registered fd becomes
 * ready, the kernel completes the poll and makes the write on this thread
 * (io_uring runs completions as task work of the submitting thread), Deno's
 * event loop sees the doorbell, and its callback collects the events with a
 * zero-timeout `epoll_wait` on this thread.
 *
 * Against the epoll backend, whose `epoll_wait` sleeps in a thread of Deno's
 * blocking pool that then wakes the JavaScript thread, a wake-up costs one
 * context switch instead of two or three. The bell is a pipe rather than a
 * socketpair: a pipe write allocates no socket buffer, and a one-byte
 * ping-pong through `bench/doorbell_floor.ts` took 6-12% less time per
 * round trip with it.
 *
 * The socket is referenced only while a wait is pending, so the process
 * exits when nothing waits, as with the epoll backend.
 *
 * @module
 */

import { Socket } from "node:net";
import { libc } from "../../ffi/libc.ts";
import { errnoError } from "../core/errors.ts";
import { closeFd, pipeFds, setNonblocking } from "../core/fd_ops.ts";
import { mapMemory, unmapMemory } from "../core/memory_map.ts";
import type { Backend, Interest, Report } from "./backend.ts";
import { EpollBackend } from "./epoll_backend.ts";

/** `user_data` of the poll request. */
const POLL = 1;
/** `user_data` of the doorbell write. */
const DOORBELL = 2;
/** Submission entries: one poll and its write. */
const ENTRIES = 2;
/** Completion entries (`IORING_SETUP_CQSIZE`). */
const CQ_ENTRIES = 64;

/** How often the bound of a wait is checked, in milliseconds. */
const TICK_MS = 1_000;

interface Mapping {
  readonly pointer: Deno.PointerObject;
  readonly size: number;
  readonly bytes: ArrayBuffer;
}

function mapRing(fd: number, size: number, offset: number): Mapping {
  const { layout } = libc();
  const pointer = mapMemory(
    fd,
    size,
    layout.constants.MAP_SHARED | layout.ioUring!.mapPopulate,
    offset,
  );
  return { pointer, size, bytes: Deno.UnsafePointerView.getArrayBuffer(pointer, size) };
}

function unmap(mapping: Mapping): void {
  unmapMemory(mapping.pointer, mapping.size);
}

/** See the module doc; the registrations are {@linkcode EpollBackend}'s. */
export class UringBackend implements Backend {
  readonly name = "io_uring";
  readonly dynamic = true;
  readonly edge = true;
  readonly #epoll: EpollBackend;
  readonly #ringFd: number;
  readonly #rings: Mapping;
  readonly #sqes: Mapping;
  readonly #words: Uint32Array;
  readonly #view: DataView;
  readonly #sqTail: number;
  readonly #cqHead: number;
  readonly #cqTail: number;
  readonly #cqMask: number;
  readonly #cqes: number;
  readonly #doorbellWrite: number;
  readonly #enter: bigint;
  readonly #doorbell: Socket;
  // The byte the doorbell write reads: off-heap, its address is in the entries.
  readonly #byte = new Uint8Array(new ArrayBuffer(8));
  /** Polls in the kernel (submitted, their completion not yet seen): 0 or 1, 2 after a recovery. */
  #polls = 0;
  #resolve: ((count: number) => void) | null = null;
  /** errno of a failed request or submission: the backend is broken. */
  #failure = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Counts waits, so that the timer can tell one long wait from many short ones. */
  #waitNumber = 0;
  #watchedWait = -1;
  #watchedTicks = 0;
  #bound = 10_000;
  #closed = false;
  /** The ring fd was closed behind our back: its number is not ours to close. */
  #ringLost = false;
  /** The doorbell's write end was closed behind our back (the write failed with EBADF). */
  #doorbellLost = false;

  /**
   * Sets up the ring, the epoll set and the doorbell.
   *
   * @throws {Deno.errors.NotSupported} Without io_uring, or with one older
   * than Linux 5.7.
   * @throws {ErrnoError} When `io_uring_setup` is refused (`EPERM` under
   * `kernel.io_uring_disabled` or a seccomp filter, `ENOSYS`).
   */
  constructor() {
    const { lib, layout, errno } = libc();
    const u = layout.ioUring;
    if (!layout.features.ioUring || u === null || lib.io_uring_setup === null) {
      throw new Deno.errors.NotSupported("io_uring is not available on this platform");
    }
    const params = new Uint8Array(new ArrayBuffer(u.params.size));
    const p = new DataView(params.buffer);
    // A completion queue with room to spare: a recovered poll may complete
    // beside its successor, and nothing must wait in the kernel's overflow list.
    p.setUint32(u.params.flags, u.setupCqsize, true);
    p.setUint32(u.params.cqEntries, CQ_ENTRIES, true);
    const ringFd = Number(lib.io_uring_setup!(BigInt(u.setupSyscall), ENTRIES, params));
    if (ringFd < 0) throw errnoError(errno[0]!, "io_uring_setup");
    const cleanup: (() => void)[] = [() => lib.close(ringFd)];
    try {
      const features = p.getUint32(u.params.features, true);
      const needed = u.featSingleMmap | u.featNodrop | u.featFastPoll;
      if ((features & needed) !== needed) {
        throw new Deno.errors.NotSupported("io_uring is older than Linux 5.7");
      }
      const sqEntries = p.getUint32(u.params.sqEntries, true);
      const cqEntries = p.getUint32(u.params.cqEntries, true);
      const sq = u.params.sqOff;
      const cq = u.params.cqOff;
      const sqArray = p.getUint32(sq + u.sqOffsets.array, true);
      const cqes = p.getUint32(cq + u.cqOffsets.cqes, true);
      const size = Math.max(sqArray + sqEntries * 4, cqes + cqEntries * u.cqe.size);
      const rings = mapRing(ringFd, size, u.offSqRing);
      cleanup.push(() => unmap(rings));
      const sqes = mapRing(ringFd, sqEntries * u.sqe.size, u.offSqes);
      cleanup.push(() => unmap(sqes));
      const [doorbellRead, doorbellWrite] = pipeFds();
      cleanup.push(() => closeFd(doorbellWrite));
      let socket: Socket;
      try {
        setNonblocking(doorbellRead, true);
        setNonblocking(doorbellWrite, true);
        // `onread` hands each read to the callback without the stream
        // machinery (net.Socket's documented option).
        socket = new Socket(
          {
            fd: doorbellRead,
            readable: true,
            writable: false,
            onread: { buffer: new Uint8Array(64), callback: this.#onDoorbell },
          } as ConstructorParameters<typeof Socket>[0],
        );
      } catch (error) {
        closeFd(doorbellRead);
        throw error;
      }
      cleanup.push(() => socket.destroy());
      const epoll = new EpollBackend({ wakeOnPeerRead: true });
      cleanup.push(() => epoll.close());

      this.#epoll = epoll;
      this.#ringFd = ringFd;
      this.#rings = rings;
      this.#sqes = sqes;
      this.#words = new Uint32Array(rings.bytes);
      this.#view = new DataView(rings.bytes);
      // The params say where in the mapping each ring field lives.
      this.#sqTail = p.getUint32(sq + u.sqOffsets.tail, true) / 4;
      this.#cqHead = p.getUint32(cq + u.cqOffsets.head, true) / 4;
      this.#cqTail = p.getUint32(cq + u.cqOffsets.tail, true) / 4;
      this.#cqMask = this.#words[p.getUint32(cq + u.cqOffsets.ringMask, true) / 4]!;
      this.#cqes = cqes;
      this.#doorbellWrite = doorbellWrite;
      this.#enter = BigInt(u.enterSyscall);
      this.#doorbell = socket;

      // Every wait submits the same two entries, so they are written once:
      // slot 2k polls the epoll fd, slot 2k+1 rings the doorbell. The tail
      // always moves by two, so a poll always lands on an even slot.
      const byteAddress = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#byte));
      const entries = new DataView(sqes.bytes);
      new Uint8Array(sqes.bytes).fill(0);
      for (let slot = 0; slot < sqEntries; slot++) {
        const at = slot * u.sqe.size;
        const poll = slot % 2 === 0;
        entries.setUint8(at + u.sqe.opcode, poll ? u.opPollAdd : u.opWrite);
        // Hard link: the write runs even when the poll fails, so a failure rings too.
        entries.setUint8(at + u.sqe.flags, poll ? u.sqeIoHardlink : 0);
        entries.setInt32(at + u.sqe.fd, poll ? epoll.fd : doorbellWrite, true);
        if (!poll) {
          // Offset -1: the file's own position, which a pipe has none of.
          entries.setBigInt64(at + u.sqe.off, -1n, true);
          entries.setBigUint64(at + u.sqe.addr, BigInt(byteAddress), true);
          entries.setUint32(at + u.sqe.len, 1, true);
        }
        // A write's flags (RWF_*) stay 0. With the read end gone, the write
        // fails with EPIPE; the SIGPIPE that comes with it is ignored by Deno.
        entries.setUint32(at + u.sqe.opFlags, poll ? layout.constants.POLLIN : 0, true);
        entries.setUint32(at + u.sqe.userData, poll ? POLL : DOORBELL, true);
        this.#words[(sqArray >> 2) + slot] = slot;
      }

      socket.on("error", this.#onBroken);
      socket.on("end", this.#onBroken);
      socket.unref();
    } catch (error) {
      for (const undo of cleanup.reverse()) undo();
      throw error;
    }
  }

  arm(fd: number, read: boolean, write: boolean): boolean {
    return this.#epoll.arm(fd, read, write);
  }

  matches(fd: number, read: boolean, write: boolean): boolean {
    return this.#epoll.matches(fd, read, write);
  }

  idle(fd: number, fired: boolean): void {
    this.#epoll.idle(fd, fired);
  }

  unwanted(fd: number): void {
    this.#epoll.unwanted(fd);
  }

  forget(fd: number): void {
    this.#epoll.forget(fd);
  }

  wait(_interests: ReadonlyMap<number, Interest>, timeout: number): Promise<number> {
    if (this.#failure !== 0) return Promise.resolve(-1);
    if (this.#polls === 0 && !this.#submit()) return Promise.resolve(-1);
    this.#bound = timeout;
    this.#waitNumber++;
    this.#startTimer();
    this.#doorbell.ref();
    return new Promise((resolve) => this.#resolve = resolve);
  }

  /** Hands the poll and its doorbell to the kernel. */
  #submit(): boolean {
    const { lib, layout, errno } = libc();
    const words = this.#words;
    const tail = Atomics.load(words, this.#sqTail);
    Atomics.store(words, this.#sqTail, (tail + ENTRIES) >>> 0);
    for (;;) {
      const submitted = Number(
        lib.io_uring_enter!(this.#enter, this.#ringFd, ENTRIES, 0, 0, null, 0n),
      );
      if (submitted === ENTRIES) break;
      if (submitted < 0 && errno[0] === layout.errno.EINTR) continue;
      this.#failure = submitted < 0 ? errno[0]! : layout.errno.EIO!;
      // EBADF: closed behind our back; EOPNOTSUPP: the number is another file's now.
      if (this.#failure === layout.errno.EBADF || this.#failure === layout.errno.EOPNOTSUPP) {
        this.#ringLost = true;
      }
      return false;
    }
    this.#polls++;
    return true;
  }

  /** Takes the completions off the ring: the poll's, and the doorbell's. */
  #reap(): void {
    const words = this.#words;
    const view = this.#view;
    const { ioUring: u, errno: errnoNumbers } = libc().layout;
    let head = Atomics.load(words, this.#cqHead);
    const tail = Atomics.load(words, this.#cqTail);
    while (head !== tail) {
      const at = this.#cqes + (head & this.#cqMask) * u!.cqe.size;
      const res = view.getInt32(at + u!.cqe.res, true);
      const poll = view.getUint32(at + u!.cqe.userData, true) === POLL;
      if (poll && this.#polls > 0) this.#polls--;
      // A doorbell write that would block found the bell already ringing
      // (unread bytes fill its pipe): nothing is lost.
      if (res < 0 && (poll || -res !== errnoNumbers.EAGAIN)) {
        this.#failure = -res;
        if (!poll && -res === errnoNumbers.EBADF) this.#doorbellLost = true;
      }
      head = (head + 1) >>> 0;
    }
    Atomics.store(words, this.#cqHead, head);
  }

  #onDoorbell = (): boolean => {
    if (this.#closed) return true;
    this.#reap();
    const resolve = this.#resolve;
    if (resolve !== null) this.#settle(resolve, this.#failure !== 0 ? -1 : this.#epoll.collect());
    return true;
  };

  #onBroken = (error?: unknown): void => {
    if (this.#closed) return;
    const { layout } = libc();
    const code = (error as { errno?: unknown } | undefined)?.errno;
    this.#failure = typeof code === "number" && code !== 0 ? Math.abs(code) : layout.errno.EBADF!;
    if (this.#resolve !== null) this.#settle(this.#resolve, -1);
  };

  #settle(resolve: (count: number) => void, count: number): void {
    this.#resolve = null;
    this.#doorbell.unref();
    resolve(count);
  }

  /**
   * The bound of a wait, and its recovery should a wake-up ever be lost
   * (the doorbell's pipe closed behind our back, so that the kernel's
   * write fails; or a poll gone without a completion). Once a second, a wait
   * pending since the previous tick takes what the ring and the epoll set
   * hold: a failure, or fds that have been ready without a ring of the
   * bell, settle it (and a poll that did not fire on a ready set is given up
   * for lost, so that the next wait submits a new one); so does the
   * poller's bound. One timer, not referenced; no clock read per wait.
   */
  #startTimer(): void {
    if (this.#timer !== undefined) return;
    const timer = setInterval(() => {
      const resolve = this.#resolve;
      if (resolve === null) return;
      if (this.#watchedWait !== this.#waitNumber) {
        this.#watchedWait = this.#waitNumber;
        this.#watchedTicks = 0;
        return;
      }
      this.#watchedTicks++;
      this.#reap();
      if (this.#failure !== 0) {
        this.#settle(resolve, -1);
        return;
      }
      const count = this.#epoll.collect();
      if (count === 0 && this.#watchedTicks * TICK_MS < this.#bound) return;
      if (count > 0) this.#polls = 0;
      this.#settle(resolve, count);
    }, TICK_MS);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  events(count: number, report: Report): void {
    this.#epoll.events(count, report);
  }

  wake(): void {
    // No call is pending: end the wait here. The poll stays in the kernel
    // and serves the next wait.
    if (this.#resolve !== null) this.#settle(this.#resolve, 0);
  }

  drainWake(): void {}

  probe(): number {
    if (this.#failure !== 0) return this.#failure;
    return this.#epoll.probe();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#resolve !== null) this.#settle(this.#resolve, 0);
    this.#doorbell.destroy();
    // Never throws: a failed close means the fd was closed behind our back.
    if (!this.#doorbellLost) libc().lib.close(this.#doorbellWrite);
    unmap(this.#sqes);
    unmap(this.#rings);
    if (!this.#ringLost) libc().lib.close(this.#ringFd);
    this.#epoll.close();
  }
}
