/**
 * The static file server of a core worker (spec/subsystems.md §17): built from the master's
 * StaticPlan, asked by the request pipeline before app dispatch. Only exists when a lookup
 * option is configured, so without one requests pay nothing.
 */
import type { ResponseSink } from '../bridge/pool-client.ts';
import type { RequestLogger } from '../logging/worker-log.ts';
import type { ServerLog } from '../logging/server-log.ts';
import { getVar } from '../protocol/uwsgi-packet.ts';
import type { CoreRequest } from '../server/pipeline.ts';
import { GzipRules } from './gzip.ts';
import { compileExpires } from './http-rules.ts';
import { StaticLookup } from './lookup.ts';
import { MimeTable } from './mime.ts';
import type { StaticPlan } from './plan.ts';
import { loggedSink } from './request-log.ts';
import { serveStatic, type StaticServeConfig } from './serve.ts';
import { sendfileStatus } from './sendfile.ts';

/** What serveStatic() needs from a plan (the MIME files are read here, once). */
export function serveConfigFrom(plan: StaticPlan, warn: (line: string) => void): StaticServeConfig {
  return {
    mime: MimeTable.load(plan.mimeFiles, warn),
    expires: compileExpires(plan.expires),
    gzip: new GzipRules(plan.gzip),
    serveMode: plan.serveMode,
    honourRange: plan.honourRange,
    send: { zeroCopy: !plan.disableSendfile, timeoutMs: plan.socketTimeout * 1000, warn },
  };
}

export class StaticFiles {
  readonly config: StaticServeConfig;
  private readonly lookup: StaticLookup;
  private readonly log: ServerLog;
  private readonly requestLog: RequestLogger | null;
  private readonly workerId: number;

  constructor(plan: StaticPlan, log: ServerLog, requestLog: RequestLogger | null, workerId: number) {
    this.log = log;
    this.requestLog = requestLog;
    this.workerId = workerId;
    const warn = (line: string): void => log.warn(line);
    this.lookup = new StaticLookup(plan, warn);
    this.config = serveConfigFrom(plan, warn);
    // Once per instance (the first core worker): why large static files are copied.
    const zeroCopy = sendfileStatus();
    if (!zeroCopy.on && !plan.disableSendfile && workerId <= 1) {
      log.warn(`static files: sendfile(2) is off, file bodies are copied through user space: ${zeroCopy.reason}`);
    }
  }

  /**
   * Serve the request if a static file answers it; false (synchronously) sends it on to the
   * app. The lookup is a few synchronous system calls (lookup.ts says why); the body is sent
   * asynchronously. `wrap` puts routing's chains, header edits and transformations between
   * the file and the (logged) client sink.
   */
  tryServe(req: CoreRequest, sink: ResponseSink, noLog = false, wrap?: (out: ResponseSink) => ResponseSink): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const pathInfo = getVar(req.vars, 'PATH_INFO') ?? '';
    const docroot = getVar(req.vars, 'DOCUMENT_ROOT');
    if (!this.lookup.mayServe(pathInfo, docroot)) return false;
    const found = this.lookup.find(pathInfo, docroot);
    if (!found) return false;
    const logged = this.requestLog && !noLog ? loggedSink(req, sink, this.requestLog, this.log, this.workerId) : sink;
    const out = wrap ? wrap(logged) : logged;
    serveStatic(this.config, found, req.vars, req.method, out).catch((err: Error) => {
      // Before any header (open failed: the file vanished, EACCES): a clean 500 the log explains.
      this.log.error(`static file ${found.file} for ${req.uri} could not be served: ${err.message}`);
      out.fail(500, err.message);
    });
    return true;
  }
}
