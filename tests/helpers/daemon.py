"""Run vmhostd for tests: a private config root and state dir, the `vm`
CLI pointed at it, raw protocol access, and a leak check on the way out.

    d = Daemon(tmp_path).start()
    d.guest("app", shares={"home": dir})   # a bootable VM dir
    d.vm("start", "app")                   # CompletedProcess
    with d.console("app") as con: con.run("echo hi")
    d.stop()                               # SIGTERM, then assert no leaks
"""
import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

from helpers import qemu, vmdirs

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("VMHOST_BUILD", ROOT / "build"))
GUEST = BUILD / "guest"
VM = BUILD / "vm"
VMHOSTD = BUILD / "vmhostd"
READY = qemu.READY


def descendants(pid):
    """Every live process below pid (by /proc ppid links)."""
    parents = {}
    for p in pathlib.Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] == "Z":
            continue
        parents.setdefault(int(fields[1]), []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def cmdline(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def wait_until(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Console:
    """A raw console stream over the control socket."""

    def __init__(self, path, name):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.sendall(json.dumps({"op": "console", "name": name}).encode() + b"\n")
        self.buf = b""
        line = self.read_until(b"\n", 10)
        head, _, self.buf = self.buf.partition(b"\n")
        self.reply = json.loads(head)
        assert line

    def read_until(self, needle, timeout):
        end = time.monotonic() + timeout
        while needle not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"console: no {needle!r} within {timeout} s; got {self.buf[-2000:]!r}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise AssertionError(f"console closed before {needle!r}; got {self.buf[-2000:]!r}")
            self.buf += data
        return True

    def run(self, command, timeout=30):
        """Type command; return the output between two unique markers."""
        mark = f"M{time.monotonic_ns()}"
        self.buf = b""
        # The shell computes $((1+1)), so the echoed input never matches.
        self.sock.sendall(f"echo {mark}-$((1+1)); {command}; echo {mark}-$((2+2))\n".encode())
        self.read_until(f"{mark}-4".encode(), timeout)
        text = self.buf.decode(errors="replace")
        start = text.index(f"{mark}-2") + len(mark) + 2
        return text[start:text.index(f"{mark}-4")].replace("\r", "").strip("\n")

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Daemon:
    count = 0

    def __init__(self, tmp, accel="tcg", args=()):
        self.tmp = pathlib.Path(tmp)
        self.root = vmdirs.ConfigRoot(self.tmp)
        # Short: virtiofsd socket paths live under it (108-byte limit).
        self.state = pathlib.Path(tempfile.mkdtemp(prefix="vmh-", dir="/tmp"))
        self.accel = accel
        self.args = list(args)  # more vmhostd options, e.g. --link-prefix
        if "--link-prefix" not in self.args:
            # Its own interface prefix: a daemon deletes every interface
            # under its prefix at start-up, so the default (vmh-) would
            # take down the links of a real daemon on this host.
            Daemon.count += 1
            self.args += ["--link-prefix",
                          f"t{os.getpid() % 0xfff:03x}{Daemon.count % 0xff:02x}-"]
        if "--cgroup-parent" not in self.args:
            # Its own cgroup parent, for the same reason: VM cgroups are
            # DAEMON/PARENT/NAME, and tests reuse VM names.
            Daemon.count += 1
            self.args += ["--cgroup-parent", f"vmhost-test-{os.getpid()}-{Daemon.count}"]
        self.cgroup_parent = self.args[self.args.index("--cgroup-parent") + 1]
        self.proc = None
        self.log = open(self.tmp / "vmhostd.stderr", "w+b")

    @property
    def control(self):
        return self.state / "control"

    @classmethod
    @contextlib.contextmanager
    def serving(cls, tmp, **kw):
        """A started daemon for a with-block (or a fixture), stopped and
        leak-checked on the way out."""
        d = cls(tmp, **kw).start()
        try:
            yield d
        finally:
            d.stop()

    def start(self):
        self.proc = subprocess.Popen(
            [str(VMHOSTD), "--config-root", str(self.root.path), "--state-dir",
             str(self.state), "--accel", self.accel, "--foreground", *self.args],
            stdout=self.log, stderr=self.log, start_new_session=True)
        wait_until(lambda: self.proc.poll() is not None or self._listening(), 10,
                   "the control socket")
        assert self.proc.poll() is None, self.stderr()
        return self

    def _listening(self):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(str(self.control))
            return True
        except OSError:
            return False

    def vm_processes(self):
        """Every process below the daemon but its engine: QEMU and helpers."""
        return [p for p in descendants(self.proc.pid)
                if not cmdline(p).startswith("vmhostd: engine")]

    def engine_pid(self):
        """The engine: the monitor's child that runs as "vmhostd: engine"."""
        for p in descendants(self.proc.pid):
            if cmdline(p).startswith("vmhostd: engine"):
                return p
        return None

    def kill9(self):
        """kill -9 of every vmhostd process: the monitor, and the engine,
        which follows it (a parent-death signal); returns once both are
        gone, so that the next start cannot meet the old socket's last
        listener."""
        engine = self.engine_pid()
        self.proc.kill()
        self.proc.wait()

        def gone():
            try:
                return "State:\tZ" in open(f"/proc/{engine}/status").read()
            except OSError:
                return True
        if engine:
            wait_until(gone, 10, "the engine to follow its monitor")

    def stderr(self):
        self.log.flush()
        return (self.tmp / "vmhostd.stderr").read_text(errors="replace")

    def env(self):
        return {**os.environ, "VMHOST_STATE_DIR": str(self.state)}

    def vm(self, *args, timeout=120, input=None):
        return subprocess.run([str(VM), *map(str, args)], env=self.env(),
                              capture_output=True, text=True, timeout=timeout,
                              input=input)

    def request(self, obj, raw=None, timeout=60):
        """One request line (or raw bytes); the parsed reply."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.control))
            s.sendall(raw if raw is not None else json.dumps(obj).encode() + b"\n")
            if raw is not None and not raw.endswith(b"\n"):
                s.shutdown(socket.SHUT_WR)     # a truncated request: say it ends here
            buf = b""
            while b"\n" not in buf:
                data = s.recv(65536)
                if not data:
                    break
                buf += data
            return json.loads(buf.partition(b"\n")[0])

    def record(self, name):
        for v in self.request({"op": "list"})["vms"]:
            if v["name"] == name:
                return v
        return None

    def wait_state(self, name, states, timeout=60):
        return wait_until(lambda: (r := self.record(name)) and r["state"] in states and r,
                          timeout, f"{name} in {states}")

    def serial_log(self, name):
        p = self.state / "vms" / name / "serial.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def wait_serial(self, name, text, timeout=90):
        wait_until(lambda: text in self.serial_log(name), timeout,
                   f"{text!r} in {name}'s serial.log")

    def console(self, name):
        return Console(self.control, name)

    def guest(self, name, shares=None, disks=1):
        """A bootable VM: the guest kit's appvm.img when built, else the
        VMM tests' throwaway busybox rootfs.  Extra disks are blank."""
        image = GUEST / "appvm.img"
        if image.exists():
            vm = self.root.vm(name, kernel=GUEST / "vmlinux", disks={"root": image})
        else:
            vm = qemu.guest_vm(self.root, name, GUEST / "vmlinux")
        vm.setting("memory", "256M")
        for i in range(1, disks):
            vm.disk(f"extra{i}", data=b"\0" * (1 << 20))
        for tag, target in (shares or {}).items():
            vm.share(tag, target)
        return vm

    def cgroups(self, name=None):
        """This daemon's VM cgroups (of name, or all), in every hierarchy."""
        out = []
        for base in qemu.cgroup_dirs(self.cgroup_parent):
            out += [d for d in base.iterdir() if d.is_dir() and
                    not d.name.startswith(".") and (name is None or d.name == name)]
        return out

    def run_pids(self, name):
        """Every process in name's cgroup (all hierarchies agree)."""
        (cg,) = [c for c in self.cgroups(name) if "/memory/" in str(c)] or \
            self.cgroups(name)[:1]
        return [int(p) for p in (cg / "cgroup.procs").read_text().split()]

    def remove_cgroup_parent(self):
        """Once the daemon is gone: no VM cgroup of it is left, and its
        own (empty) parent goes, which it cannot remove itself where the
        hierarchy's root is 0555 (it dropped dac_override)."""
        assert not self.cgroups(), f"cgroups left: {self.cgroups()}"
        qemu.remove_cgroup_parent(self.cgroup_parent)

    def assert_clean(self, name=None):
        """No QEMU, virtiofsd, passt, socket or cgroup left for stopped
        VMs."""
        if self.proc and self.proc.poll() is None:
            left = self.vm_processes()
            assert not left, "leaked: " + "; ".join(cmdline(p) for p in left)
        names = [name] if name else [p.name for p in (self.state / "vms").iterdir()]
        for n in names:
            for d in (self.state / "vms" / n, self.state / "run" / n):
                socks = [p.name for p in d.glob("*") if p.is_socket()] if d.exists() else []
                assert not socks, f"{n}: sockets left in {d}: {socks}"
                assert not (d / "record").exists(), f"{n}: run record left"
        mounts = pathlib.Path("/proc/mounts").read_text()
        assert str(self.state) not in mounts
        for n in names:
            assert not self.cgroups(n), f"{n}: cgroup left: {self.cgroups(n)}"

    def stop(self):
        """SIGTERM the daemon (it powers VMs off), then check for leaks."""
        if not self.proc:
            return
        kids = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                for p in [self.proc.pid] + kids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait()
                raise AssertionError("vmhostd did not exit on SIGTERM:\n" + self.stderr())
        left = [p for p in kids if os.path.exists(f"/proc/{p}") and
                not open(f"/proc/{p}/stat").read().split(") ")[1].startswith("Z")]
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert not left, "left running after vmhostd exited: " + "; ".join(map(cmdline, left))
        assert not self.control.exists(), "control socket left behind"
        self.remove_cgroup_parent()
        self.log.close()
        subprocess.run(["rm", "-rf", str(self.state)])
