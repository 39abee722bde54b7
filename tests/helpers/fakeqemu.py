#!/usr/bin/python3
"""A stand-in for qemu-system-x86_64 (vmhostd --qemu), for tests of what a
QEMU taken over by its guest can do to the daemon.  It takes the listening
QMP, serial and console sockets vmhostd hands QEMU (-chardev
socket,id=...,fd=N,server=on,wait=off), accepts the daemon on each and
speaks QMP.  What it does then is chosen by the guest's command line
(-append), where a test puts fakeqemu=MODE:

  flood   answer the handshake, then write QMP lines as fast as the socket
          takes them (junk objects and events), and keep answering
  escape  fail query-status with an error full of terminal escapes

system_powerdown or SIGTERM ends it (status 0)."""
import json
import os
import re
import signal
import socket
import sys
import threading
import time

args = sys.argv[1:]
fds, mode = {}, ""
for i, a in enumerate(args):
    if a == "-chardev":
        m = re.match(r"socket,id=(\w+),fd=(\d+)", args[i + 1])
        if m:
            fds[m.group(1)] = int(m.group(2))
    if a == "-append":
        m = re.search(r"fakeqemu=(\w+)", args[i + 1])
        mode = m.group(1) if m else ""

signal.signal(signal.SIGTERM, lambda *a: os._exit(0))


def accept(name):
    ls = socket.socket(fileno=fds[name])
    conn, _ = ls.accept()
    return conn


qmp = accept("qmp")
held = [accept(n) for n in ("serial0", "hvc0") if n in fds]
lock = threading.Lock()


def send(obj):
    data = (json.dumps(obj) + "\n").encode()
    with lock:
        qmp.sendall(data)


def flood():
    junk = b'{}\n{"event": "FLOOD", "data": {}, "timestamp": {"seconds": 0}}\n' * 256
    while True:
        with lock:
            qmp.sendall(junk)


send({"QMP": {"version": {}, "capabilities": []}})
buf = b""
while True:
    data = qmp.recv(65536)
    if not data:
        os._exit(0)
    buf += data
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        try:
            cmd = json.loads(line)
        except ValueError:
            continue
        ex, cid = cmd.get("execute"), cmd.get("id")
        if ex == "query-status" and mode == "escape":
            send({"error": {"class": "GenericError",
                            "desc": "\x1b]0;owned\x07\x1b[2J\x1b[31mgone\x1b[0m\x9b1m"},
                  "id": cid})
            continue
        if ex == "query-status":
            send({"return": {"status": "running", "running": True}, "id": cid})
            if mode == "flood":
                threading.Thread(target=flood, daemon=True).start()
            continue
        if ex == "system_powerdown":
            send({"return": {}, "id": cid})
            time.sleep(0.1)
            os._exit(0)
        send({"return": {}, "id": cid})
