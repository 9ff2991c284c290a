/**
 * transformation_toupper (spec/subsystems.md §7): `toupper:` uppercases every ASCII letter of
 * the body as it streams (uWSGI's demo transformation). Embedded, as in uWSGI's default build.
 */
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import type { Transformation } from '../../core/transform/api.ts';
import { transformationActions } from '../../core/transform/actions.ts';

export function toUpperAscii(chunk: Buffer): Buffer {
  const out = Buffer.allocUnsafe(chunk.length);
  for (let i = 0; i < chunk.length; i++) {
    const c = chunk[i]!;
    // Bytes only: multi-byte UTF-8 sequences are never in a..z, so they pass unchanged.
    out[i] = c >= 0x61 && c <= 0x7a ? c - 0x20 : c;
  }
  return out;
}

export default definePlugin({
  name: 'transformation_toupper',
  apiVersion: PLUGIN_API_VERSION,
  description: 'response transformation: the toupper action (ASCII uppercase of the body)',
  routeActions: transformationActions([
    { name: 'toupper', prepare: () => (): Transformation => ({ name: 'toupper', streaming: true, preservesLength: true, transform: toUpperAscii }) },
  ]),
});
