/**
 * The plugins this build knows. From a source checkout every in-tree plugin is available;
 * EMBEDDED lists the ones loaded without `--plugins` (the default build profile, as uWSGI's
 * default profile embeds python and http). uwsgiconfig.ts rewrites this file for other
 * profiles (issue 4).
 */
import type { PluginDescriptor } from './api.ts';
import type { PluginSource } from './registry.ts';
import python from '../../plugins/python/index.ts';
import http from '../../plugins/http/index.ts';
import dummy from '../../plugins/dummy/index.ts';

const ALL: PluginDescriptor[] = [python, http, dummy];

export const EMBEDDED_PLUGINS: readonly string[] = ['python', 'http'];

export function defaultPluginSource(): PluginSource {
  return { available: new Map(ALL.map((d) => [d.name, d])), embedded: EMBEDDED_PLUGINS };
}
