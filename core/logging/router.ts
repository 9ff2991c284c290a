/**
 * The log router: uWSGI's log master (core/logging.c uwsgi_master_log). Every line of the
 * server — its own messages, request lines, and in log-master mode what app workers and core
 * workers print — comes here and goes, per uWSGI's rules:
 *
 *   general lines:  --log-drain (drop matching) → --log-filter (keep only matching) →
 *                   every --log-route ID REGEX that matches sends the line to logger ID, and a
 *                   routed line goes nowhere else; an unrouted line goes to every unnamed
 *                   --logger, or, when there is none, to the default log (--logto or stderr).
 *   request lines:  with --req-logger: the same with --log-req-route and the req-loggers;
 *                   without: the general path above.
 *
 * Each logger gets its encoder chain (--log-encoder / --log-req-encoder, `NAME:ID` limits an
 * encoder to logger ID) before the record is written. Targets never block (see
 * targets/queued.ts); once a second the router reports lines a target dropped, as
 * `*** N log lines lost (target X) ***`, and checks --touch-logrotate / --touch-logreopen.
 */
import fs from 'node:fs';
import type { LogEncoder, LogTarget } from './api.ts';
import { runChain } from './encoders.ts';
import type { RecordWriter } from './line-writer.ts';

export interface RoutedLogger {
  /** The alphanumeric id of `--logger ID PLUGIN:ARGS`, null for unnamed loggers. */
  id: string | null;
  target: LogTarget;
  /** The encoders that apply to this logger, in option order. */
  encoders: LogEncoder[];
}

export interface LogRoute {
  re: RegExp;
  logger: RoutedLogger;
}

export interface LogRouterConfig {
  /** --logto / --logto2 / stderr; also where lines go when no unnamed logger exists. */
  defaultTarget: LogTarget;
  /** Encoders for the default target (those without a logger id). */
  defaultEncoders: LogEncoder[];
  loggers: RoutedLogger[];
  reqLoggers: RoutedLogger[];
  routes: LogRoute[];
  reqRoutes: LogRoute[];
  drains: RegExp[];
  filters: RegExp[];
  touchRotate: string[];
  touchReopen: string[];
}

export class LogRouter {
  private readonly c: LogRouterConfig;
  private readonly unnamed: RoutedLogger[];
  private readonly reqUnnamed: RoutedLogger[];
  private readonly defaultLogger: RoutedLogger;
  private targets: LogTarget[];
  private readonly reported = new Map<LogTarget, number>();
  private readonly touchTimes = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  /** Nothing to route, drain or encode: lines go straight to the default target. */
  private readonly plain: boolean;

  constructor(config: LogRouterConfig) {
    this.c = config;
    this.defaultLogger = { id: null, target: config.defaultTarget, encoders: config.defaultEncoders };
    this.unnamed = config.loggers.filter((l) => l.id === null);
    this.reqUnnamed = config.reqLoggers.filter((l) => l.id === null);
    this.targets = [...new Set([config.defaultTarget, ...config.loggers.map((l) => l.target), ...config.reqLoggers.map((l) => l.target)])];
    this.plain =
      config.loggers.length === 0 && config.reqLoggers.length === 0 && config.drains.length === 0 &&
      config.filters.length === 0 && config.defaultEncoders.length === 0;
    for (const f of [...config.touchRotate, ...config.touchReopen]) this.touchTimes.set(f, mtime(f));
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  /** A general line (no trailing newline). */
  log(line: string): void {
    if (this.plain) {
      this.c.defaultTarget.write(line + '\n');
      return;
    }
    for (const d of this.c.drains) if (d.test(line)) return;
    if (this.c.filters.length) {
      let keep = false;
      for (const f of this.c.filters) {
        if (f.test(line)) {
          keep = true;
          break;
        }
      }
      if (!keep) return;
    }
    this.dispatch(line, this.c.routes, this.unnamed);
  }

  /** A request line (no trailing newline). */
  request(line: string): void {
    if (this.c.reqLoggers.length === 0) this.log(line);
    else this.dispatch(line, this.c.reqRoutes, this.reqUnnamed);
  }

  /**
   * A request line `w` writes as bytes straight into the default target — only when nothing
   * stands between (no loggers, drains, filters or encoders). False: format the line and
   * call request().
   */
  requestWith<T>(w: RecordWriter<T>, x: T): boolean {
    if (!this.plain) return false;
    const t = this.c.defaultTarget;
    return t.writeWith !== undefined && t.writeWith(w, x);
  }

  private dispatch(line: string, routes: LogRoute[], unnamed: RoutedLogger[]): void {
    let routed = false;
    for (const r of routes) {
      if (r.re.test(line)) {
        routed = true;
        emit(r.logger, line);
      }
    }
    if (routed) return;
    if (unnamed.length === 0) emit(this.defaultLogger, line);
    else for (const l of unnamed) emit(l, line);
  }

  /** Replace the default target (--logto2, opened after privileges were dropped). */
  setDefaultTarget(t: LogTarget): void {
    const old = this.c.defaultTarget;
    this.c.defaultTarget = t;
    this.defaultLogger.target = t;
    this.targets = [t, ...this.targets.filter((x) => x !== old)];
  }

  /** Every distinct target (the default first). */
  allTargets(): readonly LogTarget[] {
    return this.targets;
  }

  private tick(): void {
    for (const t of this.targets) {
      const lost = t.lost;
      const before = this.reported.get(t) ?? 0;
      if (lost > before) {
        this.reported.set(t, lost);
        this.notice(`*** ${lost - before} log lines lost (target ${t.description}) ***`);
      }
    }
    for (const f of this.c.touchRotate) if (this.touched(f)) this.rotate();
    for (const f of this.c.touchReopen) if (this.touched(f)) this.reopen();
  }

  /** A message about the log itself: to every target, never counted as a loss. */
  notice(message: string): void {
    const line = message + '\n';
    for (const t of this.targets) t.write(line, false);
  }

  private touched(file: string): boolean {
    const m = mtime(file);
    const before = this.touchTimes.get(file) ?? 0;
    this.touchTimes.set(file, m);
    return m !== before && m !== 0;
  }

  rotate(): void {
    for (const t of this.targets) t.rotate?.();
  }

  reopen(): void {
    for (const t of this.targets) t.reopen?.();
  }

  flushSync(): void {
    for (const t of this.targets) t.flushSync?.();
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.tick();
    await Promise.all(this.targets.map((t) => t.close()));
  }
}

function emit(l: RoutedLogger, line: string): void {
  if (l.encoders.length === 0) l.target.write(line + '\n');
  else l.target.write(runChain(l.encoders, Buffer.from(line + '\n')));
}

function mtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}
