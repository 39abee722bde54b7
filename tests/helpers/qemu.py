"""Helpers for the VMM backend tests (tests/test_vmm.py).

The real guest kit images (build/guest/appvm.img) are used when present;
otherwise throwaway_rootfs() builds a tiny busybox ext4 image that behaves
like the kit's init: mounts each virtio-fs tag listed in fw_cfg at
/run/virtiofs/TAG, gives a shell on hvc0, prints "vmhost-guest: ready" on
the serial console, and powers off on the ACPI power button.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("VMHOST_BUILD", ROOT / "build"))
GUEST = BUILD / "guest"
VMM_TRY = BUILD / "src" / "vmm" / "vmm-try"
READY = "vmhost-guest: ready"

INIT = r"""#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev
$B mount -t tmpfs run /run
tags=/sys/firmware/qemu_fw_cfg/by_name/opt/vmhost/virtiofs-tags/raw
if [ -r $tags ]; then
    for t in $($B tr , ' ' < $tags); do
        $B mkdir -p /run/virtiofs/$t
        $B mount -t virtiofs $t /run/virtiofs/$t
    done
fi
$B setsid $B sh -c 'exec $B sh -i < /dev/hvc0 > /dev/hvc0 2>&1' &
for e in /sys/class/input/event*; do
    if [ "$($B cat $e/device/name)" = "Power Button" ]; then
        pb=/dev/input/${e##*/}
    fi
done
# Any event from the power button (system_powerdown) ends the VM; listen
# before saying ready, or an early powerdown would be lost.
$B dd if=$pb bs=24 count=1 2>/dev/null > /dev/null &
$B sleep 0.2
echo "vmhost-guest: ready"
wait $!
echo "vmhost-guest: powering off"
$B sync
$B poweroff -f
"""


def wait_for(path, timeout):
    """Poll for a file another build step is producing."""
    end = time.monotonic() + timeout
    path = pathlib.Path(path)
    while not path.exists() and time.monotonic() < end:
        time.sleep(2)
    return path.exists()


def throwaway_rootfs(dest):
    """A bare ext4 image (for root=/dev/vda) with busybox and INIT."""
    dest = pathlib.Path(dest)
    tree = dest.parent / (dest.name + ".d")
    for d in ("bin", "sbin", "proc", "sys", "dev", "run", "tmp", "etc"):
        (tree / d).mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", tree / "bin" / "busybox")
    (tree / "bin" / "sh").symlink_to("busybox")
    init = tree / "sbin" / "init"
    init.write_text(INIT)
    init.chmod(0o755)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(tree),
                    str(dest), "16M"], check=True,
                   stdout=subprocess.DEVNULL)
    shutil.rmtree(tree)
    return dest


def guest_vm(root, name, kernel, image=None, shares=None):
    """A VM dir in a helpers.vmdirs.ConfigRoot: the kit's image as
    blk/root.img if given, else a throwaway rootfs.ext4."""
    if image:
        vm = root.vm(name, kernel=kernel, disks={"root": image})
    else:
        vm = root.vm(name, kernel=kernel, disks=())
        throwaway_rootfs(vm.path / "rootfs.ext4")
        vm.setting("cmdline", "console=ttyS0 root=/dev/vda ro panic=-1")
    vm.setting("memory", "256M")
    for tag, target in (shares or {}).items():
        vm.share(tag, target)
    return vm


class VmmTry:
    """vmm-try in its own process group, always cleaned up."""

    def __init__(self, args, log):
        self.log = pathlib.Path(log)
        self.err = open(self.log.with_suffix(".err"), "w+b")
        self.out = open(self.log, "w+b")
        self.proc = subprocess.Popen([str(VMM_TRY)] + [str(a) for a in args],
                                     stdout=self.out, stderr=self.err,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            # Its VM's processes are in sessions of their own: what a
            # killed vmm-try could not clean up goes with its cgroup.
            kill_cgroup_tree(f"vmm-try-{self.proc.pid}")
        self.out.close()
        self.err.close()

    def stdout(self):
        return self.log.read_text(errors="replace")

    def stderr(self):
        return self.log.with_suffix(".err").read_text(errors="replace")


def cgroup_dirs(name):
    """DIR/name for each hierarchy of this process where it exists: the
    v1 memory, pids and freezer ones, and cgroup2 (a hybrid host's
    unified one, or /sys/fs/cgroup itself)."""
    out = []
    for line in pathlib.Path("/proc/self/cgroup").read_text().splitlines():
        num, ctl, path = line.split(":", 2)
        if num == "0" and not ctl:
            mounts = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        else:
            mounts = [f"/sys/fs/cgroup/{c}" for c in ctl.split(",")
                      if c in ("memory", "pids", "freezer")]
        for m in mounts:
            d = pathlib.Path(m) / path.lstrip("/") / name
            if d.is_dir() and d not in out:
                out.append(d)
    return out


def remove_cgroup_parent(name):
    """Once its daemon is gone: no VM cgroup is left under the parent
    `name`, and the parent goes too, which a daemon in a hierarchy's root
    cannot remove itself (no dac_override; vmhostd(8), --cgroup-parent)."""
    for base in cgroup_dirs(name):
        left = [c.name for c in base.iterdir() if c.is_dir()]
        assert not left, f"{base}: cgroups left: {left}"
        base.rmdir()


def kill_cgroup_tree(name):
    """SIGKILL everything under our cgroup `name` and remove it."""
    dirs = cgroup_dirs(name)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        left = False
        for d in dirs:
            for procs in d.rglob("cgroup.procs"):
                for pid in procs.read_text().split():
                    left = True
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        if not left:
            break
        time.sleep(0.05)
    for d in dirs:
        for sub in sorted(d.rglob("*"), key=lambda p: -len(p.parts)):
            if sub.is_dir():
                sub.rmdir()
        d.rmdir()


def reported_pids(stderr, what):
    """Pids vmm-try reported: "vmm-try: qemu pid N"."""
    out = []
    for line in stderr.splitlines():
        if line.startswith(f"vmm-try: {what} pid "):
            out.append(int(line.split()[3]))
    return out


def reported_fds(stderr, what):
    """{fd: target} from "vmm-try: WHAT fd N -> TARGET" lines."""
    out = {}
    for line in stderr.splitlines():
        prefix = f"vmm-try: {what} fd "
        if line.startswith(prefix):
            fd, _, target = line[len(prefix):].partition(" -> ")
            out[int(fd)] = target
    return out


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
