/**
 * The core's transformations (spec/subsystems.md §7, "core" rows): `flush`, `fixcl`,
 * `forcecl`. uWSGI has them in core/transformations.c rather than in plugins, so they are
 * registered by the core routing module (core/routing/module.ts).
 */
import type { Transformation, TransformationDefinition, TransformView } from './api.ts';
import { setHeader } from './chain.ts';

/** `flush:` sends what it has to the client now and still passes it on (streaming + caching). */
const flush: TransformationDefinition = {
  name: 'flush',
  prepare: () => () => ({
    name: 'flush',
    streaming: true,
    preservesLength: true,
    transform(chunk: Buffer, view: TransformView) {
      view.write(chunk);
      return chunk;
    },
  }),
};

/** `fixcl:` / `forcecl:` buffer the body and set Content-Length to its size. */
function contentLength(name: string): TransformationDefinition {
  return {
    name,
    prepare: () => (ctx): Transformation => {
      // A HEAD response carries no body through the chain (the core drops it before the
      // transformations), so its size says nothing: keep the app's Content-Length.
      const head = ctx.getVar('REQUEST_METHOD') === 'HEAD';
      return {
        name,
        streaming: false,
        preservesLength: true,
        transform(body: Buffer, view: TransformView) {
          // A later delheader:Content-Length still wins (routing's edits apply after the chain).
          if (!view.sent && !head) setHeader(view.headers, 'Content-Length', String(body.length));
          return body;
        },
      };
    },
  };
}

export const CORE_TRANSFORMATIONS: readonly TransformationDefinition[] = [flush, contentLength('fixcl'), contentLength('forcecl')];
