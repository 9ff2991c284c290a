/**
 * The request log line of a static response: the same record the pipeline writes for an
 * app response, with this core worker standing in for the bridge (pid, worker id).
 */
import type { ResponseSink } from '../bridge/pool-client.ts';
import { PipelineRequestRecord } from '../logging/request-record.ts';
import type { RequestLogger } from '../logging/worker-log.ts';
import type { ServerLog } from '../logging/server-log.ts';
import type { ResponseHead } from '../protocol/http-response-parser.ts';
import type { CoreRequest } from '../server/pipeline.ts';

export function loggedSink(req: CoreRequest, sink: ResponseSink, requestLog: RequestLogger, log: ServerLog, workerId: number): ResponseSink {
  let head: ResponseHead | null = null;
  let bodyBytes = 0;
  let clientGone = false;
  let logged = false;
  const t0 = performance.now();
  const finish = (status: number): void => {
    // A client that leaves mid-body aborts, and the stream must not log the request again.
    if (logged) return;
    logged = true;
    const record = new PipelineRequestRecord(req.vars);
    record.pid = process.pid;
    record.workerId = workerId;
    record.remoteAddr = req.remoteAddr;
    record.varCount = req.vars.length;
    // The vars block as a uwsgi packet would carry it (vars are latin-1 byte strings).
    let packetSize = 0;
    for (const [k, v] of req.vars) packetSize += 4 + k.length + v.length;
    record.packetSize = packetSize;
    record.startedAt = req.startedAt;
    record.micros = Math.round((performance.now() - t0) * 1000);
    record.method = req.method;
    record.uri = req.uri;
    record.protocol = req.protocol;
    record.status = status;
    record.bodyBytes = bodyBytes;
    record.headerCount = head ? head.headerCount : 0;
    record.headerBytes = head ? head.headerBytes : 0;
    record.modifier1 = req.modifier1;
    record.modifier2 = req.modifier2;
    record.writeErrors = clientGone ? 1 : 0;
    if (requestLog.wants(record)) log.request(requestLog.format(record));
  };
  return {
    head(h) {
      head = h;
      sink.head(h);
    },
    body(chunk) {
      bodyBytes += chunk.length;
      return sink.body(chunk);
    },
    onDrain: (cb) => sink.onDrain(cb),
    bindAbort: (abort) =>
      sink.bindAbort(() => {
        clientGone = true;
        abort();
        finish(head ? head.statusCode : 499);
      }),
    end() {
      sink.end();
      finish(head ? head.statusCode : 500);
    },
    fail(status, reason) {
      sink.fail(status, reason);
      finish(head ? head.statusCode : status);
    },
  };
}
