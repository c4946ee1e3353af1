// The hub re-reads its registry file when another process replaced it (refresh), asynchronously,
// while the registry API changes the same registry synchronously (remove, rotate). A refresh whose
// read started before such a change and finished after it must not put back what the change took
// away: a removed device would exist again, and a rotated key would work again, until the next
// refresh noticed. Real files; the read is held across the change by wrapping fs.promises.readFile.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeviceRegistry } from '../src/hub/index.js';

const dirs: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function freshRegistry(): { dir: string; registry: DeviceRegistry } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-race-'));
  dirs.push(dir);
  return { dir, registry: DeviceRegistry.open(dir) };
}

/** Makes the next readFile of the registry resolve with what it read only after `during` ran (and settled). */
function holdNextRead(during: () => void | Promise<void>): void {
  const real = fs.promises.readFile.bind(fs.promises);
  vi.spyOn(fs.promises, 'readFile').mockImplementationOnce((async (...args: Parameters<typeof real>) => {
    const text = await real(...args);
    await during();
    return text;
  }) as typeof fs.promises.readFile);
}

describe('registry refresh against a change made while it reads', () => {
  it('does not bring back a device removed while the refresh read the file', async () => {
    const { dir, registry } = freshRegistry();
    registry.addDevice('gone');
    // Another process changes the file (the CLI adds a device): the next refresh reads it.
    const other = DeviceRegistry.open(dir);
    other.addDevice('added-elsewhere');
    holdNextRead(() => registry.removeDevice('gone'));
    await registry.refresh(true);
    expect(registry.getDevice('gone')).toBeUndefined();
    // What the other process added is there (the removal re-read the file first).
    expect(registry.getDevice('added-elsewhere')).toBeDefined();
    // And a later refresh still applies changes made elsewhere.
    other.refreshSync();
    other.addDevice('later');
    await registry.refresh(true);
    expect(registry.getDevice('later')).toBeDefined();
    expect(registry.getDevice('gone')).toBeUndefined();
  });

  it('does not bring back a key rotated while the refresh read the file', async () => {
    const { dir, registry } = freshRegistry();
    const before = registry.addDevice('dev').key;
    DeviceRegistry.open(dir).addDevice('other');
    let rotated = '';
    holdNextRead(() => {
      rotated = registry.rotateDeviceKey('dev').key;
    });
    await registry.refresh(true);
    expect(rotated).not.toBe(before);
    expect(registry.getDevice('dev')?.key).toBe(rotated);
  });

  it('does not let an older refresh that finishes last undo a newer one', async () => {
    const { dir, registry } = freshRegistry();
    registry.addDevice('dev');
    const other = DeviceRegistry.open(dir);
    other.addDevice('first');
    // The first refresh reads the file with 'dev' in it; before it finishes, another process
    // removes 'dev' and a second refresh is asked for. Given up to 200 ms, the second would
    // finish first if they ran side by side; run one after the other, it reads after the first.
    let second: Promise<void> | undefined;
    holdNextRead(async () => {
      other.refreshSync();
      other.removeDevice('dev');
      second = registry.refresh(true);
      await Promise.race([second, new Promise((r) => setTimeout(r, 200))]);
    });
    await registry.refresh(true);
    await second;
    expect(registry.getDevice('dev')).toBeUndefined();
    expect(registry.getDevice('first')).toBeDefined();
  });

  it('keeps refreshing after a refresh failed (its change listener threw)', async () => {
    const { dir, registry } = freshRegistry();
    const other = DeviceRegistry.open(dir);
    other.addDevice('first');
    registry.onExternalChange = () => {
      throw new Error('listener failed');
    };
    await expect(registry.refresh(true)).rejects.toThrow('listener failed');
    expect(registry.getDevice('first')).toBeDefined();
    registry.onExternalChange = undefined;
    other.refreshSync();
    other.addDevice('second');
    await registry.refresh(true);
    expect(registry.getDevice('second')).toBeDefined();
  });
});
