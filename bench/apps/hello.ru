# Benchmark app: the uWSGI quickstart "Hello World" (with Content-Length, as most apps send).
BODY = 'Hello World'
HEADERS = { 'Content-Type' => 'text/html', 'Content-Length' => BODY.bytesize.to_s }.freeze
run ->(_env) { [200, HEADERS.dup, [BODY]] }
