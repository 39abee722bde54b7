#!/usr/bin/python3
"""Where `vm list` and the daemon's list request spend their time.

Starts vmhostd (from --build, default build/) on a private config root
with --vms VM directories (none running).  vmhostd is two processes
(docs/design.md): the engine serves the request from its copy of the
config root's names, which the monitor keeps current (a daemon before
that asked the monitor, PS_LIST, every time; with nothing changed the
monitor now does nothing per request, and its rows show that).  Then:

  - system calls per list request of each process (strace -c on each,
    over --requests requests);
  - CPU time per list request of each process (perf stat -e task-clock
    on each; this host has no hardware counters);
  - the CLI: instructions of one `vm list --json` (callgrind) and CPU and
    wall time of --runs runs against those of /bin/true (perf stat);
  - each process: where its CPU time goes (perf record, cpu-clock
    samples: valgrind can run neither the engine, under seccomp, nor the
    monitor, which calls pidfd_open).

Prints a report; docs/benchmarks.md quotes the one recorded under
bench/results/.

    /usr/bin/python3 bench/profile_list.py [--build DIR] [--vms 100]
"""
import argparse
import contextlib
import os
import pathlib
import re
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from helpers.daemon import cmdline, descendants  # noqa: E402
from helpers.qemu import cgroup_dirs  # noqa: E402
from helpers.vmdirs import ConfigRoot  # noqa: E402
from bench import list_request  # noqa: E402


@contextlib.contextmanager
def daemon(build, root, prefix=()):
    """vmhostd on root: (monitor's Popen, state dir, engine pid)."""
    state = pathlib.Path(tempfile.mkdtemp(prefix="vmh-prof", dir="/tmp"))
    log = open(state.parent / f"{state.name}.log", "w")
    # Its own interface prefix and cgroup parent: a daemon clears both.
    parent = f"vmhost-prof-{os.getpid()}"
    p = subprocess.Popen([*prefix, str(build / "vmhostd"), "--config-root", str(root.path),
                          "--state-dir", str(state), "--accel", "tcg", "--foreground",
                          "--link-prefix", "prof-", "--cgroup-parent", parent],
                         stdout=log, stderr=subprocess.STDOUT)
    control = state / "control"
    end = time.monotonic() + 60
    engine = None
    while engine is None or not control.exists():
        if p.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"vmhostd did not start: see {log.name}")
        engine = next((k for k in descendants(p.pid)
                       if cmdline(k).startswith("vmhostd: engine")), None)
        time.sleep(0.05)
    # Served once the engine said it is: a request answered.
    list_request(str(control))
    try:
        yield p, state, engine
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        subprocess.run(["rm", "-rf", str(state)])
        for d in cgroup_dirs(parent):   # empty: no VM ran
            d.rmdir()


def requests(state, n):
    for _ in range(n):
        list_request(str(state / "control"))


def strace_counts(pids, state, n, work):
    """{pid: strace -c table} over n list requests."""
    out = {pid: work / f"strace-{pid}.txt" for pid in pids}
    tracers = [subprocess.Popen(["strace", "-c", "-o", str(f), "-p", str(pid)],
                                stderr=subprocess.DEVNULL) for pid, f in out.items()]
    time.sleep(1)
    requests(state, n)
    for t in tracers:
        t.send_signal(signal.SIGINT)
        t.wait()
    return {pid: f.read_text() for pid, f in out.items()}


def strace_total(text):
    """The calls of a strace -c table; 0 for a process that made none
    (no table)."""
    m = re.search(r"\n\S+\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total", text)
    return int(m.group(1)) if m else 0


def task_clock(pids, state, n):
    """{pid: CPU ms} over n list requests (perf stat, one per process)."""
    stats = {pid: subprocess.Popen(["perf", "stat", "-e", "task-clock", "-p", str(pid)],
                                   stderr=subprocess.PIPE, text=True) for pid in pids}
    time.sleep(1)
    requests(state, n)
    out = {}
    for pid, s in stats.items():
        s.send_signal(signal.SIGINT)
        err = s.communicate()[1]
        m = re.search(r"([\d.,]+) msec task-clock", err)
        if not m and "<not counted> msec task-clock" not in err:
            raise RuntimeError(f"perf stat: {err}")
        # Not counted: the process did not run at all meanwhile.
        out[pid] = float(m.group(1).replace(",", "")) if m else 0.0
    return out


def perf_profile(pid, state, n, work):
    """perf report of pid's CPU time over n list requests, by symbol (the
    engine runs under seccomp and the monitor calls pidfd_open, neither
    of which valgrind allows)."""
    data = work / f"perf-{pid}.data"
    rec = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "20000", "-o",
                            str(data), "-p", str(pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    requests(state, n)
    rec.send_signal(signal.SIGINT)
    rec.wait()
    report = subprocess.run(["perf", "report", "--stdio", "--no-children", "-i", str(data),
                             "--sort", "dso,symbol", "--percent-limit", "1.5"],
                            capture_output=True, text=True).stdout
    return "\n".join(ln.rstrip(" -") for ln in report.splitlines()
                     if ln.strip() and not ln.startswith("#"))


def callgrind_total(out):
    text = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True).stdout
    return int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", text).group(1).replace(",", ""))


def callgrind_top(out, n=12):
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", out], capture_output=True,
                          text=True).stdout
    lines = [ln for ln in text.splitlines() if re.match(r"\s*[\d,]+ \(", ln)]
    return "\n".join(lines[:n])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--vms", type=int, default=100)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    build = pathlib.Path(args.build).resolve()
    work = pathlib.Path(tempfile.mkdtemp(prefix="prof-"))
    root = ConfigRoot(work)
    for i in range(args.vms):
        root.vm(f"c{i:03d}", disks=["root"])
    print(f"build {build}; {args.vms} VM directories, none running; "
          f"{args.requests} list requests")

    with daemon(build, root) as (p, state, engine):
        who = {p.pid: "monitor", engine: "engine"}
        for pid, text in strace_counts(who, state, args.requests, work).items():
            print(f"\n## {who[pid]}: system calls per list request: "
                  f"{strace_total(text) / args.requests:.1f}\n")
            print(text)
        cpu = task_clock(who, state, args.requests)
        print("## CPU per list request (perf stat -e task-clock): " + ", ".join(
            f"{who[pid]} {ms / args.requests * 1e3:.1f} us" for pid, ms in cpu.items()))

        env = {"VMHOST_STATE_DIR": str(state), "PATH": "/usr/bin:/bin"}
        out = str(work / "cli.callgrind")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        str(build / "vm"), "list", "--json"], env=env, capture_output=True)
        true = str(work / "true.callgrind")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={true}",
                        "/bin/true"], capture_output=True)
        print(f"\n## CLI: instructions of one `vm list --json`: {callgrind_total(out):,} "
              f"(/bin/true: {callgrind_total(true):,})\n")
        print(callgrind_top(out, 24))
        for argv in (["/bin/true"], [str(build / "vm"), "list", "--json"]):
            r = subprocess.run(["perf", "stat", "-r", str(args.runs), *argv], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            clock = re.search(r"([\d.]+) msec task-clock", r.stderr)
            wall = re.search(r"([\d.]+) \+- ([\d.]+) seconds time elapsed", r.stderr)
            print(f"\n## perf stat -r {args.runs} {' '.join(argv)}: CPU {clock.group(1)} ms, "
                  f"wall {float(wall.group(1)) * 1e3:.2f} ms (+- {float(wall.group(2)) * 1e3:.2f})")

        for pid in who:
            print(f"\n## {who[pid]}: where its CPU time goes (perf record -e cpu-clock, "
                  f"{args.requests} list requests; symbols >= 1.5 %)\n")
            print(perf_profile(pid, state, args.requests, work))
    subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
