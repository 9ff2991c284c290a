/** Rule parsing, table compilation (start-up errors) and the engine's flow control. */
import { TsuwsgiError } from '../../core/errors.ts';
import { ResolvedOptions } from '../../core/options/resolved.ts';
import type { UwsgiVars } from '../../core/protocol/uwsgi-packet.ts';
import { RequestRouteContext } from '../../core/routing/context.ts';
import { runChain } from '../../core/routing/engine.ts';
import { RouteResponseEdits } from '../../core/routing/response-edits.ts';
import { compileRequestTable, compileRoutingTables, hasRouting } from '../../core/routing/router.ts';
import { chainOf, parseChain, parseRequestChain, parseRule } from '../../core/routing/rules.ts';
import { ChainedResponse } from '../../core/routing/response-chains.ts';
import { editingSink } from '../../core/routing/response-edits.ts';
import type { RouteDefinitions } from '../../core/routing/table.ts';
import type { ResponseSink } from '../../core/bridge/pool-client.ts';
import type { RouteContext } from '../../core/routing/api.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
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
/** A bare request context over `defs`, collecting its log lines. */
function context(defs: RouteDefinitions): { ctx: RequestRouteContext; logs: string[] } {
  const logs: string[] = [];
  const edits = new RouteResponseEdits(() => {
    throw new Error('no sink in this test');
  });
  const ctx = new RequestRouteContext({ options: new ResolvedOptions([]), vars: [['PATH_INFO', '/']], modifier1: 0, modifier2: 0, defs, response: edits, log: (l) => logs.push(l), workerId: 1, pid: 1, startedAt: Date.now() });
  return { ctx, logs };
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
  it('reads a rule subject after the actions before it changed it (the subject memo never goes stale)', async () => {
    const r = await run([
      e('route', '^/nope-1 log:never'),
      e('route', '^/nope-2 log:never'),
      e('route-run', 'setpathinfo:/changed'),
      e('route', '^/changed$ log:saw ${PATH_INFO}'),
      e('route', '^/$ log:stale'),
    ]);
    expect(r.logs).toEqual(['saw /changed']);
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

describe('rule options of the error, response and final chains', () => {
  it('parses every chain option like its request-chain counterpart, plus *-route-status', () => {
    expect(parseRule('error-route-status', '404 addheader:X-Err: 1')).toMatchObject({ kind: 'status', status: 404, action: 'addheader', arg: 'X-Err: 1' });
    expect(parseRule('final-route-status', '200 log:ok')).toMatchObject({ kind: 'status', status: 200, action: 'log', arg: 'ok' });
    expect(parseRule('response-route-host', '^a\\. log:a')).toMatchObject({ kind: 'subject', subjectVar: 'HTTP_HOST', action: 'log' });
    expect(parseRule('response-route', '^/x log:x')).toMatchObject({ kind: 'subject', subjectVar: 'PATH_INFO' });
    expect(parseRule('final-route-referer', 'spam log:r')).toMatchObject({ kind: 'subject', subjectVar: 'HTTP_REFERER' });
    expect(parseRule('error-route-if-not', 'empty:${X} log:y')).toMatchObject({ kind: 'if', negate: true, condition: 'empty', condArgs: '${X}' });
    expect(parseRule('final-route-run', 'log:done')).toMatchObject({ kind: 'run', action: 'log', arg: 'done' });
    expect(parseRule('error-route-label', 'here')).toMatchObject({ kind: 'label', label: 'here' });
  });
  it('refuses a bad status, a status rule without action, and route-status on the request chain', () => {
    expect(codeOf(() => parseRule('error-route-status', '40x break:'))).toBe('TSUWSGI_E_ROUTING');
    expect(codeOf(() => parseRule('response-route-status', '404'))).toBe('TSUWSGI_E_ROUTING');
    expect(codeOf(() => parseRule('final-route-status', '404 log'))).toBe('TSUWSGI_E_ROUTING');
    expect(codeOf(() => parseRule('route-status', '404 log:x'))).toBe('TSUWSGI_E_ROUTING');
    expect(() => parseRule('route-status', '404 log:x')).toThrow(/not a routing rule option/);
  });
  it('keeps each chain to its own options, in declaration order', () => {
    const entries = [e('route', '^/a log:req'), e('error-route-run', 'log:e1'), e('final-route-label', 'F'), e('error-route-status', '404 log:e2'), e('response-route-run', 'log:r'), e('final-route-run', 'log:f')];
    expect(parseChain('error', entries).map((s) => s.origin.value)).toEqual(['log:e1', '404 log:e2']);
    expect(parseChain('final', entries).map((s) => s.kind)).toEqual(['label', 'run']);
    expect(parseChain('response', entries)).toHaveLength(1);
    expect(parseRequestChain(entries).map((s) => s.origin.value)).toEqual(['^/a log:req']);
    expect(chainOf('response-route-if-not')).toBe('response');
    expect(chainOf('route-run')).toBe('request');
    expect(chainOf('collect-header')).toBeNull();
  });
  it('compiles only the chains that have rules, and names the chain option in errors', () => {
    const t = compileRoutingTables([e('final-route-run', 'log:x')], []);
    expect([t.request, t.error, t.response]).toEqual([null, null, null]);
    expect(t.final?.rules).toHaveLength(1);
    expect(() => compileRoutingTables([e('response-route-run', 'nosuch:')], [])).toThrow(/unable to find routing action "nosuch" in --response-route-run "nosuch:"/);
    expect(() => compileRoutingTables([e('error-route-if', 'nosuch:a log:x')], [])).toThrow(/unable to find routing condition "nosuch" in --error-route-if/);
    expect(() => compileRoutingTables([e('final-route-run', 'clearheaders:1')], [])).toThrow(/clearheaders/);
    expect(hasRouting([e('socket', ':0')])).toBe(false);
    expect(hasRouting([e('final-route-status', '404 log:x')])).toBe(true);
    expect(hasRouting([e('add-header', 'X: 1')])).toBe(true);
  });
  it('parses the header options and refuses bad syntax', () => {
    const t = compileRoutingTables([e('collect-header', 'Content-Type CT'), e('collect-header', 'content-type CT2'), e('pull-header', 'X-Secret S'), e('add-header', 'X-A: 1: 2'), e('del-header', 'X-Powered-By'), e('error-page-404', '/a.html'), e('error-page-404', '/b.html')], []);
    expect(t.headers.collect.get('content-type')).toEqual(['CT', 'CT2']);
    expect(t.headers.pull.get('x-secret')).toEqual(['S']);
    expect(t.headers.add).toEqual(['X-A', '1: 2']);
    expect([...t.headers.del]).toEqual(['x-powered-by']);
    expect(t.errorPages.get(404)).toEqual(['/a.html', '/b.html']);
    expect(codeOf(() => compileRoutingTables([e('collect-header', 'Content-Type')], []))).toBe('TSUWSGI_E_ROUTING');
    expect(codeOf(() => compileRoutingTables([e('pull-header', ' CT')], []))).toBe('TSUWSGI_E_ROUTING');
    expect(codeOf(() => compileRoutingTables([e('add-header', 'NoColon')], []))).toBe('TSUWSGI_E_ROUTING');
  });
});

describe('chain engine details', () => {
  it('matches *-route-status exactly against the response status', async () => {
    const table = compileRoutingTables([e('error-route-status', '404 log:four-oh-four'), e('error-route-status', '40 log:forty'), e('error-route-run', 'log:${uwsgi[status]}')], []).error!;
    const { ctx, logs } = context(table.defs);
    ctx.status = 404;
    expect(await runChain(table, ctx)).toBe('continue');
    expect(logs).toEqual(['four-oh-four', '404']);
  });
  it('completes synchronously when every rule is synchronous (no promise)', () => {
    const table = compileRoutingTables([e('final-route-run', 'log:a'), e('final-route-run', 'goto:end'), e('final-route-run', 'log:skipped'), e('final-route-label', 'end'), e('final-route-run', 'log:b')], []).final!;
    const { ctx, logs } = context(table.defs);
    const r = runChain(table, ctx);
    expect(r).toBe('continue');
    expect(logs).toEqual(['a', 'b']);
  });
  it('gives a nested chain run its own goto state', async () => {
    const outer = compileRoutingTables([e('route-run', 'log:start')], []).request!;
    const { ctx } = context(outer.defs);
    ctx.pendingGoto = 'outer-label';
    await runChain(outer, ctx);
    expect(ctx.pendingGoto).toBe('outer-label');
  });
});

describe('the response chains stage (ChainedResponse)', () => {
  /** A downstream that records what reaches the client. */
  function recorder(): { sink: ResponseSink; events: string[] } {
    const events: string[] = [];
    const sink: ResponseSink = {
      head: (h) => events.push(`head ${h.statusCode} ${h.headers.join(',')}`),
      body: (c) => (events.push(`body ${c.toString()}`), true),
      onDrain: (cb) => cb(),
      bindAbort: () => {},
      end: () => events.push('end'),
      fail: (s) => events.push(`fail ${s}`),
      close: () => events.push('close'),
    };
    return { sink, events };
  }
  const head = (statusCode: number, headers: string[]): ResponseHead => ({ statusCode, reason: 'R', headers, contentLength: -1, chunked: false, headerBytes: 0, headerCount: headers.length / 2 });

  /** A condition that answers on a later turn of the event loop, as a file or network check would. */
  const later = definePlugin({
    name: 'test_later',
    apiVersion: PLUGIN_API_VERSION,
    description: 'an asynchronous route condition',
    routeConditions: [{ name: 'later', prepare: (args: string) => (c: RouteContext) => new Promise<boolean>((r) => setTimeout(() => r(c.expand(args) === 'yes'), 5)) }],
  });

  function setup(entries: Entry[]): { entry: ResponseSink; events: string[]; ctx: RequestRouteContext } {
    const tables = compileRoutingTables(entries, [redirect, later]);
    const { sink, events } = recorder();
    const edits: RouteResponseEdits = new RouteResponseEdits((): ResponseSink => chained.entry(), tables.headers);
    const ctx = new RequestRouteContext({ options: new ResolvedOptions(entries), vars: [['PATH_INFO', '/p']], modifier1: 0, modifier2: 0, defs: tables.defs, response: edits, log: () => {}, workerId: 1, pid: 1, startedAt: Date.now() });
    const chained: ChainedResponse = new ChainedResponse(ctx, tables, () => editingSink(sink, edits), () => {});
    return { entry: chained.entry(), events, ctx };
  }

  it('holds body and end while an asynchronous condition runs, then sends them in order', async () => {
    const { entry, events } = setup([e('response-route-if', 'later:yes addheader:X-Later: 1')]);
    entry.head(head(200, ['Content-Type', 'text/plain']));
    // Held: the producer is told to wait (backpressure) until the head is decided.
    expect(entry.body(Buffer.from('a'))).toBe(false);
    let drained = false;
    entry.onDrain(() => (drained = true));
    entry.body(Buffer.from('b'));
    entry.end();
    expect(events).toEqual([]);
    await new Promise((r) => setTimeout(r, 30));
    expect(events).toEqual(['head 200 Content-Type,text/plain,X-Later,1', 'body a', 'body b', 'end']);
    expect(drained).toBe(true);
  });
  it('collects and pulls response headers before the response chain runs', () => {
    const { entry, events, ctx } = setup([e('collect-header', 'Content-Type CT'), e('pull-header', 'X-Secret S'), e('response-route-run', 'addheader:X-CT: ${CT}/${S}')]);
    entry.head(head(200, ['Content-Type', 'text/html', 'X-Secret', 'v']));
    entry.end();
    expect(events).toEqual(['head 200 Content-Type,text/html,X-CT,text/html/v', 'end']);
    expect(ctx.getVar('S')).toBe('v');
  });
  it('clearheaders rewrites the head in flight and runs the error chain again for the new status', () => {
    const { entry, events, ctx } = setup([e('error-route-run', 'addheader:X-E: ${uwsgi[status]}'), e('response-route-run', 'clearheaders:404 Not Found')]);
    entry.head(head(200, ['Content-Type', 'text/plain', 'Content-Length', '1']));
    entry.body(Buffer.from('x'));
    entry.end();
    expect(events).toEqual(['head 404 Content-Length,1,X-E,200,X-E,404', 'body x', 'end']);
    expect(ctx.status).toBe(404);
  });
  it('an answer from the error chain replaces the response; the original body is discarded', () => {
    const { entry, events } = setup([e('error-route-status', '502 redirect:/elsewhere')]);
    entry.head(head(502, ['Content-Type', 'text/plain']));
    entry.body(Buffer.from('bad gateway body'));
    entry.end();
    expect(events).toEqual(['head 302 Location,/elsewhere,Content-Length,5', 'body Moved', 'end']);
  });
  it('a BREAK without an answer closes the connection once the response ends', () => {
    const { entry, events } = setup([e('response-route-run', 'break:')]);
    entry.head(head(200, []));
    entry.body(Buffer.from('x'));
    expect(events).toEqual([]);
    entry.end();
    expect(events).toEqual(['close']);
  });
  it('turns a failure before the head into a response that goes through the chains', () => {
    const { entry, events } = setup([e('error-route-status', '503 addheader:X-Busy: 1')]);
    entry.fail(503, 'no worker');
    expect(events).toEqual(['head 503 Content-Type,text/plain,Content-Length,19,X-Busy,1', 'body Service Unavailable', 'end']);
  });
});
