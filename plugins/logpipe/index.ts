/**
 * uWSGI's logpipe plugin: `--logger pipe:COMMAND` runs COMMAND through /bin/sh (in its own
 * session) and writes every record to its stdin. A command that reads slowly or not at all
 * never blocks the server: records queue up to --log-buffer bytes, then are dropped and the
 * loss is reported in the log. A command that exits is started again for the next record.
 */
import { LoggerError } from '../../core/errors.ts';
import { definePlugin, PLUGIN_API_VERSION } from '../../core/plugins/api.ts';
import { ProcessTarget } from '../../core/logging/targets/process.ts';

export default definePlugin({
  name: 'logpipe',
  apiVersion: PLUGIN_API_VERSION,
  description: 'the pipe logger (records to the stdin of a command)',
  loggers: [
    {
      name: 'pipe',
      description: 'write records to the stdin of a shell command: pipe:COMMAND',
      needsArgs: true,
      open(args, ctx) {
        if (!args) throw new LoggerError('the pipe logger needs a command: --logger "pipe:logger -t myapp"');
        return new ProcessTarget({ description: `pipe:${args}`, limit: ctx.bufferBytes, file: '/bin/sh', args: ['-c', args], warn: ctx.warn });
      },
    },
  ],
});
