/**
 * `--config FILE` for the long-running commands: a TOML file whose keys are the command's long
 * flag names (`listen = "0.0.0.0:8443"`, `allow = ["127.0.0.1:22"]`, `insecure = true`), read
 * with smol-toml. A flag given on the command line wins over the file; a key that is not a flag
 * of the command is refused, naming it, so a typo never passes silently.
 *
 * Single values are applied while commander parses (so a required flag like --listen can come
 * from the file); lists are applied just before the action, and only when the command line gave
 * none, since a repeatable flag's parser appends to what is there.
 */
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, type Option } from 'commander';
import { parse } from 'smol-toml';
import { DevstreamsError } from '../errors.js';
import { collect } from './common.js';
import { othersCanRead, warnLine } from './secret-file.js';

/** Keys a file may not set: they are about the file or the process, not the command. */
const NOT_IN_FILE = new Set(['config', 'help', 'version', 'master']);

function bad(path: string, message: string): DevstreamsError {
  return new DevstreamsError('ERR_CONFIG', `${path}: ${message}`);
}

/** The option a key names, and whether the key names the negated form (`no-resume = true`). */
function findOption(cmd: Command, key: string): { option: Option; positiveKey: boolean } | undefined {
  if (NOT_IN_FILE.has(key)) return undefined;
  for (const option of cmd.options) {
    if (option.hidden) continue;
    if (option.long === `--${key}`) return { option, positiveKey: false };
    // `--no-resume` sets `resume`: `resume = false` reads naturally in a file.
    if (option.negate && option.long === `--no-${key}`) return { option, positiveKey: true };
  }
  return undefined;
}

function parseValue(path: string, key: string, option: Option, value: unknown, previous: unknown): unknown {
  if (typeof value !== 'string' && typeof value !== 'number') throw bad(path, `key "${key}" takes a string or a number`);
  if (!option.parseArg) return String(value);
  try {
    return option.parseArg(String(value), previous);
  } catch (err) {
    if (err instanceof InvalidArgumentError || err instanceof DevstreamsError) throw bad(path, `key "${key}": ${err.message}`);
    throw err;
  }
}

/** Reads `path` and sets the command's options from it; returns the list options to apply before the action. */
function applyConfig(cmd: Command, path: string): (() => void)[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DevstreamsError(
      'ERR_CONFIG',
      `cannot read --config ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  let data: Record<string, unknown>;
  try {
    data = parse(text) as Record<string, unknown>;
  } catch (err) {
    throw bad(path, `not valid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
  const deferred: (() => void)[] = [];
  const names = cmd.options
    .filter((o) => !o.hidden && o.long !== undefined && !NOT_IN_FILE.has(o.long.slice(2)))
    .map((o) => o.long!.slice(2).replace(/^no-/, ''));
  for (const [key, value] of Object.entries(data)) {
    const found = findOption(cmd, key);
    if (!found) throw bad(path, `unknown key "${key}"; devstreams ${cmd.name()} takes: ${names.join(', ')}`);
    const { option, positiveKey } = found;
    const attr = option.attributeName();
    const set = (v: unknown): void => {
      if (cmd.getOptionValueSource(attr) !== 'cli') cmd.setOptionValueWithSource(attr, v, 'config');
    };
    if (key.includes('connection-string') && key !== 'connection-string-file') {
      const warning = othersCanRead(path);
      if (warning !== undefined) warnLine(warning);
    }
    if (option.isBoolean() || option.negate) {
      if (typeof value !== 'boolean') throw bad(path, `key "${key}" takes true or false`);
      set(option.negate ? positiveKey === value : value);
      continue;
    }
    const repeatable = option.parseArg === collect;
    if (Array.isArray(value) || repeatable) {
      if (!repeatable) throw bad(path, `key "${key}" takes one value, not a list`);
      const list: unknown[] = Array.isArray(value) ? value : [value];
      const parsed = list.reduce<unknown>((prev, v) => parseValue(path, key, option, v, prev), undefined);
      deferred.push(() => set(parsed));
      continue;
    }
    set(parseValue(path, key, option, value, undefined));
  }
  return deferred;
}

/** Adds `--config FILE` to a command. */
export function withConfigFile(cmd: Command): Command {
  let deferred: (() => void)[] = [];
  cmd.option(
    '--config <file>',
    'read options from a TOML file; its keys are these long flag names (allow = ["127.0.0.1:22"]); flags given here win',
  );
  cmd.on('option:config', (path: string) => {
    deferred = applyConfig(cmd, path);
  });
  cmd.hook('preAction', () => {
    for (const apply of deferred) apply();
  });
  return cmd;
}
