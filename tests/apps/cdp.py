#!/usr/bin/env python3
# cdp.py PORT WHICH EXPR: evaluate EXPR in the page target WHICH (its id, or a prefix of its URL) over
# the DevTools websocket; prints the value as JSON. cdp.py PORT new: a new about:blank tab; prints its id.
import json, os, socket, struct, sys, urllib.request, base64
port = int(sys.argv[1])
if sys.argv[2] == "new":
    req = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
    print(json.load(urllib.request.urlopen(req, timeout=20))["id"])
    sys.exit(0)
which, expr = sys.argv[2], sys.argv[3]
targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
page = [t for t in targets if t["type"] == "page" and (t["id"] == which or t["url"].startswith(which))][0]
url = page["webSocketDebuggerUrl"]
path = url.split(f":{port}", 1)[1]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(4096)
assert b" 101 " in buf.split(b"\r\n")[0], buf
buf = buf.split(b"\r\n\r\n", 1)[1]
def send(obj):
    data = json.dumps(obj).encode(); mask = os.urandom(4)
    hdr = bytes([0x81])
    n = len(data)
    hdr += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
    s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
def recvn(n):
    global buf
    while len(buf) < n:
        c = s.recv(65536)
        if not c: raise EOFError
        buf += c
    r, buf = buf[:n], buf[n:]; return r
def recv():
    b0, b1 = recvn(2); n = b1 & 0x7f
    if n == 126: n = struct.unpack(">H", recvn(2))[0]
    elif n == 127: n = struct.unpack(">Q", recvn(8))[0]
    return json.loads(recvn(n))
send({"id": 1, "method": "Runtime.evaluate", "params": {"expression": expr, "returnByValue": True}})
while True:
    m = recv()
    if m.get("id") == 1:
        print(json.dumps(m["result"].get("result", {}).get("value", m)))
        break
