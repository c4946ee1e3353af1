/**
 * Hands `parts` to `emit` in order, with runs of small parts joined into one buffer first: each
 * emit (a cipher update, a socket write) has a fixed cost and allocates, so small pieces (frame
 * headers, small frames) are worth one copy, large payloads are passed as they are. A run is
 * emitted once it reaches `below` bytes. Empty parts are skipped.
 */
export function coalesceSmall(parts: readonly Uint8Array[], below: number, emit: (chunk: Uint8Array) => void): void {
  let run: Uint8Array[] = [];
  let runBytes = 0;
  const emitRun = (): void => {
    if (runBytes === 0) return;
    emit(run.length === 1 ? run[0]! : Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const part of parts) {
    if (part.length === 0) continue;
    if (part.length < below) {
      run.push(part);
      runBytes += part.length;
      if (runBytes >= below) emitRun();
    } else {
      emitRun();
      emit(part);
    }
  }
  emitRun();
}
