#!/usr/bin/env python3
"""Both ends of tests/net/run-net.sh's connections.

  peer.py server HOST PORT READY [DIR]  a numbered-request server: answers "N\\n" with "2N\\n"
                                        (one connection; it is the tree that is dumped); with
                                        DIR, once DIR/accept-now exists it accepts the next
                                        connection too and answers what came on it (see waiter)
  peer.py http HOST PORT READY          an HTTP/1.1 keep-alive server: GET /N -> body N*N
  peer.py waiter HOST PORT N DIR       a client the server does not accept yet: it writes N
                                        random bytes (after their length), DIR/waiter-sent once
                                        they are all in the server's queue, then waits for
                                        their SHA-256 and the server's end-of-file: DIR/result
                                        "ok", or what went wrong (a reset, a wrong digest)
  peer.py client MODE HOST PORT DIR     a client that never reconnects: MODE numbers, http
                                        or redis; it writes its count of right answers to
                                        DIR/count after each one, and exits on DIR/stop
                                        (0) or at the first wrong answer, reset or
                                        timeout (1, saying why in DIR/error)
"""
import fcntl
import hashlib
import os
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        data = sock.recv(n - len(buf))
        if not data:
            raise ConnectionError("end of file after %d of %d bytes" % (len(buf), n))
        buf += data
    return buf


def accept_later(l, d):
    while not os.path.exists(os.path.join(d, "accept-now")):
        time.sleep(0.05)
    w, _ = l.accept()
    payload = recv_exact(w, int.from_bytes(recv_exact(w, 8), "big"))
    w.sendall(hashlib.sha256(payload).hexdigest().encode() + b"\n")
    w.close()


def server(host, port, ready, later=None):
    l = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((host, port))
    l.listen(4)
    open(ready, "w").close()
    c, _ = l.accept()
    if later:
        threading.Thread(target=accept_later, args=(l, later), daemon=True).start()
    buf = b""
    while True:
        data = c.recv(65536)
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            c.sendall(b"%d\n" % (2 * int(line)))


class Squares(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"%d" % (int(self.path[1:]) ** 2)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def http(host, port, ready):
    s = HTTPServer((host, port), Squares)
    open(ready, "w").close()
    s.serve_forever()


def read_until(sock, buf, sep):
    while sep not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("end of file from the server")
        buf += data
    return buf.split(sep, 1)


def ask_numbers(sock, buf, i):
    sock.sendall(b"%d\n" % i)
    line, buf = read_until(sock, buf, b"\n")
    return line == b"%d" % (2 * i), line, buf


def ask_http(sock, buf, i):
    sock.sendall(b"GET /%d HTTP/1.1\r\nHost: test\r\n\r\n" % i)
    head, buf = read_until(sock, buf, b"\r\n\r\n")
    length = [int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0]
    while len(buf) < length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("end of file from the server")
        buf += data
    body, buf = buf[:length], buf[length:]
    return head.startswith(b"HTTP/1.1 200") and body == b"%d" % (i * i), body, buf


def ask_redis(sock, buf, i):
    key, val = b"k%d" % i, b"v%d" % (i * 7)
    cmd = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(val), val)
    cmd += b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)
    sock.sendall(cmd)
    ok, buf = read_until(sock, buf, b"\r\n")
    size, buf = read_until(sock, buf, b"\r\n")
    value, buf = read_until(sock, buf, b"\r\n")
    return ok == b"+OK" and value == val, value, buf


def waiter(host, port, n, d):
    sock = socket.create_connection((host, port))
    payload = os.urandom(n)
    sock.sendall(n.to_bytes(8, "big") + payload)
    while struct.unpack("i", fcntl.ioctl(sock, 0x5411, b"\0" * 4))[0]:  # SIOCOUTQ
        time.sleep(0.01)
    open(os.path.join(d, "waiter-sent"), "w").close()
    sock.settimeout(120)
    try:
        line, rest = read_until(sock, b"", b"\n")
        if line != hashlib.sha256(payload).hexdigest().encode():
            raise ValueError("wrong digest %r" % line)
        if rest or sock.recv(1):
            raise ValueError("more than the digest")
        result = "ok"
    except Exception as e:  # a reset, a timeout, a wrong digest
        result = "%s: %s" % (type(e).__name__, e)
    with open(os.path.join(d, "result"), "w") as f:
        f.write(result + "\n")


def client(mode, host, port, d):
    ask = {"numbers": ask_numbers, "http": ask_http, "redis": ask_redis}[mode]
    sock = socket.create_connection((host, port))
    sock.settimeout(90)
    buf, i = b"", 0
    try:
        while not os.path.exists(os.path.join(d, "stop")):
            ok, got, buf = ask(sock, buf, i)
            if not ok:
                raise ValueError("request %d: wrong answer %r" % (i, got))
            i += 1
            with open(os.path.join(d, "count.tmp"), "w") as f:
                f.write("%d\n" % i)
            os.rename(os.path.join(d, "count.tmp"), os.path.join(d, "count"))
            time.sleep(0.01)
    except Exception as e:  # a reset, a timeout, a wrong answer
        with open(os.path.join(d, "error"), "w") as f:
            f.write("after %d answers: %s: %s\n" % (i, type(e).__name__, e))
        sys.exit(1)


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "server":
        server(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
    elif what == "waiter":
        waiter(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif what == "http":
        http(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        client(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
