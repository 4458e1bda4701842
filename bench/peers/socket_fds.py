"""The Python peer for the fdpass benchmarks: socket.send_fds / recv_fds.

    python3 socket_fds.py roundtrip <iterations> <fds> <bytes>
    python3 socket_fds.py pingpong <iterations>

Prints "<ns per operation> <operations>" on stdout. recv_fds is called the
way users call it, without MSG_CMSG_CLOEXEC (Python sets close-on-exec only
on fds it creates itself).
"""

import os
import socket
import sys
import time


def timed(iterations, loop):
    loop(iterations // 10 + 1)  # warm-up
    start = time.perf_counter_ns()
    loop(iterations)
    elapsed = time.perf_counter_ns() - start
    print(f"{elapsed / iterations:.1f} {iterations}")


def recv_all_and_close(sock, nbytes, maxfds):
    got = 0
    while got < nbytes:
        data, fds, _flags, _addr = socket.recv_fds(sock, nbytes - got, maxfds)
        if not data:
            raise EOFError("peer closed")
        for fd in fds:
            os.close(fd)
        got += len(data)


def send_all(sock, data, fds):
    sent = socket.send_fds(sock, [data], fds)
    if sent < len(data):
        sock.sendall(data[sent:])


def roundtrip(iterations, nfds, nbytes):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    fds = [fd] * nfds
    data = bytes(nbytes)

    def loop(n):
        for _ in range(n):
            send_all(a, data, fds)
            recv_all_and_close(b, nbytes, nfds)

    timed(iterations, loop)


def pingpong(iterations):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        a.close()
        try:
            while True:
                data, fds, _flags, _addr = socket.recv_fds(b, 1, 1)
                if not data:
                    break
                socket.send_fds(b, [data], fds)
                for received in fds:
                    os.close(received)
        finally:
            os._exit(0)
    b.close()

    def loop(n):
        for _ in range(n):
            socket.send_fds(a, [b"x"], [fd])
            data, fds, _flags, _addr = socket.recv_fds(a, 1, 1)
            if len(data) != 1 or len(fds) != 1:
                raise RuntimeError("echo lost the fd")
            os.close(fds[0])

    timed(iterations, loop)
    a.close()
    os.waitpid(child, 0)


def main():
    args = sys.argv[1:]
    if len(args) == 4 and args[0] == "roundtrip":
        roundtrip(int(args[1]), int(args[2]), int(args[3]))
    elif len(args) == 2 and args[0] == "pingpong":
        pingpong(int(args[1]))
    else:
        sys.exit("usage: socket_fds.py roundtrip <iterations> <fds> <bytes> | pingpong <iterations>")


main()
