"""valgrind over the loader and the CLI (issue 6, item 6): `vm check` on
good and hostile trees, and the CLI verbs against a daemon along their
error paths.  Every run must end with no memory error and no leak
(definite, indirect or possible); still-reachable blocks of libc are
allowed.  The exit status is the verb's own, as without valgrind."""
import json
import os
import shutil
import subprocess

import pytest

from helpers.daemon import Daemon
from helpers.vmdirs import ConfigRoot, bzimage
import test_hostile

VALGRIND = shutil.which("valgrind")
ERROR = 99

pytestmark = pytest.mark.skipif(not VALGRIND, reason="valgrind missing: make deps")


def valgrind(vm_bin, *args, env=None, timeout=60):
    p = subprocess.run([VALGRIND, "-q", "--leak-check=full",
                        "--show-leak-kinds=definite,indirect,possible",
                        "--errors-for-leak-kinds=definite,indirect,possible",
                        f"--error-exitcode={ERROR}", str(vm_bin), *map(str, args)],
                       capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
    assert p.returncode != ERROR, p.stderr
    assert "==" not in p.stderr, p.stderr  # valgrind -q prints only problems
    return p


@pytest.fixture
def root(tmp_path):
    return ConfigRoot(tmp_path)


def test_check_good_tree(vm_bin, root):
    app = root.vm("appvm", providers=["netvm"], memory="512M", cpus="2",
                  cmdline="console=ttyS0 quiet\n")
    app.share("home", root.data_dir("home"))
    app.flag("wayland")
    root.vm("netvm", disks=(), rootfs=True, uplink="")
    for args in ([], ["--json"], ["appvm"]):
        p = valgrind(vm_bin, "check", "--config-root", root.path, *args)
        assert p.returncode == 0, p.stderr


def test_check_bad_trees(vm_bin, root):
    root.vm("cyc1", providers=["cyc2"])
    root.vm("cyc2", providers=["cyc1"])
    bad = root.vm("bad", memory="lots", cpus="0", providers=["nosuch"], cmdline="a\nb")
    bad.kernel(data=bzimage())
    (bad.path / "shared-dir").mkdir()
    root.vm("bad name")
    test_hostile.symlink_loops(root)
    test_hostile.escaping_shares(root)
    test_hostile.device_nodes(root)
    fifo = root.vm("fifo")
    (fifo.path / "vmlinux").unlink()
    os.mkfifo(fifo.path / "vmlinux")
    os.mkfifo(fifo.path / "blk" / "x.img")
    many = root.vm("many")
    for i in range(100):
        (many.path / "blk" / f"n{i}").write_bytes(b"")
        (many.path / "blk" / f"d{i}.img").write_bytes(b"")
    for args in ([], ["--json"], ["cyc1", "nosuchvm", "bad"]):
        p = valgrind(vm_bin, "check", "--config-root", root.path, *args)
        assert p.returncode == 1, p.stderr
    p = valgrind(vm_bin, "check", "--config-root", root.path / "missing")
    assert p.returncode == 1
    p = valgrind(vm_bin, "check", "--bogus")
    assert p.returncode == 2


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, vm_bin, vmhostd_bin):
    with Daemon.serving(tmp_path_factory.mktemp("valgrind")) as d:
        d.root.vm("fake")                      # valid, never booted here
        d.root.vm("broken", disks=(), cpus="x")
        yield d


@pytest.mark.parametrize("args,code,text", [
    (["list"], 0, "fake"),
    (["list", "--json"], 0, '"broken"'),
    (["info", "fake"], 0, "fake"),
    (["info", "--json", "broken"], 0, "broken"),
    (["info", "nosuch"], 1, "unknown VM nosuch"),
    (["start", "broken"], 1, "invalid configuration"),
    (["start", "nosuch"], 1, "unknown VM nosuch"),
    (["start", "bad/name"], None, None),
    (["stop", "fake"], 1, "not running"),
    (["stop", "--force", "--timeout", "5", "fake"], 1, "not running"),
    (["console", "fake"], 1, "not running"),
    (["log", "fake"], 1, "no serial log"),
    (["stop", "--timeout", "x", "fake"], 2, None),
    (["info"], 2, None),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_cli_verbs_against_daemon(vm_bin, daemon, args, code, text):
    p = valgrind(vm_bin, *args, env={"VMHOST_STATE_DIR": str(daemon.state)})
    if code is not None:
        assert p.returncode == code, p.stdout + p.stderr
    else:
        assert p.returncode in (1, 2), p.stdout + p.stderr
    if text:
        assert text in p.stdout + p.stderr
    if "--json" in args:
        json.loads(p.stdout)


def test_cli_without_daemon(vm_bin, tmp_path):
    p = valgrind(vm_bin, "list", env={"VMHOST_STATE_DIR": str(tmp_path)})
    assert p.returncode == 3
