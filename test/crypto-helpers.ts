// Test helpers for the record layer: transport pairs (memory, TCP), a tampering relay hop, a
// collector, and a fresh compiled crypto worker for the workers mode when running TS sources.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { Transport } from '../src/transport/transport.js';
import { secureInitiator, secureResponder, type SecureTransport } from '../src/crypto/secure-transport.js';
import type { SecureTransportOptions } from '../src/crypto/options.js';
import { generateStaticKeyPair } from '../src/crypto/keys.js';
import { acceptAnyKey } from '../src/crypto/trust.js';
import { transportPair } from './helpers/session-pair.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The worker pool loads dist/src/crypto/seal-worker-entry.cjs, which imports seal-worker.js (a
 * worker thread cannot run .ts). If one of them is missing or older than its sources, transpile
 * the self-contained sources into dist/ exactly as `npm run build` would, so `npx vitest run`
 * works without a prior build.
 */
export function ensureCryptoWorkerBuilt(): void {
  const sources: [string, string, ts.ModuleKind][] = [
    ['aead.ts', 'aead.js', ts.ModuleKind.ES2022],
    ['seal-worker.ts', 'seal-worker.js', ts.ModuleKind.ES2022],
    // NodeNext keeps its import() an import (CommonJS output would turn it into require).
    ['seal-worker-entry.cts', 'seal-worker-entry.cjs', ts.ModuleKind.NodeNext],
  ];
  for (const [source, output, module] of sources) {
    const src = join(root, 'src', 'crypto', source);
    const out = join(root, 'dist', 'src', 'crypto', output);
    if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) continue;
    const js = ts.transpileModule(readFileSync(src, 'utf8'), {
      compilerOptions: { module, target: ts.ScriptTarget.ES2022 },
      fileName: src,
    }).outputText;
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, js);
  }
}

export type PairKind = 'memory' | 'tcp';

/** Two connected raw transports and a cleanup. */
export function rawPair(kind: PairKind): Promise<{ a: Transport; b: Transport; cleanup: () => Promise<void> }> {
  return transportPair(kind);
}

/** Decides what the hop forwards for the i-th message in one direction: [] drops, [m, m] replays. */
export type Tamper = (direction: 'ab' | 'ba', index: number, message: Buffer) => Buffer[];

/**
 * a <-> [hop] <-> b: two raw pairs whose middle ends are joined by a relay that logs every byte
 * and may tamper. Close on one leg closes the other.
 */
export async function relayPair(kind: PairKind, tamper: Tamper = (_d, _i, m) => [m]) {
  const left = await rawPair(kind);
  const right = await rawPair(kind);
  const log: Buffer[] = [];
  const counts = { ab: 0, ba: 0 };
  const hop = (from: Transport, to: Transport, dir: 'ab' | 'ba'): void => {
    from.attach({
      onMessage: (m) => {
        log.push(Buffer.from(m));
        for (const out of tamper(dir, counts[dir]++, m)) to.send([out]);
      },
      onDrain: () => {},
      onClose: (err) => to.close(err),
    });
  };
  hop(left.b, right.a, 'ab');
  hop(right.a, left.b, 'ba');
  return {
    a: left.a,
    b: right.b,
    log,
    cleanup: async () => {
      await left.cleanup();
      await right.cleanup();
    },
  };
}

type Partial = Omit<SecureTransportOptions, 'staticKeys' | 'verifyPeer'> & Partial2;
interface Partial2 {
  staticKeys?: SecureTransportOptions['staticKeys'];
  verifyPeer?: SecureTransportOptions['verifyPeer'];
}

/** Handshakes a (initiator) and b (responder). */
export async function securePair(
  a: Transport,
  b: Transport,
  ao: Partial = {},
  bo: Partial = {},
): Promise<[SecureTransport, SecureTransport]> {
  return Promise.all([
    secureInitiator(a, { staticKeys: generateStaticKeyPair(), verifyPeer: acceptAnyKey, prologue: 'test-stream', ...ao }),
    secureResponder(b, { staticKeys: generateStaticKeyPair(), verifyPeer: acceptAnyKey, prologue: 'test-stream', ...bo }),
  ]);
}

/** Attaches to a transport: collects what it delivers, exposes its close and a drain waiter. */
export interface Endpoint {
  messages: Buffer[];
  closed: Promise<Error | undefined>;
  isClosed: boolean;
  waitDrain(): Promise<void>;
}

export function collect(t: Transport): Endpoint {
  let drainWaiters: Array<() => void> = [];
  let resolveClosed!: (e: Error | undefined) => void;
  const ep: Endpoint = {
    messages: [],
    closed: new Promise((r) => (resolveClosed = r)),
    isClosed: false,
    waitDrain: () => new Promise<void>((r) => drainWaiters.push(r)),
  };
  t.attach({
    onMessage: (m) => ep.messages.push(Buffer.from(m)),
    onDrain: () => {
      const w = drainWaiters;
      drainWaiters = [];
      for (const f of w) f();
    },
    onClose: (err) => {
      ep.isClosed = true;
      const w = drainWaiters;
      drainWaiters = [];
      for (const f of w) f();
      resolveClosed(err);
    },
  });
  return ep;
}

/** Resolves when `pred` holds, polling every 5 ms; rejects after `ms`. */
export async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Sends all `messages` in order, waiting for drain whenever `send` returns false. */
export async function sendAll(t: Transport, ep: Endpoint, messages: readonly Buffer[]): Promise<void> {
  for (const m of messages) {
    if (ep.isClosed) return;
    if (!t.send([m])) await ep.waitDrain();
  }
}

/** Same count and bytes, message by message (fast: deep-equal on large Buffers is slow). */
export function sameMessages(got: readonly Buffer[], want: readonly Buffer[]): boolean {
  return got.length === want.length && got.every((m, i) => m.equals(want[i]!));
}
