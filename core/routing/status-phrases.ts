/**
 * The reason phrases uWSGI 2.0.21 knows (core/utils.c's status table), for routing's own
 * answers (`return:`, `break:CODE`, `clearheaders:CODE`). It is Node's http.STATUS_CODES with
 * uWSGI's older RFC 2616 wording for four codes and without the codes uWSGI does not know:
 * for those `return:` closes the connection, as uWSGI does. Checked code by code against the
 * installed uWSGI (every code from 100 to 599).
 */
import { STATUS_CODES } from 'node:http';

const UWSGI_WORDING: Readonly<Record<number, string>> = {
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  416: 'Requested Range Not Satisfiable',
  418: "I'm a teapot",
};

const UNKNOWN_TO_UWSGI = new Set([102, 103, 207, 208, 226, 308, 421, 423, 424, 506, 507, 508, 510]);

/** uWSGI's reason phrase for `code`, or undefined when uWSGI has none. */
export function uwsgiStatusPhrase(code: number): string | undefined {
  if (UNKNOWN_TO_UWSGI.has(code)) return undefined;
  return UWSGI_WORDING[code] ?? STATUS_CODES[code];
}
