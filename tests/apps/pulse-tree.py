#!/usr/bin/python3
"""The tree of tests/apps/run-apps.sh's pulseaudio case: this launcher (its root) starts a
PulseAudio server with a null sink and the native protocol on a unix socket of DIR, then pacat
playing DIR/tone.raw into the sink and parec recording the sink's monitor into DIR/rec.raw, and
waits for them. tone.raw (made here first) is a counter: frame i holds i & 0x7fff on the left and
(i >> 15) & 0x7fff on the right, 16-bit stereo at 44100 Hz for 60 s, so that each recorded frame
says which played frame it is.

    pulse-tree.py DIR             run the tree
    pulse-tree.py --check DIR N   check rec.raw: every frame silence or a counter frame, the
                                  counter never going back, at least N frames in a row after
                                  the last gap; prints 'ok FRAMES GAPS LAST' or 'bad WHY'
"""
import os
import struct
import subprocess
import sys
import time

RATE = 44100


def tone(path):
    with open(path, 'wb') as f:
        for start in range(0, RATE * 60, RATE):
            values = []
            for i in range(start, start + RATE):
                values += (i & 0x7fff, (i >> 15) & 0x7fff)
            f.write(struct.pack('<%dh' % len(values), *values))


def check(path, need):
    data = open(path, 'rb').read()
    n = len(data) // 4
    frames = struct.unpack('<%dh' % (2 * n), data[:4 * n])
    prev, run, gaps, last = None, 0, 0, None
    for k in range(n):
        lo, hi = frames[2 * k], frames[2 * k + 1]
        if lo == 0 and hi == 0:
            continue  # silence: the player not started yet, or stopped (the dump's window)
        if lo < 0 or hi < 0:
            return 'bad frame %d of the recording is no counter frame (%d, %d)' % (k, lo, hi)
        i = lo | (hi << 15)
        if prev is not None and i <= prev:
            return 'bad the counter went back at recorded frame %d: %d after %d' % (k, i, prev)
        if prev is not None and i != prev + 1:
            gaps += 1
            run = 0
        run += 1
        prev = last = i
    if run < need:
        return 'bad only %d frames in a row after the last of %d gaps (%d wanted)' % (run, gaps, need)
    return 'ok %d %d %d' % (n, gaps, last)


def main():
    if sys.argv[1] == '--check':
        print(check(os.path.join(sys.argv[2], 'rec.raw'), int(sys.argv[3])))
        return
    d = sys.argv[1]
    tone(os.path.join(d, 'tone.raw'))
    env = dict(os.environ, HOME=d, XDG_RUNTIME_DIR=os.path.join(d, 'run'),
               PULSE_SERVER='unix:' + os.path.join(d, 'pa.sock'))
    os.makedirs(env['XDG_RUNTIME_DIR'], exist_ok=True)
    log = open(os.path.join(d, 'server.log'), 'w')
    server = subprocess.Popen(['pulseaudio', '-n', '--daemonize=no', '--exit-idle-time=-1',
                               '--use-pid-file=no', '-L', 'module-null-sink sink_name=zoo rate=%d channels=2' % RATE,
                               '-L', 'module-native-protocol-unix socket=%s auth-anonymous=1' % os.path.join(d, 'pa.sock')],
                              env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    for _ in range(100):
        if subprocess.run(['pactl', 'info'], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    fmt = ['--rate=%d' % RATE, '--channels=2', '--format=s16le', '--latency-msec=50']
    rec = open(os.path.join(d, 'rec.raw'), 'wb')
    recorder = subprocess.Popen(['parec', '--device=zoo.monitor'] + fmt, env=env, stdin=subprocess.DEVNULL,
                                stdout=rec, stderr=open(os.path.join(d, 'parec.log'), 'w'))
    player = subprocess.Popen(['pacat', '--playback'] + fmt + [os.path.join(d, 'tone.raw')], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(d, 'pacat.log'), 'w'))
    open(os.path.join(d, 'started'), 'w').write('%d %d %d\n' % (server.pid, player.pid, recorder.pid))
    for p in (player, recorder, server):
        p.wait()


main()
