// `npm run profile`: runs a bench scenario with one of its child processes under clinic
// (flame or doctor) and says where the HTML report is. Everything after `--` goes to the bench.
//   npm run profile -- --tool flame --role links -- --paths openssh --scenarios bulk-1
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { PROFILE_ENV } from '../bench/procs.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** What is profiled when no bench arguments are given: one quick bulk transfer through the OpenSSH relay. */
export const DEFAULT_BENCH_ARGS = ['--quick', '--paths', 'openssh', '--placements', 'loopback', '--scenarios', 'bulk-1'];

function htmlReports(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.html'))
    .map((f) => path.join(dir, f));
}

async function main(): Promise<void> {
  const program = new Command()
    .name('npm run profile --')
    .description('Profile one bench child process with clinic while a scenario runs.')
    .addOption(new Option('--tool <tool>', 'clinic tool').choices(['flame', 'doctor']).default('flame'))
    .option(
      '--role <role>',
      'which child to profile: links (relays and link emulators), targets, bulk, hub, device-proxy, service-proxy',
      'links',
    )
    .option('--dest <dir>', 'where clinic writes its report', path.join(ROOT, 'bench', 'results', 'profile'))
    .argument('[bench...]', 'bench arguments (after --)')
    .allowExcessArguments(true);
  program.parse(process.argv);
  const o = program.opts<{ tool: string; role: string; dest: string }>();
  const benchArgs = program.args.length > 0 ? program.args : DEFAULT_BENCH_ARGS;
  const dest = path.resolve(o.dest);
  fs.mkdirSync(dest, { recursive: true });
  const before = new Set(htmlReports(dest));
  const out = path.join(dest, 'RESULTS-profile.md');
  process.stderr.write(`profiling role "${o.role}" with clinic ${o.tool}; bench ${benchArgs.join(' ')}\n`);
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'bench', 'run.js'), ...benchArgs, '--out', out, '--json', dest], {
      stdio: 'inherit',
      env: { ...process.env, [PROFILE_ENV]: `${o.tool}:${o.role}:${dest}` },
    });
    child.on('exit', (c) => resolve(c));
  });
  const fresh = htmlReports(dest).filter((f) => !before.has(f));
  if (fresh.length === 0) {
    process.stderr.write(`no clinic report written (bench exit ${code}); did the role "${o.role}" run in this scenario?\n`);
    process.exit(1);
  }
  for (const f of fresh) process.stdout.write(`clinic ${o.tool} report: ${f}\n`);
  process.exit(code ?? 1);
}

main().catch((err: unknown) => {
  process.stderr.write(`profile failed: ${String(err)}\n`);
  process.exit(1);
});
