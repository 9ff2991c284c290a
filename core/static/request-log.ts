/**
 * The request log line of a static response: the same record the pipeline writes for an
 * app response (core/server/logged-sink.ts), with this core worker standing in for the bridge,
 * and uWSGI's marks of a response no app made: `app: -1|req: -1/N`, `via sendfile()` when the
 * body went out with sendfile(2), `0 switches`.
 */
import type { ResponseSink } from '../bridge/pool-client.ts';
import type { RequestLogger } from '../logging/worker-log.ts';
import type { ServerLog } from '../logging/server-log.ts';
import { requestRecord, tallyingSink, varsBlockSize } from '../server/logged-sink.ts';
import type { CoreRequest } from '../server/pipeline.ts';

/** Static responses this core worker logged: the line's worker request count (uWSGI: `req: -1/N`). */
let staticRequests = 0;

export function loggedSink(req: CoreRequest, sink: ResponseSink, requestLog: RequestLogger, log: ServerLog, workerId: number): ResponseSink {
  const t0 = performance.now();
  // The tally counts a body sent with sendfile(2) too, and marks the record (requestRecord).
  return tallyingSink(sink, (status, tally) => {
    const record = requestRecord(req, status, tally);
    record.pid = process.pid;
    // No app served it (uWSGI: app -1, its request count -1) and no async switch happened.
    record.app = -1;
    record.appRequests = -1;
    record.workerRequests = ++staticRequests;
    record.switches = 0;
    record.workerId = workerId;
    record.packetSize = varsBlockSize(req);
    record.micros = Math.round((performance.now() - t0) * 1000);
    requestLog.emit(record, log);
  });
}
