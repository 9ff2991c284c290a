/**
 * uWSGI's logfile plugin: the `file`, `fd` and `stdio` loggers.
 *
 *   --logger file:/var/log/app.log
 *   --logger file:logfile=/var/log/app.log,maxsize=1000000,backupname=/var/log/app.old
 *   --logger fd:3            (an inherited descriptor)
 *   --logger stdio           (the server's original stderr)
 */
import fs from 'node:fs';
import { LoggerError } from '../../core/errors.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import { FdTarget } from '../../core/logging/targets/fd.ts';
import { FileTarget } from '../../core/logging/targets/file.ts';

/** uWSGI's kvlist syntax: k=v,k=v. */
function keyvals(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new LoggerError(`file logger: invalid key=value list "${text}": use logfile=PATH[,maxsize=BYTES][,backupname=PATH]`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1);
  }
  return out;
}

export default definePlugin({
  name: 'logfile',
  apiVersion: PLUGIN_API_VERSION,
  description: 'file, fd and stdio loggers',
  loggers: [
    {
      name: 'file',
      description: 'append to a file: file:PATH or file:logfile=PATH,maxsize=BYTES,backupname=PATH',
      needsArgs: true,
      open(args, ctx) {
        if (!args) throw new LoggerError('the file logger needs a path: --logger file:/path/to/file.log');
        let path = args;
        let maxSize = 0;
        let backupName: string | undefined;
        if (args.includes('=')) {
          const kv = keyvals(args);
          if (!kv.logfile) throw new LoggerError(`file logger "${args}": missing logfile= key (file:logfile=PATH,maxsize=BYTES)`);
          path = kv.logfile;
          if (kv.maxsize !== undefined) {
            if (!/^\d+$/.test(kv.maxsize)) throw new LoggerError(`file logger "${args}": maxsize must be a number of bytes`);
            maxSize = Number(kv.maxsize);
          }
          backupName = kv.backupname;
        }
        return new FileTarget({ path, mode: ctx.fileMode, truncate: ctx.truncate, limit: ctx.bufferBytes, warn: ctx.warn, maxSize, backupName });
      },
    },
    {
      name: 'fd',
      description: 'write to an inherited file descriptor: fd:N',
      needsArgs: true,
      open(args, ctx) {
        if (!args || !/^\d+$/.test(args)) throw new LoggerError(`the fd logger needs a descriptor number: --logger fd:3 (got "${args ?? ''}")`);
        const fd = Number(args);
        try {
          fs.fstatSync(fd);
        } catch {
          throw new LoggerError(`fd logger: descriptor ${fd} is not open in this process (pass it from the shell, e.g. 3>>file.log)`);
        }
        return new FdTarget(fd, `fd:${fd}`, ctx.bufferBytes, ctx.warn);
      },
    },
    {
      name: 'stdio',
      description: "the server's original stderr",
      needsArgs: false,
      open: (_args, ctx) => new FdTarget(2, 'stdio', ctx.bufferBytes, ctx.warn),
    },
  ],
});
