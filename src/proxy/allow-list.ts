/**
 * The device proxy's allow list: which targets a channel may reach. Nothing is reachable unless
 * listed. Entries: `HOST:PORT`, `HOST:*`, `CIDR:PORT`, `CIDR:*` (IPv4 or IPv6 CIDR; IPv6 hosts in
 * brackets, e.g. `[::1]:22`). A host name matches only that exact name (case-insensitive); a
 * CIDR matches IP literals only, so a name cannot sneak past an address rule. An IPv6 CIDR
 * matches IPv6 targets only (Node's BlockList would match IPv4 ones too, mapped into
 * ::ffff:0:0/96: `::/0` let 127.0.0.1 through), unless it is itself written as IPv4-mapped
 * (`::ffff:10.0.0.0/104`); an IPv4 rule also matches its IPv4-mapped form (the same destination).
 *
 * Names are never resolved to check them against address rules: `localhost:22` is refused by
 * `127.0.0.1:22` unless `localhost:22` is listed too. Resolving first would be a second lookup
 * beside the one `connect` does, and an answer that changes between the two (DNS rebinding, a
 * name the service controls) would let a checked name connect to an unchecked address. Matching
 * the text the service sent and letting the device's resolver answer only for listed names keeps
 * the device's owner in charge of which names mean what.
 */
import net from 'node:net';
import { DevstreamsError } from '../errors.js';

interface Rule {
  text: string;
  port: number | '*';
  host?: string;
  block?: net.BlockList;
  /** An IPv6 rule outside ::ffff:0:0/96: it must not match IPv4 (or IPv4-mapped) targets. */
  ipv6Only?: boolean;
}

/** ::ffff:0:0/96, where IPv4 addresses live in IPv6. */
const IPV4_MAPPED = new net.BlockList();
IPV4_MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6');

/** The parsed allow list (see the module comment); `allows` answers for one target. */
export class AllowList {
  private readonly rules: Rule[];

  constructor(entries: readonly string[]) {
    this.rules = entries.map(parseRule);
  }

  get size(): number {
    return this.rules.length;
  }

  /** The entries as given, for logs and errors. */
  describe(): string[] {
    return this.rules.map((r) => r.text);
  }

  allows(host: string, port: number): boolean {
    const name = stripBrackets(host).toLowerCase();
    const ipKind = net.isIP(name);
    const ipv4Target = ipKind === 4 || (ipKind === 6 && IPV4_MAPPED.check(name, 'ipv6'));
    for (const rule of this.rules) {
      if (rule.port !== '*' && rule.port !== port) continue;
      if (rule.host !== undefined && rule.host === name) return true;
      if (rule.ipv6Only && ipv4Target) continue;
      if (rule.block && ipKind !== 0 && rule.block.check(name, ipKind === 6 ? 'ipv6' : 'ipv4')) return true;
    }
    return false;
  }
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function parseRule(text: string): Rule {
  const bad = (why: string): never => {
    throw new DevstreamsError('ERR_CONFIG', `bad --allow entry "${text}": ${why} (expected HOST:PORT, HOST:*, CIDR:PORT or CIDR:*)`);
  };
  const colon = text.lastIndexOf(':');
  if (colon <= 0) bad('missing :PORT');
  const hostPart = stripBrackets(text.slice(0, colon)).toLowerCase();
  const portPart = text.slice(colon + 1);
  let port: number | '*' = '*';
  if (portPart !== '*') {
    if (!/^\d{1,5}$/.test(portPart) || Number(portPart) < 1 || Number(portPart) > 65535) bad('port must be 1..65535 or *');
    port = Number(portPart);
  }
  if (hostPart.length === 0) bad('empty host');
  const slash = hostPart.indexOf('/');
  if (slash >= 0) {
    const address = hostPart.slice(0, slash);
    const prefix = Number(hostPart.slice(slash + 1));
    const kind = net.isIP(address);
    if (kind === 0) bad('CIDR address is not an IP');
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (kind === 6 ? 128 : 32)) bad('CIDR prefix out of range');
    const block = new net.BlockList();
    block.addSubnet(address, prefix, kind === 6 ? 'ipv6' : 'ipv4');
    // Written as IPv4-mapped: the whole rule lies inside ::ffff:0:0/96.
    const mapped = kind === 6 && prefix >= 96 && IPV4_MAPPED.check(address, 'ipv6');
    return { text, port, block, ipv6Only: kind === 6 && !mapped };
  }
  return { text, port, host: hostPart };
}
