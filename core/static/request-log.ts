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
import { canSendFile, type FileSendingSink } from './sendfile.ts';

/** Static responses this core worker logged: the line's worker request count (uWSGI: `req: -1/N`). */
let staticRequests = 0;

export function loggedSink(req: CoreRequest, sink: ResponseSink, requestLog: RequestLogger, log: ServerLog, workerId: number): ResponseSink {
  const t0 = performance.now();
  // Bytes sendfile(2) sent never pass through body(), where the tally counts them.
  let sentByKernel = 0;
  let viaSendfile = false;
  const logged = tallyingSink(sink, (status, tally) => {
    const record = requestRecord(req, status, tally);
    record.bodyBytes += sentByKernel;
    if (viaSendfile) record.viaSendfile = true;
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
  // The tally leaves the front end's sendfile capability behind (it forwards only what every
  // sink shares): pass it on, counting what it sent.
  if (canSendFile(sink)) {
    const counted: FileSendingSink = {
      sendFile: (fd, offset, length, timeoutMs, done) => {
        // `done` may run before sendFile returns (a client that keeps up takes the whole body
        // in the first call), and the line is written from it: mark the record there.
        return sink.sendFile(fd, offset, length, timeoutMs, (err, sent) => {
          sentByKernel += sent;
          viaSendfile = true;
          done(err, sent);
        });
      },
    };
    return Object.assign(logged, counted);
  }
  return logged;
}
