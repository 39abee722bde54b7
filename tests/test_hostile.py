"""Hostile VM directories (issue 6, item 5): link loops, odd names, huge
directories, shares escaping the data root, device nodes, FIFOs and a
1 TB sparse image.  `vm check` must answer each with "NAME: PATH:
problem" and exit 1 (0 when the tree is fine), quickly, without blocking
or crashing; `vm start` through the daemon must refuse the same trees
the same way and leave the daemon answering.  Cases already in
test_check.py (a FIFO vmlinux, blk/fifo.img, a "bad\\nname" VM, a share
to /tmp) are not repeated for `vm check`."""
import os
import stat
import subprocess
import time

import pytest

from helpers.daemon import READY, Daemon
from helpers.vmdirs import ConfigRoot

TIMEOUT = 20  # a hang fails the test instead of blocking the run


def check(vm_bin, root, *names, opts=()):
    t = time.monotonic()
    p = subprocess.run([str(vm_bin), "check", "--config-root", str(root.path), *opts, *names],
                       capture_output=True, text=True, timeout=TIMEOUT)
    p.seconds = time.monotonic() - t
    assert "Sanitizer" not in p.stderr and p.returncode in (0, 1), p.stderr
    return p


@pytest.fixture
def root(tmp_path):
    return ConfigRoot(tmp_path)


def mknod(path, kind, major, minor):
    os.mknod(path, 0o600 | kind, os.makedev(major, minor))


def symlink_loops(root):
    vm = root.vm("loops")
    (vm.path / "vmlinux").unlink()
    os.symlink("vmlinux", vm.path / "vmlinux")
    os.symlink("b.img", vm.path / "blk" / "a.img")
    os.symlink("a.img", vm.path / "blk" / "b.img")
    os.symlink("rootfs.ext4", vm.path / "rootfs.ext4")
    (vm.path / "shared-dirs" / "t").mkdir(parents=True)
    os.symlink("dir", vm.path / "shared-dirs" / "t" / "dir")
    os.symlink("memory", vm.path / "memory")
    return vm


def test_symlink_loops(vm_bin, root):
    symlink_loops(root)
    p = check(vm_bin, root)
    assert p.returncode == 1 and p.stdout == "loops: invalid\n"
    for path in ("vmlinux", "rootfs.ext4", "blk/a.img", "blk/b.img",
                 "shared-dirs/t/dir", "memory"):
        assert f"loops: {path}: symbolic link loop (ELOOP)" in p.stderr.splitlines(), path


def test_vm_dir_and_config_root_loops(vm_bin, root, tmp_path):
    os.symlink("selfloop", root.path / "selfloop")
    p = check(vm_bin, root, "selfloop")
    assert p.returncode == 1
    assert p.stderr.startswith("selfloop: .: ") and "symbolic links" in p.stderr
    loop = tmp_path / "rootloop"
    os.symlink(loop, loop)
    p = subprocess.run([str(vm_bin), "check", "--config-root", str(loop)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 1
    assert p.stderr == f"vm check: config root {loop}: Too many levels of symbolic links\n"


@pytest.mark.parametrize("name,shown", [("a:b", "a:b"), ("a,b", "a,b"),
                                        ("a b", "a b"), ("tab\tx", "tab\\tx")])
def test_odd_vm_names(vm_bin, root, name, shown):
    root.vm(name)
    p = check(vm_bin, root)
    assert p.returncode == 1
    assert p.stdout == f"{shown}: invalid\n"
    assert p.stderr.startswith(f'{shown}: .: invalid VM name "{shown}"')


def test_odd_entry_names(vm_bin, root):
    """Names inside the VM: disk images may be called anything (QEMU gets
    fds, never the names); tags and provider names may not."""
    vm = root.vm("weird")
    for n in ("x,y.img", "a b.img", "c:d.img", "n\nl.img"):
        (vm.path / "blk" / n).write_bytes(b"\0" * 512)
    home = root.data_dir("home")
    for tag in ("a,b", "c:d", "e f", "g\nh"):
        (vm.path / "shared-dirs" / tag).mkdir(parents=True)
        os.symlink(home, vm.path / "shared-dirs" / tag / "dir")
    vm.provider("n,et")
    p = check(vm_bin, root)
    assert p.returncode == 1
    lines = p.stderr.splitlines()
    for tag in ("a,b", "c:d", "e f", "g\\nh"):
        assert (f'weird: shared-dirs/{tag}: invalid tag "{tag}": '
                "use 1 to 36 characters from A-Z a-z 0-9 . _ -") in lines
    assert 'weird: providers/net/n,et: "n,et" is not a valid VM name' in lines
    assert len(lines) == 5, lines
    # The disks alone are fine, in byte order, escaped in the report.
    for tag in ("a,b", "c:d", "e f", "g\nh"):
        (vm.path / "shared-dirs" / tag / "dir").unlink()
        (vm.path / "shared-dirs" / tag).rmdir()
    (vm.path / "providers" / "net" / "n,et").unlink()
    p = subprocess.run([str(vm_bin), "check", "--config-root", str(root.path), "--json"],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    import json
    disks = json.loads(p.stdout)["vms"]["weird"]["config"]["disks"]
    assert [d["relpath"] for d in disks] == ["blk/a b.img", "blk/c:d.img", "blk/n\nl.img",
                                              "blk/root.img", "blk/x,y.img"]


def test_blk_with_10000_entries(vm_bin, root):
    vm = root.vm("many")
    for i in range(10000):
        (vm.path / "blk" / f"e{i}").write_bytes(b"")
    p = check(vm_bin, root)
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 21
    assert lines[-1] == "many: blk: note: 9980 more entries not named *.img ignored"
    assert p.seconds < 10


def test_blk_with_10000_images(vm_bin, root):
    vm = root.vm("many")
    for i in range(10000):
        (vm.path / "blk" / f"e{i}.img").write_bytes(b"")
    p = check(vm_bin, root)
    assert p.returncode == 1
    assert p.stderr == "many: blk: 10001 disk images; at most 16 are supported (each takes a PCI slot)\n"
    assert p.seconds < 10


def escaping_shares(root):
    vm = root.vm("esc")
    home = root.data_dir("home")
    d = root.data_root
    # Through "..": lexically below the data root, really above it.
    vm.share("dotdot", f"{home}/../../..")
    # Through a chain of links that all live inside the data root.
    os.symlink("/etc", d / "l3")
    os.symlink(d / "l3", d / "l2")
    os.symlink("l2", d / "l1")
    vm.share("chain", d / "l1")
    # A relative link whose own target climbs out.
    os.symlink("home/../..", d / "up")
    vm.share("rel", d / "up")
    return vm


def test_shares_escaping_the_data_root(vm_bin, root):
    escaping_shares(root)
    p = check(vm_bin, root)
    assert p.returncode == 1
    data = os.path.realpath(root.data_root)
    out = os.path.dirname(data)
    assert sorted(p.stderr.splitlines()) == sorted([
        f'esc: shared-dirs/dotdot/dir: target "{os.path.dirname(out)}" is outside the data root "{data}"',
        f'esc: shared-dirs/chain/dir: target "/etc" is outside the data root "{data}"',
        f'esc: shared-dirs/rel/dir: target "{out}" is outside the data root "{data}"',
    ])


def device_nodes(root):
    vm = root.vm("dev")
    (vm.path / "vmlinux").unlink()
    mknod(vm.path / "vmlinux", stat.S_IFCHR, 1, 3)       # /dev/null
    mknod(vm.path / "blk" / "x.img", stat.S_IFCHR, 1, 5)  # /dev/zero
    mknod(vm.path / "memory", stat.S_IFCHR, 1, 8)         # /dev/random
    vm2 = root.vm("devblk")
    (vm2.path / "vmlinux").unlink()
    mknod(vm2.path / "vmlinux", stat.S_IFBLK, 7, 0)
    return vm


def test_device_nodes(vm_bin, root):
    device_nodes(root)
    p = check(vm_bin, root)
    assert p.returncode == 1
    assert p.stdout == "dev: invalid\ndevblk: invalid\n"
    lines = p.stderr.splitlines()
    assert "dev: vmlinux: is a character device; must be a regular file holding an uncompressed Linux kernel (ELF)" in lines
    assert "dev: blk/x.img: is a character device; a disk image must be a regular file or a block device" in lines
    assert "dev: memory: is a character device, not a regular file" in lines
    assert "devblk: vmlinux: is a block device; must be a regular file holding an uncompressed Linux kernel (ELF)" in lines


def test_block_device_disk_refused_unless_allowed(vm_bin, root):
    vm = root.vm("bdev")
    node = vm.path / "blk" / "b.img"
    # Major 241 is for local use: no driver here, so opening it fails (a
    # loop minor would not: opening one creates the loop device).
    mknod(node, stat.S_IFBLK, 241, 0)
    p = check(vm_bin, root)
    assert p.returncode == 1
    assert p.stderr == (f'bdev: blk/b.img: "{node}" is a block device (241:0); block devices are '
                        "refused unless the administrator allows each one: vmhostd "
                        f"--allow-block-device {node} (vm check takes the same option)\n")
    # Allowed, it is opened for real (as the directory's owner, root
    # here), and only then does the missing device show.
    p = check(vm_bin, root, opts=("--allow-block-device", node))
    assert p.returncode == 1
    assert p.stderr == f'bdev: blk/b.img: cannot open "{node}": No such device or address\n'


def test_fifos_everywhere(vm_bin, root):
    vm = root.vm("fifo", disks=())
    for name in ("rootfs.ext4", "wayland", "uplink", "cpus"):
        os.mkfifo(vm.path / name)
    (vm.path / "shared-dirs" / "t").mkdir(parents=True)
    os.mkfifo(vm.path / "shared-dirs" / "t" / "dir")
    p = check(vm_bin, root)
    assert p.returncode == 1 and p.seconds < 10
    lines = p.stderr.splitlines()
    assert "fifo: rootfs.ext4: is a FIFO; a disk image must be a regular file or a block device" in lines
    assert all(l.startswith("fifo: ") for l in lines)
    for path in ("wayland", "uplink", "cpus", "shared-dirs/t/dir"):
        assert any(l.startswith(f"fifo: {path}: ") for l in lines), (path, lines)


def test_1tb_sparse_image_accepted_not_read(vm_bin, root):
    vm = root.vm("sparse", disks=())
    (vm.path / "blk").mkdir()
    with open(vm.path / "blk" / "big.img", "wb") as f:
        f.truncate(1 << 40)
    with open(vm.path / "rootfs.ext4", "wb") as f:
        f.truncate(1 << 40)
    p = check(vm_bin, root)
    assert p.returncode == 0, p.stderr
    assert p.seconds < 5
    assert os.stat(vm.path / "blk" / "big.img").st_blocks == 0


# --- the same trees through vmhostd: refused fast, daemon unharmed ---


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, vm_bin, vmhostd_bin):
    with Daemon.serving(tmp_path_factory.mktemp("hostile")) as d:
        yield d


def fifo_kernel(root):
    vm = root.vm("fifok")
    (vm.path / "vmlinux").unlink()
    os.mkfifo(vm.path / "vmlinux")


def fifo_disk(root):
    vm = root.vm("fifod")
    os.mkfifo(vm.path / "blk" / "x.img")


def many_images(root):
    vm = root.vm("manyimg")
    for i in range(10000):
        (vm.path / "blk" / f"e{i}.img").write_bytes(b"")


@pytest.mark.parametrize("make,name,problem", [
    (fifo_kernel, "fifok", "fifok: vmlinux: is a FIFO"),
    (fifo_disk, "fifod", "fifod: blk/x.img: is a FIFO"),
    (device_nodes, "dev", "dev: blk/x.img: is a character device"),
    (symlink_loops, "loops", "loops: vmlinux: symbolic link loop (ELOOP)"),
    (escaping_shares, "esc", 'esc: shared-dirs/chain/dir: target "/etc" is outside the data root'),
    (many_images, "manyimg", "manyimg: blk: 10001 disk images; at most 16"),
])
def test_start_refuses_hostile_dirs(daemon, make, name, problem):
    make(daemon.root)
    t = time.monotonic()
    r = daemon.vm("start", name, timeout=TIMEOUT)
    assert time.monotonic() - t < 10
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{name}: invalid configuration" in r.stderr, r.stderr
    assert problem in r.stderr, r.stderr
    rec = daemon.record(name)
    assert rec["state"] in ("stopped", "failed") and rec["pid"] is None
    t = time.monotonic()
    assert daemon.request({"op": "list"})["ok"] is True
    assert time.monotonic() - t < 2
    assert daemon.proc.poll() is None
    daemon.assert_clean(name)


def test_start_with_sparse_and_odd_disk_names(daemon):
    """The 1 TB sparse image and disks whose names hold a comma, a space
    and a newline boot: the guest sees each, none is read through."""
    vm = daemon.guest("odd")
    for n in ("big", "x,y", "a b", "n\nl"):
        with open(vm.path / "blk" / f"{n}.img", "wb") as f:
            f.truncate((1 << 40) if n == "big" else (1 << 20))
    r = daemon.vm("start", "odd")
    assert r.returncode == 0, r.stderr + daemon.stderr()
    try:
        daemon.wait_serial("odd", READY)
        with daemon.console("odd") as con:
            sizes = con.run("cat /sys/block/vd*/size").split()
        # Sorted by name: "a b", "big", "n\nl", root, "x,y".
        assert sizes[1] == str((1 << 40) // 512), sizes
        assert len(sizes) == 5
    finally:
        assert daemon.vm("stop", "--force", "odd").returncode == 0
    assert os.stat(vm.path / "blk" / "big.img").st_blocks == 0
    daemon.assert_clean("odd")
