/**
 * Buffering of request bodies whose length is not known up front (chunked uploads): a uwsgi
 * packet must announce CONTENT_LENGTH, so the core reads the whole body first. Small bodies
 * stay in memory; past SPOOL_THRESHOLD they go to a temporary file (uWSGI's post-buffering
 * does the same), so a large upload never sits in the server's memory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { BodySource } from '../bridge/pool-client.ts';

export const SPOOL_THRESHOLD = 1024 * 1024;

export interface SpooledBody {
  size: number;
  source: BodySource;
}

/**
 * Read `input` to the end. Resolves with the body (as a source to stream to a bridge), or
 * rejects with `tooLarge` when it exceeds `limit` (0 = no limit) or when the input fails.
 */
export function spoolBody(input: Readable, limit: number): Promise<SpooledBody> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let file: { path: string; stream: fs.WriteStream } | null = null;
    let failed = false;
    const fail = (err: Error & { tooLarge?: boolean }): void => {
      if (failed) return;
      failed = true;
      // Over the limit: stop reading but keep the connection, so the 413 reaches the client
      // (the front end then closes it). A broken input is destroyed.
      if (err.tooLarge) input.pause();
      else input.destroy();
      if (file) {
        file.stream.destroy();
        fs.rm(file.path, { force: true }, () => {});
      }
      reject(err);
    };
    input.on('data', (d: Buffer) => {
      if (failed) return;
      size += d.length;
      if (limit > 0 && size > limit) {
        fail(Object.assign(new Error(`request body exceeds --limit-post ${limit}`), { tooLarge: true }));
        return;
      }
      if (!file && size > SPOOL_THRESHOLD) {
        const p = path.join(os.tmpdir(), `tsuwsgi-body-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
        file = { path: p, stream: fs.createWriteStream(p, { flags: 'wx', mode: 0o600 }) };
        file.stream.on('error', (err) => fail(err));
        for (const part of parts.splice(0)) file.stream.write(part);
      }
      if (file) {
        if (!file.stream.write(d)) {
          input.pause();
          file.stream.once('drain', () => input.resume());
        }
      } else parts.push(d);
    });
    input.on('error', (err) => fail(err));
    input.on('end', () => {
      if (failed) return;
      if (!file) {
        const body = Buffer.concat(parts, size);
        resolve({ size, source: { pipe: (write, _wait, done) => (write(body), done()) } });
        return;
      }
      const spooled = file;
      spooled.stream.end(() => resolve({ size, source: fileSource(spooled.path) }));
    });
  });
}

/** Stream a spooled body from its file with backpressure, then remove the file. */
function fileSource(p: string): BodySource {
  return {
    pipe(write, waitDrain, done) {
      const rs = fs.createReadStream(p);
      const cleanup = (): void => fs.rm(p, { force: true }, () => {});
      rs.on('data', (chunk) => {
        if (!write(chunk as Buffer)) {
          rs.pause();
          waitDrain(() => rs.resume());
        }
      });
      rs.on('end', () => {
        cleanup();
        done();
      });
      rs.on('error', cleanup);
    },
  };
}
