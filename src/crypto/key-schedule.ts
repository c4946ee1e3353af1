/**
 * Per-direction traffic keys. The handshake's Split() gives each direction a 32-byte traffic
 * secret; every key epoch derives its AEAD key and IV from the epoch's secret with HKDF-SHA256,
 * and the next epoch's secret from the same secret, so rekeying needs no round trip and old keys
 * cannot be recovered from new ones.
 */
import { hkdfSync } from 'node:crypto';
import { SUITE_KEY_SIZE, type RecordSuite } from './aead.js';

const EMPTY = Buffer.alloc(0);

function expand(secret: Buffer, label: string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, EMPTY, `devstreams record ${label}`, length));
}

/** Key material of one direction in one epoch. */
export interface EpochKeys {
  epoch: number;
  key: Buffer;
  iv: Buffer;
}

/**
 * The HKDF label of each suite's key. The suites from before negotiation keep theirs; AES-128-GCM
 * names itself, so its 16-byte key is not the first half of the AES-256 key the same secret gives.
 */
const KEY_LABEL: Record<RecordSuite, string> = {
  'aes-128-gcm': 'key aes-128-gcm',
  'aes-256-gcm': 'key',
  'chacha20-poly1305': 'key',
};

/** Walks one direction's epochs forward. Holds only the current secret. */
export class KeySchedule {
  private secret: Buffer;
  private current: EpochKeys;

  constructor(
    trafficSecret: Buffer,
    private readonly suite: RecordSuite,
  ) {
    this.secret = Buffer.from(trafficSecret);
    this.current = this.derive(0);
  }

  get keys(): EpochKeys {
    return this.current;
  }

  /** Moves to the next epoch and forgets the previous secret. */
  next(): EpochKeys {
    const nextSecret = expand(this.secret, 'next', 32);
    this.secret.fill(0);
    this.secret = nextSecret;
    this.current = this.derive(this.current.epoch + 1);
    return this.current;
  }

  private derive(epoch: number): EpochKeys {
    return { epoch, key: expand(this.secret, KEY_LABEL[this.suite], SUITE_KEY_SIZE[this.suite]), iv: expand(this.secret, 'iv', 12) };
  }
}
