// An ACCEPT held for the channel's first frame (AcceptOptions.holdMs): it leaves in the same
// message as that frame, always ahead of it, and on its own once the hold runs out.
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, HEADER_SIZE } from '../src/mux/constants.js';
import { type Channel, type OpenRequest, Session } from '../src/mux/index.js';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import { DelegatingTransport } from './helpers/delegating-transport.js';

/** Remembers the frames of every message sent, one list of [type, channel] per message. */
class RecordingTransport extends DelegatingTransport {
  readonly messages: Array<Array<[number, number]>> = [];
  override send(parts: readonly Buffer[]): boolean {
    const buf = Buffer.concat(parts);
    const frames: Array<[number, number]> = [];
    for (let at = 0; at + HEADER_SIZE <= buf.length; at += HEADER_SIZE + buf.readUInt32BE(at + 6))
      frames.push([buf[at]!, buf.readUInt32BE(at + 2)]);
    this.messages.push(frames);
    return super.send(parts);
  }
}

const sessions: Session[] = [];
afterEach(() => {
  for (const s of sessions.splice(0)) s.close();
});

/** An opener and an acceptor over memory transports; the acceptor's sends are recorded. */
function pair(onOpen: (request: OpenRequest) => void) {
  const [a, b] = createMemoryTransportPair();
  const recorder = new RecordingTransport(b);
  const opener = new Session(a, { role: 'initiator', keepaliveIntervalMs: 0 });
  const acceptor = new Session(recorder, { role: 'responder', keepaliveIntervalMs: 0, onOpen });
  sessions.push(opener, acceptor);
  return { opener, recorder };
}

/** The messages that carry frames of channel `id`, as lists of frame types. */
const messagesOf = (recorder: RecordingTransport, id: number): number[][] =>
  recorder.messages.filter((m) => m.some(([, ch]) => ch === id)).map((m) => m.filter(([, ch]) => ch === id).map(([type]) => type));

describe('an ACCEPT held for the channel’s first frame', () => {
  it('leaves in one message with the first DATA when the opener sent data with its OPEN', async () => {
    const { opener, recorder } = pair((request) => {
      const channel = request.accept({ holdMs: 60_000 });
      channel.once('data', (d: Buffer) => channel.write(Buffer.concat([Buffer.from('echo:'), d])));
    });
    const channel = opener.openChannel({ host: '127.0.0.1', port: 1 });
    channel.write('hello');
    const [reply] = (await once(channel, 'data')) as [Buffer];
    expect(reply.toString()).toBe('echo:hello');
    expect(channel.accepted).toBe(true);
    expect(messagesOf(recorder, channel.id)[0]).toEqual([FrameType.ACCEPT, FrameType.DATA]);
  });

  it('goes ahead of a CLOSE, and of a RESET, that comes first', async () => {
    const { opener, recorder } = pair((request) => {
      const channel = request.accept({ holdMs: 60_000 });
      channel.resume();
      if (request.target.port === 1) channel.end();
      else channel.reset('ERR_CHANNEL_RESET', 'gone');
    });
    const closing = opener.openChannel({ host: '127.0.0.1', port: 1 });
    closing.end('bye');
    closing.resume();
    await once(closing, 'end');
    const resetting = opener.openChannel({ host: '127.0.0.1', port: 2 });
    resetting.write('hi');
    const [err] = (await once(resetting, 'error')) as [{ code: string }];
    expect(err.code).toBe('ERR_CHANNEL_RESET');
    expect(messagesOf(recorder, closing.id)[0]).toEqual([FrameType.ACCEPT, FrameType.CLOSE]);
    expect(messagesOf(recorder, resetting.id)[0]).toEqual([FrameType.ACCEPT, FrameType.RESET]);
  });

  it('goes on its own when the hold runs out', async () => {
    let accepted: Channel | undefined;
    const { opener, recorder } = pair((request) => {
      accepted = request.accept({ holdMs: 5 });
    });
    const channel = opener.openChannel({ host: '127.0.0.1', port: 1 });
    channel.write('hello');
    await once(channel, 'accepted');
    expect(messagesOf(recorder, channel.id)).toEqual([[FrameType.ACCEPT]]);
    expect(accepted?.read()?.toString()).toBe('hello');
  });

  it('is not held when the opener sent nothing yet (it may be waiting for the answer)', async () => {
    const { opener, recorder } = pair((request) => void request.accept({ holdMs: 60_000 }));
    const channel = opener.openChannel({ host: '127.0.0.1', port: 1 });
    await once(channel, 'accepted');
    expect(messagesOf(recorder, channel.id)).toEqual([[FrameType.ACCEPT]]);
  });
});
