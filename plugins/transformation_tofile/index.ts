/**
 * transformation_tofile (spec/subsystems.md §7): `tofile:filename=<f>[,mode=<octal>]`
 * (alias `to-file`, key alias `name`) stores the final response body in a file, typically as
 * a cache that a later `static:` rule serves. Buffering: at the end, if the status is 200, the
 * client is still there and the body is not empty, the body is written to the filename
 * (expanded when the rule runs, so `$1` and `${VAR}` work) with O_TRUNC; the body still goes
 * to the client. Failures are logged and never fail the response (uWSGI is tolerant here).
 * Embedded, as in uWSGI's default build.
 */
import fs from 'node:fs/promises';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import type { RouteContext } from '../../core/routing/api.ts';
import type { Transformation, TransformView } from '../../core/transform/api.ts';
import { parseKeyValues, transformationActions } from '../../core/transform/actions.ts';
import { RoutingError } from '../../core/errors.ts';

const KEYS = ['filename', 'name', 'mode'];

/**
 * Writes to the same path are serialized within this process. uWSGI takes an fcntl lock,
 * which Node cannot; one core worker serializing its own writes keeps two concurrent
 * responses from interleaving their bytes in the file.
 */
const pending = new Map<string, Promise<void>>();

function serialized(file: string, job: () => Promise<void>): Promise<void> {
  const before = pending.get(file) ?? Promise.resolve();
  const run = before.then(job, job);
  pending.set(file, run);
  return run.finally(() => {
    if (pending.get(file) === run) pending.delete(file);
  });
}

async function writeBody(file: string, mode: number, body: Buffer, log: (line: string) => void): Promise<void> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, 'w', mode);
  } catch (err) {
    log(`tofile: open("${file}"): ${(err as Error).message}`);
    return;
  }
  try {
    await fh.writeFile(body);
  } catch (err) {
    // A half-written cache file is worse than none: a static rule would serve it.
    log(`tofile: write("${file}"): ${(err as Error).message}: file removed`);
    await fs.unlink(file).catch(() => undefined);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

class ToFile implements Transformation {
  readonly name = 'tofile';
  readonly streaming = false;
  readonly preservesLength = true;
  private readonly file: string;
  private readonly mode: number;
  private readonly ctx: RouteContext;

  constructor(file: string, mode: number, ctx: RouteContext) {
    this.file = file;
    this.mode = mode;
    this.ctx = ctx;
  }

  async transform(body: Buffer, view: TransformView): Promise<Buffer> {
    // Only successful responses are stored (uWSGI: status 200, no write errors). A client
    // that left stops the chain before this pass, so reaching it means no write error.
    if (view.statusCode === 200 && body.length > 0 && this.file !== '') {
      await serialized(this.file, () => writeBody(this.file, this.mode, body, (line) => this.ctx.log(line)));
    }
    return body;
  }
}

function prepare(arg: string): (ctx: RouteContext) => Transformation {
  const kv = parseKeyValues(arg);
  for (const k of kv.keys()) {
    if (!KEYS.includes(k)) throw new RoutingError(`unknown key "${k}" (allowed: ${KEYS.join(', ')})`);
  }
  const filename = kv.get('filename') ?? kv.get('name');
  if (filename === undefined || filename === '') throw new RoutingError('a filename is required: tofile:filename=/path/to/file');
  const modeText = kv.get('mode');
  if (modeText !== undefined && !/^[0-7]{3,4}$/.test(modeText)) {
    throw new RoutingError(`mode "${modeText}" is not an octal file mode (e.g. mode=0640)`);
  }
  const mode = modeText === undefined ? 0o644 : Number.parseInt(modeText, 8);
  return (ctx) => {
    // Expanded when the rule runs (uWSGI does the same): `$1` is this rule's capture.
    const file = ctx.expand(filename);
    if (file === '') ctx.log(`tofile: "${filename}" expands to an empty filename: the response is not stored`);
    return new ToFile(file, mode, ctx);
  };
}

export default definePlugin({
  name: 'transformation_tofile',
  apiVersion: PLUGIN_API_VERSION,
  description: 'response transformation: the tofile action (store the final body in a file)',
  routeActions: transformationActions([{ name: 'tofile', aliases: ['to-file'], prepare }]),
});
