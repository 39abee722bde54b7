#!/usr/bin/env python3
"""Module dependencies go one way (docs/design.md, "Module order").

Every `#include "DIR/FILE.h"` in src/ is checked against the order below:
a file may include headers of its own rank or lower (its own header of
course), never higher, and the graph of modules (a FILE.c with its FILE.h)
has no circle: no two modules use each other, directly or round about.
Exit status 1, with each offence named, when one does not hold.  Run by
`meson test` (and so by make check)."""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# Directories, lowest first: one may use those before it.
DIRS = ["common", "config", "net", "vmm", "vsock", "privsep", "engine",
        "monitor", "cli"]

# Inside the two daemon directories, files in layers (lowest first).
LAYERS = {
    "engine": [
        ["serial", "console", "control", "proto", "names", "monchan",
         "allowlist"],
        ["qmpsession"],
        ["links"],
        ["vm"],
        ["engine"],            # engine.h: what the whole engine shares
        ["replies", "request"],
        ["backend"],
        ["main"],              # engine_main()
    ],
    "monitor": [
        ["monitor", "statedir", "privileges", "denylist", "rootwatch"],
        ["netlinks", "vmuid", "channel", "record", "wayland", "namepush"],
        ["mvm"],
        ["adopt", "handover"],
        ["enginep"],
        ["vmhostd"],           # main
    ],
}


def module(path):
    """A file's module: its .c and .h, and an internal header X_int.h
    that only X's own files share."""
    return path.with_name(re.sub(r"_int$", "", path.stem))


def rank(path):
    """(directory rank, layer rank) of a file under src/."""
    rel = path.relative_to(SRC)
    d = rel.parts[0]
    stem = rel.stem
    layer = 0
    if d in LAYERS:
        key = stem
        for i, names in enumerate(LAYERS[d]):
            if key in names:
                layer = i
                break
        else:
            if not stem.startswith("test_"):
                raise SystemExit(f"check-layers: {rel}: not in the layer table; add it")
            layer = len(LAYERS[d])
    return DIRS.index(d), layer


def main():
    errors = []
    graph = {}   # module (DIR/STEM: its .c and .h) -> modules it includes
    files = sorted(p for p in SRC.rglob("*") if p.suffix in (".c", ".h"))
    for f in files:
        if f.parent.name not in DIRS:
            continue
        me = rank(f)
        mod = module(f)
        graph.setdefault(mod, set())
        for line in f.read_text().splitlines():
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            inc = SRC / m.group(1)
            if not inc.exists():
                continue   # generated (common/version.h) or system
            if module(inc) != mod:
                graph[mod].add(module(inc))
            if inc.parent.name not in DIRS:
                continue
            it = rank(inc)
            same_file = inc.stem == f.stem and inc.parent == f.parent
            if it > me and not same_file:
                errors.append(f"{f.relative_to(SRC)} includes {m.group(1)}, "
                              "which is above it in the module order")
    # No circle, whatever the ranks say.
    state = {}

    def visit(n, stack):
        state[n] = 1
        for m in graph.get(n, []):
            if state.get(m) == 1:
                cyc = stack[stack.index(m):] + [m]
                errors.append("include circle: " + " -> ".join(
                    str(x.relative_to(SRC)) for x in cyc))
            elif m in graph and not state.get(m):
                visit(m, stack + [m])
        state[n] = 2

    for n in sorted(graph):
        if not state.get(n):
            visit(n, [n])
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
