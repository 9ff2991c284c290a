/**
 * UWSGI_* environment variables (spec/core.md §4.3) and show-config / get (§4.16).
 */
import { formatShowConfig, getValues } from '../../core/config/introspect.ts';
import { canonicalKey } from '../../core/config/loader.ts';
import { envNameToOption, optionsFromEnv } from '../../core/config/env.ts';
import { ResolvedOptions } from '../../core/options/resolved.ts';
import { get, load, pairs, TestLookup } from './helpers.ts';

describe('UWSGI_* environment variables (§4.3)', () => {
  it('turns UWSGI_HTTP_SOCKET=:9090 UWSGI_MASTER=1 UWSGI_PROCESSES=3 into options (accept)', () => {
    const config = load([], { env: { UWSGI_HTTP_SOCKET: ':9090', UWSGI_MASTER: '1', UWSGI_PROCESSES: '3', PATH: '/bin' } });
    const options = new ResolvedOptions(config.entries);
    expect(options.all('http-socket')).toEqual([':9090']);
    expect(options.flag('master')).toBe(true);
    expect(options.int('processes', 1)).toBe(3);
  });

  it('keeps unknown names as placeholders readable with --get (accept: my-var)', () => {
    const config = load(['--http-socket', ':9090', '--get', 'my-var'], { env: { UWSGI_MY_VAR: 'x' } });
    expect(getValues(config.entries, 'my-var')).toEqual(['x']);
  });

  it('lower-cases the name only and keeps the value verbatim', () => {
    expect(envNameToOption('HTTP_SOCKET')).toBe('http-socket');
    expect(optionsFromEnv({ UWSGI_SET: 'A_B=C_D' })).toEqual([{ key: 'set', value: 'A_B=C_D', origin: 'env UWSGI_SET' }]);
  });

  it('skips the variables uWSGI reserves for itself', () => {
    const env = {
      UWSGI_RELOADS: '1',
      UWSGI_VASSALS_DIR: '/v',
      UWSGI_EMPEROR_FD: '3',
      UWSGI_BROODLORD_NUM: '1',
      UWSGI_EMPEROR_FD_CONFIG: '4',
      UWSGI_EMPEROR_PROXY: 'x',
      UWSGI_JAIL_PID: '1',
      UWSGI_ORIGINAL_PROC_NAME: 'uwsgi',
    };
    expect(load([], { env }).entries).toEqual([]);
  });

  it('reads the environment before the command line, so the command line appends', () => {
    expect(pairs(load(['--socket', ':2'], { env: { UWSGI_SOCKET: ':1' } }))).toEqual(['socket = :1', 'socket = :2']);
  });
});

describe('show-config and get (§4.16)', () => {
  it('prints the final config as uWSGI does (accept: a = 1)', () => {
    const config = load(['--show-config', '--set-ph', 'a=1', '--http-socket', ':9090', 'app.py']);
    expect(formatShowConfig(config.entries)).toBe(
      '\n;uWSGI instance configuration\n[uwsgi]\nshow-config = true\nset-placeholder = a=1\na = 1\nhttp-socket = :9090\n;end of configuration\n\n',
    );
  });

  it('prints the expanded values', () => {
    const config = load(['--set', 'p=8080', '--http-socket', ':%(p)']);
    expect(formatShowConfig(config.entries)).toContain('http-socket = :8080\n');
  });

  it('gets the first value of each key asked, skipping unset ones', () => {
    const config = load(['--socket', ':1', '--socket', ':2', '--workers', '3']);
    expect(getValues(config.entries, ['socket', 'nope', 'processes'])).toEqual([':1', '3']);
  });

  it('gets an option by its alias', () => {
    const lookup = new TestLookup();
    const config = load(['--workers', '3'], { lookup });
    expect(getValues(config.entries, 'workers', (name) => canonicalKey(lookup, name))).toEqual(['3']);
    expect(get(config, 'processes')).toBe('3');
  });
});
