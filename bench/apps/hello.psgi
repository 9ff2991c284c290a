# Benchmark app: the uWSGI quickstart "Hello World" (with Content-Length, as most apps send).
my $body = 'Hello World';
my $headers = ['Content-Type' => 'text/html', 'Content-Length' => length $body];
my $app = sub {
    return [200, $headers, [$body]];
};
