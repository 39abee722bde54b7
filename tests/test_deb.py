"""The Debian package (issue 15, items 1 and 6): build/vmhost_VERSION_amd64.deb
(made by `make deb`, lintian-clean) installs with dpkg -i, its programs,
man pages and unit are in place, the demo runs from the installed paths,
the s6 example supervises the installed daemon, and a purge leaves
nothing.

It installs a package system-wide, so it runs only from `make check-deb`
(VMHOST_TEST_DEB=1), which CI runs after `make check`; on a machine where
vmhost is already installed it refuses rather than replace it."""
import json
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import BUILD, ROOT
from helpers.daemon import READY, Console, descendants, wait_until
from helpers.qemu import remove_cgroup_parent
from helpers.wayland import stop_demo_weston
from helpers.web import loopback_server

pytestmark = pytest.mark.skipif(os.environ.get("VMHOST_TEST_DEB") != "1",
                                reason="installs a package system-wide: run make check-deb")

FILES = ["/usr/bin/vm", "/usr/sbin/vmhostd", "/etc/default/vmhost",
         "/lib/systemd/system/vmhostd.service", "/usr/share/bash-completion/completions/vm",
         "/usr/share/man/man1/vm.1.gz", "/usr/share/man/man1/lsvm.1.gz",
         "/usr/share/man/man8/vmhostd.8.gz", "/usr/share/man/man5/vmhost-dir.5.gz",
         "/usr/share/doc/vmhost/copyright", "/usr/share/doc/vmhost/examples/s6/vmhostd/run"]


def version():
    out = subprocess.run(["meson", "introspect", "--projectinfo", str(BUILD)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["version"]


def status(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", pkg],
                       capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


def dpkg(*args):
    """dpkg, waiting while someone else's apt or dpkg holds the lock."""
    result = {}

    def done():
        r = subprocess.run(["dpkg", *args], capture_output=True, text=True, timeout=600)
        if r.returncode != 0 and "lock" in r.stderr:
            return False
        result["r"] = r
        return True
    wait_until(done, 600, "the dpkg lock")
    return result["r"]


@pytest.fixture(scope="module")
def installed():
    deb = BUILD / f"vmhost_{version()}_amd64.deb"
    assert deb.exists(), f"{deb} missing: run make deb"
    lintian = (BUILD / "deb" / "lintian.log").read_text()
    assert not re.search(r"^[EW]: ", lintian, re.M), lintian
    assert status("vmhost") in ("", "un", "pn"), \
        "vmhost is installed on this machine: this test would replace it"
    r = dpkg("-i", str(deb))
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        assert status("vmhost") == "ii"
        yield deb
    finally:
        r = dpkg("--purge", "vmhost")
        assert r.returncode == 0, r.stdout + r.stderr
        assert status("vmhost") in ("", "un", "pn")
        left = [f for f in FILES if os.path.lexists(f)]
        assert not left, f"left after purge: {left}"


def test_installed_files(installed):
    for f in FILES:
        assert os.path.lexists(f), f
    for alias in ("lsvm", "vm-start", "vm-stop", "vm-console"):
        assert os.readlink(f"/usr/bin/{alias}") == "vm"
        r = subprocess.run([f"/usr/bin/{alias}", "--version"], capture_output=True, text=True)
        assert r.stdout == f"{alias} (vmhost) {version()}\n"
    r = subprocess.run(["/usr/sbin/vmhostd", "--version"], capture_output=True, text=True)
    assert r.stdout == f"vmhostd (vmhost) {version()}\n"
    assert "/etc/default/vmhost" in pathlib.Path("/var/lib/dpkg/info/vmhost.conffiles").read_text()
    for page in ("vm", "lsvm", "vmhostd", "vmhost-dir"):
        r = subprocess.run(["man", "-w", page], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.startswith("/usr/share/man/"), (page, r.stderr)
    # The unit as systemd reads it (no systemd needs to run for this).
    r = subprocess.run(["systemd-analyze", "verify", "vmhostd.service"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                        "/lib/systemd/system/vmhostd.service"], capture_output=True, text=True,
                       timeout=60)
    exposure = re.search(r"Overall exposure level for vmhostd.service: ([0-9.]+)", r.stdout)
    assert exposure, r.stdout + r.stderr
    (BUILD / "deb" / "systemd-security.txt").write_text(r.stdout)


def stop_daemon(state):
    pid = int(pathlib.Path(state, "lock").read_text().split()[0])
    kids = descendants(pid)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 90, "vmhostd to exit")
    wait_until(lambda: not [k for k in kids if os.path.exists(f"/proc/{k}")], 30,
               "the VMs' QEMUs and virtiofsds to exit")


def test_demo_from_installed_paths(installed, tmp_path):
    demo = BUILD / "demo" / "svc" / "data"
    assert demo.is_dir(), "build/demo missing: run make guest"
    state = tempfile.mkdtemp(prefix="vmh-deb-", dir="/tmp")
    env = dict(os.environ, VMHOST_STATE_DIR=state, VMHOST_BIN="/usr/bin:/usr/sbin",
               VMHOSTD_OPTIONS=f"--link-prefix d{os.getpid() % 0xffff:04x}-")
    env.pop("WAYLAND_DISPLAY", None)  # the demo starts its own weston
    with loopback_server(tmp_path, {"hello.txt": "hello, installed vmhost\n"}) as port:
        r = subprocess.run([str(ROOT / "scripts" / "demo.sh"), str(BUILD), state], env=env,
                           capture_output=True, text=True, timeout=300)
        try:
            assert r.returncode == 0, r.stdout + r.stderr
            assert "/usr/bin/vm console appvm" in r.stdout
            pid = int(pathlib.Path(state, "lock").read_text().split()[0])
            assert os.readlink(f"/proc/{pid}/exe") == "/usr/sbin/vmhostd"
            for vm in ("netvm", "appvm"):
                wait_until(lambda: READY in pathlib.Path(state, "vms", vm, "serial.log")
                           .read_text(errors="replace"), 120, f"{vm} ready")
            with Console(f"{state}/control", "appvm") as con:
                out = con.run("i=0; until wget -qO- http://10.0.2.2:%d/hello.txt; do "
                              "i=$((i+1)); [ $i -ge 60 ] && break; sleep 1; done" % port,
                              timeout=150)
            assert "hello, installed vmhost" in out
        finally:
            stop_daemon(state)
            stop_demo_weston(BUILD)
            subprocess.run(["rm", "-rf", state])
            remove_cgroup_parent("vmhost-demo")


def test_s6_example_supervises_the_installed_daemon(installed, tmp_path):
    service = tmp_path / "vmhostd"
    subprocess.run(["cp", "-a", "/usr/share/doc/vmhost/examples/s6/vmhostd", str(service)],
                   check=True)
    state = pathlib.Path(tempfile.mkdtemp(prefix="vmh-s6-", dir="/tmp"))
    cgroups = f"vmhost-s6-{os.getpid()}"
    config = tmp_path / "ext" / "svc" / "data"
    (config / "idle").mkdir(parents=True)
    defaults = tmp_path / "vmhost.default"
    defaults.write_text(f"VMHOST_CONFIG_ROOT={config}\nVMHOST_STATE_DIR={state}\n"
                        f"VMHOSTD_OPTIONS='--link-prefix s{os.getpid() % 0xffff:04x}- "
                        f"--cgroup-parent {cgroups}'\n")
    log = open(tmp_path / "supervise.log", "wb")
    sup = subprocess.Popen(["s6-supervise", str(service)], stdout=log, stderr=log,
                           env=dict(os.environ, VMHOST_DEFAULTS=str(defaults)),
                           start_new_session=True)
    try:
        # s6-svwait reads supervise/status, which s6-supervise writes once
        # it runs: wait for it (or for s6-supervise to have died).
        status = service / "supervise" / "status"
        wait_until(lambda: status.exists() or sup.poll() is not None, 30,
                   "s6-supervise's status file")
        assert sup.poll() is None, (tmp_path / "supervise.log").read_text()
        # Up and ready: s6-notifyoncheck saw `vm list` answer.
        r = subprocess.run(["s6-svwait", "-U", "-t", "60000", str(service)],
                           capture_output=True, text=True, timeout=90)
        assert r.returncode == 0, r.stderr + (tmp_path / "supervise.log").read_text()
        r = subprocess.run(["/usr/bin/vm", "list", "--json"], capture_output=True, text=True,
                           env=dict(os.environ, VMHOST_STATE_DIR=str(state)))
        assert r.returncode == 0 and [v["name"] for v in json.loads(r.stdout)] == ["idle"]
        pid = int((state / "lock").read_text().split()[0])
        assert os.readlink(f"/proc/{pid}/exe") == "/usr/sbin/vmhostd"
        # Down: SIGTERM, the daemon exits and s6 does not restart it.
        subprocess.run(["s6-svc", "-d", str(service)], check=True)
        r = subprocess.run(["s6-svwait", "-D", "-t", "60000", str(service)],
                           capture_output=True, text=True, timeout=90)
        assert r.returncode == 0, r.stderr
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 30, "vmhostd gone")
        assert not (state / "control").exists()
        remove_cgroup_parent(cgroups)
    finally:
        subprocess.run(["s6-svc", "-xd", str(service)], capture_output=True)
        try:
            sup.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(sup.pid, signal.SIGKILL)
            sup.wait()
        log.close()
        subprocess.run(["rm", "-rf", str(state)])
