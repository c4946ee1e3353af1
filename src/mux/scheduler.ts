/**
 * The fair scheduler: decides whose DATA goes into the next transport message. Channels with
 * data (or a pending CLOSE) wait in a ring and take turns; a turn is one slice of at most
 * `schedulerSlice` bytes while others wait, or a whole frame when the channel is alone. A channel
 * out of channel credit leaves the ring until its WINDOW arrives; when the session is out of
 * credit, the channel whose turn it is keeps it. Control frames never come through here: the
 * session sends them first.
 */
import type { Channel } from './channel.js';
import { FrameType, HEADER_SIZE } from './constants.js';
import { writeHeader } from './frame.js';
import { ReadyRing } from './ring.js';
import { trace } from '../util/trace.js';

/** What one fill took: the batch's new size and the DATA bytes (session credit) it used. */
export interface FillResult {
  size: number;
  taken: number;
}

/** Takes turns between channels with data to send (see the module comment). */
export class DataScheduler {
  private readonly ring = new ReadyRing<Channel>();

  constructor(private readonly slice: number) {}

  /** Channels waiting for a turn. */
  get waiting(): number {
    return this.ring.size;
  }

  /** The channel has data or a CLOSE to send (no-op when it already waits). */
  ready(channel: Channel): void {
    this.ring.push(channel);
  }

  clear(): void {
    this.ring.clear();
  }

  /**
   * Appends DATA and CLOSE frames to `parts` until the batch reaches `limit` bytes, the ring is
   * empty, or the session runs out of credit.
   * @param size bytes already in the batch (control frames)
   * @param sessionCredit bytes the session may still send
   * @param framePayload largest DATA payload the peer accepts
   */
  fill(parts: Buffer[], size: number, limit: number, sessionCredit: number, framePayload: number): FillResult {
    let taken = 0;
    while (this.ring.size > 0 && limit - size > HEADER_SIZE) {
      const channel = this.ring.shift()!;
      if (channel.destroyed) continue;
      if (channel.pendingBytes > 0) {
        // Alone in the ring a channel may fill a whole frame; with others waiting it gets a slice.
        const turn = this.ring.size === 0 ? framePayload : Math.min(this.slice, framePayload);
        const room = Math.min(turn, limit - size - HEADER_SIZE, channel.sendCredit, sessionCredit - taken);
        if (room <= 0) {
          if (sessionCredit - taken <= 0 && channel.sendCredit > 0) {
            this.ring.unshift(channel); // keeps its turn for when session credit arrives
            break;
          }
          if (limit - size - HEADER_SIZE < 1) this.ring.unshift(channel);
          continue; // out of channel credit: back in the ring when its WINDOW arrives
        }
        const n = appendData(parts, channel, room);
        taken += n;
        size += HEADER_SIZE + n;
      }
      if (channel.takeClose()) size += appendClose(parts, channel);
      else if (channel.pendingBytes > 0 && channel.sendCredit > 0) {
        this.ring.push(channel);
      }
    }
    return { size, taken };
  }

  /**
   * Appends the whole queue (and CLOSE) of every channel that has at most `maxPending` bytes
   * queued and fits, within `limit`; the others keep their place in the ring, in their order.
   * For the light lane: frames that pass a blocked transport (see MuxConfig.lightLaneBytes).
   */
  fillLight(parts: Buffer[], size: number, limit: number, sessionCredit: number, maxPending: number): FillResult {
    let taken = 0;
    for (let n = this.ring.size; n > 0; n--) {
      const channel = this.ring.shift()!;
      if (channel.destroyed) continue;
      const pending = channel.pendingBytes;
      const fits =
        pending <= maxPending &&
        pending <= channel.sendCredit &&
        pending <= sessionCredit - taken &&
        size + 2 * HEADER_SIZE + pending <= limit;
      if (!fits) {
        this.ring.push(channel);
        continue;
      }
      if (pending > 0) {
        const got = appendData(parts, channel, pending);
        taken += got;
        size += HEADER_SIZE + got;
      }
      if (channel.takeClose()) size += appendClose(parts, channel);
    }
    return { size, taken };
  }
}

/** Appends a DATA frame of up to `max` of the channel's queued bytes; returns the payload bytes taken. */
function appendData(parts: Buffer[], channel: Channel, max: number): number {
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  parts.push(header);
  const n = channel.takeData(max, parts);
  // The channel's bytes leave its queue for a batch (the round-trip breakdown's 'mux queue'),
  // through either fill: the breakdown follows a keystroke by it.
  trace?.(`mux.take ${channel.id} ${n}`);
  writeHeader(header, 0, FrameType.DATA, channel.id, n);
  return n;
}

/** Appends the channel's CLOSE frame (its takeClose said it is due); returns the bytes added. */
function appendClose(parts: Buffer[], channel: Channel): number {
  const close = Buffer.allocUnsafe(HEADER_SIZE);
  writeHeader(close, 0, FrameType.CLOSE, channel.id, 0);
  parts.push(close);
  return HEADER_SIZE;
}
