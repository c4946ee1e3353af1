/**
 * A self-signed certificate for development hubs (`--tls-self-signed`). Node's crypto cannot
 * build X.509 certificates, so this runs the `openssl` command (present on every Debian-like
 * system); the certificate names localhost, 127.0.0.1, ::1 and the given extra host.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isIP } from 'node:net';
import { DevstreamsError } from '../errors.js';

/** Lifetime of a generated certificate, days. */
export const SELF_SIGNED_DAYS = 365;

/** A generated certificate and key, in memory and where they were written (reused on the next start). */
export interface SelfSignedCertificate {
  cert: Buffer;
  key: Buffer;
  certPath: string;
  keyPath: string;
}

/** Creates (or reuses) `dir/hub-cert.pem` and `dir/hub-key.pem` for `host`. */
export function createSelfSignedCertificate(dir: string, host = 'localhost'): SelfSignedCertificate {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certPath = join(dir, 'hub-cert.pem');
  const keyPath = join(dir, 'hub-key.pem');
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    const bare = host.replace(/^\[|\]$/g, '');
    const sans = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'];
    if (bare !== 'localhost') sans.push(isIP(bare) ? `IP:${bare}` : `DNS:${bare}`);
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-keyout',
          keyPath,
          '-out',
          certPath,
          '-days',
          String(SELF_SIGNED_DAYS),
          '-subj',
          `/CN=${bare}`,
          '-addext',
          `subjectAltName=${sans.join(',')}`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      chmodSync(keyPath, 0o600);
    } catch (err) {
      throw new DevstreamsError('ERR_CONFIG', `cannot create a self-signed certificate with openssl: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return { cert: readFileSync(certPath), key: readFileSync(keyPath), certPath, keyPath };
}
