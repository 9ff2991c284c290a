/**
 * A request's log record as the pipeline fills it in. The fields read out of the request vars (host, user agent, referer,
 * content length, X-Forwarded-For, remote user), computed only when a log line asks for them.
 *
 * Why lazy: the default request line needs only REMOTE_USER, but building every field eagerly
 * cost five extra scans of the vars per request on the hot path (pino's discipline: do no
 * work for a log line nobody formats).
 */
import { getVar, type UwsgiVars } from '../protocol/uwsgi-packet.ts';
import type { RequestRecord } from './request-log.ts';

export class PipelineRequestRecord implements RequestRecord {
  pid = 0;
  app = 0;
  appRequests = 0;
  workerRequests = 0;
  workerId = 0;
  remoteAddr = '';
  varCount = 0;
  packetSize = 0;
  startedAt = 0;
  micros = 0;
  method = '';
  uri = '';
  protocol = '';
  status = 0;
  bodyBytes = 0;
  headerCount = 0;
  headerBytes = 0;
  core = 0;
  modifier1 = 0;
  modifier2 = 0;
  readErrors = 0;
  writeErrors = 0;
  logvars?: ReadonlyMap<string, string>;
  /** Set when a static body went out with sendfile(2) (RequestRecord.viaSendfile). */
  viaSendfile = false;
  switches = 1;

  constructor(readonly vars: UwsgiVars) {}

  get remoteUser(): string {
    return getVar(this.vars, 'REMOTE_USER') ?? '';
  }
  get host(): string {
    return getVar(this.vars, 'HTTP_HOST') ?? '';
  }
  get userAgent(): string {
    return getVar(this.vars, 'HTTP_USER_AGENT') ?? '';
  }
  get referer(): string {
    return getVar(this.vars, 'HTTP_REFERER') ?? '';
  }
  get contentLength(): string {
    return getVar(this.vars, 'CONTENT_LENGTH') ?? '';
  }
  get forwardedFor(): string {
    return getVar(this.vars, 'HTTP_X_FORWARDED_FOR') ?? '';
  }
}
