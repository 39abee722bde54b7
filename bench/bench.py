#!/usr/bin/python3
"""vmhost benchmarks: `make bench`.

Every figure is measured in this one run, beside its baseline where it has
one, and reported as a ratio; nothing here asserts a time.  Results go to
build/bench/results.json and results.md; docs/benchmarks.md explains them.
"""
import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers.vmdirs import ConfigRoot  # noqa: E402

BUILD = ROOT / "build"
VM = BUILD / "vm"


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))
    return s[k]


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
    vmlinux = BUILD / "guest" / "vmlinux"
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
        "accel": accel_rule(),
        "qemu": qemu,
        "guest_kernel": guest,
    }


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
            "linear": growth < 2.0}


SECTIONS = {
    "config_loading": bench_config_loading,
}


def render_md(results):
    m = results["machine"]
    out = ["# vmhost benchmark results", "",
           f"{m['date']} on {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), "
           f"host kernel {m['host_kernel']}, {m['qemu']}, guest Linux {m['guest_kernel']}, "
           f"accel **{m['accel']}**.", ""]
    if m["accel"] == "tcg":
        out += ["VMs ran under TCG (no usable KVM here): absolute boot and network "
                "figures are far from KVM's; the ratios against the plain-QEMU "
                "baselines are what to read.", ""]
    for name, res in results["sections"].items():
        out.append(f"## {name}")
        out.append("")
        if "error" in res:
            out += [f"not measured: {res['error']}", ""]
            continue
        rows = res.get("rows")
        if rows:
            keys = list(rows[0].keys())
            out.append("| " + " | ".join(keys) + " |")
            out.append("|" + "---|" * len(keys))
            for r in rows:
                out.append("| " + " | ".join(str(r[k]) for k in keys) + " |")
            out.append("")
        for k, v in res.items():
            if k != "rows":
                out.append(f"- {k}: {v}")
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(BUILD / "bench"))
    ap.add_argument("sections", nargs="*", help="subset of: " + ", ".join(SECTIONS))
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "work"
    subprocess.run(["rm", "-rf", str(tmp)], check=True)
    tmp.mkdir()

    results = {"machine": machine_info(), "sections": {}}
    for name in args.sections or SECTIONS:
        t0 = time.monotonic()
        print(f"[bench] {name} ...", flush=True)
        try:
            results["sections"][name] = SECTIONS[name](tmp)
        except Exception as e:  # report and go on: one broken section must not hide the rest
            results["sections"][name] = {"error": f"{type(e).__name__}: {e}"}
        print(f"[bench] {name} done in {time.monotonic() - t0:.1f}s", flush=True)

    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    md = render_md(results)
    (out / "results.md").write_text(md + "\n")
    print(md)
    subprocess.run(["rm", "-rf", str(tmp)])
    failed = [n for n, r in results["sections"].items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
