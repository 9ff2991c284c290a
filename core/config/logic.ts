/**
 * Config logic (spec/core.md §4.13), as uWSGI's core/config.c runs it.
 *
 * An opener (`for = a b`, `if-env = HOME`…) starts a block; until a terminator (`endfor`,
 * `endif`, `end`…) every following option line goes through the block, which yields zero
 * or more copies of it with the literal `%(_)` of the VALUE replaced by the context value
 * (loop item, env value, path, option value). The condition or the loop is evaluated again
 * for each line, like uWSGI does (so an `if-not-opt` block stops applying once a line in it
 * sets the option). An opener met while a block is running fails: uWSGI has no nesting.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../errors.ts';
import { globPaths } from './glob.ts';
import { describeError } from './source.ts';

export interface LogicContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /**
   * The value of the first occurrence of an option or placeholder among the options seen so
   * far (magic variables substituted, placeholders not yet expanded), or undefined.
   */
  findOption(name: string): string | undefined;
  /** True when the plugin of that name is loaded (`if-plugin`). */
  pluginLoaded(name: string): boolean;
}

export interface LogicLine {
  key: string;
  value: string;
}

type Opener = (arg: string, line: LogicLine, ctx: LogicContext) => LogicLine[];

/**
 * uwsgi_substitute(value, "%(_)", data): every occurrence. With no data (if-not-env /
 * if-not-opt when the variable is absent) the value is left alone, so `%(_)` stays — the
 * live reference does exactly that (errata).
 */
function withUnderscore(line: LogicLine, data: string | undefined): LogicLine {
  if (data === undefined) return { key: line.key, value: line.value };
  return { key: line.key, value: line.value.split('%(_)').join(data) };
}

/** C atoi(): leading blanks, optional sign, digits; anything else is 0. */
function atoi(text: string): number {
  const m = /^[ \t\n\r\f\v]*([+-]?\d+)/.exec(text);
  return m ? Number.parseInt(m[1] as string, 10) : 0;
}

/** `NAME=VALUE` → ['NAME', 'VALUE'], `NAME` → ['NAME', undefined]. */
function splitCompare(arg: string): [string, string | undefined] {
  const eq = arg.indexOf('=');
  return eq < 0 ? [arg, undefined] : [arg.slice(0, eq), arg.slice(eq + 1)];
}

function ifValue(found: string | undefined, expected: string | undefined, line: LogicLine): LogicLine[] {
  if (found === undefined) return [];
  if (expected !== undefined && found !== expected) return [];
  return [withUnderscore(line, found)];
}

function ifNotValue(found: string | undefined, expected: string | undefined, line: LogicLine): LogicLine[] {
  if (found !== undefined) {
    if (expected === undefined || found === expected) return [];
  }
  return [withUnderscore(line, found)];
}

function statOf(p: string, cwd: string): fs.Stats | undefined {
  try {
    return fs.statSync(path.resolve(cwd, p));
  } catch {
    return undefined;
  }
}

/** uwsgi_file_exists(): access(R_OK), so a file or a directory. */
function readable(p: string, cwd: string): boolean {
  try {
    fs.accessSync(path.resolve(cwd, p), fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

const isReload = (ctx: LogicContext): boolean => ctx.env.UWSGI_RELOADS !== undefined;

const ifEnv: Opener = (arg, line, ctx) => {
  const [name, expected] = splitCompare(arg);
  return ifValue(ctx.env[name], expected, line);
};
const ifExists: Opener = (arg, line, ctx) => (readable(arg, ctx.cwd) ? [withUnderscore(line, arg)] : []);
const ifDir: Opener = (arg, line, ctx) => (statOf(arg, ctx.cwd)?.isDirectory() ? [withUnderscore(line, arg)] : []);

const OPENERS: Record<string, Opener> = {
  // `for` splits on single spaces, runs of spaces counting as one (strtok).
  for: (arg, line) =>
    arg
      .split(' ')
      .filter((item) => item !== '')
      .map((item) => withUnderscore(line, item)),
  'for-glob': (arg, line, ctx) => globPaths(arg, ctx.cwd).map((p) => withUnderscore(line, p)),
  'for-times': (arg, line) => {
    const out: LogicLine[] = [];
    for (let n = 1; n <= atoi(arg); n++) out.push(withUnderscore(line, String(n)));
    return out;
  },
  'for-readline': (arg, line, ctx) => {
    let text: string;
    try {
      text = fs.readFileSync(path.resolve(ctx.cwd, arg), 'utf8');
    } catch (err) {
      // uWSGI logs open() and skips the line; a missing file there is always a mistake.
      throw new ConfigError(`for-readline cannot read ${arg}: ${describeError(err)}`, err);
    }
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.map((l) => withUnderscore(line, l.replace(/[\r\n]+$/, '')));
  },
  'if-opt': (arg, line, ctx) => {
    const [name, expected] = splitCompare(arg);
    return ifValue(ctx.findOption(name), expected, line);
  },
  'if-not-opt': (arg, line, ctx) => {
    const [name, expected] = splitCompare(arg);
    return ifNotValue(ctx.findOption(name), expected, line);
  },
  'if-env': ifEnv,
  ifenv: ifEnv,
  'if-not-env': (arg, line, ctx) => {
    const [name, expected] = splitCompare(arg);
    return ifNotValue(ctx.env[name], expected, line);
  },
  'if-exists': ifExists,
  ifexists: ifExists,
  'if-not-exists': (arg, line, ctx) => (readable(arg, ctx.cwd) ? [] : [withUnderscore(line, arg)]),
  'if-file': (arg, line, ctx) => (statOf(arg, ctx.cwd)?.isFile() ? [withUnderscore(line, arg)] : []),
  'if-not-file': (arg, line, ctx) => (statOf(arg, ctx.cwd)?.isFile() ? [] : [withUnderscore(line, arg)]),
  'if-dir': ifDir,
  ifdir: ifDir,
  'if-directory': ifDir,
  'if-not-dir': (arg, line, ctx) => (statOf(arg, ctx.cwd)?.isDirectory() ? [] : [withUnderscore(line, arg)]),
  // `%(_)` is the plugin name, as uWSGI's uwsgi_opt_logic() passes the argument.
  'if-plugin': (arg, line, ctx) => (ctx.pluginLoaded(arg) ? [withUnderscore(line, arg)] : []),
  ifplugin: (arg, line, ctx) => (ctx.pluginLoaded(arg) ? [withUnderscore(line, arg)] : []),
  'if-not-plugin': (arg, line, ctx) => (ctx.pluginLoaded(arg) ? [] : [withUnderscore(line, arg)]),
  // No argument and no %(_) substitution, as in uWSGI.
  'if-reload': (_arg, line, ctx) => (isReload(ctx) ? [{ ...line }] : []),
  'if-not-reload': (_arg, line, ctx) => (isReload(ctx) ? [] : [{ ...line }]),
};

/** Keys that close the current block (any of them closes any block, as in uWSGI). */
export const LOGIC_TERMINATORS: ReadonlySet<string> = new Set(['end', 'endfor', 'end-for', 'endif', 'end-if']);

export function isLogicOpener(name: string): boolean {
  return Object.hasOwn(OPENERS, name);
}

export function recursiveLogicError(option: string, origin: string): ConfigError {
  return new ConfigError(
    `recursive logic in options is not supported (option = ${option}) at ${origin}; close the previous block with endfor/endif first`,
  );
}

/** An open logic block. */
export class LogicBlock {
  readonly option: string;
  readonly arg: string;
  private readonly opener: Opener;

  constructor(option: string, arg: string) {
    const opener = OPENERS[option];
    if (!opener) throw new Error(`not a config-logic option: ${option}`);
    this.option = option;
    this.arg = arg;
    this.opener = opener;
  }

  /** The lines to apply for one option line met inside the block. */
  apply(line: LogicLine, ctx: LogicContext): LogicLine[] {
    return this.opener(this.arg, line, ctx);
  }
}
