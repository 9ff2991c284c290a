/**
 * The block uWSGI's master logs on SIGUSR1 (stats() in core/uwsgi.c): the instance
 * configuration as --show-config prints it, the total requests, then one line per app of
 * every worker, each worker closed by a dashed line.
 */
import { formatShowConfig } from '../config/introspect.ts';
import type { ConfigEntry } from '../options/spec.ts';
import type { StatsDocument } from './document.ts';

const RULE = '-----------------';

export function formatUsr1Stats(entries: readonly ConfigEntry[], doc: StatsDocument): string {
  let out = formatShowConfig(entries);
  const total = doc.workers.reduce((n, w) => n + w.requests, 0);
  out += `\tworkers total requests: ${total}\n${RULE}\n`;
  for (const w of doc.workers) {
    for (const a of w.apps) out += `\tworker ${w.id} app ${a.id} [${a.mountpoint}] requests: ${a.requests} exceptions: ${a.exceptions}\n`;
    out += `${RULE}\n`;
  }
  return `${out}\n`;
}
