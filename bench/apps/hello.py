"""Benchmark app: the uWSGI quickstart "Hello World" (with Content-Length, as most apps send)."""

BODY = b"Hello World"
HEADERS = [('Content-Type', 'text/html'), ('Content-Length', str(len(BODY)))]


def application(environ, start_response):
    start_response('200 OK', HEADERS)
    return [BODY]
