// The device chooses which services may reach it, by their static keys (like sshd's
// authorized_keys): by default none; `devstreams key authorize` adds one to
// $DEVSTREAMS_HOME/authorized_services, read at every session, so authorizing and revoking need no
// restart; accepting any key is an explicit flag that warns. Also the device's session limit.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AuthorizedServices, encodePublicKey, expectKey, generateStaticKeyPair, type StaticKeyPair } from '../src/crypto/index.js';
import { AllowList, DeviceProxy, type DeviceProxyOptions } from '../src/proxy/index.js';
import { ServiceClient } from '../src/sdk/index.js';
import { ensureBuilt, runCli, startCli } from './helpers/cli-process.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { startEchoServer, type Target } from './helpers/targets.js';
import { digestStream, sha256 } from './helpers/session-pair.js';

const stops: Array<() => unknown> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

let hub: TestHub;
let echo: Target;
async function setup(
  options: Omit<DeviceProxyOptions, 'connectionString' | 'allow' | 'staticKeys'>,
): Promise<{ device: DeviceProxy; deviceKeys: StaticKeyPair }> {
  hub = await startTestHub();
  echo = await startEchoServer();
  stops.push(
    () => hub.close(),
    () => echo.close(),
  );
  const deviceKeys = generateStaticKeyPair();
  const device = new DeviceProxy({
    connectionString: hub.addDevice('dev-auth'),
    allow: new AllowList([`127.0.0.1:${echo.port}`]),
    staticKeys: deviceKeys,
    ...options,
  });
  device.on('sessionError', () => {});
  await device.start();
  stops.push(() => device.stop());
  return { device, deviceKeys };
}

/** Opens a session as the service with `keys` and echoes a little through it; rejects with the device's refusal. */
async function reach(deviceKeys: StaticKeyPair, keys: StaticKeyPair): Promise<void> {
  const svc = ServiceClient.fromConnectionString(hub.serviceString);
  stops.push(() => svc.close());
  const { session } = await svc.connect('dev-auth', { staticKeys: keys, verifyPeer: expectKey(deviceKeys.publicKey) });
  stops.push(() => session.close());
  const ch = session.openChannel({ host: '127.0.0.1', port: echo.port });
  const data = randomBytes(10_000);
  const back = digestStream(ch);
  ch.end(data);
  expect((await back).hash).toBe(sha256(data));
}

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'devstreams-auth-'));
  stops.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'authorized_services');
}

describe('device: authorized services', () => {
  it('by default no service gets in: the handshake fails with ERR_HANDSHAKE_PEER_UNKNOWN', async () => {
    const { deviceKeys } = await setup({});
    // The service learns it from the device's alert: its session ends naming the code.
    await expect(reach(deviceKeys, generateStaticKeyPair())).rejects.toThrow(
      /ERR_HANDSHAKE_PEER_UNKNOWN \(the peer does not accept our key/,
    );
  });

  it('the file decides at every session: authorize, then revoke, without a restart', async () => {
    const file = new AuthorizedServices(tempFile());
    const { deviceKeys } = await setup({ authorizedServices: file });
    const alice = generateStaticKeyPair();
    const bob = generateStaticKeyPair();
    await expect(reach(deviceKeys, alice)).rejects.toThrow(/ERR_HANDSHAKE_PEER_UNKNOWN/);
    expect(await file.add(alice.publicKey, 'alice')).toBe(true);
    expect(await file.add(bob.publicKey, 'bob')).toBe(true);
    await reach(deviceKeys, alice);
    await reach(deviceKeys, bob);
    expect(statSync(file.path).mode & 0o777).toBe(0o600);
    expect(await file.revoke('alice')).toBe(1);
    await expect(reach(deviceKeys, alice)).rejects.toThrow(/ERR_HANDSHAKE_PEER_UNKNOWN/);
    await reach(deviceKeys, bob); // revoked on its own
    expect(await file.revoke(encodePublicKey(bob.publicKey))).toBe(1);
    await expect(reach(deviceKeys, bob)).rejects.toThrow(/ERR_HANDSHAKE_PEER_UNKNOWN/);
  });

  it('serviceKeys (--service-key) authorize beside the file; acceptAnyService lets any key in', async () => {
    const alice = generateStaticKeyPair();
    const { deviceKeys } = await setup({ authorizedServices: new AuthorizedServices(tempFile()), serviceKeys: [alice.publicKey] });
    await reach(deviceKeys, alice);
    await expect(reach(deviceKeys, generateStaticKeyPair())).rejects.toThrow(/ERR_HANDSHAKE_PEER_UNKNOWN/);
    await hub.close();
    stops.length = 0;
    const open = await setup({ acceptAnyService: true });
    await reach(open.deviceKeys, generateStaticKeyPair());
  });

  it('maxSessions: a stream request past it is rejected before any byte flows', async () => {
    const alice = generateStaticKeyPair();
    const { device, deviceKeys } = await setup({ serviceKeys: [alice.publicKey], maxSessions: 1 });
    await reach(deviceKeys, alice);
    expect(device.sessionCount).toBe(1);
    await expect(reach(deviceKeys, alice)).rejects.toMatchObject({ code: 'ERR_STREAM_REJECTED' });
  });

  it('streams that never handshake cannot keep an authorized service out: the oldest starting one gives way', async () => {
    const alice = generateStaticKeyPair();
    const { device, deviceKeys } = await setup({ serviceKeys: [alice.publicKey] });
    // A holder of the hub's service credential without an authorized key opens more streams
    // than the device takes sessions (16) and sends nothing, as the reviewer's hog did.
    const hog = ServiceClient.fromConnectionString(hub.serviceString);
    stops.push(() => hog.close());
    const held = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => hog.createStream('dev-auth', `hog${i}`)));
    for (const r of held) if (r.status === 'fulfilled') stops.push(() => r.value.transport.close());
    expect(held.filter((r) => r.status === 'fulfilled').length).toBeGreaterThan(0);
    await reach(deviceKeys, alice);
    expect(device.sessionCount).toBe(1);
  });

  it('file format: comments kept, one line per key, names checked', async () => {
    const file = new AuthorizedServices(tempFile());
    const k = generateStaticKeyPair().publicKey;
    expect(await file.add(k, 'ops-tool')).toBe(true);
    expect(await file.add(k, 'ops-tool')).toBe(false);
    expect(await file.add(k, 'renamed')).toBe(true);
    expect(readFileSync(file.path, 'utf8')).toBe(`x25519 ${encodePublicKey(k)} renamed\n`);
    await expect(file.add(k, 'has space')).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    expect(await file.revoke('nobody')).toBe(0);
  });
});

describe('authorized_services: strict keys, whole revocation, warnings', () => {
  it('a key with trailing garbage is not a key: the line authorizes nothing', async () => {
    const file = new AuthorizedServices(tempFile());
    const k = generateStaticKeyPair().publicKey;
    writeFileSync(file.path, `x25519 ${encodePublicKey(k)}AAAA garbage\nx25519 ${encodePublicKey(k).slice(0, -1)}!! bang\n`);
    expect(await file.list()).toEqual([]);
    expect(await file.find(k)).toBeUndefined();
    // Unpadded and base64url forms of the same 32 bytes are still read.
    writeFileSync(file.path, `x25519 ${encodePublicKey(k).replace(/=+$/, '')} a\nx25519 ${k.toString('base64url')} b\n`);
    expect((await file.list()).map((e) => e.key.equals(k))).toEqual([true, true]);
  });

  it("revoke NAME takes away every line carrying that name's key, whatever they are named", async () => {
    const file = new AuthorizedServices(tempFile());
    const k = generateStaticKeyPair().publicKey;
    const other = generateStaticKeyPair().publicKey;
    writeFileSync(
      file.path,
      `x25519 ${encodePublicKey(k)} alice\nx25519 ${encodePublicKey(other)} bob\nx25519 ${encodePublicKey(k)} alice-laptop\n`,
    );
    expect(await file.revoke('alice')).toBe(2);
    expect(await file.find(k)).toBeUndefined();
    expect((await file.list()).map((e) => e.name)).toEqual(['bob']);
  });

  it('problems(): lines that do not parse, a file others can write', async () => {
    const file = new AuthorizedServices(tempFile());
    expect(await file.problems()).toEqual([]); // missing
    const k = generateStaticKeyPair().publicKey;
    writeFileSync(file.path, `# comment\nx25519 ${encodePublicKey(k)} ok\nssh-ed25519 AAAA nope\n`, { mode: 0o600 });
    expect(await file.problems()).toEqual([expect.stringContaining('line 3 is not')]);
    chmodSync(file.path, 0o666);
    expect((await file.problems()).some((p) => p.includes('is writable by others (mode 666)'))).toBe(true);
  });

  it('device-proxy warns at start about a group-writable file and a line that does not parse', async () => {
    const h = await startTestHub();
    stops.push(() => h.close());
    const home = mkdtempSync(join(tmpdir(), 'devstreams-keycli-'));
    stops.push(() => rmSync(home, { recursive: true, force: true }));
    const path = join(home, 'authorized_services');
    writeFileSync(path, `x25519 ${encodePublicKey(generateStaticKeyPair().publicKey)} ok\nx25519 not-a-key bad\n`);
    chmodSync(path, 0o620);
    const p = startCli(
      ['device-proxy', '--connection-string', h.addDevice('dev-strict'), '--allow', '127.0.0.1:1', '--authorized-services', path],
      { DEVSTREAMS_HOME: home },
    );
    stops.push(() => p.stop());
    await p.waitFor('device proxy ready');
    expect(p.stderr()).toContain('is writable by others (mode 620)');
    expect(p.stderr()).toContain('line 2 is not');
    await p.stop();
  });
});

describe('CLI: devstreams key', () => {
  beforeAll(() => ensureBuilt());

  it('show prints the service key the service proxy uses; authorize, list, revoke manage the device file', () => {
    const home = mkdtempSync(join(tmpdir(), 'devstreams-keycli-'));
    stops.push(() => rmSync(home, { recursive: true, force: true }));
    const env = { DEVSTREAMS_HOME: home };
    const shown = runCli(['key', 'show'], env);
    expect(shown.status).toBe(0);
    const key = shown.stdout.trim();
    expect(runCli(['key', 'show'], env).stdout.trim()).toBe(key); // created once, then loaded
    expect(statSync(join(home, 'service.key')).mode & 0o777).toBe(0o600);
    expect(runCli(['key', 'authorize', key, '--name', 'alice'], env).status).toBe(0);
    expect(runCli(['key', 'list'], env).stdout).toBe(`${key} alice\n`);
    const bad = runCli(['key', 'authorize', 'not-a-key'], env);
    expect([bad.status, bad.stderr]).toEqual([2, expect.stringContaining('ERR_CONFIG')]);
    expect(runCli(['key', 'revoke', 'alice'], env).status).toBe(0);
    expect(runCli(['key', 'list'], env).stdout).toBe('');
    expect(runCli(['key', 'revoke', 'alice'], env).status).toBe(2);
  });

  it('device-proxy warns at start with --accept-any-service, and when nothing is authorized', async () => {
    const h = await startTestHub();
    stops.push(() => h.close());
    const home = mkdtempSync(join(tmpdir(), 'devstreams-keycli-'));
    stops.push(() => rmSync(home, { recursive: true, force: true }));
    const cs = h.addDevice('dev-warn');
    for (const [flags, text] of [
      [['--accept-any-service'], '--accept-any-service: any service key is let in'],
      [[], 'no service is authorized'],
    ] as const) {
      const p = startCli(['device-proxy', '--connection-string', cs, '--allow', '127.0.0.1:1', ...flags], { DEVSTREAMS_HOME: home });
      stops.push(() => p.stop());
      await p.waitFor('device proxy ready');
      expect(p.stderr()).toContain(text);
      await p.stop();
    }
  });
});
