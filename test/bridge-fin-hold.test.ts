// Connections opened one after another put connection N's CLOSE in the record that carries N+1's
// OPEN. The bridge ends N's local socket (FIN) only after the loop has polled once more
// (finHoldPolls): on the device, N+1's connect completes and its bytes go to the target first, and
// N's teardown runs after them. Real sockets: a responder that connects to a target per channel
// and bridges once connected, as the device does.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bridge } from '../src/proxy/bridge.js';
import { sessionPair } from './helpers/session-pair.js';
import { until } from './helpers/until.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/**
 * As on the device: the responder connects to a target for every channel opened, and accepts and
 * bridges it once connected (with `finHoldPolls`). One channel carries a byte and its echo; then,
 * in one turn, it ends and a second channel opens and writes, so one mux message holds the OPEN,
 * the first's CLOSE and the second's DATA. Returns the order of the responder's socket calls.
 */
async function closeThenOpen(finHoldPolls: number | undefined): Promise<string[]> {
  const pair = await sessionPair('memory');
  cleanups.push(() => pair.cleanup());
  const target = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => target.close(() => r())));
  const port = (target.address() as net.AddressInfo).port;
  const calls: string[] = [];
  let opened = 0;
  pair.responder.on('open', (req) => {
    const name = ++opened === 1 ? 'first' : 'second';
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    cleanups.push(() => void socket.destroy());
    // What the bridge does to the socket, in order.
    const end = socket.end.bind(socket);
    socket.end = ((...args: Parameters<typeof socket.end>) => {
      calls.push(`${name}: end`);
      return end(...args);
    }) as typeof socket.end;
    const write = socket.write.bind(socket);
    socket.write = ((...args: Parameters<typeof socket.write>) => {
      calls.push(`${name}: write`);
      return write(...args);
    }) as typeof socket.write;
    socket.once('connect', () => {
      calls.push(`${name}: connected`);
      bridge(socket, req.accept(), {}, finHoldPolls === undefined ? {} : { finHoldPolls });
    });
  });
  const first = pair.initiator.openChannel({ host: '127.0.0.1', port });
  first.write(Buffer.from('x'));
  await new Promise((r) => first.once('data', r));
  first.end();
  const second = pair.initiator.openChannel({ host: '127.0.0.1', port });
  second.write(Buffer.from('y'));
  await new Promise((r) => second.once('data', r));
  await until(() => calls.includes('first: end'));
  second.end();
  first.resume();
  second.resume();
  return calls.slice(calls.indexOf('first: write') + 1);
}

describe('bridge: a channel end reaches the local socket after the next poll', () => {
  it("lets the next connection's connect complete and its bytes go before the FIN", async () => {
    expect(await closeThenOpen(undefined)).toEqual(['second: connected', 'second: write', 'first: end']);
  });

  it('with finHoldPolls 0, ends at once, before the next connect completes', async () => {
    expect(await closeThenOpen(0)).toEqual(['first: end', 'second: connected', 'second: write']);
  });
});
