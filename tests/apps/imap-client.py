#!/usr/bin/env python3
"""One IMAP session kept open across a checkpoint of the server.

    imap-client.py PORT USER PASSWORD

Logs in on 127.0.0.1:PORT and selects INBOX. Then, for each line read on stdin (a step), does
that step on the same session and prints one line of its result:
"append TEXT": appends a message whose subject and body are TEXT; prints "appended".
"list": NOOP (the session learns of messages others appended), then the subject of each
message in INBOX, in order, space-separated, after "N:" (their count).
"body N": the body of message N (its text without headers).
"idle": IDLE; prints "idling" once the server said so, then waits (10 s at most) for the server
to tell of a new message count, prints it ("N EXISTS"), and ends the IDLE (DONE).
"""
import imaplib
import sys

imap = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
imap.login(sys.argv[2], sys.argv[3])
imap.select("INBOX")
print("ready", flush=True)
for line in sys.stdin:
    step, _, arg = line.rstrip("\n").partition(" ")
    if step == "append":
        msg = "Subject: %s\r\nFrom: a@b\r\nTo: c@d\r\n\r\n%s\r\n" % (arg, arg)
        typ, _ = imap.append("INBOX", None, None, msg.encode())
        print("appended" if typ == "OK" else "append " + typ, flush=True)
    elif step == "list":
        imap.noop()
        typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = [part[1].decode().strip().split(": ", 1)[-1] for part in data if isinstance(part, tuple)]
        print("%d: %s" % (len(subjects), " ".join(subjects)), flush=True)
    elif step == "idle":
        tag = imap._new_tag()
        imap.send(tag + b" IDLE\r\n")
        line = imap.readline()
        print("idling" if line.startswith(b"+") else "idle: " + line.decode().strip(), flush=True)
        imap.sock.settimeout(10)
        while not line.endswith(b" EXISTS\r\n"):
            line = imap.readline()
        print(line.decode().strip()[2:], flush=True)
        imap.sock.settimeout(None)
        imap.send(b"DONE\r\n")
        while not imap.readline().startswith(tag):
            pass
    elif step == "body":
        typ, data = imap.fetch(arg, "(BODY[TEXT])")
        print(data[0][1].decode().strip(), flush=True)
imap.logout()
print("bye", flush=True)
