/**
 * A channel's life on this side (docs/PROTOCOL.md, "Channel states"), and every transition of
 * it in one table, as yamux keeps `streamState`. The channel asks `nextChannelState` before it
 * acts on a frame or a local call; an event a state does not list is a protocol violation when
 * the peer caused it. The accepting side's PENDING (the application has not answered the OPEN)
 * lives in the session's OpenRequest: the channel is created OPEN there and handed out on accept.
 */

/** Where a channel is in its life. */
export const ChannelState = {
  /** We sent OPEN and no answer came yet; DATA may already go within the starting credit. */
  Opening: 'opening',
  /** Still no answer, and our CLOSE went too: the opener wrote all it had before the ACCEPT. */
  OpeningHalfClosedLocal: 'opening-half-closed-local',
  /** Both directions flow. */
  Open: 'open',
  /** We sent CLOSE; the peer may still send. */
  HalfClosedLocal: 'half-closed-local',
  /** The peer sent CLOSE; we may still send. */
  HalfClosedRemote: 'half-closed-remote',
  /** Both sides sent CLOSE: finished cleanly. */
  Closed: 'closed',
  /** Aborted: a RESET went or came, or the session ended. No RESET is sent from here on. */
  Reset: 'reset',
} as const;
/** One of the ChannelState values. */
export type ChannelState = (typeof ChannelState)[keyof typeof ChannelState];

/** What moves a channel: an ACCEPT or CLOSE from the peer, our CLOSE, or an abort either way. */
export type ChannelEvent = 'recv-accept' | 'send-close' | 'recv-close' | 'reset';

const S = ChannelState;

/** A state maps to itself for an event it ignores (a second CLOSE, a reset of a reset channel). */
const TRANSITIONS: Readonly<Record<ChannelState, Readonly<Partial<Record<ChannelEvent, ChannelState>>>>> = {
  [S.Opening]: { 'recv-accept': S.Open, 'send-close': S.OpeningHalfClosedLocal, reset: S.Reset },
  [S.OpeningHalfClosedLocal]: { 'recv-accept': S.HalfClosedLocal, reset: S.Reset },
  [S.Open]: { 'send-close': S.HalfClosedLocal, 'recv-close': S.HalfClosedRemote, reset: S.Reset },
  [S.HalfClosedLocal]: { 'recv-close': S.Closed, reset: S.Reset },
  [S.HalfClosedRemote]: { 'send-close': S.Closed, 'recv-close': S.HalfClosedRemote, reset: S.Reset },
  // A RESET after a clean close still goes (the application asked for it); the peer drops it.
  [S.Closed]: { 'recv-close': S.Closed, reset: S.Reset },
  [S.Reset]: { 'recv-close': S.Reset, reset: S.Reset },
};

/** The state after `event`, or undefined when `event` is not allowed in `state`. */
export function nextChannelState(state: ChannelState, event: ChannelEvent): ChannelState | undefined {
  return TRANSITIONS[state][event];
}

/** True while the peer may still send DATA on the channel. */
export function peerMaySend(state: ChannelState): boolean {
  return state === S.Opening || state === S.OpeningHalfClosedLocal || state === S.Open || state === S.HalfClosedLocal;
}

/** True before the peer's ACCEPT (only an opener's channel is ever there). */
export function awaitingAccept(state: ChannelState): boolean {
  return state === S.Opening || state === S.OpeningHalfClosedLocal;
}
