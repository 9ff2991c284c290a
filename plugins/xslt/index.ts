/**
 * xslt (spec/subsystems.md §6.6, §7): XSLT 1.0 through libxslt, as uWSGI's xslt plugin.
 *
 *   xslt:doc=FILE,stylesheet=FILE[,content_type=TYPE][,params=a=1&b=2]    route action
 *   toxslt:stylesheet=FILE[,content_type=TYPE][,params=…]                  transformation
 *
 * Every value is expanded per request (`$1`, `${VAR}`…); content_type defaults to text/html.
 * The work is libxslt's, in native/xslt.c (built by `npm ci`; without libxslt1-dev the plugin
 * refuses to load and says what to install), off the event loop, with parsed stylesheets
 * cached by path and mtime.
 *
 * What uWSGI 2.0.21 answers, and tsuwsgi with it (test/integration/xslt.test.ts compares them):
 * - `xslt:` → `200 OK`, `Content-Length`, `Content-Type` and the result. When the doc or the
 *   stylesheet is missing or broken, or the result is empty, nothing is answered: the
 *   connection is closed (uWSGI's BREAK without a response) and libxml2's report is logged.
 * - `toxslt` transforms the whole response body (buffering) and sets the Content-Type; an
 *   empty body (HEAD, 304) goes through untouched.
 *
 * Where tsuwsgi differs, on purpose (uWSGI bugs that hurt users):
 * - params are XSLT string parameters; uWSGI evaluates `"value"` as XPath, so a value with a
 *   `"` breaks the request, or injects XPath (document('/etc/passwd')) through ${QUERY_STRING}.
 * - `xslt:`'s content_type is expanded like the other values (uWSGI expands it, then sends
 *   the unexpanded text).
 * - an unknown key (`content-type=` for `content_type=`) is refused at start-up; uWSGI
 *   silently ignores it.
 * - `toxslt` replaces the response's Content-Type (uWSGI adds a second one), and the chain
 *   drops the app's Content-Length, which no longer matches (uWSGI keeps it: the client waits
 *   for bytes that never come).
 * - `toxslt` on a body that is not XML (or a broken stylesheet) answers 500 while the head is
 *   still held; uWSGI sends the app's status and headers with an empty body.
 */
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition, type RouteContext, type RouteOutcome } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import { respond } from '../../core/routing/respond.ts';
import type { Transformation, TransformView } from '../../core/transform/api.ts';
import { parseKeyValues, transformationActions } from '../../core/transform/actions.ts';
import { setHeader, TransformError } from '../../core/transform/chain.ts';
import { cText, loadXsltAddon, parseXsltParams, xsltTransform, type XsltResult } from './addon.ts';

const DEFAULT_CONTENT_TYPE = 'text/html';

interface XsltArgs {
  doc: string | undefined;
  stylesheet: string;
  contentType: string;
  params: string | undefined;
}

/** uWSGI's uwsgi_kvlist_parse of the argument, with the keys this action knows. */
function parseArgs(arg: string, keys: readonly string[], example: string): XsltArgs {
  const kv = parseKeyValues(arg);
  for (const k of kv.keys()) {
    if (!keys.includes(k)) throw new RoutingError(`unknown key "${k}" (allowed: ${keys.join(', ')}; e.g. ${example})`);
  }
  const stylesheet = kv.get('stylesheet');
  if (!stylesheet) throw new RoutingError(`a stylesheet is required (e.g. ${example})`);
  return { doc: kv.get('doc'), stylesheet, contentType: kv.get('content_type') || DEFAULT_CONTENT_TYPE, params: kv.get('params') };
}

/** libxml2's reports, one server log line each (uWSGI prints them to its log as they come). */
function logMessages(ctx: RouteContext, messages: string): void {
  if (messages === '') return;
  for (const line of messages.replace(/\n$/, '').split('\n')) ctx.log(line);
}

function failure(result: Extract<XsltResult, { ok: false }>, doc: string, stylesheet: string): string {
  switch (result.failed) {
    case 'doc':
      return `cannot read the XML document ${doc}`;
    case 'stylesheet':
      return `cannot parse the stylesheet ${stylesheet}`;
    case 'transform':
      return `the stylesheet ${stylesheet} failed on ${doc}`;
    default:
      return `the stylesheet ${stylesheet} produced no output for ${doc}`;
  }
}

const XSLT_EXAMPLE = 'xslt:doc=/srv/data/$1.xml,stylesheet=/srv/xsl/page.xsl';

const xslt: RouteActionDefinition = {
  name: 'xslt',
  prepare(arg, origin) {
    let args: XsltArgs;
    try {
      args = parseArgs(arg, ['doc', 'stylesheet', 'content_type', 'params'], XSLT_EXAMPLE);
      if (!args.doc) throw new RoutingError(`a doc is required (e.g. ${XSLT_EXAMPLE})`);
    } catch (err) {
      throw new RoutingError(`invalid "xslt:" action in --${origin.option} "${origin.value}": ${(err as Error).message}`, err);
    }
    const { doc, stylesheet, contentType, params } = args as XsltArgs & { doc: string };
    return async (ctx: RouteContext): Promise<RouteOutcome> => {
      const docPath = cText(ctx.expand(doc));
      const sheetPath = cText(ctx.expand(stylesheet));
      const result = await xsltTransform(docPath, sheetPath, parseXsltParams(params === undefined ? null : ctx.expand(params)));
      logMessages(ctx, result.messages);
      if (!result.ok) {
        // uWSGI answers nothing here (BREAK without a response): the connection is closed.
        ctx.log(`xslt: ${failure(result, docPath, sheetPath)}: the connection is closed`);
        return 'break';
      }
      respond(ctx, 200, 'OK', ['Content-Length', String(result.output.length), 'Content-Type', ctx.expand(contentType)], result.output);
      return 'break';
    };
  },
};

class ToXslt implements Transformation {
  readonly name = 'toxslt';
  readonly streaming = false;
  private readonly ctx: RouteContext;
  private readonly stylesheet: string;
  private readonly contentType: string;
  private readonly params: string[];

  constructor(ctx: RouteContext, stylesheet: string, contentType: string, params: string[]) {
    this.ctx = ctx;
    this.stylesheet = stylesheet;
    this.contentType = contentType;
    this.params = params;
  }

  async transform(body: Buffer, view: TransformView): Promise<Buffer> {
    // No body (HEAD, 204, 304, an empty answer): nothing to transform. uWSGI fails to parse it
    // and sends the app's head with no body, which is the same as leaving it alone.
    if (body.length === 0) return body;
    const result = await xsltTransform(body, this.stylesheet, this.params);
    logMessages(this.ctx, result.messages);
    if (!result.ok) {
      const what = result.failed === 'doc' ? 'the response body is not XML' : failure(result, 'the response body', this.stylesheet);
      throw new TransformError(`toxslt: ${what}`);
    }
    // uWSGI adds a second Content-Type beside the app's; one, the result's, is what clients can use.
    if (!view.sent) setHeader(view.headers, 'Content-Type', this.contentType);
    return result.output;
  }
}

const TOXSLT_EXAMPLE = 'toxslt:stylesheet=/srv/xsl/page.xsl';

export default definePlugin({
  name: 'xslt',
  apiVersion: PLUGIN_API_VERSION,
  description: 'XSLT through libxslt: the xslt route action and the toxslt transformation',
  // Without the addon (libxslt1-dev missing at `npm ci`) the plugin refuses the config at
  // start-up rather than failing every request.
  init() {
    loadXsltAddon();
  },
  routeActions: [
    xslt,
    ...transformationActions([
      {
        name: 'toxslt',
        prepare(arg) {
          const { stylesheet, contentType, params } = parseArgs(arg, ['stylesheet', 'content_type', 'params'], TOXSLT_EXAMPLE);
          // Expanded when the rule runs, as uWSGI translates them in the routing function.
          return (ctx) => new ToXslt(ctx, cText(ctx.expand(stylesheet)), ctx.expand(contentType), parseXsltParams(params === undefined ? null : ctx.expand(params)));
        },
      },
    ]),
  ],
});
