/**
 * Helpers of the logging suites (loggers.test.ts, logging-options.test.ts): servers whose log
 * goes elsewhere than the terminal, and waiting for what a log file or listener received.
 */
import fs from 'node:fs';
import net from 'node:net';
import { fixture, freePort, sleep, startServer, type ServerHandle } from './server.ts';

/** The WSGI app of the logging suites (it prints, fails and sleeps on request). */
export const LOG_APP = fixture('log_app.py');

/**
 * Start tsuwsgi serving LOG_APP whose log goes elsewhere than the terminal (so the helper
 * cannot see the ready line): on a free port, ready when the port accepts connections.
 */
export async function startOn(args: string[]): Promise<{ srv: ServerHandle; port: number }> {
  const port = await freePort();
  const srv = await startServer(['--http-socket', `127.0.0.1:${port}`, '--wsgi-file', LOG_APP, ...args], { waitReady: false });
  const deadline = Date.now() + 30000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.once('error', () => resolve(false));
    });
    if (ok) return { srv, port };
    if (srv.hasExited || Date.now() > deadline) throw new Error(`tsuwsgi ${args.join(' ')} did not start listening; log:\n${srv.logs()}`);
    await sleep(100);
  }
}

/** Wait until `read()` satisfies `ok` (or fail with what was read). */
export async function until<T>(read: () => T, ok: (v: T) => boolean, what: string, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = read();
  while (!ok(v)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got:\n${typeof v === 'string' ? v : JSON.stringify(v, null, 1)}`);
    await sleep(50);
    v = read();
  }
  return v;
}

/** A file's text, or "" while it does not exist. */
export const readFile = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
