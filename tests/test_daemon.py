"""vmhostd against real QEMU (TCG here) and a real guest.

One daemon is shared by the module; each test leaves its VMs stopped and
checks that nothing (QEMU, virtiofsd, sockets) is left behind."""
import json
import os
import signal
import socket
import subprocess

import pytest

from helpers.daemon import READY, VMHOSTD, Daemon, descendants, wait_until


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, vm_bin, vmhostd_bin):
    assert (Daemon.__init__ and (vmhostd_bin.parent / "guest" / "vmlinux").exists()), \
        "build/guest/vmlinux missing: run make guest"
    with Daemon.serving(tmp_path_factory.mktemp("daemon")) as d:
        yield d


@pytest.fixture(scope="module")
def home(daemon):
    h = daemon.root.data_dir("home")
    (h / "hello.txt").write_text("hello from the host\n")
    return h


@pytest.fixture(scope="module")
def app(daemon, home):
    """One booted VM with two disks and a share, shared by the read-only
    checks below."""
    daemon.guest("app", shares={"home": home}, disks=2)
    r = daemon.vm("start", "app")
    assert r.returncode == 0, r.stderr + daemon.stderr()
    daemon.wait_serial("app", READY)
    yield "app"
    if daemon.record("app")["state"] in ("running", "starting", "stopping"):
        daemon.vm("stop", "--force", "app")


def test_start_reports_running(daemon, app):
    rec = daemon.record(app)
    assert rec["state"] == "running"
    assert isinstance(rec["pid"], int) and os.path.exists(f"/proc/{rec['pid']}")
    assert rec["since"] and rec["reason"] is None
    assert "accel tcg" in daemon.stderr()


def test_serial_log_has_kernel_and_init(daemon, app):
    log = daemon.serial_log(app)
    assert "Linux version" in log
    assert READY in log


def test_console_answers(daemon, app):
    with daemon.console(app) as con:
        assert con.reply == {"ok": True}
        assert con.run("echo $((6*7))") == "42"


def test_two_viewers_see_output(daemon, app):
    with daemon.console(app) as a, daemon.console(app) as b:
        a.buf = b.buf = b""
        a.sock.sendall(b"echo both-$((3*3))\n")
        a.read_until(b"both-9", 30)
        b.read_until(b"both-9", 30)


def test_input_of_a_viewer_that_hangs_up_at_once(daemon, app):
    """Typed, then closed before the guest's echo came back: a send to
    the viewer fails first, and its input must still reach the guest."""
    for i in range(30):
        with daemon.console(app) as con:
            con.sock.sendall(f"echo {i} >>/tmp/typed\n".encode())
    with daemon.console(app) as con:
        assert wait_until(lambda: con.run("wc -l </tmp/typed") == "30", 30,
                          "30 lines typed by 30 viewers")


def test_disks_are_virtio(daemon, app):
    with daemon.console(app) as con:
        blocks = con.run("ls /sys/block").split()
    assert "vda" in blocks and "vdb" in blocks


def test_share_both_ways(daemon, app, home):
    with daemon.console(app) as con:
        assert con.run("cat /run/virtiofs/home/hello.txt") == "hello from the host"
        con.run("echo written-by-guest > /run/virtiofs/home/from-guest.txt; sync")
    assert (home / "from-guest.txt").read_text() == "written-by-guest\n"


def test_info_describes_devices(daemon, app):
    info = daemon.request({"op": "info", "name": app})["vm"]
    assert info["state"] == "running" and info["accel"] == "tcg"
    assert [d["guest"] for d in info["config"]["disks"]] == ["/dev/vda", "/dev/vdb"]
    assert info["config"]["shares"][0]["tag"] == "home"


def test_start_twice_is_refused(daemon, app):
    pid = daemon.record(app)["pid"]
    r = daemon.vm("start", app)
    assert r.returncode == 1 and "already running" in r.stderr
    assert daemon.record(app)["pid"] == pid


def test_stop_leaves_nothing(daemon, app):
    r = daemon.vm("stop", app, "--timeout", "30")
    assert r.returncode == 0, r.stderr
    rec = daemon.record(app)
    assert rec["state"] == "stopped" and rec["pid"] is None
    assert "powered off" in rec["reason"]
    daemon.assert_clean(app)
    r = daemon.vm("stop", app)
    assert r.returncode == 1 and "not running" in r.stderr


def test_guest_poweroff_is_noticed(daemon, home):
    daemon.guest("pow", shares={"home": home})
    assert daemon.vm("start", "pow").returncode == 0
    daemon.wait_serial("pow", READY)
    with daemon.console("pow") as con:
        con.sock.sendall(b"poweroff -f\n")      # and hang up at once
    rec = daemon.wait_state("pow", ("stopped", "failed"), 60)
    assert rec["state"] == "stopped" and rec["reason"] == "guest powered off"
    wait_until(lambda: not daemon.vm_processes(), 10, "children gone")
    daemon.assert_clean("pow")


def test_kill9_is_failed(daemon, home):
    daemon.guest("k9", shares={"home": home})
    assert daemon.vm("start", "k9").returncode == 0
    os.kill(daemon.record("k9")["pid"], signal.SIGKILL)
    rec = daemon.wait_state("k9", ("failed", "stopped"), 30)
    assert rec["state"] == "failed" and rec["reason"] == "QEMU killed by signal 9"
    wait_until(lambda: not daemon.vm_processes(), 10, "virtiofsd gone")
    daemon.assert_clean("k9")
    # A failed VM starts again.
    assert daemon.vm("start", "k9").returncode == 0
    assert daemon.vm("stop", "--force", "k9").returncode == 0
    assert daemon.record("k9")["state"] == "stopped"
    daemon.assert_clean("k9")


def test_bad_requests_change_nothing(daemon):
    daemon.root.vm("broken", disks=())       # fake kernel, no disk
    before = daemon.request({"op": "list"})
    r = daemon.vm("start", "nosuchvm")
    assert r.returncode == 1 and "unknown VM nosuchvm" in r.stderr
    r = daemon.vm("start", "broken")
    assert r.returncode == 1 and "invalid configuration" in r.stderr
    assert "broken: blk" in r.stderr or "broken: " in r.stderr.splitlines()[0]
    r = daemon.vm("stop", "broken")
    assert r.returncode == 1 and "not running" in r.stderr
    for raw in (b"{not json\n", b"[1,2]\n", b'{"op": 7}\n', b'{"op":"start"}\n',
                b'{"op":"start","name":"../etc"}\n', b'{"op":"fly"}\n',
                b'{"op":"list"', b"x" * 70000 + b"\n"):
        rep = daemon.request(None, raw=raw)
        assert rep["ok"] is False and rep["error"], raw[:40]
    assert daemon.request({"op": "list"}) == before
    assert daemon.proc.poll() is None
    daemon.assert_clean()


def test_stalled_client_does_not_block(daemon):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(daemon.control))
        s.sendall(b'{"op": "li')              # never finished
        assert daemon.request({"op": "list"})["ok"] is True


def test_second_daemon_refused(daemon):
    r = subprocess.run([str(VMHOSTD), "--config-root", str(daemon.root.path),
                        "--state-dir", str(daemon.state), "--foreground"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "another vmhostd" in r.stderr


def test_control_socket_private(daemon):
    assert (daemon.control.stat().st_mode & 0o777) == 0o600


def test_detached_daemon_listens_on_return(tmp_path):
    d = Daemon(tmp_path)
    r = subprocess.run([str(VMHOSTD), "--config-root", str(d.root.path),
                        "--state-dir", str(d.state), "--accel", "tcg", *d.args],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    # Listening at once: no retry here.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(d.control))
        creds = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    pid = int.from_bytes(creds[:4], "little")
    try:
        assert d.request({"op": "list"}) == {"ok": True, "vms": []}
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 10, "vmhostd exit")
        d.remove_cgroup_parent()
    assert not d.control.exists()
    assert "listening on" in (d.state / "vmhostd.log").read_text()
    subprocess.run(["rm", "-rf", str(d.state)])
