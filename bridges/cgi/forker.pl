#!/usr/bin/perl
# The CGI bridge's forker: the small process that starts the CGI scripts. bridges/cgi/bridge.pl
# runs one at start-up, on Linux architectures whose system call numbers it knows.
#
# Why a separate process: fork() costs in proportion to the memory of the process that calls
# it (its page tables are copied; afterwards every page either side writes is faulted in
# again), and the bridge's Perl touches much memory per request. This process is plain perl
# without modules and does as little as it can per script: receive one message, fork, and in
# the child make four system calls (setpgid, dup3, chdir, execve). It builds execve()'s argv
# and envp itself, as arrays of pointers into the received message, so that the child does no
# Perl work that would copy pages (Perl's exec would rebuild the environment through %ENV).
#
# Talk with the bridge: one SOCK_SEQPACKET socket (its fd is argv[0]), one datagram per message.
#   bridge -> forker  "S", pack('N3', id, nargs, nenv), then NUL-terminated strings: the
#                     directory, the program (a path, or a helper name looked up in PATH), the
#                     name for the log, nargs arguments (argv[1]...), nenv "NAME=value"; with
#                     the script's stdout and, when there is a body, stdin as SCM_RIGHTS
#                     descriptors: start it.
#                     "K", pack('N', id): kill that script's process group, if it still runs.
# Nothing comes back (a reply per script would cost the bridge a wake-up): the forker collects
# the scripts and logs their failures itself; a script it cannot start closes its stdout
# without a header block, which the bridge answers with a 500.
# EOF from the bridge: kill every script still running and exit, so none outlives the server.
#
# recvmsg() (descriptor passing), dup3(), execve() and close() of a bare descriptor are not in
# core Perl: they are called through perl's syscall() with the structures of LP64 Linux packed
# by hand. The numbers come in argv[1] ("recvmsg,dup3,execve,close") from bridge.pl's table.
use strict;
use warnings;

my ($SOCK_FD, $NUMBERS) = @ARGV;
my ($SYS_RECVMSG, $SYS_DUP3, $SYS_EXECVE, $SYS_CLOSE) = map { $_ + 0 } split /,/, $NUMBERS // '';
open(my $SOCK, '+<&=', $SOCK_FD) or die "cgi forker: fd $SOCK_FD is not open (it is started by bridges/cgi/bridge.pl): $!\n";
binmode $SOCK;
fcntl($SOCK, 2, 1);    # F_SETFD FD_CLOEXEC: not for the scripts

$SIG{INT} = sub { };   # Ctrl-C signals the whole process group: the bridge decides how we stop
# No SIGCHLD handler: a signal per script (and the select() it interrupts) costs more than one
# waitpid() per message. Scripts are collected before each wait for a message, and every
# second while any runs.

my %LIVE;              # the scripts not yet reaped: pid => { id, what, killed }
my %PID_OF;            # their ids (the bridge's) => pid
my %PROGRAM;           # helper name => its path in PATH (looked up once)

# The receive buffers, allocated once and never resized: the kernel writes into them, and the
# argv/envp pointers given to execve() point into $DATA. A request's variables are at most
# 64 KB; the rest is our environment.
my $MAX = 262144;
my $DATA = "\0" x $MAX;
my $CONTROL = "\0" x 64;
substr($_, 0, 1, "\0") for $DATA, $CONTROL;    # buffers of their own, not shared copy-on-write
my $DATA_ADDRESS = unpack('Q', pack('P', $DATA));
my $IOV = pack('P Q', $DATA, $MAX);            # struct iovec { void *base; size_t len; }
# struct msghdr { void *name; socklen_t namelen; struct iovec *iov; size_t iovlen;
#                 void *control; size_t controllen; int flags; }
my $MSGHDR_TEMPLATE = 'Q L x4 P Q P Q i x4';

sub log_line { syswrite(STDERR, "[cgi] $_[0]\n") }

sub kill_group { kill('KILL', -$_[0]) || kill('KILL', $_[0]) }

# One datagram into $DATA: (its length, the descriptors that came with it), () at EOF.
sub recv_message {
    my $msg = pack($MSGHDR_TEMPLATE, 0, 0, $IOV, 1, $CONTROL, length $CONTROL, 0);
    my $n;
    do { $n = syscall($SYS_RECVMSG, fileno($SOCK) + 0, $msg, 0x40000000) } while $n < 0 && $!{EINTR};    # MSG_CMSG_CLOEXEC
    die "cgi forker: recvmsg: $!\n" if $n < 0;
    return () if $n == 0;
    my @fds;
    my $controllen = unpack('x40 Q', $msg);
    if ($controllen >= 16) {
        # struct cmsghdr { size_t len; int level; int type; } then the descriptors (SOL_SOCKET 1, SCM_RIGHTS 1)
        my ($len, $level, $type) = unpack('Q i i', $CONTROL);
        @fds = unpack('x16 i' . int(($len - 16) / 4), $CONTROL) if $level == 1 && $type == 1;
    }
    return ($n, @fds);
}

sub close_fd { syscall($SYS_CLOSE, $_[0] + 0) }

my %SIGNAME;
sub signal_name {
    my $n = shift;
    if (!%SIGNAME) {
        require Config;
        @SIGNAME{ split ' ', $Config::Config{sig_num} } = map { "SIG$_" } split ' ', $Config::Config{sig_name};
    }
    return $SIGNAME{$n} // $n;
}

sub reap {
    while ((my $pid = waitpid(-1, 1)) > 0) {    # WNOHANG
        my $status = $?;
        my $child = delete $LIVE{$pid} or next;
        delete $PID_OF{ $child->{id} };
        next if $child->{killed} || $status == 0;
        log_line("$child->{what} exited with " . ($status & 127 ? 'signal ' . signal_name($status & 127) : 'status ' . ($status >> 8)));
    }
}

# The program of a helper given by name, as execvp() would find it.
sub find_program {
    my $name = shift;
    return $name if index($name, '/') >= 0;
    return $PROGRAM{$name} //= (grep { -f $_ && -x _ } map { ($_ eq '' ? '.' : $_) . "/$name" } split /:/, $ENV{PATH} // '/usr/bin:/bin')[0];
}

sub spawn {
    my ($length, $stdout, $stdin) = @_;
    my ($id, $nargs, $nenv) = unpack('x N N N', $DATA);
    # Where each NUL-terminated string starts.
    my @at;
    my $p = 13;
    for (1 .. 3 + $nargs + $nenv) {
        my $end = index($DATA, "\0", $p);
        return log_line('cgi forker: malformed message from the bridge') if $end < 0 || $end >= $length;
        push @at, $p;
        $p = $end + 1;
    }
    my ($dir, $file, $what) = map { substr($DATA, $at[$_], index($DATA, "\0", $at[$_]) - $at[$_]) } 0 .. 2;
    my $program = find_program($file);
    # char *argv[] = { file, args..., NULL }, char *envp[] = { "NAME=value"..., NULL }
    my $argv = pack('Q*', map({ $DATA_ADDRESS + $_ } @at[ 1, 3 .. 2 + $nargs ]), 0);
    my $envp = pack('Q*', map({ $DATA_ADDRESS + $_ } @at[ 3 + $nargs .. $#at ]), 0);
    my $pid = fork();
    if (!defined $pid) {
        return log_line("unable to run $what: fork: $!");
    }
    if ($pid == 0) {
        # Our descriptors are close-on-exec; fds 0-2 are the script's (0 stays /dev/null
        # without a body).
        setpgrp(0, 0);    # its own process group: a timeout kills the script and what it started
        (!defined $stdin || syscall($SYS_DUP3, $stdin + 0, 0, 0) >= 0) && syscall($SYS_DUP3, $stdout + 0, 1, 0) >= 0
            or failed($what, "cannot set up stdin/stdout: $!");
        chdir $dir or failed($what, "chdir $dir: $!");
        failed($what, qq{helper "$file" not found in PATH (check --cgi-helper)}) unless defined $program;
        syscall($SYS_EXECVE, $program, $argv, $envp);
        failed($what, "$!");
    }
    $LIVE{$pid} = { id => $id, what => $what, killed => 0 };
    $PID_OF{$id} = $pid;
}

# In the child, when the script cannot be started: the client gets a 500 (no header block).
sub failed {
    my ($what, $why) = @_;
    syswrite(STDERR, "[cgi] unable to run $what: $why\n");
    exit 127;
}

my $RIN = '';
vec($RIN, fileno $SOCK, 1) = 1;
while (1) {
    reap() if %LIVE;
    my $rout = $RIN;
    next if select($rout, undef, undef, %LIVE ? 1 : undef) <= 0;    # timeout (collect), EINTR
    my ($length, @fds) = recv_message();
    if (!$length) {
        kill_group($_) for keys %LIVE;
        exit 0;
    }
    my $type = substr($DATA, 0, 1);
    if ($type eq 'S' && @fds) {
        spawn($length, @fds);
    } elsif ($type eq 'K') {
        # Still ours (not reaped), so its pid cannot have been reused.
        my $pid = $PID_OF{ unpack('x N', $DATA) };
        if ($pid) {
            $LIVE{$pid}{killed} = 1;
            kill_group($pid);
        }
    }
    close_fd($_) for @fds;
}
