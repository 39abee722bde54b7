"""Build VM directory trees (CONFIG_ROOT/NAME/...) for tests.

    root = ConfigRoot(tmp_path)            # tmp/ext/svc/data, data root tmp/ext
    vm = root.vm("appvm", disks=["root"])  # fake ELF vmlinux + blk/root.img
    vm.share("home", root.data_dir("home"))
    vm.provider("netvm")
    root.vm("real", kernel="/path/to/vmlinux", disks={"root": "/path/disk.img"})

Fake kernels are a file starting with b"\\x7fELF"; pass kernel=PATH (and
disk paths) to link a real kernel or image instead (copy=True copies).
"""
import contextlib
import os
import pathlib
import shutil
import tempfile

ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 1017


def bzimage():
    """Bytes that look like a bzImage: "HdrS" at offset 0x202."""
    data = bytearray(1024)
    data[0x1fe:0x200] = b"\x55\xaa"
    data[0x202:0x206] = b"HdrS"
    return bytes(data)


def _place(dest, source, data, copy):
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source is None:
        dest.write_bytes(data)
    elif copy:
        shutil.copyfile(source, dest)
    else:
        dest.symlink_to(os.path.abspath(source))
    return dest


@contextlib.contextmanager
def open_tmp(prefix="vmh-t-"):
    """A fresh directory under /tmp that every user may traverse (0755),
    removed afterwards.  For trees with VM directories owned by other
    users: the gatherer reads each with its owner's reach, and pytest's
    tmp_path lies in a directory only root may enter."""
    path = pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class VmDir:
    def __init__(self, root, name):
        self.root = root
        self.name = name
        self.path = root.path / name

    def kernel(self, source=None, data=ELF, copy=False):
        p = self.path / "vmlinux"
        if p.exists() or p.is_symlink():
            p.unlink()
        return _place(p, source, data, copy)

    def disk(self, name, source=None, data=b"\0" * 4096, copy=False):
        """blk/NAME.img (name without .img)."""
        return _place(self.path / "blk" / f"{name}.img", source, data, copy)

    def rootfs(self, source=None, data=b"\0" * 4096, copy=False):
        return _place(self.path / "rootfs.ext4", source, data, copy)

    def share(self, tag, target):
        """shared-dirs/TAG/dir -> target (target created if missing)."""
        d = self.path / "shared-dirs" / tag
        d.mkdir(parents=True, exist_ok=True)
        target = pathlib.Path(target)
        if not target.exists() and not target.is_symlink():
            target.mkdir(parents=True)
        (d / "dir").symlink_to(target)
        return d / "dir"

    def provider(self, name, kind="net"):
        d = self.path / "providers" / kind
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(b"")
        return d / name

    def setting(self, name, value):
        """memory, cpus, cmdline, wayland, uplink: a file with value."""
        p = self.path / name
        p.write_bytes(value if isinstance(value, bytes) else value.encode())
        return p

    def flag(self, name):
        return self.setting(name, b"")


class ConfigRoot:
    """TMP/ext/svc/data as the config root, so that the default data root
    (two levels up) is TMP/ext, as on Spectrum."""

    def __init__(self, tmp):
        self.data_root = pathlib.Path(tmp) / "ext"
        self.path = self.data_root / "svc" / "data"
        self.path.mkdir(parents=True, exist_ok=True)

    def data_dir(self, name):
        d = self.data_root / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def vm(self, name, kernel=None, disks=("root",), rootfs=False,
           copy=False, providers=(), **settings):
        """A valid VM unless told otherwise.  disks: names (fake images)
        or {name: path} (links to real images)."""
        vm = VmDir(self, name)
        vm.path.mkdir(parents=True, exist_ok=True)
        vm.kernel(kernel, copy=copy)
        if isinstance(disks, dict):
            for d, src in disks.items():
                vm.disk(d, src, copy=copy)
        else:
            for d in disks:
                vm.disk(d)
        if rootfs:
            vm.rootfs(None if rootfs is True else rootfs, copy=copy)
        for p in providers:
            vm.provider(p)
        for k, v in settings.items():
            vm.setting(k, v)
        return vm

    def __str__(self):
        return str(self.path)
