/**
 * One full garbage collection when a proxy has finished starting, while it is idle.
 *
 * Starting a proxy (modules, the hub's HTTP exchange, the handshake, the session) allocates about
 * 8 MB, and part of it lives on in V8's young generation. The young generation's next collection
 * then copies and promotes that (measured: 1.2 MB promoted, a 2-7 ms pause on the main thread),
 * and it comes when the first connections' own allocations fill the space: inside the first few
 * dozen connections after start, on one of them. A full collection right after the stream opens
 * moves that into the idle moment after start (about 10 ms), and later young collections copy
 * only what connections leave behind. It warms no code: every connection still runs what it ran.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** Environment variable that turns the collection off when `0`. */
export const STARTUP_GC_ENV = 'DEVSTREAMS_STARTUP_GC';

let done = false;

/**
 * Runs one full collection in a later turn of the loop (after what the caller's turn writes), the
 * first time it is called in this process; later calls do nothing. Off when DEVSTREAMS_STARTUP_GC=0.
 */
export function collectStartupGarbage(env: NodeJS.ProcessEnv = process.env): void {
  if (done || env[STARTUP_GC_ENV] === '0') return;
  done = true;
  setImmediate(() => {
    // The gc() function exists only in contexts made after --expose-gc is set: take it from one.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as (() => void) | undefined;
    v8.setFlagsFromString('--no-expose-gc');
    gc?.();
  });
}
