/**
 * Hands out the one session a service proxy keeps per device: opened on first use (or eagerly),
 * shared by every connection, and opened again on the next use after it fails or closes.
 * Connections that arrive while it opens wait for it, up to a timeout.
 */
import type { Session } from '../mux/index.js';
import { DevstreamsError } from '../errors.js';

/** How the source opens a session, how long callers wait for it, and who hears its state. */
export interface SessionSourceOptions {
  /** Opens a new session (hub round trip, handshake). */
  open(): Promise<Session>;
  /** How long a connection waits for the session to open. Default 30 s. */
  waitTimeoutMs?: number;
  /** Told when a session opens or ends. */
  onState?(state: 'opening' | 'open' | 'closed', error?: Error): void;
}

/** The one shared, reopened-on-demand session to a device (see the module comment). */
export class SessionSource {
  private current: Session | undefined;
  private opening: Promise<Session> | undefined;

  constructor(private readonly options: SessionSourceOptions) {}

  /** The open session, opening one if needed. */
  get(): Promise<Session> {
    if (this.current && !this.current.closed) return Promise.resolve(this.current);
    this.opening ??= this.openNow();
    const timeoutMs = this.options.waitTimeoutMs ?? 30_000;
    return new Promise<Session>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new DevstreamsError('ERR_HUB_UNAVAILABLE', `device stream did not open within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.opening!.then(
        (session) => {
          clearTimeout(timer);
          resolve(session);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  /** The session if one is open now, without opening. */
  peek(): Session | undefined {
    return this.current && !this.current.closed ? this.current : undefined;
  }

  /** Gracefully ends the current session. */
  async close(): Promise<void> {
    const session = this.current ?? (await this.opening?.catch(() => undefined));
    this.current = undefined;
    if (session && !session.closed) await session.goAway('service proxy stopping');
  }

  private async openNow(): Promise<Session> {
    this.options.onState?.('opening');
    try {
      const session = await this.options.open();
      this.current = session;
      this.options.onState?.('open');
      // A session the peer is retiring (GOAWAY) finishes its channels, but new connections
      // should not be refused meanwhile: the next get() opens a fresh session.
      session.once('goaway', () => {
        if (this.current === session) this.current = undefined;
      });
      session.once('close', (error) => {
        if (this.current === session) this.current = undefined;
        this.options.onState?.('closed', error);
      });
      return session;
    } catch (err) {
      this.options.onState?.('closed', err as Error);
      throw err;
    } finally {
      this.opening = undefined;
    }
  }
}
