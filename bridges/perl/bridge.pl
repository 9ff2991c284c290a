#!/usr/bin/perl
# tsuwsgi's Perl bridge: hosts PSGI 1.1 apps and serves them over the uwsgi protocol.
#
# The core starts one such process per pool slot as `perl bridge.pl` with:
#     fd 3  the pool's unix stream socket (bound; we call listen() on it),
#     fd 4  the control channel (newline-delimited JSON, both ways),
#     TSUWSGI_BRIDGE_CONFIG  JSON describing the worker and the apps to load.
# The full contract is docs/bridge-protocol.md; section numbers below (§2, §3.1...) refer to
# it, and docs/psgi.md describes what PSGI apps see.
#
# Shape of the process: single-threaded (Perl ithreads clone the whole interpreter and most
# XS modules are not thread-safe, so a Perl worker serves one request at a time; the core
# never gives a psgi pool more than one thread per process). The main loop accepts a
# connection, serves it (one request, or many once the core sent the *hello* packet), then
# accepts again. The control channel is read from a SIGIO handler, so a stop or a stack dump
# request is obeyed even while the app is busy (Perl runs the handler between two ops).
#
# Core Perl modules only: any perl 5.10+ (system, perlbrew, plenv) can run it.
use 5.010;
use strict;
use warnings;

use Carp ();
use Cwd ();
use Errno ();
use Fcntl ();
use File::Basename ();
use JSON::PP ();
use POSIX ();
use Scalar::Util ();
use Socket ();

use constant {
    BRIDGE_API            => 1,
    UWSGI_FAILED_APP_CODE => 22,    # exit status when an app cannot be loaded (§2)
    HELLO_MODIFIER1       => 99,    # the hello packet (§3.1)
    # Responses up to this size go out in the same write as their headers; bigger bodies
    # are written separately so a large body is never copied just to prepend the headers.
    COALESCE_LIMIT => 65536,
    # Request bodies up to this size are read before the app runs and served from memory
    # (psgix.input.buffered, seekable); bigger ones are streamed from the socket.
    BUFFERED_BODY_LIMIT => 1048576,
    READ_SIZE           => 131072,
    IDLE_CHECK          => 1,    # seconds: how often an idle connection checks for a stop
    FILE_BLOCK          => 65536,
    # Framing of the response in progress (§3.1 "self-delimiting").
    MODE_NONE    => 0,    # no body may be sent (HEAD, 1xx, 204, 304): bytes are dropped
    MODE_RAW     => 1,    # bytes as the app gives them (connection close delimits, or the app framed it)
    MODE_LENGTH  => 2,    # exactly Content-Length bytes: extra dropped, missing -> close
    MODE_CHUNKED => 3,    # we added Transfer-Encoding: chunked
};

my $HERE = File::Basename::dirname(Cwd::abs_path(__FILE__));

# ------------------------------------------------------------------------------------------
# Process state
# ------------------------------------------------------------------------------------------

our %CONFIG;          # TSUWSGI_BRIDGE_CONFIG
our %PLUGIN;          # $CONFIG{plugin}
our $WORKER_ID = 1;
my $CONTROL;          # the control channel (fd 4)
my $LISTEN;           # the pool socket (fd 3)
my ($WAKE_R, $WAKE_W);    # self-pipe: the SIGIO handler wakes the accept loop's select()
our $STOPPING = 0;    # a graceful stop was asked: serve what was received, then exit
my $CATCH_EXCEPTIONS = 0;
my $DIE_CATCH = 1;
our $REQUESTS = 0;    # requests served by this process (uwsgi::request_id)

# The connection being served. One at a time, so these are plain globals.
my $SOCK;
my $RBUF = '';        # received, not yet consumed bytes
my $OUTBOX = '';      # complete responses held back while the next request is buffered
my $PERSISTENT = 0;

# The response being written.
my $R_PROTO;          # SERVER_PROTOCOL (or HTTP/1.0)
my $R_IS_HEAD;        # REQUEST_METHOD is HEAD
my $R_SENT;           # the status line and headers went out
my $R_MODE;
my $R_REMAIN;         # MODE_LENGTH: bytes still owed
my $R_DISCONNECTED;   # a write failed: the client (core) went away
my $R_DEFER;          # hold this response in $OUTBOX (the next request is already here)
my $STREAM_LEFT = 0;  # a streamed request body is not fully consumed (its bytes come first)

my (@APPS, %APPS_BY_MOUNT, $DEFAULT_APP, $SINGLE_APP);
my (@BASE_KEYS, @BASE_VALUES);

# ------------------------------------------------------------------------------------------
# Logging and exits
# ------------------------------------------------------------------------------------------

sub log_line {
    my $message = shift;
    $message = '' unless defined $message;
    utf8::encode($message) if utf8::is_utf8($message);    # text from the app: log it as UTF-8
    $message .= "\n" unless length($message) && substr($message, -1) eq "\n";
    # One write, so lines of parallel bridges do not interleave.
    syswrite(STDERR, $message);
}

sub hard_exit {
    my $status = shift;
    eval { STDOUT->flush; STDERR->flush };
    POSIX::_exit($status);
}

my @ATEXIT;
sub run_atexit {
    for my $hook (splice @ATEXIT) {
        eval { $hook->(); 1 } or log_line("perl bridge: uwsgi::atexit hook failed: " . error_text($@));
    }
}

sub error_text {
    my $err = shift;
    return 'unknown error' unless defined $err;
    my $text = "$err";
    $text =~ s/\s+\z//;
    return $text;
}

sub one_line {
    my $text = error_text(shift);
    $text =~ s/\s+/ /g;
    return $text;
}

# ------------------------------------------------------------------------------------------
# The control channel (§4)
# ------------------------------------------------------------------------------------------

my $JSON = JSON::PP->new->utf8->canonical;
my $CTRL_BUF = '';
our $IN_CONTROL = 0;

sub send_event {
    my $data = $JSON->encode(shift) . "\n";
    return 0 unless $CONTROL;
    # Blocking while we write (the control socket is otherwise non-blocking for the handler).
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($CONTROL, $data, length($data) - $off, $off);
        if (!defined $n) {
            if ($! == Errno::EINTR) { next }
            if ($! == Errno::EAGAIN || $! == Errno::EWOULDBLOCK) {
                my $w = '';
                vec($w, fileno($CONTROL), 1) = 1;
                select(undef, $w, undef, 1);
                next;
            }
            return 0;    # the core is gone; EOF on the read side ends us
        }
        $off += $n;
    }
    return 1;
}

# Read and obey whatever the core sent. Runs from the SIGIO handler and from the select()
# loops; never re-entered.
sub poll_control {
    return if $IN_CONTROL || !$CONTROL;
    local $IN_CONTROL = 1;
    local ($!, $@);
    while (1) {
        my $n = sysread($CONTROL, $CTRL_BUF, 65536, length $CTRL_BUF);
        if (!defined $n) {
            next if $! == Errno::EINTR;
            last if $! == Errno::EAGAIN || $! == Errno::EWOULDBLOCK;
            hard_exit(0);
        }
        hard_exit(0) if $n == 0;    # EOF: the core died (§1)
    }
    while ((my $nl = index($CTRL_BUF, "\n")) >= 0) {
        my $line = substr($CTRL_BUF, 0, $nl + 1, '');
        next unless $line =~ /\S/;
        my $cmd = eval { $JSON->decode($line) };
        if (ref $cmd ne 'HASH') {
            log_line('perl bridge: invalid control message ' . substr($line, 0, 200));
            next;
        }
        my $name = $cmd->{cmd} // '';
        if ($name eq 'stop') {
            hard_exit(0) unless $cmd->{graceful};
            start_graceful_stop();
        } elsif ($name eq 'stack') {
            dump_stack();
        } else {
            log_line("perl bridge: unknown control command '$name'");
        }
    }
}

sub start_graceful_stop {
    return if $STOPPING;
    $STOPPING = 1;
    # Wakes the select() of the accept loop or of an idle persistent connection.
    syswrite($WAKE_W, 'x') if $WAKE_W;
}

# The stack of what the process is doing right now: from a signal handler, caller() walks
# the frames of the interrupted code (the app's, when harakiri asks).
sub dump_stack {
    my @lines = ("*** perl bridge stack dump (pid $$, worker $WORKER_ID) ***");
    # caller(1): the SIGIO handler, called where the process was interrupted; caller(2): the
    # signal dispatch frame; then the stack of the interrupted code.
    my @here = caller(1);
    push @lines, "  now at $here[1] line $here[2]" if @here;
    my $i = 3;
    while (my @frame = caller($i++)) {
        push @lines, "  $frame[3] called at $frame[1] line $frame[2]";
    }
    push @lines, '*** end of the stack dump ***';
    log_line(join("\n", @lines));
}

sub setup_control {
    my $fd = shift;
    open($CONTROL, '+<&=', $fd) or return 0;
    binmode $CONTROL;
    my $flags = fcntl($CONTROL, Fcntl::F_GETFL(), 0) or return 0;
    fcntl($CONTROL, Fcntl::F_SETFL(), $flags | Fcntl::O_NONBLOCK());
    # SIGIO when the core writes: commands are obeyed even while an app runs. SA_RESTART, so
    # the app's socket and file I/O is not interrupted by it (sleep() and select() still
    # are: the kernel never restarts those); "safe": Perl runs the handler between two ops.
    my $action = POSIX::SigAction->new(\&poll_control, POSIX::SigSet->new, POSIX::SA_RESTART());
    $action->safe(1);
    require Config;
    my %signo;
    @signo{split ' ', $Config::Config{sig_name}} = split ' ', $Config::Config{sig_num};
    if (!$signo{IO} || !POSIX::sigaction($signo{IO}, $action)) {
        $SIG{IO} = \&poll_control;
    }
    if (defined eval { Fcntl::F_SETOWN() } && defined eval { Fcntl::O_ASYNC() }) {
        fcntl($CONTROL, Fcntl::F_SETOWN(), 0 + $$);    # a number: a string would be passed as a pointer
        fcntl($CONTROL, Fcntl::F_SETFL(), $flags | Fcntl::O_NONBLOCK() | Fcntl::O_ASYNC());
    }
    return 1;
}

# ------------------------------------------------------------------------------------------
# Receiving
# ------------------------------------------------------------------------------------------

# recv() more bytes after the unread ones; returns how many (0 at EOF or on error). For reads
# inside a request (vars, body): waits as long as it takes.
sub fill {
    while (1) {
        my $n = sysread($SOCK, $RBUF, READ_SIZE, length $RBUF);
        return $n if defined $n;
        # EAGAIN: the receive timeout (IDLE_CHECK) expired; EINTR: a signal (the SIGIO of the
        # control channel).
        next if $! == Errno::EINTR || $! == Errno::EAGAIN || $! == Errno::EWOULDBLOCK;
        return 0;
    }
}

# Wait for the next packet on a connection between requests. Connections have a receive
# timeout (SO_RCVTIMEO, IDLE_CHECK seconds), so a graceful stop is noticed within that time
# even if the core sends nothing more and the SIGIO came just before the read; no extra
# system call per request for it.
sub fill_idle {
    return 0 unless flush_outbox();
    my $n;
    while (1) {
        if ($STOPPING) {
            # Serve what the core already sent, do not wait for more: with the read side shut
            # down, the read returns the queued data, then EOF.
            shutdown($SOCK, 0);
            $n = fill();
            last;
        }
        $n = sysread($SOCK, $RBUF, READ_SIZE, length $RBUF);
        last if defined $n;
        next if $! == Errno::EINTR || $! == Errno::EAGAIN || $! == Errno::EWOULDBLOCK;
        $n = 0;
        last;
    }
    return $n;
}

# The next packet: (modifier1, the packet bytes, modifier2), or () at EOF.
sub read_packet {
    if (length($RBUF) < 4) {
        return () unless length($RBUF) ? fill() : fill_idle();
        while (length($RBUF) < 4) { return () unless fill() }
    }
    my ($m1, $size, $m2) = unpack('CvC', $RBUF);
    while (length($RBUF) < 4 + $size) { return () unless fill() }
    return ($m1, substr($RBUF, 0, 4 + $size, ''), $m2);
}

# True when the body of the current request is consumed and the next packet's header and
# vars are already buffered: the core pipelined it, so this response may wait for it.
sub next_packet_buffered {
    return 0 if length($RBUF) < 4;
    return length($RBUF) >= 4 + unpack('x v', $RBUF);
}

# ------------------------------------------------------------------------------------------
# psgi.input
# ------------------------------------------------------------------------------------------

# A body held in memory: read, seek, getline. [data, position]
package tsuwsgi::Input;

sub new { bless [$_[1], 0], $_[0] }

sub read {
    my $self = $_[0];
    my $len  = $_[2];
    my $off  = $_[3];
    my $avail = length($self->[0]) - $self->[1];
    $len = $avail if !defined $len || $len > $avail;
    $len = 0 if $len < 0;
    my $chunk = $len ? substr($self->[0], $self->[1], $len) : '';
    $self->[1] += $len;
    tsuwsgi::Input::_place($_[1], $chunk, $off);
    return $len;
}

# Perl's read() semantics for OFFSET: pad with NULs, or count from the end when negative;
# the scalar ends with the last byte read.
sub _place {
    my $off = $_[2];
    if (!$off) {
        $_[0] = $_[1];
        return;
    }
    $_[0] = '' unless defined $_[0];
    my $cur = length $_[0];
    if ($off < 0) {
        $off += $cur;
        $off = 0 if $off < 0;
    }
    $_[0] .= "\0" x ($off - $cur) if $off > $cur;
    substr($_[0], $off) = $_[1];
}

sub seek {
    my ($self, $pos, $whence) = @_;
    $whence ||= 0;
    $pos += $self->[1] if $whence == 1;
    $pos += length($self->[0]) if $whence == 2;
    return 0 if $pos < 0;
    $self->[1] = $pos;
    return 1;
}

sub tell { $_[0][1] }

sub getline {
    my $self = shift;
    my $data = \$self->[0];
    my $pos  = $self->[1];
    return undef if $pos >= length $$data;
    my $sep = $/;
    my $end;
    if (!defined $sep) {
        $end = length $$data;
    } elsif (ref $sep) {
        $end = $pos + $$sep;
    } else {
        $sep = "\n\n" if $sep eq '';
        my $i = index($$data, $sep, $pos);
        $end = $i < 0 ? length $$data : $i + length $sep;
    }
    $end = length $$data if $end > length $$data;
    $self->[1] = $end;
    return substr($$data, $pos, $end - $pos);
}

sub getlines {
    my $self = shift;
    my @lines;
    while (defined(my $line = $self->getline)) { push @lines, $line }
    return @lines;
}

sub close { 1 }

# A body streamed from the connection (bigger than BUFFERED_BODY_LIMIT): read only, forward
# only (psgix.input.buffered is false, so Plack::Request buffers it itself when it must
# seek). [bytes not yet received by the app, position]
package tsuwsgi::StreamInput;

sub new { bless [$_[1], 0], $_[0] }

sub read {
    my $self = $_[0];
    my $len  = $_[2];
    my $left = $self->[0];
    $len = $left if !defined $len || $len > $left;
    my $chunk = $len > 0 ? main::take_body($len) : '';
    $self->[0] -= length $chunk;
    $self->[1] += length $chunk;
    tsuwsgi::Input::_place($_[1], $chunk, $_[3]);
    die "client disconnected while sending the request body ($self->[0] bytes missing)\n"
        if $len > 0 && length($chunk) == 0;
    return length $chunk;
}

sub seek {
    my ($self, $pos, $whence) = @_;
    $whence ||= 0;
    $pos += $self->[1] if $whence == 1;
    # Only "where we are" is reachable: the bytes before went to the app already.
    return $pos == $self->[1] && $whence != 2 ? 1 : 0;
}

sub tell { $_[0][1] }

sub getline {
    my $self = shift;
    my $sep = $/;
    my $line = '';
    if (defined $sep && !ref $sep && $sep ne '') {
        # Scan the receive buffer for the separator, refilling it as needed.
        while ($self->[0] > 0) {
            if (!length $RBUF) {
                last unless main::fill();
            }
            my $avail = length($RBUF) < $self->[0] ? length($RBUF) : $self->[0];
            my $at = index($RBUF, $sep);
            my $take = $at >= 0 && $at + length($sep) <= $avail ? $at + length($sep) : $avail;
            $line .= substr($RBUF, 0, $take, '');
            $self->[0] -= $take;
            $self->[1] += $take;
            last if $take < $avail || substr($line, -length $sep) eq $sep;
        }
    } else {
        # Slurp ($/ undef) or record reads ($/ = \N): read() does it.
        my $want = ref $sep ? ${$sep} : $self->[0];
        $self->read($line, $want) if $want > 0;
    }
    return length $line ? $line : undef;
}

sub close { 1 }

# The end of a request: whatever the app did not read is consumed by the server.
sub finish {
    my $self = shift;
    my $left = $self->[0];
    $self->[0] = 0;
    return main::skip_body($left);
}

package main;

# Up to $len body bytes: from the receive buffer first, then from the socket.
sub take_body {
    my $len = shift;
    if (length($RBUF) == 0) {
        return '' unless fill();
    }
    return substr($RBUF, 0, $len, '');
}

# Consume $left body bytes nobody read. False if the connection broke.
sub skip_body {
    my $left = shift;
    while ($left > 0) {
        if (length($RBUF) == 0) {
            my $n = sysread($SOCK, $RBUF, $left < READ_SIZE ? $left : READ_SIZE);
            if (!defined $n) { next if $! == Errno::EINTR; return 0 }
            return 0 if $n == 0;
        }
        my $take = length($RBUF) < $left ? length($RBUF) : $left;
        substr($RBUF, 0, $take, '');
        $left -= $take;
    }
    return 1;
}

my $EMPTY_INPUT = tsuwsgi::Input->new('');

# ------------------------------------------------------------------------------------------
# Sending
# ------------------------------------------------------------------------------------------

package tsuwsgi::Disconnected;
sub new { bless { message => $_[1] }, $_[0] }
sub message { $_[0]{message} }
use overload '""' => sub { $_[0]{message} }, fallback => 1;

package main;

# A text string (utf8 flag on) as bytes, or a clear error if it has characters above 255:
# sockets carry bytes, and PSGI bodies and headers must be byte strings.
sub octets {
    my $copy = $_[0];
    utf8::downgrade($copy, 1)
        or die "the PSGI response contains characters above 255 (a text string): encode it to bytes (e.g. Encode::encode_utf8) before returning it\n";
    return $copy;
}

sub write_all {
    # $_[0] may be big: never copied.
    my $len = length $_[0];
    my $off = 0;
    while ($off < $len) {
        my $n = syswrite($SOCK, $_[0], $len - $off, $off);
        if (!defined $n) {
            next if $! == Errno::EINTR;
            $R_DISCONNECTED = 1;
            die tsuwsgi::Disconnected->new("client disconnected: $!");
        }
        $off += $n;
    }
}

sub send_data {
    if ($R_DEFER) {
        $OUTBOX .= $_[0];
        return;
    }
    if (length $OUTBOX) {
        # Held-back responses first, in the same write.
        $OUTBOX .= $_[0];
        my $data = $OUTBOX;
        $OUTBOX = '';
        write_all($data);
        return;
    }
    write_all($_[0]);
}

sub flush_outbox {
    return 1 unless length $OUTBOX;
    my $data = $OUTBOX;
    $OUTBOX = '';
    return eval { write_all($data); 1 } ? 1 : 0;
}

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
    510 => 'Not Extended', 511 => 'Network Authentication Required',
);

# Validate status and headers, decide the framing, return the head (ending with CRLFCRLF).
# $known: the body's exact size when the server knows it (array bodies, files).
sub make_head {
    my ($status, $headers, $known) = @_;
    my $reason = defined $status ? $REASON{$status} : undef;
    if (!defined $reason) {
        die "invalid PSGI response status " . (defined $status ? "'$status'" : 'undef')
            . " (expected a number from 100 to 999)\n"
            unless defined $status && $status =~ /\A[1-9][0-9][0-9]\z/;
        $reason = 'Unknown';
    }
    die "PSGI response headers must be an array reference\n" unless ref $headers eq 'ARRAY';
    my $count = @$headers;
    die "PSGI response headers must be name/value pairs (odd number of elements)\n" if $count % 2;
    my $head = "$R_PROTO $status $reason\r\n";
    my ($length, $app_framed);
    for (my $i = 0; $i < $count; $i += 2) {
        my ($name, $value) = ($headers->[$i], $headers->[$i + 1]);
        die "undefined PSGI response header name\n" unless defined $name;
        $value = '' unless defined $value;
        $head .= "$name: $value\r\n";
        my $size = length $name;
        if ($size == 14 && lc($name) eq 'content-length') {
            if ($value =~ /\A[0-9]+\z/) { $length = $value + 0 }
            elsif ($value =~ /\A\s*([0-9]+)\s*\z/) { $length = $1 + 0 }
            else { die "invalid Content-Length '$value'\n" }
        } elsif ($size == 17 && lc($name) eq 'transfer-encoding') {
            $app_framed = 1;
        }
    }
    # Each header line and the status line end with exactly one CRLF; any other CR or LF
    # would split the response (header injection).
    my $lines = $count / 2 + 1;
    die "CR or LF in the PSGI response status or headers\n"
        if ($head =~ tr/\n//) != $lines || ($head =~ tr/\r//) != $lines;

    $head = octets($head) if utf8::is_utf8($head);
    my $mode;
    if ($status < 200 || $status == 204 || $status == 304) {
        $mode = MODE_NONE;    # never a body, so no framing header either
    } elsif (defined $length) {
        $mode = MODE_LENGTH;
        $R_REMAIN = $length;
    } elsif ($app_framed) {
        $mode = MODE_RAW;     # the app set Transfer-Encoding itself: its framing
    } elsif (defined $known) {
        $head .= "Content-Length: $known\r\n";
        $mode = MODE_LENGTH;
        $R_REMAIN = $known;
    } elsif ($R_IS_HEAD) {
        $mode = MODE_NONE;
    } elsif ($PERSISTENT) {
        $head .= "Transfer-Encoding: chunked\r\n";
        $mode = MODE_CHUNKED;
    } else {
        $mode = MODE_RAW;     # plain uwsgi (nginx): closing the connection ends the body
    }
    $mode = MODE_NONE if $R_IS_HEAD;
    $R_MODE = $mode;
    return $head . "\r\n";
}

# Send the head (once) with the first body bytes. Only called with the head not yet sent.
sub commit {
    my ($head, $first) = @_;
    $first = octets($first) if defined $first && utf8::is_utf8($first);
    $R_SENT = 1;
    my $mode = $R_MODE;
    if (!defined $first || !length $first || $mode == MODE_NONE) {
        send_data($head);
    } elsif (length($first) > COALESCE_LIMIT) {
        send_data($head);
        send_body($first);
    } elsif ($mode == MODE_CHUNKED) {
        send_data($head . sprintf('%x', length $first) . "\r\n" . $first . "\r\n");
    } elsif ($mode == MODE_LENGTH) {
        if (length($first) > $R_REMAIN) {
            send_data($head . substr($first, 0, $R_REMAIN));
            $R_REMAIN = 0;
        } else {
            $R_REMAIN -= length $first;
            send_data($head . $first);
        }
    } else {
        send_data($head . $first);
    }
}

sub send_body {
    my $mode = $R_MODE;
    return unless $mode && length $_[0];
    return send_body(octets($_[0])) if utf8::is_utf8($_[0]);
    if ($mode == MODE_CHUNKED) {
        if (length($_[0]) > COALESCE_LIMIT) {
            send_data(sprintf("%x\r\n", length $_[0]));
            send_data($_[0]);
            send_data("\r\n");
        } else {
            send_data(sprintf('%x', length $_[0]) . "\r\n" . $_[0] . "\r\n");
        }
    } elsif ($mode == MODE_LENGTH) {
        my $remain = $R_REMAIN;
        return unless $remain;
        if (length($_[0]) > $remain) {
            send_data(substr($_[0], 0, $remain));
            $R_REMAIN = 0;
        } else {
            $R_REMAIN = $remain - length $_[0];
            send_data($_[0]);
        }
    } else {
        send_data($_[0]);
    }
}

# End the response. True when the connection can carry another request.
sub finish_response {
    my $mode = $R_MODE;
    if ($mode == MODE_CHUNKED) {
        send_data("0\r\n\r\n");
    } elsif ($mode == MODE_LENGTH && $R_REMAIN > 0) {
        log_line("response shorter than its Content-Length ($R_REMAIN bytes missing): closing the connection");
        return 0;
    }
    return 1;
}

sub send_error_response {
    my $body = shift;
    utf8::encode($body) if utf8::is_utf8($body);
    $R_DEFER = 0;
    $R_SENT = 1;
    my $head = "$R_PROTO 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: "
        . length($body) . "\r\n\r\n";
    send_data($R_IS_HEAD ? $head : $head . $body);
}

# sendfile(2) through syscall(), when this perl knows its number (h2ph's syscall.ph, shipped
# with Debian's perl; else the number for the architecture). Without it: read/write blocks.
my $SYS_SENDFILE = do {
    my $n = eval {
        local $SIG{__WARN__} = sub { };
        local $SIG{__DIE__};
        require 'syscall.ph';
        &SYS_sendfile();
    };
    if (!$n && $^O eq 'linux') {
        require Config;
        my $arch = $Config::Config{archname} // '';
        $n = $arch =~ /^x86_64/ ? 40 : $arch =~ /^(aarch64|riscv64)/ ? 71 : $arch =~ /^i[3-6]86/ ? 187 : undef;
    }
    $n;
};
my $CAN_PACK_Q = eval { my $probe = pack('q', 1); 1 };

# Send $count bytes of a regular file from $offset. Returns how many were sent.
sub send_file_range {
    my ($fh, $offset, $count) = @_;
    if ($R_MODE == MODE_CHUNKED) {
        # Never happens (files have a known length), but keep the framing right if it did.
        send_data(sprintf("%x\r\n", $count));
        my $sent = send_file_range_raw($fh, $offset, $count);
        send_data("\r\n");
        return $sent;
    }
    return send_file_range_raw($fh, $offset, $count);
}

sub send_file_range_raw {
    my ($fh, $offset, $count) = @_;
    return 0 unless flush_outbox_or_die();
    my $sent = 0;
    if ($SYS_SENDFILE && $CAN_PACK_Q) {
        my $out = 0 + fileno($SOCK);
        my $in  = 0 + fileno($fh);
        my $off = pack('q', $offset);
        while ($sent < $count) {
            my $want = $count - $sent;
            $want = 0x7ffff000 if $want > 0x7ffff000;
            my $n = syscall($SYS_SENDFILE, $out, $in, $off, 0 + $want);
            if ($n < 0) {
                next if $! == Errno::EINTR;
                if ($sent == 0 && ($! == Errno::EINVAL || $! == Errno::ENOSYS)) {
                    last;    # not for this pair of descriptors: copy below
                }
                $R_DISCONNECTED = 1;
                die tsuwsgi::Disconnected->new("client disconnected: $!");
            }
            return $sent if $n == 0;    # the file shrank under us
            $sent += $n;
        }
        return $sent if $sent == $count;
    }
    # Plain copy in big blocks.
    sysseek($fh, $offset + $sent, 0) or return $sent;
    while ($sent < $count) {
        my $want = $count - $sent;
        $want = FILE_BLOCK if $want > FILE_BLOCK;
        my $n = sysread($fh, my $block, $want);
        if (!defined $n) { next if $! == Errno::EINTR; die "error reading the response file: $!\n" }
        last if $n == 0;
        write_all($block);
        $sent += $n;
    }
    return $sent;
}

sub flush_outbox_or_die {
    return 1 unless length $OUTBOX;
    my $data = $OUTBOX;
    $OUTBOX = '';
    write_all($data);
    return 1;
}

# ------------------------------------------------------------------------------------------
# Response bodies (§6.4)
# ------------------------------------------------------------------------------------------

# [status, headers, body] from the app or from the responder.
sub send_array_response {
    my $res = shift;
    die "PSGI response must be an array reference [status, headers, body] or a code reference (got "
        . (defined $res ? (ref $res ? ref($res) . ' with ' . (ref $res eq 'ARRAY' ? scalar(@$res) . ' elements' : 'no elements') : "'$res'") : 'undef') . ")\n"
        unless ref $res eq 'ARRAY' && @$res == 3;
    my ($status, $headers, $body) = @$res;
    if (ref $body eq 'ARRAY') {
        if (@$body == 1) {
            # The hello-world fast path: headers + body + Content-Length in one write (held back
            # and batched with the next responses when the core pipelines).
            my $chunk = $body->[0];
            $chunk = '' unless defined $chunk;
            $chunk = octets($chunk) if utf8::is_utf8($chunk);
            my $head = make_head($status, $headers, length $chunk);
            if ($R_MODE == MODE_LENGTH && $R_REMAIN == length($chunk) && $R_REMAIN <= COALESCE_LIMIT) {
                $R_SENT = 1;
                $R_REMAIN = 0;
                if ($PERSISTENT && !$STREAM_LEFT && length($RBUF) >= 4
                    && length($RBUF) >= 4 + unpack('x v', $RBUF)) {
                    $OUTBOX .= $head . $chunk;    # the next request is here: one write later
                } elsif (length $OUTBOX) {
                    my $data = $OUTBOX . $head . $chunk;
                    $OUTBOX = '';
                    write_all($data);
                } else {
                    write_all($head . $chunk);
                }
                return 1;
            }
            $R_DEFER = next_packet_buffered() if $PERSISTENT && !$STREAM_LEFT && length($chunk) <= COALESCE_LIMIT;
            commit($head, $chunk);
            return finish_response();
        }
        my $total = 0;
        if (grep { defined && utf8::is_utf8($_) } @$body) {
            $body = [map { defined && utf8::is_utf8($_) ? octets($_) : $_ } @$body];
        }
        for (@$body) { $total += length if defined }
        my $head = make_head($status, $headers, $total);
        if ($total <= COALESCE_LIMIT) {
            $R_DEFER = next_packet_buffered() if $PERSISTENT && !$STREAM_LEFT;
            commit($head, join('', grep { defined } @$body));
        } else {
            commit($head, '');
            for (@$body) { send_body($_) if defined }
        }
        return finish_response();
    }
    return send_handle_response($status, $headers, $body);
}

# The regular file behind a body, as (handle, offset, size) when it can be sent with
# sendfile(): a glob or IO object with a real descriptor, no translating PerlIO layer.
sub real_file {
    my $body = shift;
    my $reftype = Scalar::Util::reftype($body) // '';
    my $fh;
    if ($reftype eq 'GLOB' || $reftype eq 'IO') {
        $fh = $body;
    } elsif (Scalar::Util::blessed($body) && $body->can('path')) {
        my $path = eval { $body->path };
        return () unless defined $path && !ref $path;
        open($fh, '<:raw', $path) or return ();
        return ($fh, 0, -s $fh, 1) if -f $fh;
        return ();
    } else {
        return ();
    }
    my $fd = eval { fileno($fh) };
    return () unless defined $fd && $fd >= 0;
    my @layers = eval { PerlIO::get_layers($fh) };
    for (@layers) { return () unless /\A(unix|perlio|stdio|raw|mmap|scalar)\z/ }
    return () unless -f $fh;
    my $pos = tell($fh);
    $pos = 0 if $pos < 0;
    my $size = (-s _) - $pos;
    $size = 0 if $size < 0;
    return ($fh, $pos, $size, 0);
}

sub close_body {
    my $body = shift;
    my $reftype = Scalar::Util::reftype($body) // '';
    if (Scalar::Util::blessed($body)) {
        $body->close if $body->can('close');
    } elsif ($reftype eq 'GLOB') {
        close($body);
    }
}

sub send_handle_response {
    my ($status, $headers, $body) = @_;
    die "PSGI response body must be an array reference or an IO::Handle-like object (got "
        . (defined $body ? (ref $body || "'$body'") : 'undef') . ")\n"
        unless ref $body && (Scalar::Util::blessed($body) || Scalar::Util::reftype($body) eq 'GLOB');
    my $ok = eval {
        my ($fh, $offset, $size, $opened) = real_file($body);
        if ($fh) {
            my $head = make_head($status, $headers, $size);
            commit($head, '');
            if ($R_MODE != MODE_NONE && $size > 0) {
                my $count = $R_MODE == MODE_LENGTH && $R_REMAIN < $size ? $R_REMAIN : $size;
                my $sent = send_file_range($fh, $offset, $count);
                $R_REMAIN -= $sent if $R_MODE == MODE_LENGTH;
            }
            close($fh) if $opened;
        } else {
            my $head = make_head($status, $headers, undef);
            if ($R_MODE == MODE_NONE) {
                commit($head, '');    # HEAD/204/304: not read, but closed below
            } else {
                my $is_glob = !Scalar::Util::blessed($body);
                local $/ = \FILE_BLOCK;    # PSGI lets servers read handles in blocks
                my $sent_head = 0;
                while (1) {
                    my $chunk = $is_glob ? readline($body) : $body->getline;
                    last unless defined $chunk;
                    next unless length $chunk;
                    if ($sent_head) { send_body($chunk) }
                    else { commit($head, $chunk); $sent_head = 1 }
                }
                commit($head, '') unless $sent_head;
            }
        }
        1;
    };
    my $err = $@;
    my $closed = eval { close_body($body); 1 };
    my $close_err = $@;
    die $err unless $ok;
    die $close_err unless $closed;
    return finish_response();
}

# The streaming writer a delayed response gets from $responder->([$status, $headers]).
package tsuwsgi::Writer;

sub new {
    my ($class, $head) = @_;
    return bless { head => $head, closed => 0 }, $class;
}

sub write {
    my ($self, $chunk) = @_;
    Carp::croak('write() on a closed PSGI writer') if $self->{closed};
    return 1 unless defined $chunk && length $chunk;
    if (defined $self->{head}) {
        my $head = delete $self->{head};
        main::commit($head, $chunk);
    } else {
        main::send_body($chunk);
    }
    return 1;
}

sub close {
    my $self = shift;
    return if $self->{closed};
    $self->{closed} = 1;
    main::commit(delete $self->{head}, '') if defined $self->{head};
    return 1;
}

package main;

# The app returned a code reference: call it with a responder (PSGI delayed response).
sub run_delayed {
    my $code = shift;
    my ($answered, $writer, $keep);
    my $responder = sub {
        my $res = shift;
        Carp::croak('the PSGI responder was called twice') if $answered;
        $answered = 1;
        if (ref $res eq 'ARRAY' && @$res == 2) {
            my $head = make_head($res->[0], $res->[1], undef);
            return $writer = tsuwsgi::Writer->new($head);
        }
        $keep = send_array_response($res);
        return;
    };
    $code->($responder);
    die "the PSGI application's delayed response never called the responder\n" unless $answered;
    if ($writer) {
        # A blocking server cannot wait for a writer kept for later: the response ends when
        # the application returns.
        $writer->close unless $writer->{closed};
        $writer->{closed} = 1;
        return finish_response();
    }
    return $keep;
}

# ------------------------------------------------------------------------------------------
# Requests
# ------------------------------------------------------------------------------------------

my $LOGGER = sub {
    my $args = shift;
    Carp::croak('psgix.logger needs {level => ..., message => ...}')
        unless ref $args eq 'HASH' && defined $args->{level} && defined $args->{message};
    log_line("[$args->{level}] $args->{message}");
};
my $ERRORS = \*STDERR;
my %MTIMES;
my $AUTO_RELOAD = 0;
my $NEXT_SCAN = 0;
my %AUTO_RELOAD_IGNORE;
my $RELOAD_ASKED = 0;
my $LAST_TRACE;

sub url_scheme {
    my $env = shift;
    my $scheme = $env->{UWSGI_SCHEME};
    return $scheme if defined $scheme && length $scheme;
    my $https = $env->{HTTPS};
    return 'https' if defined $https && ($https =~ /\Aon\z/i || substr($https, 0, 1) eq '1');
    return 'http';
}

sub select_app {
    my $env = shift;
    my $id = $env->{UWSGI_APPID};
    return $APPS_BY_MOUNT{$id} if defined $id && exists $APPS_BY_MOUNT{$id};
    my $sn = $env->{SCRIPT_NAME};
    return $APPS_BY_MOUNT{$sn} if defined $sn && exists $APPS_BY_MOUNT{$sn};
    return $DEFAULT_APP;
}

# One request packet: build the env, run the app, send its response. True if the connection
# can carry the next request.
sub handle_request {
    my $packet = $_[0];
    my %env;
    # A list assignment in scalar context counts the right-hand side: the number of strings
    # unpacked, without copying them into an array first.
    my $count = (%env = unpack('x4 (v/a v/a)*', $packet));
    if ($count % 2) {
        log_line('invalid uwsgi packet (malformed vars block): closing the connection');
        return 0;
    }
    if (2 * keys(%env) != $count) {
        # Repeated vars (nginx passes repeated headers as they came): joined with ", ".
        my @pairs = unpack('x4 (v/a v/a)*', $packet);
        %env = ();
        for (my $i = 0; $i < @pairs; $i += 2) {
            my $k = $pairs[$i];
            $env{$k} = exists $env{$k} ? "$env{$k}, $pairs[$i + 1]" : $pairs[$i + 1];
        }
    }
    my $length = $env{CONTENT_LENGTH};
    if (defined $length && length $length) {
        if ($length !~ /\A[0-9]+\z/) {
            log_line("invalid CONTENT_LENGTH '$length': closing the connection");
            return 0;
        }
        $length += 0;
    } else {
        $length = 0;
    }
    @env{@BASE_KEYS} = @BASE_VALUES;
    # PSGI: the body's length and type are CONTENT_LENGTH/CONTENT_TYPE only.
    delete @env{qw(HTTP_CONTENT_LENGTH HTTP_CONTENT_TYPE)};
    $env{SCRIPT_NAME} = '' unless defined $env{SCRIPT_NAME};
    $env{PATH_INFO} = '' unless defined $env{PATH_INFO};
    $env{QUERY_STRING} = '' unless defined $env{QUERY_STRING};
    $env{'psgi.url_scheme'} = exists $env{UWSGI_SCHEME} || exists $env{HTTPS} ? url_scheme(\%env) : 'http';
    my $cleanup = $env{'psgix.cleanup.handlers'} = [];

    my $input;
    if ($length == 0) {
        $EMPTY_INPUT->[1] = 0;
        $EMPTY_INPUT->[0] = '';
        $env{'psgi.input'} = $EMPTY_INPUT;
        $env{'psgix.input.buffered'} = 1;
    } elsif ($length <= BUFFERED_BODY_LIMIT) {
        while (length($RBUF) < $length) {
            if (!fill()) {
                log_line("client disconnected while sending the request body ("
                    . ($length - length $RBUF) . " bytes missing), during $env{REQUEST_METHOD} "
                    . ($env{REQUEST_URI} // $env{PATH_INFO}));
                return 0;
            }
        }
        $env{'psgi.input'} = tsuwsgi::Input->new(substr($RBUF, 0, $length, ''));
        $env{'psgix.input.buffered'} = 1;
    } else {
        $input = tsuwsgi::StreamInput->new($length);
        $env{'psgi.input'} = $input;
        $env{'psgix.input.buffered'} = 0;
    }

    $R_PROTO = $env{SERVER_PROTOCOL} || 'HTTP/1.0';
    $R_IS_HEAD = ($env{REQUEST_METHOD} // '') eq 'HEAD';
    $STREAM_LEFT = $input ? 1 : 0;
    $R_SENT = 0;
    $R_MODE = MODE_NONE;
    $R_DISCONNECTED = 0;
    $R_DEFER = 0;
    $R_REMAIN = 0;

    # Routing's chdir:DIR (docs/bridge-protocol.md 3.2.1): the app runs there from now on.
    if (defined $env{UWSGI_CHDIR} && $env{UWSGI_CHDIR} ne '') {
        chdir($env{UWSGI_CHDIR}) or log_line("chdir($env{UWSGI_CHDIR}) asked by the routing rule failed: $!");
    }
    my $app = $SINGLE_APP || select_app(\%env);
    my $keep;
    undef $LAST_TRACE;
    my $ok = eval {
        my $res = $app->(\%env);
        $keep = ref $res eq 'CODE' ? run_delayed($res) : send_array_response($res);
        1;
    };
    $keep = app_failed(\%env, $@) unless $ok;
    $REQUESTS++;
    $STREAM_LEFT = 0;
    if ($input && $input->[0] > 0) {
        # The app left part of the body unread: consume it, or the next packet would be read
        # from the middle of this body.
        $keep = 0 unless $input->finish;
    }
    {
        no warnings qw(numeric uninitialized);
        after_request(\%env) if @$cleanup || $AUTO_RELOAD || $env{'psgix.harakiri.commit'}
            || $env{'psgix.cleanup.handlers'} != $cleanup;    # the app replaced the array
    }
    return $keep;
}

sub after_request {
    my $env = shift;
    my $handlers = $env->{'psgix.cleanup.handlers'};
    if (ref $handlers eq 'ARRAY' && @$handlers) {
        # The response goes out first: cleanup handlers run after it (PSGI's psgix.cleanup).
        flush_outbox();
        for my $handler (@$handlers) {
            eval { $handler->($env); 1 } or log_line('psgix.cleanup handler failed: ' . error_text($@));
        }
    }
    if ($env->{'psgix.harakiri.commit'}) {
        log_line("psgix.harakiri.commit set by the app: worker $WORKER_ID (pid: $$) exits after this request");
        start_graceful_stop();
    }
    if ($AUTO_RELOAD && !$RELOAD_ASKED && time() >= $NEXT_SCAN) {
        $NEXT_SCAN = time() + $AUTO_RELOAD;
        if (my $changed = changed_module()) {
            $RELOAD_ASKED = 1;
            log_line("[perl-auto-reload] $changed has been modified !!! reloading");
            send_event({ event => 'reload' });
        }
    }
}

# The app (or sending its response) died. True if the connection is still usable.
sub app_failed {
    my ($env, $err) = @_;
    if ($R_DISCONNECTED || (Scalar::Util::blessed($err) && $err->isa('tsuwsgi::Disconnected'))) {
        log_line(error_text($err) . ", during $env->{REQUEST_METHOD} "
            . ($env->{REQUEST_URI} // $env->{PATH_INFO}) . " ($env->{REMOTE_ADDR})");
        return 0;
    }
    my $text = error_text($err);
    if (defined $LAST_TRACE && $LAST_TRACE->[0] eq $text) {
        $text = $LAST_TRACE->[1];
        $text =~ s/\s+\z//;
    }
    log_line("[uwsgi-perl error] $env->{REQUEST_METHOD} " . ($env->{REQUEST_URI} // $env->{PATH_INFO}) . ": $text");
    return 0 if $R_SENT;    # truncated: closing the connection tells the core so (§3.3)
    my $ok = eval { send_error_response($CATCH_EXCEPTIONS ? "$text\n" : 'Internal Server Error'); 1 };
    return 0 unless $ok;
    return 1;
}

# --perl-auto-reload: the first file in %INC whose mtime changed, if any.
sub changed_module {
    for my $key (keys %INC) {
        my $file = $INC{$key};
        next unless defined $file && !ref $file;
        next if $AUTO_RELOAD_IGNORE{$file} || $AUTO_RELOAD_IGNORE{$key};
        my $mtime = (stat $file)[9];
        next unless defined $mtime;
        if (!exists $MTIMES{$file}) { $MTIMES{$file} = $mtime; next }
        return $file if $MTIMES{$file} != $mtime;
    }
    return undef;
}

# ------------------------------------------------------------------------------------------
# Connections
# ------------------------------------------------------------------------------------------

sub answer_hello {
    my $vars = pack('(v/a v/a)*', pid => 0 + $$, worker_id => $WORKER_ID, core => 0, bridge_api => BRIDGE_API);
    my $packet = pack('CvC', HELLO_MODIFIER1, length $vars, 1) . $vars;
    return eval { write_all($packet); 1 } ? 1 : 0;
}

sub serve_connection {
    $RBUF = '';
    $OUTBOX = '';
    $PERSISTENT = 0;
    my ($m1, $packet, $m2) = read_packet();
    return unless defined $m1;
    if ($m1 == HELLO_MODIFIER1 && $m2 == 0) {
        return unless answer_hello();
        $PERSISTENT = 1;
        ($m1, $packet, $m2) = read_packet();
    }
    while (defined $m1) {
        if ($m1 == HELLO_MODIFIER1 && $m2 == 0) {
            # A repeated hello: answer it again (after any held-back responses).
            return unless flush_outbox() && answer_hello();
        } elsif (!handle_request($packet) || !$PERSISTENT) {
            flush_outbox();
            return;
        }
        if (length($OUTBOX) && !next_packet_buffered()) {
            return unless flush_outbox();
        }
        ($m1, $packet, $m2) = read_packet();
    }
}

sub accept_loop {
    my $flags = fcntl($LISTEN, Fcntl::F_GETFL(), 0);
    fcntl($LISTEN, Fcntl::F_SETFL(), $flags | Fcntl::O_NONBLOCK());
    my $rin = '';
    vec($rin, fileno($LISTEN), 1) = 1;
    vec($rin, fileno($WAKE_R), 1) = 1;
    vec($rin, fileno($CONTROL), 1) = 1;
    while (!$STOPPING) {
        my $client;
        if (!accept($client, $LISTEN)) {
            my $err = $!;
            if ($err == Errno::EAGAIN || $err == Errno::EWOULDBLOCK || $err == Errno::EINTR
                || $err == Errno::ECONNABORTED) {
                my $r = $rin;
                select($r, undef, undef, undef);
                poll_control() if vec($r, fileno($CONTROL), 1);
                next;
            }
            if ($err == Errno::EMFILE || $err == Errno::ENFILE || $err == Errno::ENOBUFS || $err == Errno::ENOMEM) {
                log_line("accept(): $err");
                select(undef, undef, undef, 0.1);
                next;
            }
            log_line("perl bridge: accept() failed: $err");
            hard_exit(1);
        }
            if ($STOPPING) {
            close($client);    # too late: the core stopped sending us work
            last;
        }
        binmode $client;
        setsockopt($client, Socket::SOL_SOCKET(), Socket::SO_RCVTIMEO(), pack('l!l!', IDLE_CHECK, 0));
        $SOCK = $client;
        serve_connection();
        $SOCK = undef;
        $RBUF = '';
        $OUTBOX = '';
        close($client);
    }
    run_atexit();
    hard_exit(0);
}

# ------------------------------------------------------------------------------------------
# Loading (§2)
# ------------------------------------------------------------------------------------------

# uWSGI's loaders: Plack::Util::load_psgi when Plack is installed (and --perl-no-plack is not
# given), else `do FILE` in a sandbox package, as Plack does it.
sub load_psgi_file {
    my $file = shift;
    my $use_plack = !$PLUGIN{noPlack} && eval { require Plack::Util; 1 };
    my $app;
    if ($use_plack) {
        $app = Plack::Util::load_psgi($file);
    } else {
        die "$file: no such file\n" unless -e $file;
        $app = sandbox_do($file);
    }
    return $app;
}

sub sandbox_do {
    my $_file = shift;
    (my $package = $_file) =~ s/([^A-Za-z0-9_])/sprintf("_%2x", unpack("C", $1))/eg;
    local $0 = $_file;
    my $app = eval sprintf(<<'END_EVAL', $package);
package uwsgi::sandbox::%s;
{
    my $app = do $_file;
    if (!$app && (my $error = $@ || $!)) { die $error; }
    $app;
}
END_EVAL
    die $@ if $@;
    return $app;
}

sub run_file {
    my ($file, $what) = @_;
    my $result = do $file;
    die "$what $file: $@" if $@;
    die "$what $file: $!\n" if !defined $result && $!;
}

sub load_apps {
    my @specs = @{ $CONFIG{apps} || [] };
    die { app => 0, message => 'no app to load (the configuration lists none)' } unless @specs;
    for my $spec (@specs) {
        my $id = $spec->{id} // scalar @APPS;
        my $load = $spec->{load} || {};
        my $target = $load->{target} // '';
        my $app = eval {
            die "unknown app kind '" . ($load->{kind} // '') . "' (the psgi plugin loads \"psgi\")\n"
                unless ($load->{kind} // '') eq 'psgi';
            load_psgi_file($target);
        };
        if (my $err = $@) {
            die { app => $id, message => "unable to load PSGI app $target: " . one_line($err), details => error_text($err) };
        }
        if (ref $app ne 'CODE') {
            # Objects with overloaded &{} (some frameworks' apps) are code too.
            my $callable = Scalar::Util::blessed($app) && overload::Method($app, '&{}');
            die { app => $id, message => "unable to find PSGI function entry point in $target: "
                    . 'the file must return a code reference (it returned '
                    . (defined $app ? (ref $app || "'$app'") : 'undef') . ')' }
                unless $callable;
        }
        my $mountpoint = $spec->{mountpoint} // '';
        if (exists $APPS_BY_MOUNT{$mountpoint}) {
            log_line("perl bridge: mountpoint '$mountpoint' is already taken, app ignored");
            next;
        }
        push @APPS, { id => $id, mountpoint => $mountpoint, app => $app };
        $APPS_BY_MOUNT{$mountpoint} = $app;
    }
    $DEFAULT_APP = exists $APPS_BY_MOUNT{''} ? $APPS_BY_MOUNT{''} : $APPS[0]{app};
    $SINGLE_APP = @APPS == 1 ? $DEFAULT_APP : undef;
}

sub setup_perl {
    # --perl-local-lib: local::lib when installed, else its @INC entries (lib/perl5 + arch).
    if (defined(my $ll = $PLUGIN{localLib})) {
        if (eval { require local::lib; 1 }) {
            local::lib->import($ll);
        } else {
            require lib;
            lib->import("$ll/lib/perl5");
        }
    }
    @ARGV = @{ $PLUGIN{args} || [] };
    if ($DIE_CATCH) {
        # uWSGI's default: keep the stack trace of every die, so an exception that reaches the
        # server is logged with where it came from. --perl-no-die-catch leaves $SIG{__DIE__}
        # to the app.
        $SIG{__DIE__} = sub {
            my $text = error_text($_[0]);
            $LAST_TRACE = [$text, $text . stack_trace()];
        };
    }
}

# The frames from the die up to the bridge's call of the app, one per line.
sub stack_trace {
    my @lines;
    my $i = 2;    # 0: this sub, called by 1: the __DIE__ handler, called where the die was
    while (my @frame = caller($i++)) {
        last if $frame[1] eq __FILE__ && $frame[3] eq '(eval)';
        next if $frame[1] eq __FILE__;    # the bridge's own frames say nothing about the app
        my $sub = $frame[3];
        push @lines, "\t$sub called at $frame[1] line $frame[2]";
    }
    return @lines ? "\n" . join("\n", @lines) : '';
}

sub base_env {
    my $processes = int($CONFIG{processes} || 1);
    return (
        'psgi.version'         => [1, 1],
        'psgi.errors'          => $ERRORS,
        # 0/1 as uWSGI sets them (spec/languages.md PL3: "psgi.nonblocking=0").
        'psgi.multithread'     => 0,
        'psgi.multiprocess'    => $processes > 1 ? 1 : 0,
        'psgi.run_once'        => 0,
        'psgi.nonblocking'     => 0,
        'psgi.streaming'       => 1,
        'psgix.logger'         => $LOGGER,
        'psgix.cleanup'        => 1,
        'psgix.harakiri'       => 1,
    );
}

sub main {
    $SIG{PIPE} = 'IGNORE';
    # Ctrl-C in a terminal signals the whole process group: the core decides how we stop.
    $SIG{INT} = 'IGNORE';
    STDOUT->autoflush(1);
    STDERR->autoflush(1);

    my $listen_fd  = $ENV{TSUWSGI_LISTEN_FD}  || 3;
    my $control_fd = $ENV{TSUWSGI_CONTROL_FD} || 4;
    # Check the inherited descriptors before we open anything: a missing fd 4 would otherwise
    # be reused by our own pipe and we would wait on ourselves instead of on the core.
    for ([$listen_fd, 'pool socket'], [$control_fd, 'control channel']) {
        my ($fd, $what) = @$_;
        my @stat = POSIX::fstat($fd);
        unless (@stat) {
            log_line("perl bridge: fd $fd (the $what) is not open; this script is started by tsuwsgi (see docs/bridge-protocol.md)");
            hard_exit(1);
        }
    }
    setup_control($control_fd) or do {
        log_line("perl bridge: cannot use fd $control_fd as the control channel: $!");
        hard_exit(1);
    };
    pipe($WAKE_R, $WAKE_W) or die "pipe: $!";
    my $wflags = fcntl($WAKE_W, Fcntl::F_GETFL(), 0);
    fcntl($WAKE_W, Fcntl::F_SETFL(), $wflags | Fcntl::O_NONBLOCK());
    # Commands sent before O_ASYNC was set raised no signal.
    poll_control();

    my $config = eval { JSON::PP->new->decode($ENV{TSUWSGI_BRIDGE_CONFIG} || '{}') };
    if (ref $config ne 'HASH') {
        log_line('perl bridge: TSUWSGI_BRIDGE_CONFIG is not valid JSON: ' . one_line($@));
        hard_exit(1);
    }
    %CONFIG = %$config;
    %PLUGIN = %{ $CONFIG{plugin} || {} };
    $WORKER_ID = int($CONFIG{workerId} || 1);
    $CATCH_EXCEPTIONS = $PLUGIN{catchExceptions} ? 1 : 0;
    $DIE_CATCH = $PLUGIN{noDieCatch} ? 0 : 1;
    $AUTO_RELOAD = int($PLUGIN{autoReload} || 0);
    %AUTO_RELOAD_IGNORE = map { ($_ => 1, Cwd::abs_path($_) // $_ => 1) } @{ $PLUGIN{autoReloadIgnore} || [] };

    require "$HERE/uwsgi.pm";
    $INC{'uwsgi.pm'} = "$HERE/uwsgi.pm";    # `use uwsgi;` in an app finds the loaded API
    uwsgi::_setup(\%CONFIG, \&send_event, \@ATEXIT);

    my $loaded = eval {
        setup_perl();
        for my $file (@{ $PLUGIN{exec} || [] }) {
            eval { run_file($file, '--perl-exec'); 1 }
                or die { app => 0, message => 'unable to run ' . one_line($@), details => error_text($@) };
        }
        load_apps();
        for my $file (@{ $PLUGIN{execPostFork} || [] }) {
            eval { run_file($file, '--perl-exec-post-fork'); 1 }
                or die { app => 0, message => 'unable to run ' . one_line($@), details => error_text($@) };
        }
        1;
    };
    if (!$loaded) {
        my $err = $@;
        $err = { app => 0, message => one_line($err), details => error_text($err) } unless ref $err eq 'HASH';
        my $details = $err->{details} // $err->{message};
        log_line($details) if $details ne $err->{message};
        log_line($err->{message});
        send_event({ event => 'load-failed', app => $err->{app} + 0, message => $err->{message}, details => $details });
        hard_exit(UWSGI_FAILED_APP_CODE);
    }
    if ($AUTO_RELOAD) {
        changed_module();    # the baseline mtimes
        $NEXT_SCAN = time() + $AUTO_RELOAD;
    }
    uwsgi::_run_postfork();

    my %base = base_env();
    @BASE_KEYS = keys %base;
    @BASE_VALUES = @base{@BASE_KEYS};

    open($LISTEN, '+<&=', $listen_fd) or do {
        log_line("perl bridge: cannot use fd $listen_fd as the pool socket: $!");
        hard_exit(1);
    };
    listen($LISTEN, int($CONFIG{listenBacklog} || 100)) or do {
        log_line("perl bridge: listen() on the pool socket failed: $!");
        hard_exit(1);
    };
    send_event({
        event          => 'ready',
        pid            => $$ + 0,
        runtime        => 'Perl',
        runtimeVersion => sprintf('%vd', $^V),
        bridgeApi      => BRIDGE_API,
        threads        => 1,
        apps           => [map { { id => $_->{id} + 0, mountpoint => $_->{mountpoint} } } @APPS],
    });
    accept_loop();
}

# For benchmarks of the request path (a connection, one app, the base env).
sub _bench_setup {
    my ($sock, $app, $base) = @_;
    $SOCK = $sock;
    $SINGLE_APP = $DEFAULT_APP = $app;
    @BASE_KEYS = keys %$base;
    @BASE_VALUES = @$base{@BASE_KEYS};
}

main() unless caller;    # `require` it (benchmarks, tests of single functions) without starting
