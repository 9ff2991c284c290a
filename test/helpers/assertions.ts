/**
 * Small helpers the integration suites share: reading a JSON answer with a useful failure
 * message, digests of bodies, and polling for a condition with a deadline.
 */
import crypto from 'node:crypto';
import { sleep } from './server.ts';

/** Parse a JSON response body; a non-JSON answer fails with what actually came back. */
export function json(body: Buffer): Record<string, unknown> {
  try {
    return JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new Error(`expected JSON, got ${JSON.stringify(body.toString('latin1').slice(0, 500))}`);
  }
}

export const md5 = (b: Buffer | string): string => crypto.createHash('md5').update(b).digest('hex');
export const sha256 = (b: Buffer | string): string => crypto.createHash('sha256').update(b).digest('hex');

/** Poll `f` every 50 ms until it returns something other than undefined; fail after `timeoutMs`. */
export async function waitFor<T>(what: string, f: () => Promise<T | undefined> | T | undefined, timeoutMs = 10000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}
