#!/usr/bin/env python3
"""A FastCGI responder spawned by a web server (lighttpd's bin-path): fd 0 is its listening
socket. Each request is answered with "pid=PID count=N ticks=T": N counts this process's
requests from 1, T the 10 ms ticks of a thread of its own (both only in memory, so a restart
starts them again). A query string "slow" makes it wait 1 s first (a busy responder: the
server gives a second request at the same time to another one)."""
import os
import socket
import struct
import threading
import time

ticks = 0


def tick():
    global ticks
    while True:
        time.sleep(0.01)
        ticks += 1


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def record(kind, rid, content):
    return struct.pack(">BBHHBB", 1, kind, rid, len(content), 0, 0) + content


def pairs(data):
    """FastCGI name-value pairs: a dict"""
    out, at = {}, 0
    while at < len(data):
        lengths = []
        for _ in range(2):
            if data[at] & 0x80:
                lengths.append(struct.unpack(">I", data[at:at + 4])[0] & 0x7FFFFFFF)
                at += 4
            else:
                lengths.append(data[at])
                at += 1
        name = data[at:at + lengths[0]]
        out[name] = data[at + lengths[0]:at + lengths[0] + lengths[1]]
        at += lengths[0] + lengths[1]
    return out


def serve(conn, count):
    keep = True
    while keep:
        stdin_done = params_done = False
        rid, params = 1, b""
        while not (stdin_done and params_done):
            _, kind, rid, length, padding, _ = struct.unpack(">BBHHBB", read_exact(conn, 8))
            content = read_exact(conn, length + padding)[:length]
            if kind == 1:  # BEGIN_REQUEST
                keep = bool(content[2] & 1)
            elif kind == 4:
                params += content
                params_done = not length
            elif kind == 5 and not length:
                stdin_done = True
        if pairs(params).get(b"QUERY_STRING") == b"slow":
            time.sleep(1)
        count += 1
        body = ("Content-Type: text/plain\r\n\r\npid=%d count=%d ticks=%d\n" % (os.getpid(), count, ticks)).encode()
        conn.sendall(record(6, rid, body) + record(6, rid, b"") + record(3, rid, struct.pack(">IB3x", 0, 0)))
    return count


def main():
    threading.Thread(target=tick, daemon=True).start()
    listener = socket.socket(fileno=0)
    count = 0
    while True:
        conn, _ = listener.accept()
        try:
            count = serve(conn, count)
        except (EOFError, OSError):
            pass
        conn.close()


main()
