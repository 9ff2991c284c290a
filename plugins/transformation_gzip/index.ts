/**
 * transformation_gzip (spec/subsystems.md §7): `gzip:` compresses the response body as it
 * streams. Each non-empty chunk is deflated and sync-flushed (so a streaming response stays
 * streaming); the first one adds `Content-Encoding: gzip` and carries the gzip header, the end
 * pass appends the CRC32 + ISIZE trailer. An empty response is left alone. It does not look at
 * Accept-Encoding: guard it with `route-if = contains:${HTTP_ACCEPT_ENCODING};gzip gzip:`.
 * Embedded, as in uWSGI's default build.
 */
import zlib from 'node:zlib';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import type { Transformation, TransformView } from '../../core/transform/api.ts';
import { transformationActions } from '../../core/transform/actions.ts';
import { setHeader } from '../../core/transform/chain.ts';

class GzipTransformation implements Transformation {
  readonly name = 'gzip';
  readonly streaming = true;
  /** Created on the first non-empty chunk: nothing is compressed (no header) for an empty body. */
  private z: zlib.Gzip | null = null;
  private out: Buffer[] = [];
  private error: Error | null = null;

  transform(chunk: Buffer, view: TransformView): Promise<Buffer> {
    const z = this.stream(view);
    return new Promise((resolve, reject) => {
      z.write(chunk);
      // Z_SYNC_FLUSH: everything written so far comes out now, at a byte boundary, so the
      // client can decode each piece as it arrives (uWSGI's deflate(Z_SYNC_FLUSH)).
      z.flush(zlib.constants.Z_SYNC_FLUSH, () => (this.error ? reject(this.error) : resolve(this.take())));
    });
  }

  final(): Promise<Buffer | undefined> | undefined {
    const z = this.z;
    if (!z) return undefined;
    return new Promise((resolve, reject) => {
      z.once('end', () => (this.error ? reject(this.error) : resolve(this.take())));
      z.end();
    });
  }

  dispose(): void {
    this.z?.destroy();
    this.z = null;
  }

  private stream(view: TransformView): zlib.Gzip {
    if (this.z) return this.z;
    const z = zlib.createGzip();
    z.on('data', (b: Buffer) => this.out.push(b));
    z.on('error', (err) => {
      this.error = err;
    });
    if (!view.sent) setHeader(view.headers, 'Content-Encoding', 'gzip');
    this.z = z;
    return z;
  }

  private take(): Buffer {
    const b = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out = [];
    return b;
  }
}

export default definePlugin({
  name: 'transformation_gzip',
  apiVersion: PLUGIN_API_VERSION,
  description: 'response transformation: the gzip action (streaming gzip, Content-Encoding: gzip)',
  routeActions: transformationActions([{ name: 'gzip', prepare: () => () => new GzipTransformation() }]),
});
