#!/usr/bin/env python3
"""
shell-job-foreground.py STASIS DIR: a shell's foreground job dumped and restored with
--shell-job from that shell, as a user does at an interactive prompt.

A "shell" (this script's child) leads a session on a pty, runs a key reader as a job (a process
group of its own, made the terminal's foreground group). As less does, the reader opens its
terminal by name (an open file of its own at fd 3, not its stdio's) and puts it in cbreak
mode (no line editing: each key is read as it is typed), then echoes every key it reads. The
job is dumped with --shell-job, the shell puts the terminal back in its line mode (as shells
do when a job dies); then the shell runs `stasis restore --shell-job` as its next foreground
job (a group of its own, given the terminal), and a key typed then (no Enter) must be read by
the restored reader: it must be in the terminal's foreground group (in a group of its own it
would be stopped by SIGTTIN at its read), with fd 3 its own open file of the terminal again,
and the terminal in its mode again (in line mode the key would wait for an Enter). The shell
resizes the terminal from 80x24 to 120x40 before the restore (a terminal window resized while
the job was away): the restored reader must get SIGWINCH and see the new size, as a full-screen
program needs to draw itself again.
Prints "PASS ..." or "FAIL: ..." (exit 0 or 1).
"""
import os
import pty
import termios
import subprocess
import sys
import threading
import time

STASIS, WORK = sys.argv[1], sys.argv[2]
IMG = os.path.join(WORK, "img")
READER = """import fcntl, os, signal, struct, termios, tty
os.dup2(os.open(os.ttyname(0), os.O_RDWR), 3)
tty.setcbreak(3)
def winch(sig, frame):
    rows, cols = struct.unpack("hh", fcntl.ioctl(3, termios.TIOCGWINSZ, b"\\0" * 4))
    os.write(1, b"winch %dx%d\\n" % (cols, rows))
signal.signal(signal.SIGWINCH, winch)
while True:
    os.write(1, b"got %s\\n" % os.read(3, 1))
"""


def fail(why, *pids):
    for p in pids:
        try:
            os.kill(p, 9)
        except OSError:
            pass
    print("FAIL: " + why)
    sys.exit(1)


def job(argv, fd):
    """A foreground job of the shell (the caller, a session leader on terminal fd)."""
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        os.tcsetpgrp(fd, os.getpgid(0))
        for std in (0, 1, 2):
            os.dup2(fd, std)
        os.execv(argv[0], argv)
    os.setpgid(pid, pid)
    return pid


os.makedirs(IMG, exist_ok=True)
master, slave = pty.openpty()
termios.tcsetwinsize(slave, (24, 80))
screen = []
threading.Thread(target=lambda: [screen.append(os.read(master, 4096).decode(errors="replace"))
                                 for _ in iter(int, 1)], daemon=True).start()
r, w = os.pipe()
shell = os.fork()
if shell == 0:  # the shell: a session on the pty, its jobs in the foreground in turn
    os.close(r)
    os.setsid()
    os.close(os.open(os.ttyname(slave), os.O_RDWR))  # its controlling terminal
    import signal
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # (as shells do, to take the terminal back)
    cooked = termios.tcgetattr(slave)
    reader = job([sys.executable, "-c", READER], slave)
    os.write(w, b"%d\n" % reader)
    os.waitpid(reader, os.WUNTRACED)  # killed by the dump
    termios.tcsetattr(slave, termios.TCSANOW, cooked)
    termios.tcsetwinsize(slave, (40, 120))
    restorer = job([STASIS, "restore", "-D", IMG, "--shell-job", "-o", "restore.log", "-v4"], slave)
    _, status = os.waitpid(restorer, os.WUNTRACED)
    os._exit(0)
os.close(w)
reader = int(os.read(r, 64))
time.sleep(0.5)
os.write(master, b"a")
time.sleep(0.5)
if "got a" not in "".join(screen):
    fail("the reader does not read keys before the dump: " + "".join(screen)[-200:], reader, shell)
d = subprocess.run([STASIS, "dump", "-t", str(reader), "-D", IMG, "--shell-job", "-o", "dump.log", "-v4"],
                   capture_output=True, text=True, timeout=60)
if d.returncode != 0:
    fail(f"dump --shell-job exited {d.returncode}: {d.stderr.strip()[-300:]}", reader, shell)
for _ in range(100):  # the shell starts the restore
    time.sleep(0.05)
    try:
        with open(f"/proc/{reader}/stat") as f:
            if f.read().split(")")[-1].split()[0] in "SRT":
                break
    except OSError:
        pass
time.sleep(1)
os.write(master, b"z")
time.sleep(1)
try:
    with open(f"/proc/{reader}/stat") as f:
        fields = f.read().split(")")[-1].split()
except OSError:
    fail("the reader was not restored (see restore.log)", shell)
state, pgid, tpgid = fields[0], int(fields[2]), int(fields[5])
if "got z" not in "".join(screen):
    lflag = termios.tcgetattr(slave)[3]
    fail(f"the restored reader did not read the key typed: state {state}, group {pgid}, "
         f"the terminal's foreground group {tpgid}, its mode {'line' if lflag & termios.ICANON else 'cbreak'}",
         reader, shell)
if "winch 120x40" not in "".join(screen):
    fail("the restored reader was not told of the terminal's new size (SIGWINCH, 120x40): "
         + "".join(screen)[-200:], reader, shell)
os.kill(reader, 9)
os.waitpid(shell, 0)
print(f"PASS the restored job read from the terminal in its foreground group {tpgid}, "
      "told of its new size 120x40")
