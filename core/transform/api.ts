/**
 * Transformations (spec/subsystems.md §7): filters a request's response body goes through
 * on its way to the client, appended by route actions (`gzip:`, `chunked:`, `toupper:`,
 * `fixcl:`…). A transformation plugin registers a TransformationDefinition; the chain
 * (core/transform/chain.ts) wraps the request's ResponseSink and runs them in order:
 * chunk by chunk up to the first buffering one, then everything else once at the end.
 *
 * This file is the contract between the routing engine (which appends transformations)
 * and the transformation plugins; keep it small and stable.
 */
import type { RouteContext } from '../routing/api.ts';

/** The response head as transformations see it: headers can change until it is sent. */
export interface TransformHead {
  statusCode: number;
  reason: string;
  /** Flattened [name, value, name, value, …], as ResponseHead.headers. */
  headers: string[];
}

/**
 * What a transformation sees of the response while it runs (core/transform/chain.ts): the head
 * (writable while `sent` is false) and two services of the chain.
 */
export interface TransformView extends TransformHead {
  /** True once the head went to the client: header changes no longer have any effect. */
  readonly sent: boolean;
  /**
   * The front end frames a `Transfer-Encoding: chunked` body itself (the http front end writes
   * through Node's ServerResponse, which always frames it): `chunked` must then only set the
   * header, or the wire would carry the framing twice.
   */
  readonly frontEndChunks: boolean;
  /**
   * Send bytes to the client now (the head first if it is still held), bypassing the rest of
   * the chain: what `flush` does. Once anything was written this way, the chain's own output is
   * not sent (it only feeds the later steps, e.g. `tofile`), as in uWSGI.
   */
  write(chunk: Buffer): void;
  /**
   * Output bytes now, as the chain's own output (what the last step returns), for a last step
   * that streams a large body itself instead of returning it (`offload` from its temp file).
   * Like any chain output, it is not sent when a `flush` already sent the body.
   */
  send(chunk: Buffer): void;
  /**
   * Resolves when the client can take more after write()/send() (immediately when it is not
   * paused), so a step that sends a large body itself keeps memory bounded instead of queueing
   * the whole file in the socket.
   */
  drained(): Promise<void>;
}

/** One transformation instance, attached to one request. */
export interface Transformation {
  /** The uWSGI name, for logs ("gzip", "chunked"). */
  readonly name: string;
  /**
   * Streaming (uWSGI's can_stream): applied to each chunk as it arrives. Buffering: gets the
   * whole body once, at the end of the response; the client gets nothing before that
   * (unless a `flush` sits earlier in the chain).
   */
  readonly streaming: boolean;
  /**
   * Called with each chunk (streaming) or with the whole accumulated body (buffering).
   * `head` is still writable when `head.sent` is false. Returns the bytes for the next step.
   */
  transform(chunk: Buffer, view: TransformView): Buffer | Promise<Buffer>;
  /**
   * The end pass (uWSGI's is_final element): bytes to append after the last chunk, e.g. the
   * gzip trailer or chunked's `0\r\n\r\n`. Runs after every transform call.
   */
  final?(view: TransformView): Buffer | undefined | Promise<Buffer | undefined>;
  /**
   * The output has as many bytes as the input (toupper, flush, tofile): the app's
   * Content-Length stays valid. Without it the chain drops Content-Length (unless a step set
   * its own, like fixcl), so the front end frames the body by chunked encoding or close.
   */
  readonly preservesLength?: boolean;
  /**
   * The step only works at the end of the chain (`offload`, which sends the body itself): the
   * chain refuses the response (500 and a logged error) when another step follows it.
   */
  readonly mustBeLast?: boolean;
  /** The response failed or the client left: free resources (gzip's zlib stream). */
  dispose?(): void;
}

/** How a plugin provides a transformation (the route action of the same name appends it). */
export interface TransformationDefinition {
  /** Action name and aliases as uWSGI spells them (`tofile`, `to-file`). */
  readonly name: string;
  readonly aliases?: readonly string[];
  /**
   * Validate the action's argument at start-up (throw a TsuwsgiError for bad args) and return
   * a factory that makes one Transformation per request; `ctx` expands `${…}` at request time.
   */
  prepare(arg: string): (ctx: RouteContext) => Transformation;
}
