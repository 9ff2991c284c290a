/**
 * router_access (spec/subsystems.md §6.6): TCP wrappers host access control as a route action.
 *
 *   access:action=hosts[,daemon=uwsgi]     /etc/hosts.allow and /etc/hosts.deny decide
 *
 * As uWSGI's router_access (libwrap's hosts_ctl with the client address only): an allowed
 * client continues to the next rule (NEXT); a refused one gets `403 Forbidden`, text/plain
 * `Forbidden`, and routing stops (BREAK). Only `action=hosts` exists, as in uWSGI. The files
 * are read again when they change (libwrap reads them on every check). hosts-access.ts has the
 * matching rules.
 *
 * tsuwsgi additions: `allow=FILE` and `deny=FILE` name other files than /etc/hosts.allow and
 * /etc/hosts.deny (per rule, so a test or a container need not touch /etc).
 */
import { definePlugin, PLUGIN_API_VERSION, type RouteActionDefinition } from '../../core/plugins/api.ts';
import { RoutingError } from '../../core/errors.ts';
import { respond } from '../../core/routing/respond.ts';
import { parseKeyvals } from '../router_hash/index.ts';
import { HostsAccess } from './hosts-access.ts';

const KEYS = ['action', 'daemon', 'allow', 'deny'] as const;

const access: RouteActionDefinition = {
  name: 'access',
  prepare(arg, origin) {
    const kv = parseKeyvals(arg, 'access', origin, KEYS);
    const action = kv.get('action') ?? '';
    if (action !== 'hosts') {
      throw new RoutingError(`"access:${arg}" in --${origin.option} "${origin.value}": only action=hosts exists (TCP wrappers' hosts.allow/hosts.deny), e.g. access:action=hosts,daemon=uwsgi`);
    }
    const daemon = kv.get('daemon') || 'uwsgi';
    const hosts = new HostsAccess(kv.get('allow') || '/etc/hosts.allow', kv.get('deny') || '/etc/hosts.deny');
    return (ctx) => {
      const address = ctx.getVar('REMOTE_ADDR') ?? '';
      if (hosts.permits(daemon, address, (line) => ctx.log(`[router-access] ${line}`))) return 'next';
      respond(ctx, 403, 'Forbidden', ['Content-Type', 'text/plain', 'Content-Length', '9'], 'Forbidden');
      return 'break';
    };
  },
};

export default definePlugin({
  name: 'router_access',
  apiVersion: PLUGIN_API_VERSION,
  description: "internal routing: TCP wrappers host access control (access:action=hosts, /etc/hosts.allow and /etc/hosts.deny)",
  routeActions: [access],
});
