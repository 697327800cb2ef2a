#!/usr/bin/env python3
# marionette.py PORT SCRIPT...: one Marionette session (Firefox's own protocol: length-prefixed JSON on TCP);
# each SCRIPT (JS returning a value) is run in the current tab, its value printed as JSON;
# "new:URL" opens URL in a new tab, which becomes the current one.
import json, socket, sys
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=20)
buf = b""
def recv():
    global buf
    while b":" not in buf:
        buf += s.recv(65536)
    n, rest = buf.split(b":", 1)
    n = int(n)
    while len(rest) < n:
        rest += s.recv(65536)
    buf = rest[n:]
    return json.loads(rest[:n])
mid = 0
def cmd(name, params):
    global mid
    mid += 1
    d = json.dumps([0, mid, name, params]).encode()
    s.sendall(str(len(d)).encode() + b":" + d)
    while True:
        r = recv()
        if r[0] == 1 and r[1] == mid:
            if r[2]: raise SystemExit(f"{name}: {r[2]}")
            return r[3]
recv()  # the greeting
cmd("WebDriver:NewSession", {"capabilities": {}})
for script in sys.argv[2:]:
    if script.startswith("new:"):
        h = cmd("WebDriver:NewWindow", {"type": "tab"})["handle"]
        cmd("WebDriver:SwitchToWindow", {"handle": h})
        cmd("WebDriver:Navigate", {"url": script[4:]})
        continue
    print(json.dumps(cmd("WebDriver:ExecuteScript", {"script": script, "args": [], "sandbox": None})["value"]))
cmd("WebDriver:DeleteSession", {})
