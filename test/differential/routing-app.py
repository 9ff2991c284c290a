"""The app behind the differential routing test (routing-vs-uwsgi.test.ts), run by uWSGI's
python3 plugin and by tsuwsgi's bridge with the same /usr/bin/python3.

It answers 200 text/plain with the request vars routing rules change (one `KEY=value` line
each, `<unset>` when absent) plus every var whose name starts with R_ (set by addvar), and two
response headers for addheader/delheader to act on. Only vars both servers define the same way
are printed: the rest of the environ (SERVER_PORT, REMOTE_PORT, uwsgi.* keys) differs by
construction.
"""

KEYS = ['REQUEST_METHOD', 'REQUEST_URI', 'PATH_INFO', 'SCRIPT_NAME', 'QUERY_STRING',
        'REMOTE_ADDR', 'REMOTE_USER', 'DOCUMENT_ROOT', 'wsgi.url_scheme']


def application(environ, start_response):
    lines = ['%s=%s' % (k, environ.get(k, '<unset>')) for k in KEYS]
    lines += sorted('%s=%s' % (k, v) for k, v in environ.items() if k.startswith('R_'))
    body = ('\n'.join(lines) + '\n').encode('latin-1')
    start_response('200 OK', [
        ('Content-Type', 'text/plain'),
        ('Content-Length', str(len(body))),
        ('X-App', 'main'),
        ('X-Powered-By', 'routing-app'),
    ])
    return [body]
