/**
 * The plugins this build knows. From a source checkout every in-tree plugin is available;
 * EMBEDDED lists the ones loaded without `--plugins` (the default build profile, as uWSGI's
 * default profile embeds python and http). A build (uwsgiconfig.ts) replaces this module
 * by one listing only its profile's embedded plugins; the others become plugin files.
 */
import type { PluginDescriptor } from './api.ts';
import type { PluginSource } from './registry.ts';
import { DEFAULT_PLUGIN_DIRS } from '../paths.ts';
import python from '../../plugins/python/index.ts';
import http from '../../plugins/http/index.ts';
import dummy from '../../plugins/dummy/index.ts';
import logfile from '../../plugins/logfile/index.ts';
import logsocket from '../../plugins/logsocket/index.ts';
import syslog from '../../plugins/syslog/index.ts';
import rsyslog from '../../plugins/rsyslog/index.ts';
import logpipe from '../../plugins/logpipe/index.ts';
import msgpack from '../../plugins/msgpack/index.ts';
import psgi from '../../plugins/psgi/index.ts';
import rack from '../../plugins/rack/index.ts';
import cgi from '../../plugins/cgi/index.ts';
import php from '../../plugins/php/index.ts';

const ALL: PluginDescriptor[] = [python, http, dummy, psgi, rack, cgi, php, logfile, logsocket, syslog, rsyslog, logpipe, msgpack];

// The loggers and the msgpack encoder are embedded as in uWSGI's default profile: loading
// them costs nothing until a --logger or --log-encoder names them.
export const EMBEDDED_PLUGINS: readonly string[] = ['python', 'http', 'logfile', 'logsocket', 'syslog', 'rsyslog', 'logpipe', 'msgpack'];

export function defaultPluginSource(): PluginSource {
  return { available: new Map(ALL.map((d) => [d.name, d])), embedded: EMBEDDED_PLUGINS, defaultPluginDirs: DEFAULT_PLUGIN_DIRS };
}
