/**
 * Opt-in timestamps for the bench's round-trip breakdown (bench/trace.ts, "Where the round trip
 * goes" in RESULTS.md). Off unless DEVSTREAMS_TRACE names a directory, read once at start: then
 * `trace` is undefined and a hook costs one comparison. On, each hook records the monotonic clock
 * (CLOCK_MONOTONIC, the same in every process of the machine) and a point name in memory; the
 * buffer goes to `<dir>/<pid>.trace` every TRACE_FLUSH_MS, first line the process's command.
 *
 * Points (arguments after the name, space-separated), in the order data meets them:
 * - proxy/bridge.ts: `chan <id> <localPort:remotePort>` once per bridged connection, then
 *   `sock.read <ports>` and `sock.write <ports>` on its socket;
 * - mux/scheduler.ts: `mux.take <channel> <bytes>`, a channel's bytes taken into a batch;
 * - resume/resumable-transport.ts: `rs.hold inflight|link|suspended|pacer` when it makes the mux wait,
 *   `rs.go` when it lets it go on;
 * - crypto/secure-transport.ts: `seal`, `sealed`, `open`, `opened`;
 * - transport/ws-client-transport.ts: `ws.send <port> <n> <queued> <size>` (message n of the
 *   connection from local port `port`), `ws.written <port> <n>` (it reached the kernel),
 *   `ws.read <port>` per socket read, `ws.msg <port> <n>` per message received;
 * - hub/splice.ts: `hub.read.<side> <port>`, `hub.frame.<side> <port> <n>` (the n-th data frame
 *   passed on towards `side`), `hub.write.<side> <port> <m>`, `hub.written.<side> <port> <m>`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';

/** Environment variable naming the directory trace files are written to. */
export const TRACE_ENV = 'DEVSTREAMS_TRACE';
/** How often recorded points are appended to the trace file (ms). */
export const TRACE_FLUSH_MS = 200;
/** Points kept in memory between flushes; past this they are dropped (and counted in the file). */
export const TRACE_MAX_BUFFERED = 200_000;

function makeTrace(dir: string): (point: string) => void {
  const file = path.join(dir, `${process.pid}.trace`);
  fs.writeFileSync(file, `# ${process.argv.slice(2, 3).join(' ')}\n`);
  let times: bigint[] = [];
  let points: string[] = [];
  let dropped = 0;
  const flush = (): void => {
    if (points.length === 0 && dropped === 0) return;
    let out = '';
    for (let i = 0; i < points.length; i++) out += `${times[i]} ${points[i]}\n`;
    if (dropped > 0) out += `# dropped ${dropped}\n`;
    times = [];
    points = [];
    dropped = 0;
    fs.appendFileSync(file, out);
  };
  setInterval(flush, TRACE_FLUSH_MS).unref();
  process.on('exit', flush);
  return (point: string): void => {
    if (points.length >= TRACE_MAX_BUFFERED) {
      dropped++;
      return;
    }
    times.push(process.hrtime.bigint());
    points.push(point);
  };
}

const dir = process.env[TRACE_ENV];
/** Records a named point in time, when tracing is on; undefined (no cost) when it is off. */
export const trace: ((point: string) => void) | undefined = dir === undefined || dir === '' ? undefined : makeTrace(dir);

const EMPTY = Buffer.alloc(0);

/**
 * Stamps `point` once everything written to `socket` so far has reached the kernel: at once when
 * its user-space buffer is empty (the write went through), else from the callback of an empty
 * write queued behind it (the stream keeps order). For trace hooks only: `t` is `trace`, defined.
 */
export function traceWritten(t: (point: string) => void, socket: Writable, point: string): void {
  if (socket.writableLength === 0) t(point);
  else socket.write(EMPTY, () => t(point));
}
