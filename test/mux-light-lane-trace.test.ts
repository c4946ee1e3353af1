// The bench's round-trip breakdown (bench/trace.ts) finds a keystroke's way out of the mux by its
// channel's `mux.take` point: a channel taken through the light lane must stamp it too.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it, vi } from 'vitest';
import { until } from './helpers/until.js';
import { helloFrame, openFrame } from './helpers/mux-frames.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-trace-'));
afterAll(() => {
  vi.unstubAllEnvs();
  fs.rmSync(dir, { recursive: true, force: true });
});

it("a keystroke sent through the light lane stamps its channel's mux.take", async () => {
  vi.stubEnv('DEVSTREAMS_TRACE', dir);
  vi.resetModules();
  const { Session } = await import('../src/mux/index.js');
  const { StuckTransport } = await import('./helpers/stuck-transport.js');
  const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

  const link = new StuckTransport(64 * 1024);
  const channels: import('../src/mux/index.js').Channel[] = [];
  const session = new Session(link, { role: 'responder', keepaliveIntervalMs: 0, onOpen: (r) => channels.push(r.accept()) });
  link.inject(helloFrame());
  link.inject(openFrame(1, 1));
  link.inject(openFrame(3, 2));
  const [bulk, key] = channels;
  bulk!.write(Buffer.alloc(200 * 1024));
  await nextTurn();
  const before = link.unread;
  key!.write(Buffer.from('keystroke'));
  await nextTurn();
  expect(link.unread - before).toBeGreaterThan(0); // it went, through the lane
  const file = path.join(dir, `${process.pid}.trace`);
  // The trace buffer reaches its file every TRACE_FLUSH_MS.
  await until(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('mux.take 1 '), 5000, 'the bulk take in the trace');
  expect(fs.readFileSync(file, 'utf8')).toMatch(/ mux\.take 3 9\n/);
  session.close();
});
