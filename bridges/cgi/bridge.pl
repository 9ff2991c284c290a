#!/usr/bin/perl
# tsuwsgi's CGI bridge (plugins/cgi, modifier1 9): the bridge contract (docs/bridge-protocol.md)
# on fd 3/4, and for every request one CGI/1.1 process (RFC 3875) started with fork + exec of
# an argument list: never a shell, so nothing in the URL can become a command. Script location,
# meta-variables and response parsing follow uWSGI's cgi plugin (spec/languages.md §9);
# docs/cgi.md has the details.
#
# Why Perl: every request forks, and a fork costs in proportion to the memory of the process
# that calls it (page tables copied, then every page either side writes faulted in again). The
# Node bridge this replaces (~50 MB) spent more CPU per request than uWSGI spends in total. Even
# this process touches too much memory per request to fork cheaply, so on Linux the scripts
# are forked by bridges/cgi/forker.pl, a tiny perl that gets the pipes over a unix socket;
# elsewhere, or if the forker dies, this process forks them itself. perl-base is essential on
# Debian and both scripts use only modules from it (hence the small JSON reader below instead
# of JSON::PP), so no runtime has to be installed. docs/cgi.md has the measurements.
#
# Shape of the process: one thread, one select() loop. It serves up to `cores` (--threads)
# connections at once and accepts only while one is free (the other bridges of the pool take
# the rest). Each connection serves its requests in order; a request runs one script whose
# stdin is fed from the connection and whose stdout is parsed (header block) and passed on,
# with back-pressure both ways: the connection is not read while the script's stdin is full,
# and the script's stdout is not read while the connection has a backlog.
use 5.010;
use strict;
use warnings;

# Small modules only: POSIX alone would add 1.6 MB of heap, which every fork() has to copy
# the page tables of.
use Cwd ();
use Errno ();
use Fcntl ();

# System call numbers (sendmsg, recvmsg, dup3, execve, close) of the Linux architectures whose
# LP64 structures the forker packs by hand (bridges/cgi/forker.pl). Elsewhere the bridge forks
# the scripts itself.
my %SYSCALLS = (x86_64 => [46, 47, 292, 59, 3], aarch64 => [211, 212, 24, 221, 57], riscv64 => [211, 212, 24, 221, 57]);
my $HERE = do { (my $d = __FILE__) =~ s{/[^/]*\z}{}; $d eq __FILE__ ? '.' : $d };

use constant {
    BRIDGE_API      => 1,
    WNOHANG         => 1,        # waitpid(): the same value on Linux, the BSDs and macOS
    HELLO_MODIFIER1 => 99,       # the hello packet (§3.1)
    READ_SIZE       => 65536,
    # Stop reading a script's stdout while this much output waits for the connection.
    OUT_HIGH_WATER => 65536,
    # Stop reading a connection while this much is buffered (room for a whole packet: 4 + 65535).
    IN_HIGH_WATER => 262144,
    # How long the first piece of a response may wait for the script to finish, so that a
    # short response goes out in one write with a Content-Length (one packet for the core to
    # parse, no chunked framing): the typical CGI script prints everything and exits.
    HOLD_SECONDS => 0.02,
    # How often scripts that ended are looked for when waitpid() found them still exiting.
    REAP_INTERVAL => 1,
    # Framing of the response in progress (§3.1 "self-delimiting").
    MODE_NONE    => 0,    # no body may be sent (HEAD, 1xx, 204, 304): bytes are dropped
    MODE_RAW     => 1,    # bytes as the script writes them (closing delimits, or the script framed it)
    MODE_LENGTH  => 2,    # exactly the script's Content-Length: extra dropped, missing -> close
    MODE_CHUNKED => 3,    # we added Transfer-Encoding: chunked
};

# Wall-clock time for --cgi-timeout. Time::HiRes is in the `perl` package but not in
# perl-base; without it the whole-second clock is used, and a deadline gets one more second
# so that a script is never killed early.
my $HIRES = eval { require Time::HiRes; 1 } ? 1 : 0;
sub now { $HIRES ? Time::HiRes::time() : time() }

my %REASON = (
    100 => 'Continue', 101 => 'Switching Protocols', 102 => 'Processing', 103 => 'Early Hints',
    200 => 'OK', 201 => 'Created', 202 => 'Accepted', 203 => 'Non-Authoritative Information',
    204 => 'No Content', 205 => 'Reset Content', 206 => 'Partial Content', 207 => 'Multi-Status',
    208 => 'Already Reported', 226 => 'IM Used',
    300 => 'Multiple Choices', 301 => 'Moved Permanently', 302 => 'Found', 303 => 'See Other',
    304 => 'Not Modified', 305 => 'Use Proxy', 307 => 'Temporary Redirect', 308 => 'Permanent Redirect',
    400 => 'Bad Request', 401 => 'Unauthorized', 402 => 'Payment Required', 403 => 'Forbidden',
    404 => 'Not Found', 405 => 'Method Not Allowed', 406 => 'Not Acceptable',
    407 => 'Proxy Authentication Required', 408 => 'Request Timeout', 409 => 'Conflict', 410 => 'Gone',
    411 => 'Length Required', 412 => 'Precondition Failed', 413 => 'Payload Too Large',
    414 => 'URI Too Long', 415 => 'Unsupported Media Type', 416 => 'Range Not Satisfiable',
    417 => 'Expectation Failed', 418 => "I'm a Teapot", 421 => 'Misdirected Request',
    422 => 'Unprocessable Entity', 423 => 'Locked', 424 => 'Failed Dependency', 425 => 'Too Early',
    426 => 'Upgrade Required', 428 => 'Precondition Required', 429 => 'Too Many Requests',
    431 => 'Request Header Fields Too Large', 451 => 'Unavailable For Legal Reasons',
    500 => 'Internal Server Error', 501 => 'Not Implemented', 502 => 'Bad Gateway',
    503 => 'Service Unavailable', 504 => 'Gateway Timeout', 505 => 'HTTP Version Not Supported',
    506 => 'Variant Also Negotiates', 507 => 'Insufficient Storage', 508 => 'Loop Detected',
    509 => 'Bandwidth Limit Exceeded', 510 => 'Not Extended', 511 => 'Network Authentication Required',
);
sub reason { $REASON{ $_[0] } // 'Unknown' }

# ------------------------------------------------------------------------------------------
# Process state
# ------------------------------------------------------------------------------------------

my %CONFIG;           # TSUWSGI_BRIDGE_CONFIG
my %S;                # the plugin's settings ($CONFIG{plugin}), see plugins/cgi/index.ts CgiSettings
my $CORES = 1;        # connections served at once (--threads)
my $SERVER_SOFTWARE = 'uWSGI/2.0';
my $SERVER_CWD = '/';  # DOCUMENT_ROOT of single-script entries (the core chdir()ed us to it)
my ($CONTROL, $LISTEN);
my $CTRL_BUF = '';
my $STOPPING = 0;     # a graceful stop was asked
my @SLOTS;            # connections by core index (undef: free)
my %RUNNING;          # scripts whose output we read, by id: { id, pid, what, killed, ended }
my %CHILDREN;         # without the forker: our children not yet reaped, by pid
my $FORKER;           # the socket to the forker (native/cgi-forker.c or forker.pl); undef: we fork the scripts ourselves
my $FORKER_CHOICE;    # TSUWSGI_CGI_FORKER (see start_forker)
my $ROUTE_TOKEN;      # TSUWSGI_CGI_ROUTE_TOKEN: proves a TSUWSGI_CGI_ROUTE var came from the cgi: route action
my $SYS_SENDMSG;
my $NEXT_ID = 0;
my $UNREAPED = 0;     # scripts whose output ended (or that we stopped listening to) not yet reaped

sub log_line {
    my $message = shift;
    syswrite(STDERR, "[cgi] $message\n");    # one write: lines of parallel bridges do not interleave
}

sub set_nonblocking {
    my $fh = shift;
    # A fresh descriptor has no other status flags worth keeping (F_SETFL ignores the access mode).
    fcntl($fh, Fcntl::F_SETFL(), Fcntl::O_NONBLOCK());
}

sub kill_group {
    my $pid = shift;
    # Each script leads its own process group (setpgrp in the child): this reaches what it started.
    kill('KILL', -$pid) or kill('KILL', $pid);
}

sub exit_now {
    my $status = shift;
    # The forker kills its scripts when it sees us go (EOF).
    kill_group($_) for $FORKER ? () : keys %CHILDREN;
    exit $status;
}

# ------------------------------------------------------------------------------------------
# JSON: the configuration and the control channel. Strings stay UTF-8 bytes (paths, PATH_INFO
# and file names are bytes), \u escapes become UTF-8 bytes.
# ------------------------------------------------------------------------------------------

my %JSON_ESCAPE = ('"' => '"', '\\' => '\\', '/' => '/', b => "\b", f => "\f", n => "\n", r => "\r", t => "\t");

# Returns the value, or dies with what is wrong.
sub json_decode {
    local $_ = shift;
    pos($_) = 0;
    my $value = json_value();
    /\G\s*/gc;
    die 'unexpected data at offset ' . pos($_) . "\n" if pos($_) < length $_;
    return $value;
}

sub json_value {
    /\G\s*/gc;
    if (/\G\{/gc) {
        my %h;
        /\G\s*/gc;
        return \%h if /\G\}/gc;
        while (1) {
            /\G\s*"/gc or die 'expected a string key at offset ' . pos($_) . "\n";
            my $key = json_string();
            /\G\s*:/gc or die 'expected ":" at offset ' . pos($_) . "\n";
            $h{$key} = json_value();
            /\G\s*/gc;
            next if /\G,/gc;
            return \%h if /\G\}/gc;
            die 'expected "," or "}" at offset ' . pos($_) . "\n";
        }
    }
    if (/\G\[/gc) {
        my @a;
        /\G\s*/gc;
        return \@a if /\G\]/gc;
        while (1) {
            push @a, json_value();
            /\G\s*/gc;
            next if /\G,/gc;
            return \@a if /\G\]/gc;
            die 'expected "," or "]" at offset ' . pos($_) . "\n";
        }
    }
    return json_string() if /\G"/gc;
    return 0 + $1 if /\G(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)/gc;
    return 1 if /\Gtrue/gc;
    return 0 if /\Gfalse/gc;
    return undef if /\Gnull/gc;
    die 'unexpected character at offset ' . pos($_) . "\n";
}

sub json_string {
    my $s = '';
    while (1) {
        if (/\G([^"\\]+)/gc) {
            $s .= $1;
        } elsif (/\G"/gc) {
            return $s;
        } elsif (/\G\\u([0-9a-fA-F]{4})/gc) {
            my $cp = hex $1;
            if ($cp >= 0xD800 && $cp < 0xDC00 && /\G\\u([dD][c-fC-F][0-9a-fA-F]{2})/gc) {
                $cp = 0x10000 + (($cp - 0xD800) << 10) + (hex($1) - 0xDC00);
            }
            my $ch = chr $cp;
            utf8::encode($ch);
            $s .= $ch;
        } elsif (/\G\\(["\\\/bfnrt])/gc) {
            $s .= $JSON_ESCAPE{$1};
        } else {
            die 'invalid string at offset ' . pos($_) . "\n";
        }
    }
}

sub json_string_literal {
    my $s = shift;
    $s =~ s/(["\\])/\\$1/g;
    $s =~ s/([\x00-\x1f])/sprintf('\\u%04x', ord $1)/ge;
    return qq{"$s"};
}

# ------------------------------------------------------------------------------------------
# The control channel (§4)
# ------------------------------------------------------------------------------------------

sub send_event {
    my $line = shift() . "\n";
    my $off = 0;
    # The control socket is non-blocking (it is read from the loop); a short JSON line
    # practically always fits, but wait for room rather than drop a message.
    while ($off < length $line) {
        my $n = syswrite($CONTROL, $line, length($line) - $off, $off);
        if (!defined $n) {
            next if $! == Errno::EINTR;
            if ($! == Errno::EAGAIN) {
                my $w = '';
                vec($w, fileno($CONTROL), 1) = 1;
                select(undef, $w, undef, 1);
                next;
            }
            return;    # the core is gone: EOF on the read side ends us
        }
        $off += $n;
    }
}

sub read_control {
    while (1) {
        my $n = sysread($CONTROL, $CTRL_BUF, 65536, length $CTRL_BUF);
        if (!defined $n) {
            next if $! == Errno::EINTR;
            last if $! == Errno::EAGAIN;
            exit_now(0);
        }
        exit_now(0) if $n == 0;    # EOF: the core died (§1), no bridge outlives its server
    }
    while ((my $nl = index($CTRL_BUF, "\n")) >= 0) {
        my $line = substr($CTRL_BUF, 0, $nl + 1, '');
        next unless $line =~ /\S/;
        my $msg = eval { json_decode($line) };
        if (ref $msg ne 'HASH') {
            chomp $line;
            log_line('invalid control message ' . substr($line, 0, 200));
            next;
        }
        my $cmd = $msg->{cmd} // '';
        if ($cmd eq 'stop') {
            exit_now(0) unless $msg->{graceful};
            start_graceful_stop();
        } elsif ($cmd eq 'stack') {
            # No interpreter stack is worth showing: what runs are the scripts.
            my @running = map { $_->{what} . ($_->{pid} ? " (pid $_->{pid})" : '') } @RUNNING{ sort { $a <=> $b } keys %RUNNING };
            syswrite(STDERR, "cgi bridge $$: " . scalar(@running) . ' script(s) running: ' . (join(', ', @running) || 'none') . "\n");
        } else {
            log_line("unknown control command '$cmd'");
        }
    }
}

sub start_graceful_stop {
    return if $STOPPING;
    $STOPPING = 1;
    if ($LISTEN) {
        close($LISTEN);
        $LISTEN = undef;
    }
    exit_now(0) unless grep { defined } @SLOTS;
    advance($_) for grep { defined } @SLOTS;    # idle connections stop reading now
}

# ------------------------------------------------------------------------------------------
# Connections
# ------------------------------------------------------------------------------------------

sub accept_connection {
    my $slot = 0;
    $slot++ while $slot < $CORES && defined $SLOTS[$slot];
    return if $slot >= $CORES;
    my $fh;
    if (!accept($fh, $LISTEN)) {
        return if $! == Errno::EAGAIN || $! == Errno::EINTR || $! == Errno::ECONNABORTED;
        log_line("accept() on the pool socket failed: $!");
        # Out of descriptors or memory: let a moment pass instead of spinning.
        select(undef, undef, undef, 0.1) if $! == Errno::EMFILE || $! == Errno::ENFILE || $! == Errno::ENOBUFS || $! == Errno::ENOMEM;
        return;
    }
    binmode $fh;
    set_nonblocking($fh);
    $SLOTS[$slot] = {
        fh          => $fh,
        slot        => $slot,
        rbuf        => '',
        wbuf        => '',
        persistent  => 0,      # a hello came: many requests, self-delimiting responses
        req         => undef,  # the request being served
        close_after => 0,      # close once the current request is complete
        closing     => 0,      # no more requests: close once the output is written
        rd_shut     => 0,      # stopping: we shut the read side, EOF means "no more requests"
        eof         => 0,
        dead        => 0,
    };
}

# The connection is finished: close it, free its slot. `gone`: the core went away (or the
# connection broke) while a script may still run, so stop it.
sub close_connection {
    my ($c, $gone) = @_;
    return if $c->{dead};
    $c->{dead} = 1;
    if (my $r = $c->{req}) {
        script_abandoned($r, 'client connection closed') if $gone && !$r->{done};
        close_script_pipes($r);
        $c->{req} = undef;
    }
    close($c->{fh});
    $SLOTS[ $c->{slot} ] = undef;
    exit_now(0) if $STOPPING && !grep { defined } @SLOTS;
}

# Queue bytes for the connection and write what the socket takes now.
sub conn_write {
    my ($c, $data) = @_;
    return if $c->{dead} || !length $data;
    if (length $c->{wbuf}) {
        $c->{wbuf} .= $data;
        return;
    }
    my $n = syswrite($c->{fh}, $data);
    if (!defined $n) {
        return close_connection($c, 1) unless $! == Errno::EAGAIN || $! == Errno::EINTR;
        $n = 0;
    }
    $c->{wbuf} = substr($data, $n) if $n < length $data;
}

sub flush_connection {
    my $c = shift;
    my $n = syswrite($c->{fh}, $c->{wbuf});
    if (!defined $n) {
        return if $! == Errno::EAGAIN || $! == Errno::EINTR;
        return close_connection($c, 1);
    }
    substr($c->{wbuf}, 0, $n, '');
    # The connection takes output again: the script is not idle, it was waiting for us.
    arm($c->{req}) if $c->{req} && defined $c->{req}{deadline};
    close_connection($c, 0) if $c->{closing} && !length $c->{wbuf};
}

sub read_connection {
    my $c = shift;
    my $n = sysread($c->{fh}, $c->{rbuf}, READ_SIZE, length $c->{rbuf});
    if (!defined $n) {
        return if $! == Errno::EAGAIN || $! == Errno::EINTR;
        return close_connection($c, 1);
    }
    if ($n == 0) {
        # After our own shutdown (graceful stop) EOF only means "nothing more was sent".
        return close_connection($c, 1) unless $c->{rd_shut};
        $c->{eof} = 1;
    }
    advance($c);
}

# Whether to watch the connection for input.
sub wants_read {
    my $c = shift;
    return 0 if $c->{closing} || $c->{eof} || length($c->{rbuf}) >= IN_HIGH_WATER;
    my $r = $c->{req};
    # Back-pressure: the script's stdin is full, read more once it took what we have.
    return 0 if $r && length $r->{body_out};
    return 1;
}

# Move the connection on as far as it can go: request body bytes to the script, the end of a
# request, the next packet.
sub advance {
    my $c = shift;
    while (!$c->{dead}) {
        if (my $r = $c->{req}) {
            feed_body($r) if $r->{body_left} > 0 && length $c->{rbuf};
            return if $c->{dead} || $r->{body_left} > 0 || !$r->{finished};
            # Complete: the response is out and the body consumed.
            $c->{req} = undef;
            close_script_pipes($r);
            if ($c->{close_after}) {
                $c->{closing} = 1;
                close_connection($c, 0) unless length $c->{wbuf};
                return;
            }
        }
        if (length($c->{rbuf}) < 4 || length($c->{rbuf}) < 4 + unpack('x v', $c->{rbuf})) {
            if ($c->{eof}) {
                close_connection($c, 0);
            } elsif ($STOPPING && !$c->{rd_shut}) {
                # Serve what the core already sent, no more: after shutting the read side, reads
                # return the queued bytes, then EOF.
                shutdown($c->{fh}, 0);
                $c->{rd_shut} = 1;
            }
            return;
        }
        my ($m1, $size, $m2) = unpack('CvC', $c->{rbuf});
        my $block = substr($c->{rbuf}, 4, $size);
        substr($c->{rbuf}, 0, 4 + $size, '');
        if ($m1 == HELLO_MODIFIER1 && $m2 == 0) {
            $c->{persistent} = 1;
            my $vars = pack('(v/a v/a)*', pid => $$, worker_id => int($CONFIG{workerId} || 1), core => $c->{slot}, bridge_api => BRIDGE_API);
            conn_write($c, pack('CvC', HELLO_MODIFIER1, length $vars, 1) . $vars);
            next;
        }
        # unpack() dies on a length that runs past the end; re-packing catches a short last one.
        my @kv = eval { unpack('(v/a v/a)*', $block) };
        if ($@ || @kv % 2 || length(pack('(v/a v/a)*', @kv)) != $size) {
            log_line('bad uwsgi packet: truncated uwsgi var block; closing the connection');
            return close_connection($c, 1);
        }
        start_request($c, {@kv});
    }
}

# ------------------------------------------------------------------------------------------
# The response (self-delimiting on persistent connections, bridge-protocol.md §3.1)
# ------------------------------------------------------------------------------------------

# A complete short response (errors, redirects), always with a Content-Length.
sub respond_simple {
    my ($r, $status, $body, @extra) = @_;
    my $head = "$r->{proto} $status " . reason($status) . "\r\nContent-Type: text/plain\r\n";
    $head .= "$_->[0]: $_->[1]\r\n" for @extra;
    $head .= 'Content-Length: ' . length($body) . "\r\n\r\n";
    $r->{headers_sent} = 1;
    conn_write($r->{conn}, $r->{head} ? $head : $head . $body);
    finish_response($r, 0);
}

# The status line and the script's header lines, with the first body bytes. `complete`: the
# script has ended and `first` is its whole body, so a missing Content-Length can be given.
sub respond_start {
    my ($r, $status_line, $lines, $first, $complete) = @_;
    my $code = 0 + substr($status_line, 0, 3);
    my ($length, $script_chunked);
    for (@$lines) {
        my ($name, $value) = /^([^:]*):\s*(.*)$/s;
        $name = lc $name;
        $length = 0 + $value if $name eq 'content-length' && $value =~ /^[0-9]+\z/;
        $script_chunked = 1 if $name eq 'transfer-encoding';
    }
    my $head = "$r->{proto} $status_line\r\n" . join('', map { "$_\r\n" } @$lines);
    my $bodiless_status = ($code >= 100 && $code < 200) || $code == 204 || $code == 304;
    if ($complete && !defined $length && !$script_chunked && !$bodiless_status) {
        # The whole body is here: give its length (for HEAD too, the length a GET would get).
        $length = length $first;
        $head .= "Content-Length: $length\r\n";
    }
    if ($r->{head} || $bodiless_status) {
        $r->{mode} = MODE_NONE;
    } elsif (defined $length && !$script_chunked) {
        $r->{mode} = MODE_LENGTH;
        $r->{left} = $length;
    } elsif ($r->{conn}{persistent} && !$script_chunked) {
        $r->{mode} = MODE_CHUNKED;
        $head .= "Transfer-Encoding: chunked\r\n";
    } else {
        $r->{mode} = MODE_RAW;
    }
    $r->{headers_sent} = 1;
    conn_write($r->{conn}, "$head\r\n" . encode_body($r, $first));
}

sub encode_body {
    my ($r, $chunk) = @_;
    my $mode = $r->{mode};
    return '' if $mode == MODE_NONE || !length $chunk;
    return $chunk if $mode == MODE_RAW;
    return sprintf("%x\r\n", length $chunk) . $chunk . "\r\n" if $mode == MODE_CHUNKED;
    return '' if $r->{left} == 0;
    $chunk = substr($chunk, 0, $r->{left}) if length($chunk) > $r->{left};
    $r->{left} -= length $chunk;
    return $chunk;
}

# The body is complete (the script closed its stdout).
sub respond_end {
    my $r = shift;
    conn_write($r->{conn}, "0\r\n\r\n") if $r->{mode} == MODE_CHUNKED;
    # A script that promised more bytes than it wrote: the response cannot be completed on a
    # persistent connection, so close it (the client sees the truncation).
    finish_response($r, $r->{mode} == MODE_LENGTH && $r->{left} > 0);
}

sub finish_response {
    my ($r, $close) = @_;
    return if $r->{finished};
    $r->{finished} = 1;
    my $c = $r->{conn};
    return if $c->{dead};
    if ($close) {
        # Nothing more can follow on this connection: stop reading it, the request's
        # remaining body included, and close once the output is written.
        $c->{closing} = 1;
        $r->{body_left} = 0;
        close_connection($c, 0) unless length $c->{wbuf};
    } elsif (!$c->{persistent}) {
        $c->{close_after} = 1;    # plain uwsgi: one request per connection
    }
}

# ------------------------------------------------------------------------------------------
# Script location (spec/languages.md §9.2)
# ------------------------------------------------------------------------------------------

# die http_error(404, why): answered with that status, `why` goes to the log.
sub http_error {
    my ($status, $why, @extra) = @_;
    return { status => $status, why => $why, extra => \@extra };
}
sub not_found { http_error(404, @_) }
sub forbidden { http_error(403, @_) }

# (realpath, stat list) of an existing path, else (). Cwd's realpath accepts a missing last
# component, so existence is checked by the stat.
sub resolve {
    my $p = shift;
    return () if !length $p;
    my $real = Cwd::abs_path($p);
    return () unless defined $real;
    my @st = stat $real;
    return @st ? ($real, @st) : ();
}

sub is_dir_mode { Fcntl::S_ISDIR($_[0]) }

sub ends_with_ci {
    my ($s, $suffix) = @_;
    return length($s) >= length($suffix) && lc(substr($s, -length $suffix)) eq lc($suffix);
}

sub is_under {
    my ($file, $dir) = @_;
    return 1 if $dir eq '/';
    return $file eq $dir || index($file, $dir =~ m{/\z} ? $dir : "$dir/") == 0;
}

sub helper_for {
    my $file = shift;
    for (@{ $S{helpers} }) {
        return $_->[1] if ends_with_ci($file, $_->[0]);
    }
    return undef;
}

# The longest `--cgi MOUNTPOINT=` prefixing PATH_INFO (at a "/" boundary), else the default entry.
sub choose_mount {
    my $path_info = shift;
    my ($best, $fallback);
    for my $m (@{ $S{mounts} }) {
        my $mp = $m->{mountpoint};
        if ($mp eq '') {
            $fallback = $m;    # uWSGI: the last entry without a mountpoint is the default
            next;
        }
        if (($path_info eq $mp || index($path_info, "$mp/") == 0) && (!$best || length($mp) > length($best->{mountpoint}))) {
            $best = $m;
        }
    }
    return $best // $fallback;
}

# Percent-encode what encodeURI() would (the Location of the directory redirect).
sub encode_uri {
    my $s = shift;
    $s =~ s/([^A-Za-z0-9;,\/?:@&=+\$\-_.!~*'()#])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# Where the request goes: { script, docroot, path_info (or undef), script_name, is_file, helper }.
# Dies with an http_error for 301/403/404.
sub locate {
    my $vars = shift;
    # Never passed on to a script, whoever sent it.
    my $routed = delete $vars->{TSUWSGI_CGI_ROUTE};
    if (defined $routed) {
        my ($token, $helper, $command) = split /\0/, $routed, 3;
        return routed_location($vars, $helper, $command) if defined $command && defined $ROUTE_TOKEN && $token eq $ROUTE_TOKEN;
        log_line('ignoring a TSUWSGI_CGI_ROUTE request var that the cgi: route action did not set (wrong token)');
    }
    my $req_path_info = $vars->{PATH_INFO} // '';
    die not_found('NUL byte in PATH_INFO') if index($req_path_info, "\0") >= 0;
    my ($docroot, $is_file, @st);
    my $mountpoint = '';
    if ($S{fromDocroot}) {
        my $root = $vars->{DOCUMENT_ROOT} // '';
        die not_found('--cgi-from-docroot: the request has no DOCUMENT_ROOT') if $root eq '';
        ($docroot) = resolve($root) or die not_found("DOCUMENT_ROOT $root does not exist");
        $is_file = 0;
    } else {
        my $m = choose_mount($req_path_info) or die not_found("no --cgi entry matches $req_path_info (and there is no default CGI directory)");
        $mountpoint = $m->{mountpoint};
        if (!defined $m->{isFile}) {
            ($docroot, @st) = resolve($m->{path}) or die not_found("CGI path $m->{path} does not exist");
            $is_file = !is_dir_mode($st[2]);
        } else {
            $docroot = $m->{path};
            $is_file = $m->{isFile};
        }
    }
    my $rest = substr($req_path_info, length $mountpoint);

    if ($is_file) {
        # A single script: it always runs; everything after the mountpoint is PATH_INFO.
        return { script => $docroot, docroot => $docroot, path_info => $rest, script_name => $mountpoint, is_file => 1, helper => helper_for($docroot) };
    }

    # Walk the path: the first component that is not a directory is the script; the rest is PATH_INFO.
    my $full = $docroot;
    my $path_info;
    if ($S{pathInfo}) {
        $full = $docroot . ($rest eq '' || substr($rest, 0, 1) eq '/' ? $rest : "/$rest");
    } else {
        my @parts = split m{/}, $rest, -1;
        for my $i (0 .. $#parts) {
            my $part = $parts[$i];
            next if $part eq '' && $i == 0;
            my $candidate = $full eq '/' ? "/$part" : "$full/$part";
            if ($i == $#parts) {
                $full = $candidate;
                last;
            }
            my @cst = stat $candidate or die not_found("$candidate does not exist");
            $full = $candidate;
            if (!is_dir_mode($cst[2])) {
                my $remaining = '/' . join('/', @parts[ $i + 1 .. $#parts ]);
                $path_info = $remaining if $remaining ne '/';
                last;
            }
        }
    }

    my $check_under = sub {
        my $p = shift;
        die forbidden("CGI security error: $p is not under $docroot")
            unless is_under($p, $docroot) || grep { is_under($p, $_) } @{ $S{safe} };
    };
    my ($real, @rst) = resolve($full) or die not_found("$full does not exist");
    $check_under->($real);
    if (is_dir_mode($rst[2])) {
        if (substr($req_path_info, -1) ne '/') {
            my $qs = $vars->{QUERY_STRING} // '';
            my $location = encode_uri("$req_path_info/") . ($qs ne '' ? "?$qs" : '');
            die http_error(301, "directory without trailing slash: redirect to $location", [Location => $location]);
        }
        my $found;
        for my $name (@{ $S{index} }) {
            my $candidate = "$real/$name";
            if (-r $candidate) {
                $found = $candidate;
                last;
            }
        }
        die not_found("$real is a directory and no --cgi-index file is readable in it") unless defined $found;
        ($real, @rst) = resolve($found) or die not_found("$found does not exist");
        $check_under->($real);
        die not_found("index $found is not a file") if is_dir_mode($rst[2]);
    }
    if (@{ $S{allowedExt} } && !grep { ends_with_ci($real, $_) } @{ $S{allowedExt} }) {
        die forbidden("$real does not end in an allowed extension (--cgi-allowed-ext " . join(', ', @{ $S{allowedExt} }) . ')');
    }
    my $helper = helper_for($real);
    die forbidden("$real is not executable and no --cgi-helper matches it") if !defined $helper && !-x _;    # _: the stat of $real by resolve()
    my $relative = $real eq $docroot ? '' : substr($real, $docroot eq '/' ? 0 : length $docroot);
    return { script => $real, docroot => $docroot, path_info => $S{pathInfo} ? undef : $path_info, script_name => $mountpoint . $relative, is_file => 0, helper => $helper };
}

# The `cgi:COMMAND` / `cgihelper:HELPER COMMAND` route actions (plugins/cgi/route-actions.ts):
# the core checked COMMAND; it runs with no PATH_INFO, in its own directory (or the document
# root when COMMAND is a bare name for the helper), as uWSGI's uwsgi_routing_func_cgi does.
sub routed_location {
    my ($vars, $helper, $command) = @_;
    my $docroot = $vars->{DOCUMENT_ROOT} // '';
    my $script_name = $command;
    $script_name = substr($command, length $docroot) if $docroot ne '' && is_under($command, $docroot) && $command ne $docroot;
    (my $dir = $command) =~ s{/[^/]*\z}{};
    $dir = $command =~ m{/} ? ($dir eq '' ? '/' : $dir) : ($docroot ne '' ? $docroot : $SERVER_CWD);
    return { script => $command, docroot => $docroot, path_info => undef, script_name => $script_name, is_file => 0, helper => $helper eq '' ? undef : $helper, dir => $dir };
}

# ------------------------------------------------------------------------------------------
# Running a script
# ------------------------------------------------------------------------------------------

# The script's environment as changes to ours: the request's variables, then the CGI/1.1
# meta-variables, then --cgi-unset. Returns ({name => value}, [names to remove]). Bytes are
# passed as the core sent them.
sub env_changes {
    my ($vars, $loc) = @_;
    my (%set, @unset);
    while (my ($k, $v) = each %$vars) {
        next if $k eq 'UWSGI_APPID' || $k eq '' || $k =~ /[=\0]/ || index($v, "\0") >= 0;
        $set{$k} = $v;
    }
    # Unset or empty, in the script's environment as it stands.
    my $absent = sub { ((exists $set{ $_[0] } ? $set{ $_[0] } : $ENV{ $_[0] }) // '') eq '' };
    for ([GATEWAY_INTERFACE => 'CGI/1.1'], [SERVER_SOFTWARE => $SERVER_SOFTWARE], [REDIRECT_STATUS => '200']) {
        $set{ $_->[0] } = $_->[1] if $absent->($_->[0]);
    }
    if ($S{pathInfo}) {
        # --cgi-path-info: PATH_INFO as the client sent it.
    } elsif (defined $loc->{path_info}) {
        $set{PATH_INFO} = $loc->{path_info};
        my $root = ($vars->{DOCUMENT_ROOT} // '') ne '' ? $vars->{DOCUMENT_ROOT} : $loc->{docroot};
        $set{PATH_TRANSLATED} = $root . $loc->{path_info};
    } else {
        delete @set{qw(PATH_INFO PATH_TRANSLATED)};
        push @unset, qw(PATH_INFO PATH_TRANSLATED);
    }
    if ($loc->{is_file}) {
        $set{DOCUMENT_ROOT} = $SERVER_CWD if $absent->('DOCUMENT_ROOT');
        $set{SCRIPT_NAME} = $loc->{script_name} if length($loc->{script_name}) > 1;
    } else {
        $set{DOCUMENT_ROOT} = $loc->{docroot} if $absent->('DOCUMENT_ROOT');
        $set{SCRIPT_NAME} = $loc->{script_name};
    }
    $set{SCRIPT_FILENAME} = $loc->{script};
    delete @set{ @{ $S{unset} } };
    push @unset, @{ $S{unset} };
    return (\%set, \@unset);
}

# RFC 3875 §4.4: a query string without "=" is split on "+" and URL-decoded into argv. An
# argument with a malformed escape is passed as it is.
sub indexed_args {
    my $qs = shift;
    return () if $qs eq '' || index($qs, '=') >= 0;
    my @args;
    for my $arg (split /\+/, $qs, -1) {
        $arg =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge unless $arg =~ /%(?![0-9A-Fa-f]{2})/;
        push @args, $arg if index($arg, "\0") < 0;
    }
    return @args;
}

# The header block (without its blank line): (status line, [header lines]) or (undef, error).
sub parse_header_block {
    my $text = shift;
    my ($status, $location);
    my @out;
    for my $line (split /\n/, $text, -1) {
        $line =~ s/\r\z//;
        my $i = index($line, ':');
        return (undef, 'header line without a name and ":" ' . quote(substr($line, 0, 80))) if $i <= 0;
        my $name = substr($line, 0, $i);
        my $value = substr($line, $i + 1);
        s/^\s+//, s/\s+\z// for $name, $value;
        return (undef, 'invalid header name ' . quote(substr($name, 0, 80))) if $name eq '' || $name =~ /[^!#\$%&'*+.^_`|~0-9A-Za-z-]/;
        return (undef, "invalid header value for $name") if $value =~ /[\r\0]/;
        my $lower = lc $name;
        if ($lower eq 'status') {
            if (!defined $status) {
                my ($code, $phrase) = $value =~ /^([0-9]{3})(?:\s+(.*))?\z/s;
                return (undef, 'invalid Status header ' . quote(substr($value, 0, 80))) if !defined $code || $code < 100;
                $status = "$code " . (defined $phrase && length $phrase ? $phrase : reason($code));
            }
            next;
        }
        $location = 1 if $lower eq 'location';
        push @out, "$name: $value";
    }
    return ($status // ($location ? '302 Found' : '200 OK'), \@out);
}

sub quote {
    my $s = shift;
    $s =~ s/(["\\])/\\$1/g;
    $s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return qq{"$s"};
}

sub start_request {
    my ($c, $vars) = @_;
    my $cl_raw = $vars->{CONTENT_LENGTH} // '';
    my $r = {
        conn         => $c,
        proto        => ($vars->{SERVER_PROTOCOL} // '') ne '' ? $vars->{SERVER_PROTOCOL} : 'HTTP/1.0',
        head         => ($vars->{REQUEST_METHOD} // '') eq 'HEAD',
        headers_sent => 0,
        finished     => 0,      # the response is complete (or abandoned)
        done         => 0,      # the script side is over: output ended, or it failed
        mode         => MODE_RAW,
        left         => 0,
        body_left    => 0,      # request body bytes still to come from the connection
        body_out     => '',     # body bytes read, not yet taken by the script's stdin
        stdin        => undef,
        stdout       => undef,
        hbuf         => '',     # the script's output until its header block is complete
        deadline     => undef,
        child        => undef,
        what         => '',
    };
    $c->{req} = $r;
    if ($cl_raw ne '' && $cl_raw !~ /^[0-9]{1,15}\z/) {
        log_line('invalid CONTENT_LENGTH ' . quote($cl_raw) . '; closing the connection');
        $c->{persistent} = 0;
        $c->{rbuf} = '';
        respond_simple($r, 400, 'Bad Request');
        $r->{done} = 1;
        return;
    }
    $r->{body_left} = 0 + ($cl_raw || 0);
    my $loc = eval { locate($vars) };
    if (!$loc) {
        my $err = $@;
        if (ref $err eq 'HASH') {
            log_line("$err->{status} for " . ($vars->{REQUEST_URI} // $vars->{PATH_INFO} // '') . ": $err->{why}") if $err->{status} != 301;
            respond_simple($r, $err->{status}, reason($err->{status}), @{ $err->{extra} });
        } else {
            log_line('error locating the CGI script for ' . ($vars->{PATH_INFO} // '') . ": $err");
            respond_simple($r, 500, 'Internal Server Error');
        }
        $r->{done} = 1;    # the body is consumed and dropped
        return;
    }
    run_script($r, $vars, $loc);
}

sub run_script {
    my ($r, $vars, $loc) = @_;
    my @argv = indexed_args($vars->{QUERY_STRING} // '');
    my $helper = $loc->{helper};
    my $file = $helper // $loc->{script};
    my @args = defined $helper ? ($loc->{script}, @argv) : @argv;
    my $what = $r->{what} = defined $helper ? "$helper $loc->{script}" : $loc->{script};
    my $dir = $loc->{dir};
    if (!defined $dir) {
        ($dir = $loc->{script}) =~ s{/[^/]*\z}{};
        $dir = '/' if $dir eq '';
    }

    my ($set, $unset) = env_changes($vars, $loc);

    my ($out_r, $out_w, $in_r, $in_w);
    my $ok = pipe($out_r, $out_w);
    # Without a body the script reads /dev/null (our fd 0, by the bridge contract): EOF at
    # once, as from a closed pipe.
    $ok &&= pipe($in_r, $in_w) if $r->{body_left} > 0;
    my $child = $r->{child} = { id => ++$NEXT_ID, pid => undef, what => $what, killed => 0 };
    if ($ok && $FORKER) {
        # The whole environment: the forker hands it to execve() as it is.
        my %env = (%ENV, %$set);
        delete @env{@$unset};
        my @env = map { "$_=$env{$_}" } keys %env;
        my $message = 'S' . pack('N3', $child->{id}, scalar(@args), scalar(@env)) . join("\0", $dir, $file, $what, @args, @env) . "\0";
        $ok = send_to_forker($message, fileno $out_w, $in_r ? fileno $in_r : ());
    } elsif ($ok) {
        my $pid = fork();
        $ok = defined $pid;
        if ($ok && $pid == 0) {
            # The child. Our own descriptors are close-on-exec (Perl opens them so above fd 2;
            # fds 3 and 4 were marked at start-up), so the script gets fds 0-2 only.
            setpgrp(0, 0);    # its own process group: a timeout kills the script and what it started
            (!$in_r || open(STDIN, '<&', $in_r)) && open(STDOUT, '>&', $out_w) or child_failed($what, "cannot set up stdin/stdout: $!");
            chdir $dir or child_failed($what, "chdir $dir: $!");
            @ENV{ keys %$set } = values %$set;
            delete @ENV{@$unset};
            { no warnings 'exec'; exec { $file } $file, @args; }
            child_failed($what, $! == Errno::ENOENT && defined $helper ? qq{helper "$helper" not found (check --cgi-helper)} : "$!");
        }
        if ($ok) {
            $child->{pid} = $pid;
            $CHILDREN{$pid} = $child;
        }
    }
    $RUNNING{ $child->{id} } = $child if $ok;
    if (!$ok) {
        log_line("unable to run $what: $!");
        $r->{child} = undef;
        respond_simple($r, 500, 'Internal Server Error');
        $r->{done} = 1;
        return;
    }
    close($out_w);
    close($in_r) if $in_r;
    # stdout stays blocking: it is read once per select() that found it readable. stdin is
    # non-blocking: a body larger than the pipe must not stall the loop.
    $r->{stdout} = $out_r;
    if ($in_w) {
        set_nonblocking($in_w);
        $r->{stdin} = $in_w;
    }
    arm($r);
    feed_body($r);
}

# In the child, when the script cannot be started: the client gets a 500 (no header block).
sub child_failed {
    my ($what, $why) = @_;
    syswrite(STDERR, "[cgi] unable to run $what: $why\n");
    exit 127;
}

sub arm {
    my $r = shift;
    $r->{deadline} = now() + $S{timeout} + ($HIRES ? 0 : 1);
}

# Request body bytes from the connection to the script's stdin (dropped once nobody takes them).
sub feed_body {
    my $r = shift;
    my $c = $r->{conn};
    if ($r->{body_left} > 0 && length $c->{rbuf} && !length $r->{body_out}) {
        my $piece = substr($c->{rbuf}, 0, $r->{body_left}, '');
        $r->{body_left} -= length $piece;
        $r->{body_out} = $piece if $r->{stdin};
    }
    write_stdin($r) if $r->{stdin};
}

sub write_stdin {
    my $r = shift;
    my $fh = $r->{stdin};
    if (length $r->{body_out}) {
        my $n = syswrite($fh, $r->{body_out});
        if (!defined $n) {
            return if $! == Errno::EAGAIN || $! == Errno::EINTR;
            # EPIPE: the script does not read its input. The rest of the body is dropped.
            $r->{body_out} = '';
            close($fh);
            $r->{stdin} = undef;
            return;
        }
        substr($r->{body_out}, 0, $n, '');
        arm($r) if defined $r->{deadline} && !$r->{done};
    }
    if (!length $r->{body_out} && $r->{body_left} == 0) {
        close($fh);    # the end of the body: the script sees EOF on stdin
        $r->{stdin} = undef;
    }
}

sub close_script_pipes {
    my $r = shift;
    for my $k (qw(stdin stdout)) {
        next unless $r->{$k};
        close($r->{$k});
        $r->{$k} = undef;
    }
    $r->{body_out} = '';
}

sub read_stdout {
    my $r = shift;
    my $n = sysread($r->{stdout}, my $chunk, READ_SIZE);
    if (!defined $n) {
        return if $! == Errno::EAGAIN || $! == Errno::EINTR;
        $n = 0;    # treat a read error as the end of the output
    }
    if ($n == 0) {
        return script_output_ended($r);
    }
    arm($r);
    if ($r->{headers_sent}) {
        conn_write($r->{conn}, encode_body($r, $chunk));
        return;
    }
    if (my $held = $r->{held}) {
        $held->[2] .= $chunk;
        release_held($r) if length($held->[2]) >= OUT_HIGH_WATER;
        return;
    }
    $r->{hbuf} .= $chunk;
    my $buf = $r->{hbuf};
    # The header block ends at the first empty line (LF or CRLF).
    my ($end, $body_start) = (-1, -1);
    if ($buf =~ /^\r?\n/) {
        ($end, $body_start) = (0, $+[0]);
    } elsif ($buf =~ /\n\r?\n/) {
        ($end, $body_start) = ($-[0], $+[0]);
    }
    my $limit = $S{bufferSize};
    if ($end < 0) {
        script_failed($r, 500, "invalid CGI response !!! $r->{what}: no end of headers within --cgi-buffer-size $limit bytes") if length($buf) > $limit;
        return;
    }
    return script_failed($r, 500, "invalid CGI response !!! $r->{what}: headers larger than --cgi-buffer-size $limit bytes") if $end > $limit;
    my ($status, $lines) = $end == 0 ? (undef, 'no headers at all (the response starts with a blank line)') : parse_header_block(substr($buf, 0, $end));
    return script_failed($r, 500, "invalid CGI response !!! $r->{what}: $lines") unless defined $status;
    $r->{hbuf} = '';
    $r->{held} = [$status, $lines, substr($buf, $body_start)];
    if ($HIRES) {
        $r->{flush_at} = now() + HOLD_SECONDS;    # see HOLD_SECONDS
    } else {
        release_held($r);    # a whole-second clock cannot time a short hold
    }
}

# Send the response head (and what the script wrote so far) that was held back.
sub release_held {
    my ($r, $complete) = @_;
    my ($status, $lines, $body) = @{ delete $r->{held} };
    $r->{flush_at} = undef;
    respond_start($r, $status, $lines, $body, $complete);
}

# The script closed its stdout: the response is complete.
sub script_output_ended {
    my $r = shift;
    return if $r->{done};
    $r->{done} = 1;
    $r->{deadline} = undef;
    close($r->{stdout});
    $r->{stdout} = undef;
    child_ended($r->{child});
    if ($r->{held}) {
        release_held($r, 1);
        respond_end($r);
    } elsif (!$r->{headers_sent}) {
        log_line("invalid CGI response !!! $r->{what} ended without a complete header block");
        respond_simple($r, 500, 'Internal Server Error');
    } else {
        respond_end($r);
    }
    advance($r->{conn});
}

# The script cannot answer properly (invalid response, timeout): stop it, tell the client.
sub script_failed {
    my ($r, $status, $why) = @_;
    return if $r->{done};
    $r->{done} = 1;
    $r->{deadline} = undef;
    log_line($why);
    script_abandoned($r, $why);
    if (!$r->{headers_sent}) {
        respond_simple($r, $status, reason($status));
    } else {
        finish_response($r, 1);    # close: the cut-off response is visibly truncated
    }
    advance($r->{conn});
}

# Nobody will read the script's output: kill it (its whole process group), or with
# --cgi-do-not-kill-on-error leave it running and stop listening to it.
sub script_abandoned {
    my ($r, $why) = @_;
    $r->{done} = 1;
    $r->{deadline} = $r->{flush_at} = undef;
    delete $r->{held};
    close_script_pipes($r);    # its output goes nowhere now, its input is dropped
    my $child = $r->{child} or return;
    return if $child->{killed};
    $child->{killed} = 1;
    if ($S{doNotKillOnError}) {
        log_line("$child->{what}: $why (left running: --cgi-do-not-kill-on-error)");
    } else {
        kill_script($child);
    }
    child_ended($child);
}

# Collect scripts that exited (no SIGCHLD handler: a signal per script would cost more than
# asking when their output ends) and log a failure status.
sub reap {
    my $pid = shift // -1;
    while ((my $got = waitpid($pid, WNOHANG)) > 0) {
        my $status = $?;
        my $child = delete $CHILDREN{$got} or next;
        $UNREAPED-- if $child->{ended};
        log_exit($child, $status);
        last if $pid > 0;
    }
}

sub log_exit {
    my ($child, $status) = @_;
    return if $child->{killed} || $status == 0;
    my $how = $status & 127 ? 'signal ' . signal_name($status & 127) : 'status ' . ($status >> 8);
    log_line("$child->{what} exited with $how");
}

# The script's output ended or we stopped listening to it: it is exiting, collect it.
sub child_ended {
    my $child = shift or return;
    delete $RUNNING{ $child->{id} };
    return if $FORKER;    # the forker collects them
    return if $child->{ended} || !$CHILDREN{ $child->{pid} };
    $child->{ended} = 1;
    $UNREAPED++;
    reap($child->{pid});
}

my %SIGNAME;
sub signal_name {
    my $n = shift;
    if (!%SIGNAME) {
        require Config;
        my @names = split ' ', $Config::Config{sig_name};
        my @nums = split ' ', $Config::Config{sig_num};
        @SIGNAME{@nums} = map { "SIG$_" } @names;
    }
    return $SIGNAME{$n} // $n;
}

# ------------------------------------------------------------------------------------------
# The forker (bridges/cgi/forker.pl: why it exists, and the messages)
# ------------------------------------------------------------------------------------------

# Which forker runs: bridges/cgi/native/build/cgi-forker (C, posix_spawn: nothing copied per
# script) when npm ci built it, else forker.pl. TSUWSGI_CGI_FORKER=perl|native|none picks one
# (tests run every mode; "none": the bridge forks the scripts itself).
sub start_forker {
    my $arch = (split /-/, do { require Config; $Config::Config{archname} })[0];
    my $numbers = $^O eq 'linux' && $SYSCALLS{$arch} or return;    # we fork the scripts ourselves
    my $choice = $FORKER_CHOICE // '';
    return if $choice eq 'none';
    my $native = "$HERE/native/build/cgi-forker";
    my $use_native = $choice eq 'native' || ($choice ne 'perl' && -x $native);
    my @command = $use_native ? ($native, $native) : ($^X, $^X, "$HERE/forker.pl");
    my ($mine, $theirs);
    # AF_UNIX 1, SOCK_SEQPACKET 5 (Linux): one message per datagram, descriptors attached.
    if (!socketpair($mine, $theirs, 1, 5, 0)) {
        log_line("cannot create the forker's socket ($!): scripts are forked by the bridge");
        return;
    }
    my $pid = fork();
    if (!defined $pid) {
        log_line("cannot start the forker ($!): scripts are forked by the bridge");
        return;
    }
    if ($pid == 0) {
        fcntl($theirs, Fcntl::F_SETFD(), 0);    # the one descriptor it inherits (with 0-2)
        my ($program, @argv) = @command;
        { no warnings 'exec'; exec { $program } @argv, fileno($theirs), join(',', @$numbers[1 .. 4]); }
        syswrite(STDERR, "[cgi] cannot run @argv[0 .. $#argv]: $!\n");
        exit 1;
    }
    close($theirs);
    binmode $mine;
    $FORKER = $mine;
    $SYS_SENDMSG = $numbers->[0];
}

# One datagram to the forker with descriptors attached (SCM_RIGHTS), through sendmsg(2): the
# structures of LP64 Linux, packed by hand (forker.pl has the layouts).
sub send_to_forker {
    my ($data, @fds) = @_;
    my $iov = pack('P Q', $data, length $data);
    my $control = @fds ? pack('Q i i i*', 16 + 4 * @fds, 1, 1, @fds) : undef;    # SOL_SOCKET, SCM_RIGHTS
    $control .= "\0" x (-length($control) % 8) if defined $control;
    my $msg = pack('Q L x4 P Q P Q i x4', 0, 0, $iov, 1, $control, defined $control ? length $control : 0, 0);
    my $n;
    do { $n = syscall($SYS_SENDMSG, fileno($FORKER) + 0, $msg, 0x4000) } while $n < 0 && $! == Errno::EINTR;    # MSG_NOSIGNAL
    return 1 if $n == length $data;
    # EMSGSIZE: this request's environment is too large for one datagram (it gets a 500).
    forker_lost("sendmsg: $!") if $n < 0 && $! != Errno::EMSGSIZE;
    return 0;
}

# The forker sends nothing (forker.pl): readable means it is gone.
sub read_forker {
    my $n = sysread($FORKER, my $message, 65536);
    return if !defined $n && ($! == Errno::EINTR || $! == Errno::EAGAIN);
    forker_lost($n ? 'unexpected message' : defined $n ? 'it exited' : "$!");
}

# The forker died (it should not): scripts are forked by the bridge from now on.
sub forker_lost {
    my $why = shift;
    log_line("the CGI forker is gone ($why): scripts are forked by the bridge from now on");
    close($FORKER);
    $FORKER = undef;
}

sub kill_script {
    my $child = shift;
    if (!$FORKER) {
        kill_group($child->{pid}) if $CHILDREN{ $child->{pid} };    # not reaped: its pid was not reused
        return;
    }
    # The forker kills it if it still runs, and does not log its exit status.
    send_to_forker('K' . pack('N', $child->{id}));
}

# ------------------------------------------------------------------------------------------
# The loop
# ------------------------------------------------------------------------------------------

sub run_loop {
    my $control_fd = fileno $CONTROL;
    while (1) {
        reap() if $UNREAPED;
        my ($rin, $win) = ('', '');
        vec($rin, $control_fd, 1) = 1;
        vec($rin, fileno $FORKER, 1) = 1 if $FORKER;
        my $accepting = 0;
        if ($LISTEN && grep { !defined } @SLOTS[ 0 .. $CORES - 1 ]) {
            vec($rin, fileno $LISTEN, 1) = 1;
            $accepting = 1;
        }
        my $deadline;
        my @conns = grep { defined } @SLOTS;
        for my $c (@conns) {
            vec($rin, fileno $c->{fh}, 1) = 1 if wants_read($c);
            vec($win, fileno $c->{fh}, 1) = 1 if length $c->{wbuf};
            my $r = $c->{req} or next;
            vec($rin, fileno $r->{stdout}, 1) = 1 if $r->{stdout} && length($c->{wbuf}) < OUT_HIGH_WATER;
            vec($win, fileno $r->{stdin}, 1) = 1 if $r->{stdin} && length $r->{body_out};
            for my $t ($r->{deadline}, $r->{flush_at}) {
                $deadline = $t if defined $t && (!defined $deadline || $t < $deadline);
            }
        }
        $deadline = now() + REAP_INTERVAL if $UNREAPED && (!defined $deadline || $deadline > now() + REAP_INTERVAL);
        my $timeout;
        if (defined $deadline) {
            $timeout = $deadline - now();
            $timeout = 0 if $timeout < 0;
        }
        my ($rout, $wout) = ($rin, $win);
        my $n = select($rout, $wout, undef, $timeout);
        if ($n < 0) {
            next if $! == Errno::EINTR;
            log_line("select() failed: $!");
            exit_now(1);
        }
        read_control() if vec($rout, $control_fd, 1);
        read_forker() if $FORKER && vec($rout, fileno $FORKER, 1);
        accept_connection() if $accepting && $LISTEN && vec($rout, fileno $LISTEN, 1);
        for my $c (@conns) {
            next if $c->{dead};
            flush_connection($c) if length $c->{wbuf} && vec($wout, fileno $c->{fh}, 1);
            next if $c->{dead};
            if (my $r = $c->{req}) {
                if ($r->{stdin} && vec($wout, fileno $r->{stdin}, 1)) {
                    write_stdin($r);
                    advance($c);
                }
                read_stdout($r) if $r->{stdout} && $c->{req} && $c->{req} == $r && vec($rout, fileno $r->{stdout}, 1);
            }
            next if $c->{dead};
            read_connection($c) if vec($rout, fileno $c->{fh}, 1);
        }
        if (defined $deadline && now() >= $deadline) {
            my $t = now();
            for my $c (grep { defined } @SLOTS) {
                my $r = $c->{req} or next;
                release_held($r) if defined $r->{flush_at} && $r->{flush_at} <= $t;
                next unless defined $r->{deadline} && $r->{deadline} <= $t;
                script_failed($r, 504, "CGI timeout !!! $r->{what} sent nothing and read nothing for $S{timeout} s: killed");
            }
        }
    }
}

# ------------------------------------------------------------------------------------------
# Start-up (§1, §2)
# ------------------------------------------------------------------------------------------

sub main {
    # Handlers, not IGNORE: an ignored signal stays ignored across exec, and scripts must get
    # the default SIGPIPE and SIGINT. A write to a closed pipe then fails with EPIPE.
    $SIG{PIPE} = sub { };
    $SIG{INT} = sub { };    # Ctrl-C signals the whole process group: the core decides how we stop

    my $listen_fd = $ENV{TSUWSGI_LISTEN_FD} || 3;
    my $control_fd = $ENV{TSUWSGI_CONTROL_FD} || 4;
    # The inherited descriptors come first: nothing of ours may take their numbers. Opening
    # one that is not open fails (EBADF).
    my $usage = 'this script is started by tsuwsgi (see docs/bridge-protocol.md)';
    open($CONTROL, '+<&=', $control_fd) or do { log_line("cannot use fd $control_fd as the control channel: $!; $usage"); exit 1 };
    open($LISTEN, '+<&=', $listen_fd) or do { log_line("cannot use fd $listen_fd as the pool socket: $!; $usage"); exit 1 };
    for my $fh ($CONTROL, $LISTEN) {
        binmode $fh;
        # Not for the scripts: they get fds 0-2 only.
        fcntl($fh, Fcntl::F_SETFD(), Fcntl::FD_CLOEXEC());
        set_nonblocking($fh);
    }

    my $config = eval { json_decode($ENV{TSUWSGI_BRIDGE_CONFIG} // '{}') };
    if (ref $config ne 'HASH') {
        log_line('TSUWSGI_BRIDGE_CONFIG is not valid JSON: ' . ($@ || 'not an object'));
        exit 1;
    }
    %CONFIG = %$config;
    %S = (
        mounts => [], helpers => [], fromDocroot => 0, bufferSize => 65536, timeout => 60, index => [],
        allowedExt => [], unset => [], safe => [], pathInfo => 0, doNotKillOnError => 0,
        %{ ref $CONFIG{plugin} eq 'HASH' ? $CONFIG{plugin} : {} },
    );
    $CORES = int($CONFIG{cores} || $CONFIG{threads} || 1);
    $CORES = 1 if $CORES < 1;
    $SERVER_SOFTWARE = 'uWSGI/' . ($CONFIG{version} // '2.0');
    $SERVER_CWD = Cwd::getcwd() // '/';
    # Scripts inherit our environment, except the bridge contract's variables.
    $FORKER_CHOICE = $ENV{TSUWSGI_CGI_FORKER};
    $ROUTE_TOKEN = $ENV{TSUWSGI_CGI_ROUTE_TOKEN};
    delete @ENV{ grep { /^TSUWSGI_/ } keys %ENV };
    start_forker();

    if (!listen($LISTEN, int($CONFIG{listenBacklog} || 100))) {
        log_line("listen() on the pool socket failed: $!");
        exit 1;
    }
    my $apps = join(',', map { '{"id":' . int($_->{id} // 0) . ',"mountpoint":' . json_string_literal($_->{mountpoint} // '') . '}' } @{ $CONFIG{apps} || [] });
    send_event('{"event":"ready","pid":' . $$ . ',"runtime":"CGI","runtimeVersion":' . json_string_literal(sprintf('perl %vd', $^V))
        . ',"bridgeApi":' . BRIDGE_API . ',"threads":' . $CORES . ',"apps":[' . $apps . ']}');
    run_loop();
}

main() unless caller;
