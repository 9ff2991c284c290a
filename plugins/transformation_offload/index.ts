/**
 * transformation_offload (spec/subsystems.md §7): `offload:[limit]` takes the whole response
 * off the app worker, then sends it to the client at the end. Chunks are accumulated in memory
 * up to `limit` bytes (default 1 MiB), beyond that in an unlinked temporary file; the end pass
 * sends the memory, or streams the file with backpressure.
 *
 * uWSGI hands that final write to an offload thread so the worker is free at once. tsuwsgi
 * has no offload threads (the core sends every byte from its event loop), but the effect the
 * user wants is the same: the app worker (bridge) is released as soon as it produced the body,
 * however slow the client is, instead of being held by backpressure. `--offload-threads N`
 * (N > 0) enables the action, as in uWSGI; without it the rule BREAKs the request (no
 * response, the connection closes) and logs an error, as uWSGI does.
 *
 * It must be the last transformation (the chain refuses the response otherwise): what it
 * sends does not go through later steps. Embedded, as in uWSGI's default build.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import type { RouteContext } from '../../core/routing/api.ts';
import type { Transformation, TransformView } from '../../core/transform/api.ts';

const EMPTY = Buffer.alloc(0);
export const DEFAULT_OFFLOAD_LIMIT = 1024 * 1024;
/** Read size when sending the temporary file back. */
const READ_SIZE = 64 * 1024;

/** A temporary file nobody else can see: created exclusively, unlinked at once (uWSGI's uwsgi_tmpfd). */
async function tmpFile(): Promise<fs.FileHandle> {
  const p = path.join(os.tmpdir(), `tsuwsgi-offload-${process.pid}-${randomBytes(8).toString('hex')}`);
  const fh = await fs.open(p, 'wx+', 0o600);
  // Unlinked now rather than at the end: a crash or a client that leaves cannot leak it.
  await fs.unlink(p).catch(() => undefined);
  return fh;
}

export class OffloadTransformation implements Transformation {
  readonly name = 'offload';
  /** Streaming although it holds everything: each chunk is stored at once, so memory stays bounded by the limit (uWSGI's can_stream). */
  readonly streaming = true;
  readonly preservesLength = true;
  readonly mustBeLast = true;
  private readonly limit: number;
  private mem: Buffer[] = [];
  private memSize = 0;
  private file: fs.FileHandle | null = null;
  private fileSize = 0;
  private disposed = false;

  constructor(limit: number) {
    this.limit = limit;
  }

  transform(chunk: Buffer): Buffer | Promise<Buffer> {
    if (this.file === null && this.memSize + chunk.length <= this.limit) {
      this.mem.push(chunk);
      this.memSize += chunk.length;
      return EMPTY;
    }
    return this.toFile(chunk).then(() => EMPTY);
  }

  async final(view: TransformView): Promise<Buffer | undefined> {
    const file = this.file;
    if (file === null) {
      const body = this.mem.length === 1 ? this.mem[0]! : Buffer.concat(this.mem);
      this.mem = [];
      return body.length > 0 ? body : undefined;
    }
    try {
      for (let pos = 0; pos < this.fileSize && !this.disposed; ) {
        // A fresh buffer per read: the socket may still hold the previous one.
        const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, this.fileSize - pos));
        const { bytesRead } = await file.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) throw new Error(`the offload temporary file ended at ${pos} of ${this.fileSize} bytes`);
        pos += bytesRead;
        view.send(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
        await view.drained();
      }
    } finally {
      this.closeFile();
    }
    return undefined;
  }

  dispose(): void {
    this.disposed = true;
    this.mem = [];
    this.closeFile();
  }

  private async toFile(chunk: Buffer): Promise<void> {
    if (this.file === null) {
      const file = await tmpFile();
      if (this.disposed) {
        await file.close();
        return;
      }
      this.file = file;
      const held = Buffer.concat(this.mem);
      this.mem = [];
      this.memSize = 0;
      await this.append(held);
    }
    await this.append(chunk);
  }

  private async append(buf: Buffer): Promise<void> {
    const file = this.file;
    if (file === null || this.disposed) return;
    for (let off = 0; off < buf.length; ) {
      const { bytesWritten } = await file.write(buf, off, buf.length - off, this.fileSize);
      off += bytesWritten;
      this.fileSize += bytesWritten;
    }
  }

  private closeFile(): void {
    const file = this.file;
    this.file = null;
    // FileHandle.close waits for a read or write in flight; its failure changes nothing here.
    file?.close().catch(() => undefined);
  }
}

/** `offload:` / `offload:<bytes>`: the memory limit before spilling to disk. */
export function parseOffloadLimit(arg: string): number {
  if (arg === '') return DEFAULT_OFFLOAD_LIMIT;
  if (!/^\d+$/.test(arg)) throw new RoutingError(`"offload:" takes a size in bytes (the memory limit before the response spills to a temporary file), got "${arg}"`);
  return Number(arg);
}

/** --offload-threads as a number; the option loader has already refused a malformed value. */
function offloadThreads(ctx: RouteContext): number {
  const v = ctx.options.string('offload-threads');
  return v === undefined ? 0 : Number.parseInt(v, 10) || 0;
}

export default definePlugin({
  name: 'transformation_offload',
  apiVersion: PLUGIN_API_VERSION,
  description: 'response transformation: the offload action (free the app worker, send the buffered body at the end)',
  // Not transformationActions(): without --offload-threads the action BREAKs instead of adding a step.
  routeActions: [
    {
      name: 'offload',
      prepare(arg, origin) {
        let limit: number;
        try {
          limit = parseOffloadLimit(arg);
        } catch (err) {
          throw new RoutingError(`invalid "offload:" transformation in --${origin.option} "${origin.value}": ${(err as Error).message}`, err);
        }
        return (ctx) => {
          if (offloadThreads(ctx) <= 0) {
            ctx.log('unable to use the offload transformation without offload threads !!! (set --offload-threads to a number above 0; docs/transformations.md)');
            return 'break';
          }
          // uWSGI's donotoffload clears the socket's can_offload, which this check reads.
          if (ctx.offloadDisabled) {
            ctx.log('unable to use the offload transformation without offload threads !!! (a donotoffload: rule disabled offloading for this request; docs/routing.md)');
            return 'break';
          }
          ctx.addTransformation(new OffloadTransformation(limit));
          return 'next';
        };
      },
    },
  ],
});
