#!/usr/bin/python3
"""vmhost benchmarks: `make bench`.

Every figure is measured in this one run, beside its baseline where it has
one, and reported as a ratio; nothing here asserts a time.  Results go to
build/bench/results.json and results.md; docs/benchmarks.md explains them.

Sections (run a subset by naming them):
  start_latency   vm start -> ready line, against the same QEMU command line
                  run by hand (derived from the daemon's own argv)
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
import json
import os
import pathlib
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.daemon import Console, Daemon, descendants  # noqa: E402
from helpers.qemu import READY  # noqa: E402
from helpers.vmdirs import ConfigRoot  # noqa: E402

BUILD = ROOT / "build"
VM = BUILD / "vm"
GUEST = BUILD / "guest"
POLL = 0.005          # seconds between looks at a serial log, both sides
BOOT_TIMEOUT = 300    # one boot on a loaded 2-core TCG host takes ~3 s

GOALS = {
    "start_ratio": "<= 1.05",
    "rss_per_vm_kib": "<= 256",
    "list_p99_ms": "<= 5",
    "throughput_ratio": ">= 0.95",
    "config_linear": "per-VM time flat from 100 to 10,000 VMs",
}


# --- small tools -----------------------------------------------------------

def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))
    return s[k]


def summary(values, scale=1.0, digits=3):
    """p50/p90/p99/min/max of values, multiplied by scale."""
    return {k: round(percentile(values, p) * scale, digits)
            for k, p in (("p50", 50), ("p90", 90), ("p99", 99))} | {
        "min": round(min(values) * scale, digits),
        "max": round(max(values) * scale, digits), "n": len(values)}


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
    }


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


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


class Tail:
    """Follow a growing log from an offset; seen() says whether the ready
    line has appeared since.  Reads only the new bytes at each look."""

    PANIC = b"Kernel panic - not syncing"

    def __init__(self, path, offset=0, text=READY):
        self.path, self.offset, self.text = pathlib.Path(path), offset, text.encode()
        self.carry = b""
        self.panicked = False

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
        self.offset += len(data)
        buf = self.carry + data
        self.carry = buf[-max(len(self.text), len(self.PANIC)):]
        self.panicked = self.panicked or self.PANIC in buf
        return self.text in buf


def wait_all(tails, t0, timeout=BOOT_TIMEOUT, alive=None, panicked=None):
    """{key: seconds from t0 to its ready line} for every Tail in tails.
    alive(): raise if a side died.  A guest kernel panic raises, or with a
    set as panicked, adds the key to it and stops waiting for that one."""
    done = {}
    end = t0 + timeout
    while len(done) + len(panicked or ()) < len(tails):
        now = time.perf_counter()
        for key, tail in tails.items():
            if key in done or key in (panicked or ()):
                continue
            if tail.seen():
                done[key] = now - t0
            elif tail.panicked and panicked is None:
                raise RuntimeError(f"guest kernel panic in {key}: ...{tail.last_words()!r}")
            elif tail.panicked:
                panicked.add(key)
        if len(done) + len(panicked or ()) == len(tails):
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
    and the time the first command was executed."""
    tails = {n: Tail.from_end(d.state / "vms" / n / "serial.log") for n in names}
    t0 = time.perf_counter()
    procs = [subprocess.Popen([str(VM), "start", n], env=d.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) for n in names]
    return tails, t0, procs


def check_started(procs):
    for p in procs:
        out = p.communicate(timeout=BOOT_TIMEOUT)[0]
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(p.args)}: {out.decode(errors='replace').strip()}")


def boot_daemon_vms(d, names, timeout=BOOT_TIMEOUT, panicked=None):
    """Start names at once; (seconds to the last ready line, {name: seconds}).
    panicked: as for wait_all."""
    tails, t0, procs = start_vms(d, names)

    def alive():
        for p in procs:
            if p.poll() not in (None, 0):
                check_started([p])
    try:
        done = wait_all(tails, t0, timeout, alive, panicked)
    finally:
        check_started(procs)
    if not done:
        raise RuntimeError(f"every guest panicked: {sorted(panicked)}")
    return max(done.values()), done


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
        if any(re.search(r"(^|,)fd=\d", a) or "/dev/fdset/" in a for a in out):
            raise RuntimeError(f"unhandled file descriptor in QEMU argv: {out}")
        self.argv = out
        self.procs = []

    def _replace(self, opt, disks, taps):
        m = re.fullmatch(r"socket,id=([^,]+),fd=\d+", opt)
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
        # The daemon's own children, in share order: vmhostd may point
        # source= at a pinned copy of the directory (STATE/vms/NAME/fs-TAG);
        # a hand-written command line names the directory itself.
        kids = [argv_of(p) for p in descendants(d.proc.pid)
                if parent_of(p) == d.proc.pid and argv_of(p)[0].endswith("virtiofsd")]
        fsds = []
        for share in info["config"]["shares"]:
            names = (f"source={share['host_dir']}", f"/fs-{share['tag']}")
            argv = [a for a in kids if any(x == names[0] or x.startswith("source=") and
                                           x.endswith(names[1]) for x in a)]
            if len(argv) != 1:
                raise RuntimeError(f"{name}: no single virtiofsd for share {share['tag']}")
            fsds.append([f"source={share['host_dir']}" if x.startswith("source=") else x
                         for x in argv[0]])
        return cls(argv_of(pid), fsds, info, workdir, **kw)

    def start(self, prefix=()):
        """Exec virtiofsds, wait for their sockets, exec QEMU, as a script
        would.  Returns (Tail of the serial log, t0)."""
        for p in [self.serial, *self.fsd_socks]:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        t0 = time.perf_counter()
        log = open(self.dir / "qemu.log", "ab")
        for argv, sock in zip(self.fsds, self.fsd_socks):
            p = subprocess.Popen([*prefix, *argv], stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT)
            self.procs.append(p)
            wait_path(sock, 30, p)
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
        tail, t0 = self.start()
        return wait_all({"plain": tail}, t0, alive=self.alive)["plain"]

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
            p.wait()
        self.procs = []


# --- sections --------------------------------------------------------------

def before_boot_fix(argv):
    """argv as vmhostd built it before the start-latency fix (SeaBIOS, a
    PS/2 controller): measured beside it so the gain is read in one run.
    None if argv has no such fix in it."""
    if "-bios" not in argv:
        return None
    i = argv.index("-bios")
    return [a.replace(",i8042=off", "") for a in argv[:i] + argv[i + 2:]]


def bench_start_latency(tmp, runs=10):
    """vm start -> ready line, interleaved with the same command line run by
    hand, and with that command line before the boot fix; one warm-up of
    each first (page cache, lazily loaded code)."""
    with running_daemon(tmp / "start") as d:
        bench_guest(d, "lat", shares=["data"])
        boot_daemon_vms(d, ["lat"])
        plain = PlainQemu.of(d, "lat", tmp / "start-plain")
        before = PlainQemu.of(d, "lat", tmp / "start-before")
        stop_vms(d, ["lat"])
        before.argv = before_boot_fix(before.argv)

        def ours():
            t = boot_daemon_vms(d, ["lat"])[0]
            stop_vms(d, ["lat"])
            return t

        def by_hand(p):
            try:
                return p.boot()
            finally:
                p.stop()
        sides = {"vm start (vmhostd)": ours,
                 "plain qemu-system-x86_64, same argv": lambda: by_hand(plain)}
        if before.argv:
            sides["plain, argv before the boot fix (SeaBIOS, i8042)"] = lambda: by_hand(before)
        times = {k: [] for k in sides}
        for f in sides.values():
            f()                                   # warm-up, not counted
        keys = list(sides)
        for i in range(runs):                     # rotate the order each round
            for k in keys[i % len(keys):] + keys[:i % len(keys)]:
                times[k].append(sides[k]())
    rows = [{"side": k, **summary(v)} for k, v in times.items()]
    res = {"rows": rows,
           "ratio_p50": round(rows[0]["p50"] / rows[1]["p50"], 3),
           "ratio_p90": round(rows[0]["p90"] / rows[1]["p90"], 3),
           "goal_ratio": GOALS["start_ratio"]}
    if len(rows) > 2:
        res["boot_fix_gain_p50_s"] = round(rows[2]["p50"] - rows[1]["p50"], 3)
    res["guest"] = "appvm.img, 256 MiB, 1 vCPU, 1 virtio-fs share, 4 hot-plug ports"
    res["qemu_argv"] = plain.argv
    return res


def bench_density(tmp, counts=(1, 10, 30)):
    """N VMs of 128 MiB started at once: time to the last ready line and
    vmhostd's RSS growth per running VM."""
    rows = []
    with running_daemon(tmp / "density") as d:
        names = [f"d{i:02d}" for i in range(max(counts))]
        for n in names:
            bench_guest(d, n, memory="128M")
        boot_daemon_vms(d, names[:1])   # warm-up: code and libraries paged in
        stop_vms(d, names[:1])
        for count in counts:
            rss0 = rss_kib(d.proc.pid)
            panicked = set()
            try:
                # TCG boots share the cores: allow for each VM's CPU time.
                last, each = boot_daemon_vms(d, names[:count], BOOT_TIMEOUT + 20 * count,
                                             panicked)
                rss1 = rss_kib(d.proc.pid)
            finally:
                stop_vms(d, names[:count])
            rows.append({"vms": count, "all_ready_s": round(last, 2),
                         "first_ready_s": round(min(each.values()), 2),
                         "vmhostd_rss_before_kib": rss0, "vmhostd_rss_after_kib": rss1,
                         "rss_per_vm_kib": round((rss1 - rss0) / count, 1),
                         "guests_panicked": len(panicked)})
    worst = max(r["rss_per_vm_kib"] for r in rows if r["vms"] == max(counts))
    return {"rows": rows, "rss_per_vm_kib_at_max": worst,
            "goal_rss_per_vm_kib": GOALS["rss_per_vm_kib"],
            "guest": "appvm.img, 128 MiB, 1 vCPU, no share",
            "note": "a guest whose kernel panicked (under TCG on a starved host: the IO-APIC "
                    "timer check) is counted in guests_panicked, not waited for"}


def time_list(d, calls, frozen_pid):
    """Wall times in ms, interleaved call by call: `vm list --json` (exec to
    exit), the bare list request on the control socket, and exec of
    /bin/true (the floor of any CLI), each with frozen_pid running and with
    it SIGSTOPped, calls of each.  The parsed output of the last list."""
    t = {(k, f): [] for k in ("cli", "sock", "floor") for f in (False, True)}

    def timed(key, f, *args, **kw):
        t0 = time.perf_counter()
        r = f(*args, **kw)
        t[key].append((time.perf_counter() - t0) * 1000)
        return r
    try:
        for i in range(2 * calls):
            frozen = i % 2 == 1
            os.kill(frozen_pid, signal.SIGSTOP if frozen else signal.SIGCONT)
            p = timed(("cli", frozen), subprocess.run, [str(VM), "list", "--json"],
                      env=d.env(), capture_output=True, timeout=10)
            if p.returncode != 0:
                raise RuntimeError(f"vm list --json: {p.stderr!r}")
            timed(("sock", frozen), d.request, {"op": "list"}, timeout=10)
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
        listed, t = time_list(d, calls, qemu_pid(d, names[0]))
    vms = listed if isinstance(listed, list) else listed.get("vms", [])
    states = [v["state"] for v in vms]
    if len(states) != total or states.count("running") != running:
        raise RuntimeError(f"vm list shows {len(states)} VMs, {states.count('running')} running")
    label = {"cli": "vm list --json (exec to exit)", "sock": "list request on the socket",
             "floor": "exec /bin/true (the exec floor)"}
    rows = [{"case": label[k] + (", one QEMU SIGSTOPped" if f else ""), **summary(v, 1, 2)}
            for (k, f), v in t.items()]
    p99 = {key: summary(v, 1, 2)["p99"] for key, v in t.items()}
    return {"rows": rows, "list_p99_ms": p99["cli", False],
            "list_request_p99_ms": p99["sock", False], "exec_floor_p99_ms": p99["floor", False],
            "goal_list_p99_ms": GOALS["list_p99_ms"],
            "p99_ratio_stopped_qemu": round(p99["cli", True] / p99["cli", False], 2),
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


class NotMeasured(Exception):
    """A section that cannot run yet on this tree: reported, not failed."""


def bench_throughput(tmp, seconds=8, rounds=3):
    """TCP from an app VM to its provider over the link vmhostd builds,
    against the same two command lines joined by a bridge and two taps in
    a private network namespace; rounds alternate between the two."""
    with running_daemon(tmp / "net") as d:
        for name, role in (("prov", "netvm"), ("app", "appvm")):
            vm = d.root.vm(name, kernel=GUEST / "vmlinux",
                           disks={"root": GUEST / f"{role}.img"})
            vm.setting("memory", "256M")
        vm.provider("prov")
        boot_daemon_vms(d, ["prov"])
        try:
            boot_daemon_vms(d, ["app"])
        except RuntimeError as e:
            raise NotMeasured(f"vm start of a client with providers/net failed: {e}")
        app_argv = argv_of(qemu_pid(d, "app"))
        nic = [a for a in app_argv if a.startswith("virtio-net-pci,") and "mac=0A:B3:EC:00" in a]
        if not nic:
            raise NotMeasured("vmhostd gave the client no link NIC (links not implemented yet)")
        for name, what in (("app", "client"), ("prov", "provider")):
            try:
                wait_all({name: Tail(d.state / "vms" / name / "serial.log", 0, LINK_UP[what])},
                         time.perf_counter(), timeout=60)
            except RuntimeError:
                raise NotMeasured(f"the {what} end of the link never came up in the guest "
                                  f"(no '{LINK_UP[what]}' from vm-netconf)")
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
                                     LINK_UP[what])}, time.perf_counter(), timeout=60)
            ours_cons = (d.console("app"), d.console("prov"))
            plain_cons = (console_on(app_plain.dir / "hvc0.sock"),
                          console_on(prov_plain.dir / "hvc0.sock"))
            cons = [*ours_cons, *plain_cons]
            for what, (client_con, _) in (("vmhostd's link", ours_cons),
                                          ("the plain bridge", plain_cons)):
                if not link_carries(client_con):
                    raise NotMeasured(f"{what} is up in both guests but carries no "
                                      f"traffic: no ping reply from {LINK_PROVIDER_ADDR}")
            ours, base = [], []
            for i in range(rounds):               # alternate which goes first
                for side in (("ours", "plain") if i % 2 else ("plain", "ours")):
                    if side == "ours":
                        try:
                            ours.append(iperf(*ours_cons, seconds))
                        except (RuntimeError, AssertionError) as e:
                            raise NotMeasured(f"iperf3 over vmhostd's link failed "
                                              f"(the plain bridge gave {base} Mbit/s): "
                                              f"{str(e)[-300:]}")
                    else:
                        base.append(iperf(*plain_cons, seconds))
        finally:
            for c in cons:
                c.close()
            app_plain.stop()
            prov_plain.stop()
            ns.delete()
    o, b = statistics.median(ours), statistics.median(base)
    return {"rows": [{"side": "vmhostd link (app -> provider)", "mbit_s": o, "runs": ours},
                     {"side": "plain QEMUs, bridge + 2 taps", "mbit_s": b, "runs": base}],
            "ratio": round(o / b, 3), "goal_ratio": GOALS["throughput_ratio"],
            "tool": f"iperf3, 1 TCP stream, {seconds} s, first 2 s omitted, median of {rounds}"}


def bench_config_loading(tmp):
    """`vm check` over 100, 1,000 and 10,000 VM directories."""
    rows = []
    for n in (100, 1000, 10000):
        root = ConfigRoot(tmp / f"check-{n}")
        for i in range(n):
            root.vm(f"vm{i:05d}", disks=["root"])
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            proc = subprocess.run([str(VM), "check", "--config-root", str(root.path)],
                                  capture_output=True)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise RuntimeError(f"vm check failed on {n} VMs: {proc.stderr[:500]!r}")
        best = min(times)
        rows.append({"vms": n, "seconds": round(best, 4),
                     "us_per_vm": round(best / n * 1e6, 1)})
    growth = rows[-1]["us_per_vm"] / rows[0]["us_per_vm"]
    return {"rows": rows, "per_vm_growth_100_to_10000": round(growth, 2),
            "linear": growth < 2.0, "goal": GOALS["config_linear"]}


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
            raise NotMeasured(f"{tool} is not installed (make deps)")
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
    "density": {"counts": (1, 3)},
    "control_plane": {"total": 20, "running": 2, "calls": 20},
    "throughput": {"seconds": 3, "rounds": 1},
    "wayland": {"seconds": 3, "rounds": 1},
}

SECTIONS = {
    "start_latency": bench_start_latency,
    "density": bench_density,
    "control_plane": bench_control_plane,
    "throughput": bench_throughput,
    "config_loading": bench_config_loading,
    "wayland": bench_wayland,
}


# --- report ----------------------------------------------------------------

def headline(results):
    """(figure, value, goal, met) for the summary table."""
    s = results["sections"]
    out = []

    def add(section, label, key, goal, ok):
        r = s.get(section)
        if r is None:
            return
        if "error" in r or "not_measured" in r:
            out.append((label, "not measured", goal, "-"))
        else:
            out.append((label, r[key], goal,
                        "-" if ok is None else "yes" if ok(r[key]) else "no"))
    add("start_latency", "start latency ratio p50 (vm start / plain QEMU)", "ratio_p50",
        GOALS["start_ratio"], lambda v: v <= 1.05)
    add("start_latency", "start latency ratio p90", "ratio_p90",
        GOALS["start_ratio"], lambda v: v <= 1.05)
    add("density", "vmhostd RSS per running VM, KiB (largest N)", "rss_per_vm_kib_at_max",
        GOALS["rss_per_vm_kib"], lambda v: v <= 256)
    add("control_plane", "vm list --json p99, ms", "list_p99_ms",
        GOALS["list_p99_ms"], lambda v: v <= 5)
    add("control_plane", "list request on the control socket p99, ms (daemon's share)",
        "list_request_p99_ms", GOALS["list_p99_ms"], lambda v: v <= 5)
    add("control_plane", "exec /bin/true p99, ms (floor of any CLI here)", "exec_floor_p99_ms",
        "-", None)
    add("control_plane", "list p99 with a QEMU stopped / without", "p99_ratio_stopped_qemu",
        "~1 (never waits on QEMU)", lambda v: v <= 1.5)
    add("throughput", "inter-VM TCP ratio (link / plain bridge)", "ratio",
        GOALS["throughput_ratio"], lambda v: v >= 0.95)
    add("config_loading", "vm check per-VM growth 100 -> 10,000", "per_vm_growth_100_to_10000",
        "< 2 (linear)", lambda v: v < 2)
    add("wayland", "shm client fps through a VM / directly", "fps_ratio_vm_over_direct",
        "-", None)
    return out


def table(rows, keys=None):
    keys = keys or list(rows[0].keys())
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    out += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return out


def render_md(results):
    m = results["machine"]
    out = ["# vmhost benchmark results", "",
           f"{m['date']} on {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB, "
           f"load average {m['load_avg_at_start']} at start), host kernel {m['host_kernel']}, "
           f"{m['qemu']}, guest Linux {m['guest_kernel']}, accel **{m['accel']}**; "
           f"bench.py ran for {results.get('wall_s', '?')} s.", ""]
    if m["accel"] == "tcg":
        out += ["VMs ran under TCG (no usable KVM here): absolute boot and network "
                "figures are far from KVM's; the ratios against the plain-QEMU "
                "baselines, measured interleaved in the same run, are what to read.", ""]
    out += ["## Summary", ""]
    out += table([{"figure": f, "value": v, "goal": g, "met": ok}
                  for f, v, g, ok in headline(results)])
    out.append("")
    for name, res in results["sections"].items():
        out += [f"## {name}", ""]
        if "error" in res or "not_measured" in res:
            out += [f"not measured: {res.get('not_measured') or res['error']}", ""]
            continue
        if res.get("rows"):
            out += table(res["rows"]) + [""]
        for k, v in res.items():
            if k != "rows":
                out.append(f"- {k}: {' '.join(v) if k.endswith('argv') else v}")
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(BUILD / "bench"))
    ap.add_argument("--quick", action="store_true", help="small counts (development only)")
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
        try:
            results["sections"][name] = SECTIONS[name](
                tmp, **(QUICK.get(name, {}) if args.quick else {}))
        except NotMeasured as e:
            results["sections"][name] = {"not_measured": str(e)}
        except Exception as e:  # report and go on: one broken section must not hide the rest
            results["sections"][name] = {"error": f"{type(e).__name__}: {e}"}
        results["sections"][name]["section_s"] = round(time.monotonic() - t0, 1)
        results["sections"][name]["load_avg_1min_at_end"] = round(os.getloadavg()[0], 1)
        print(f"[bench] {name} done in {time.monotonic() - t0:.1f}s", flush=True)
    results["wall_s"] = round(time.monotonic() - wall0, 1)

    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    md = render_md(results)
    (out / "results.md").write_text(md + "\n")
    print(md)
    subprocess.run(["rm", "-rf", str(tmp)])
    failed = [n for n, r in results["sections"].items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
