/**
 * Device presence and stream tickets behind interfaces, so that one hub node keeps them in
 * memory now and a fleet can keep them in a shared store (Redis) later. Methods may return a
 * value or a promise; callers always `await`. Live sockets never go through these interfaces:
 * they stay on the node that accepted them.
 */
import { timingSafeEqual } from 'node:crypto';

/** Which hub node holds each connected device's control socket. */
export interface PresenceStore {
  /** Marks `deviceId` online at `nodeId` (replacing any earlier entry). */
  setOnline(deviceId: string, nodeId: string): Promise<void> | void;
  /** Marks `deviceId` offline, only if it is still recorded at `nodeId`. */
  setOffline(deviceId: string, nodeId: string): Promise<void> | void;
  /** The node holding the device's control socket, or undefined when offline. */
  nodeOf(deviceId: string): Promise<string | undefined> | string | undefined;
}

/** One side of a stream. */
export type StreamSide = 'device' | 'service';

/** An accepted stream waiting for its two sides to connect. */
export interface StreamTicket {
  streamId: string;
  deviceId: string;
  streamName: string;
  /** Single-use bearer token per side (raw bytes). */
  deviceToken: Buffer;
  serviceToken: Buffer;
  /** Tokens are refused after this time (ms since epoch). */
  expiresAt: number;
}

/** Outcome of presenting a stream token: the side it belongs to, or why it was refused. */
export type ClaimResult = { ok: true; side: StreamSide } | { ok: false; why: 'unknown' | 'invalid' | 'reused' | 'expired' };

/** Single-use stream tickets. */
export interface StreamRouter {
  /** Records a ticket; it is forgotten after `expiresAt` or `drop`. */
  put(ticket: StreamTicket): Promise<void> | void;
  /** Spends one side's token of `streamId` (constant-time compare); a token works once. */
  claim(streamId: string, token: Buffer, now: number): Promise<ClaimResult> | ClaimResult;
  /**
   * Moves a ticket's expiry (used tokens stay used): a token's life starts when it is handed
   * out, and the service's token is handed out only when the device has answered.
   */
  extend(streamId: string, expiresAt: number): Promise<void> | void;
  /** Forgets a ticket. */
  drop(streamId: string): Promise<void> | void;
}

/** In-memory presence for a single hub node. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly nodes = new Map<string, string>();

  setOnline(deviceId: string, nodeId: string): void {
    this.nodes.set(deviceId, nodeId);
  }

  setOffline(deviceId: string, nodeId: string): void {
    if (this.nodes.get(deviceId) === nodeId) this.nodes.delete(deviceId);
  }

  nodeOf(deviceId: string): string | undefined {
    return this.nodes.get(deviceId);
  }

  get size(): number {
    return this.nodes.size;
  }
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

interface HeldTicket {
  ticket: StreamTicket;
  deviceUsed: boolean;
  serviceUsed: boolean;
  timer: NodeJS.Timeout;
}

/** In-memory tickets for a single hub node; each ticket is dropped by a timer at expiry. */
export class MemoryStreamRouter implements StreamRouter {
  private readonly tickets = new Map<string, HeldTicket>();

  put(ticket: StreamTicket): void {
    this.tickets.set(ticket.streamId, { ticket, deviceUsed: false, serviceUsed: false, timer: this.expiry(ticket) });
  }

  extend(streamId: string, expiresAt: number): void {
    const held = this.tickets.get(streamId);
    if (!held) return;
    clearTimeout(held.timer);
    held.ticket = { ...held.ticket, expiresAt };
    held.timer = this.expiry(held.ticket);
  }

  private expiry(ticket: StreamTicket): NodeJS.Timeout {
    const timer = setTimeout(() => this.tickets.delete(ticket.streamId), Math.max(0, ticket.expiresAt - Date.now()) + 1000);
    timer.unref();
    return timer;
  }

  claim(streamId: string, token: Buffer, now: number): ClaimResult {
    const held = this.tickets.get(streamId);
    if (!held) return { ok: false, why: 'unknown' };
    const side = sameBytes(token, held.ticket.deviceToken) ? 'device' : sameBytes(token, held.ticket.serviceToken) ? 'service' : undefined;
    if (side === undefined) return { ok: false, why: 'invalid' };
    if (side === 'device' ? held.deviceUsed : held.serviceUsed) return { ok: false, why: 'reused' };
    if (now > held.ticket.expiresAt) return { ok: false, why: 'expired' };
    if (side === 'device') held.deviceUsed = true;
    else held.serviceUsed = true;
    return { ok: true, side };
  }

  drop(streamId: string): void {
    const held = this.tickets.get(streamId);
    if (!held) return;
    clearTimeout(held.timer);
    this.tickets.delete(streamId);
  }

  get size(): number {
    return this.tickets.size;
  }
}
