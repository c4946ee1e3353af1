/**
 * The record layer: a `Transport` that wraps another `Transport`. It first runs the Noise XX
 * handshake over the inner transport, then turns every `send(parts)` into one sealed record and
 * every received record back into one message, so the mux runs over it unchanged. Sealing and
 * opening run inline or on the worker pool; either way records leave and arrive in order, and a
 * record that fails authentication or arrives out of sequence ends the session with a coded
 * error before any of its bytes reach the layer above.
 */
import { DevstreamsError } from '../errors.js';
import { TransportBase } from '../transport/base.js';
import type { Transport } from '../transport/transport.js';
import type { CipherGCM, DecipherGCM } from 'node:crypto';
import { openBody, openParts, recordCipher, recordDecipher, recordNonce, sealParts, type CipherName, type RecordSuite } from './aead.js';
import { chooseCryptoMode } from './calibrate.js';
import { MAX_EARLY_BYTES, MAX_SEQUENCE, RECORD_HEADER_SIZE, RECORD_OVERHEAD, TAG_SIZE } from './constants.js';
import {
  ALERT_TYPE,
  alertError,
  encodeAlert,
  initiatorHandshake,
  responderHandshake,
  type HandshakeIO,
  type HandshakeResult,
} from './handshake.js';
import { KeySchedule } from './key-schedule.js';
import { OrderedOffload, type OffloadOutput } from './offload.js';
import { resolveOptions, type ResolvedOptions, type SecureTransportOptions } from './options.js';
import { gatherBytes, partsLength, sliceParts } from './parts.js';
import { decodeRecordHeader, encodeRecordHeader } from './record-format.js';
import { getCryptoPool } from './worker-pool.js';
import { trace } from '../util/trace.js';

/** What the handshake established, for logs and for pinning. */
export interface SecureSessionInfo {
  /** e.g. Noise_XX_25519_AESGCM_SHA256 */
  protocolName: string;
  cipher: CipherName;
  /** The AEAD that seals records (negotiated; the handshake's cipher with a peer from before suites). */
  suite: RecordSuite;
  /** The peer's proven static public key (32 bytes). */
  remoteStatic: Buffer;
  /** Noise handshake hash, usable as a channel binding. */
  handshakeHash: Buffer;
  /** Where this session seals and opens: after `auto` resolved. */
  crypto: 'inline' | 'workers';
}

type Phase = 'handshake' | 'open' | 'closed';

/** A sealed, authenticated `Transport`. Obtain one with `secureInitiator` / `secureResponder`. */
export class SecureTransport extends TransportBase implements Transport {
  readonly maxMessageSize: number;
  private phase: Phase = 'handshake';
  private info: SecureSessionInfo | undefined;
  // handshake plumbing
  private inbox: Buffer[] = [];
  private inboxBytes = 0;
  private waiter: { resolve: (m: Buffer) => void; reject: (e: Error) => void } | undefined;
  private handshakeError: Error | undefined;
  // record state
  private suite: RecordSuite = 'aes-256-gcm';
  private sendKeys!: KeySchedule;
  private recvKeys!: KeySchedule;
  private sendSeq = 0;
  private recvSeq = 0;
  private epochRecords = 0;
  private epochBytes = 0;
  private sealer: OrderedOffload | undefined;
  private opener: OrderedOffload | undefined;
  private closeWhenFlushed: boolean = false;
  private innerClosedWith: { error?: Error } | undefined;
  private pendingFailure: DevstreamsError | undefined;
  /** Inline sealing: one nonce buffer reused for every record (createCipheriv copies it). */
  private readonly nonceScratch = Buffer.allocUnsafe(12);
  /**
   * Inline: the cipher of the next record to send and the decipher of the next one to open,
   * each with the key epoch and sequence number it was made for (see prepareNext).
   */
  private nextSeal: { epoch: number; seq: number; header: Buffer; cipher: CipherGCM } | undefined;
  private nextOpen: { epoch: number; seq: number; decipher: DecipherGCM } | undefined;
  /** A record was sealed / opened since prepareNext last ran, and it is scheduled. */
  private sealedSincePrepare = false;
  private openedSincePrepare = false;
  private prepareScheduled = false;
  private madeAhead = 0;
  private readonly prepareLater = (): void => this.prepareNext();

  private constructor(
    private readonly inner: Transport,
    private readonly o: ResolvedOptions,
    mode: 'inline' | 'workers',
  ) {
    super();
    this.maxMessageSize = Math.min(o.maxRecordPlaintext, inner.maxMessageSize - RECORD_OVERHEAD);
    inner.attach({
      // Inline, a record is opened before its delivery returns (the plaintext is the cipher's own
      // new buffer), so the inner transport may reuse its read buffer; handshake messages and
      // early records, which wait, are copied. Workers keep records until their batch goes.
      borrowsReads: mode === 'inline',
      onMessage: (m) => this.onInnerMessage(m),
      // A record split across socket reads: opened piece by piece, never joined (saves a copy).
      onMessageParts: (parts) => this.onInnerMessageParts(parts),
      onDrain: () => this.maybeDrain(),
      onClose: (err) => this.onInnerClose(err),
    });
  }

  /** Runs the handshake as `role` over `inner`; resolves once records can flow. */
  static async establish(inner: Transport, role: 'initiator' | 'responder', options: SecureTransportOptions): Promise<SecureTransport> {
    const o = resolveOptions(options);
    // Decide `auto` before attaching, so no record piles up while we measure.
    const mode = o.crypto === 'auto' ? await chooseCryptoMode(o.suites[0]!, o.workerThreads) : o.crypto;
    const t = new SecureTransport(inner, o, mode);
    await t.handshake(role, mode);
    return t;
  }

  /** The handshake outcome. */
  get session(): SecureSessionInfo {
    if (!this.info) throw new DevstreamsError('ERR_INTERNAL', 'handshake not complete');
    return this.info;
  }

  /** Counters for metrics and tests; `madeAhead`: records sealed or opened with a cipher made ahead (see schedulePrepare). */
  get stats(): { recordsSent: number; recordsReceived: number; sendEpoch: number; recvEpoch: number; madeAhead: number } {
    return {
      recordsSent: this.sendSeq,
      recordsReceived: this.recvSeq,
      madeAhead: this.madeAhead,
      sendEpoch: this.sendKeys?.keys.epoch ?? 0,
      recvEpoch: this.recvKeys?.keys.epoch ?? 0,
    };
  }

  get bufferedAmount(): number {
    return (this.sealer?.pendingBytes ?? 0) + this.inner.bufferedAmount;
  }

  // ---- handshake ---------------------------------------------------------------------------

  private async handshake(role: 'initiator' | 'responder', mode: 'inline' | 'workers'): Promise<void> {
    const io: HandshakeIO = {
      send: (m) => void this.inner.send([m]),
      next: () => this.nextHandshakeMessage(),
    };
    const timer = setTimeout(() => {
      this.abortHandshake(
        new DevstreamsError('ERR_HANDSHAKE_TIMEOUT', `handshake did not complete within ${this.o.handshakeTimeoutMs} ms`),
      );
    }, this.o.handshakeTimeoutMs);
    let result: HandshakeResult;
    try {
      const run = role === 'initiator' ? initiatorHandshake(this.o, io) : responderHandshake(this.o, io);
      // Whichever comes first: the handshake, or a timeout / close that rejected the waiter.
      result = await run;
      if (this.handshakeError) throw this.handshakeError;
    } catch (err) {
      const error = this.handshakeError ?? asHandshakeError(err);
      this.abortHandshake(error);
      throw error;
    } finally {
      clearTimeout(timer);
    }
    if (this.phase !== 'handshake')
      throw this.handshakeError ?? new DevstreamsError('ERR_HANDSHAKE_FAILED', 'transport closed during the handshake');
    this.startRecords(result, mode);
  }

  private nextHandshakeMessage(): Promise<Buffer> {
    if (this.handshakeError) return Promise.reject(this.handshakeError);
    const m = this.inbox.shift();
    if (m) {
      this.inboxBytes -= m.length;
      return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Ends the handshake; `tellPeer` sends an alert with our error code first (best effort). */
  private abortHandshake(error: Error, tellPeer = true): void {
    if (this.phase !== 'handshake') return;
    if (tellPeer && !this.inner.closed)
      this.inner.send([encodeAlert(error instanceof DevstreamsError ? error.code : 'ERR_HANDSHAKE_FAILED')]);
    this.handshakeError ??= error;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.handshakeError);
    this.phase = 'closed';
    this.inbox = [];
    this.inner.close(this.handshakeError);
    this.deliverClose(this.handshakeError);
  }

  private startRecords(result: HandshakeResult, mode: 'inline' | 'workers'): void {
    this.suite = result.suite;
    this.sendKeys = new KeySchedule(result.sendSecret, result.suite);
    this.recvKeys = new KeySchedule(result.recvSecret, result.suite);
    result.sendSecret.fill(0);
    result.recvSecret.fill(0);
    this.info = {
      protocolName: result.protocolName,
      cipher: result.cipher,
      suite: result.suite,
      remoteStatic: result.remoteStatic,
      handshakeHash: result.handshakeHash,
      crypto: mode,
    };
    if (mode === 'workers') {
      const pool = getCryptoPool(this.o.workerThreads);
      const onError = (err: unknown): void =>
        this.fail(new DevstreamsError('ERR_INTERNAL', `crypto worker failed: ${String(err)}`, { cause: err }));
      this.sealer = new OrderedOffload(pool, 'seal', this.suite, this.o.workerBatchBytes, (out) => this.onSealed(out), onError);
      this.opener = new OrderedOffload(pool, 'open', this.suite, this.o.workerBatchBytes, (out) => this.onOpened(out), onError);
    }
    this.phase = 'open';
    // Records that arrived right behind the last handshake message (held until the peer was verified).
    const early = this.inbox;
    this.inbox = [];
    this.inboxBytes = 0;
    for (const m of early) {
      if (this.phase !== 'open') break;
      this.onRecord([m], m.length);
    }
    if (this.innerClosedWith && this.phase === 'open') this.finishInnerClose();
  }

  // ---- inner transport events --------------------------------------------------------------

  private onInnerMessageParts(parts: Buffer[]): void {
    if (this.phase === 'open') this.onRecord(parts, partsLength(parts));
    else this.onInnerMessage(Buffer.concat(parts)); // handshake messages are small and few
  }

  private onInnerMessage(borrowed: Buffer): void {
    if (this.phase === 'open') this.onRecord([borrowed], borrowed.length);
    else if (this.phase === 'handshake') {
      const message = Buffer.from(borrowed); // kept past this call (see borrowsReads)
      if (message[0] === ALERT_TYPE) this.abortHandshake(alertError(message), false);
      else if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve(message);
      } else if (this.inboxBytes + message.length <= MAX_EARLY_BYTES) {
        // Records the initiator sends right after message 3, held while the peer is verified.
        this.inbox.push(message);
        this.inboxBytes += message.length;
      } else this.abortHandshake(new DevstreamsError('ERR_HANDSHAKE_FAILED', 'peer sent too much before the handshake completed'));
    }
  }

  private onInnerClose(error?: Error): void {
    if (this.phase === 'handshake') {
      this.abortHandshake(
        new DevstreamsError('ERR_HANDSHAKE_FAILED', `transport closed during the handshake${error ? `: ${error.message}` : ''}`, {
          cause: error,
        }),
        false,
      );
      return;
    }
    this.innerClosedWith = error ? { error } : {};
    if (this.phase === 'closed')
      this.deliverClose(error); // our own orderly close completing
    else this.finishInnerClose();
  }

  /** Delivers close once records already inside workers have been delivered. */
  private finishInnerClose(): void {
    if (this.phase !== 'open' || !this.innerClosedWith) return;
    if (this.opener && !this.opener.idle) return; // onOpened calls back here
    this.phase = 'closed';
    this.sealer?.stop();
    this.deliverClose(this.innerClosedWith.error);
  }

  // ---- sending -----------------------------------------------------------------------------

  send(parts: readonly Buffer[]): boolean {
    trace?.('seal');
    if (this.phase !== 'open' || this.closeWhenFlushed) return false;
    let size = 0;
    for (const p of parts) size += p.length;
    if (size > this.maxMessageSize) {
      this.fail(new DevstreamsError('ERR_RECORD_TOO_LARGE', `message of ${size} bytes exceeds the record limit of ${this.maxMessageSize}`));
      return false;
    }
    if (this.sendSeq >= MAX_SEQUENCE) {
      this.fail(new DevstreamsError('ERR_RECORD_SEQUENCE', 'sequence space exhausted; reconnect'));
      return false;
    }
    if (this.epochRecords >= this.o.rekeyRecords || this.epochBytes >= this.o.rekeyBytes) {
      this.sendKeys.next(); // the header's epoch tells the peer to follow
      this.epochRecords = 0;
      this.epochBytes = 0;
    }
    const { epoch, key, iv } = this.sendKeys.keys;
    const seq = this.sendSeq++;
    this.epochRecords++;
    this.epochBytes += size;
    if (this.sealer) {
      const header = encodeRecordHeader(epoch, seq);
      this.sealer.push({ parts: [header, ...parts], size: RECORD_HEADER_SIZE + size, key, nonce: recordNonce(iv, seq) });
      return this.acceptsMore(this.bufferedAmount, this.o.sealHighWater);
    }
    // [header, ciphertext pieces..., tag]: handed to the inner transport as they are (one writev).
    const made = this.nextSeal;
    this.nextSeal = undefined;
    let sealed: Buffer[];
    if (made !== undefined && made.seq === seq && made.epoch === epoch) {
      // Made ahead with this record's nonce and header, the header already its AAD.
      this.madeAhead++;
      sealed = sealParts(this.suite, key, this.nonceScratch, made.header, parts, [made.header], made.cipher);
    } else {
      const header = encodeRecordHeader(epoch, seq);
      sealed = sealParts(this.suite, key, recordNonce(iv, seq, this.nonceScratch), header, parts, [header]);
    }
    trace?.('sealed');
    this.sealedSincePrepare = true;
    const ok = this.inner.send(sealed);
    this.schedulePrepare();
    return this.admit(ok);
  }

  /**
   * Inline, a record's cipher object costs more to make than a small record costs to seal or
   * open with it, and it is made while the record waits (a keystroke, a request). So once a
   * record has been sealed and handed on, or opened and delivered, the next one's (same
   * direction, the sequence number after it) is made in a tick queued behind the writes that
   * record caused (the websocket's and the bridge's, each of which waits for the tick it queued
   * first), and that record finds it ready. A tick, not a later turn: another turn would cost a
   * poll of its own. It is used only for the key epoch and sequence number it was made for, once:
   * a record that finds none (the second and later records of one flush), or one for another
   * epoch (a rekey came first), makes its own as before.
   */
  private schedulePrepare(): void {
    if (this.prepareScheduled) return;
    this.prepareScheduled = true;
    process.nextTick(this.prepareLater);
  }

  private prepareNext(): void {
    this.prepareScheduled = false;
    if (this.phase !== 'open' || this.sealer) return;
    if (this.sealedSincePrepare && this.nextSeal === undefined && this.sendSeq < MAX_SEQUENCE) {
      const { epoch, key, iv } = this.sendKeys.keys;
      const seq = this.sendSeq;
      const header = encodeRecordHeader(epoch, seq);
      this.nextSeal = { epoch, seq, header, cipher: recordCipher(this.suite, key, recordNonce(iv, seq, this.nonceScratch), header) };
    }
    if (this.openedSincePrepare && this.nextOpen === undefined) {
      const { epoch, key, iv } = this.recvKeys.keys;
      const seq = this.recvSeq;
      // The AAD a record with this epoch and sequence number carries: onRecord uses it only for a
      // header that decoded to both, and such a header is exactly these bytes.
      const header = encodeRecordHeader(epoch, seq);
      this.nextOpen = { epoch, seq, decipher: recordDecipher(this.suite, key, recordNonce(iv, seq, this.nonceScratch), header) };
    }
    this.sealedSincePrepare = false;
    this.openedSincePrepare = false;
  }

  private onSealed(out: OffloadOutput): void {
    if (this.phase !== 'open') return;
    let ok = true;
    for (const record of out.results) ok = this.inner.send([record]) && ok;
    if (this.closeWhenFlushed && this.sealer!.idle) {
      this.finishOwnClose();
      return;
    }
    if (ok) this.maybeDrain();
  }

  private maybeDrain(): void {
    // Inline, the inner transport's onDrain is the signal; with workers, our queue must be low too.
    if (this.phase === 'open') this.wakeSender(!this.sealer || this.bufferedAmount <= this.o.sealHighWater);
  }

  // ---- receiving ---------------------------------------------------------------------------

  /** One received record, as one or more pieces (views) of `length` bytes in total. */
  private onRecord(parts: readonly Buffer[], length: number): void {
    trace?.('open');
    if (this.pendingFailure) return; // session is ending; nothing after the bad record counts
    if (parts[0]?.[0] === ALERT_TYPE && this.recvSeq === 0 && !this.opener?.pendingBytes) {
      // The responder refused us after our last handshake message (it verifies our key then).
      this.fail(alertError(parts.length === 1 ? parts[0] : Buffer.concat(parts)));
      return;
    }
    // A record in one piece (every small one) is read through views of it, no piece arrays.
    const whole = parts.length === 1 ? parts[0]! : undefined;
    const headerBytes = whole
      ? whole.subarray(0, Math.min(RECORD_HEADER_SIZE, length))
      : gatherBytes(parts, 0, Math.min(RECORD_HEADER_SIZE, length));
    const header = decodeRecordHeader(headerBytes);
    if (!header) {
      this.rejectRecord(new DevstreamsError('ERR_RECORD_AUTH', 'malformed record header'));
      return;
    }
    if (length > this.o.maxRecordPlaintext + RECORD_OVERHEAD) {
      this.rejectRecord(new DevstreamsError('ERR_RECORD_TOO_LARGE', `record of ${length} bytes exceeds the limit`));
      return;
    }
    if (header.seq !== this.recvSeq) {
      const what = header.seq < this.recvSeq ? 'replayed' : 'out of order or after a dropped record';
      this.rejectRecord(new DevstreamsError('ERR_RECORD_SEQUENCE', `record ${header.seq} ${what}; expected ${this.recvSeq}`));
      return;
    }
    const current = this.recvKeys.keys.epoch & 0xffff;
    if (header.epoch !== current) {
      if (header.epoch !== ((current + 1) & 0xffff)) {
        this.rejectRecord(
          new DevstreamsError('ERR_RECORD_SEQUENCE', `record ${header.seq} has key epoch ${header.epoch}; expected ${current} or the next`),
        );
        return;
      }
      this.recvKeys.next();
    }
    this.recvSeq++;
    const { key, iv } = this.recvKeys.keys;
    if (this.opener) {
      if (this.opener.pendingBytes + length > this.o.maxOpenBacklog) {
        this.fail(
          new DevstreamsError(
            'ERR_PROTOCOL_FLOOD',
            `peer sent more than ${this.o.maxOpenBacklog} bytes of records faster than they could be opened`,
          ),
        );
        return;
      }
      this.opener.push({ parts, size: length, key, nonce: recordNonce(iv, header.seq) });
      return;
    }
    const made = this.nextOpen;
    this.nextOpen = undefined;
    const decipher = made !== undefined && made.seq === header.seq && made.epoch === this.recvKeys.keys.epoch ? made.decipher : undefined;
    if (decipher) this.madeAhead++;
    // A decipher made ahead has its nonce already (the scratch then holds stale bytes, unused).
    const nonce = decipher ? this.nonceScratch : recordNonce(iv, header.seq, this.nonceScratch);
    this.openedSincePrepare = true;
    const plain =
      length < RECORD_OVERHEAD
        ? null
        : whole
          ? openBody(this.suite, key, nonce, headerBytes, whole.subarray(RECORD_HEADER_SIZE), decipher)
          : openParts(
              this.suite,
              key,
              nonce,
              headerBytes,
              sliceParts(parts, RECORD_HEADER_SIZE, length - TAG_SIZE),
              gatherBytes(parts, length - TAG_SIZE, length),
              decipher,
            );
    if (!plain) {
      this.fail(new DevstreamsError('ERR_RECORD_AUTH', `record ${header.seq} failed authentication`));
      return;
    }
    trace?.('opened');
    // Pieces go up as they are when the layer above takes pieces (the mux does); else joined.
    if (Buffer.isBuffer(plain)) this.deliverMessage(plain);
    else if (plain.length === 1) this.deliverMessage(plain[0]!);
    else if (plain.length === 0) this.deliverMessage(Buffer.alloc(0));
    else this.deliverMessageParts(plain);
    this.schedulePrepare();
  }

  /**
   * Ends the session because of a bad record. Good records before it that are still inside a
   * worker are delivered first, so the peer's data up to the bad record is never lost to a race.
   */
  private rejectRecord(error: DevstreamsError): void {
    if (this.opener && !this.opener.idle) this.pendingFailure = error;
    else this.fail(error);
  }

  private onOpened(out: OffloadOutput): void {
    if (this.phase !== 'open') return;
    for (const plain of out.results) {
      this.deliverMessage(plain);
      if (this.phase !== 'open') return;
    }
    if (out.authFailed) {
      this.fail(new DevstreamsError('ERR_RECORD_AUTH', 'a record failed authentication'));
      return;
    }
    if (this.pendingFailure && this.opener!.idle) {
      this.fail(this.pendingFailure);
      return;
    }
    if (this.innerClosedWith) this.finishInnerClose();
  }

  // ---- closing -----------------------------------------------------------------------------

  close(error?: Error): void {
    if (this.phase === 'handshake') {
      this.abortHandshake(error ?? new DevstreamsError('ERR_HANDSHAKE_FAILED', 'closed during the handshake'));
      return;
    }
    if (this.phase !== 'open') return;
    if (error) {
      this.fail(error);
      return;
    }
    // Orderly: records still in a worker go out first, like a socket flushing before FIN.
    if (this.sealer && !this.sealer.idle) {
      this.closeWhenFlushed = true;
      this.isClosed = true;
      return;
    }
    this.isClosed = true;
    this.finishOwnClose();
  }

  /** Our orderly close: close the inner transport; its onClose then reaches the layer above. */
  private finishOwnClose(): void {
    this.phase = 'closed';
    this.inner.close();
    // The inner transport may already have closed (peer first) and will not call onClose again.
    if (this.innerClosedWith) this.deliverClose(this.innerClosedWith.error);
  }

  private fail(error: Error): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.sealer?.stop();
    this.opener?.stop();
    this.inner.close(error);
    this.deliverClose(error);
  }
}

function asHandshakeError(err: unknown): Error {
  if (err instanceof DevstreamsError) return err;
  return new DevstreamsError('ERR_HANDSHAKE_FAILED', `handshake failed: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
  });
}

/** Runs the initiator's handshake over `inner`; resolves with the sealed transport. */
export function secureInitiator(inner: Transport, options: SecureTransportOptions): Promise<SecureTransport> {
  return SecureTransport.establish(inner, 'initiator', options);
}

/** Runs the responder's handshake over `inner`; resolves with the sealed transport. */
export function secureResponder(inner: Transport, options: SecureTransportOptions): Promise<SecureTransport> {
  return SecureTransport.establish(inner, 'responder', options);
}
