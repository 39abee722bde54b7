"""Faults (issue 6, item 4), each against real QEMU and the guest kit: the
host keeps working, nothing is leaked (processes, sockets, records) and
nothing is lost (the daemon's state, the address table).

How each fault is handled is documented in docs/security.md ("Faults")."""
import hashlib
import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

from helpers.daemon import READY, VMHOSTD, Daemon, cmdline, descendants, wait_until
from helpers.qemu import kill_cgroup_tree


def qemu_pids(d, name):
    """Every QEMU running d's VM called name: those in its cgroup (other
    daemons on this host may run a VM of that name too)."""
    out = set()
    for cg in d.cgroups(name):
        for pid in (cg / "cgroup.procs").read_text().split():
            if f"guest={name}," in cmdline(pid) and "qemu-system" in cmdline(pid):
                out.add(int(pid))
    return sorted(out)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def fsd_pids(d):
    return [p for p in descendants(d.proc.pid) if "virtiofsd" in cmdline(p)]


def no_record(d, name):
    rundir = d.state / "run" / name
    assert not (rundir / "record").exists(), "run record left behind"
    for dd in (d.state / "vms" / name, rundir):
        assert not [p.name for p in dd.glob("*") if p.is_socket()]


@pytest.fixture
def daemon(tmp_path, vmhostd_bin, guest_dir):
    with Daemon.serving(tmp_path) as d:
        yield d


def test_helper_kill9(daemon):
    """kill -9 of a virtiofsd fails its VM (QEMU stopped, reason says
    which share); kill -9 of QEMU fails it too (virtiofsd stopped)."""
    d = daemon
    home = d.root.data_dir("home")
    d.guest("hk", shares={"home": home})
    assert d.vm("start", "hk").returncode == 0, d.stderr()
    qemu = d.record("hk")["pid"]
    (fsd,) = fsd_pids(d)[:1]
    os.kill(fsd, signal.SIGKILL)
    rec = d.wait_state("hk", ("failed", "stopped"), 30)
    assert rec["state"] == "failed"
    assert rec["reason"] == "virtiofsd for share home killed by signal 9"
    wait_until(lambda: not alive(qemu), 10, "QEMU gone")
    wait_until(lambda: not d.vm_processes(), 10, "children gone")
    d.assert_clean("hk")
    no_record(d, "hk")

    assert d.vm("start", "hk").returncode == 0, d.stderr()
    qemu = d.record("hk")["pid"]
    os.kill(qemu, signal.SIGKILL)
    rec = d.wait_state("hk", ("failed", "stopped"), 30)
    assert rec["state"] == "failed" and rec["reason"] == "QEMU killed by signal 9"
    wait_until(lambda: not d.vm_processes(), 10, "virtiofsd gone")
    d.assert_clean("hk")
    no_record(d, "hk")


def test_failed_start_leaks_nothing(daemon):
    """QEMU refusing the kernel after virtiofsd started: failed with
    QEMU's last words, virtiofsd stopped, no socket or record left."""
    d = daemon
    home = d.root.data_dir("home")
    vm = d.root.vm("badk")                 # a fake ELF kernel QEMU rejects
    vm.share("home", home)
    r = d.vm("start", "badk")
    assert r.returncode == 1 and "start failed: QEMU exited with status 1" in r.stderr
    rec = d.record("badk")
    assert rec["state"] == "failed" and rec["pid"] is None
    wait_until(lambda: not d.vm_processes(), 10, "virtiofsd gone")
    d.assert_clean("badk")
    no_record(d, "badk")

    # A sparse 2 GiB "vmlinux" passes the loader but not the gatherer,
    # before anything starts (it used to fail the copy for QEMU, after
    # virtiofsd had started).
    with open(vm.path / "vmlinux", "r+b") as f:
        f.truncate(2 << 30)
    r = d.vm("start", "badk")
    assert r.returncode == 1, r.stderr
    assert f'badk: vmlinux: "{vm.path / "vmlinux"}" is 2147483648 bytes; a kernel is at most 1073741824 bytes' in r.stderr
    assert not d.vm_processes()
    d.assert_clean("badk")
    no_record(d, "badk")


def test_state_dir_full(tmp_path, vmhostd_bin, guest_dir):
    """A full state dir: start fails with ENOSPC and leaves nothing, the
    daemon keeps serving, the address table is untouched, and once there
    is room the VM starts."""
    d = Daemon(tmp_path)
    mnt = d.state
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "vmhost-full",
                    str(mnt)], check=True)
    # The state dir inside the mount: assert_clean looks for mounts under it.
    d.state = mnt / "s"
    filler = mnt / "filler"
    try:
        d.start()
        links = d.state / "links"
        before = links.read_bytes() if links.exists() else None
        home = d.root.data_dir("home")
        d.guest("full", shares={"home": home})
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"],
                       capture_output=True)
        r = d.vm("start", "full")
        assert r.returncode == 1 and "No space left on device" in r.stderr, r.stderr
        assert d.record("full")["state"] == "failed"
        assert d.request({"op": "list"})["ok"] is True
        wait_until(lambda: not d.vm_processes(), 10, "children gone")
        d.assert_clean("full")
        no_record(d, "full")
        assert (links.read_bytes() if links.exists() else None) == before
        assert not list(d.state.glob("**/*.tmp"))

        filler.unlink()
        assert d.vm("start", "full").returncode == 0, d.stderr()
        assert d.vm("stop", "--force", "full").returncode == 0
        d.assert_clean("full")
    finally:
        if filler.exists():
            filler.unlink()
        d.stop()
        subprocess.run(["umount", str(mnt)])
        shutil.rmtree(mnt, ignore_errors=True)
    assert str(mnt) not in pathlib.Path("/proc/mounts").read_text()


def test_vm_dir_changed_then_removed(daemon):
    """The running VM keeps what it started with; `vm info` answers from
    it; the next start reads the directory again (new memory), and a
    removed directory is a clear error, not a crash."""
    d = daemon
    vm = d.guest("chg")
    assert d.vm("start", "chg").returncode == 0, d.stderr()
    vm.setting("memory", "320M")
    info = d.request({"op": "info", "name": "chg"})["vm"]
    assert info["state"] == "running" and info["config"]["memory"] == 256 << 20
    assert d.vm("stop", "--force", "chg").returncode == 0
    assert d.vm("start", "chg").returncode == 0, d.stderr()
    assert d.request({"op": "info", "name": "chg"})["vm"]["config"]["memory"] == 320 << 20
    d.wait_serial("chg", READY)
    pid = d.record("chg")["pid"]

    shutil.rmtree(vm.path)
    info = d.request({"op": "info", "name": "chg"})
    assert info["ok"] and info["vm"]["state"] == "running"
    assert info["vm"]["config"]["memory"] == 320 << 20
    with d.console("chg") as con:              # the guest still runs
        assert con.run("echo $((6*7))") == "42"
    assert d.record("chg")["pid"] == pid and alive(pid)
    assert d.vm("stop", "--force", "chg").returncode == 0
    r = d.vm("start", "chg")
    assert r.returncode == 1 and "no such VM directory" in r.stderr
    r = d.vm("info", "chg")
    assert d.proc.poll() is None
    d.assert_clean("chg")
    no_record(d, "chg")
