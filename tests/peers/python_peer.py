"""Interop peer for tests/interop_test.ts: passes fds with Python's socket
module (socket.send_fds/recv_fds and socket.sendmsg/recvmsg) over an
inherited Unix socket.

    python3 python_peer.py <socket-fd | socket-path> '<json list of operations>'

The socket is an inherited fd (a number), or a path to connect to (stream).

Operations, run in order, each printing one JSON line on stdout:

    {"op": "send", "api": "send_fds" | "sendmsg", "data": "text",
     "fds": [{"tmp": "text"} | {"pipe": "text"}, ...]}
        Sends one message with the given data and fds: "tmp" is an unlinked
        temporary file holding the text, at offset 0; "pipe" is the read end
        of a pipe whose write end gets the text (and is closed) after the
        send. Prints {"sent": <return value of the call>}.
    {"op": "recv", "api": "recv_fds" | "recvmsg", "maxFds": n,
     "write": "text"}
        Receives one message with room for n fds. Each fd is read from its
        offset to the end, except fds open for writing only, which get
        "write" (with the fd's index appended) and are closed. Prints
        {"data": "...", "fds": [{"read": "..."} | {"wrote": "..."}],
         "ctrunc": bool}.

Exits 0 on success, non-zero with a traceback on failure. An alarm ends the
process if the other side never answers.
"""

import array
import fcntl
import json
import os
import signal
import socket
import sys
import tempfile


def make_fd(spec, after):
    if "tmp" in spec:
        file = tempfile.TemporaryFile()
        file.write(spec["tmp"].encode())
        file.flush()
        fd = os.dup(file.fileno())
        file.close()
        os.lseek(fd, 0, os.SEEK_SET)
        return fd
    if "pipe" in spec:
        read_end, write_end = os.pipe()

        def fill():
            os.write(write_end, spec["pipe"].encode())
            os.close(write_end)

        after.append(fill)
        return read_end
    raise ValueError(f"unknown fd spec {spec!r}")


def send(sock, op):
    after = []
    fds = [make_fd(spec, after) for spec in op["fds"]]
    data = op["data"].encode()
    if op["api"] == "send_fds":
        sent = socket.send_fds(sock, [data], fds)
    elif op["api"] == "sendmsg":
        rights = array.array("i", fds).tobytes()
        sent = sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
    else:
        raise ValueError(f"unknown api {op['api']!r}")
    for fd in fds:
        os.close(fd)
    for fill in after:
        fill()
    return {"sent": sent}


def read_to_end(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks).decode()
        chunks.append(chunk)


def recv(sock, op):
    max_fds = op["maxFds"]
    if op["api"] == "recv_fds":
        data, fds, flags, _ = socket.recv_fds(sock, 65536, max_fds)
    elif op["api"] == "recvmsg":
        int_size = array.array("i").itemsize
        data, ancillary, flags, _ = sock.recvmsg(
            65536, socket.CMSG_SPACE(max_fds * int_size)
        )
        fds = []
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                whole = len(payload) - len(payload) % int_size
                fds.extend(array.array("i", payload[:whole]))
    else:
        raise ValueError(f"unknown api {op['api']!r}")
    results = []
    for index, fd in enumerate(fds):
        access = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
        if access == os.O_WRONLY:
            text = f"{op.get('write', '')}{index}"
            os.write(fd, text.encode())
            results.append({"wrote": text})
        else:
            results.append({"read": read_to_end(fd)})
        os.close(fd)
    return {
        "data": data.decode(),
        "fds": results,
        "ctrunc": bool(flags & socket.MSG_CTRUNC),
    }


def main():
    signal.alarm(10)
    target = sys.argv[1]
    if target.isdigit():
        sock = socket.socket(fileno=int(target))
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(target)
    for op in json.loads(sys.argv[2]):
        if op["op"] == "send":
            result = send(sock, op)
        elif op["op"] == "recv":
            result = recv(sock, op)
        else:
            raise ValueError(f"unknown op {op['op']!r}")
        print(json.dumps(result), flush=True)
    sock.close()


main()
