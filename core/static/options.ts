/**
 * The static file server's options (spec/subsystems.md §17), owned by the core. Names are
 * uWSGI's real ones; the documentation's `static-expire-*` spellings (§33 item 5) are
 * aliases so configs written from either source keep working.
 */
import type { OptionSpec } from '../options/spec.ts';

export const STATIC_OPTION_SPECS: readonly OptionSpec[] = [
  { name: 'check-static', aliases: ['static-check'], argument: 'required', kind: 'path', multiple: true, metavar: 'DIR', help: 'serve DIR/PATH_INFO as a static file, if it exists, before the app (checked in order)' },
  { name: 'check-static-docroot', argument: 'none', kind: 'flag', help: 'serve DOCUMENT_ROOT/PATH_INFO (DOCUMENT_ROOT as the front end sends it) as a static file, if it exists' },
  { name: 'static-map', argument: 'required', kind: 'string', multiple: true, metavar: 'MOUNTPOINT=PATH', help: 'serve PATH/<PATH_INFO without MOUNTPOINT> (or PATH itself when it is a file) for requests under MOUNTPOINT' },
  { name: 'static-map2', argument: 'required', kind: 'string', multiple: true, metavar: 'MOUNTPOINT=PATH', help: 'like --static-map, but the whole PATH_INFO is appended to PATH' },
  { name: 'static-index', argument: 'required', kind: 'string', multiple: true, metavar: 'FILE', help: 'when a static lookup finds a directory, serve the first of these files in it' },
  { name: 'static-skip-ext', argument: 'required', kind: 'string', multiple: true, metavar: 'SUFFIX', help: 'never serve files ending in SUFFIX statically (e.g. .php): the app gets the request' },
  { name: 'static-safe', argument: 'required', kind: 'path', multiple: true, metavar: 'DIR', help: 'also serve static files whose real path (symlinks resolved) is under DIR' },
  { name: 'mimefile', aliases: ['mime-file'], argument: 'required', kind: 'path', multiple: true, metavar: 'FILE', help: 'merge a mime.types file into the static MIME table (/etc/mime.types is always read first; later files win)', defaultValue: '/etc/mime.types' },
  { name: 'static-expires-type', aliases: ['static-expire-type'], argument: 'required', kind: 'string', multiple: true, metavar: 'MIME=SECS', help: 'Expires: now+SECS for static files of this Content-Type' },
  { name: 'static-expires-type-mtime', aliases: ['static-expire-type-mtime'], argument: 'required', kind: 'string', multiple: true, metavar: 'MIME=SECS', help: 'Expires: mtime+SECS for static files of this Content-Type' },
  { name: 'static-expires', aliases: ['static-expire'], argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP SECS', help: 'Expires: now+SECS for static files whose filesystem path matches REGEXP' },
  { name: 'static-expires-mtime', aliases: ['static-expire-mtime'], argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP SECS', help: 'Expires: mtime+SECS for static files whose filesystem path matches REGEXP' },
  { name: 'static-expires-uri', aliases: ['static-expire-uri'], argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP SECS', help: 'Expires: now+SECS for static files whose REQUEST_URI matches REGEXP' },
  { name: 'static-expires-uri-mtime', aliases: ['static-expire-uri-mtime'], argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP SECS', help: 'Expires: mtime+SECS for static files whose REQUEST_URI matches REGEXP' },
  { name: 'static-expires-path-info', aliases: ['static-expire-path-info'], argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP SECS', help: 'Expires: now+SECS for static files whose PATH_INFO matches REGEXP' },
  { name: 'static-expires-path-info-mtime', aliases: ['static-expire-path-info-mtime'], argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP SECS', help: 'Expires: mtime+SECS for static files whose PATH_INFO matches REGEXP' },
  { name: 'static-gzip', argument: 'required', kind: 'string', multiple: true, metavar: 'REGEXP', help: 'serve FILE.gz (Content-Encoding: gzip) to clients accepting gzip, for files whose full path matches REGEXP' },
  { name: 'static-gzip-dir', aliases: ['static-gzip-prefix'], argument: 'required', kind: 'string', multiple: true, metavar: 'PREFIX', help: 'serve FILE.gz to clients accepting gzip for files under this directory (path prefix)' },
  { name: 'static-gzip-ext', aliases: ['static-gzip-suffix'], argument: 'required', kind: 'string', multiple: true, metavar: 'SUFFIX', help: 'serve FILE.gz to clients accepting gzip for files with this extension (suffix)' },
  { name: 'static-gzip-all', argument: 'none', kind: 'flag', help: 'serve FILE.gz (or FILE.br) to clients accepting gzip (br) for every static file that has one' },
  { name: 'file-serve-mode', argument: 'required', kind: 'string', metavar: 'MODE', help: 'how static files are sent: the body (default), x-sendfile (alias xsendfile: only an X-Sendfile header) or x-accel-redirect (aliases xaccelredirect, nginx: only an X-Accel-Redirect header)' },
  { name: 'disable-sendfile', argument: 'none', kind: 'flag', help: 'send static file bodies by reading and writing them instead of with sendfile(2)' },
  { name: 'honour-range', argument: 'none', kind: 'flag', help: 'answer Range requests for static files with 206 Partial Content (416 when unsatisfiable), honouring If-Range' },
];

/** Every canonical static option name: any of them present turns the static server on. */
export const STATIC_OPTION_NAMES: readonly string[] = STATIC_OPTION_SPECS.map((s) => s.name);
