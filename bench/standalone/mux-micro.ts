/**
 * Micro-bench of the mux's hot codec paths with tinybench: frame decoding (whole 64 KiB batches
 * of 16 KiB DATA frames, and the same batches split at an odd offset so frames straddle
 * chunks), header/WINDOW/OPEN encoding, and the length-prefix reassembly copy the TCP transport
 * pays when a message spans socket reads. Prints ops/s and MB/s; writes
 * bench/results/mux-micro.json.
 *
 *   npm run bench:mux:micro [-- --quick]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import { FrameDecoder } from '../../src/mux/decoder.js';
import { FrameType, HEADER_SIZE, MAX_FRAME_PAYLOAD_LIMIT } from '../../src/mux/constants.js';
import { decodeOpen, encodeStructured, encodeWindow, writeHeader } from '../../src/mux/frame.js';
import { ByteQueue } from '../../src/util/byte-queue.js';

/** DATA payload per frame in the decode cases. */
export const MICRO_FRAME_PAYLOAD = 16 * 1024;
/** Frames per batch: four 16 KiB frames make one 64 KiB transport message. */
export const MICRO_FRAMES_PER_BATCH = 4;
/** Time per task (ms) in a full run and with --quick. */
export const MICRO_TIME_MS = 1_000;
export const MICRO_QUICK_TIME_MS = 200;

export interface MicroRow {
  name: string;
  opsPerSec: number;
  /** Bytes processed per op (0 when throughput in bytes is meaningless). */
  bytesPerOp: number;
  mbPerSec: number | null;
  meanNs: number;
}

function dataBatch(): Buffer {
  const frame = HEADER_SIZE + MICRO_FRAME_PAYLOAD;
  const batch = Buffer.alloc(frame * MICRO_FRAMES_PER_BATCH, 0x42);
  for (let i = 0; i < MICRO_FRAMES_PER_BATCH; i++) writeHeader(batch, i * frame, FrameType.DATA, 1, MICRO_FRAME_PAYLOAD);
  return batch;
}

export async function runMuxMicro(opts: { quick?: boolean } = {}): Promise<MicroRow[]> {
  const time = opts.quick ? MICRO_QUICK_TIME_MS : MICRO_TIME_MS;
  const bench = new Bench({ time, warmupTime: Math.min(200, time) });
  const batch = dataBatch();
  const decoder = new FrameDecoder(MAX_FRAME_PAYLOAD_LIMIT);
  let sink = 0;
  const onFrame = (_type: number, _channel: number, payload: Buffer): void => {
    sink += payload.length;
  };
  // An odd split point: the second frame's header straddles the two chunks.
  const split = HEADER_SIZE + MICRO_FRAME_PAYLOAD + 5;
  const head = batch.subarray(0, split);
  const tail = batch.subarray(split);
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  const openPayload = encodeStructured(FrameType.OPEN, 1, { host: '127.0.0.1', port: 22, service: 'ssh' }).subarray(HEADER_SIZE);
  // Reassembly: a 64 KiB + 4 message arriving as the tail of one 64 KiB socket read and the head of the next.
  const message = 64 * 1024 + 4;
  const readA = Buffer.alloc(64 * 1024, 1);
  const readB = Buffer.alloc(64 * 1024, 2);
  const bytes: Record<string, number> = {};

  const add = (name: string, bytesPerOp: number, fn: () => void): void => {
    bytes[name] = bytesPerOp;
    bench.add(name, fn);
  };
  add(`decode 64 KiB batch of ${MICRO_FRAMES_PER_BATCH}x16 KiB DATA (one chunk)`, batch.length, () => decoder.push(batch, onFrame));
  add(`decode 64 KiB batch of ${MICRO_FRAMES_PER_BATCH}x16 KiB DATA (split in 2)`, batch.length, () => {
    decoder.push(head, onFrame);
    decoder.push(tail, onFrame);
  });
  add('writeHeader DATA (alloc 10 B + write)', 0, () => {
    const h = Buffer.allocUnsafe(HEADER_SIZE);
    writeHeader(h, 0, FrameType.DATA, 7, MICRO_FRAME_PAYLOAD);
    sink += h[0]!;
  });
  add('writeHeader DATA (reused buffer)', 0, () => {
    writeHeader(header, 0, FrameType.DATA, 7, MICRO_FRAME_PAYLOAD);
    sink += header[0]!;
  });
  add('encodeWindow', 0, () => {
    sink += encodeWindow(3, 131072).length;
  });
  add('encodeStructured OPEN (msgpack)', 0, () => {
    sink += encodeStructured(FrameType.OPEN, 1, { host: '127.0.0.1', port: 22, service: 'ssh' }).length;
  });
  add('decodeOpen (msgpack)', 0, () => {
    sink += decodeOpen(openPayload).port;
  });
  add('ByteQueue: 64 KiB+4 message spanning 2 socket reads (copy)', message, () => {
    const q = new ByteQueue();
    q.push(readA);
    q.push(readB);
    q.skip(4);
    sink += q.read(message - 4).length;
  });

  await bench.run();
  if (sink === -1) console.log('unreachable');
  return bench.tasks.map((task) => {
    const r = task.result;
    if (r.state !== 'completed') throw new Error(`micro task ${task.name} ended ${r.state}`);
    // ops/s from the mean latency (tinybench's throughput.mean averages per-sample rates, which overstates).
    const opsPerSec = r.latency.mean > 0 ? 1000 / r.latency.mean : 0;
    const bytesPerOp = bytes[task.name] ?? 0;
    return {
      name: task.name,
      opsPerSec,
      bytesPerOp,
      mbPerSec: bytesPerOp > 0 ? (opsPerSec * bytesPerOp) / 1e6 : null,
      meanNs: r.latency.mean * 1e6,
    };
  });
}

export function renderMicroTable(rows: MicroRow[]): string {
  const lines = [`${'task'.padEnd(64)}${'ops/s'.padStart(14)}${'MB/s'.padStart(10)}${'ns/op'.padStart(10)}`];
  for (const r of rows) {
    lines.push(
      `${r.name.padEnd(64)}${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(14)}${(r.mbPerSec === null ? '-' : r.mbPerSec.toFixed(0)).padStart(10)}${r.meanNs.toFixed(0).padStart(10)}`,
    );
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  runMuxMicro({ quick }).then(
    async (rows) => {
      console.log(renderMicroTable(rows));
      const out = fileURLToPath(new URL('../../../bench/results/mux-micro.json', import.meta.url));
      await mkdir(path.dirname(out), { recursive: true });
      await writeFile(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, quick, rows }, null, 2)}\n`);
      console.log('\nwrote bench/results/mux-micro.json');
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
