/**
 * Pass open file descriptors between processes over Unix domain sockets
 * (`sendmsg`/`recvmsg` with `SCM_RIGHTS`), from Deno, through `Deno.dlopen`
 * of the system libc: no native addon, no C shim.
 *
 * - {@linkcode UnixSocket}: stream, seqpacket and datagram Unix sockets;
 *   `sendSync(data, { fds })` and `recvSync()`.
 * - {@linkcode UnixListener}: listening sockets on paths or Linux abstract
 *   names.
 * - {@linkcode OwnedFd} and {@linkcode BorrowedFd}: descriptors with
 *   ownership, close-on-exec by default, and hand-off to `node:net` and
 *   `Deno.FsFile`.
 * - Async forms of every blocking call (`send`, `recv`, `accept`,
 *   `UnixSocket.connect`, `read`, `write`), all served by one shared poller
 *   ({@linkcode waitReadable}, {@linkcode waitWritable},
 *   {@linkcode pollerStats}), and web streams on owned fds.
 * - {@linkcode MemFd} and {@linkcode EventFd}: shared memory and
 *   notification fds to pass along; {@linkcode listenTcp} /
 *   {@linkcode TcpListener}: TCP listeners whose connections are fds, and
 *   which can themselves be handed to another process.
 * - Process hand-off: {@linkcode spawn} starts children with fds,
 *   {@linkcode listenFds} takes sockets from systemd socket activation,
 *   {@linkcode notify} speaks `sd_notify` with the fd store, and
 *   {@linkcode Upgrader} restarts a server without refusing a connection.
 * - {@linkcode Channel}: framed messages with fds in skalibs' `unixmessage`
 *   format, structured values with fds in place, more than 253 fds per
 *   message.
 * - {@linkcode FdHolder} / {@linkcode FdHolderServer}: keep fds across
 *   restarts in s6-fdholder-daemon, or in a holder of our own that s6's
 *   clients can use.
 * - {@linkcode sendFd} / {@linkcode recvFd}: Perl IO::FDPass's wire format.
 * - {@linkcode ErrnoError} and {@linkcode ControlTruncatedError}: typed
 *   errors.
 *
 * Needs `--allow-ffi` (unscoped: a path-scoped grant blocks the pointer
 * APIs the library uses).
 *
 * @example Pass an open file to the other end of a socketpair
 * ```ts
 * import { openFd, UnixSocket } from "@fdpass/fdpass";
 * import { assertEquals } from "@std/assert";
 *
 * const [a, b] = UnixSocket.pair();
 * using file = openFd("/dev/null");
 * a.sendSync("here is a file", { fds: [file] });
 *
 * const { data, fds } = b.recvSync()!;
 * assertEquals(new TextDecoder().decode(data), "here is a file");
 * using received = fds[0]!;
 * assertEquals(received.kind, "character");
 * a.close();
 * b.close();
 * ```
 *
 * @module
 */

// Descriptors: ownership, flags, read/write, hand-off to Deno and node:net.
export {
  BorrowedFd,
  borrowFd,
  Descriptor,
  type FdKind,
  type FdStat,
  openFd,
  type OpenFdOptions,
  OwnedFd,
  pipe,
} from "./src/owned_fd.ts";

// Unix sockets and fd passing.
export {
  type AsyncReceiveOptions,
  type ReceivedDatagram,
  type ReceivedMessage,
  type SendOptions,
  type UnixConnectOptions,
  type UnixDatagramOptions,
  UnixListener,
  type UnixListenOptions,
  UnixSocket,
} from "./src/unix_socket.ts";
export type { FdLike } from "./src/core/checks.ts";
export type { ReceiveOptions } from "./src/core/transfer.ts";
export type { Received, ReceivedInto } from "./src/core/message.ts";
export type { SocketType } from "./src/core/socket_calls.ts";
export type { SocketAddress, UnixAddress } from "./src/core/address.ts";
export type { MessageCredentials, PeerCredentials } from "./src/core/credentials.ts";

// Async: the shared poller and readiness waits on any fd.
export {
  type BackendName,
  configurePoller,
  type PollerOptions,
  type PollerStats,
  pollerStats,
  type WaitOptions,
  waitReadable,
  waitWritable,
} from "./src/async/wait.ts";

// IO::FDPass wire convention: one zero byte carries one fd.
export { recvFd, sendFd } from "./src/extras/io_fdpass.ts";

// Errors.
export { ControlTruncatedError, ErrnoError } from "./src/core/errors.ts";

// Shared memory and events.
export { MemFd, type MemFdOptions, type MemFdSeal } from "./src/extras/memfd.ts";
export { type MapOptions, mapShared, SharedMapping } from "./src/extras/shared_mapping.ts";
export { EventFd, type EventFdOptions, type EventFdWaitOptions } from "./src/extras/eventfd.ts";

// TCP listeners: accept connections as fds, or hand a live listener to another process.
export {
  listenTcp,
  TcpListener,
  type TcpListenerFd,
  type TcpListenOptions,
} from "./src/extras/tcp_listener.ts";

// Process hand-off (each line below is replaced by the export of the module it names).
export {
  spawn,
  SpawnedProcess,
  type SpawnOptions,
  type SpawnOutput,
  type SpawnStatus,
  type SpawnStdio,
} from "./src/extras/spawn.ts";
export {
  describeSocket,
  isSocket,
  type ListenFd,
  listenFds,
  type ListenFdsOptions,
  type SocketCriteria,
  type SocketDescription,
  type SocketFamily,
  type SocketKind,
} from "./src/extras/activation.ts";
export {
  notify,
  notifyBarrier,
  type NotifyBarrierOptions,
  type NotifyOptions,
  type NotifyState,
} from "./src/extras/notify.ts";
export {
  startWatchdog,
  type StartWatchdogOptions,
  type Watchdog,
  watchdogInterval,
  type WatchdogIntervalOptions,
} from "./src/extras/watchdog.ts";
export {
  type ListenerSource,
  UPGRADE_FD_NAME,
  Upgrader,
  type UpgradeResult,
  type UpgraderOptions,
} from "./src/extras/upgrade.ts";

// A framed message channel that carries fds (skalibs unixmessage frames).
export {
  Channel,
  type ChannelMessage,
  type ChannelOptions,
  type ChannelSendOptions,
  type ChannelSignalOptions,
  FdHeadroomError,
} from "./src/extras/channel.ts";

// An fd holder speaking s6-fdholder-daemon's protocol: client and server.
export {
  FdHolder,
  type FdHolderConnectOptions,
  type FdHolderDumpEntry,
  type FdHolderEntry,
  type FdHolderRetrieveOptions,
  type FdHolderStoreOptions,
} from "./src/extras/fdholder.ts";
export {
  type FdHolderAccess,
  FdHolderServer,
  type FdHolderServerOptions,
} from "./src/extras/fdholder_server.ts";
