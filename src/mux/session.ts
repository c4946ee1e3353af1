/**
 * A mux session: many channels over one message transport. The session owns the wire: it
 * decodes inbound frames and dispatches them by type (`handleX`), and it schedules outbound
 * frames (`sendX` queue them; `flush` writes them): control frames first, then DATA chosen by
 * the fair scheduler (scheduler.ts), batched into transport messages of at most `maxBatchBytes`.
 *
 * Concurrency: everything runs on one event loop. A flush is scheduled with setImmediate, right
 * after the loop's I/O callbacks, so writes made by every socket read of one loop turn (many
 * connections, each its own callback) leave in as few transport messages as possible: one
 * record, one seal and one write instead of one per connection, which halves the CPU per request
 * of an HTTP load. It stops when the transport reports backpressure until `onDrain` (but for
 * the light lane, see flushLane). The receive path never blocks: a peer that overruns its
 * credit is a protocol error, not a reason to stop reading.
 */
import { EventEmitter } from 'node:events';
import { DevstreamsError, type ErrorCode } from '../errors.js';
import { DrainGate } from '../transport/base.js';
import type { Transport } from '../transport/transport.js';
import { Channel, type ChannelHost } from './channel.js';
import { CONTROL_FRAME_COST, LIGHT_CHANNEL_PENDING, resolveMuxConfig, type MuxConfig } from './config.js';
import { FrameType, INITIAL_SESSION_WINDOW, INITIAL_WINDOW, PROTOCOL_VERSION, codeFromWire, wireFromCode } from './constants.js';
import { FrameDecoder } from './decoder.js';
import { ReceiveWindow } from './flow.js';
import {
  decodeGoAway,
  decodeHello,
  decodeOpen,
  encodeOpen,
  decodeReset,
  encodeFrame,
  encodePing,
  encodeReset,
  encodeStructured,
  encodeWindow,
  frameError,
  type ChannelTarget,
} from './frame.js';
import { RttEstimator } from './rtt.js';
import { DataScheduler } from './scheduler.js';

/** Which end of the transport this session is: the initiator's channels get odd ids. */
export type SessionRole = 'initiator' | 'responder';

/** A session's role, limits (defaults in MuxConfig) and open handler. */
export interface SessionOptions extends Partial<MuxConfig> {
  role: SessionRole;
  /**
   * Handles channels the peer opens. Give it here rather than with `on('open')` when the peer
   * may open at once: messages the transport already holds are handled during construction,
   * before a listener added afterwards could see them.
   */
  onOpen?: (request: OpenRequest) => void;
}

/** How an accepted channel's ACCEPT goes out. */
export interface AcceptOptions {
  /**
   * When the opener has sent data already (so it is not waiting for the answer to send), the
   * ACCEPT waits up to this long, ms, for the channel's first frame of its own (DATA, CLOSE,
   * RESET or WINDOW) and leaves in the same message: a target that answers at once (an echo, an
   * HTTP response, a server's banner) costs one message back instead of two. The ACCEPT always
   * precedes every frame of its channel. 0 (the default) sends it at once.
   */
  holdMs?: number;
}

/** A peer asked to open a channel; call `accept()` or `refuse()`. */
export interface OpenRequest {
  readonly channelId: number;
  readonly target: ChannelTarget;
  /** Accepts and returns the channel; data the opener sent early is already readable. */
  accept(options?: AcceptOptions): Channel;
  /** Refuses with a code the opener's channel surfaces as its error code. */
  refuse(code: ErrorCode, reason?: string): void;
}

/** Counters for metrics and tests. */
export interface SessionStats {
  bytesSent: number;
  bytesReceived: number;
  messagesSent: number;
  framesReceived: number;
  channelsOpened: number;
  channelsAccepted: number;
}

/** Events a Session emits, with their arguments. */
export interface SessionEvents {
  open: [request: OpenRequest];
  goaway: [code: ErrorCode, message: string];
  close: [error?: DevstreamsError];
  /** A round-trip sample came in; the argument is the path's minimum round trip so far, ms. */
  rtt: [minRttMs: number];
}

/** Session-level grants go out once this fraction of the session window was consumed. */
const SESSION_GRANT_FRACTION = 0.25;
/** Channel-level grants go out once this fraction of the channel window was consumed. */
const CHANNEL_GRANT_FRACTION = 0.5;
/** Channel ids recently closed here; DATA for them is dropped quietly instead of reset. */
const RECENTLY_CLOSED_LIMIT = 1024;
/** Light channels remembered between two flushes (see Session.lightWaiting); more just wait for the flush's end. */
const LIGHT_WAITING_LIMIT = 16;
/** Before the peer's HELLO, frames stay within the payload every peer must accept. */
const MIN_PEER_FRAME_PAYLOAD = 16 * 1024;

/** A mux session over one transport (see the module comment). */
export class Session extends EventEmitter<SessionEvents> implements ChannelHost {
  readonly config: MuxConfig;
  readonly role: SessionRole;
  readonly stats: SessionStats = {
    bytesSent: 0,
    bytesReceived: 0,
    messagesSent: 0,
    framesReceived: 0,
    channelsOpened: 0,
    channelsAccepted: 0,
  };

  private readonly transport: Transport;
  private readonly decoder: FrameDecoder;
  private readonly channels = new Map<number, Channel>();
  private readonly recentlyClosed = new Set<number>();
  private readonly scheduler: DataScheduler;
  private control: Buffer[] = [];
  /** Bytes `control` holds, each frame with CONTROL_FRAME_COST added (see maxControlBacklog). */
  private controlBytes = 0;
  private nextChannelId: number;
  private lastPeerChannelId = 0;
  private inboundCount = 0;
  private outboundCount = 0;

  private helloReceived = false;
  private peerFramePayload = MIN_PEER_FRAME_PAYLOAD;
  private peerInitialWindow = INITIAL_WINDOW;
  private sessionSendCredit = INITIAL_SESSION_WINDOW;
  private readonly sessionRecv: ReceiveWindow;

  private flushScheduled = false;
  /** Everything scheduled since the last flush is CLOSEs alone (see closeHoldTurns). */
  private onlyCloses = true;
  /** Turns the scheduled flush has waited for more than CLOSEs. */
  private closeHeldTurns = 0;
  /** Accepted inbound channels whose ACCEPT is held (AcceptOptions.holdMs), with the timer that sends it. */
  private readonly unannounced = new Map<number, NodeJS.Timeout>();
  /** A flush is writing batches now (a transport may answer synchronously, back into this session). */
  private flushing = false;
  /** Light-lane bytes left until the transport's next drain (see MuxConfig.lightLaneBytes). */
  private laneLeft: number;
  /** A light frame waits while the transport is blocked. */
  private laneWanted = false;
  /**
   * Light channels that queued data since the last flush took it (see flushBatches): the batch
   * that carries their bytes ends the flush's turn, so it is written before more bulk is sealed.
   */
  private lightWaiting: Channel[] = [];
  /** Channels that made a light write before (see scheduleSend). */
  private readonly spokeLight = new WeakSet<Channel>();
  /** The transport's backpressure: after a refused send, nothing more until its onDrain. */
  private readonly gate = new DrainGate();
  private isClosed = false;
  private goAwaySent = false;
  private goAwayReceived = false;
  private goAwayWaiters: Array<() => void> = [];
  private goAwayTimer: NodeJS.Timeout | undefined;

  private keepaliveTimer: NodeJS.Timeout | undefined;
  private readonly rtt: RttEstimator;
  /** `config.maxBatchBytes` clamped to what the transport takes in one message. */
  private readonly batchLimit: number;
  /**
   * The largest window auto-tuning gave a channel of this session. New channels start there:
   * the path's bandwidth x delay does not change because a new connection began.
   */
  private learnedWindow = INITIAL_WINDOW;

  private readonly handlers: ReadonlyArray<(channel: number, payload: Buffer) => void>;
  private readonly onFrame = (type: number, channel: number, payload: Buffer): void => {
    // A frame earlier in this message may have ended the session (a peer's error GOAWAY); the
    // rest of the message must not reach it, or it would open channels on a closed session.
    if (this.isClosed) return;
    this.stats.framesReceived++;
    if (!this.helloReceived && type !== FrameType.HELLO) throw new DevstreamsError('ERR_PROTOCOL_STATE', 'first frame must be HELLO');
    this.handlers[type]!(channel, payload);
  };

  constructor(transport: Transport, options: SessionOptions) {
    super();
    const { role, onOpen, ...overrides } = options;
    if (onOpen) this.on('open', onOpen);
    this.config = resolveMuxConfig(overrides);
    this.batchLimit = Math.max(this.config.schedulerSlice, Math.min(this.config.maxBatchBytes, transport.maxMessageSize));
    this.laneLeft = this.config.lightLaneBytes;
    this.role = role;
    this.transport = transport;
    this.nextChannelId = role === 'initiator' ? 1 : 2;
    this.decoder = new FrameDecoder(this.config.maxFramePayload);
    this.scheduler = new DataScheduler(this.config.schedulerSlice);
    this.sessionRecv = new ReceiveWindow(INITIAL_SESSION_WINDOW, this.config.sessionWindow, SESSION_GRANT_FRACTION);
    // Indexed by frame type; the decoder has already rejected types outside the table.
    this.handlers = [
      (_c, p) => this.handleHello(p),
      (c, p) => this.handleOpen(c, p),
      (c) => this.handleAccept(c),
      (c, p) => this.handleData(c, p),
      (c, p) => this.handleWindow(c, p),
      (c) => this.handleClose(c),
      (c, p) => this.handleReset(c, p),
      (_c, p) => this.handlePing(p),
      (_c, p) => this.handlePong(p),
      (_c, p) => this.handleGoAway(p),
    ];

    this.queueControl(
      encodeStructured(FrameType.HELLO, 0, {
        version: PROTOCOL_VERSION,
        initialWindow: INITIAL_WINDOW,
        sessionWindow: this.config.sessionWindow,
        maxFramePayload: this.config.maxFramePayload,
      }),
    );
    // Our session window is larger than the starting one: the HELLO says so, and the grant makes it real.
    const extra = this.sessionRecv.raiseTo(this.config.sessionWindow);
    if (extra > 0) this.queueControl(encodeWindow(0, extra));
    const keepalive = this.config.keepaliveIntervalMs > 0;
    this.rtt = new RttEstimator(
      {
        sendPing: (opaque) => this.queueControl(encodePing(FrameType.PING, opaque)),
        pingTimedOut: () =>
          this.close(
            new DevstreamsError('ERR_KEEPALIVE_TIMEOUT', `no answer to keepalive ping within ${this.config.keepaliveTimeoutMs} ms`),
          ),
      },
      keepalive ? this.config.keepaliveTimeoutMs : 0,
    );
    this.rtt.probe();
    if (keepalive) {
      this.keepaliveTimer = setInterval(() => this.rtt.probe(), this.config.keepaliveIntervalMs);
      this.keepaliveTimer.unref();
    }

    transport.attach({
      onMessage: (message) => this.onMessage(message),
      // The decoder takes arbitrary chunks, so a message in pieces needs no joining.
      onMessageParts: (parts) => {
        for (const part of parts) this.onMessage(part);
      },
      onDrain: () => {
        this.gate.drained();
        this.laneLeft = this.config.lightLaneBytes;
        this.flush();
      },
      onClose: (error) => this.onTransportClose(error),
    });
  }

  /**
   * Forgets the measured round trip and measures it again (the transport below moved to a new
   * connection, which may be a longer path): the next PONG sets a fresh minimum.
   */
  resetRtt(): void {
    if (!this.isClosed) this.rtt.reset();
  }

  /** Smoothed round-trip time in milliseconds from PING/PONG, once measured. */
  get rttMs(): number | undefined {
    return this.rtt.smoothedMs;
  }

  /** Smallest round trip measured recently (the path without queueing), in milliseconds. */
  get minRttMs(): number | undefined {
    return this.rtt.minMs;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Control frames waiting for the transport, in bytes with CONTROL_FRAME_COST per frame. */
  get controlBacklog(): number {
    return this.controlBytes;
  }

  /** Channels currently open. */
  get channelCount(): number {
    return this.channels.size;
  }

  /**
   * Opens a channel to `target` on the peer. Returns at once: data written now travels right
   * behind the OPEN, without waiting for the peer's answer. A refusal surfaces as an 'error'
   * on the channel with the peer's code.
   */
  openChannel(target: ChannelTarget): Channel {
    const id = this.nextChannelId;
    const channel = new Channel(
      this,
      id,
      target,
      true,
      this.peerInitialWindow,
      new ReceiveWindow(INITIAL_WINDOW, this.config.maxWindow, CHANNEL_GRANT_FRACTION),
    );
    const refuse = (code: ErrorCode, message: string): Channel => {
      channel.onSessionEnd(new DevstreamsError(code, message));
      return channel;
    };
    if (this.isClosed) return refuse('ERR_SESSION_CLOSED', 'session is closed');
    if (this.goAwaySent || this.goAwayReceived) return refuse('ERR_SESSION_GOAWAY', 'session is going away; open a new one');
    if (this.outboundCount >= this.config.maxChannels)
      return refuse('ERR_TOO_MANY_CHANNELS', `at most ${this.config.maxChannels} channels may be open`);
    if (id > 0xfffffffd) return refuse('ERR_TOO_MANY_CHANNELS', 'channel ids exhausted; open a new session');
    this.nextChannelId += 2;
    this.outboundCount++;
    this.stats.channelsOpened++;
    this.channels.set(id, channel);
    this.queueControl(encodeOpen(id, target));
    this.startAtLearnedWindow(channel);
    return channel;
  }

  /**
   * Graceful shutdown: tells the peer (GOAWAY), refuses new channels both ways, lets open ones
   * finish, and closes the transport when the last one is done or after `goAwayTimeoutMs`.
   */
  goAway(message = 'going away'): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.goAwayWaiters.push(resolve));
    if (!this.goAwaySent) {
      this.goAwaySent = true;
      this.queueControl(encodeStructured(FrameType.GOAWAY, 0, { code: 0, message }));
      this.goAwayTimer = setTimeout(
        () => this.close(new DevstreamsError('ERR_SESSION_GOAWAY', 'channels did not finish before the go-away timeout')),
        this.config.goAwayTimeoutMs,
      );
      this.goAwayTimer.unref();
      this.closeIfDrained();
    }
    return done;
  }

  /**
   * Ends the session now: every channel is destroyed (with `error`, or ERR_SESSION_CLOSED), the
   * transport is closed. Idempotent.
   */
  close(error?: DevstreamsError): void {
    if (this.isClosed) return;
    if (error && !this.goAwaySent) {
      // Best effort: tell the peer why before the transport goes.
      this.goAwaySent = true;
      const goAway = encodeStructured(FrameType.GOAWAY, 0, { code: wireFromCode(error.code), message: error.message });
      this.control.push(goAway);
      this.controlBytes += goAway.length + CONTROL_FRAME_COST;
      this.flushLast();
    }
    this.finish(error);
    this.transport.close();
  }

  // ---- ChannelHost ----

  scheduleSend(channel: Channel): void {
    if (this.isClosed) return;
    // Nothing queued but (possibly) its CLOSE: a flush for that alone may wait (closeHoldTurns).
    const closeAlone = channel.pendingBytes === 0;
    this.announce(channel);
    this.scheduler.ready(channel);
    if (channel.pendingBytes <= Math.min(LIGHT_CHANNEL_PENDING, this.peerFramePayload)) {
      // A light channel is talking: the transport below may keep its queues short for a while.
      // Not on a channel's first light write: a bulk connection opens with one (a header, a
      // cookie), an interactive one keeps making them.
      if (this.spokeLight.has(channel)) this.transport.noteLatencySensitive?.();
      else this.spokeLight.add(channel);
      if (this.lightWaiting.length < LIGHT_WAITING_LIMIT && !this.lightWaiting.includes(channel)) this.lightWaiting.push(channel);
      if (!this.gate.open) this.wantLane();
    }
    this.scheduleFlush(closeAlone);
  }

  sendReset(channel: Channel, wireCode: number, reason: string): void {
    if (this.isClosed) return;
    this.announce(channel);
    this.queueControl(encodeReset(channel.id, wireCode, reason));
  }

  consumed(channel: Channel, n: number): void {
    if (this.isClosed) return;
    if (this.channels.get(channel.id) === channel) {
      const before = channel.recvWindow.size;
      const grant = channel.recvWindow.consume(n, this.rtt.minMs);
      if (grant > 0) {
        this.announce(channel);
        if (channel.recvWindow.size > before) this.learnedWindow = Math.max(this.learnedWindow, channel.recvWindow.size);
        this.queueControl(encodeWindow(channel.id, grant));
        // Auto-tuning needs a current round trip, not the one measured at session start.
        this.rtt.refresh();
      }
    }
    this.consumedFromSession(n);
  }

  detach(channel: Channel, unconsumed: number): void {
    if (this.channels.get(channel.id) === channel) {
      clearTimeout(this.unannounced.get(channel.id));
      this.unannounced.delete(channel.id);
      this.channels.delete(channel.id);
      if (channel.outbound) this.outboundCount--;
      else this.inboundCount--;
      this.recentlyClosed.add(channel.id);
      if (this.recentlyClosed.size > RECENTLY_CLOSED_LIMIT) {
        const oldest = this.recentlyClosed.values().next().value as number;
        this.recentlyClosed.delete(oldest);
      }
    }
    if (unconsumed > 0 && !this.isClosed) this.consumedFromSession(unconsumed);
    this.closeIfDrained();
  }

  // ---- inbound ----

  private onMessage(message: Buffer): void {
    if (this.isClosed) return;
    this.stats.bytesReceived += message.length;
    try {
      this.decoder.push(message, this.onFrame);
    } catch (err) {
      this.close(
        err instanceof DevstreamsError
          ? err
          : new DevstreamsError('ERR_INTERNAL', `frame handler failed: ${(err as Error).message}`, { cause: err }),
      );
    }
  }

  private handleHello(payload: Buffer): void {
    if (this.helloReceived) throw new DevstreamsError('ERR_PROTOCOL_STATE', 'HELLO received twice');
    const hello = decodeHello(payload);
    if (hello.version !== PROTOCOL_VERSION)
      throw new DevstreamsError('ERR_PROTOCOL_VERSION', `peer speaks mux version ${hello.version}; this side speaks ${PROTOCOL_VERSION}`);
    if (
      hello.initialWindow < INITIAL_WINDOW ||
      hello.sessionWindow < INITIAL_SESSION_WINDOW ||
      hello.maxFramePayload < MIN_PEER_FRAME_PAYLOAD
    ) {
      throw new DevstreamsError('ERR_PROTOCOL_FRAME', 'HELLO advertises windows or frame size below the protocol minimum');
    }
    this.helloReceived = true;
    this.peerFramePayload = Math.min(hello.maxFramePayload, this.config.maxFramePayload);
    const extraPerChannel = hello.initialWindow - INITIAL_WINDOW;
    this.peerInitialWindow = hello.initialWindow;
    if (extraPerChannel > 0) for (const channel of this.channels.values()) channel.sendCredit += extraPerChannel;
    // Session credit arrives as a WINDOW on channel 0 right behind the HELLO.
  }

  private handleOpen(id: number, payload: Buffer): void {
    const peerParity = this.role === 'initiator' ? 0 : 1;
    if (id === 0 || id % 2 !== peerParity || id <= this.lastPeerChannelId)
      throw new DevstreamsError('ERR_PROTOCOL_CHANNEL', `peer opened channel ${id} out of order or with the wrong parity`);
    this.lastPeerChannelId = id;
    const target = decodeOpen(payload);
    if (this.goAwaySent) {
      this.queueControl(encodeReset(id, wireFromCode('ERR_SESSION_GOAWAY'), 'session is going away'));
      return;
    }
    if (this.inboundCount >= this.config.maxChannels) {
      this.queueControl(encodeReset(id, wireFromCode('ERR_TOO_MANY_CHANNELS'), `at most ${this.config.maxChannels} channels may be open`));
      return;
    }
    const channel = new Channel(
      this,
      id,
      target,
      false,
      this.peerInitialWindow,
      new ReceiveWindow(INITIAL_WINDOW, this.config.maxWindow, CHANNEL_GRANT_FRACTION),
    );
    this.channels.set(id, channel);
    this.inboundCount++;
    // Until the application answers, nobody listens on the channel: a reset or a session end in
    // that window (the device still connecting to the target) must not become an uncaught
    // 'error'. The application sees it as a destroyed channel when it accepts.
    const unanswered = (): void => {};
    channel.on('error', unanswered);
    let answered = false;
    const request: OpenRequest = {
      channelId: id,
      target,
      accept: (options = {}) => {
        if (answered) throw new Error('open request already answered');
        answered = true;
        channel.off('error', unanswered);
        if (channel.destroyed) return channel;
        this.stats.channelsAccepted++;
        const holdMs = options.holdMs ?? 0;
        if (holdMs > 0 && channel.readableLength > 0) {
          this.unannounced.set(id, setTimeout(() => this.announce(channel), holdMs).unref());
          return channel;
        }
        this.queueControl(encodeFrame(FrameType.ACCEPT, id));
        this.startAtLearnedWindow(channel);
        return channel;
      },
      refuse: (code, reason = '') => {
        if (answered) throw new Error('open request already answered');
        answered = true;
        // The listener stays: nobody else ever sees this channel, and the RESET may be what
        // ends the session (ERR_PROTOCOL_FLOOD), which destroys it with an error.
        channel.reset(code, reason);
      },
    };
    if (this.listenerCount('open') === 0) request.refuse('ERR_TARGET_NOT_ALLOWED', 'this side accepts no channels');
    else this.emit('open', request);
  }

  private handleAccept(id: number): void {
    const channel = this.channels.get(id);
    if (!channel) return; // already gone here; our RESET is on its way
    if (!channel.outbound || channel.accepted) throw new DevstreamsError('ERR_PROTOCOL_STATE', `unexpected ACCEPT for channel ${id}`);
    channel.onAccepted();
  }

  private handleData(id: number, payload: Buffer): void {
    const n = payload.length;
    if (!this.sessionRecv.receive(n))
      throw new DevstreamsError('ERR_PROTOCOL_FLOW_CONTROL', `peer sent ${n} bytes beyond the session window`);
    const channel = this.channels.get(id);
    if (!channel) {
      // Data in flight when we closed: count it, give the credit back, answer only if we never knew the id.
      this.consumedFromSession(n);
      if (!this.recentlyClosed.has(id)) this.queueControl(encodeReset(id, wireFromCode('ERR_CHANNEL_RESET'), 'no such channel'));
      return;
    }
    if (!channel.recvWindow.receive(n))
      throw new DevstreamsError('ERR_PROTOCOL_FLOW_CONTROL', `peer sent ${n} bytes beyond channel ${id}'s window`);
    channel.onData(payload);
  }

  private handleWindow(id: number, payload: Buffer): void {
    if (payload.length !== 4) throw frameError('WINDOW payload must be 4 bytes');
    const increment = payload.readUInt32BE(0);
    if (id === 0) {
      this.sessionSendCredit += increment;
      if (this.sessionSendCredit > 0x7fffffff) throw new DevstreamsError('ERR_PROTOCOL_FLOW_CONTROL', 'session window exceeds 2^31-1');
      if (this.scheduler.waiting > 0) {
        // A light channel that found no session credit in the lane gets its turn now, not at
        // the transport's next drain (the lane finds nothing to send when none is light).
        if (!this.gate.open) this.wantLane();
        this.scheduleFlush();
      }
      return;
    }
    const channel = this.channels.get(id);
    if (!channel) return;
    channel.sendCredit += increment;
    if (channel.sendCredit > 0x7fffffff) throw new DevstreamsError('ERR_PROTOCOL_FLOW_CONTROL', `channel ${id} window exceeds 2^31-1`);
    if (channel.hasSendWork) this.scheduleSend(channel);
  }

  private handleClose(id: number): void {
    this.channels.get(id)?.onRemoteClose();
  }

  private handleReset(id: number, payload: Buffer): void {
    const { wireCode, reason } = decodeReset(payload);
    const channel = this.channels.get(id);
    if (!channel) return;
    const code = codeFromWire(wireCode);
    const refused = channel.outbound && !channel.accepted;
    const what = refused ? `open of ${channel.target.host}:${channel.target.port} refused` : 'channel reset by peer';
    channel.onReset(code, reason ? `${what}: ${reason}` : what);
  }

  private handlePing(payload: Buffer): void {
    if (payload.length !== 8) throw frameError('PING payload must be 8 bytes');
    this.queueControl(encodePing(FrameType.PONG, payload));
  }

  private handlePong(payload: Buffer): void {
    if (payload.length !== 8) throw frameError('PONG payload must be 8 bytes');
    const minRtt = this.rtt.onPong(payload);
    if (minRtt !== undefined) this.emit('rtt', minRtt);
  }

  private handleGoAway(payload: Buffer): void {
    const { code: wire, message } = decodeGoAway(payload);
    this.goAwayReceived = true;
    const code = codeFromWire(wire);
    this.emit('goaway', code, message);
    if (wire !== 0) {
      // The peer is ending the session on an error. It should close the transport right behind
      // this; we close our end too, so a peer that does not cannot keep it open.
      this.finish(new DevstreamsError(code, `peer ended the session: ${message}`));
      this.transport.close();
      return;
    }
    this.closeIfDrained();
  }

  private onTransportClose(error?: Error): void {
    if (this.isClosed) return;
    const drained = (this.goAwaySent || this.goAwayReceived) && this.channels.size === 0;
    if (drained && !error) this.finish();
    else
      this.finish(
        new DevstreamsError('ERR_SESSION_CLOSED', error ? `transport closed: ${error.message}` : 'transport closed', { cause: error }),
      );
  }

  // ---- outbound ----

  private queueControl(frame: Buffer): void {
    if (this.isClosed) return;
    this.control.push(frame);
    this.controlBytes += frame.length + CONTROL_FRAME_COST;
    if (this.controlBytes > this.config.maxControlBacklog) {
      // The backlog counts answers a transport does not take: offer those it would take now,
      // rather than wait for the flush at the end of this loop turn (one socket read can hold
      // more PINGs than the backlog has room for answers).
      if (this.gate.open && !this.flushing) this.flush();
      if (this.controlBytes > this.config.maxControlBacklog) {
        this.flooded();
        return;
      }
    }
    if (!this.gate.open) this.wantLane();
    this.scheduleFlush();
  }

  /**
   * The peer provoked more answers than maxControlBacklog and does not read them. Telling it why
   * would queue behind the very backlog it does not read: the transport is torn down at once,
   * which also frees what it buffered.
   */
  private flooded(): void {
    const error = new DevstreamsError(
      'ERR_PROTOCOL_FLOOD',
      `peer provoked more than ${this.config.maxControlBacklog} bytes of control answers without reading them`,
    );
    this.finish(error);
    this.transport.close(error);
  }

  /** Queues the ACCEPT of a channel accepted with a hold (AcceptOptions), if it is still held. */
  private announce(channel: Channel): void {
    if (this.unannounced.size === 0) return;
    const timer = this.unannounced.get(channel.id);
    if (timer === undefined || this.channels.get(channel.id) !== channel) return;
    clearTimeout(timer);
    this.unannounced.delete(channel.id);
    this.queueControl(encodeFrame(FrameType.ACCEPT, channel.id));
    this.startAtLearnedWindow(channel);
  }

  /** Raises a new channel's receive window to what earlier channels learned the path needs. */
  private startAtLearnedWindow(channel: Channel): void {
    const extra = channel.recvWindow.raiseTo(this.learnedWindow);
    if (extra > 0) this.queueControl(encodeWindow(channel.id, extra));
  }

  private consumedFromSession(n: number): void {
    const grant = this.sessionRecv.consume(n, undefined);
    if (grant > 0) this.queueControl(encodeWindow(0, grant));
  }

  private wantLane(): void {
    if (this.laneLeft > 0) this.laneWanted = true;
  }

  /** `closeAlone`: the work is a channel's CLOSE with nothing queued before it (see closeHoldTurns). */
  private scheduleFlush(closeAlone = false): void {
    if (!closeAlone) this.onlyCloses = false;
    if (this.flushScheduled || !(this.gate.open || this.laneWanted)) return;
    this.flushScheduled = true;
    setImmediate(this.flushLater);
  }

  private readonly flushLater = (): void => {
    this.flushScheduled = false;
    if (this.gate.open) {
      if (this.onlyCloses && this.control.length === 0 && this.closeHeldTurns < this.config.closeHoldTurns) {
        this.closeHeldTurns++;
        this.flushScheduled = true;
        setImmediate(this.flushLater);
        return;
      }
      this.onlyCloses = true;
      this.closeHeldTurns = 0;
      this.flush();
    } else if (this.laneWanted) this.flushLane();
  };

  /**
   * The transport is blocked: sends what is light (control frames, then channels with little
   * queued) within what is left of the lane, as one message. The transport takes it (a send past
   * backpressure is buffered, not refused); its answer changes nothing, the gate is closed already.
   */
  private flushLane(): void {
    this.laneWanted = false;
    if (this.transport.closed) return;
    const limit = Math.min(this.batchLimit, this.laneLeft);
    const parts: Buffer[] = [];
    let size = this.takeControl(parts, limit, false);
    // A channel's frames never pass a control frame left behind: it may be that channel's OPEN
    // or ACCEPT (a CLOSE before the ACCEPT ends the opener's session).
    if (this.control.length === 0) {
      const light = Math.min(LIGHT_CHANNEL_PENDING, this.peerFramePayload);
      const filled = this.scheduler.fillLight(parts, size, limit, this.sessionSendCredit, light);
      this.sessionSendCredit -= filled.taken;
      size = filled.size;
    }
    if (parts.length === 0) return;
    this.laneLeft -= size;
    this.send(parts, size); // the gate is closed already; an accepted send does not open it
    this.lightTaken(); // forgets the light channels the lane took: no flush turn to end for them
  }

  /**
   * Moves queued control frames into `parts`, oldest first, while they fit in `limit` (the first
   * one whatever its size when `firstAlways`, so a batch is never empty for want of room);
   * returns their bytes. Frames left stay queued in order.
   */
  private takeControl(parts: Buffer[], limit: number, firstAlways: boolean): number {
    let size = 0;
    let c = 0;
    while (c < this.control.length && ((firstAlways && size === 0) || size + this.control[c]!.length <= limit)) {
      const frame = this.control[c++]!;
      parts.push(frame);
      size += frame.length;
    }
    this.controlBytes -= size + c * CONTROL_FRAME_COST;
    this.control = c === this.control.length ? [] : this.control.slice(c);
    return size;
  }

  /** The last frames before the transport closes: past its backpressure they may still go in the lane. */
  private flushLast(): void {
    if (this.gate.open) this.flush();
    else this.flushLane();
  }

  /** Writes batches while there is work and the transport takes it. */
  private flush(): void {
    this.flushing = true;
    try {
      this.flushBatches();
    } finally {
      this.flushing = false;
    }
  }

  private flushBatches(): void {
    const limit = this.batchLimit;
    while (this.gate.open && !this.transport.closed) {
      const parts: Buffer[] = [];
      // Control frames first: they are small and unblock the peer (credit, pongs, resets).
      let size = this.takeControl(parts, limit, true);
      if (parts.length > 0 && this.control.length > 0) {
        this.send(parts, size);
        continue;
      }
      const filled = this.scheduler.fill(parts, size, limit, this.sessionSendCredit, this.peerFramePayload);
      this.sessionSendCredit -= filled.taken;
      size = filled.size;
      if (parts.length === 0) return;
      this.send(parts, size);
      if (this.lightTaken() && this.scheduler.waiting > 0) {
        // The batch with a keystroke in it is out of this turn: the transport below may hold
        // what a turn sends until the turn ends (one writev), and the bulk batches still to seal
        // would hold it too. They follow in the next turn.
        this.scheduleFlush();
        return;
      }
    }
  }

  /**
   * True once every light channel that queued data since the last time has had it taken, or can
   * take no more for want of its peer's credit (then forgets them): one whose reader stopped would
   * otherwise stay waiting for good and no keystroke would end a turn again.
   */
  private lightTaken(): boolean {
    if (this.lightWaiting.length === 0) return false;
    for (const channel of this.lightWaiting) if (channel.pendingBytes > 0 && channel.sendCredit > 0 && !channel.destroyed) return false;
    this.lightWaiting = [];
    return true;
  }

  private send(parts: Buffer[], size: number): void {
    this.stats.bytesSent += size;
    this.stats.messagesSent++;
    // A closed transport refuses too, but no drain will follow: the loop stops on `closed` instead.
    this.gate.sent(this.transport.send(parts) || this.transport.closed);
  }

  private closeIfDrained(): void {
    if (this.isClosed || !(this.goAwaySent || this.goAwayReceived) || this.channels.size > 0) return;
    // Let queued frames (the last CLOSEs, our GOAWAY) reach the transport before closing it.
    queueMicrotask(() => {
      if (this.isClosed || this.channels.size > 0) return;
      this.flushLast();
      this.finish();
      this.transport.close();
    });
  }

  private finish(error?: DevstreamsError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    clearInterval(this.keepaliveTimer);
    this.rtt.stop();
    clearTimeout(this.goAwayTimer);
    for (const timer of this.unannounced.values()) clearTimeout(timer);
    this.unannounced.clear();
    this.scheduler.clear();
    this.control = [];
    this.controlBytes = 0;
    // A deliberate local close ends channels quietly (like destroying sockets); any other end is an error on each.
    for (const channel of [...this.channels.values()]) channel.onSessionEnd(error);
    this.channels.clear();
    for (const resolve of this.goAwayWaiters) resolve();
    this.goAwayWaiters = [];
    this.emit('close', error);
  }
}
