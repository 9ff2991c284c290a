# The uwsgi:: Perl API of tsuwsgi's Perl bridge (docs/psgi.md, "The uwsgi:: API").
#
# uWSGI's psgi plugin defines these functions in C inside the embedded interpreter, so apps
# call them without `use uwsgi;`. The bridge loads this file before any app, and registers it
# as uwsgi.pm in %INC so that a `use uwsgi;` in an app is harmless.
#
# Only what the tsuwsgi core offers so far is here; functions over core services that do not
# exist yet (cache, RPC, signals, spooler, locks, websockets) are absent rather than stubbed,
# so `defined &uwsgi::cache_get` tells an app the truth.
package uwsgi;

use strict;
use warnings;

my %CONFIG;
my $SEND_EVENT;
my $ATEXIT;
my @POSTFORK;
my $VERSION_STRING = '';

# %uwsgi::opt: the options, as uWSGI's psgi plugin exposes them (single values as strings,
# repeated options as array references, flags as 1).
our %opt;

sub _setup {
    my ($config, $send_event, $atexit) = @_;
    %CONFIG = %$config;
    $SEND_EVENT = $send_event;
    $ATEXIT = $atexit;
    $VERSION_STRING = defined $CONFIG{version} ? "$CONFIG{version}" : '';
    %opt = ();
    my $options = $CONFIG{options} || {};
    for my $key (keys %$options) {
        my $value = $options->{$key};
        if (ref $value eq 'ARRAY') {
            $opt{$key} = [map { "$_" } @$value];
        } elsif (ref $value) {    # JSON true: a flag
            $opt{$key} = $value ? 1 : 0;
        } else {
            $opt{$key} = $value;
        }
    }
}

sub _run_postfork {
    for my $hook (@POSTFORK) {
        eval { $hook->(); 1 } or main::log_line('perl bridge: uwsgi::postfork hook failed: ' . main::error_text($@));
    }
}

# uwsgi::VERSION: the uWSGI version tsuwsgi is compatible with ("2.0.28-tsuwsgi-0.1.0").
sub VERSION () { $VERSION_STRING }

sub version { $VERSION_STRING }

sub opt { \%opt }

sub worker_id { int($CONFIG{workerId} || 1) }

sub masterpid { int($CONFIG{masterPid} || 0) }

sub numproc { int($CONFIG{processes} || 1) }

sub hostname { defined $CONFIG{hostname} ? "$CONFIG{hostname}" : '' }

sub started_on { int($CONFIG{startedOn} || 0) }

sub is_a_reload { $CONFIG{isReload} ? 1 : 0 }

sub buffer_size { int($CONFIG{bufferSize} || 4096) }

# The number of requests this worker has handled so far (the one in progress excluded).
sub request_id { $main::REQUESTS + 1 }

sub total_requests { $main::REQUESTS }

# One line in the server log.
sub log {
    my $message = join('', map { defined $_ ? $_ : '' } @_);
    main::log_line($message);
    return 1;
}

# Ask the server for a graceful reload of the app workers (like SIGHUP).
sub reload {
    return $SEND_EVENT->({ event => 'reload' }) ? 1 : 0;
}

# Ask the server to stop gracefully.
sub stop {
    return $SEND_EVENT->({ event => 'stop' }) ? 1 : 0;
}

# uwsgi::postfork(sub { ... }): run once the apps are loaded, before the first request
# (every tsuwsgi worker loads its own apps, so this is "after fork" in uWSGI's terms).
sub postfork {
    my $code = shift;
    die "uwsgi::postfork needs a code reference\n" unless ref $code eq 'CODE';
    push @POSTFORK, $code;
    return 1;
}

# uwsgi::atexit(sub { ... }): run when the worker stops gracefully.
sub atexit {
    my $code = shift;
    die "uwsgi::atexit needs a code reference\n" unless ref $code eq 'CODE';
    push @$ATEXIT, $code;
    return 1;
}

1;
