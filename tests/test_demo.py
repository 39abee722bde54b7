"""The README's first command: the demo tree boots under vmhostd, a shell
answers on appvm's console, and appvm reaches a service on the host's
loopback through netvm (issue 5's done-when); gfxvm's Wayland window is
on the demo's headless weston, and in the screenshot the demo saves
(issue 13's)."""
import os
import re
import signal
import subprocess
import tempfile

import pytest

from helpers.web import loopback_server
from helpers.daemon import BUILD, READY, Console, descendants, wait_until
from helpers.qemu import cgroup_dirs, remove_cgroup_parent
from helpers.wayland import stop_demo_weston

DEMO = BUILD / "demo" / "svc" / "data"
WESTON_PID = BUILD / "demo" / "wayland" / "weston.pid"
SCREENSHOT = BUILD / "demo" / "screenshot.png"


@pytest.fixture
def demo(tmp_path):
    if not DEMO.is_dir():
        pytest.fail("build/demo missing: run make guest")
    state = tempfile.mkdtemp(prefix="vmh-demo-", dir="/tmp")
    env = dict(os.environ, VMHOST_STATE_DIR=state)
    # A host without a compositor: the demo starts its own.
    env.pop("WAYLAND_DISPLAY", None)
    r = subprocess.run(["scripts/demo.sh", str(BUILD), state], env=env,
                       capture_output=True, text=True, timeout=300,
                       cwd=BUILD.parent)
    pid = int(open(f"{state}/lock").read().split()[0])
    try:
        assert r.returncode == 0, r.stdout + r.stderr
        yield state, r.stdout
    finally:
        stop_demo_weston(BUILD)
        kids = descendants(pid)
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 60, "vmhostd to exit")
        wait_until(lambda: not [k for k in kids if os.path.exists(f"/proc/{k}")],
                   30, "the demo's QEMUs and virtiofsds to exit")
        subprocess.run(["rm", "-rf", state])
        # demo.sh's cgroup parent: its VMs' cgroups are gone, and the
        # parent the daemon could not remove goes too.
        remove_cgroup_parent("vmhost-demo")


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


def test_demo_screenshot_shows_the_guest_window(demo):
    """gfxvm's weston-simple-shm, through vmhost-vsock and the waypipe
    host end, drawn by the demo's weston: the screenshot has its colours
    (weston's own background, panel and text are grey), and the scene
    graph has its window, whose client runs in gfxvm's cgroup."""
    from PIL import Image
    from helpers.wayland import colourful_pixels
    state, out = demo
    assert f"a screenshot of it with gfxvm's window is in\n\n  {SCREENSHOT}" in out, out
    img = Image.open(SCREENSHOT).convert("RGB")
    n = colourful_pixels(img)
    print(f"demo screenshot: {img.size[0]}x{img.size[1]}, {n} coloured pixels")
    assert n > 250 * 250 // 4, n
    env = dict(os.environ, XDG_RUNTIME_DIR=str(WESTON_PID.parent),
               WAYLAND_DISPLAY="wayland-demo")
    scene = subprocess.run(["timeout", "10", "weston-debug", "scene-graph"], env=env,
                           capture_output=True, text=True).stdout
    pids = [int(p) for p in re.findall(r"PID (\d+), .*top-level window 'simple-shm'", scene)]
    procs = [int(p) for c in cgroup_dirs("vmhost-demo") if (c / "gfxvm").is_dir()
             for p in (c / "gfxvm" / "cgroup.procs").read_text().split()]
    assert pids and set(pids) <= set(procs), (pids, procs)
