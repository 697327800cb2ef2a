#!/usr/bin/env python3
"""One client connection kept open across a checkpoint of the server.

    keepalive.py LOG PORT REQUEST...

Connects to 127.0.0.1:PORT once. For each REQUEST, waits for a line on stdin, sends it and
reads the whole answer, then appends "N MD5 LINE" to LOG (N counts from 1; MD5 of the body for
HTTP, of the whole answer otherwise; LINE: HTTP's status line; memcached's VALUE line, or its
last line).
"GET /path": an HTTP/1.1 keep-alive request, its body read to Content-Length.
"MC a|b": memcached text protocol: the lines a, b sent with CRLF, the answer read up to its
last line (END, STORED, a number, an error).
"""
import hashlib
import socket
import sys


def read_http(sock, buf):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed in the headers")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed in the body")
        rest += chunk
    return lines[0], rest[:length], rest[length:]


def read_mc(sock, buf):
    ends = (b"END\r\n", b"STORED\r\n", b"ERROR\r\n", b"NOT_FOUND\r\n")
    while True:
        if buf.endswith(ends) or (buf.endswith(b"\r\n") and buf.strip().isdigit()):
            return buf
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk


def main():
    log, port, requests = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    sock = socket.create_connection(("127.0.0.1", port))
    buf = b""
    for n, req in enumerate(requests, 1):
        if not sys.stdin.readline():
            return
        try:
            if req.startswith("GET "):
                sock.sendall(("%s HTTP/1.1\r\nHost: test\r\nConnection: keep-alive\r\n\r\n" % req).encode())
                first, body, buf = read_http(sock, buf)
            else:
                sock.sendall(b"".join(part.encode() + b"\r\n" for part in req[3:].split("|")))
                body = read_mc(sock, buf)
                buf = b""
                lines = [line for line in body.decode().split("\r\n") if line]
                first = lines[0] if lines[0].startswith("VALUE") else lines[-1]
        except (OSError, EOFError) as e:
            first, body = "ERROR %s" % e, b""
        with open(log, "a") as f:
            f.write("%d %s %s\n" % (n, hashlib.md5(body).hexdigest(), first))


main()
