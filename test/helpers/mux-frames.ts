// Frames a test plays the peer with: the HELLO a default peer sends, and an OPEN.
import { FrameType, INITIAL_SESSION_WINDOW, INITIAL_WINDOW, MAX_FRAME_PAYLOAD_LIMIT, PROTOCOL_VERSION } from '../../src/mux/constants.js';
import { encodeStructured } from '../../src/mux/frame.js';

/** The HELLO of a peer with the default windows and frame size. */
export function helloFrame(): Buffer {
  return encodeStructured(FrameType.HELLO, 0, {
    version: PROTOCOL_VERSION,
    initialWindow: INITIAL_WINDOW,
    sessionWindow: INITIAL_SESSION_WINDOW,
    maxFramePayload: MAX_FRAME_PAYLOAD_LIMIT,
  });
}

/** An OPEN of channel `id` to 127.0.0.1:`port`. */
export function openFrame(id: number, port: number): Buffer {
  return encodeStructured(FrameType.OPEN, id, { host: '127.0.0.1', port });
}
