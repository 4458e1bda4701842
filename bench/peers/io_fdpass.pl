#!/usr/bin/perl
# The Perl IO::FDPass peer for the fdpass benchmarks (one fd per message:
# IO::FDPass sends one byte carrying one fd).
#
#   perl io_fdpass.pl roundtrip <iterations>   send, receive, close, in-process
#   perl io_fdpass.pl pingpong <iterations>    a forked child echoes the fd back
#
# Prints "<ns per operation> <operations>" on stdout.
use strict;
use warnings;
use IO::FDPass;
use POSIX ();
use Socket qw(AF_UNIX SOCK_STREAM PF_UNSPEC);
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

my ($mode, $iterations) = @ARGV;
die "usage: $0 roundtrip|pingpong <iterations>\n"
  unless defined $iterations && $iterations =~ /^\d+$/ && $iterations > 0;

socketpair(my $left, my $right, AF_UNIX, SOCK_STREAM, PF_UNSPEC) or die "socketpair: $!";
open(my $null, '<', '/dev/null') or die "open /dev/null: $!";
my $fd = fileno $null;
my ($a, $b) = (fileno $left, fileno $right);

sub timed {
  my ($loop) = @_;
  $loop->(int($iterations / 10) + 1);    # warm-up
  my $start = clock_gettime(CLOCK_MONOTONIC);
  $loop->($iterations);
  my $elapsed = clock_gettime(CLOCK_MONOTONIC) - $start;
  printf "%.1f %d\n", $elapsed * 1e9 / $iterations, $iterations;
}

if ($mode eq 'roundtrip') {
  timed(sub {
    for (1 .. $_[0]) {
      IO::FDPass::send($a, $fd) or die "send: $!";
      my $received = IO::FDPass::recv($b);
      $received >= 0 or die "recv: $!";
      POSIX::close($received);
    }
  });
} elsif ($mode eq 'pingpong') {
  my $child = fork() // die "fork: $!";
  if ($child == 0) {
    close $left;
    while ((my $received = IO::FDPass::recv($b)) >= 0) {
      IO::FDPass::send($b, $received) or POSIX::_exit(1);
      POSIX::close($received);
    }
    POSIX::_exit(0);
  }
  close $right;
  timed(sub {
    for (1 .. $_[0]) {
      IO::FDPass::send($a, $fd) or die "send: $!";
      my $received = IO::FDPass::recv($a);
      $received >= 0 or die "recv: $!";
      POSIX::close($received);
    }
  });
  close $left;
  waitpid($child, 0);
} else {
  die "unknown mode $mode\n";
}
