# Interop peer for tests/interop_test.ts: passes fds with Perl's IO::FDPass
# (one fd per message, carried by a single zero byte) over an inherited Unix
# socket.
#
#   perl perl_peer.pl <socket-fd> <operation>...
#
# Operations, run in order, each printing one line on stdout:
#   send-tmp=<text>    sends an unlinked temporary file holding <text>, at
#                      offset 0; prints "sent".
#   send-pipe=<text>   sends the read end of a pipe, then writes <text> into
#                      the write end and closes it; prints "sent".
#   recv-read          receives an fd and prints "read=<content>", read from
#                      its offset to the end.
#   recv-write=<text>  receives an fd, writes <text> into it and prints
#                      "wrote=<text>".
#
# Exits 0 on success, non-zero with a message on stderr on failure. An alarm
# ends the process if the other side never answers.
use strict;
use warnings;
use IO::FDPass;

alarm 10;
$| = 1;
my $sock = shift @ARGV;
die "usage: perl_peer.pl <socket-fd> <operation>...\n" unless defined $sock && $sock =~ /^\d+$/;

for my $op (@ARGV) {
  if ($op =~ /^send-tmp=(.*)$/s) {
    my $text = $1;
    open my $fh, "+>", undef or die "cannot create a temporary file: $!\n";
    defined syswrite($fh, $text) or die "write: $!\n";
    defined sysseek($fh, 0, 0) or die "seek: $!\n";
    IO::FDPass::send($sock, fileno $fh) or die "IO::FDPass::send: $!\n";
    close $fh;
    print "sent\n";
  } elsif ($op =~ /^send-pipe=(.*)$/s) {
    my $text = $1;
    pipe my $read_end, my $write_end or die "pipe: $!\n";
    IO::FDPass::send($sock, fileno $read_end) or die "IO::FDPass::send: $!\n";
    close $read_end;
    defined syswrite($write_end, $text) or die "write: $!\n";
    close $write_end;
    print "sent\n";
  } elsif ($op eq "recv-read") {
    my $fd = IO::FDPass::recv($sock);
    die "IO::FDPass::recv: $!\n" if $fd < 0;
    open my $fh, "<&=", $fd or die "fdopen $fd: $!\n";
    my $content = "";
    while (1) {
      my $n = sysread($fh, my $chunk, 65536);
      die "read: $!\n" unless defined $n;
      last if $n == 0;
      $content .= $chunk;
    }
    close $fh;
    print "read=$content\n";
  } elsif ($op =~ /^recv-write=(.*)$/s) {
    my $text = $1;
    my $fd = IO::FDPass::recv($sock);
    die "IO::FDPass::recv: $!\n" if $fd < 0;
    open my $fh, ">&=", $fd or die "fdopen $fd: $!\n";
    defined syswrite($fh, $text) or die "write: $!\n";
    close $fh;
    print "wrote=$text\n";
  } else {
    die "unknown operation: $op\n";
  }
}
