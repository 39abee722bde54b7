"""The README's first command: the demo tree boots under vmhostd, a shell
answers on appvm's console, and appvm reaches a service on the host's
loopback through netvm (issue 5's done-when)."""
import os
import signal
import subprocess
import tempfile

import pytest

from helpers.web import loopback_server
from helpers.daemon import BUILD, READY, Console, descendants, wait_until
from helpers.qemu import cgroup_dirs

DEMO = BUILD / "demo" / "svc" / "data"


@pytest.fixture
def demo(tmp_path):
    if not DEMO.is_dir():
        pytest.fail("build/demo missing: run make guest")
    state = tempfile.mkdtemp(prefix="vmh-demo-", dir="/tmp")
    env = dict(os.environ, VMHOST_STATE_DIR=state)
    r = subprocess.run(["scripts/demo.sh", str(BUILD), state], env=env,
                       capture_output=True, text=True, timeout=180,
                       cwd=BUILD.parent)
    pid = int(open(f"{state}/lock").read().split()[0])
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        yield state, r.stdout
    finally:
        kids = descendants(pid)
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 60, "vmhostd to exit")
        wait_until(lambda: not [k for k in kids if os.path.exists(f"/proc/{k}")],
                   30, "the demo's QEMUs and virtiofsds to exit")
        subprocess.run(["rm", "-rf", state])
        # demo.sh's cgroup parent: its VMs' cgroups are gone, and the
        # parent the daemon could not remove goes too.
        for base in cgroup_dirs("vmhost-demo"):
            assert not [c for c in base.iterdir() if c.is_dir()], base
            base.rmdir()


@pytest.fixture
def web(tmp_path):
    with loopback_server(tmp_path, {"hello.txt": "hello from the host's loopback\n"}) as port:
        yield port


def test_demo_boots_and_reaches_the_host(demo, web):
    state, out = demo
    assert "appvm" in out and "netvm" in out and "running" in out
    for vm in ("netvm", "appvm"):
        wait_until(lambda: READY in open(f"{state}/vms/{vm}/serial.log",
                                         errors="replace").read(),
                   120, f"{vm} ready")
    with Console(f"{state}/control", "appvm") as con:
        assert con.run("echo $((6*7))") == "42"
        # The link and netvm's DHCP on its uplink take a moment.
        out = con.run("i=0; until wget -qO- http://10.0.2.2:%d/hello.txt; do "
                      "i=$((i+1)); [ $i -ge 60 ] && break; sleep 1; done" % web,
                      timeout=150)
    assert "hello from the host's loopback" in out
