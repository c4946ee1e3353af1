// Micro-benchmark modules with tinybench: a bench module lists tasks (a name, an async or sync
// function, optional bytes per call), and gets a RESULTS.md section with ops/s, mean latency and
// MB/s. The mux (frame encode/decode) and the crypto (seal/open inline and on workers) register
// theirs the same way: `registerMicroModule({ id: 'mux-micro', title, order, tasks })`.
import { Bench } from 'tinybench';
import { markdownTable } from './markdown-table.js';
import { registerModule, type Goal, type ModuleContext } from './report/registry.js';

export interface MicroTask {
  readonly name: string;
  /** One operation; may be async. */
  readonly fn: () => unknown;
  /** Payload bytes one call moves (for MB/s); 0 or absent to omit. */
  readonly bytes?: number;
}

export interface MicroSuite {
  readonly tasks: readonly MicroTask[];
  /** Releases sockets, workers, ... after the run. */
  teardown?(): Promise<void>;
}

export interface MicroRow {
  readonly name: string;
  readonly opsPerSec: number;
  readonly meanUs: number;
  readonly MBps?: number;
  readonly samples: number;
  readonly error?: string;
}

/** Time per task in ms (tinybench keeps sampling until both this and MICRO_MIN_ITERATIONS are reached). */
export const MICRO_TIME_MS = { quick: 150, full: 1_000 } as const;
export const MICRO_MIN_ITERATIONS = 8;

async function runSuite(suite: MicroSuite, ctx: ModuleContext): Promise<MicroRow[]> {
  const bench = new Bench({ time: ctx.quick ? MICRO_TIME_MS.quick : MICRO_TIME_MS.full, iterations: MICRO_MIN_ITERATIONS, warmupTime: 50 });
  for (const t of suite.tasks) bench.add(t.name, t.fn);
  try {
    await bench.run();
  } finally {
    await suite.teardown?.();
  }
  return bench.tasks.map((task, i): MicroRow => {
    const r = task.result;
    const bytes = suite.tasks[i]?.bytes ?? 0;
    if (r.state !== 'completed')
      return { name: task.name, opsPerSec: NaN, meanUs: NaN, samples: 0, error: r.state === 'errored' ? String(r.error) : r.state };
    const ops = r.throughput.mean;
    return {
      name: task.name,
      opsPerSec: ops,
      meanUs: r.latency.mean * 1000,
      ...(bytes > 0 ? { MBps: (ops * bytes) / 1e6 } : {}),
      samples: r.latency.samplesCount ?? 0,
    };
  });
}

function fmt(v: number | undefined, d: number): string {
  return v === undefined || !Number.isFinite(v) ? '-' : v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

export interface MicroModuleSpec {
  readonly id: string;
  readonly title: string;
  readonly order: number;
  /** A sentence under the heading: what one operation is. */
  readonly description: string;
  setup(ctx: ModuleContext): Promise<MicroSuite>;
  readonly goals?: readonly Goal[];
}

export function registerMicroModule(spec: MicroModuleSpec): void {
  registerModule({
    id: spec.id,
    title: spec.title,
    order: spec.order,
    goals: spec.goals ?? [],
    async collect(ctx) {
      return runSuite(await spec.setup(ctx), ctx);
    },
    render(data) {
      if (!Array.isArray(data)) return `Not run: ${JSON.stringify(data)}`;
      const rows = (data as MicroRow[]).map((r) => [r.name, fmt(r.opsPerSec, 0), fmt(r.meanUs, 1), fmt(r.MBps, 0), r.error ?? '']);
      return `${spec.description}\n\n${markdownTable(['task', 'ops/s', 'mean us', 'MB/s', 'note'], rows)}`;
    },
  });
}
