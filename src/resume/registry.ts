/**
 * The device's table of resumable sessions it holds, by session id, so a resume stream can find
 * the session it continues. An entry leaves the table when its session closes (orderly, or given
 * up after the give-up time).
 */
import type { ResumableTransport } from './resumable-transport.js';

/** The resumable sessions a device holds, by session id. */
export class ResumeRegistry<T extends { resumable: ResumableTransport }> {
  private readonly sessions = new Map<string, T>();

  /** Adds `entry` once its session id is known; removes it when its session closes. */
  add(entry: T): void {
    const r = entry.resumable;
    const put = (): void => {
      const id = r.sessionId;
      if (id === undefined || r.state === 'closed') return;
      this.sessions.set(id, entry);
      r.events.once('closed', () => this.sessions.delete(id));
    };
    if (r.sessionId !== undefined) put();
    else r.events.once('init', put);
  }

  /** Removes entries whose session has closed (closes are also caught by 'closed'). */
  get(sessionId: string): T | undefined {
    const e = this.sessions.get(sessionId);
    if (e && e.resumable.state === 'closed') {
      this.sessions.delete(sessionId);
      return undefined;
    }
    return e;
  }

  delete(sessionId: string): void {
    this.sessions.delete(sessionId);
  }

  get size(): number {
    for (const [id, e] of this.sessions) if (e.resumable.state === 'closed') this.sessions.delete(id);
    return this.sessions.size;
  }
}
