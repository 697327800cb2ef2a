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
"DNS name": a DNS query over TCP (class IN, type A, id N); LINE: "A a.b.c.d" (the answer's
first address) or "rcode R" (none).
"FCGI /path/script.php": a FastCGI request (responder, FCGI_KEEP_CONN: the server keeps the
connection) for that script, read to its END_REQUEST; MD5 and LINE of the body (after the
headers), LINE its first line.
"CONNECT host:port": an HTTP CONNECT request (a proxy's tunnel), its header read; LINE: the
status line. "ECHO text": the line text sent, one line read back; LINE: that line.
"SMTP a|b": SMTP: the lines a, b sent with CRLF, one reply read for each command (none for the
lines between DATA's 354 and ".", which may span requests; the server's greeting read first on
the first request); LINE: the replies' codes, comma-separated (e.g. 220,250,354,250).
"""
import hashlib
import socket
import struct
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


def read_exact(sock, buf, n):
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf[:n], buf[n:]


def ask_dns(sock, buf, n, name):
    query = struct.pack(">HHHHHH", n, 0x0100, 1, 0, 0, 0)
    query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    query += struct.pack(">HH", 1, 1)
    sock.sendall(struct.pack(">H", len(query)) + query)
    size, buf = read_exact(sock, buf, 2)
    answer, buf = read_exact(sock, buf, struct.unpack(">H", size)[0])
    rcode, count = answer[3] & 15, struct.unpack(">H", answer[6:8])[0]
    at = len(query)  # the question, as sent, then the answers (names compressed)
    for _ in range(count):
        while answer[at] and answer[at] < 0xC0:
            at += answer[at] + 1
        at += 2 if answer[at] else 1
        kind, _, _, length = struct.unpack(">HHIH", answer[at:at + 10])
        if kind == 1 and length == 4:
            return "A " + ".".join(str(b) for b in answer[at + 10:at + 14]), answer, buf
        at += 10 + length
    return "rcode %d" % rcode, answer, buf


def fcgi_record(kind, content):
    return struct.pack(">BBHHBB", 1, kind, 1, len(content), 0, 0) + content


def fcgi_pair(name, value):
    return bytes([len(name)]) + bytes([len(value)]) + name.encode() + value.encode()


def ask_fcgi(sock, buf, script):
    params = fcgi_pair("SCRIPT_FILENAME", script) + fcgi_pair("SCRIPT_NAME", script) + \
        fcgi_pair("REQUEST_METHOD", "GET") + fcgi_pair("QUERY_STRING", "")
    sock.sendall(fcgi_record(1, struct.pack(">HB5x", 1, 1)) + fcgi_record(4, params) +
                 fcgi_record(4, b"") + fcgi_record(5, b""))
    out = b""
    while True:
        head, buf = read_exact(sock, buf, 8)
        _, kind, _, length, padding, _ = struct.unpack(">BBHHBB", head)
        content, buf = read_exact(sock, buf, length + padding)
        if kind == 6:
            out += content[:length]
        elif kind == 3:
            break
    body = out.split(b"\r\n\r\n", 1)[-1]
    return (body.decode(errors="replace").split("\n") or [""])[0], body, buf


def read_smtp_reply(sock, buf):
    """One reply (its lines up to "NNN text"): (code, reply, rest of buf)."""
    text = b""
    while True:
        while b"\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        text += line + b"\r\n"
        if len(line) < 4 or line[3:4] != b"-":
            return line[:3].decode(), text, buf


SMTP_IN_DATA = [False]  # a request may end inside DATA's text, the next one go on with it


def ask_smtp(sock, buf, parts, greeting):
    codes, body = [], b""
    if greeting:
        code, text, buf = read_smtp_reply(sock, buf)
        codes.append(code)
        body += text
    in_data = SMTP_IN_DATA[0]
    for part in parts:
        sock.sendall(part.encode() + b"\r\n")
        if in_data and part != ".":
            continue
        code, text, buf = read_smtp_reply(sock, buf)
        codes.append(code)
        body += text
        in_data = code == "354"
    SMTP_IN_DATA[0] = in_data
    return ",".join(codes), body, buf


def read_line(sock, buf, end=b"\n"):
    while end not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    line, buf = buf.split(end, 1)
    return line, buf


def main():
    log, port, requests = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    sock = socket.create_connection(("127.0.0.1", port))
    buf = b""
    for n, req in enumerate(requests, 1):
        if not sys.stdin.readline():
            return
        try:
            if req.startswith("DNS "):
                first, body, buf = ask_dns(sock, buf, n, req[4:])
            elif req.startswith("FCGI "):
                first, body, buf = ask_fcgi(sock, buf, req[5:])
            elif req.startswith("SMTP "):
                first, body, buf = ask_smtp(sock, buf, req[5:].split("|"), n == 1)
            elif req.startswith("CONNECT "):
                sock.sendall(("%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (req, req[8:])).encode())
                body, buf = read_line(sock, buf, b"\r\n\r\n")
                first = body.decode().split("\r\n")[0]
            elif req.startswith("ECHO "):
                sock.sendall(req[5:].encode() + b"\n")
                body, buf = read_line(sock, buf)
                first = body.decode()
            elif req.startswith("GET "):
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
