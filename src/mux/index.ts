/** The multiplexer: many channels (Duplex streams) over one message transport. */
export {
  Session,
  type SessionOptions,
  type SessionRole,
  type OpenRequest,
  type AcceptOptions,
  type SessionStats,
  type SessionEvents,
} from './session.js';
export { Channel } from './channel.js';
export { DEFAULT_MUX_CONFIG, resolveMuxConfig, type MuxConfig } from './config.js';
export type { ChannelTarget } from './frame.js';
export { PROTOCOL_VERSION, INITIAL_WINDOW, HEADER_SIZE, FrameType } from './constants.js';
