/** Rule parsing, table compilation (start-up errors) and the engine's flow control. */
import { TsuwsgiError } from '../../core/errors.ts';
import { ResolvedOptions } from '../../core/options/resolved.ts';
import type { UwsgiVars } from '../../core/protocol/uwsgi-packet.ts';
import { RequestRouteContext } from '../../core/routing/context.ts';
import { runChain } from '../../core/routing/engine.ts';
import { RouteResponseEdits } from '../../core/routing/response-edits.ts';
import { compileRequestTable } from '../../core/routing/router.ts';
import { parseRequestChain, parseRule } from '../../core/routing/rules.ts';
import redirect from '../../plugins/router_redirect/index.ts';
import rewrite from '../../plugins/router_rewrite/index.ts';
import basicauth from '../../plugins/router_basicauth/index.ts';
import { md5Crypt } from '../../plugins/router_basicauth/md5-crypt.ts';
import { verifyHash } from '../../plugins/router_basicauth/htpasswd.ts';
import type { ResponseHead } from '../../core/protocol/http-response-parser.ts';

type Entry = { key: string; value: string; origin: string };
const e = (key: string, value: string): Entry => ({ key, value, origin: 'test' });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TsuwsgiError);
    return (err as TsuwsgiError).code;
  }
  return undefined;
}

interface Run {
  result: string;
  vars: UwsgiVars;
  logs: string[];
  head: ResponseHead | null;
  body: string;
  ctx: RequestRouteContext;
}

async function run(entries: Entry[], vars: Record<string, string> = {}): Promise<Run> {
  const table = compileRequestTable(entries, [redirect, rewrite, basicauth]);
  const v: UwsgiVars = Object.entries({ PATH_INFO: '/', REQUEST_URI: '/', QUERY_STRING: '', REQUEST_METHOD: 'GET', ...vars });
  const logs: string[] = [];
  let head: ResponseHead | null = null;
  let body = '';
  const edits = new RouteResponseEdits(() => ({
    head: (h) => (head = edits.apply(h)),
    body: (c) => ((body += c.toString()), true),
    onDrain: () => {},
    bindAbort: () => {},
    end: () => {},
    fail: () => {},
  }));
  const ctx = new RequestRouteContext({ options: new ResolvedOptions(entries), vars: v, modifier1: 0, modifier2: 0, defs: table.defs, response: edits, log: (l) => logs.push(l), workerId: 1, pid: 42, startedAt: Date.now() });
  const result = await runChain(table, ctx);
  return { result, vars: v, logs, head, body, ctx };
}
const varOf = (r: Run, k: string): string | undefined => r.vars.find(([n]) => n === k)?.[1];

describe('routing rule parsing', () => {
  it('keeps declaration order across the different rule options', () => {
    const specs = parseRequestChain([e('route', '^/a log:1'), e('socket', ':0'), e('route-run', 'log:2'), e('route-label', 'L'), e('route-host', 'x log:3'), e('route-if', 'empty:${X} log:4')]);
    expect(specs.map((s) => s.kind)).toEqual(['subject', 'run', 'label', 'subject', 'if']);
  });
  it('splits a subject rule at the first space and the action at the first colon', () => {
    const r = parseRule('route-user-agent', '.*curl.* addheader:X-A: b:c');
    expect(r).toMatchObject({ kind: 'subject', subjectVar: 'HTTP_USER_AGENT', action: 'addheader', arg: 'X-A: b:c' });
  });
  it('refuses a missing colon, a missing action and a bad regexp with TSUWSGI_E_ROUTING', () => {
    expect(codeOf(() => parseRule('route', '^/x break'))).toBe('TSUWSGI_E_ROUTING');
    expect(codeOf(() => parseRule('route', '^/x'))).toBe('TSUWSGI_E_ROUTING');
    expect(codeOf(() => parseRule('route', '^/(x break:403'))).toBe('TSUWSGI_E_ROUTING');
    expect(codeOf(() => parseRule('route-if', 'equal break:403'))).toBe('TSUWSGI_E_ROUTING');
  });
  it('refuses unknown actions and conditions at compile time, naming the rule', () => {
    expect(() => compileRequestTable([e('route', '^/x brek:')], [])).toThrow(/unable to find routing action "brek" in --route "\^\/x brek:"/);
    expect(() => compileRequestTable([e('route-if', 'nosuch:a break:')], [])).toThrow(/unable to find routing condition "nosuch"/);
    expect(() => compileRequestTable([e('route-run', 'redirect:/x')], [], (a) => (a === 'redirect' ? 'router_redirect' : undefined))).toThrow(/--plugins router_redirect/);
    expect(codeOf(() => compileRequestTable([e('route-run', 'addvar:NOEQUALS')], []))).toBe('TSUWSGI_E_ROUTING');
    expect(codeOf(() => compileRequestTable([e('route-run', 'basicauth:norealm')], [basicauth]))).toBe('TSUWSGI_E_ROUTING');
  });
});

describe('routing engine', () => {
  it('runs the app at the end of the table (continue)', async () => {
    expect((await run([e('route', '^/nomatch break:403')])).result).toBe('continue');
  });
  it('continue stops scanning; break stops the request', async () => {
    const r = await run([e('route-run', 'continue:'), e('route-run', 'break:403')]);
    expect(r.result).toBe('continue');
    expect((await run([e('route-run', 'break:'), e('route-run', 'log:never')])).logs).toEqual([]);
  });
  it('jumps forward to labels and numbers (expanded), and refuses backward jumps', async () => {
    const r = await run([e('route-host', '(.*) goto:$1'), e('route-run', 'log:skipped'), e('route-label', 'example.com'), e('route-run', 'log:landed')], { HTTP_HOST: 'example.com' });
    expect(r.logs).toEqual(['landed']);
    expect((await run([e('route-run', 'goto:3'), e('route-run', 'log:a'), e('route-run', 'log:b'), e('route-run', 'log:c')])).logs).toEqual(['c']);
    const back = await run([e('route-label', 'top'), e('route-run', 'goto:top'), e('route-run', 'log:after')]);
    expect(back.result).toBe('break');
    expect(back.logs.join('\n')).toMatch(/"goto" instruction can only jump forward/);
  });
  it('does var math with a real divide and sets vars', async () => {
    const r = await run([e('route-run', 'addvar:N=10'), e('route-run', '/:N,5'), e('route-run', 'addvar:M=5'), e('route-run', '+:M,2'), e('route-run', '*:M'), e('route-run', '-:M,${N}'), e('route-run', 'addvar:Z=3'), e('route-run', '/:Z,0')]);
    expect([varOf(r, 'N'), varOf(r, 'M'), varOf(r, 'Z')]).toEqual(['2', '5', '0']);
  });
  it('negates conditions with route-if-not and exposes regexp captures', async () => {
    const r = await run([e('route-if', 'regexp:${HTTP_HOST};^(.+)\\.example\\.com$ addvar:SUB=$1'), e('route-if-not', 'equal:${SUB};foo log:not-foo'), e('route-if-not', 'equal:${SUB};bar log:not-bar')], { HTTP_HOST: 'foo.example.com' });
    expect(varOf(r, 'SUB')).toBe('foo');
    expect(r.logs).toEqual(['not-bar']);
  });
  it('evaluates the comparison and CIDR conditions', async () => {
    const cond = async (c: string, vars: Record<string, string> = {}): Promise<boolean> => (await run([e('route-if', `${c} log:yes`)], vars)).logs.length === 1;
    expect(await cond('>:10;9')).toBe(true);
    expect(await cond('<:10;9')).toBe(false);
    expect(await cond('>=:9;9')).toBe(true);
    expect(await cond('<=:10;9')).toBe(false);
    expect(await cond('startswith:${PATH_INFO};/a', { PATH_INFO: '/abc' })).toBe(true);
    expect(await cond('endswith:${PATH_INFO};/a', { PATH_INFO: '/abc' })).toBe(false);
    expect(await cond('contains:${PATH_INFO};bc', { PATH_INFO: '/abc' })).toBe(true);
    expect(await cond('equal:nosemicolon')).toBe(false);
    expect(await cond('ipv4in:${REMOTE_ADDR};10.0.0.0/8', { REMOTE_ADDR: '10.1.2.3' })).toBe(true);
    expect(await cond('ipv4in:${REMOTE_ADDR};10.0.0.0/8', { REMOTE_ADDR: '11.1.2.3' })).toBe(false);
    expect(await cond('ipv6in:${REMOTE_ADDR};fd00::/8', { REMOTE_ADDR: 'fd12::1' })).toBe(true);
    expect(await cond('ipv6in:${REMOTE_ADDR};fd00::/8', { REMOTE_ADDR: '::1' })).toBe(false);
  });
  it('expands the core route vars', async () => {
    const r = await run([e('route-run', 'log:${cookie[b]}|${qs[y]}|${base64[REQUEST_METHOD]}|${hex[REQUEST_METHOD]}|${uwsgi[wid]}|${uwsgi[pid]}|${time[unix]}')], { HTTP_COOKIE: 'a=1; b=two', QUERY_STRING: 'x=1&y=2' });
    expect(r.logs[0]).toMatch(/^two\|2\|R0VU\|474554\|1\|42\|\d{10}$/);
  });
  it('adds and removes response headers, and answers from routing', async () => {
    const r = await run([e('route-run', 'addheader:X-A: 1'), e('route-run', 'addheader:X-B: 2'), e('route-run', 'delheader:x-a'), e('route-run', 'return:404')]);
    expect(r.result).toBe('break');
    expect(r.head?.statusCode).toBe(404);
    expect(r.head?.headers).toEqual(['Content-Type', 'text/plain', 'Content-Length', '9', 'X-B', '2']);
    expect(r.body).toBe('Not Found');
  });
  it('sets request vars and modifiers with the set* actions', async () => {
    const r = await run(
      [
        e('route-run', 'setapp:/app'), e('route-run', 'setuser:bob:secret'), e('route-run', 'setscriptname:/s'), e('route-run', 'setmethod:POST'),
        e('route-run', 'seturi:/u'), e('route-run', 'setremoteaddr:10.0.0.9'), e('route-run', 'setpathinfo:/s/p'), e('route-run', 'fixpathinfo:'),
        e('route-run', 'setdocroot:/srv'), e('route-run', 'setscheme:https'), e('route-run', 'setmodifier1:5'), e('route-run', 'setmodifier2:3'),
      ],
    );
    expect(Object.fromEntries(r.vars)).toMatchObject({ UWSGI_APPID: '/app', REMOTE_USER: 'bob', SCRIPT_NAME: '/s', REQUEST_METHOD: 'POST', REQUEST_URI: '/u', REMOTE_ADDR: '10.0.0.9', PATH_INFO: '/p', DOCUMENT_ROOT: '/srv', UWSGI_SCHEME: 'https' });
    expect([r.ctx.modifier1, r.ctx.modifier2]).toEqual([5, 3]);
    expect(() => compileRequestTable([e('route-run', 'setmodifier1:300')], [])).toThrow(/0\.\.255/);
  });
  it('records logvars and donotlog', async () => {
    const r = await run([e('route-run', 'logvar:k=${REQUEST_METHOD}'), e('route-run', 'donotlog:')]);
    expect(r.ctx.logvars?.get('k')).toBe('GET');
    expect(r.ctx.noLog).toBe(true);
  });
  it('rewrites PATH_INFO and prepends to QUERY_STRING', async () => {
    const r = await run([e('route', '^/old/(.*) rewrite:/new/$1%20x?x=1')], { PATH_INFO: '/old/p', QUERY_STRING: 'y=2' });
    expect([varOf(r, 'PATH_INFO'), varOf(r, 'QUERY_STRING')]).toEqual(['/new/p x', 'x=1&y=2']);
  });
});

describe('basicauth password hashes', () => {
  it('computes MD5-crypt as openssl passwd -1 / -apr1 does', () => {
    expect(md5Crypt('secret', 'abcdefgh', '$1$')).toBe('$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1');
    expect(md5Crypt('secret', 'abcdefgh', '$apr1$')).toBe('$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/');
  });
  it('verifies {SHA}, refuses unsupported crypt hashes with an explanation', () => {
    expect(verifyHash('{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=', 'secret')).toEqual({ ok: true });
    expect(verifyHash('{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=', 'nope')).toEqual({ ok: false });
    expect(verifyHash('$6$salt$abc', 'x')).toMatchObject({ error: expect.stringMatching(/unsupported password hash/) });
  });
});
