// Child-process entry: a bulk sender for the interactive scenario, so that the saturating
// transfer does not share the event loop of the connection being timed. Args: sink port,
// time limit in ms. Prints {"started":true} once sending, and {"bytes","seconds"} when it
// ends (time limit, or SIGTERM).
import { bulkSend } from '../scenarios/net.js';

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  const timeoutMs = Number(process.argv[3]);
  const stop = new AbortController();
  process.on('SIGTERM', () => stop.abort());
  process.on('SIGINT', () => stop.abort());
  const run = bulkSend(port, Number.MAX_SAFE_INTEGER, timeoutMs, stop.signal);
  process.stdout.write(`${JSON.stringify({ started: true })}\n`);
  const r = await run;
  process.stdout.write(`${JSON.stringify({ bytes: r.bytes, seconds: r.seconds })}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`bulk: ${String(err)}\n`);
  process.exit(1);
});
