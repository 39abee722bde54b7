#!/usr/bin/python3
"""vmhost benchmarks: `make bench`.

Every figure is measured in this one run, beside its baseline where it has
one, and reported as a ratio; nothing here asserts a time.  Results go to
build/bench/results.json and results.md; docs/benchmarks.md explains them.
Any failure on either side of a comparison fails its section, and the run
exits 1.

Sections (run a subset by naming them):
  start_latency   vm start -> ready line of a leaf VM, against its own QEMU
                  command line run by hand, the same VM on q35 as before,
                  and the floor (the fastest plain QEMU command line found)
  peer_libvirt    the same guest under Debian's libvirt: start, daemon
                  memory per running VM, virsh list against vm list
  density         1, 10, 30 VMs started at once; vmhostd RSS per VM
  control_plane   vm list --json with 100 VM dirs, 10 running; one QEMU stopped
  throughput      TCP app VM -> provider over their link, against two plain
                  QEMUs on a bridge in a private network namespace
  config_loading  vm check over 100, 1,000, 10,000 VM dirs
  wayland         frames per second of a continuously redrawing shm client
                  (weston-presentation-shm, 250x250) in a VM through
                  vmhost-vsock and waypipe, against the same client run
                  directly on the same headless weston
"""
import argparse
import contextlib
import datetime
import grp
import json
import os
import pathlib
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.daemon import Console, Daemon  # noqa: E402
from helpers.qemu import READY  # noqa: E402
from helpers.vmdirs import ConfigRoot  # noqa: E402

BUILD = ROOT / "build"
VM = BUILD / "vm"
GUEST = BUILD / "guest"
POLL = 0.005          # seconds between looks at a serial log, every side
BOOT_TIMEOUT = 300    # one boot on a loaded 2-core TCG host takes ~3 s
INIT_LINE = re.compile(rb"\[\s*(\d+\.\d+)\] Run /sbin/init as init process")

# Goals of issue 14, by the key that carries the figure.
GOALS = {
    "start_latency.ratio_p50": "<= 1.05",
    "start_latency.ratio_p90": "<= 1.05",
    "start_latency.floor_ratio_p50": "<= 1.15",
    "peer_libvirt.start_ratio_p50": "<= 0.30",
    "peer_libvirt.rss_per_vm_ratio": "<= 0.05",
    "peer_libvirt.list_p99_ratio": "<= 0.1",
    "density.rss_per_vm_kib_at_max": "<= 256",
    "control_plane.list_request_p99_ms": "<= 0.5",
    "control_plane.list_p99_ms": "<= exec_floor_p99_ms + 1",
    "throughput.ratio": ">= 0.95",
    "config_loading.per_vm_growth_100_to_10000": "< 2 (linear)",
}


# --- small tools -----------------------------------------------------------

def percentile(values, p):
    """Nearest-rank percentile (p an integer) of a non-empty list: the
    smallest value with at least p % of the values at or below it.  p50 of
    10 values is the 5th smallest, p90 the 9th, p99 the 10th; p50 of 20 is
    the 10th, p90 the 18th, p99 the 20th."""
    s = sorted(values)
    rank = max(1, -(-p * len(s) // 100))      # ceil(p * n / 100), exactly
    return s[rank - 1]


def summary(values, scale=1.0, digits=3):
    """p50/p90/p99/min/max of values, multiplied by scale."""
    return {k: round(percentile(values, p) * scale, digits)
            for k, p in (("p50", 50), ("p90", 90), ("p99", 99))} | {
        "min": round(min(values) * scale, digits),
        "max": round(max(values) * scale, digits), "n": len(values)}


def spread(values, digits=1):
    """min/median/max, for a few runs."""
    return {"min": round(min(values), digits),
            "median": round(statistics.median(values), digits),
            "max": round(max(values), digits), "runs": values}


def accel_rule():
    """The same rule vmhostd's --accel auto applies (platform.md)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
        os.close(fd)
        kvm_ok = True
    except OSError:
        kvm_ok = False
    vendor = any(os.path.exists(f"/sys/module/{m}") for m in ("kvm_intel", "kvm_amd"))
    return "kvm" if kvm_ok and vendor else "tcg"


def machine_info():
    cpu = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]
    guest = ""
    vmlinux = GUEST / "vmlinux"
    if vmlinux.exists():
        m = re.search(rb"Linux version (\S+)", vmlinux.read_bytes())
        guest = m.group(1).decode() if m else ""
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "host_kernel": platform.release(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "load_avg_at_start": round(os.getloadavg()[0], 1),
        "accel": accel_rule(),
        "qemu": qemu,
        "guest_kernel": guest,
        "commit": commit,
    }


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def daemon_rss(d):
    """vmhostd's resident memory, KiB: (monitor, engine).  Both processes
    are the daemon: the privileged monitor and its child, the engine."""
    engine = d.engine_pid()
    if engine is None:
        raise RuntimeError("vmhostd has no engine process")
    return rss_kib(d.proc.pid), rss_kib(engine)


def argv_of(pid):
    return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")


def parent_of(pid):
    return int(pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def wait_path(path, timeout, proc=None):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}) before {path} appeared")
        if time.monotonic() > end:
            raise RuntimeError(f"{path} did not appear within {timeout} s")
        time.sleep(POLL)


def cpu_idle(seconds=1.0):
    """The host's idle fraction of all its cores over the next seconds."""
    def sample():
        f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        return f[3] + f[4], sum(f)          # idle + iowait, all
    i0, t0 = sample()
    time.sleep(seconds)
    i1, t1 = sample()
    return (i1 - i0) / max(1, t1 - t0)


def settle(timeout=60, idle=0.5):
    """Wait (at most timeout s) until at least idle of the host's CPU time
    is idle over a second, so that what a section just did (guests still
    running their init, VMs torn down) is not timed by the next; other
    users of the host are what they are.  Returns the last idle fraction,
    for the record."""
    end = time.monotonic() + timeout
    while True:
        f = cpu_idle()
        if f >= idle or time.monotonic() > end:
            return round(f, 2)


def init_at(path, offset=0):
    """The guest kernel's clock when it ran init (its printk timestamp),
    from a serial log after offset; None if the line is not there."""
    try:
        data = pathlib.Path(path).read_bytes()
    except OSError:
        return None
    m = INIT_LINE.search(data[offset:] if len(data) >= offset else data)
    return float(m.group(1)) if m else None


class Tail:
    """Follow a growing log from an offset; seen() says whether the ready
    line has appeared since.  Reads only the new bytes at each look, and
    notes when the first of them appeared (first_at, time.monotonic())."""

    PANIC = b"Kernel panic - not syncing"

    def __init__(self, path, offset=0, text=READY):
        self.path, self.offset, self.text = pathlib.Path(path), offset, text.encode()
        self.start_offset = offset
        self.carry = b""
        self.panicked = False
        self.first_at = None

    @classmethod
    def from_end(cls, path, text=READY):
        try:
            return cls(path, os.path.getsize(path), text)
        except OSError:
            return cls(path, 0, text)

    def last_words(self, n=300):
        try:
            return self.path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def seen(self):
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.offset:      # rotated: start over on the new file
                    self.offset = 0
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return False
        if data and self.first_at is None:
            self.first_at = time.monotonic()
        self.offset += len(data)
        buf = self.carry + data
        self.carry = buf[-max(len(self.text), len(self.PANIC)):]
        self.panicked = self.panicked or self.PANIC in buf
        return self.text in buf


def wait_all(tails, t0, timeout=BOOT_TIMEOUT, alive=None):
    """{key: seconds from t0 (time.monotonic()) to its ready line} for every
    Tail in tails.  alive(): raise if a side died.  A guest kernel panic
    raises: a failure, like any other."""
    done = {}
    end = t0 + timeout
    while len(done) < len(tails):
        now = time.monotonic()
        for key, tail in tails.items():
            if key in done:
                continue
            if tail.seen():
                done[key] = now - t0
            elif tail.panicked:
                raise RuntimeError(f"guest kernel panic in {key}: ...{tail.last_words()!r}")
        if len(done) == len(tails):
            break
        if now > end:
            missing = sorted(set(tails) - set(done))
            raise RuntimeError(f"no {tails[missing[0]].text.decode()!r} within {timeout} s "
                               f"from {missing[:5]}; {missing[0]}'s log ends "
                               f"{tails[missing[0]].last_words()!r}")
        if alive:
            alive()
        time.sleep(POLL)
    return done


def medians(rows):
    """{key: median} over a list of {key: number} dicts, keys in the order
    they first appear."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: round(statistics.median([r[k] for r in rows if k in r]), 1) for k in keys}


# --- the daemon side -------------------------------------------------------

@contextlib.contextmanager
def running_daemon(tmp):
    """vmhostd with --accel auto on a private config root and state dir;
    every VM is forced off and the daemon checked for leaks on the way out."""
    d = Daemon(tmp, accel="auto").start()
    try:
        yield d
    finally:
        try:
            stop_vms(d, [v["name"] for v in d.request({"op": "list"})["vms"]
                         if v["state"] != "stopped" and v["state"] != "failed"])
        finally:
            d.stop()


def bench_guest(d, name, memory="256M", shares=None):
    """A bootable VM dir from the guest kit; shares: tags, each a fresh
    directory on the data root."""
    vm = d.guest(name, shares={t: d.root.data_dir(f"share-{name}-{t}") for t in shares or ()})
    vm.setting("memory", memory)
    return vm


def start_vms(d, names):
    """`vm start` for every name at once; {name: Tail} of their serial logs,
    and the time (time.monotonic()) just before the first was executed."""
    tails = {n: Tail.from_end(d.state / "vms" / n / "serial.log") for n in names}
    t0 = time.monotonic()
    procs = [subprocess.Popen([str(VM), "start", n], env=d.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) for n in names]
    return tails, t0, procs


def check_started(procs):
    for p in procs:
        out = p.communicate(timeout=BOOT_TIMEOUT)[0]
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(p.args)}: {out.decode(errors='replace').strip()}")


# Every `vm start` of the run: how many were asked for, how many reached
# the ready line, and on which machine type (issue 14: 100 of 100 leaf
# boots on microvm reach ready).
BOOTS = {"vm_start_attempted": 0, "vm_start_ready": 0, "ready_on_microvm": 0,
         "ready_on_q35": 0}


def boot_daemon_vms(d, names, timeout=BOOT_TIMEOUT):
    """Start names at once; (t0, {name: seconds from t0 to its ready line},
    {name: Tail of its serial log})."""
    tails, t0, procs = start_vms(d, names)
    BOOTS["vm_start_attempted"] += len(names)

    def alive():
        for p in procs:
            if p.poll() not in (None, 0):
                check_started([p])
    try:
        done = wait_all(tails, t0, timeout, alive)
    finally:
        check_started(procs)
    BOOTS["vm_start_ready"] += len(done)
    for name in done:
        key = f"ready_on_{machine_of(argv_of(qemu_pid(d, name)))}"
        BOOTS[key] = BOOTS.get(key, 0) + 1
    return t0, done, tails


def stop_vms(d, names):
    procs = [subprocess.Popen([str(VM), "stop", "--force", n], env=d.env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for n in names]
    for p in procs:
        p.wait(timeout=120)


def qemu_pid(d, name):
    pid = d.record(name)["pid"]
    if not pid:
        raise RuntimeError(f"{name} has no QEMU pid")
    return pid


TRACE_SEGMENTS = (   # (label, from phase, to phase) of vmhostd's start_trace
    ("CLI exec -> request accepted", "t0", "accepted"),
    ("request -> config loaded (engine -> monitor -> gatherer as the owner)",
     "accepted", "config_loaded"),
    ("config -> files opened (launch request; monitor: uid, taps, cgroup, sockets)",
     "config_loaded", "files_opened"),
    ("files -> virtiofsd spawned (jailed)", "files_opened", "helpers_spawned"),
    ("virtiofsd -> QEMU exec (sealed kernel copy, jail, argv, fork)",
     "helpers_spawned", "qemu_exec"),
    ("QEMU exec -> QMP greeting (QEMU's own set-up)", "qemu_exec", "qmp_greeting"),
    ("QMP greeting -> running (handshake, cont; vm start returns)",
     "qmp_greeting", "qmp_ready"),
    ("QEMU exec -> first serial byte (QEMU, firmware, early kernel)",
     "qemu_exec", "first_serial_byte"),
    ("first serial byte -> ready line (guest kernel and init)",
     "first_serial_byte", "ready_line"),
    ("ready line -> seen in serial.log by the bench (log write, polling)",
     "ready_line", "seen"),
)


def daemon_boot_phases(d, name, t0, seen, offset):
    """One `vm start`: ms from t0 to each phase of vmhostd's start_trace
    (`vm info --json`), to the bench seeing the ready line, and the guest
    kernel's clock at init."""
    info = json.loads(d.vm("info", "--json", name).stdout)
    ns = info["start_trace"]["monotonic_ns"]
    if not ns["ready_line"]:
        raise RuntimeError(f"{name}: start_trace has no ready_line: {ns}")
    at = {k: (v / 1e6 - t0 * 1e3) if v else None for k, v in ns.items()}
    at["t0"] = 0.0
    at["seen"] = seen * 1e3
    out = {label: round(at[b] - at[a], 2) for label, a, b in TRACE_SEGMENTS
           if at.get(a) is not None and at.get(b) is not None}
    out["total: vm start exec -> ready line seen"] = round(seen * 1e3, 2)
    k = init_at(d.state / "vms" / name / "serial.log", offset)
    if k is not None:
        out["guest kernel clock at init (printk)"] = round(k * 1e3, 2)
    return out


# --- the baseline side: the daemon's own QEMU command line, run by hand ----

class PlainQemu:
    """The QEMU (and virtiofsd) command lines vmhostd used for a VM, with
    every file descriptor it passed replaced by the path a hand-written
    command line would use.  Devices, machine, accelerator, memory backend
    and sandbox stay exactly the daemon's, so the difference measured is
    the daemon itself."""

    def __init__(self, qemu_argv, fsd_argvs, info, workdir, taps=None):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg = info["config"]
        disks = [disk["host_path"] for disk in cfg["disks"]]
        self.serial = self.dir / "serial.log"
        self.fsd_socks = []
        self.fsds = []
        for i, argv in enumerate(fsd_argvs):
            sock = self.dir / f"vfs{i}.sock"
            self.fsd_socks.append(sock)
            self.fsds.append([f"--socket-path={sock}" if a.startswith("--fd=") else a
                              for a in argv])
        taps = dict(taps or {})
        out, it = [], iter(qemu_argv)
        for a in it:
            if a == "-S":
                continue        # vmhostd's QEMU waits for its "cont" over QMP
            if a == "-add-fd":
                next(it)        # the disk is named by path below instead
                continue
            if a == "-kernel":
                out += [a, cfg["kernel"]]
                next(it)
                continue
            out.append(a)
            if a in ("-chardev", "-blockdev", "-netdev"):
                out.append(self._replace(next(it), disks, taps))
        if any(re.search(r"(^|,)fd=\d|addr\.type=fd", a) or "/dev/fdset/" in a
               for a in out):
            raise RuntimeError(f"unhandled file descriptor in QEMU argv: {out}")
        self.argv = out
        self.procs = []
        self.qemu_at = None

    def _replace(self, opt, disks, taps):
        # vmhostd's QMP, serial and console are listening sockets it made
        # (launch.h); virtio-fs is a connected one.
        m = re.fullmatch(r"socket,id=([^,]+),fd=\d+(,server=on,wait=off)?", opt)
        if m:
            cid = m.group(1)
            if cid == "serial0":
                return f"file,id={cid},path={self.serial}"
            if cid.startswith("vfs"):
                return f"socket,id={cid},path={self.fsd_socks[int(cid[3:])]}"
            return f"socket,id={cid},path={self.dir / cid}.sock,server=on,wait=off"
        m = re.fullmatch(r"tap,id=([^,]+),fd=\d+", opt)
        if m:
            return f"tap,id={m.group(1)},ifname={taps.pop(m.group(1))},script=no,downscript=no"
        if opt.startswith("{"):
            blk = json.loads(opt)
            f = blk.get("file", {})
            m = re.fullmatch(r"/dev/fdset/(\d+)", f.get("filename", ""))
            if m:
                f["filename"] = disks[int(m.group(1)) - 1]
            return json.dumps(blk, separators=(",", ":"))
        return opt

    @classmethod
    def of(cls, d, name, workdir, **kw):
        """From the VM name runs under daemon d right now."""
        pid = qemu_pid(d, name)
        info = json.loads(d.vm("info", "--json", name).stdout)
        # Each share's virtiofsd, as the monitor's run record names it.
        # vmhostd's serves the share's fd as source=/share in its own
        # mount namespace; a hand-written command line names the directory.
        record = json.loads((d.state / "run" / name / "record").read_text())
        helpers = {h["what"]: h["pid"] for h in record["helpers"]}
        fsds = []
        for share in info["config"]["shares"]:
            fsd = helpers.get(f"virtiofsd for share {share['tag']}")
            if not fsd or parent_of(fsd) != d.proc.pid:
                raise RuntimeError(f"{name}: no virtiofsd of the monitor's for share "
                                   f"{share['tag']} in its run record: {record['helpers']}")
            fsds.append([f"source={share['host_dir']}" if x.startswith("source=") else x
                         for x in argv_of(fsd)])
        return cls(argv_of(pid), fsds, info, workdir, **kw)

    def start(self, prefix=()):
        """Exec virtiofsds, wait for their sockets, exec QEMU, as a script
        would.  Returns (Tail of the serial log, t0); self.qemu_at is when
        QEMU was executed (time.monotonic())."""
        for p in [self.serial, *self.fsd_socks]:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        t0 = time.monotonic()
        log = open(self.dir / "qemu.log", "ab")
        for argv, sock in zip(self.fsds, self.fsd_socks):
            p = subprocess.Popen([*prefix, *argv], stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT)
            self.procs.append(p)
            wait_path(sock, 30, p)
        self.qemu_at = time.monotonic()
        self.procs.append(subprocess.Popen([*prefix, *self.argv], stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT))
        log.close()
        return Tail(self.serial), t0

    def alive(self):
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"plain {p.args[0]} exited ({p.returncode}); see "
                                   f"{self.dir / 'qemu.log'}")

    def boot(self):
        """Start, wait for the ready line, stop: (seconds to it, phases)."""
        try:
            tail, t0 = self.start()
            seen = wait_all({"plain": tail}, t0, alive=self.alive)["plain"]
        finally:
            self.stop()
        phases = {"script start -> QEMU exec (virtiofsd, its socket)":
                  round((self.qemu_at - t0) * 1e3, 2),
                  "QEMU exec -> first serial byte seen (QEMU, firmware, early kernel)":
                  round((tail.first_at - self.qemu_at) * 1e3, 2),
                  "first serial byte -> ready line seen (guest kernel and init)":
                  round((t0 + seen - tail.first_at) * 1e3, 2),
                  "total: script start -> ready line seen": round(seen * 1e3, 2)}
        k = init_at(self.serial)
        if k is not None:
            phases["guest kernel clock at init (printk)"] = round(k * 1e3, 2)
        return seen, phases

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
            p.wait()
        self.procs = []




# --- command lines the daemon's is compared with ---------------------------

QBOOT = "/usr/share/qemu/qboot.rom"
VIRTIO_MMIO = re.compile(r"^(virtio-serial|virtio-blk|vhost-user-fs|virtio-net)-device,")


def machine_of(argv):
    return argv[argv.index("-machine") + 1].split(",", 1)[0]


def on_q35_as_before(argv):
    """A leaf VM's argv (microvm) as vmhostd built it for every VM before
    leaf VMs moved to microvm: q35 with qboot and no PS/2 controller, four
    spare hot-plug ports, virtio over PCI, no TSC rate for the guest."""
    ports = []
    for i in range(4):
        ports += ["-device", f"pcie-root-port,id=hp{i},bus=pcie.0,chassis={i + 1},"
                             f"addr=0x18.0x{i}{',multifunction=on' if i == 0 else ''},"
                             f"io-reserve=0"]
    out, it = [], iter(argv)
    for a in it:
        if a == "-global":
            v = next(it)
            if not v.startswith("virtio-mmio."):
                out += [a, v]
        elif a == "-machine":
            next(it)
            out += [a, "q35,memory-backend=mem,i8042=off", "-bios", QBOOT]
        elif a == "-append":
            out += [a, re.sub(r" tsc_early_khz=\d+ tsc=reliable", "", next(it))]
        elif a == "-device":
            out += [a, VIRTIO_MMIO.sub(r"\1-pci,", next(it))]
        elif a == "-sandbox":
            out += [a, next(it), *ports]
        else:
            out.append(a)
    return out


def floor_argv(argv):
    """The floor: the fastest plain command line found for the same kernel,
    image and kernel command line, with serial, console and disk: the leaf
    VM's own, less what only a supervisor needs: QMP, the seccomp sandbox,
    shareable memfd RAM (for virtio-fs) and -name.  docs/benchmarks.md
    lists the variants tried."""
    out, it = [], iter(argv)
    for a in it:
        if a in ("-name", "-sandbox", "-mon"):
            next(it)
        elif a == "-chardev":
            v = next(it)
            if not v.startswith("socket,id=qmp,"):
                out += [a, v]
        elif a == "-object":
            v = next(it)
            if not v.startswith("memory-backend-memfd,id=mem,"):
                out += [a, v]
        elif a == "-machine":
            out += [a, next(it).replace(",memory-backend=mem", "")]
        else:
            out.append(a)
    return out


# --- the peer: Debian's libvirt --------------------------------------------

LIBVIRT_URI = "qemu:///system"


class Libvirt:
    """Debian's libvirt (libvirt-daemon-system 9.0), the peer a user here
    would pick.  With no systemd here its daemons are started by hand as
    root (virtlogd -d, libvirtd -d) when none runs, and stopped after.
    Domains are vmhbench-NAME, destroyed and undefined after.

    /dev/kvm: libvirt compares whether its QEMU user can open /dev/kvm with
    what it saw when it probed QEMU's capabilities, and on a mismatch
    throws that cache away and probes QEMU again at every start (seconds
    here: /dev/kvm is root-only, as no udev runs).  A standard Debian host
    has udev make it root:kvm 0660, with libvirt's QEMU user in kvm; the
    same is done for the section and undone after.  vmhost is unaffected:
    it opens /dev/kvm as root, and runs TCG here either way."""

    def __init__(self, workdir, accel):
        missing = [t for t in ("virsh", "libvirtd", "virtlogd") if not shutil.which(t)]
        if missing:
            raise RuntimeError(f"{', '.join(missing)} missing: the peer is Debian's libvirt; "
                               f"run scripts/install-deps.sh --bench (make bench does)")
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.accel = accel
        self.started = []
        self.kvm_was = None
        self.domains = []

    @staticmethod
    def pid(name):
        """The pid of a running daemon name, from its pidfile."""
        try:
            pid = int(pathlib.Path(f"/run/{name}.pid").read_text().strip())
            if pathlib.Path(f"/proc/{pid}/comm").read_text().strip() == name:
                return pid
        except (OSError, ValueError):
            pass
        return None

    def virsh(self, *args, check=True, timeout=120):
        p = subprocess.run(["virsh", "-c", LIBVIRT_URI, *args], capture_output=True,
                           text=True, timeout=timeout)
        if check and p.returncode:
            raise RuntimeError(f"virsh {' '.join(args)}: {p.stderr.strip() or p.stdout.strip()}")
        return p

    def __enter__(self):
        try:
            self._kvm_as_udev()
            for name in ("virtlogd", "libvirtd"):
                if self.pid(name) is None:
                    subprocess.run([name, "-d"], check=True, timeout=60)
                    self.started.append(name)
            end = time.monotonic() + 60
            while self.virsh("list", check=False).returncode:
                if time.monotonic() > end:
                    raise RuntimeError("libvirtd did not answer virsh within 60 s")
                time.sleep(0.1)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _kvm_as_udev(self):
        try:
            st = os.stat("/dev/kvm")
            kvm = grp.getgrnam("kvm").gr_gid
        except (OSError, KeyError):
            return
        if st.st_gid == kvm and st.st_mode & 0o060 == 0o060:
            return
        self.kvm_was = (st.st_gid, st.st_mode & 0o7777)
        os.chown("/dev/kvm", -1, kvm)
        os.chmod("/dev/kvm", 0o660)

    def close(self):
        for dom in self.domains:
            self.virsh("destroy", dom, check=False)
            self.virsh("undefine", dom, check=False)
        self.domains = []
        for name in reversed(self.started):
            pid = self.pid(name)
            if pid:
                os.kill(pid, signal.SIGTERM)
                end = time.monotonic() + 30
                while os.path.exists(f"/proc/{pid}") and time.monotonic() < end:
                    time.sleep(0.05)
        self.started = []
        if self.kvm_was:
            os.chown("/dev/kvm", -1, self.kvm_was[0])
            os.chmod("/dev/kvm", self.kvm_was[1])
            self.kvm_was = None

    def define(self, name, cfg):
        """Domain vmhbench-NAME for the guest vmhost boots from cfg (`vm
        info`'s config): the same kernel and command line, the disks
        (read-only virtio), the virtio-fs shares with their tags in fw_cfg
        (as vmhost's guest init reads them), memory, vCPUs, a serial console
        to a file and a virtio console on a socket.  As a user would write
        it for speed: q35 with qboot, no USB, no balloon.  libvirt 9.0 has
        no microvm and no switch for q35's PS/2 controller.  Under TCG the
        kernel gets no_timer_check, as vmhost gives its q35 guests (without
        it a starved guest panics)."""
        dom = f"vmhbench-{name}"
        serial = self.dir / f"{name}.serial.log"
        kernel = os.path.realpath(cfg["kernel"])
        cmdline = cfg["cmdline"] + (" no_timer_check" if self.accel == "tcg" else "")
        disks = "".join(
            f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
            f"<source file='{os.path.realpath(d['host_path'])}'/>"
            f"<target dev='vd{chr(ord('a') + i)}' bus='virtio'/><readonly/></disk>"
            for i, d in enumerate(cfg["disks"]))
        shares = "".join(
            f"<filesystem type='mount' accessmode='passthrough'><driver type='virtiofs'/>"
            f"<binary path='/usr/lib/qemu/virtiofsd'/><source dir='{s['host_dir']}'/>"
            f"<target dir='{s['tag']}'/></filesystem>" for s in cfg["shares"])
        tags = ",".join(s["tag"] for s in cfg["shares"])
        xml = f"""<domain type='{"kvm" if self.accel == "kvm" else "qemu"}'>
  <name>{dom}</name>
  <memory unit='b'>{cfg["memory"]}</memory>
  <vcpu>{cfg["cpus"]}</vcpu>
  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <loader type='rom'>{QBOOT}</loader>
    <kernel>{kernel}</kernel>
    <cmdline>{cmdline}</cmdline>
  </os>
  {f"<sysinfo type='fwcfg'><entry name='opt/vmhost/virtiofs-tags'>{tags}</entry></sysinfo>"
   if tags else ""}
  <features><acpi/></features>
  <cpu mode='{"host-passthrough" if self.accel == "kvm" else "maximum"}'/>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    {disks}
    {shares}
    <serial type='file'><source path='{serial}'/><target port='0'/></serial>
    <console type='unix'><source mode='bind' path='{self.dir / name}.hvc0.sock'/>
      <target type='virtio'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
"""
        path = self.dir / f"{name}.xml"
        path.write_text(xml)
        self.virsh("define", str(path))
        self.domains.append(dom)
        return dom, serial

    def start(self, doms):
        """virsh start for each (dom, serial) at once; (t0, {dom: Tail}, procs)."""
        tails = {}
        for dom, serial in doms:
            with contextlib.suppress(FileNotFoundError):
                serial.unlink()
            tails[dom] = Tail(serial)
        t0 = time.monotonic()
        procs = {dom: subprocess.Popen(["virsh", "-c", LIBVIRT_URI, "start", dom],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for dom, _ in doms}
        return t0, tails, procs

    def boot(self, doms):
        """Start doms at once and wait for every ready line: (t0, {dom:
        seconds}, {dom: seconds until virsh start returned})."""
        t0, tails, procs = self.start(doms)
        returned = {}

        def alive():
            for dom, p in procs.items():
                if dom not in returned and p.poll() is not None:
                    returned[dom] = time.monotonic() - t0
                    if p.returncode:
                        raise RuntimeError(f"virsh start {dom}: "
                                           f"{p.stderr.read().decode(errors='replace').strip()}")
        done = wait_all(tails, t0, alive=alive)
        for dom, p in procs.items():
            p.wait(timeout=BOOT_TIMEOUT)
            alive()
        return t0, done, returned

    def destroy(self, doms):
        for dom, _ in doms:
            self.virsh("destroy", dom)

    def daemon_rss(self):
        """libvirt's daemons' resident memory, KiB: (libvirtd, virtlogd),
        the two that serve its QEMUs (virtlogd keeps each one's log)."""
        out = []
        for name in ("libvirtd", "virtlogd"):
            pid = self.pid(name)
            if pid is None:
                raise RuntimeError(f"{name} is not running any more")
            out.append(rss_kib(pid))
        return tuple(out)


# --- sections --------------------------------------------------------------

# Whose memory counts as each side's daemon's in peer_libvirt.
DAEMON_PROCESSES = {"vm start (vmhostd)": "monitor + engine",
                    "virsh start (libvirtd)": "libvirtd + virtlogd"}

LEAF = "vm start (vmhostd), leaf VM with a share"
PLAIN = "plain QEMU, the daemon's argv"
Q35 = "plain QEMU, same VM on q35 as before"
BARE = "vm start (vmhostd), leaf VM with serial, console, disk"
FLOOR = "floor: fastest plain QEMU, serial, console, disk"


def ours(d, name):
    """One `vm start` of name to its ready line, then a forced stop:
    (seconds, where the time went)."""
    def run():
        t0, done, tails = boot_daemon_vms(d, [name])
        try:
            return done[name], daemon_boot_phases(d, name, t0, done[name],
                                                   tails[name].start_offset)
        finally:
            stop_vms(d, [name])
    return run


def interleave(sides, runs):
    """runs rounds of every side (after one warm-up each), the order
    rotated each round: ({side: [seconds]}, {side: [phases]})."""
    times = {k: [] for k in sides}
    phases = {k: [] for k in sides}
    for f in sides.values():
        f()                                   # warm-up: page cache, lazy code
    keys = list(sides)
    for i in range(runs):
        for k in keys[i % len(keys):] + keys[:i % len(keys)]:
            t, ph = sides[k]()
            times[k].append(t)
            phases[k].append(ph)
    return times, phases


def bench_start_latency(tmp, runs=20):
    """vm start -> ready line of two leaf VMs, interleaved with plain QEMU
    command lines: the daemon's own (the VM with a share), the same VM on
    q35 as vmhostd started every VM before, and the floor (the VM with
    serial, console and disk only)."""
    with running_daemon(tmp / "start") as d:
        bench_guest(d, "lat", shares=["data"])
        bench_guest(d, "bare")
        boot_daemon_vms(d, ["lat", "bare"])
        plain = PlainQemu.of(d, "lat", tmp / "start-plain")
        q35 = PlainQemu.of(d, "lat", tmp / "start-q35")
        floor = PlainQemu.of(d, "bare", tmp / "start-floor")
        stop_vms(d, ["lat", "bare"])
        machine = machine_of(plain.argv)
        q35.argv = on_q35_as_before(q35.argv)
        floor.argv = floor_argv(floor.argv)
        sides = {LEAF: ours(d, "lat"), PLAIN: plain.boot, Q35: q35.boot,
                 BARE: ours(d, "bare"), FLOOR: floor.boot}
        if machine != "microvm":
            del sides[Q35]      # the daemon's argv is q35 already
        times, phases = interleave(sides, runs)
    s = {k: summary(v) for k, v in times.items()}
    res = {"rows": [{"side": k, **v} for k, v in s.items()],
           "ratio_p50": round(s[LEAF]["p50"] / s[PLAIN]["p50"], 3),
           "ratio_p90": round(s[LEAF]["p90"] / s[PLAIN]["p90"], 3),
           "floor_ratio_p50": round(s[BARE]["p50"] / s[FLOOR]["p50"], 3),
           "floor_ratio_p90": round(s[BARE]["p90"] / s[FLOOR]["p90"], 3),
           "leaf_machine": machine}
    if Q35 in s:
        res["q35_gain_p50_s"] = round(s[Q35]["p50"] - s[PLAIN]["p50"], 3)
        res["leaf_vs_q35_p50"] = round(s[PLAIN]["p50"] / s[Q35]["p50"], 3)
        res["vm_start_vs_q35_p50"] = round(s[LEAF]["p50"] / s[Q35]["p50"], 3)
    res["where_the_time_goes_p50_ms"] = {k: medians(v) for k, v in phases.items()}
    res["guest"] = "appvm.img, 256 MiB, 1 vCPU; the leaf VM 1 virtio-fs share, the bare one none"
    res["qemu_argv"] = plain.argv
    res["floor_argv"] = floor.argv
    if Q35 in s:
        res["q35_argv"] = q35.argv
    return res


def bench_peer_libvirt(tmp, runs=20, running=8, calls=200):
    """The same guest under vmhost and under Debian's libvirt, interleaved:
    start -> ready line, daemon RSS growth per running VM, list."""
    accel = accel_rule()
    with running_daemon(tmp / "peer") as d, Libvirt(tmp / "peer-libvirt", accel) as lv:
        bench_guest(d, "lat", shares=["data"])
        doms = {"lat": lv.define("lat", json.loads(d.vm("info", "--json", "lat").stdout)
                                 ["config"])}

        def libvirt_side():
            t0, done, returned = lv.boot([doms["lat"]])
            dom = doms["lat"][0]
            lv.destroy([doms["lat"]])
            ph = {"virsh start -> returned": round(returned[dom] * 1e3, 2),
                  "total: virsh start -> ready line seen": round(done[dom] * 1e3, 2)}
            k = init_at(doms["lat"][1])
            if k is not None:
                ph["guest kernel clock at init (printk)"] = round(k * 1e3, 2)
            return done[dom], ph
        ours_side = "vm start (vmhostd)"
        peer_side = "virsh start (libvirtd)"
        times, phases = interleave({ours_side: ours(d, "lat"), peer_side: libvirt_side}, runs)

        # Daemon memory per running VM: each side warmed up above, then
        # `running` more VMs made (a VM directory; a domain defined from
        # its config) and booted to their ready line.
        rss = {}
        names = [f"r{i}" for i in range(running)]
        before = daemon_rss(d)
        for n in names:
            bench_guest(d, n, memory="128M")
        boot_daemon_vms(d, names)
        rss[ours_side] = (before, daemon_rss(d))
        cfg = {n: json.loads(d.vm("info", "--json", n).stdout)["config"] for n in names}
        before = lv.daemon_rss()
        doms |= {n: lv.define(n, cfg[n]) for n in names}
        lv.boot([doms[n] for n in names])
        rss[peer_side] = (before, lv.daemon_rss())
        idle = settle()

        # Listing, with `running` VMs up on each side.
        t = {ours_side: [], peer_side: []}
        cmds = {ours_side: ([str(VM), "list"], d.env()),
                peer_side: (["virsh", "-c", LIBVIRT_URI, "list", "--all"], None)}
        for i in range(calls):
            for k in (list(t) if i % 2 else list(t)[::-1]):
                argv, env = cmds[k]
                t0 = time.monotonic()
                p = subprocess.run(argv, env=env, capture_output=True, timeout=30)
                t[k].append((time.monotonic() - t0) * 1e3)
                if p.returncode:
                    raise RuntimeError(f"{' '.join(argv)}: {p.stderr!r}")
        listed = p.stdout.decode()
        if sum(f"vmhbench-{n} " in listed for n in names) != running:
            raise RuntimeError(f"virsh list does not show the {running} domains: {listed!r}")
        lv.destroy([doms[n] for n in names])
        stop_vms(d, names)
    s = {k: summary(v) for k, v in times.items()}
    per_vm = {k: round((sum(b) - sum(a)) / running, 1) for k, (a, b) in rss.items()}
    lists = {k: summary(v, 1, 2) for k, v in t.items()}
    return {
        "rows": [{"side": k, **v} for k, v in s.items()],
        "start_ratio_p50": round(s[ours_side]["p50"] / s[peer_side]["p50"], 3),
        "start_ratio_p90": round(s[ours_side]["p90"] / s[peer_side]["p90"], 3),
        "where_the_time_goes_p50_ms": {k: medians(v) for k, v in phases.items()},
        "rss_rows": [{"daemon": k, "processes": DAEMON_PROCESSES[k],
                      "rss_before_kib": " + ".join(map(str, rss[k][0])),
                      "rss_after_kib": " + ".join(map(str, rss[k][1])),
                      "running_vms": running, "rss_per_vm_kib": per_vm[k]} for k in rss],
        "rss_per_vm_ratio": round(per_vm[ours_side] / per_vm[peer_side], 4)
        if per_vm[peer_side] > 0 else None,
        "list_rows": [{"command": " ".join(cmds[k][0][-2:] if k == peer_side else ["vm", "list"]),
                       **v} for k, v in lists.items()],
        "list_p99_ratio": round(lists[ours_side]["p99"] / lists[peer_side]["p99"], 3),
        "list_p50_ratio": round(lists[ours_side]["p50"] / lists[peer_side]["p50"], 3),
        "host_cpu_idle_before_list": idle,
        "guest": "appvm.img, 256 MiB, 1 vCPU, 1 virtio-fs share (start); "
                 f"{running} VMs of 128 MiB (memory, list)",
        "libvirt": subprocess.run(["libvirtd", "--version"], capture_output=True,
                                  text=True).stdout.strip(),
        "libvirt_domain_xml": (tmp / "peer-libvirt" / "lat.xml").read_text(),
    }


def bench_density(tmp, counts=(1, 10, 30)):
    """N VMs of 128 MiB started at once: time to the last ready line and
    vmhostd's RSS growth per running VM.  Each N gets a fresh daemon (its
    baseline taken after one warm-up start and stop), so no round's
    leftovers count in the next."""
    rows = []
    for count in counts:
        with running_daemon(tmp / f"density-{count}") as d:
            names = [f"d{i:02d}" for i in range(count)]
            for n in names:
                bench_guest(d, n, memory="128M")
            boot_daemon_vms(d, names[:1])   # warm-up: code and libraries paged in
            stop_vms(d, names[:1])
            rss0 = daemon_rss(d)
            try:
                # TCG boots share the cores: allow for each VM's CPU time.
                _, each, _ = boot_daemon_vms(d, names, BOOT_TIMEOUT + 20 * count)
                rss1 = daemon_rss(d)
            finally:
                stop_vms(d, names)
        rows.append({"vms": count, "all_ready_s": round(max(each.values()), 2),
                     "first_ready_s": round(min(each.values()), 2),
                     "vmhostd_rss_before_kib": sum(rss0), "vmhostd_rss_after_kib": sum(rss1),
                     "monitor_rss_kib": f"{rss0[0]} -> {rss1[0]}",
                     "engine_rss_kib": f"{rss0[1]} -> {rss1[1]}",
                     "rss_per_vm_kib": round((sum(rss1) - sum(rss0)) / count, 1)})
    return {"rows": rows, "rss_per_vm_kib_at_max": rows[-1]["rss_per_vm_kib"],
            "guest": "appvm.img, 128 MiB, 1 vCPU, no share (leaf VMs)",
            "daemon": "vmhostd = its monitor + its engine (RSS of both)"}


def list_request(control):
    """One list request on the control socket, as lean as a client gets:
    connect, send, read the reply line; not parsed."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(control)
        s.sendall(b'{"op":"list"}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            data = s.recv(1 << 20)
            if not data:
                raise RuntimeError(f"list request: connection closed after {buf[-200:]!r}")
            buf += data
    return buf


def time_list(d, calls, frozen_pid):
    """Wall times in ms, interleaved call by call: `vm list --json` (exec to
    exit), the bare list request on the control socket, and exec of
    /bin/true (the floor of any CLI), each with frozen_pid running and with
    it SIGSTOPped, calls of each.  The parsed output of the last list."""
    t = {(k, f): [] for k in ("cli", "sock", "floor") for f in (False, True)}
    control = str(d.control)

    def timed(key, f, *args, **kw):
        t0 = time.monotonic()
        r = f(*args, **kw)
        t[key].append((time.monotonic() - t0) * 1000)
        return r
    try:
        for i in range(2 * calls):
            frozen = i % 2 == 1
            os.kill(frozen_pid, signal.SIGSTOP if frozen else signal.SIGCONT)
            p = timed(("cli", frozen), subprocess.run, [str(VM), "list", "--json"],
                      env=d.env(), capture_output=True, timeout=10)
            if p.returncode != 0:
                raise RuntimeError(f"vm list --json: {p.stderr!r}")
            reply = timed(("sock", frozen), list_request, control)
            if not json.loads(reply).get("ok"):
                raise RuntimeError(f"list request: {reply[:300]!r}")
            timed(("floor", frozen), subprocess.run, ["/bin/true"], capture_output=True,
                  timeout=10)
    finally:
        os.kill(frozen_pid, signal.SIGCONT)
    return json.loads(p.stdout), t


def bench_control_plane(tmp, total=100, running=10, calls=200):
    """vm list --json over total VM dirs of which running run; every other
    call with one of those QEMUs stopped by SIGSTOP."""
    with running_daemon(tmp / "control") as d:
        names = [f"c{i:03d}" for i in range(total)]
        for i, n in enumerate(names):
            if i < running:
                bench_guest(d, n, memory="128M")
            else:
                d.root.vm(n, disks=["root"])
        boot_daemon_vms(d, names[:running])
        idle = settle()
        listed, t = time_list(d, calls, qemu_pid(d, names[0]))
    states = [v["state"] for v in listed]
    if len(states) != total or states.count("running") != running:
        raise RuntimeError(f"vm list shows {len(states)} VMs, {states.count('running')} running")
    label = {"cli": "vm list --json (exec to exit)", "sock": "list request on the socket",
             "floor": "exec /bin/true (the exec floor)"}
    rows = [{"case": label[k] + (", one QEMU SIGSTOPped" if f else ""), **summary(v, 1, 2)}
            for (k, f), v in t.items()]
    p99 = {key: summary(v, 1, 2)["p99"] for key, v in t.items()}
    return {"rows": rows, "list_p99_ms": p99["cli", False],
            "list_request_p99_ms": p99["sock", False], "exec_floor_p99_ms": p99["floor", False],
            "list_over_floor_p99_ms": round(p99["cli", False] - p99["floor", False], 2),
            "p99_ratio_stopped_qemu": round(p99["cli", True] / p99["cli", False], 2),
            "host_cpu_idle_before_timing": idle,
            "setup": f"{total} VM dirs, {running} running (appvm.img, 128 MiB), "
                     f"{calls} calls per case, cases interleaved call by call"}


class Netns:
    """A private network namespace with a quiet bridge and two taps, as
    vmhostd builds one link (docs/networking.md); deleted with all it holds."""

    def __init__(self, name, taps):
        self.name = name
        self.ip("netns", "add", name, netns=False)
        try:
            self.ip("link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
            self.ip("link", "set", "br0", "addrgenmode", "none")
            for tap in taps:
                self.ip("tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr")
                self.ip("link", "set", tap, "addrgenmode", "none")
                self.ip("link", "set", tap, "master", "br0", "up")
            self.ip("link", "set", "br0", "up")
        except BaseException:
            self.delete()
            raise

    def ip(self, *args, netns=True):
        subprocess.run(["ip", *(("-n", self.name) if netns else ()), *args], check=True,
                       capture_output=True, timeout=30)

    @property
    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def console_on(path):
    """helpers.daemon.Console's command runner on a plain hvc0 socket (no
    control-protocol handshake)."""
    con = Console.__new__(Console)
    con.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    con.sock.connect(str(path))
    con.buf = b""
    return con


def link_carries(client_con):
    """Whether the client reaches its provider's end of the link."""
    out = client_con.run(f"ping -c 10 -w 15 {LINK_PROVIDER_ADDR} 2>&1 | grep received",
                         timeout=40)
    return not re.search(r"\b0 packets received", out)


def iperf(client_con, server_con, seconds):
    """Mbit/s received by the provider from one TCP stream, the first 2 s
    (slow start) left out."""
    server_con.run("iperf3 -s -1 -D >/dev/null 2>&1; sleep 0.5")
    out = client_con.run(f"timeout {seconds + 30} iperf3 -c {LINK_PROVIDER_ADDR} "
                         f"-t {seconds} -O 2 -f m --connect-timeout 5000 2>&1",
                         timeout=seconds + 60)
    m = re.search(r"([\d.]+) Mbits/sec\s+receiver", out)
    if not m:
        raise RuntimeError(f"iperf3 gave no receiver rate: {out[-500:]!r}")
    return float(m.group(1))


LINK_PROVIDER_ADDR = "169.254.0.1"   # the provider's end of every link
LINK_UP = {"client": "client of link", "provider": "provider of link"}  # vm-netconf


def bench_throughput(tmp, seconds=8, rounds=9):
    """TCP from an app VM to its provider over the link vmhostd builds,
    against the same two command lines joined by a bridge and two taps in
    a private network namespace; rounds alternate which side goes first.
    Any failure on either side fails the section."""
    with running_daemon(tmp / "net") as d:
        for name, role in (("prov", "netvm"), ("app", "appvm")):
            vm = d.root.vm(name, kernel=GUEST / "vmlinux",
                           disks={"root": GUEST / f"{role}.img"})
            vm.setting("memory", "256M")
        vm.provider("prov")
        boot_daemon_vms(d, ["prov"])
        boot_daemon_vms(d, ["app"])
        app_argv = argv_of(qemu_pid(d, "app"))
        nic = [a for a in app_argv if re.match(r"virtio-net-(pci|device),", a)
               and "mac=0A:B3:EC:00" in a]
        if not nic:
            raise RuntimeError(f"vmhostd gave the client no link NIC: {app_argv}")
        for name, what in (("app", "client"), ("prov", "provider")):
            wait_all({name: Tail(d.state / "vms" / name / "serial.log", 0, LINK_UP[what])},
                     time.monotonic(), timeout=60)
        # The baseline: both command lines as vmhostd ran them, the client's
        # tap and the provider's hot-plugged NIC (same port, same MAC)
        # given at boot instead, both taps on one bridge.
        mac = re.search(r"mac=0A:B3:EC:00:([0-9A-F:]+)", nic[0]).group(1)
        app_plain = PlainQemu.of(d, "app", tmp / "net-plain-app",
                                 taps={re.search(r"netdev=([^,]+)", nic[0]).group(1): "tapc"})
        prov_plain = PlainQemu.of(d, "prov", tmp / "net-plain-prov")
        prov_plain.argv += ["-netdev", "tap,id=link,ifname=tapp,script=no,downscript=no",
                            "-device", f"virtio-net-pci,id=link,netdev=link,bus=hp0,"
                                       f"mac=0A:B3:EC:80:{mac}"]
        ns = Netns(f"vmhbench{os.getpid()}", ["tapc", "tapp"])
        cons = []
        try:
            tails = {}
            for name, plain in (("prov", prov_plain), ("app", app_plain)):
                tails[name], t0 = plain.start(prefix=ns.prefix)
            for name, what in (("app", "client"), ("prov", "provider")):
                wait_all({name: tails[name]}, t0, alive=lambda: [p.alive() for p in
                                                                 (app_plain, prov_plain)])
                wait_all({name: Tail((app_plain if name == "app" else prov_plain).serial, 0,
                                     LINK_UP[what])}, time.monotonic(), timeout=60)
            ours_cons = (d.console("app"), d.console("prov"))
            plain_cons = (console_on(app_plain.dir / "hvc0.sock"),
                          console_on(prov_plain.dir / "hvc0.sock"))
            cons = [*ours_cons, *plain_cons]
            for what, (client_con, _) in (("vmhostd's link", ours_cons),
                                          ("the plain bridge", plain_cons)):
                if not link_carries(client_con):
                    raise RuntimeError(f"{what} is up in both guests but carries no "
                                       f"traffic: no ping reply from {LINK_PROVIDER_ADDR}")
            ours, base = [], []
            for i in range(rounds):               # alternate which goes first
                for side in (("ours", "plain") if i % 2 else ("plain", "ours")):
                    if side == "ours":
                        ours.append(iperf(*ours_cons, seconds))
                    else:
                        base.append(iperf(*plain_cons, seconds))
        finally:
            for c in cons:
                c.close()
            app_plain.stop()
            prov_plain.stop()
            ns.delete()
    o, b = statistics.median(ours), statistics.median(base)
    return {"rows": [{"side": "vmhostd link (app -> provider)", **spread(ours)},
                     {"side": "plain QEMUs, bridge + 2 taps", **spread(base)}],
            "ratio": round(o / b, 3),
            "ratio_min": round(min(ours) / min(base), 3),
            "ratio_max": round(max(ours) / max(base), 3),
            "unit": "Mbit/s received by the provider",
            "tool": f"iperf3, 1 TCP stream, {seconds} s, first 2 s omitted; "
                    f"{rounds} rounds per side, interleaved; ratio of the medians"}


def bench_config_loading(tmp):
    """`vm check` over 100, 1,000 and 10,000 VM directories."""
    rows = []
    for n in (100, 1000, 10000):
        root = ConfigRoot(tmp / f"check-{n}")
        for i in range(n):
            root.vm(f"vm{i:05d}", disks=["root"])
        times = []
        for _ in range(3):
            t0 = time.monotonic()
            proc = subprocess.run([str(VM), "check", "--config-root", str(root.path)],
                                  capture_output=True)
            times.append(time.monotonic() - t0)
            if proc.returncode != 0:
                raise RuntimeError(f"vm check failed on {n} VMs: {proc.stderr[:500]!r}")
        best = min(times)
        rows.append({"vms": n, "seconds": round(best, 4),
                     "us_per_vm": round(best / n * 1e6, 1)})
    growth = rows[-1]["us_per_vm"] / rows[0]["us_per_vm"]
    return {"rows": rows, "per_vm_growth_100_to_10000": round(growth, 2),
            "linear": growth < 2.0}



# --- wayland (docs/wayland.md) -------------------------------------------

FRAME_LINE = re.compile(rb"^\s*\d+: f2c", re.M)


def bench_wayland(tmp, seconds=10, rounds=2):
    """weston-presentation-shm redraws its 250x250 shm window on every
    frame callback; its output has one line per presented frame.  Rounds
    alternate host-direct and through-the-VM runs of `seconds` each on one
    headless weston (pixman), so both see the same compositor and load."""
    from helpers.wayland import WaylandVM, Weston
    for tool in ("weston", "waypipe", "weston-presentation-shm"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            raise RuntimeError(f"{tool} is not installed (make deps)")
    weston = Weston(tmp / "wayland-weston")
    vm = None
    try:
        vm = WaylandVM(tmp / "wayland-vm", GUEST, weston)
        idle_rss = rss_kib(vm.backend.pid)
        direct, through, peak_rss = [], [], idle_rss
        for r in range(rounds):
            for side in (("direct", "vm") if r % 2 == 0 else ("vm", "direct")):
                if side == "direct":
                    p = weston.client(["timeout", "-s", "TERM", str(seconds),
                                       "weston-presentation-shm"],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                    out = p.communicate(timeout=seconds + 60)[0]
                    direct.append(len(FRAME_LINE.findall(out)) / seconds)
                else:
                    before = vm.backend_stats()["to_host"]
                    out = vm.guest.run(f"timeout -s TERM {seconds} weston-presentation-shm "
                                       f"2>/dev/null | grep -c ': f2c'", timeout=seconds + 60)
                    peak_rss = max(peak_rss, rss_kib(vm.backend.pid))
                    through.append(int(out.split()[0]) / seconds)
                    mb = (vm.backend_stats()["to_host"] - before) / seconds / 2**20
        ratio = statistics.median(through) / statistics.median(direct)
        return {
            "rows": [{"path": "host, directly", "fps_runs": [round(x, 1) for x in direct],
                      "fps_median": round(statistics.median(direct), 1)},
                     {"path": "guest, vsock + waypipe", "fps_runs": [round(x, 1) for x in through],
                      "fps_median": round(statistics.median(through), 1)}],
            "fps_ratio_vm_over_direct": round(ratio, 2),
            "guest_to_host_mib_per_s_last_vm_run": round(mb, 2),
            "backend_rss_kib_idle": idle_rss,
            "backend_rss_kib_peak_seen": peak_rss,
            "client": "weston-presentation-shm (feedback mode), 250x250 XRGB8888 shm",
            "compositor": "weston 10 headless, pixman renderer, 1024x768",
        }
    finally:
        if vm is not None:
            vm.close()
        weston.close()


# --quick: small counts for development, not for the record.
QUICK = {
    "start_latency": {"runs": 2},
    "peer_libvirt": {"runs": 2, "running": 2, "calls": 20},
    "density": {"counts": (1, 3)},
    "control_plane": {"total": 20, "running": 2, "calls": 20},
    "throughput": {"seconds": 3, "rounds": 1},
    "wayland": {"seconds": 3, "rounds": 1},
}

SECTIONS = {
    "start_latency": bench_start_latency,
    "peer_libvirt": bench_peer_libvirt,
    "density": bench_density,
    "control_plane": bench_control_plane,
    "throughput": bench_throughput,
    "config_loading": bench_config_loading,
    "wayland": bench_wayland,
}


# --- report ----------------------------------------------------------------

def goal_met(key, value, section):
    """Whether value meets GOALS[key] ("<= 1.05", ">= 0.95", "< 2 (...)",
    "<= exec_floor_p99_ms + 1")."""
    m = re.match(r"(<=|>=|<) (\S+)(?: \+ (\S+))?", GOALS[key])
    op, bound, plus = m.groups()
    bound = section[bound] + float(plus) if plus else float(bound)
    return {"<=": value <= bound, ">=": value >= bound, "<": value < bound}[op]


def headline(results):
    """(figure, value, goal, met) for every goal of a section that ran."""
    out = []
    for key, goal in GOALS.items():
        name, field = key.split(".", 1)
        r = results["sections"].get(name)
        if r is None:
            continue
        if "error" in r:
            out.append((key, "failed", goal, "no"))
        elif r.get(field) is None:
            out.append((key, "none", goal, "no"))
        else:
            out.append((key, r[field], goal, "yes" if goal_met(key, r[field], r) else "no"))
    return out


def table(rows, keys=None):
    keys = keys or list(rows[0].keys())
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    return out


def render_md(results):
    m = results["machine"]
    out = ["# vmhost benchmark results", "",
           f"{m['date']} on {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB, "
           f"load average {m['load_avg_at_start']} at start), host kernel {m['host_kernel']}, "
           f"{m['qemu']}, guest Linux {m['guest_kernel']}, accel **{m['accel']}**, "
           f"vmhost {m['commit']}; bench.py ran for {results.get('wall_s', '?')} s"
           f"{' (--quick: not for the record)' if results['quick'] else ''}.", ""]
    if m["accel"] == "tcg":
        out += ["VMs ran under TCG (no usable KVM here): absolute boot and network "
                "figures are far from KVM's; the ratios against the baselines, "
                "measured interleaved in the same run, are what to read.", ""]
    out += ["## Summary", ""]
    out += table([{"figure": f, "value": v, "goal": g, "met": ok}
                  for f, v, g, ok in headline(results)])
    b = results["boots"]
    out += ["", f"Every `vm start` of the run: {b['vm_start_ready']} of "
                f"{b['vm_start_attempted']} reached the ready line, "
                f"{b['ready_on_microvm']} of them on microvm (leaf VMs), "
                f"{b['ready_on_q35']} on q35 (providers).", ""]
    for name, res in results["sections"].items():
        out += [f"## {name}", ""]
        if "error" in res:
            out += [f"**failed**: {res['error']}", ""]
            continue
        for k, v in res.items():
            if k.endswith("rows") and v:
                out += table(v) + [""]
        for k, v in res.items():
            if k.endswith("rows"):
                continue
            if k == "where_the_time_goes_p50_ms":
                out.append("- where the time goes (p50 of each phase, ms):")
                for side, phases in v.items():
                    out.append(f"  - {side}: " + "; ".join(f"{p} {ms}" for p, ms in
                                                           phases.items()))
            elif k.endswith("argv"):
                out.append(f"- {k}: `{' '.join(v)}`")
            elif k.endswith("xml"):
                out += [f"- {k}:", "", "```xml", v.strip(), "```"]
            else:
                out.append(f"- {k}: {v}")
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(BUILD / "bench"))
    ap.add_argument("--quick", action="store_true", help="small counts (development only)")
    ap.add_argument("--record", metavar="NAME",
                    help="also keep the results as bench/results/NAME.{json,md}, the "
                         "files docs/benchmarks.md quotes")
    ap.add_argument("sections", nargs="*", help="subset of: " + ", ".join(SECTIONS))
    args = ap.parse_args()
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))}")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "work"
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    tmp.mkdir()

    wall0 = time.monotonic()
    results = {"machine": machine_info(), "goals": GOALS, "quick": args.quick,
               "sections": {}}
    for name in args.sections or SECTIONS:
        t0 = time.monotonic()
        print(f"[bench] {name} ...", flush=True)
        idle = settle()
        try:
            results["sections"][name] = SECTIONS[name](
                tmp, **(QUICK.get(name, {}) if args.quick else {}))
        except Exception as e:  # report and go on: one broken section must not hide the rest
            results["sections"][name] = {"error": f"{type(e).__name__}: {e}"}
        results["sections"][name]["host_cpu_idle_at_start"] = idle
        results["sections"][name]["section_s"] = round(time.monotonic() - t0, 1)
        results["sections"][name]["load_avg_1min_at_end"] = round(os.getloadavg()[0], 1)
        print(f"[bench] {name} done in {time.monotonic() - t0:.1f}s", flush=True)
    results["wall_s"] = round(time.monotonic() - wall0, 1)
    results["boots"] = BOOTS

    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    md = render_md(results)
    (out / "results.md").write_text(md + "\n")
    print(md)
    if args.record:
        keep = ROOT / "bench" / "results"
        keep.mkdir(exist_ok=True)
        for ext in ("json", "md"):
            shutil.copyfile(out / f"results.{ext}", keep / f"{args.record}.{ext}")
        print(f"[bench] recorded as {keep / args.record}.{{json,md}}")
    subprocess.run(["rm", "-rf", str(tmp)])
    failed = [n for n, r in results["sections"].items() if "error" in r]
    if failed:
        print(f"[bench] failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
