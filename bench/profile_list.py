#!/usr/bin/python3
"""Where `vm list` and the daemon's list request spend their time.

Starts vmhostd (from --build, default build/) on a private config root
with --vms VM directories (none running), then, for the daemon: system
calls per list request (strace -c over --requests requests) and
instructions per request (callgrind, the same requests); for the CLI:
instructions of one `vm list --json` (callgrind) and CPU and wall time of
--runs runs against those of /bin/true (perf stat).  Prints a report;
docs/benchmarks.md quotes the one recorded under bench/results/.

    /usr/bin/python3 bench/profile_list.py [--build DIR] [--vms 100]
"""
import argparse
import contextlib
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

from helpers.vmdirs import ConfigRoot  # noqa: E402
from bench import list_request  # noqa: E402


@contextlib.contextmanager
def daemon(build, root, prefix=()):
    state = pathlib.Path(tempfile.mkdtemp(prefix="vmh-prof", dir="/tmp"))
    log = open(state.parent / f"{state.name}.log", "w")
    p = subprocess.Popen([*prefix, str(build / "vmhostd"), "--config-root", str(root.path),
                          "--state-dir", str(state), "--accel", "tcg", "--foreground",
                          "--link-prefix", "prof-"], stdout=log, stderr=subprocess.STDOUT)
    control = state / "control"
    end = time.monotonic() + 60
    while not control.exists():
        if p.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"vmhostd did not start: see {log.name}")
        time.sleep(0.05)
    try:
        yield p, state
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        subprocess.run(["rm", "-rf", str(state)])


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

    with daemon(build, root) as (p, state):
        trace = work / "strace.txt"
        s = subprocess.Popen(["strace", "-c", "-o", str(trace), "-p", str(p.pid)],
                             stderr=subprocess.DEVNULL)
        time.sleep(1)
        for _ in range(args.requests):
            list_request(str(state / "control"))
        s.send_signal(signal.SIGINT)
        s.wait()
        text = trace.read_text()
        total = int(re.search(r"\n\S+\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total", text).group(1))
        print(f"\n## daemon: system calls per list request: {total / args.requests:.1f}\n")
        print(text)

        env = {"VMHOST_STATE_DIR": str(state), "PATH": "/usr/bin:/bin"}
        out = str(work / "cli.callgrind")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        str(build / "vm"), "list", "--json"], env=env, capture_output=True)
        true = str(work / "true.callgrind")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={true}",
                        "/bin/true"], capture_output=True)
        print(f"## CLI: instructions of one `vm list --json`: {callgrind_total(out):,} "
              f"(/bin/true: {callgrind_total(true):,})\n")
        print(callgrind_top(out, 24))
        for argv in (["/bin/true"], [str(build / "vm"), "list", "--json"]):
            r = subprocess.run(["perf", "stat", "-r", str(args.runs), *argv], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            clock = re.search(r"([\d.]+) msec task-clock", r.stderr)
            wall = re.search(r"([\d.]+) \+- ([\d.]+) seconds time elapsed", r.stderr)
            print(f"\n## perf stat -r {args.runs} {' '.join(argv)}: CPU {clock.group(1)} ms, "
                  f"wall {float(wall.group(1)) * 1e3:.2f} ms (+- {float(wall.group(2)) * 1e3:.2f})")

    out = str(work / "daemon.callgrind")
    with daemon(build, root, ["valgrind", "--tool=callgrind",
                              f"--callgrind-out-file={out}"]) as (p, state):
        time.sleep(1)
        for _ in range(args.requests):
            list_request(str(state / "control"))
    print(f"\n## daemon under callgrind: {callgrind_total(out) / args.requests:,.0f} "
          f"instructions per list request (start-up and exit included)\n")
    print(callgrind_top(out, 24))
    subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    main()
