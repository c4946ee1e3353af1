/**
 * Trusting a hub's TLS certificate by its SHA-256 fingerprint (the connection string's
 * HubCertSha256), like chisel's --fingerprint, so a self-signed hub needs no CA file copied to
 * each client.
 *
 * Node checks a certificate chain before anything else and has no hook that sees a
 * self-signed certificate before it refuses it; turning verification off and checking the
 * fingerprint afterwards would let the first request (and its bearer token) leave before the
 * check. So the pin is turned into a trust anchor instead: one probe connection, which sends
 * nothing, reads the hub's certificate and compares its fingerprint; the certificate, if it
 * matches, becomes the only CA of every later connection, verified by Node as usual (chain and
 * host name). A hub that later shows another certificate is refused by that verification.
 */
import { X509Certificate, createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { DevstreamsError } from '../errors.js';

/** How long the probe for the hub's certificate may take, ms. */
export const PIN_PROBE_TIMEOUT_MS = 10_000;

/** SHA-256 of a certificate's DER bytes, 64 lower-case hex digits. */
export function certificateSha256(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/** SHA-256 fingerprint of a PEM certificate, 64 lower-case hex digits. */
export function pemCertificateSha256(pem: string | Buffer): string {
  return certificateSha256(new X509Certificate(pem).raw);
}

/**
 * True when `cert` is self-signed (issued by itself, under its own key). Only such a certificate
 * can be pinned: the pin makes it the only CA, and Node (20) accepts a CA-issued leaf as the only
 * CA in no case; its verification fails with a misleading SELF_SIGNED_CERT_IN_CHAIN forever.
 */
export function isSelfSigned(cert: X509Certificate): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

/** The ERR_CONFIG for pinning a CA-issued certificate; `what` names it. */
export function notSelfSignedError(what: string, cert: X509Certificate): DevstreamsError {
  return new DevstreamsError(
    'ERR_CONFIG',
    `${what} is issued by ${cert.issuer.replace(/\n/g, ', ')}, not self-signed: pinning (HubCertSha256) is for a hub with a self-signed certificate; a hub with a CA-issued one needs no pin (clients verify it with the system CAs, or --ca with the CA's certificate)`,
  );
}

/**
 * Connects to `hostPort` (`host:port`, IPv6 as `[::1]:port`), reads its certificate without
 * sending anything, and resolves with it as PEM when its SHA-256 is `sha256Hex`; rejects with
 * ERR_HUB_CERT_MISMATCH naming both fingerprints otherwise, and with ERR_CONFIG when the pinned
 * certificate is not self-signed (it could never verify as the only CA; retrying would not help).
 */
export function fetchPinnedCertificate(hostPort: string, sha256Hex: string, timeoutMs = PIN_PROBE_TIMEOUT_MS): Promise<Buffer> {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(hostPort);
  const host = m ? m[1]! : hostPort;
  const port = m ? Number(m[2]) : 443;
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ...(net.isIP(host) === 0 ? { servername: host } : {}) });
    const timer = setTimeout(
      () => socket.destroy(new DevstreamsError('ERR_HUB_UNAVAILABLE', `no TLS handshake with ${hostPort} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const der = socket.getPeerCertificate().raw;
      socket.destroy();
      const seen = der ? certificateSha256(der) : '(none)';
      if (seen !== sha256Hex) {
        reject(
          new DevstreamsError(
            'ERR_HUB_CERT_MISMATCH',
            `the hub at ${hostPort} shows a certificate with SHA-256 ${seen}, not the ${sha256Hex} the connection string pins (HubCertSha256): a different hub, a renewed certificate, or someone in between`,
          ),
        );
        return;
      }
      const cert = new X509Certificate(der);
      if (!isSelfSigned(cert)) {
        reject(
          notSelfSignedError(`the certificate the connection string pins (HubCertSha256=${sha256Hex}) for the hub at ${hostPort}`, cert),
        );
        return;
      }
      resolve(Buffer.from(cert.toString()));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(
        err instanceof DevstreamsError
          ? err
          : new DevstreamsError('ERR_HUB_UNAVAILABLE', `cannot reach hub at ${hostPort} to check its certificate: ${err.message}`, {
              cause: err,
            }),
      );
    });
  });
}
