"""What a user does at a terminal, with real guests under the daemon
(issue 15, item 5): `vm console` on a real terminal (tmux: raw mode, keys
reach the guest, Ctrl-] detaches and restores the terminal, the replay on
attach); `vm log -f` across a start and a restart; Spectrum's vm-start,
vm-stop and vm-console names; `vm stop` timing out on a guest that
ignores the power button, then killing QEMU."""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time

import pytest

from helpers.daemon import READY, VM, Daemon, wait_until


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, vm_bin, vmhostd_bin, guest_dir):
    with Daemon.serving(tmp_path_factory.mktemp("session")) as d:
        yield d


def boot(d, name):
    d.guest(name)
    r = d.vm("start", name)
    assert r.returncode == 0, r.stderr + d.stderr()
    d.wait_serial(name, READY)


class Tmux:
    """A private tmux server (its own socket) with one pane."""

    def __init__(self, command, env):
        self.sock = f"vmh-test-{os.getpid()}-{time.monotonic_ns()}"
        envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", "new-session", "-d",
                        "-s", "t", "-x", "160", "-y", "50",
                        f"env {envs} {command}; echo console-exit-$?; exec sleep 3600"],
                       check=True, timeout=30)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.sock, *args], check=True,
                              capture_output=True, text=True, timeout=30).stdout

    def screen(self):
        return self.tmux("capture-pane", "-p", "-J", "-t", "t", "-S", "-1000")

    def wait(self, text, timeout=60):
        return wait_until(lambda: text in self.screen(), timeout,
                          f"{text!r} on the terminal") and self.screen()

    def keys(self, *keys, literal=False):
        self.tmux("send-keys", "-t", "t", *(["-l"] if literal else []), *keys)

    def tty_modes(self):
        tty = self.tmux("display-message", "-p", "-t", "t", "#{pane_tty}").strip()
        out = subprocess.run(["stty", "-F", tty, "-a"], check=True, capture_output=True,
                             text=True).stdout
        return set(out.split())

    def close(self):
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True)


def test_console_on_a_terminal(daemon):
    d = daemon
    boot(d, "tt")
    # Output from before the attach, to be replayed to the new viewer.
    with d.console("tt") as con:
        assert con.run("echo replay-$((6*7))") == "replay-42"
    term = Tmux(f"{VM} console tt", {"VMHOST_STATE_DIR": str(d.state)})
    try:
        screen = term.wait("Connected to tt; detach with Ctrl-]")
        term.wait("replay-42")
        # Raw mode while attached: no local echo, no line editing, and
        # ^C is a byte for the guest, not a signal for vm.
        modes = term.tty_modes()
        assert {"-icanon", "-echo", "-isig"} <= modes, modes
        term.keys("echo tty-$((6*7))", literal=True)
        term.keys("Enter")
        term.wait("tty-42")
        term.keys("sleep 300", "Enter")
        term.wait("sleep 300")
        term.keys("C-c")
        # The guest's tty drops what was typed ahead of ^C: wait for the
        # shell's next prompt.
        wait_until(lambda: "^C" in term.screen() and
                   term.screen().rstrip().splitlines()[-1].endswith("#"), 60,
                   "the prompt after ^C")
        term.keys("echo alive-$((2*3))", literal=True)
        term.keys("Enter")
        screen = term.wait("alive-6")
        assert "console-exit" not in screen
        # Ctrl-] detaches: vm exits 0 and gives the terminal back as it was.
        term.keys("C-]")
        term.wait("console-exit-0")
        modes = term.tty_modes()
        assert {"icanon", "echo", "isig"} <= modes, modes
        # The guest shell is still there for the next viewer.
        with d.console("tt") as con:
            assert con.run("echo again-$((3*3))") == "again-9"
    finally:
        term.close()
        d.vm("stop", "--force", "tt")


def test_console_gives_the_terminal_back(daemon):
    """However the session ends without Ctrl-]: the VM stops under it, or
    vm is told to terminate; either way the terminal is as it was."""
    d = daemon
    boot(d, "tb")
    env = {"VMHOST_STATE_DIR": str(d.state)}
    term = Tmux(f"{VM} console tb", env)
    try:
        term.wait("Connected to tb")
        assert "-icanon" in term.tty_modes()
        assert d.vm("stop", "--force", "tb").returncode == 0
        screen = term.wait("console-exit-")
        assert "console-exit-0" in screen and "Detached from tb" in screen, screen
        assert {"icanon", "echo", "isig"} <= term.tty_modes()
    finally:
        term.close()
    assert d.vm("start", "tb").returncode == 0
    d.wait_serial("tb", READY)
    term = Tmux(f"{VM} console tb", env)
    try:
        term.wait("Connected to tb")
        assert "-icanon" in term.tty_modes()
        pids = subprocess.run(["pgrep", "-f", f"^{VM} console tb$"], capture_output=True,
                              text=True).stdout.split()
        assert len(pids) == 1, pids
        os.kill(int(pids[0]), signal.SIGTERM)
        term.wait("console-exit-")
        assert {"icanon", "echo", "isig"} <= term.tty_modes(), "left in raw mode"
    finally:
        term.close()
        d.vm("stop", "--force", "tb")


def test_log_follow_across_start_and_restart(daemon):
    """Following a VM that has not run yet: the first boot, what the
    guest writes to its serial port, and a second boot after a restart,
    all on one `vm log -f`."""
    d = daemon
    d.guest("lf")
    follow = subprocess.Popen([str(VM), "log", "-f", "lf"], env=d.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.set_blocking(follow.stdout.fileno(), False)
    seen = bytearray()

    def shows(text, count=1):
        data = follow.stdout.read()
        if data:
            seen.extend(data)
        assert follow.poll() is None, follow.stderr.read()
        return seen.count(text.encode()) >= count

    try:
        # Attached before the VM ever ran (no serial.log yet).
        r = d.vm("start", "lf")
        assert r.returncode == 0, r.stderr
        wait_until(lambda: shows(READY), 120, "the first boot through vm log -f")
        with d.console("lf") as con:
            con.run("echo follow-$((3*3)) > /dev/ttyS0")
        wait_until(lambda: shows("follow-9"), 30, "the guest's serial line")
        assert d.vm("stop", "--force", "lf").returncode == 0
        assert d.vm("start", "lf").returncode == 0
        wait_until(lambda: shows(READY, 2), 120, "the second boot through vm log -f")
        assert seen.count(b"Linux version") >= 2
    finally:
        follow.kill()
        follow.wait()
        d.vm("stop", "--force", "lf")


def follower(d, name):
    """A raw `log -f` request; (socket, the daemon's reply)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(str(d.control))
    s.sendall(json.dumps({"op": "log", "name": name, "follow": True}).encode() + b"\n")
    line = b""
    while not line.endswith(b"\n"):
        data = s.recv(1)
        assert data, "closed before the reply"
        line += data
    return s, json.loads(line)


def test_log_follow_slots_are_given_back(daemon):
    """16 followers per VM; one more is refused, and a follower that hangs
    up gives its slot back."""
    d = daemon
    d.guest("lg")
    socks = []
    try:
        for i in range(16):
            s, reply = follower(d, "lg")
            socks.append(s)
            assert reply == {"ok": True}, (i, reply)
        s, reply = follower(d, "lg")
        s.close()
        assert reply["ok"] is False and "too many log followers" in reply["error"]
        socks.pop().close()

        def accepted():
            s, reply = follower(d, "lg")
            if reply.get("ok"):
                socks.append(s)
                return True
            s.close()
            return False
        wait_until(accepted, 30, "the freed slot")
    finally:
        for s in socks:
            s.close()
    r = d.vm("log", "lg")
    assert r.returncode == 1 and "no serial log yet" in r.stderr


def test_spectrum_names(daemon, tmp_path):
    d = daemon
    d.guest("al")
    names = {}
    for alias in ("vm-start", "vm-stop", "vm-console", "lsvm"):
        names[alias] = tmp_path / alias
        names[alias].symlink_to(VM)

    def run(alias, *args, **kw):
        return subprocess.run([str(names[alias]), *args], env=d.env(), capture_output=True,
                              text=True, timeout=120, **kw)

    r = run("vm-start", "al")
    assert r.returncode == 0 and r.stdout.startswith("al: running (pid "), r.stderr
    d.wait_serial("al", READY)
    assert re.search(r"^al\s+running", run("lsvm").stdout, re.M)
    r = run("vm-console", "al", input="echo alias-$((4*4))\n")
    assert r.returncode == 0 and "alias-16" in r.stdout, r.stderr
    r = run("vm-stop", "--timeout", "60", "al")
    assert r.returncode == 0 and r.stdout.startswith("al: stopped"), r.stdout + r.stderr
    assert d.record("al")["reason"] == "powered off by vm stop"
    # Usage errors name the verb the alias stands for.
    r = run("vm-stop")
    assert r.returncode == 2 and "usage: vm stop" in r.stderr
    d.assert_clean("al")


def test_stop_times_out_then_kills(daemon):
    """A guest that ignores the power button: `vm stop --timeout 3` waits
    the 3 s with QEMU alive, then kills it and says so."""
    d = daemon
    boot(d, "st")
    with d.console("st") as con:
        con.run("kill $(pidof acpid); while pidof acpid; do sleep 0.1; done")
        assert con.run("pidof acpid || echo none") == "none"
    pid = d.record("st")["pid"]
    t0 = time.monotonic()
    stop = subprocess.Popen([str(VM), "stop", "--timeout", "3", "st"], env=d.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 120, "QEMU gone")
    gone = time.monotonic() - t0
    out, err = stop.communicate(timeout=60)
    assert stop.returncode == 0, err
    assert "forced off: the guest did not power off within 3 s" in out, out
    assert gone >= 3, f"QEMU gone after {gone:.1f} s, inside the 3 s timeout"
    rec = d.record("st")
    assert rec["state"] == "stopped" and rec["pid"] is None
    assert rec["reason"] == "forced off: the guest did not power off within 3 s"
    assert "powering off" not in d.serial_log("st")   # the guest never shut down
    d.assert_clean("st")
