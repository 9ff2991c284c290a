/**
 * transformation_chunked (spec/subsystems.md §7): `chunked:` sends the body with
 * `Transfer-Encoding: chunked` framing: each non-empty chunk becomes `<hex len>\r\n<data>\r\n`
 * and the end adds `0\r\n\r\n`. Behind the http front end, Node's ServerResponse frames a body
 * whose head says chunked by itself, so there only the header is set (the wire must carry the
 * framing once). Embedded, as in uWSGI's default build.
 */
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import type { Transformation, TransformView } from '../../core/transform/api.ts';
import { transformationActions } from '../../core/transform/actions.ts';
import { removeHeader, setHeader } from '../../core/transform/chain.ts';

const CRLF = Buffer.from('\r\n');
const TERMINATOR = Buffer.from('0\r\n\r\n');

class ChunkedTransformation implements Transformation {
  readonly name = 'chunked';
  readonly streaming = true;
  /** The header went out with the first chunk: only then does the body need a terminator. */
  private started = false;

  transform(chunk: Buffer, view: TransformView): Buffer {
    if (!this.started) {
      this.started = true;
      if (!view.sent) {
        // A message has one framing: chunked replaces any Content-Length or other coding.
        removeHeader(view.headers, 'Content-Length');
        setHeader(view.headers, 'Transfer-Encoding', 'chunked');
      }
    }
    if (view.frontEndChunks) return chunk;
    return Buffer.concat([Buffer.from(chunk.length.toString(16) + '\r\n', 'latin1'), chunk, CRLF]);
  }

  final(view: TransformView): Buffer | undefined {
    return this.started && !view.frontEndChunks ? TERMINATOR : undefined;
  }
}

export default definePlugin({
  name: 'transformation_chunked',
  apiVersion: PLUGIN_API_VERSION,
  description: 'response transformation: the chunked action (Transfer-Encoding: chunked framing)',
  routeActions: transformationActions([{ name: 'chunked', prepare: () => () => new ChunkedTransformation() }]),
});
