/**
 * Differential config test (issue 3, part 6): every case of config-cases.ts is loaded by
 * the reference, `uwsgi --show-config --no-server` (Debian's uwsgi-core, installed by
 * .ci/run), and by `tsuwsgi --show-config --no-server`; the option lists printed between
 * `;uWSGI instance configuration` and `;end of configuration` must match, except for the
 * deliberate differences the cases list with their reason.
 *
 * The reference is required: without /usr/bin/uwsgi this test fails (it never skips).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalKey } from '../../core/config/loader.ts';
import { CORE_OPTIONS } from '../../core/options/core-options.ts';
import { defaultPluginSource } from '../../core/plugins/catalog.ts';
import { PluginRegistry } from '../../core/plugins/registry.ts';
import { CASES, type DiffCase } from './config-cases.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TSUWSGI = path.join(REPO, 'bin', 'tsuwsgi.js');
const UWSGI = process.env.TSUWSGI_REFERENCE_UWSGI ?? '/usr/bin/uwsgi';

interface RunResult {
  status: number | null;
  output: string;
  /** The option list, or null when none was printed. */
  options: string[] | null;
}

function run(file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, stdin: string | undefined): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, env, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output, options: optionList(output) });
    });
    if (stdin !== undefined && child.stdin) {
      // A server that exits without reading its input must not fail the harness (EPIPE).
      child.stdin.on('error', () => {});
      child.stdin.end(stdin);
    }
  });
}

/** The `key = value` lines of the --show-config block. */
function optionList(output: string): string[] | null {
  const start = output.indexOf(';uWSGI instance configuration\n');
  if (start < 0) return null;
  const end = output.indexOf(';end of configuration', start);
  const lines = output.slice(start, end < 0 ? undefined : end).split('\n').slice(1);
  return lines.filter((l) => l !== '' && l !== '[uwsgi]');
}

const registry = new PluginRegistry(CORE_OPTIONS, defaultPluginSource());

/**
 * uWSGI prints an option as it was written (`workers`), tsuwsgi by its canonical name
 * (`processes`); the introspection flags of the harness itself are left out.
 */
function normalise(lines: string[]): string[] {
  return lines
    .map((line) => {
      const eq = line.indexOf(' = ');
      if (eq < 0) return line;
      return `${canonicalKey(registry, line.slice(0, eq))}${line.slice(eq)}`;
    })
    .filter((line) => line !== 'show-config = true' && line !== 'no-server = true');
}

function substitute(text: string, dir: string): string {
  return text.split('${DIR}').join(dir);
}

function prepare(c: DiffCase): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsuwsgi-diff-'));
  for (const d of c.dirs ?? []) fs.mkdirSync(path.join(dir, d), { recursive: true });
  for (const [name, content] of Object.entries(c.files ?? {})) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), substitute(content, dir));
  }
  for (const [link, target] of Object.entries(c.symlinks ?? {})) fs.symlinkSync(target, path.join(dir, link));
  return dir;
}

function caseEnv(c: DiffCase, dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  // A clean environment: only what the servers need, plus the case's variables.
  for (const key of ['PATH', 'HOME', 'LANG', 'TMPDIR']) if (process.env[key] !== undefined) env[key] = process.env[key];
  for (const [k, v] of Object.entries(c.env ?? {})) env[k] = substitute(v, dir);
  return env;
}

const HARNESS_ARGS = ['--show-config', '--no-server'];

async function runBoth(c: DiffCase): Promise<{ uwsgi: RunResult | null; tsuwsgi: RunResult }> {
  const dir = prepare(c);
  try {
    const env = caseEnv(c, dir);
    const args = c.args.map((a) => substitute(a, dir));
    const runReference = !(c.differs && c.differs.uwsgi === undefined);
    const [uwsgi, tsuwsgi] = await Promise.all([
      runReference ? run(UWSGI, [...HARNESS_ARGS, ...args], dir, env, c.stdin) : Promise.resolve(null),
      run(process.execPath, [TSUWSGI, ...HARNESS_ARGS, ...args], dir, env, c.stdin),
    ]);
    return { uwsgi, tsuwsgi };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('config: tsuwsgi --show-config against the reference uWSGI', () => {
  it('has the reference installed (uwsgi-core, from .ci/apt-packages.txt)', () => {
    expect(fs.existsSync(UWSGI)).toBe(true);
  });

  it('has at least 40 fixtures, each named once', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  describe.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    it.concurrent(c.differs ? `differs on purpose: ${c.differs.why}` : c.outcome === 'both-fail' ? 'both refuse it' : 'prints the same options', async () => {
      const { uwsgi, tsuwsgi } = await runBoth(c);
      const context = `\n--- uwsgi output ---\n${uwsgi?.output ?? '(not run)'}\n--- tsuwsgi output ---\n${tsuwsgi.output}`;
      if (c.differs) {
        if (c.differs.uwsgi) expect({ uwsgi: normalise(uwsgi?.options ?? []), context }).toEqual({ uwsgi: normalise(c.differs.uwsgi), context });
        if (c.differs.tsuwsgiError) {
          expect({ failed: tsuwsgi.status !== 0, context }).toEqual({ failed: true, context });
          expect(tsuwsgi.output).toContain(c.differs.tsuwsgiError);
        } else {
          expect({ status: tsuwsgi.status, options: normalise(tsuwsgi.options ?? []), context }).toEqual({ status: 0, options: normalise(c.differs.tsuwsgi ?? []), context });
        }
        return;
      }
      if (c.outcome === 'both-fail') {
        expect({ uwsgiFailed: uwsgi?.status !== 0, tsuwsgiFailed: tsuwsgi.status !== 0, context }).toEqual({ uwsgiFailed: true, tsuwsgiFailed: true, context });
        if (c.errors?.uwsgi) expect(uwsgi?.output).toContain(c.errors.uwsgi);
        if (c.errors?.tsuwsgi) expect(tsuwsgi.output).toContain(c.errors.tsuwsgi);
        return;
      }
      expect({ status: tsuwsgi.status, options: normalise(tsuwsgi.options ?? ['(no option list printed)']), context }).toEqual({
        status: uwsgi?.status,
        options: normalise(uwsgi?.options ?? ['(no option list printed)']),
        context,
      });
    });
  });
});
