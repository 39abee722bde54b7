"""A VM directory's owner reaches nothing through vmhost that they could
not open themselves (issue 11, parts 1, 3 and 5; docs/security.md).

Real users (useradd) own VM directories whose links point at what they
may not read: /etc/shadow, a loop block device, root-only files, the
data root, the config root, vmhostd's state directory, another user's
private directory.  `vm check` run as root names each problem as
"NAME: PATH: problem", `vm start` refuses with exactly the same lines,
and nothing is started or left behind.  A link swapped while a VM waits
for its provider is never opened: the VM boots what was checked.  A VM
asking for more memory or CPUs than the host allows is refused.
"""
import contextlib
import ctypes
import os
import select
import shutil
import struct
import subprocess
import time

import pytest

from helpers import users, vmdirs
from helpers.daemon import GUEST, READY, VM, Daemon, descendants, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="real users and loop devices need root")

OWNER_DENIED = "Permission denied (as the VM directory's owner)"


@pytest.fixture(scope="module")
def owner():
    with users.user("o") as u:
        yield u


@pytest.fixture(scope="module")
def other():
    with users.user("x") as u:
        yield u


@pytest.fixture(scope="module")
def d(guest_dir, owner, other):
    """A daemon whose tree other users can traverse, with its state
    directory inside the data root so that a share can point at it."""
    with vmdirs.open_tmp() as tmp:
        d = Daemon(tmp)
        shutil.rmtree(d.state)
        d.state = d.root.data_root / "run"
        d.state.mkdir(mode=0o700)
        d.start()
        try:
            yield d
        finally:
            d.stop()


@pytest.fixture(scope="module")
def loop(d):
    """A loop block device over a small file (root:disk 0660 or 0600)."""
    backing = d.root.data_root / "loop.raw"
    backing.write_bytes(b"\0" * (1 << 20))
    dev = subprocess.run(["losetup", "--find", "--show", str(backing)], check=True,
                         capture_output=True, text=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "--detach", dev])


def check(d, *args):
    return subprocess.run([str(VM), "check", "--config-root", str(d.root.path), *args],
                          env=d.env(), capture_output=True, text=True, timeout=60)


def owned(d, name, user=None):
    """A bootable VM directory; the caller adds to it, then calls
    user.chown_tree(vm.path) (None: it stays root's)."""
    vm = d.root.vm(name, kernel=GUEST / "vmlinux", disks={"root": GUEST / "appvm.img"})
    vm.setting("memory", "256M")
    return vm


def refused(d, name, line, *check_args):
    """vm check reports line (among its lines), vm start refuses with the
    same lines, and nothing runs or is left."""
    c = check(d, *check_args, name)
    assert c.returncode == 1 and c.stdout == f"{name}: invalid\n", c.stdout + c.stderr
    assert line in c.stderr.splitlines(), c.stderr
    r = d.vm("start", name)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[-1] == f"vm start: {name}: invalid configuration", r.stderr
    assert lines[:-1] == c.stderr.splitlines()
    rec = d.record(name)
    assert rec["state"] == "stopped" and rec["pid"] is None, rec
    assert not d.vm_processes()
    d.assert_clean(name)


# --- owner-identity opens: one VM directory per hole ---


def test_disk_link_to_shadow(d, owner):
    vm = owned(d, "shadow", owner)
    os.symlink("/etc/shadow", vm.path / "blk" / "x.img")
    owner.chown_tree(vm.path)
    refused(d, "shadow", f'shadow: blk/x.img: cannot open "/etc/shadow": {OWNER_DENIED}')


def test_disk_link_to_block_device(d, owner, loop):
    vm = owned(d, "loopdev", owner)
    os.symlink(loop, vm.path / "blk" / "x.img")
    owner.chown_tree(vm.path)
    st = os.stat(loop)
    refused(d, "loopdev",
            f'loopdev: blk/x.img: "{loop}" is a block device ({os.major(st.st_rdev)}:'
            f"{os.minor(st.st_rdev)}); block devices are refused unless the administrator "
            f"allows each one: vmhostd --allow-block-device {loop} (vm check takes the same option)")
    # Allowed, it is still opened with the owner's permissions.
    c = check(d, "--allow-block-device", loop, "loopdev")
    assert c.returncode == 1
    assert c.stderr == f'loopdev: blk/x.img: cannot open "{loop}": {OWNER_DENIED}\n'


def test_block_device_allowed_for_root(d, loop):
    """A root-owned directory may use an allowed block device, and only
    an allowed one."""
    vm = owned(d, "rootdev", None)
    os.symlink(loop, vm.path / "blk" / "x.img")
    assert check(d, "rootdev").returncode == 1
    c = check(d, "--allow-block-device", loop, "rootdev")
    assert c.returncode == 0 and c.stderr == "", c.stderr


def test_rootfs_link_to_root_only_file(d, owner):
    secret = d.root.data_root / "secret.ext4"
    secret.write_bytes(b"\0" * 4096)
    secret.chmod(0o600)
    vm = owned(d, "rootonly", owner)
    os.symlink(secret, vm.path / "rootfs.ext4")
    owner.chown_tree(vm.path)
    refused(d, "rootonly", f'rootonly: rootfs.ext4: cannot open "{secret}": {OWNER_DENIED}')


def test_kernel_link_to_root_only_file(d, owner):
    kernel = d.root.data_root / "vmlinux.root"
    shutil.copyfile(GUEST / "vmlinux", kernel)
    kernel.chmod(0o600)
    vm = owned(d, "rootkernel", owner)
    vm.kernel(kernel)
    owner.chown_tree(vm.path)
    refused(d, "rootkernel", f"rootkernel: vmlinux: cannot open: {OWNER_DENIED}")


def test_share_of_the_data_root(d, owner):
    vm = owned(d, "sharedata", owner)
    vm.share("t", d.root.data_root)
    owner.chown_tree(vm.path)
    refused(d, "sharedata",
            f'sharedata: shared-dirs/t/dir: target "{d.root.data_root}" contains the config '
            f'root "{d.root.path}"; a guest must not reach it')


def test_share_of_the_config_root(d, owner):
    vm = owned(d, "shareconf", owner)
    vm.share("t", d.root.path)
    owner.chown_tree(vm.path)
    refused(d, "shareconf",
            f'shareconf: shared-dirs/t/dir: target "{d.root.path}" is the config root; '
            "a guest must not reach it")


def test_share_of_the_state_dir(d, owner):
    vm = owned(d, "sharestate", owner)
    vm.share("t", d.state)
    owner.chown_tree(vm.path)
    refused(d, "sharestate",
            f'sharestate: shared-dirs/t/dir: cannot open the shared directory "{d.state}": '
            f"{OWNER_DENIED}")


def test_share_of_another_users_private_dir(d, owner, other):
    private = d.root.data_dir("private")
    os.chown(private, other.uid, other.gid)
    private.chmod(0o700)
    vm = owned(d, "shareother", owner)
    vm.share("t", private)
    owner.chown_tree(vm.path)
    refused(d, "shareother",
            f'shareother: shared-dirs/t/dir: cannot open the shared directory "{private}": '
            f"{OWNER_DENIED}")


def test_root_owned_shares_stay_confined(d):
    """Root may open anything, so here the confinement itself answers:
    not the state directory, nothing inside the config root."""
    vm = owned(d, "rootstate", None)
    vm.share("t", d.state)
    refused(d, "rootstate",
            f'rootstate: shared-dirs/t/dir: target "{d.state}" is vmhostd\'s state directory; '
            "a guest must not reach it")
    vm = owned(d, "rootinside", None)
    vm.share("t", d.root.path / "rootstate")
    refused(d, "rootinside",
            f'rootinside: shared-dirs/t/dir: target "{d.root.path / "rootstate"}" is inside '
            f'the config root "{d.root.path}"; a guest must not reach it')


def test_directories_only_the_owner_may_change(d, owner, other):
    """Whoever may write a VM's directories chooses what it opens with the
    owner's reach: root's directory writable by all, or a user's blk/
    that another user owns, is refused."""
    vm = owned(d, "rootopen")
    vm.path.chmod(0o777)
    refused(d, "rootopen", "rootopen: .: writable by others than its owner (mode 0777): whoever "
            "may write it would choose what the VM opens with the owner's permissions (chmod go-w)")
    vm = owned(d, "otherblk")
    owner.chown_tree(vm.path)
    os.chown(vm.path / "blk", other.uid, other.gid)
    refused(d, "otherblk", f"otherblk: blk: owned by uid {other.uid}, not by the VM directory's owner "
            f"(uid {owner.uid}) or root: its owner would choose what the VM opens")


def test_every_problem_at_once(d, owner):
    vm = owned(d, "many", owner)
    os.symlink("/etc/shadow", vm.path / "blk" / "x.img")
    vm.share("a", d.root.path)
    vm.setting("cpus", str(len(os.sched_getaffinity(0)) + 1))
    owner.chown_tree(vm.path)
    c = check(d, "many")
    assert [l.split(": ")[1] for l in c.stderr.splitlines()] == \
        ["blk/x.img", "shared-dirs/a/dir", "cpus"], c.stderr


@contextlib.contextmanager
def stalled_mount(d):
    """A FUSE mount in the data root whose server never answers."""
    mnt = d.root.data_dir("stall")
    libc = ctypes.CDLL(None, use_errno=True)
    fuse = os.open("/dev/fuse", os.O_RDWR)
    opts = f"fd={fuse},rootmode=40000,user_id=0,group_id=0,allow_other".encode()
    assert libc.mount(b"vmhstall", str(mnt).encode(), b"fuse", 0, opts) == 0, \
        os.strerror(ctypes.get_errno())
    # The "server" is a process that holds the connection and never reads
    # it; when it goes (at the end, or after 120 s whatever happens) the
    # connection aborts and anything still waiting on it gets an error.
    server = subprocess.Popen(["sleep", "120"], pass_fds=[fuse])
    os.close(fuse)
    try:
        yield mnt
    finally:
        server.kill()
        server.wait()
        subprocess.run(["umount", "-l", str(mnt)])


def owners_processes(uid):
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and
            os.path.exists(f"/proc/{p}/status") and
            f"Uid:\t{uid}\t" in open(f"/proc/{p}/status").read()]


def test_stalled_filesystem_gives_up(d, owner):
    """A link into a FUSE mount whose server never answers: the gatherer,
    stuck as the owner, is killed after its time-out (10 s); check and
    start say so and nothing is left."""
    with stalled_mount(d) as mnt:
        vm = owned(d, "stalled")
        vm.kernel(mnt / "vmlinux")
        owner.chown_tree(vm.path)
        line = (f"stalled: .: gave up after 10000 ms: reading the VM directory as its owner "
                f"(uid {owner.uid}) did not finish (a file on a stalled filesystem, e.g. "
                "FUSE or NFS?)")
        t = time.monotonic()
        refused(d, "stalled", line)
        assert time.monotonic() - t < 60
        assert not owners_processes(owner.uid)


def test_gatherer_is_the_owner_and_nothing_more(d, owner):
    """The gatherer of a start, caught while a stalled file holds it: the
    owner's uid and gid in every slot, the owner's groups only, no
    capability, no_new_privs, not dumpable (its private /proc files are
    root's),
    a child of the monitor, and no fd but /dev/null, its socket and what
    it opened of the owner's."""
    with stalled_mount(d) as mnt:
        vm = owned(d, "caught")
        vm.kernel(mnt / "vmlinux")
        owner.chown_tree(vm.path)
        start = subprocess.Popen([str(VM), "start", "caught"], env=d.env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            procs = wait_until(lambda: owners_processes(owner.uid), 30, "the gatherer")
            assert len(procs) == 1, procs
            pid = procs[0]
            st = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status").read().splitlines())
            assert st["Uid"].split() == [str(owner.uid)] * 4
            assert st["Gid"].split() == [str(owner.gid)] * 4
            assert set(st["Groups"].split()) <= {str(g) for g in
                                                 os.getgrouplist(owner.name, owner.gid)}
            for k in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
                assert int(st[k], 16) == 0, (k, st[k])
            assert st["NoNewPrivs"].strip() == "1"
            # Not dumpable: its private /proc files are root's, not the owner's.
            assert os.stat(f"/proc/{pid}/environ").st_uid == 0, "dumpable"
            assert int(st["PPid"]) == d.proc.pid
            # The monitor's deny-list, inherited (src/monitor/denylist.h).
            assert st["Seccomp"].strip() == "2"
            # The monitor's cgroup and the host's namespaces: its opens are
            # the owner's, on the host's files.
            assert open(f"/proc/{pid}/cgroup").read() == open(f"/proc/{d.proc.pid}/cgroup").read()
            for ns in ("mnt", "user", "net", "pid"):
                assert os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/self/ns/{ns}")
            targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            for t in targets:
                assert t == "/dev/null" or t.startswith("socket:") or \
                    t.startswith(str(d.root.path)), targets
        finally:
            out, err = start.communicate(timeout=60)
        assert start.returncode == 1 and "gave up after 10000 ms" in err, err
        assert not owners_processes(owner.uid)
        d.assert_clean("caught")


def test_check_as_a_user_reads_as_that_user(d, owner, other):
    """vm check run by a user who is not root reads with that user's
    reach: another user's private VM directory is unreadable to it, its
    owner's check finds it valid."""
    vm = owned(d, "private")
    owner.chown_tree(vm.path)
    os.chmod(vm.path, 0o700)

    def check_as(user):
        def drop():
            os.setgroups([])
            os.setgid(user.gid)
            os.setuid(user.uid)
        return subprocess.run([str(VM), "check", "--config-root", str(d.root.path), "private"],
                              env=d.env(), capture_output=True, text=True, timeout=60,
                              preexec_fn=drop)

    mine = check_as(owner)
    assert mine.returncode == 0 and mine.stdout == "private: ok\n", mine.stdout + mine.stderr
    theirs = check_as(other)
    assert theirs.returncode == 1, theirs.stdout + theirs.stderr
    assert "Permission denied" in theirs.stderr and "private" in theirs.stderr, theirs.stderr


# --- host limits ---


def test_memory_and_cpus_over_the_host(d):
    cpus = len(os.sched_getaffinity(0))
    if cpus >= 64:
        pytest.skip("a VM may have at most 64 CPUs anyway")
    owned(d, "huge", None).setting("memory", "256G")
    refused(d, "huge", "huge: memory: 256G is more than a VM may have on this host (at most "
            + host_limit_text())
    owned(d, "wide", None).setting("cpus", str(cpus + 1))
    refused(d, "wide", f"wide: cpus: {cpus + 1} CPUs is more than this host has "
            f"({cpus}; --max-cpus N changes it)")


def host_limit_text():
    """The rest of the memory message, from /proc/meminfo as the daemon
    computes it (docs/vm-directory.md)."""
    with open("/proc/meminfo") as f:
        kb = next(int(l.split()[1]) for l in f if l.startswith("MemTotal:"))
    ram = kb << 10
    reserve = min(max(ram // 8, 512 << 20), 4 << 30)
    mib = lambda b: f"{b >> 30}G" if b % (1 << 30) == 0 else f"{b >> 20}M"
    most = (ram - reserve) & ~((1 << 20) - 1)
    ram_mib = ram & ~((1 << 20) - 1)
    return f"{mib(most)}: {mib(ram_mib)} of RAM less {mib(ram_mib - most)} kept for the host; --max-memory SIZE changes it)"


def test_limit_flags(tmp_path, guest_dir):
    """--max-memory and --max-cpus, for vmhostd and vm check alike."""
    with Daemon.serving(tmp_path, args=["--max-memory", "200M", "--max-cpus", "1"]) as d:
        owned(d, "limited", None).setting("cpus", "2")
        refused(d, "limited", "limited: memory: 256M is more than a VM may have here "
                "(at most 200M, set by --max-memory)", "--max-memory", "200M", "--max-cpus", "1")
        c = check(d, "--max-memory", "200M", "--max-cpus", "1", "limited")
        assert "limited: cpus: 2 CPUs is more than a VM may have here (at most 1, set by --max-cpus)" \
            in c.stderr.splitlines()
    r = subprocess.run([str(VM), "check", "--max-memory", "lots"], capture_output=True, text=True)
    assert r.returncode == 2 and "vm check: --max-memory lots: " in r.stderr


# --- checked is used: a link swapped during the providers wait ---

IN_OPEN = 0x20


class Inotify:
    """IN_OPEN on files, through libc (no Python module needed)."""

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        assert self.fd >= 0
        self.names = {}

    def watch(self, path):
        wd = self.libc.inotify_add_watch(self.fd, str(path).encode(), IN_OPEN)
        assert wd >= 0, os.strerror(ctypes.get_errno())
        self.names[wd] = str(path)

    def opened(self, timeout):
        """Paths opened within timeout (waits for the first event)."""
        out = []
        if select.select([self.fd], [], [], timeout)[0]:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                data = b""
            while data:
                wd, mask, _, n = struct.unpack_from("iIII", data)
                if mask & IN_OPEN:
                    out.append(self.names[wd])
                data = data[16 + n:]
        return out

    def close(self):
        os.close(self.fd)


def test_link_swapped_during_providers_wait_is_never_opened(d, owner):
    prov = d.root.vm("swapnet", kernel=GUEST / "vmlinux", disks={"root": GUEST / "netvm.img"})
    prov.setting("memory", "192M")
    data = d.root.data_dir("swapdata")
    orig, swapped = data / "orig.img", data / "swapped.img"
    orig.write_bytes(b"ORIGINAL-DISK-" + b"\0" * ((1 << 20) - 14))
    swapped.write_bytes(b"SWAPPED--DISK-" + b"\0" * ((1 << 20) - 14))
    vm = owned(d, "swapapp", owner)
    vm.provider("swapnet")
    link = vm.path / "blk" / "x.img"
    os.symlink(orig, link)
    owner.chown_tree(vm.path)
    owner.chown_tree(data)
    ino = Inotify()
    try:
        ino.watch(orig)
        ino.watch(swapped)
        start = subprocess.Popen([str(VM), "start", "swapapp"], env=d.env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The gatherer opens orig.img as the owner, then the daemon starts
        # the provider first: swap the link now, as the owner could.
        assert ino.opened(60) == [str(orig)]
        os.symlink(swapped, vm.path / "blk" / "x.tmp")
        os.lchown(vm.path / "blk" / "x.tmp", owner.uid, owner.gid)
        os.replace(vm.path / "blk" / "x.tmp", link)
        rec = d.record("swapapp")
        assert rec["state"] == "starting" and rec["pid"] is None, \
            f"the swap came after the launch: {rec}"
        out, err = start.communicate(timeout=180)
        assert start.returncode == 0, err + d.stderr()[-3000:]
        d.wait_serial("swapapp", READY, timeout=180)
        with d.console("swapapp") as con:
            assert con.run("head -c 14 /dev/vdb") == "ORIGINAL-DISK-"
        assert str(swapped) not in ino.opened(0.5)
        # And the next start takes the directory as it is now.
        for n in ("swapapp", "swapnet"):
            assert d.vm("stop", "--force", n).returncode == 0
        c = check(d, "swapapp")
        assert c.returncode == 0, c.stderr
        assert ino.opened(5) == [str(swapped)]
    finally:
        ino.close()
        for n in ("swapapp", "swapnet"):
            d.vm("stop", "--force", n)
    wait_until(lambda: not d.vm_processes(), 30, "nothing left running")
    d.assert_clean()
