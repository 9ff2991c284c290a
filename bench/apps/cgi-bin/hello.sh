#!/bin/sh
# The CGI hello world of `npm run bench` (BENCH_APPS=cgi): the same script for tsuwsgi and uWSGI.
printf 'Content-Type: text/plain\r\n\r\nHello World'
