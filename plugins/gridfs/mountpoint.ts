/**
 * The keyval arguments of `gridfs:`, as uWSGI 2.0's uwsgi_gridfs_add_mountpoint() parses them
 * (plugins/gridfs/gridfs.cc), checked once at start-up.
 *
 *   gridfs:db=NAME[,server=HOST:PORT][,replica=SET][,bucket=fs][,itemname=NAME|item=NAME]
 *          [,prefix=P][,skip_slash=1][,no_mime=1][,orig_filename=1][,etag=1][,md5=1]
 *          [,timeout=SECONDS][,username=U,password=P][,mountpoint=…]
 */
import { RoutingError } from '../../core/errors.ts';
import { isTruthyFlagValue } from '../../core/options/spec.ts';
import { parseKeyValues } from '../../core/transform/actions.ts';

const KEYS = ['mountpoint', 'server', 'replica', 'db', 'prefix', 'bucket', 'no_mime', 'timeout', 'orig_filename', 'skip_slash', 'md5', 'etag', 'itemname', 'item', 'username', 'password'];

export interface GridfsMountpoint {
  /** The server ("127.0.0.1:27017" by default); with `replica`, a comma-separated seed list. */
  readonly server: string;
  /** Replica set name, or null for a direct connection to `server`. */
  readonly replica: string | null;
  readonly db: string;
  /** The GridFS bucket: collections BUCKET.files and BUCKET.chunks ("fs"). */
  readonly bucket: string;
  /** The item name template (expanded per request), or null: prefix + PATH_INFO. */
  readonly itemname: string | null;
  readonly prefix: string;
  readonly skipSlash: boolean;
  readonly mime: boolean;
  readonly origFilename: boolean;
  readonly etag: boolean;
  readonly md5: boolean;
  /** Seconds; 0 = --socket-timeout, read per request. */
  readonly timeout: number;
  readonly username: string | null;
  readonly password: string | null;
}

/**
 * uWSGI turns a flag on when the key is present whatever its value (`md5=0` adds Content-MD5);
 * here `0`, `false`, `off`, `no` turn it off, as every other uWSGI boolean does.
 */
function flag(kv: Map<string, string>, key: string): boolean {
  const v = kv.get(key);
  return v !== undefined && isTruthyFlagValue(v);
}

export function parseMountpoint(arg: string): GridfsMountpoint {
  const kv = parseKeyValues(arg);
  for (const k of kv.keys()) {
    // uWSGI ignores unknown keys; a typo (`etags=1`) would then do nothing without a word.
    if (!KEYS.includes(k)) throw new RoutingError(`unknown key "${k}" (allowed: ${KEYS.join(', ')})`);
  }
  const db = kv.get('db') ?? '';
  if (db === '') throw new RoutingError('you need to specify a "db" name for gridfs (e.g. gridfs:db=test,itemname=$1)');
  if (/[/\\. "$\0]/.test(db)) throw new RoutingError(`"${db}" is not a MongoDB database name (no / \\ . " $ or spaces)`);
  const server = kv.get('server') || '127.0.0.1:27017';
  for (const host of server.split(',')) {
    if (!/^(\[[0-9a-fA-F:.]+\]|[^\s:/,@?[\]]+)(:\d{1,5})?$/.test(host.trim())) {
      throw new RoutingError(`server "${host}" is not HOST or HOST:PORT (e.g. server=127.0.0.1:27017)`);
    }
  }
  const replica = kv.get('replica') || null;
  if (!replica && server.includes(',')) throw new RoutingError(`server "${server}" lists several hosts: name their replica set with replica=NAME`);
  const timeoutText = kv.get('timeout');
  let timeout = 0;
  if (timeoutText !== undefined) {
    if (!/^\s*\d+\s*$/.test(timeoutText)) throw new RoutingError(`timeout "${timeoutText}" is not a number of seconds`);
    timeout = Number(timeoutText);
  }
  const username = kv.get('username') ?? null;
  const password = kv.get('password') ?? null;
  if ((username === null) !== (password === null)) throw new RoutingError('username and password go together (give both, or neither)');
  const bucket = kv.get('bucket') || 'fs';
  if (/[\0$]/.test(bucket)) throw new RoutingError(`bucket "${bucket}" is not a collection name prefix`);
  return {
    server,
    replica,
    db,
    bucket,
    itemname: kv.get('itemname') ?? kv.get('item') ?? null,
    prefix: kv.get('prefix') ?? '',
    skipSlash: flag(kv, 'skip_slash'),
    mime: !flag(kv, 'no_mime'),
    origFilename: flag(kv, 'orig_filename'),
    etag: flag(kv, 'etag'),
    md5: flag(kv, 'md5'),
    timeout,
    username,
    password,
  };
}
