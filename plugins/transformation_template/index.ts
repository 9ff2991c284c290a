/**
 * transformation_template (spec/subsystems.md §7): `template:` applies routing's variable
 * expansion (§6.4: `${VAR}`, `${name[key]}`, `$0`..`$9`) to the response body, so an app (or a
 * static file) can emit `ip=${REMOTE_ADDR}` and the client gets `ip=127.0.0.1`. Buffering,
 * as in uWSGI: a `${…}` may straddle two chunks, so only the whole body can be expanded.
 * `$n` are the captures of the rule that added `template:`, as uWSGI passes that rule to the
 * translation. Embedded, as in uWSGI's default build.
 */
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import type { RouteContext } from '../../core/routing/api.ts';
import type { Transformation } from '../../core/transform/api.ts';
import { transformationActions } from '../../core/transform/actions.ts';

const DOLLAR = 0x24;

class Template implements Transformation {
  readonly name = 'template';
  readonly streaming = false;
  private readonly ctx: RouteContext;
  private readonly captures: readonly string[];

  constructor(ctx: RouteContext) {
    this.ctx = ctx;
    // Later rules replace ctx.captures; the expansion must see this rule's.
    this.captures = ctx.captures;
  }

  transform(body: Buffer): Buffer {
    if (!body.includes(DOLLAR)) return body;
    // latin1 maps bytes to chars one to one, and request vars are latin1 too (the uwsgi codec),
    // so a UTF-8 (or binary) body and UTF-8 var values come back byte for byte.
    const ctx = this.ctx;
    const saved = ctx.captures;
    ctx.captures = this.captures;
    try {
      return Buffer.from(ctx.expand(body.toString('latin1')), 'latin1');
    } finally {
      ctx.captures = saved;
    }
  }
}

export default definePlugin({
  name: 'transformation_template',
  apiVersion: PLUGIN_API_VERSION,
  description: 'response transformation: the template action (routing variable expansion of the body)',
  routeActions: transformationActions([
    {
      name: 'template',
      // uWSGI ignores the argument, and configs written for it may carry one: so do we.
      prepare: () => (ctx) => new Template(ctx),
    },
  ]),
});
