/**
 * Shared by the mux throughput bench and its peer process: the implementations compared, the
 * parent<->peer IPC messages, and the per-stream reply format ("done <bytes>").
 */

/** What carries the bulk bytes: plain sockets, our mux (Session over TcpTransport), or yamux. */
export type MuxImpl = 'raw' | 'mux' | 'yamux';
export const MUX_IMPLS: readonly MuxImpl[] = ['raw', 'mux', 'yamux'];

/** Parent -> peer. */
export type PeerCommand = { type: 'listen'; impl: MuxImpl } | { type: 'stop' } | { type: 'exit' };

/** Peer -> parent. */
/** `cpuMicros`: the peer's user+system CPU time since its `listen`, for CPU cost per byte. */
export type PeerReport = { type: 'listening'; port: number } | { type: 'stopped'; cpuMicros: number } | { type: 'error'; message: string };

/** The reply a peer stream sends after the sender's end: how many bytes it sank. */
export function encodeReply(bytes: number): Buffer {
  return Buffer.from(`done ${bytes}\n`);
}

/** Parses a reply; throws when it is not one. */
export function parseReply(text: string): number {
  const match = /^done (\d+)\n$/.exec(text);
  if (!match) throw new Error(`bad reply from peer: ${JSON.stringify(text.slice(0, 80))}`);
  return Number(match[1]);
}
