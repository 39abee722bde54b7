"""vmhostd v2 (issue 12) against real QEMU and the guest kit: the engine
may die, the monitor may re-execute itself (SIGHUP) and a new monitor may
adopt what a dead one left, and no VM notices.

A guest prints a counter on its serial port every 100 ms; what the daemon
logs of it shows what a restart loses: nothing for the engine or a
re-exec (the serial socket stays open in the monitor), and for a full
crash exactly the lines QEMU wrote while nobody was connected (it drops
output then; measured and printed)."""
import os
import re
import signal
import subprocess
import time

import pytest

from helpers.daemon import READY, Daemon, cmdline, wait_until

# In the guest: a counter on the serial port (ttyS0, which the host logs).
COUNTER = ("(i=0; while :; do echo count=$i > /dev/ttyS0; i=$((i+1)); "
           "sleep 0.1; done) </dev/null >/dev/null 2>&1 & :")


def counts(d, name):
    return [int(m) for m in re.findall(r"count=(\d+)\r?\n", d.serial_log(name))]


def start_counter(d, name):
    with d.console(name) as con:
        con.run(COUNTER)
    wait_until(lambda: len(counts(d, name)) >= 5, 60, "the counter on serial")


def wait_more(d, name, after, n=15):
    """Until the counter is n past after."""
    wait_until(lambda: (c := counts(d, name)) and c[-1] >= after + n, 120,
               f"{name}'s counter past {after + n}")


def gaps(values):
    """Counter values missing between the first and the last seen."""
    seen = set(values)
    return [v for v in range(values[0], values[-1] + 1) if v not in seen]


def list_answers_within(d, seconds):
    """Time until `list` answers on the socket again, or fail."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            if d.request({"op": "list"}, timeout=seconds)["ok"]:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"list not answered within {seconds} s")


@pytest.fixture
def d(tmp_path, vmhostd_bin, guest_dir):
    with Daemon.serving(tmp_path) as d:
        yield d


def booted(d, name, **kw):
    d.guest(name, **kw)
    r = d.vm("start", name)
    assert r.returncode == 0, r.stderr + d.stderr()[-2000:]
    d.wait_serial(name, READY)
    return d.record(name)["pid"]


def test_engine_kill9_loses_nothing(d):
    """kill -9 of the engine: the monitor starts a new one within a second
    or two, the VM keeps its QEMU, a console viewer can reconnect, and
    serial.log has every counter value."""
    qemu = booted(d, "cnt")
    start_counter(d, "cnt")
    viewer = d.console("cnt")
    old = d.engine_pid()
    seccomp = open(f"/proc/{old}/status").read()
    assert "Seccomp:\t2" in seccomp and "NoNewPrivs:\t1" in seccomp
    last = counts(d, "cnt")[-1]
    os.kill(old, signal.SIGKILL)
    took = list_answers_within(d, 3)
    print(f"engine restart: list answered again {took * 1000:.0f} ms after kill -9")
    new = d.engine_pid()
    assert new and new != old
    rec = d.record("cnt")
    assert rec["state"] == "running" and rec["pid"] == qemu
    # The old viewer's connection went with the old engine; a new one works.
    viewer.sock.settimeout(10)
    while viewer.sock.recv(65536):
        pass
    viewer.close()
    with d.console("cnt") as con:
        assert con.run("echo $((6*7))") == "42"
    wait_more(d, "cnt", last)
    c = counts(d, "cnt")
    assert not gaps(c), f"counter values lost: {gaps(c)[:20]}"
    assert "engine killed by signal 9; starting a new one" in d.stderr()
    assert d.vm("stop", "cnt").returncode == 0
    assert d.record("cnt")["reason"] == "powered off by vm stop"


def test_sighup_reexecutes_keeping_vms(d):
    """SIGHUP: the monitor re-executes the binary on disk (same pid: exec),
    keeps the VM's QEMU and fds; nothing of the serial output is lost and
    the guest powers off through ACPI afterwards."""
    qemu = booted(d, "hup", shares={"home": d.root.data_dir("home")})
    start_counter(d, "hup")
    monitor = d.proc.pid
    old = d.engine_pid()
    last = counts(d, "hup")[-1]
    t0 = time.monotonic()
    os.kill(monitor, signal.SIGHUP)
    wait_until(lambda: (e := d.engine_pid()) and e != old, 10, "a new engine")
    took = list_answers_within(d, 3) + time.monotonic() - t0
    print(f"re-exec: list answered again {took * 1000:.0f} ms after SIGHUP")
    assert d.proc.poll() is None and d.proc.pid == monitor
    assert cmdline(monitor).startswith("vmhostd: monitor")
    rec = d.record("hup")
    assert rec["state"] == "running" and rec["pid"] == qemu
    assert "re-executing" in d.stderr() and "taken over from the previous image" in d.stderr()
    # The seccomp deny-list outlived the exec, and was not loaded twice.
    st = open(f"/proc/{monitor}/status").read()
    assert "Seccomp:\t2" in st and "Seccomp_filters:\t1" in st, st
    with d.console("hup") as con:
        assert con.run("ls /run/virtiofs/home >/dev/null && echo share-ok") == "share-ok"
    wait_more(d, "hup", last)
    c = counts(d, "hup")
    assert not gaps(c), f"counter values lost: {gaps(c)[:20]}"
    # QEMU is still the monitor's child: its exit status is known.
    assert d.vm("stop", "hup").returncode == 0
    assert d.record("hup")["reason"] == "powered off by vm stop"
    d.assert_clean("hup")


def test_full_crash_is_adopted(tmp_path, vmhostd_bin, guest_dir):
    """kill -9 of every vmhostd process (the engine follows its monitor),
    then vmhostd again with the same arguments: the VM is adopted with the
    same QEMU pid, and console, info, log and stop (ACPI) all work.  What
    the guest wrote on serial meanwhile is lost; the test says how much."""
    (tmp_path / "a").mkdir()
    a = Daemon(tmp_path / "a").start()
    b = None
    qemu = fsds = None
    try:
        qemu = booted(a, "orph", shares={"home": a.root.data_dir("home")})
        start_counter(a, "orph")
        fsds = [p for p in a.vm_processes() if "virtiofsd" in cmdline(p)]
        a.kill9()
        crash = time.monotonic()
        before = counts(a, "orph")[-1]
        time.sleep(1)          # no daemon for a measured second
        (tmp_path / "b").mkdir()
        b = Daemon(tmp_path / "b", args=a.args)   # same link prefix
        os.rmdir(b.state)
        b.root, b.state = a.root, a.state
        b.start()
        down = time.monotonic() - crash
        rec = b.record("orph")
        assert rec["state"] == "running" and rec["pid"] == qemu, rec
        assert all(os.path.exists(f"/proc/{p}") for p in [qemu] + fsds)
        assert f"vm orph: adopted: QEMU pid {qemu}" in b.stderr()
        with b.console("orph") as con:
            assert con.run("echo $((6*7))") == "42"
        info = b.request({"op": "info", "name": "orph"})["vm"]
        assert info["state"] == "running" and info["config"]["shares"][0]["tag"] == "home"
        wait_more(b, "orph", before)
        c = counts(b, "orph")
        lost = gaps(c)
        print(f"full crash: no daemon for {down:.2f} s; {len(lost)} counter lines "
              f"lost (QEMU drops serial output while nobody is connected)")
        assert lost and len(lost) <= down * 10 + 10
        log = b.vm("log", "orph")
        assert log.returncode == 0 and f"count={c[-1]}" in log.stdout
        r = b.vm("stop", "orph")
        assert r.returncode == 0, r.stderr
        assert b.record("orph")["reason"] == "powered off by vm stop"
        b.assert_clean("orph")
        wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in [qemu] + fsds),
                   10, "the adopted VM's processes to be gone")
    finally:
        for p in [qemu] + (fsds or []):
            if p and os.path.exists(f"/proc/{p}"):
                os.kill(p, signal.SIGKILL)
        if b:
            b.stop()
        else:
            a.stop()
