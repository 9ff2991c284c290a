/**
 * The request log line of a static response: the same record the pipeline writes for an
 * app response (core/server/logged-sink.ts), with this core worker standing in for the bridge.
 */
import type { ResponseSink } from '../bridge/pool-client.ts';
import type { RequestLogger } from '../logging/worker-log.ts';
import type { ServerLog } from '../logging/server-log.ts';
import { requestRecord, tallyingSink, varsBlockSize } from '../server/logged-sink.ts';
import type { CoreRequest } from '../server/pipeline.ts';

export function loggedSink(req: CoreRequest, sink: ResponseSink, requestLog: RequestLogger, log: ServerLog, workerId: number): ResponseSink {
  const t0 = performance.now();
  return tallyingSink(sink, (status, tally) => {
    const record = requestRecord(req, status, tally);
    record.pid = process.pid;
    record.workerId = workerId;
    record.packetSize = varsBlockSize(req);
    record.micros = Math.round((performance.now() - t0) * 1000);
    if (requestLog.wants(record)) log.request(requestLog.format(record));
  });
}
