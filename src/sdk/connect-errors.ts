/**
 * Why a connection to the hub failed, in words an operator can act on: "cannot reach hub
 * 127.0.0.1:9999 (ECONNREFUSED: nothing listens there)", "hub certificate is self-signed: pass
 * its certificate as a CA (--ca FILE)". Socket and TLS errors carry a `code`; this maps the
 * common ones and keeps the library's words for the rest.
 */

/** TLS verification codes that mean "the hub's certificate chain is not trusted here". */
const UNTRUSTED_CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

/** One line saying why connecting to the hub at `hostPort` failed. */
export function describeHubConnectError(hostPort: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  const code = e?.code;
  const message = e instanceof Error ? e.message : String(err);
  if (code === 'ECONNREFUSED') return `cannot reach hub ${hostPort} (ECONNREFUSED: nothing listens there)`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return `cannot resolve hub host ${hostPort} (${code})`;
  if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ECONNRESET')
    return `cannot reach hub ${hostPort} (${code})`;
  if (code !== undefined && UNTRUSTED_CERT_CODES.has(code)) {
    const what =
      code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN' ? 'is self-signed' : 'is not signed by a trusted CA';
    // The SDK does not know whether the CA it was given came from a pin: say both, since with a
    // pin this means the hub's certificate is not the one pinned (or not a self-signed one).
    return `hub ${hostPort} certificate ${what} (${code}): pass the hub's certificate as a CA (--ca FILE); if the connection string pins it (HubCertSha256), the hub shows a certificate other than the pinned one, or the pinned one is not self-signed (only a self-signed certificate can be pinned)`;
  }
  if (code === 'CERT_HAS_EXPIRED') return `hub ${hostPort} certificate has expired (${code})`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `hub ${hostPort} certificate does not name this host (${code}): ${message}`;
  if (code === 'EPROTO' || /wrong version number|packet length too long/i.test(message)) {
    return `TLS to hub ${hostPort} failed (${code ?? 'EPROTO'}): does the hub serve plain ws? Then the connection string needs Transport=ws`;
  }
  if (/Unexpected server response|socket hang up/i.test(message)) return `hub ${hostPort} did not answer as a devstreams hub (${message})`;
  return `cannot connect to hub ${hostPort}: ${message}`;
}
