"""`vm check`: exit codes, the "NAME: PATH: problem" lines, --json, NAME
selection and the config root default, on real directory trees."""
import json
import os
import subprocess

import pytest

from helpers.vmdirs import ConfigRoot, bzimage


def run(vm_bin, *args, env=None, timeout=20):
    e = {k: v for k, v in os.environ.items() if k != "VMHOST_CONFIG_ROOT"}
    e.update(env or {})
    return subprocess.run([str(vm_bin), "check", *map(str, args)], env=e,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def root(tmp_path):
    return ConfigRoot(tmp_path)


def test_all_valid_exit_0(vm_bin, root):
    app = root.vm("appvm", providers=["netvm"], memory="512M\n", cpus="2")
    app.share("home", root.data_dir("home"))
    root.vm("netvm", disks=(), rootfs=True, uplink="")
    p = run(vm_bin, "--config-root", root)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert p.stdout.splitlines() == ["appvm: ok", "netvm: ok"]


def test_warnings_still_exit_0(vm_bin, root):
    vm = root.vm("appvm", wayland="not empty")
    (vm.path / "shared-dir").mkdir()
    p = run(vm_bin, "--config-root", root)
    assert p.returncode == 0
    assert sorted(p.stderr.splitlines()) == [
        'appvm: shared-dir: warning: unknown entry, ignored; did you mean "shared-dirs"?',
        # No --wayland-display, as vmhostd's (tests/test_wayland.py: with one).
        "appvm: wayland: warning: no compositor given (--wayland-display PATH, as vmhostd's): "
        "it would start without Wayland",
        "appvm: wayland: warning: not empty (9 bytes); the contents are ignored",
    ]


def test_invalid_exit_1_and_message_format(vm_bin, root):
    root.vm("good")
    bad = root.vm("bad", memory="lots", providers=["nosuch"])
    bad.kernel(data=bzimage())
    bad.share("out", "/tmp")
    os.mkfifo(bad.path / "blk" / "fifo.img")
    p = run(vm_bin, "--config-root", root)
    assert p.returncode == 1
    assert p.stdout.splitlines() == ["bad: invalid", "good: ok"]
    lines = p.stderr.splitlines()
    assert "bad: vmlinux: compressed kernel (bzImage); vmlinux must be the uncompressed ELF (build target vmlinux, not bzImage)" in lines
    assert "bad: blk/fifo.img: is a FIFO; a disk image must be a regular file or a block device" in lines
    assert f'bad: shared-dirs/out/dir: target "/tmp" is outside the data root "{os.path.realpath(root.data_root)}"' in lines
    assert 'bad: providers/net/nosuch: no VM named "nosuch" in the config root' in lines
    assert 'bad: memory: invalid memory size "lots": expected a number of bytes with an optional K, M, G or T suffix, e.g. 256M' in lines
    # Every line names the VM and a path in its directory.
    assert all(l.startswith("bad: ") and l.count(": ") >= 2 for l in lines)


def test_cycle_message(vm_bin, root):
    root.vm("a", providers=["b"])
    root.vm("b", providers=["a"])
    p = run(vm_bin, "--config-root", root, "a")
    assert p.returncode == 1
    assert p.stderr == "a: providers/net/b: provider cycle: a -> b -> a\n"


def test_invalid_name_escaped(vm_bin, root):
    root.vm("bad\nname")
    p = run(vm_bin, "--config-root", root)
    assert p.returncode == 1
    assert p.stderr.splitlines()[0].startswith('bad\\nname: .: invalid VM name "bad\\nname"')


def test_name_selection(vm_bin, root):
    root.vm("one")
    root.vm("two", cpus="100")
    assert run(vm_bin, "--config-root", root, "one").returncode == 0
    p = run(vm_bin, "--config-root", root, "one", "two", "one")
    assert p.returncode == 1
    assert p.stdout.splitlines() == ["one: ok", "two: invalid"]
    p = run(vm_bin, "--config-root", root, "missing")
    assert p.returncode == 1
    assert p.stderr.startswith("missing: .: no such VM")


def test_fifo_kernel_does_not_hang(vm_bin, root):
    vm = root.vm("f")
    (vm.path / "vmlinux").unlink()
    os.mkfifo(vm.path / "vmlinux")
    os.mkfifo(vm.path / "cmdline")
    p = run(vm_bin, "--config-root", root, timeout=10)
    assert p.returncode == 1
    assert "f: vmlinux: is a FIFO" in p.stderr
    assert "f: cmdline: is a FIFO, not a regular file" in p.stderr


def test_config_root_from_environment(vm_bin, root, tmp_path):
    root.vm("envvm")
    p = run(vm_bin, env={"VMHOST_CONFIG_ROOT": str(root)})
    assert p.returncode == 0, p.stderr
    assert p.stdout == "envvm: ok\n"
    # --config-root wins over the environment.
    p = run(vm_bin, "--config-root", tmp_path / "nope", env={"VMHOST_CONFIG_ROOT": str(root)})
    assert p.returncode == 1
    assert "nope" in p.stderr


def test_default_config_root(vm_bin):
    p = run(vm_bin)
    if os.path.isdir("/ext/svc/data"):
        pytest.skip("this machine has a real /ext/svc/data")
    assert p.returncode == 1
    assert p.stderr == "vm check: config root /ext/svc/data: No such file or directory\n"


def test_data_root_option(vm_bin, root, tmp_path):
    vm = root.vm("s")
    vm.share("home", root.data_dir("home"))
    assert run(vm_bin, "--config-root", root).returncode == 0
    other = tmp_path / "elsewhere"
    other.mkdir()
    p = run(vm_bin, "--config-root", root, "--data-root", other)
    assert p.returncode == 1
    assert "s: shared-dirs/home/dir: target" in p.stderr
    assert "is outside the data root" in p.stderr


def test_usage_errors_exit_2(vm_bin, root):
    for args in (["--bogus"], ["--config-root"], ["--config-root", ""]):
        p = run(vm_bin, *args)
        assert p.returncode == 2, args
        assert "usage: vm check" in p.stderr
    p = run(vm_bin, "--help")
    assert p.returncode == 0 and "usage: vm check" in p.stdout
    assert "exit status" in p.stdout
    p = subprocess.run([str(vm_bin), "nosuchverb"], capture_output=True, text=True)
    assert p.returncode == 2
    p = subprocess.run([str(vm_bin)], capture_output=True, text=True)
    assert p.returncode == 2
    p = subprocess.run([str(vm_bin), "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "check" in p.stdout


def test_json_report(vm_bin, root):
    app = root.vm("appvm", providers=["netvm"], memory="256M", cpus="2",
                  cmdline="console=ttyS0 root=/dev/vda2\n")
    app.disk("data")
    app.share("home", root.data_dir("home"))
    app.flag("wayland")
    root.vm("netvm", disks=(), rootfs=True, uplink="")
    root.vm("broken", cpus="x")
    p = run(vm_bin, "--config-root", root, "--json")
    assert p.returncode == 1
    rep = json.loads(p.stdout)
    assert rep["valid"] is False
    assert rep["config_root"] == str(root.path)
    assert rep["data_root"] == str(root.data_root)
    assert set(rep["vms"]) == {"appvm", "netvm", "broken"}
    b = rep["vms"]["broken"]
    assert b["valid"] is False and "config" not in b
    assert b["diagnostics"] == [{"level": "error", "path": "cpus",
                                 "message": 'invalid number of CPUs "x": expected a whole number from 1 to 64'}]
    a = rep["vms"]["appvm"]
    assert a["valid"] is True and a["diagnostics"] == [{
        "level": "warning", "path": "wayland",
        "message": "no compositor given (--wayland-display PATH, as vmhostd's): "
                   "it would start without Wayland"}]
    c = a["config"]
    assert c["kernel"] == str(app.path / "vmlinux")
    assert [d["relpath"] for d in c["disks"]] == ["blk/data.img", "blk/root.img"]
    assert c["shares"] == [{"tag": "home", "host_dir": str(root.data_root / "home")}]
    assert c["providers"] == ["netvm"]
    assert c["wayland"] is True and c["uplink"] is False
    assert c["memory"] == 256 << 20 and c["cpus"] == 2
    assert c["cmdline"] == "console=ttyS0 root=/dev/vda2"
    n = rep["vms"]["netvm"]["config"]
    assert n["uplink"] is True
    assert n["cmdline"] == "console=ttyS0 root=/dev/vda"
    assert n["memory"] == 1 << 30 and n["cpus"] == 1
    # Problems still go to stderr, one per line.
    assert sorted(p.stderr.splitlines()) == [
        "appvm: wayland: warning: no compositor given (--wayland-display PATH, as vmhostd's): "
        "it would start without Wayland",
        'broken: cpus: invalid number of CPUs "x": expected a whole number from 1 to 64']


def test_real_kernel_if_built(vm_bin, root, build_dir):
    kernel = build_dir / "guest" / "vmlinux"
    if not kernel.exists():
        pytest.skip("guest kernel not built")
    root.vm("real", kernel=kernel)
    p = run(vm_bin, "--config-root", root)
    assert p.returncode == 0, p.stderr
