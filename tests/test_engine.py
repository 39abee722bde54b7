"""vmhostd's engine (issue 12): the unprivileged process that parses what
clients, QEMU and guests send.  Its confinement as /proc shows it, and
what a hostile QEMU, VM directory owner or client can make it do: a QMP
flood, terminal escapes in a reason and in file names, names that are not
UTF-8, a stop and a start pipelined while the VM goes down, and a daemon
started with fds 0-2 closed; and what a compromised engine can make the
monitor do.

A QEMU taken over by its guest is played by tests/helpers/fakeqemu.py,
which vmhostd runs as QEMU (--qemu) in QEMU's jail, as the VM's uid."""
import ctypes
import json
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import time

import pytest

from helpers.daemon import VM, VMHOSTD, Daemon, wait_until

HELPERS = pathlib.Path(__file__).resolve().parent / "helpers"
# The jail holds /usr only: the stand-in must live there while it runs.
FAKE_DIR = pathlib.Path("/usr/local/libexec/vmhost-test")


@pytest.fixture(scope="module")
def fake_qemu():
    FAKE_DIR.mkdir(parents=True, exist_ok=True)
    path = FAKE_DIR / f"fake-qemu-{os.getpid()}"
    shutil.copy(HELPERS / "fakeqemu.py", path)
    path.chmod(0o755)
    yield path
    path.unlink()
    try:
        FAKE_DIR.rmdir()
    except OSError:
        pass


@pytest.fixture
def d(tmp_path, vmhostd_bin, fake_qemu):
    with Daemon.serving(tmp_path, args=["--qemu", str(fake_qemu)]) as d:
        yield d


def status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def rss_kib(pid):
    return int(status(pid)["VmRSS"].split()[0])


def cpu_ticks(pid):
    """utime + stime of pid, in clock ticks."""
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def fake_vm(d, name, mode):
    vm = d.root.vm(name)       # the helper's fake kernel: never booted
    vm.setting("memory", "64M")
    vm.setting("cmdline", f"console=ttyS0 fakeqemu={mode}")
    return vm


def test_engine_is_confined(d):
    """Its own uid (uid_base - 1) and gid, no groups, no capability at all,
    seccomp filter, no_new_privs, the monitor's cgroup, and mount, network
    and IPC namespaces of its own: a root that holds no /etc or /home, no
    interface but lo."""
    engine = d.engine_pid()
    st = status(engine)
    assert st["Uid"].split() == ["1899999"] * 4 and st["Gid"].split() == ["1899999"] * 4
    assert st["Groups"] == ""
    for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[k], 16) == 0, (k, st[k])
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
    for ns in ("mnt", "net", "ipc"):
        assert os.readlink(f"/proc/{engine}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")
    dev = open(f"/proc/{engine}/net/dev").read().splitlines()[2:]
    assert [l.split(":")[0].strip() for l in dev] == ["lo"], dev
    assert open(f"/proc/{engine}/cgroup").read() == open(f"/proc/{d.proc.pid}/cgroup").read()
    root = pathlib.Path(f"/proc/{engine}/root")
    assert not (root / "etc").exists() and not (root / "home").exists()
    assert (root / str(d.state).lstrip("/") / "vms").is_dir()
    assert open(f"/proc/{engine}/cmdline").read().startswith("vmhostd: engine")
    assert open(f"/proc/{d.proc.pid}/cmdline").read().startswith("vmhostd: monitor")


def test_qmp_flood_is_bounded(d):
    """A QEMU writing QMP lines as fast as it can: other clients are still
    answered within 100 ms, the engine's memory stays flat, and the log
    gets a bounded number of lines about it."""
    fake_vm(d, "flood", "flood")
    r = d.vm("start", "flood")
    assert r.returncode == 0, r.stderr + d.stderr()[-2000:]
    engine = d.engine_pid()
    rss0 = rss_kib(engine)
    cpu0 = cpu_ticks(engine), cpu_ticks(d.proc.pid)
    log0 = len(d.stderr())
    worst, samples = 0.0, 0
    end = time.monotonic() + 12
    while time.monotonic() < end:
        t = time.monotonic()
        assert d.request({"op": "list"})["ok"]
        worst = max(worst, time.monotonic() - t)
        samples += 1
        time.sleep(0.05)
    grew = rss_kib(engine) - rss0
    # The engine did the reading; the monitor, which holds the same QMP
    # socket for a restart, never reads it (its share: the list requests).
    engine_cpu, monitor_cpu = cpu_ticks(engine) - cpu0[0], cpu_ticks(d.proc.pid) - cpu0[1]
    log = d.stderr()[log0:]
    lines = [l for l in log.splitlines() if "vm flood:" in l and "QMP" in l]
    print(f"QMP flood: {samples} list requests, worst {worst * 1000:.1f} ms; "
          f"engine RSS +{grew} KiB; {len(lines)} log lines about it; CPU ticks "
          f"engine {engine_cpu}, monitor {monitor_cpu}")
    assert engine_cpu >= 50, "no flood reached the engine"
    assert monitor_cpu * 10 < engine_cpu
    assert worst < 0.1
    assert grew < 16 * 1024
    # At most 20 lines per 10 s window and one summary per window.
    assert 0 < len(lines) <= 2 * 21 + 2, lines[:5]
    assert any("QMP lines not logged" in l for l in lines)
    assert d.record("flood")["state"] == "running"
    assert d.vm("stop", "--force", "flood").returncode == 0
    d.assert_clean("flood")


def test_escapes_in_a_reason(d):
    """QEMU's error, full of terminal escapes, becomes the VM's reason: it
    is escaped in the record, in what the CLI prints, and in the log."""
    fake_vm(d, "esc", "escape")
    r = d.vm("start", "esc")
    assert r.returncode == 1
    reason = d.record("esc")["reason"]
    assert "\x1b" not in reason and "\x07" not in reason and "\x9b" not in reason
    assert "\\x1b" in reason and "GenericError" in reason
    for out in (r.stderr, d.vm("list").stdout, d.vm("info", "esc").stdout):
        assert "\x1b" not in out and "\x07" not in out, out
    assert "\x1b" not in d.stderr()
    d.assert_clean("esc")


def test_odd_names_are_escaped_not_dropped(d):
    """A disk whose name is not UTF-8 and a share whose target holds an
    escape sequence: vm info shows both, escaped, as text and as JSON."""
    vm = d.root.vm("odd")
    with open(os.fsencode(vm.path / "blk") + b"/zz\xff\xfe.img", "wb") as f:
        f.write(b"\0" * 4096)
    target = d.root.data_dir("\x1b[31mred")
    vm.share("home", target)
    r = d.vm("info", "--json", "odd")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    paths = [x["path"] for x in info["config"]["disks"]]
    assert len(paths) == 2 and "blk/zz\\xff\\xfe.img" in paths, paths
    assert info["config"]["shares"][0]["host_dir"].endswith("\\x1b[31mred")
    text = d.vm("info", "odd").stdout
    assert "\x1b" not in text and "zz\\xff\\xfe.img" in text, text
    assert "\\x1b[31mred" in text


def test_pipelined_stop_and_start_while_going_down(d):
    """stop and start in one write, the start failing at once (a kernel
    too large to be one): each gets its answer, in order, and the engine
    lives on with a consistent record (the re-entrancy of issue 12)."""
    fake_vm(d, "pipe", "flood")
    assert d.vm("start", "pipe").returncode == 0
    with open(d.root.path / "pipe" / "vmlinux", "r+b") as f:
        f.truncate(2 << 30)
    engine = d.engine_pid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(str(d.control))
        s.sendall(b'{"op":"stop","name":"pipe","force":true}\n'
                  b'{"op":"start","name":"pipe"}\n')
        buf = b""
        while buf.count(b"\n") < 2:
            data = s.recv(65536)
            assert data, buf
            buf += data
    stop, start = (json.loads(l) for l in buf.splitlines()[:2])
    assert stop["ok"] and stop["vm"]["state"] == "stopped", stop
    assert not start["ok"] and "invalid configuration" in start["error"], start
    assert d.engine_pid() == engine
    assert d.record("pipe")["state"] == "stopped"
    d.assert_clean("pipe")


def test_std_fds_closed_at_start(tmp_path, vmhostd_bin):
    """vmhostd started with fds 0, 1 and 2 closed keeps its lock: a second
    daemon on the same state directory is refused."""
    d = Daemon(tmp_path)
    cmd = [str(VMHOSTD), "--config-root", str(d.root.path), "--state-dir",
           str(d.state), "--foreground", *d.args]
    first = subprocess.Popen(cmd, preexec_fn=lambda: [os.close(fd) for fd in (0, 1, 2)],
                             start_new_session=True)
    try:
        wait_until(lambda: (d.state / "control").exists(), 10, "the first daemon")
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert second.returncode == 1, second.stderr
        assert "another vmhostd uses this state directory" in second.stderr
        assert first.poll() is None
    finally:
        first.terminate()
        first.wait(timeout=30)
        subprocess.run(["rm", "-rf", str(d.state)])
        d.remove_cgroup_parent()


# src/privsep/privsep.h: the header, and the engine's request types.
PS_HDR = struct.Struct("=HHI")
PS_LAUNCH, PS_KILL, PS_PLUG = 5, 6, 7
PS_NAME_SIZE = 65


def steal_engine_channel(pid):
    """A copy of the engine's end of its channel to the monitor (fd 3),
    taken with pidfd_getfd as root may: we speak as the engine."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        fd = libc.syscall(438, pidfd, 3, 0)  # SYS_pidfd_getfd
        assert fd >= 0, os.strerror(ctypes.get_errno())
        return socket.socket(fileno=fd)
    finally:
        os.close(pidfd)


def name_field(name):
    return name.encode().ljust(PS_NAME_SIZE, b"\0")


@pytest.mark.parametrize("what,packet,fds,why", [
    ("a path for a name", PS_HDR.pack(PS_LAUNCH, 0, 1) + name_field("../../etc"), False,
     "bad VM name"),
    ("a second name behind the first", PS_HDR.pack(PS_KILL, 0, 1) +
     b"hostile\0/etc/shadow".ljust(PS_NAME_SIZE, b"\0"), False, "bad VM name"),
    ("a VM its own provider", PS_HDR.pack(PS_PLUG, 0, 1) + name_field("a") + name_field("a"),
     False, "bad link"),
    ("a short message", PS_HDR.pack(PS_KILL, 0, 1) + b"x", False, "wrong payload size"),
    ("an fd along", PS_HDR.pack(PS_KILL, 0, 1) + name_field("hostile"), True,
     "unexpected fds"),
    ("a monitor's message", PS_HDR.pack(64, 0, 1) + b"{}", False, "unknown message type"),
])
def test_hostile_engine_is_refused_and_replaced(d, what, packet, fds, why):
    """A compromised engine (played by the test, which sends on a copy of
    the engine's channel) gets nothing done by a malformed request: the
    monitor refuses it, kills that engine and starts another; the running
    VM keeps its QEMU and the new engine serves it."""
    fake_vm(d, "hostile", "quiet")
    assert d.vm("start", "hostile").returncode == 0, d.stderr()[-2000:]
    qemu = d.record("hostile")["pid"]
    old = d.engine_pid()
    chan = steal_engine_channel(old)
    log0 = len(d.stderr())
    try:
        if fds:
            r, w = os.pipe()
            chan.sendmsg([packet], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                     struct.pack("i", r))])
            os.close(r)
            os.close(w)
        else:
            chan.send(packet)
    finally:
        chan.close()
    wait_until(lambda: f"engine sent a bad message ({why}): killing it" in d.stderr()[log0:],
               10, f"the monitor refusing {what}")
    wait_until(lambda: (p := d.engine_pid()) and p != old and
               d.request({"op": "list"})["ok"], 15, "a new engine")
    rec = d.record("hostile")
    assert rec["state"] == "running" and rec["pid"] == qemu, rec
    assert os.path.exists(f"/proc/{qemu}")
    assert d.vm("stop", "--force", "hostile").returncode == 0
