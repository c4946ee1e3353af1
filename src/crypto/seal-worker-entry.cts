/**
 * The file the piscina pool loads in each worker thread; it imports the real worker
 * (`seal-worker.js`, an ES module) on the first task. CommonJS on purpose: piscina first
 * `require()`s its worker file, and on Node 20.19+ that sends an ES module through require(esm),
 * which aborted the whole process (assertion in ModuleWrap::CreateRequiredModuleFacade) when a
 * pool was closed while a worker was still loading. A CommonJS file loads without it.
 */
import type { CryptoTask } from './seal-worker.js' with { 'resolution-mode': 'import' };

type RunTask = (task: CryptoTask) => ArrayBuffer;
let runTask: Promise<RunTask> | undefined;

export = async function runCryptoTaskEntry(task: CryptoTask): Promise<ArrayBuffer> {
  runTask ??= import('./seal-worker.js').then((m: { default: RunTask }) => m.default);
  return (await runTask)(task);
};
