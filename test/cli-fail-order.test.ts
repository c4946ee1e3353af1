// A failing command's last stderr line is its failure line (`devstreams: CODE: ...`, src/cli/fail.ts),
// also when JSON log lines logged just before it are still waiting in their batch
// (src/cli/log-batch.ts): those come first, in the order they were logged.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from './helpers/build.js';

const dist = (file: string): string => JSON.stringify(path.join(ROOT, 'dist', 'src', file));

describe('a failure after JSON log lines', () => {
  beforeAll(() => ensureBuilt());

  it('is written after the lines logged before it', async () => {
    const body = [
      `import { createLogger } from ${dist('cli/log.js')};`,
      `import { fail } from ${dist('cli/fail.js')};`,
      `import { DevstreamsError } from ${dist('errors.js')};`,
      `const log = createLogger({ logLevel: 'info', logFormat: 'json' });`,
      `log.info('first'); log.warn('device stream closed');`,
      `fail(new DevstreamsError('ERR_DEVICE_OFFLINE', 'device d1 is offline'));`,
    ].join('\n');
    const stderr = await new Promise<string>((resolve) =>
      execFile(process.execPath, ['--input-type=module', '-e', body], (_err, _stdout, err) => resolve(err)),
    );
    const lines = stderr.split('\n').filter((l) => l !== '');
    expect(lines.map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg: string }).msg : l))).toEqual([
      'first',
      'device stream closed',
      'devstreams: ERR_DEVICE_OFFLINE: device d1 is offline',
    ]);
  });
});
