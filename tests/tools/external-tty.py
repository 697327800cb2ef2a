#!/usr/bin/env python3
"""
external-tty.py STASIS DIR: a terminal of the caller named with --external tty[RDEV:DEV] (as
LXC and libvirt name a container's console) and given back with --inherit-fd fd[N]:tty[...].

A counter runs in a session of its own with its stdio on the slave of a pty this script holds.
  1. dumped without --external: refused, naming the terminal; the counter goes on;
  2. dumped with --external tty[RDEV:DEV] (its device and its file system's, in hex);
  3. restored without --inherit-fd: refused before anything starts, naming the key;
  4. restored with --inherit-fd fd[N]:tty[...], N the slave of a new pty: the count goes on,
     one more than the last number the old terminal showed, on the new terminal.
Prints "PASS ..." or "FAIL: ..." (exit 0 or 1).
"""
import os
import pty
import re
import subprocess
import sys
import threading
import time

STASIS, WORK = sys.argv[1], sys.argv[2]
IMG = os.path.join(WORK, "img")
COUNTER = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done"


class Reader(threading.Thread):
    """Everything a pty master shows, kept."""

    def __init__(self, fd):
        super().__init__(daemon=True)
        self.fd, self.text = fd, ""
        self.start()

    def run(self):
        while True:
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                return
            if not data:
                return
            self.text += data.decode(errors="replace")

    def ticks(self):
        return [int(n) for n in re.findall(r"tick (\d+)", self.text)]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def stasis(*args, fds=()):
    return subprocess.run([STASIS, *args], pass_fds=fds, capture_output=True, text=True, timeout=60)


def logged(name):
    try:
        with open(os.path.join(IMG, name)) as f:
            return f.read()
    except OSError:
        return ""


def fail(why, pid=None):
    if pid and alive(pid):
        os.kill(pid, 9)
    print("FAIL: " + why)
    sys.exit(1)


os.makedirs(IMG, exist_ok=True)
master, slave = pty.openpty()
old = Reader(master)
proc = subprocess.Popen(["sh", "-c", COUNTER], stdin=slave, stdout=slave, stderr=slave,
                        start_new_session=True)
os.close(slave)
pid = proc.pid
time.sleep(0.5)
st = os.stat(f"/proc/{pid}/fd/1")
key = "tty[%x:%x]" % (st.st_rdev, st.st_dev)

r = stasis("dump", "-t", str(pid), "-D", IMG, "-o", "dump.log", "-v4")
seen = len(old.ticks())
time.sleep(0.4)
if r.returncode == 0 or "is a terminal from outside the tree" not in r.stderr + logged("dump.log"):
    fail(f"the dump without --external did not refuse the terminal (exit {r.returncode})", pid)
if not alive(pid) or len(old.ticks()) <= seen:
    fail("the counter stopped after the refused dump", pid)

r = stasis("dump", "-t", str(pid), "-D", IMG, "-o", "dump.log", "-v4", "--external", key)
if r.returncode != 0:
    fail(f"dump --external {key} exited {r.returncode}: {r.stderr.strip()[-300:]}", pid)
proc.wait(timeout=10)
time.sleep(0.2)
last = old.ticks()[-1]

r = stasis("restore", "-D", IMG, "-d", "-o", "restore.log", "-v4", "--pidfile", "refused.pid")
if r.returncode == 0 or os.path.exists(os.path.join(IMG, "refused.pid")):
    fail("the restore without --inherit-fd was not refused")
if f"--inherit-fd fd[N]:{key}" not in r.stderr + logged("restore.log") or alive(pid):
    fail(f"the refused restore does not name --inherit-fd fd[N]:{key}, or started the counter")

master2, slave2 = pty.openpty()
new = Reader(master2)
r = stasis("restore", "-D", IMG, "-d", "-o", "restore.log", "-v4", "--pidfile", "restored.pid",
           "--inherit-fd", f"fd[{slave2}]:{key}", fds=(slave2,))
os.close(slave2)
if r.returncode != 0:
    fail(f"restore --inherit-fd fd[N]:{key} exited {r.returncode}: {r.stderr.strip()[-300:]}")
with open(os.path.join(IMG, "restored.pid")) as f:
    restored = int(f.read())
time.sleep(1)
ticks = new.ticks()
if len(ticks) < 3 or ticks[0] != last + 1 or ticks != list(range(last + 1, last + 1 + len(ticks))):
    fail(f"the old terminal showed up to {last}, the new one {ticks[:6]}", restored)
if len(old.ticks()) and old.ticks()[-1] != last:
    fail("the old terminal got output after the dump", restored)
os.kill(restored, 9)
print(f"PASS counted to {last} on its terminal ({key}), went on from {ticks[0]} on the new one")
