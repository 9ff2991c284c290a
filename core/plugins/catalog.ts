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
import asyncio from '../../plugins/asyncio/index.ts';
import gevent from '../../plugins/gevent/index.ts';
import greenlet from '../../plugins/greenlet/index.ts';
import lua from '../../plugins/lua/index.ts';
import jvm from '../../plugins/jvm/index.ts';
import jwsgi from '../../plugins/jwsgi/index.ts';
import ring from '../../plugins/ring/index.ts';
import routerRedirect from '../../plugins/router_redirect/index.ts';
import routerRewrite from '../../plugins/router_rewrite/index.ts';
import routerBasicauth from '../../plugins/router_basicauth/index.ts';
import routerUwsgi from '../../plugins/router_uwsgi/index.ts';
import routerHttp from '../../plugins/router_http/index.ts';
import routerHash from '../../plugins/router_hash/index.ts';
import routerExpires from '../../plugins/router_expires/index.ts';
import routerStatic from '../../plugins/router_static/index.ts';
import routerAccess from '../../plugins/router_access/index.ts';
import routerXmldir from '../../plugins/router_xmldir/index.ts';
import routerMemcached from '../../plugins/router_memcached/index.ts';
import routerRedis from '../../plugins/router_redis/index.ts';
import routerRadius from '../../plugins/router_radius/index.ts';
import ldap from '../../plugins/ldap/index.ts';
import transformationGzip from '../../plugins/transformation_gzip/index.ts';
import transformationChunked from '../../plugins/transformation_chunked/index.ts';
import transformationToupper from '../../plugins/transformation_toupper/index.ts';
import transformationTofile from '../../plugins/transformation_tofile/index.ts';
import transformationTemplate from '../../plugins/transformation_template/index.ts';
import transformationOffload from '../../plugins/transformation_offload/index.ts';
import ssi from '../../plugins/ssi/index.ts';
import xslt from '../../plugins/xslt/index.ts';
import routerSpnego from '../../plugins/router_spnego/index.ts';
import gridfs from '../../plugins/gridfs/index.ts';

const ALL: PluginDescriptor[] = [python, http, dummy, psgi, rack, cgi, php, lua, jvm, jwsgi, ring, logfile, logsocket, syslog, rsyslog, logpipe, msgpack, asyncio, gevent, greenlet, routerRedirect, routerRewrite, routerBasicauth, routerUwsgi, routerHttp, routerHash, routerExpires, routerStatic, routerAccess, routerXmldir, routerMemcached, routerRedis, routerRadius, ldap, transformationGzip, transformationChunked, transformationToupper, transformationTofile, transformationTemplate, transformationOffload, ssi, xslt, routerSpnego, gridfs];

// The loggers and the msgpack encoder are embedded as in uWSGI's default profile: loading
// them costs nothing until a --logger or --log-encoder names them.
// The loop engines are embedded too (as uWSGI's pip build embeds gevent and asyncio): they
// cost nothing until --gevent/--asyncio/--loop selects them.
// The routers and transformations are embedded as in uWSGI's default build; they cost nothing
// until a rule uses them (router_memcached and router_redis too: uWSGI's default build embeds
// them, they need no library). router_access, router_xmldir, router_radius, ldap, ssi, xslt,
// router_spnego and gridfs are not (uWSGI builds them only with libwrap, libxml2, libldap,
// libxslt, GSS-API or libmongoclient, or leaves them out): load them with --plugin.
export const EMBEDDED_PLUGINS: readonly string[] = ['python', 'http', 'logfile', 'logsocket', 'syslog', 'rsyslog', 'logpipe', 'msgpack', 'asyncio', 'gevent', 'greenlet', 'router_redirect', 'router_rewrite', 'router_basicauth', 'router_uwsgi', 'router_http', 'router_hash', 'router_expires', 'router_static', 'router_memcached', 'router_redis', 'transformation_gzip', 'transformation_chunked', 'transformation_toupper', 'transformation_tofile', 'transformation_template', 'transformation_offload'];

export function defaultPluginSource(): PluginSource {
  return { available: new Map(ALL.map((d) => [d.name, d])), embedded: EMBEDDED_PLUGINS, defaultPluginDirs: DEFAULT_PLUGIN_DIRS };
}
