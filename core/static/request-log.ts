/**
 * The request log line of a static response: the same record the pipeline writes for an
 * app response (core/server/logged-sink.ts), with this core worker standing in for the bridge.
 */
import type { ResponseSink } from '../bridge/pool-client.ts';
import type { RequestLogger } from '../logging/worker-log.ts';
import type { ServerLog } from '../logging/server-log.ts';
import { requestRecord, tallyingSink, varsBlockSize } from '../server/logged-sink.ts';
import type { CoreRequest } from '../server/pipeline.ts';
import { canSendFile, type FileSendingSink } from './sendfile.ts';

export function loggedSink(req: CoreRequest, sink: ResponseSink, requestLog: RequestLogger, log: ServerLog, workerId: number): ResponseSink {
  const t0 = performance.now();
  // Bytes sendfile(2) sent never pass through body(), where the tally counts them.
  let sentByKernel = 0;
  const logged = tallyingSink(sink, (status, tally) => {
    const record = requestRecord(req, status, tally);
    record.bodyBytes += sentByKernel;
    record.pid = process.pid;
    record.workerId = workerId;
    record.packetSize = varsBlockSize(req);
    record.micros = Math.round((performance.now() - t0) * 1000);
    requestLog.emit(record, log);
  });
  // The tally leaves the front end's sendfile capability behind (it forwards only what every
  // sink shares): pass it on, counting what it sent.
  if (canSendFile(sink)) {
    const counted: FileSendingSink = {
      sendFile: (fd, offset, length, timeoutMs, done) =>
        sink.sendFile(fd, offset, length, timeoutMs, (err, sent) => {
          sentByKernel += sent;
          done(err, sent);
        }),
    };
    return Object.assign(logged, counted);
  }
  return logged;
}
