/**
 * The resumable layer: a `Transport` between the record layer and the mux (mux over Resumable
 * over Secure over ws) that survives the loss of the connection below it.
 *
 * It numbers the messages it sends, keeps the ones the peer has not acknowledged in a replay
 * buffer, and acknowledges what it receives cumulatively. When the connection below drops it
 * does not close upward: it suspends (sends are buffered, backpressure on) and its owner brings
 * a new connection (a fresh handshake). On that connection the initiator proves it holds the
 * session (RESUME, an HMAC over the new handshake hash under a secret only the two ends know),
 * the responder proves it back (RESUMED), each tells how many messages it received, and each
 * resends the rest: nothing lost, duplicated or reordered. If no connection is back within the
 * give-up time the layer closes with ERR_SESSION_LOST.
 *
 * Each connection also carries a cheap liveness check (PING/PONG), so a connection that went
 * silent (a middlebox dropped it without a FIN) is noticed within `livenessTimeoutMs` and
 * replaced, while the mux above, with a keepalive timeout beyond the give-up time, never sees it.
 *
 * Events (on `events`): 'init' () once the session id is known (responder: on INIT),
 * 'suspended' (error?), 'resumed' (ResumedInfo), 'lost' (DevstreamsError), 'refused' (error) when
 * a resume attempt on a new connection was refused (the session itself is unaffected),
 * 'closed' (error?) once, at the end.
 */
import { EventEmitter } from 'node:events';
import { DevstreamsError } from '../errors.js';
import { DrainGate, TransportBase } from '../transport/base.js';
import { trace } from '../util/trace.js';
import type { Transport } from '../transport/transport.js';
import { resolveResumeConfig, type ResumeConfig } from './config.js';
import { checkPeerCount, checkResumeAnswer, checkResumeRequest, resumeAnswer, resumeRequest, type SessionKeys } from './handshake.js';
import { InFlightBound } from './in-flight.js';
import { DeliveryPacer, type SenderWait } from './pacer.js';
import { newSessionKeys } from './proof.js';
import { ReplayBuffer } from './replay-buffer.js';
import {
  DATA_HEADER,
  DATA_OVERHEAD,
  CLOSE_MESSAGE,
  MsgType,
  decodeAck,
  decodeInit,
  encodeAck,
  encodeInit,
  encodePing,
  encodeRefuse,
} from './wire.js';

/** One connection under the session: a transport and the channel binding of its handshake. */
export interface Link {
  transport: Transport;
  /** Unique per connection and known to both ends (the Noise handshake hash). */
  binding: Buffer;
}

/** Which end: the initiator (service) resumes, the responder (device) accepts. */
export type ResumeRole = 'initiator' | 'responder';
/** Where a resumable session is. */
export type ResumableState = 'active' | 'resuming' | 'suspended' | 'closed';

/** What a resume did. */
export interface ResumedInfo {
  /** Messages sent again on the new connection. */
  resent: number;
  /** Time without a connection, ms. */
  downtimeMs: number;
  /** Resumes of this session so far. */
  resumes: number;
}

/** Events on `ResumableTransport.events`, with their arguments. */
export interface ResumableEvents {
  init: [];
  suspended: [error: Error | undefined];
  resumed: [info: ResumedInfo];
  lost: [error: DevstreamsError];
  refused: [error: DevstreamsError];
  closed: [error: Error | undefined];
}

/** Per-connection state. `pending` while the resume handshake runs on it. */
interface LinkState {
  link: Link;
  pending: boolean;
  /** Initiator: settles the resume handshake. */
  waiter?: { resolve(): void; reject(err: Error): void; timer: NodeJS.Timeout };
}

/** A Transport that survives the loss of the connection below (see the module comment). */
export class ResumableTransport extends TransportBase implements Transport {
  readonly events = new EventEmitter<ResumableEvents>();
  readonly config: ResumeConfig;
  readonly maxMessageSize: number;
  /** The session id and resume secret: made by the initiator, learned from INIT by the responder. */
  private keys: SessionKeys | undefined;
  private current: LinkState | undefined;
  private phase: ResumableState = 'active';
  private readonly replay = new ReplayBuffer();
  private received = 0;
  private ackedToPeer = 0;
  /** DATA bytes received since the last ACK we sent. */
  private bytesUnacked = 0;
  private ackTimer: NodeJS.Timeout | undefined;
  private readonly inFlight: InFlightBound;
  /** Paces DATA beside an interactive channel (pacer.ts). */
  private readonly pacer: DeliveryPacer;
  /** What the waiting sender waits for (meaningful while `senderWaiting`). */
  private waitingFor: SenderWait = 'none';
  /** Wakes a sender the pacer holds. */
  private paceTimer: NodeJS.Timeout | undefined;
  /** Opaque counter of our liveness PINGs (the peer echoes it; nobody checks it). */
  private pingsSent = 0;
  /** The current link's backpressure: after a refused send, nothing more until its drain. */
  private readonly link = new DrainGate();
  /** PINGs that arrived while the link was blocked; one PONG answers them once it drains. */
  private pingsUnanswered = 0;
  private lastHeard = Date.now();
  private livenessTimer: NodeJS.Timeout;
  private giveUpTimer: NodeJS.Timeout | undefined;
  private suspendedAt = 0;
  private resumeCount = 0;

  private constructor(
    private readonly role: ResumeRole,
    link: Link,
    config: Partial<ResumeConfig>,
  ) {
    super();
    this.config = resolveResumeConfig(config);
    this.inFlight = new InFlightBound(this.config);
    this.pacer = new DeliveryPacer(this.config.interactivePacePercent);
    this.maxMessageSize = link.transport.maxMessageSize - DATA_OVERHEAD;
    this.livenessTimer = setInterval(() => this.checkLiveness(), this.config.livenessIntervalMs);
    this.livenessTimer.unref();
    this.bind({ link, pending: false });
  }

  /** The initiator's side (the service): makes the session id and secret and sends INIT. */
  static initiate(link: Link, config: Partial<ResumeConfig> = {}): ResumableTransport {
    const t = new ResumableTransport('initiator', link, config);
    const keys = newSessionKeys();
    t.keys = keys;
    link.transport.send([encodeInit(keys.sessionId, keys.secret)]);
    return t;
  }

  /** The responder's side (the device): learns the session id from the peer's INIT ('init' event). */
  static accept(link: Link, config: Partial<ResumeConfig> = {}): ResumableTransport {
    return new ResumableTransport('responder', link, config);
  }

  /** Hex session id (known on the responder after 'init'); carried in the resume stream name. */
  get sessionId(): string | undefined {
    return this.keys?.sessionId.toString('hex');
  }

  get state(): ResumableState {
    return this.phase;
  }

  /** Resumes so far. */
  get resumes(): number {
    return this.resumeCount;
  }

  /** Unacknowledged bytes above which `send` returns false (the rule is in in-flight.ts). */
  get inFlightLimit(): number {
    return this.inFlight.limit;
  }

  /** The rate DATA is paced to now, bytes per ms (0: not paced; see pacer.ts). */
  get pacedRate(): number {
    return this.pacing(performance.now()) ? this.pacer.rate : 0;
  }

  /** Whether DATA is paced at `now`: a light channel has been talking beside a transfer (pacer.ts). */
  private pacing(now: number): boolean {
    // Off (the default): no run of hints to look at on every send.
    if (this.config.interactivePacePercent === 0) return false;
    return this.inFlight.talkingAt(now, this.config.interactivePaceAfterMs, this.config.interactivePaceAfterHints);
  }

  /**
   * The layer above says latency-sensitive traffic passes (Transport.noteLatencySensitive): if
   * a transfer runs beside it (`interactiveBesideBytes` unacknowledged either way), for
   * `interactiveHoldMs` the in-flight bound is also the delay controller's, and this side
   * acknowledges every `interactiveAckEveryBytes` (the peer's controller samples its ACKs).
   */
  noteLatencySensitive(): void {
    const beside = this.config.interactiveBesideBytes;
    if (this.replay.bytes >= beside || this.bytesUnacked >= beside) this.inFlight.noteInteractive(performance.now());
  }

  /**
   * Sizes the in-flight bound from a round-trip sample of the current connection, ms. A resume
   * (a new connection, perhaps a longer path) starts over from `replayHighWater`; a bound only
   * grows back then, and a resume drains itself.
   */
  setPathRtt(minRttMs: number): void {
    this.inFlight.onPathRtt(minRttMs);
  }

  /** Unacknowledged bytes held for resending. */
  get replayBytes(): number {
    return this.replay.bytes;
  }

  get bufferedAmount(): number {
    return this.replay.bytes;
  }

  // ---- sending -----------------------------------------------------------------------------

  send(parts: readonly Buffer[]): boolean {
    if (this.phase === 'closed') return false;
    let size = DATA_OVERHEAD;
    for (const p of parts) size += p.length;
    const message = [DATA_HEADER, ...parts];
    const now = performance.now();
    this.replay.push(message, size, now);
    if (this.replay.bytes > this.config.maxReplayBytes) {
      this.lose(new DevstreamsError('ERR_SESSION_LOST', `replay buffer exceeded ${this.config.maxReplayBytes} bytes`));
      return false;
    }
    if (this.phase === 'active') this.link.sent(this.current!.link.transport.send(message));
    const pathOk = this.phase === 'active' && this.link.open && this.replay.bytes <= this.inFlight.limitAt(now);
    const paced = this.pacer.spend(size, now, this.pacing(now));
    if (pathOk && !paced) return true;
    this.waitingFor = pathOk ? 'pacer' : 'path';
    if (pathOk) this.holdForPacer(now);
    // Why the layer above must wait: the in-flight bound, the connection below, no connection, or the pacer.
    if (trace !== undefined)
      trace(`rs.hold ${this.phase !== 'active' ? 'suspended' : !this.link.open ? 'link' : pathOk ? 'pacer' : 'inflight'}`);
    return this.admit(false);
  }

  private maybeDrain(): void {
    const now = performance.now();
    const ready = this.phase === 'active' && this.link.open && this.replay.bytes <= this.inFlight.limitAt(now);
    if (!this.senderWaiting) return;
    if (!ready) {
      this.waitingFor = 'path';
      return;
    }
    if (!this.pacer.ready(now, this.pacing(now))) {
      this.waitingFor = 'pacer';
      this.holdForPacer(now);
      return;
    }
    if (trace !== undefined) trace('rs.go');
    this.wakeSender(true);
  }

  /** The pacer holds the sender: a timer wakes it when the bucket has bytes again. */
  private holdForPacer(now: number): void {
    this.pacer.notePaced();
    if (this.paceTimer !== undefined) return;
    const ms = Math.max(1, Math.ceil(this.pacer.waitMs(now, this.pacing(now))));
    this.paceTimer = setTimeout(this.onPaceTimer, ms);
    this.paceTimer.unref();
  }

  private readonly onPaceTimer = (): void => {
    this.paceTimer = undefined;
    if (this.phase !== 'closed') this.maybeDrain();
  };

  /**
   * ACKs are cumulative: while the link does not take more, the one sent at its drain covers
   * everything, so a peer that sends without reading cannot make ACKs pile up here.
   */
  private sendAck(): void {
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (this.phase !== 'active' || this.ackedToPeer === this.received || !this.link.open) return;
    this.ackedToPeer = this.received;
    this.bytesUnacked = 0;
    this.link.sent(this.current!.link.transport.send([encodeAck(this.received)]));
  }

  /** Answers a PING, or (link blocked) owes one PONG for all of them, up to `maxPingsUnanswered`. */
  private answerPing(ls: LinkState, m: Buffer): void {
    if (!this.link.open) {
      if (++this.pingsUnanswered > this.config.maxPingsUnanswered) {
        throw new DevstreamsError(
          'ERR_PROTOCOL_FLOOD',
          `peer sent more than ${this.config.maxPingsUnanswered} PINGs without reading the answers`,
        );
      }
      return;
    }
    this.link.sent(ls.link.transport.send([encodePing(MsgType.PONG, m.length >= 5 ? m.readUInt32BE(1) : 0)]));
  }

  /** The current link takes more again: answers owed go first, then the layer above may send. */
  private onLinkDrain(): void {
    this.link.drained();
    if (this.pingsUnanswered > 0) {
      this.pingsUnanswered = 0;
      this.link.sent(this.current!.link.transport.send([encodePing(MsgType.PONG, 0)]));
    }
    this.sendAck();
    this.maybeDrain();
  }

  // ---- connections -------------------------------------------------------------------------

  /** Listens to `link`; a non-pending link becomes current first, since attach may deliver held messages at once. */
  private bind(ls: LinkState): void {
    const link = ls.link;
    if (!ls.pending) this.current = ls;
    link.transport.attach({
      onMessage: (m) => this.onLinkMessage(ls, m),
      onMessageParts: (parts) => this.onLinkMessageParts(ls, parts),
      onDrain: () => {
        if (ls === this.current && this.phase !== 'closed') this.onLinkDrain();
      },
      onClose: (err) => this.onLinkClose(ls, err),
    });
  }

  /**
   * A message that arrived in pieces (a record spanning socket reads). DATA goes up in pieces, as
   * the mux takes them, instead of being joined into a new 64 KiB buffer; anything else is joined.
   */
  private onLinkMessageParts(ls: LinkState, parts: Buffer[]): void {
    const first = parts[0];
    if (first !== undefined && first[0] === MsgType.DATA) this.onLinkMessage(ls, first, parts);
    else this.onLinkMessage(ls, Buffer.concat(parts));
  }

  /**
   * Acknowledges received DATA after `ackEveryBytes` bytes, `ackEveryMessages` messages (once
   * they hold `ackCountMinBytes`) or `ackDelayMs`, whichever comes first. The byte count keeps ACKs (the sender's delay samples)
   * coming several times per in-flight bound under bulk; the timer serves small exchanges, where
   * an ACK per message would double the messages every hop handles.
   */
  private ackLater(bytes: number): void {
    this.bytesUnacked += bytes;
    let every = this.config.ackEveryBytes;
    if (this.bytesUnacked >= this.config.interactiveAckEveryBytes && this.inFlight.interactiveAt(performance.now()))
      every = every > 0 ? Math.min(every, this.config.interactiveAckEveryBytes) : this.config.interactiveAckEveryBytes;
    const byCount = this.received - this.ackedToPeer >= this.config.ackEveryMessages && this.bytesUnacked >= this.config.ackCountMinBytes;
    if ((every > 0 && this.bytesUnacked >= every) || byCount) this.sendAck();
    else if (!this.ackTimer) {
      this.ackTimer = setTimeout(() => this.sendAck(), this.config.ackDelayMs);
      this.ackTimer.unref();
    }
  }

  /** `m` is the message, or with `pieces` (DATA only) the first of the pieces it arrived in. */
  private onLinkMessage(ls: LinkState, m: Buffer, pieces?: Buffer[]): void {
    if (this.phase === 'closed' || m.length === 0) return;
    if (ls.pending) {
      this.onHandshakeMessage(ls, pieces ? Buffer.concat(pieces) : m);
      return;
    }
    if (ls !== this.current) return; // a replaced connection: nothing it says counts any more
    this.lastHeard = Date.now();
    try {
      switch (m[0]) {
        case MsgType.DATA: {
          this.received++;
          let bytes = m.length;
          if (!pieces) this.deliverMessage(m.subarray(DATA_OVERHEAD));
          else {
            for (let i = 1; i < pieces.length; i++) bytes += pieces[i]!.length;
            if (m.length > DATA_OVERHEAD) this.deliverMessageParts([m.subarray(DATA_OVERHEAD), ...pieces.slice(1)]);
            else this.deliverMessageParts(pieces.slice(1));
          }
          this.ackLater(bytes);
          return;
        }
        case MsgType.ACK:
          this.onAck(decodeAck(m));
          return;
        case MsgType.PING:
          this.answerPing(ls, m);
          return;
        case MsgType.PONG:
          return;
        case MsgType.CLOSE:
          this.closeWith(undefined, false);
          return;
        case MsgType.INIT:
          if (this.role !== 'responder' || this.keys) throw new DevstreamsError('ERR_PROTOCOL_STATE', 'unexpected INIT');
          this.keys = decodeInit(m);
          this.events.emit('init');
          return;
        case MsgType.REFUSE:
          this.lose(new DevstreamsError('ERR_SESSION_LOST', `peer refused the session: ${m.subarray(1).toString('utf8')}`));
          return;
        default:
          throw new DevstreamsError('ERR_PROTOCOL_UNKNOWN_TYPE', `unknown resumable message type ${m[0]}`);
      }
    } catch (err) {
      this.lose(err instanceof DevstreamsError ? err : new DevstreamsError('ERR_PROTOCOL_FRAME', String(err)));
    }
  }

  private onAck(count: number): void {
    if (count < this.replay.acknowledged || count > this.replay.sent)
      throw new DevstreamsError('ERR_PROTOCOL_STATE', `ACK of ${count} outside ${this.replay.acknowledged}..${this.replay.sent}`);
    if (count === this.replay.acknowledged) return;
    const inFlight = this.replay.bytes;
    const now = performance.now();
    const rttMs = now - this.replay.sentAtOf(count - 1);
    this.replay.ackTo(count);
    this.inFlight.onAck(inFlight - this.replay.bytes, rttMs, inFlight);
    this.pacer.onAck(inFlight - this.replay.bytes, now, this.senderWaiting ? this.waitingFor : 'none');
    this.maybeDrain();
  }

  private onLinkClose(ls: LinkState, err?: Error): void {
    if (ls.waiter) {
      clearTimeout(ls.waiter.timer);
      ls.waiter.reject(
        new DevstreamsError('ERR_HUB_UNAVAILABLE', `connection closed during resume${err ? `: ${err.message}` : ''}`, { cause: err }),
      );
      ls.waiter = undefined;
    }
    if (ls !== this.current || this.phase === 'closed') return;
    this.current = undefined;
    this.suspend(err);
  }

  private suspend(err?: Error): void {
    this.phase = 'suspended';
    this.link.drained();
    this.pingsUnanswered = 0;
    this.holdSender();
    this.suspendedAt = Date.now();
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    if (!this.giveUpTimer) {
      this.giveUpTimer = setTimeout(() => {
        this.giveUpTimer = undefined;
        this.lose(new DevstreamsError('ERR_SESSION_LOST', `no connection to the peer for ${this.config.giveUpMs} ms`));
      }, this.config.giveUpMs);
      this.giveUpTimer.unref();
    }
    this.events.emit('suspended', err);
  }

  private checkLiveness(): void {
    if (this.phase !== 'active' || !this.current) return;
    if (Date.now() - this.lastHeard > this.config.livenessTimeoutMs) {
      // Closing it delivers onClose, which suspends; the owner reconnects.
      this.current.link.transport.close(
        new DevstreamsError('ERR_KEEPALIVE_TIMEOUT', `connection silent for ${this.config.livenessTimeoutMs} ms`),
      );
      return;
    }
    this.current.link.transport.send([encodePing(MsgType.PING, ++this.pingsSent)]);
  }

  /**
   * Drops the current connection as if it had failed (tests, or an owner that knows the network
   * changed). The session suspends; the owner reconnects.
   */
  dropConnection(reason = 'connection dropped'): void {
    this.current?.link.transport.close(new DevstreamsError('ERR_TRANSPORT_CLOSED', reason));
  }

  // ---- resume ------------------------------------------------------------------------------

  /**
   * Initiator: runs the resume handshake on a new connection and, once the peer proved it holds
   * the session, moves the session onto it and resends. Rejects (and closes `link`) when the
   * peer refuses, the connection fails, or it takes longer than `resumeTimeoutMs`.
   */
  resumeOver(link: Link): Promise<void> {
    if (this.role !== 'initiator') return Promise.reject(new DevstreamsError('ERR_INTERNAL', 'only the initiator resumes'));
    if (this.phase !== 'suspended') {
      link.transport.close();
      return Promise.reject(new DevstreamsError('ERR_SESSION_CLOSED', `cannot resume a session that is ${this.phase}`));
    }
    this.phase = 'resuming';
    return new Promise<void>((resolve, reject) => {
      const ls: LinkState = { link, pending: true };
      const fail = (err: Error): void => {
        if (this.phase === 'resuming') this.phase = 'suspended';
        link.transport.close();
        reject(err);
      };
      const timer = setTimeout(() => {
        ls.waiter = undefined;
        fail(new DevstreamsError('ERR_HUB_UNAVAILABLE', `no answer to RESUME within ${this.config.resumeTimeoutMs} ms`));
      }, this.config.resumeTimeoutMs);
      timer.unref();
      // The waiter is in place before attaching: attach may deliver a held answer at once.
      ls.waiter = { resolve, reject: fail, timer };
      this.bind(ls);
      link.transport.send([resumeRequest(this.keys!, link.binding, this.received)]);
    });
  }

  /**
   * Responder: takes a new connection that claims this session. Its first message must be a
   * RESUME with a valid proof for this connection; then the session moves onto it (replacing
   * the old one, if the old one still looks alive) and resends. Resolves once resumed; rejects
   * with ERR_RESUME_REFUSED (after telling the peer and closing `link`) otherwise. A refused
   * attempt leaves the session as it was.
   */
  acceptResume(link: Link): Promise<void> {
    if (this.role !== 'responder') return Promise.reject(new DevstreamsError('ERR_INTERNAL', 'only the responder accepts resumes'));
    return new Promise<void>((resolve, reject) => {
      const ls: LinkState = { link, pending: true };
      const timer = setTimeout(() => {
        ls.waiter = undefined;
        this.refuse(ls, new DevstreamsError('ERR_RESUME_REFUSED', `no RESUME within ${this.config.resumeTimeoutMs} ms`), reject);
      }, this.config.resumeTimeoutMs);
      timer.unref();
      ls.waiter = { resolve, reject: (err) => reject(err), timer };
      this.bind(ls); // may deliver a held RESUME at once: the waiter is ready
    });
  }

  private refuse(ls: LinkState, err: DevstreamsError, reject: (e: Error) => void): void {
    ls.pending = false;
    ls.link.transport.send([encodeRefuse(err.code)]);
    ls.link.transport.close();
    this.events.emit('refused', err);
    reject(err);
  }

  private onHandshakeMessage(ls: LinkState, m: Buffer): void {
    const w = ls.waiter;
    if (!w) return;
    clearTimeout(w.timer);
    ls.waiter = undefined;
    if (this.role === 'responder') this.onResumeRequest(ls, m, w);
    else this.onResumeAnswer(ls, m, w);
  }

  /** Responder: the RESUME on a new connection; resumes onto it or refuses it. */
  private onResumeRequest(ls: LinkState, m: Buffer, w: NonNullable<LinkState['waiter']>): void {
    try {
      const peerReceived = checkResumeRequest(m, this.keys, ls.link.binding);
      checkPeerCount(peerReceived, this.replay.acknowledged, this.replay.sent);
      // Stop listening to the old connection before telling our count, so the count is final.
      const old = this.current;
      this.current = undefined;
      ls.link.transport.send([resumeAnswer(this.keys!, ls.link.binding, this.received)]);
      this.activate(ls, peerReceived);
      old?.link.transport.close();
      w.resolve();
    } catch (err) {
      this.refuse(ls, asRefusal(err), w.reject);
    }
  }

  /** Initiator: the answer to our RESUME; resumes onto the connection or fails the attempt. */
  private onResumeAnswer(ls: LinkState, m: Buffer, w: NonNullable<LinkState['waiter']>): void {
    try {
      const peerReceived = checkResumeAnswer(m, this.keys!, ls.link.binding);
      checkPeerCount(peerReceived, this.replay.acknowledged, this.replay.sent);
      this.activate(ls, peerReceived);
      w.resolve();
    } catch (err) {
      const e = asRefusal(err);
      ls.pending = false;
      w.reject(e);
      // The peer no longer knows this session (or answered nonsense): no point retrying.
      if (e.code === 'ERR_RESUME_REFUSED') this.lose(new DevstreamsError('ERR_SESSION_LOST', e.message, { cause: e }));
    }
  }

  /** Moves the session onto `ls`, drops what the peer already has, and resends the rest in order. */
  private activate(ls: LinkState, peerReceived: number): void {
    ls.pending = false;
    this.replay.ackTo(peerReceived);
    this.current = ls;
    this.phase = 'active';
    this.lastHeard = Date.now();
    this.link.drained();
    this.pingsUnanswered = 0;
    this.ackedToPeer = this.received; // the peer learned our count in the handshake
    this.bytesUnacked = 0;
    if (this.giveUpTimer) clearTimeout(this.giveUpTimer);
    this.giveUpTimer = undefined;
    let resent = 0;
    this.replay.resend(performance.now(), (parts) => {
      resent++;
      this.link.sent(ls.link.transport.send(parts));
    });
    this.resumeCount++;
    this.inFlight.newPath();
    this.pacer.reset();
    const downtimeMs = this.suspendedAt > 0 ? Date.now() - this.suspendedAt : 0;
    this.suspendedAt = 0;
    this.holdSender();
    this.events.emit('resumed', { resent, downtimeMs, resumes: this.resumeCount });
    this.maybeDrain();
  }

  // ---- closing -----------------------------------------------------------------------------

  /** Ends the session for good with ERR_SESSION_LOST (or `error`); emits 'lost'. */
  lose(error: DevstreamsError): void {
    if (this.phase === 'closed') return;
    this.events.emit('lost', error);
    this.close(error);
  }

  /** Closes the session for good; the peer is told (CLOSE) so it closes too instead of waiting to resume. */
  close(error?: Error): void {
    this.closeWith(error, true);
  }

  private closeWith(error: Error | undefined, tellPeer: boolean): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    clearInterval(this.livenessTimer);
    if (this.giveUpTimer) clearTimeout(this.giveUpTimer);
    if (this.ackTimer) clearTimeout(this.ackTimer);
    if (this.paceTimer) clearTimeout(this.paceTimer);
    this.giveUpTimer = undefined;
    this.ackTimer = undefined;
    this.paceTimer = undefined;
    this.replay.clear();
    const ls = this.current;
    this.current = undefined;
    if (ls && tellPeer && !ls.pending) ls.link.transport.send([CLOSE_MESSAGE]);
    ls?.link.transport.close(error);
    this.events.emit('closed', error);
    this.deliverClose(error);
  }
}

function asRefusal(err: unknown): DevstreamsError {
  return err instanceof DevstreamsError ? err : new DevstreamsError('ERR_RESUME_REFUSED', String(err));
}
