#!/usr/bin/perl
# tsuwsgi's unix-datagram log sender (Node has no AF_UNIX SOCK_DGRAM sockets).
# Reads frames from stdin -- a 4-byte big-endian length, then that many bytes -- and sends
# each frame as one datagram to the unix socket named by the first argument (/dev/log for
# syslog). A datagram the socket refuses is counted and reported as "lost N" on stdout.
# Only perl-base modules: perl-base is part of every Debian/Ubuntu system.
use strict;
use warnings;
use Socket;

my $path = shift @ARGV or die "usage: unix-dgram-sender.pl SOCKET_PATH\n";
socket(my $sock, PF_UNIX, SOCK_DGRAM, 0) or die "socket(): $!\n";
my $addr = sockaddr_un($path);
binmode STDIN;
$| = 1;
my $lost = 0;

sub readn {
    my ($n) = @_;
    my $buf = '';
    while (length($buf) < $n) {
        my $r = sysread(STDIN, $buf, $n - length($buf), length($buf));
        return undef unless $r;
    }
    return $buf;
}

while (defined(my $hdr = readn(4))) {
    my $len = unpack('N', $hdr);
    my $msg = $len ? readn($len) : '';
    last unless defined $msg;
    unless (defined send($sock, $msg, 0, $addr)) {
        $lost++;
        print "lost $lost\n";
    }
}
