#!/usr/bin/python3
"""Measure what a VM's run holds beyond guest RAM, to justify the memory
cap of its cgroup (src/vmm/launch.h, LAUNCH_MEMORY_OVERHEAD; see
docs/security.md, "Resources").

Runs vmhostd (as root, cgroup v1 memory hierarchy needed) with:
  - app: the guest kit's appvm, 256M, one share; the guest fills its RAM
    (a 200 MiB dd buffer), reads all of its disk and writes and reads
    back 32 MiB through the share;
  - net: netvm, 192M, uplink (passt); it fetches 64 MiB from the host
    through the uplink, four times, then fills its RAM (150 MiB);
with the memory cap lifted (so the figure is measured, not clipped),
sampling the tasks of each cgroup every 0.2 s.  Prints one line per VM:
peak memory of the cgroup (memory.max_usage_in_bytes, page cache
included), guest RAM, their difference, each process's peak RSS
(VmHWM) and the most tasks seen.

usage: scripts/measure-overhead.py [BUILD]   (default build/)
"""
import http.server
import functools
import os
import pathlib
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
if len(sys.argv) > 1:
    os.environ["VMHOST_BUILD"] = str(pathlib.Path(sys.argv[1]).resolve())

from helpers.daemon import GUEST, READY, Daemon, cmdline  # noqa: E402

MIB = 1 << 20


def memory_dir(d, name):
    return [c for c in d.cgroups(name) if "/memory/" in str(c)][0]


def pids_dir(d, name):
    return [c for c in d.cgroups(name) if "/pids/" in str(c)][0]


def uncap(d, name):
    mem = memory_dir(d, name)
    for f in ("memory.memsw.limit_in_bytes", "memory.limit_in_bytes"):
        if (mem / f).exists():
            (mem / f).write_text("-1")


class Sampler(threading.Thread):
    """The most tasks, and each process's peak RSS, seen in a cgroup."""

    def __init__(self, d, name):
        super().__init__(daemon=True)
        self.pids = pids_dir(d, name)
        self.mem = memory_dir(d, name)
        self.most = 0
        self.hwm = {}
        self.running = True

    def run(self):
        while self.running:
            try:
                self.most = max(self.most, int((self.pids / "pids.current").read_text()))
                for pid in (self.mem / "cgroup.procs").read_text().split():
                    st = pathlib.Path(f"/proc/{pid}/status").read_text()
                    hwm = [l for l in st.splitlines() if l.startswith("VmHWM:")]
                    what = cmdline(pid).split()[0].rsplit("/", 1)[-1]
                    if hwm:
                        kb = int(hwm[0].split()[1])
                        self.hwm[(what, pid)] = max(self.hwm.get((what, pid), 0), kb)
            except OSError:
                pass
            time.sleep(0.2)


def main():
    if os.geteuid() != 0:
        sys.exit("measure-overhead.py: needs root")
    tmp = pathlib.Path("/tmp") / f"vmhost-overhead-{os.getpid()}"
    tmp.mkdir()
    www = tmp / "www"
    www.mkdir()
    (www / "blob").write_bytes(os.urandom(64 * MIB))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    with Daemon.serving(tmp) as d:
        share = d.root.data_dir("share")
        app = d.guest("app", shares={"s": share})
        app.setting("memory", "256M")
        net = d.root.vm("net", kernel=GUEST / "vmlinux", disks={"root": GUEST / "netvm.img"})
        net.setting("memory", "192M")
        net.setting("uplink", "host-loopback")
        work = {
            "app": ["dd if=/dev/zero of=/dev/null bs=200M count=1",
                    "cat /dev/vda > /dev/null",
                    "dd if=/dev/urandom of=/run/virtiofs/s/f bs=1M count=32",
                    "sync; cat /run/virtiofs/s/f > /dev/null; rm /run/virtiofs/s/f"],
            "net": ["i=0; until ip -4 addr show dev eth0 | grep -q 'inet '; do "
                    "i=$((i+1)); [ $i -ge 60 ] && break; sleep 1; done"] +
                   [f"wget -q -O /dev/null http://10.0.2.2:{port}/blob"] * 4 +
                   ["dd if=/dev/zero of=/dev/null bs=150M count=1"],
        }
        guest_ram = {"app": 256 * MIB, "net": 192 * MIB}
        for name, cmds in work.items():
            r = d.vm("start", name, timeout=180)
            assert r.returncode == 0, r.stderr
            uncap(d, name)
            sampler = Sampler(d, name)
            sampler.start()
            d.wait_serial(name, READY, 180)
            with d.console(name) as con:
                for c in cmds:
                    con.run(c, timeout=600)
            time.sleep(1)     # one more sample after the last command
            sampler.running = False
            sampler.join()
            peak = int((memory_dir(d, name) / "memory.max_usage_in_bytes").read_text())
            procs = ", ".join(f"{w} {kb // 1024} MiB" for (w, _), kb in
                              sorted(sampler.hwm.items()))
            print(f"{name}: cgroup peak {peak // MIB} MiB, guest RAM "
                  f"{guest_ram[name] // MIB} MiB, beyond it {(peak - guest_ram[name]) // MIB} MiB; "
                  f"peak RSS: {procs}; most tasks {sampler.most}", flush=True)
            assert d.vm("stop", "--force", name).returncode == 0
    srv.shutdown()
    for p in sorted(tmp.rglob("*"), key=lambda p: -len(p.parts)):
        p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
