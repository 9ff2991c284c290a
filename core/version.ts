/** tsuwsgi's own version (package.json). */
export const TSUWSGI_VERSION = '0.1.0';
/**
 * What `--version`, `%V` and the bridges' `uwsgi.version` report: the uWSGI release whose
 * behaviour tsuwsgi follows, tagged with tsuwsgi's version so tools that parse "2.0.x" work.
 */
export const UWSGI_COMPAT_VERSION = `2.0.28-tsuwsgi-${TSUWSGI_VERSION}`;
