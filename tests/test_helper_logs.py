"""QEMU's and virtiofsd's stdout and stderr (issue 6, item 3;
docs/security.md): pipes the daemon drains into STATE/vms/NAME/qemu.log
and virtiofsd.log, capped like serial.log with one older generation.  The
writer's cap and per-wake-up read budget are unit-tested in
src/daemon/test_proto.c (test_pipe_log); here, the plumbing with real
QEMU and virtiofsd."""
import os
import signal

import pytest

from helpers.daemon import Daemon, cmdline, descendants

CAP = 1024 * 1024          # SERIAL_LOG_CAP


@pytest.fixture
def daemon(tmp_path, vmhostd_bin, guest_dir):
    with Daemon.serving(tmp_path) as d:
        yield d


def sigterm_qemu(d, name):
    """QEMU answers SIGTERM with a line on stderr, then exits 0."""
    os.kill(d.record(name)["pid"], signal.SIGTERM)
    d.wait_state(name, ("stopped", "failed"), 60)
    d.assert_clean(name)


def test_qemu_output_goes_through_capped_log(daemon):
    d = daemon
    home = d.root.data_dir("home")
    d.guest("lg", shares={"home": home})
    r = d.vm("start", "lg")
    assert r.returncode == 0, r.stderr + d.stderr()
    vmdir = d.state / "vms" / "lg"

    # Neither helper holds a file it could grow: stdout and stderr are pipes.
    qemu = d.record("lg")["pid"]
    fsds = [p for p in descendants(d.proc.pid) if "virtiofsd" in cmdline(p)]
    assert fsds
    for pid in [qemu] + fsds:
        for fd in (1, 2):
            assert os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:"), (pid, fd)
    assert (vmdir / "virtiofsd.log").exists()

    sigterm_qemu(d, "lg")
    # QEMU is pid 1 of its own pid namespace (its jail): our pid means
    # nothing there, so it does not name the sender.
    line = "qemu-system-x86_64: terminating on signal 15\n"
    assert line in (vmdir / "qemu.log").read_text()
    # The daemon's own lines about the VM stay in its log, QEMU's not there.
    assert "vm lg: QEMU exited with status 0" in d.stderr()
    assert line not in d.stderr()

    # A full qemu.log moves to qemu.log.1 on QEMU's next line.
    with open(vmdir / "qemu.log", "ab") as f:
        f.truncate(CAP)
    old = (vmdir / "qemu.log").read_bytes()
    r = d.vm("start", "lg")
    assert r.returncode == 0, r.stderr + d.stderr()
    sigterm_qemu(d, "lg")
    assert (vmdir / "qemu.log.1").read_bytes() == old
    new = (vmdir / "qemu.log").read_text()
    assert line in new and len(new) < 1000
