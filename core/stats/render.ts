/**
 * The stats document as text, key by key in uWSGI 2.0's order (uwsgi_master_generate_stats
 * in core/master_utils.c), through the writer that reproduces uWSGI's layout.
 */
import type { StatsCore, StatsDocument, StatsWorker } from './document.ts';
import { StatsJsonWriter } from './json-writer.ts';

export interface RenderOptions {
  /** --stats-minified: no whitespace. */
  minified: boolean;
  /** --stats-no-cores: leave out every worker's `cores`. */
  noCores: boolean;
}

type Scalar = string | number;

/** Write `"k":v` pairs of a flat record, separated by commas (no trailing comma). */
function pairs(w: StatsJsonWriter, entries: ReadonlyArray<[string, Scalar]>): void {
  entries.forEach(([k, v], i) => {
    if (i > 0) w.comma();
    if (typeof v === 'string') w.keyString(k, v);
    else w.keyNumber(k, v);
  });
}

/** A list of objects, each written by `each`. */
function objectList<T>(w: StatsJsonWriter, key: string, items: readonly T[], each: (item: T) => void): void {
  w.key(key);
  w.listOpen();
  items.forEach((item, i) => {
    if (i > 0) w.comma();
    w.objectOpen();
    each(item);
    w.objectClose();
  });
  w.listClose();
}

export function renderStats(doc: StatsDocument, o: RenderOptions): string {
  const w = new StatsJsonWriter(o.minified);
  w.objectOpen();
  pairs(w, [
    ['version', doc.version],
    ['listen_queue', doc.listen_queue],
    ['listen_queue_errors', doc.listen_queue_errors],
    ['signal_queue', doc.signal_queue],
    ['load', doc.load],
    ['pid', doc.pid],
    ['uid', doc.uid],
    ['gid', doc.gid],
    ['cwd', doc.cwd],
  ]);
  w.comma();
  objectList(w, 'locks', doc.locks, (lock) => pairs(w, Object.entries(lock)));
  w.comma();
  objectList(w, 'sockets', doc.sockets, (s) =>
    pairs(w, [
      ['name', s.name],
      ['proto', s.proto],
      ['queue', s.queue],
      ['max_queue', s.max_queue],
      ['shared', s.shared],
      ['can_offload', s.can_offload],
    ]),
  );
  w.comma();
  objectList(w, 'workers', doc.workers, (worker) => renderWorker(w, worker, o));
  w.objectClose();
  return w.text();
}

function renderWorker(w: StatsJsonWriter, x: StatsWorker, o: RenderOptions): void {
  pairs(w, [
    ['id', x.id],
    ['pid', x.pid],
    ['accepting', x.accepting],
    ['requests', x.requests],
    ['delta_requests', x.delta_requests],
    ['exceptions', x.exceptions],
    ['harakiri_count', x.harakiri_count],
    ['signals', x.signals],
    ['signal_queue', x.signal_queue],
    ['status', x.status],
    ['rss', x.rss],
    ['vsz', x.vsz],
    ['running_time', x.running_time],
    ['last_spawn', x.last_spawn],
    ['respawn_count', x.respawn_count],
    ['tx', x.tx],
    ['avg_rt', x.avg_rt],
  ]);
  w.comma();
  objectList(w, 'apps', x.apps, (a) =>
    pairs(w, [
      ['id', a.id],
      ['modifier1', a.modifier1],
      ['mountpoint', a.mountpoint],
      ['startup_time', a.startup_time],
      ['requests', a.requests],
      ['exceptions', a.exceptions],
      ['chdir', a.chdir],
    ]),
  );
  if (o.noCores) return;
  w.comma();
  objectList(w, 'cores', x.cores, (c) => renderCore(w, c));
}

function renderCore(w: StatsJsonWriter, c: StatsCore): void {
  pairs(w, [
    ['id', c.id],
    ['requests', c.requests],
    ['static_requests', c.static_requests],
    ['routed_requests', c.routed_requests],
    ['offloaded_requests', c.offloaded_requests],
    ['write_errors', c.write_errors],
    ['read_errors', c.read_errors],
    ['in_request', c.in_request],
  ]);
  w.comma();
  w.key('vars');
  w.listOpen();
  if (c.vars.length > 0) {
    // uWSGI writes a comma after every var and closes the list with an empty string.
    for (const v of c.vars) {
      w.string(v);
      w.comma();
    }
    w.string('');
  }
  w.listClose();
  w.comma();
  w.key('req_info');
  w.objectOpen();
  if (c.req_info.request_start !== undefined) w.keyNumber('request_start', c.req_info.request_start);
  w.objectClose();
}
