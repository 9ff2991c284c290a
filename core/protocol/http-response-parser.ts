/**
 * Incremental parser for the HTTP responses bridges write (docs/bridge-protocol.md §3.3).
 *
 * Bridges are our own code, so the input is well-formed in practice; the parser still
 * checks every byte it relies on and throws ProtocolError on anything else, so a broken
 * bridge costs one 502, never a crash or a hang. It delivers the body de-framed
 * (Content-Length counted, chunked decoded), because the core re-frames it for each client.
 */
import { ProtocolError } from '../errors.ts';

export interface ResponseHead {
  statusCode: number;
  /** The reason phrase as the app wrote it ("OK", "Not Found"). */
  reason: string;
  /** Raw header pairs, flattened [name, value, name, value, …] as Node's writeHead accepts. */
  headers: string[];
  /** Content-Length if the response has one, else -1. */
  contentLength: number;
  chunked: boolean;
  /** Size of the status line + header block in bytes (for the request log). */
  headerBytes: number;
  /** Number of header lines. */
  headerCount: number;
}

export interface ResponseHandler {
  onHead(head: ResponseHead): void;
  onBody(chunk: Buffer): void;
  /** The response is complete; `keepAlive` is false when it ended by connection close. */
  onEnd(): void;
}

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

const MAX_HEAD = 64 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n');

export class HttpResponseParser {
  private state = State.Done;
  private headBuf: Buffer | null = null;
  private remaining = 0;
  private noBody = false;
  private lineBuf = '';

  constructor(private readonly handler: ResponseHandler) {}

  /** Prepare for the next response. `noBody` for HEAD requests (the bridge sends no body bytes). */
  start(noBody: boolean): void {
    this.state = State.Head;
    this.headBuf = null;
    this.noBody = noBody;
    this.remaining = 0;
    this.lineBuf = '';
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /** True while the response's end can only be detected by the connection closing. */
  get endsAtClose(): boolean {
    return this.state === State.UntilClose;
  }

  execute(data: Buffer): void {
    let off = 0;
    while (off < data.length) {
      switch (this.state) {
        case State.Head: {
          off = this.parseHead(data, off);
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, data.length - off);
          this.handler.onBody(off === 0 && n === data.length ? data : data.subarray(off, off + n));
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) this.finishResponse();
          break;
        }
        case State.UntilClose: {
          this.handler.onBody(off === 0 ? data : data.subarray(off));
          off = data.length;
          break;
        }
        case State.ChunkSize:
        case State.Trailers: {
          const nl = data.indexOf(10, off);
          if (nl === -1) {
            this.appendLine(data.toString('latin1', off, data.length));
            off = data.length;
            break;
          }
          this.appendLine(data.toString('latin1', off, nl + 1));
          off = nl + 1;
          const line = this.lineBuf;
          this.lineBuf = '';
          if (this.state === State.ChunkSize) this.onChunkSizeLine(line);
          else if (line === '\r\n' || line === '\n') this.finishResponse();
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, data.length - off);
          this.handler.onBody(data.subarray(off, off + n));
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = State.ChunkDataEnd;
            this.remaining = 2;
          }
          break;
        }
        case State.ChunkDataEnd: {
          // Expect exactly "\r\n" after each chunk's data.
          const expected = this.remaining === 2 ? 13 : 10;
          if (data[off] !== expected) throw new ProtocolError('bridge sent a malformed chunk terminator');
          off++;
          if (--this.remaining === 0) this.state = State.ChunkSize;
          break;
        }
        case State.Done:
          // Bytes after a complete response with no request waiting for them: the bridge
          // broke the contract, and the connection cannot be trusted any more.
          throw new ProtocolError('bridge sent bytes after the end of its response');
      }
    }
  }

  /** The connection closed. Completes an until-close body; anything else is a truncated response. */
  finish(): void {
    if (this.state === State.UntilClose) {
      this.finishResponse();
      return;
    }
    if (this.state !== State.Done) {
      throw new ProtocolError('bridge closed the connection before the response was complete');
    }
  }

  private appendLine(s: string): void {
    this.lineBuf += s;
    if (this.lineBuf.length > 4096) throw new ProtocolError('bridge sent an over-long chunk size or trailer line');
  }

  private parseHead(data: Buffer, off: number): number {
    let buf: Buffer;
    let base: number;
    if (this.headBuf) {
      buf = Buffer.concat([this.headBuf, data.subarray(off)]);
      base = this.headBuf.length;
    } else {
      buf = off === 0 ? data : data.subarray(off);
      base = 0;
    }
    const end = buf.indexOf(CRLFCRLF);
    if (end === -1) {
      if (buf.length > MAX_HEAD) throw new ProtocolError(`bridge response headers exceed ${MAX_HEAD} bytes`);
      this.headBuf = Buffer.from(buf);
      return data.length;
    }
    this.headBuf = null;
    const headerBytes = end + 4;
    this.onHeadBlock(buf.toString('latin1', 0, end), headerBytes);
    // Bytes of `data` consumed: the head's end minus what was buffered from earlier calls.
    return off + (headerBytes - base);
  }

  private onHeadBlock(text: string, headerBytes: number): void {
    const lines = text.split('\r\n');
    const statusLine = lines[0] ?? '';
    // "HTTP/1.1 200 OK" — the protocol token is whatever the bridge copied from SERVER_PROTOCOL.
    const m = /^HTTP\/\d\.\d (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!m) throw new ProtocolError(`bridge sent an invalid status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
    const statusCode = Number(m[1]);
    const headers: string[] = [];
    let contentLength = -1;
    let chunked = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new ProtocolError(`bridge sent an invalid header line: ${JSON.stringify(line.slice(0, 80))}`);
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      const lower = name.length === 14 || name.length === 17 ? name.toLowerCase() : '';
      if (lower === 'content-length') {
        if (!/^\d+$/.test(value)) throw new ProtocolError(`bridge sent an invalid Content-Length: ${value}`);
        contentLength = Number(value);
      } else if (lower === 'transfer-encoding') {
        chunked = value.toLowerCase() === 'chunked';
        // The core re-frames the body for each client, so the bridge's framing header is not forwarded.
        continue;
      }
      headers.push(name, value);
    }
    const head: ResponseHead = {
      statusCode,
      reason: m[2] ?? '',
      headers,
      contentLength,
      chunked,
      headerBytes,
      headerCount: lines.length - 1,
    };
    this.handler.onHead(head);
    const bodyless = this.noBody || statusCode === 204 || statusCode === 304 || (statusCode >= 100 && statusCode < 200);
    if (bodyless) this.finishResponse();
    else if (chunked) this.state = State.ChunkSize;
    else if (contentLength >= 0) {
      this.remaining = contentLength;
      if (contentLength === 0) this.finishResponse();
      else this.state = State.Length;
    } else this.state = State.UntilClose;
  }

  private onChunkSizeLine(line: string): void {
    const semi = line.indexOf(';');
    const hex = (semi === -1 ? line : line.slice(0, semi)).trim();
    if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new ProtocolError(`bridge sent an invalid chunk size: ${JSON.stringify(hex)}`);
    const size = Number.parseInt(hex, 16);
    if (size === 0) {
      this.state = State.Trailers;
    } else {
      this.remaining = size;
      this.state = State.ChunkData;
    }
  }

  private finishResponse(): void {
    this.state = State.Done;
    this.handler.onEnd();
  }
}
