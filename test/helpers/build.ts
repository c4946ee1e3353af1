/** Makes sure dist/ is built and not older than its sources, for tests that run compiled code. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RUN_JS = path.join(ROOT, 'dist', 'bench', 'run.js');
export const CLI_MAIN = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && e.name !== 'results') newest = Math.max(newest, newestMtime(p));
    else if (e.isFile() && e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when the compiled bench or CLI is missing or older than its sources (npm test builds first). */
export function ensureBuilt(): void {
  const built = Math.min(...[RUN_JS, CLI_MAIN].map((f) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : 0)));
  if (built >= Math.max(newestMtime(path.join(ROOT, 'bench')), newestMtime(path.join(ROOT, 'src')))) return;
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
}
