/**
 * docs/HUB.md's fleet example must work as written: nodes put their --advertise address in the
 * stream URLs they issue, and a device dials only URLs on its HostName or a GatewayHostName
 * entry, so the example's `registry add` must list every advertised node in --gateway. The
 * strings it would print are checked the way a device checks a stream URL's host.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

function fleetExample(): string {
  const doc = readFileSync(new URL('../docs/HUB.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Fleet'));
  const m = /```\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('no code block in the Fleet section of docs/HUB.md');
  return m[1]!.replace(/\\\n\s*/g, ' ');
}

describe('docs/HUB.md fleet example', () => {
  it("lists every node's --advertise address in the devices' --gateway", () => {
    const example = fleetExample();
    // Advertised addresses of the nodes: the command's, and the ones named in comments ("node2 the same, with --advertise X").
    const advertised = [...example.matchAll(/--advertise ([\w.-]+:\d+)/g)].map((m) => m[1]!);
    expect(advertised.length).toBeGreaterThan(0);
    const add = example.split('\n').find((l) => /devstreams registry add /.test(l));
    expect(add).toBeDefined();
    const gateway = /--gateway (\S+)/.exec(add!)?.[1]?.split(',') ?? [];
    for (const host of advertised) expect(gateway).toContain(host);
  });
});
