"""`make install` into a DESTDIR, the one version every program reports,
and the bash completion of vm as installed (issue 15, items 1, 2, 5)."""
import json
import os
import pathlib
import re
import subprocess

import pytest

from conftest import BUILD, ROOT
from helpers.daemon import Daemon

PREFIX = "/usr/local"
ALIASES = ("lsvm", "vm-start", "vm-stop", "vm-console")


def meson_version():
    out = subprocess.run(["meson", "introspect", "--projectinfo", str(BUILD)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["version"]


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    dest = tmp_path_factory.mktemp("destdir")
    real = [pathlib.Path(PREFIX) / p for p in ("bin/vm", "sbin/vmhostd", "etc/default/vmhost")]
    before = {p: p.exists() for p in real}
    r = subprocess.run(["make", "install", f"DESTDIR={dest}", f"PREFIX={PREFIX}"], cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # Nothing went to the real prefix.
    assert {p: p.exists() for p in real} == before
    return dest / PREFIX.lstrip("/")


def test_install_tree(destdir):
    files = sorted(str(p.relative_to(destdir)) for p in destdir.rglob("*")
                   if p.is_file() or p.is_symlink())
    expected = sorted(
        ["bin/vm", "sbin/vmhostd", "libexec/vmhost/vmhost-vsock", "etc/default/vmhost", "lib/systemd/system/vmhostd.service",
         "share/bash-completion/completions/vm",
         "share/man/man1/vm.1", "share/man/man5/vmhost-dir.5", "share/man/man8/vmhostd.8",
         "share/doc/vmhost/examples/s6/vmhostd/run",
         "share/doc/vmhost/examples/s6/vmhostd/data/check",
         "share/doc/vmhost/examples/s6/vmhostd/notification-fd",
         "share/doc/vmhost/examples/s6/vmhostd/type"]
        + [f"share/doc/vmhost/{d}" for d in ("README.md", "vm-directory.md", "networking.md",
                                             "security.md", "benchmarks.md")]
        + [f"bin/{a}" for a in ALIASES]
        + [f"share/man/man1/{a}.1" for a in ALIASES]
        + [f"share/bash-completion/completions/{a}" for a in ALIASES])
    assert files == expected
    for a in ALIASES:
        for link in (destdir / "bin" / a, destdir / "share/man/man1" / f"{a}.1",
                     destdir / "share/bash-completion/completions" / a):
            assert link.is_symlink() and os.readlink(link) in ("vm", "vm.1"), link
    for exe in ("bin/vm", "sbin/vmhostd", "libexec/vmhost/vmhost-vsock", "share/doc/vmhost/examples/s6/vmhostd/run",
                "share/doc/vmhost/examples/s6/vmhostd/data/check"):
        assert os.access(destdir / exe, os.X_OK), exe
    # Paths in the installed files follow the prefix.
    unit = (destdir / "lib/systemd/system/vmhostd.service").read_text()
    assert f"ExecStart={PREFIX}/sbin/vmhostd --config-root" in unit
    assert f"EnvironmentFile=-{PREFIX}/etc/default/vmhost" in unit
    run = (destdir / "share/doc/vmhost/examples/s6/vmhostd/run").read_text()
    assert f"{PREFIX}/sbin/vmhostd --foreground" in run and "@" not in run
    check = (destdir / "share/doc/vmhost/examples/s6/vmhostd/data/check").read_text()
    assert f"exec {PREFIX}/bin/vm list" in check


def test_one_version(destdir):
    version = meson_version()
    assert version
    for exe, name in [("bin/vm", "vm"), ("sbin/vmhostd", "vmhostd")] + \
            [(f"bin/{a}", a) for a in ALIASES]:
        r = subprocess.run([str(destdir / exe), "--version"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout == f"{name} (vmhost) {version}\n", (exe, r)
    r = subprocess.run(["dpkg-parsechangelog", "-S", "Version"], cwd=ROOT, check=True,
                       capture_output=True, text=True)
    assert r.stdout.strip() == version, "debian/changelog and meson.build disagree"


def test_capabilities_in_the_unit_match_the_daemon():
    """The unit's CapabilityBoundingSet is what privileges.h (the
    daemon's, wherever it lives under src/) keeps for the daemon and
    virtiofsd: a capability added there and not in the unit would be
    missing under systemd."""
    headers = list((ROOT / "src").rglob("privileges.h"))
    assert len(headers) == 1, headers
    header = headers[0].read_text()
    wanted = set(re.findall(r"PRIVILEGES_BIT\((CAP_[A-Z_]+)\)", header))
    unit = (ROOT / "dist/vmhostd.service.in").read_text()
    line = [l for l in unit.splitlines() if l.startswith("CapabilityBoundingSet=")]
    assert len(line) == 1
    assert set(line[0].split("=", 1)[1].split()) == wanted


COMPLETE = r'''
source /usr/share/bash-completion/bash_completion
source "$COMPLETION"
for line in "$@"; do
	read -ra COMP_WORDS <<<"$line"
	[[ $line == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE=$line
	COMP_POINT=${#line}
	COMPREPLY=()
	_vm
	echo "$(printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ')"
done
'''


@pytest.fixture
def complete(destdir):
    def run(env, *lines):
        e = {**os.environ, **env, "COMPLETION": str(destdir / "share/bash-completion/completions/vm"),
             "PATH": f"{destdir}/bin:{os.environ['PATH']}"}
        r = subprocess.run(["bash", "-c", COMPLETE, "complete", *lines], env=e,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return [set(l.split()) for l in r.stdout.splitlines()]
    return run


def test_bash_completion(complete, tmp_path):
    other = tmp_path / "other"
    (other / "gamma").mkdir(parents=True)
    verbs = {"check", "console", "help", "info", "list", "log", "start", "stop"}
    with Daemon.serving(tmp_path) as d:
        d.root.vm("alpha")
        d.root.vm("beta")
        env = {"VMHOST_STATE_DIR": str(d.state), "VMHOST_CONFIG_ROOT": str(other)}
        got = complete(env, "vm ", "vm st", "vm start ", "vm-start a", "vm stop --",
                       "vm console b", "vm help ", "vm check ", "vm log -")
        assert got[0] == verbs | {"--version", "--help"}
        assert got[1] == {"start", "stop"}
        # Names from the daemon, not the config root in the environment...
        assert got[2] == {"alpha", "beta"}
        assert got[3] == {"alpha"}
        assert got[4] == {"--force", "--timeout", "--state-dir"}
        assert got[5] == {"beta"}
        assert got[6] == verbs
        # ...but vm check reads the config root.
        assert got[7] == {"gamma"}
        assert got[8] == {"-f", "--state-dir"}
        # --state-dir on the command line is the daemon asked.
        empty = tmp_path / "nodaemon"
        empty.mkdir()
        got = complete({"VMHOST_STATE_DIR": str(empty), "VMHOST_CONFIG_ROOT": str(other)},
                       f"vm start --state-dir {d.state} ", "vm start ",
                       f"vm check --config-root {d.root.path} ")
        assert got[0] == {"alpha", "beta"}
        # No daemon: the config root's directories.
        assert got[1] == {"gamma"}
        assert got[2] == {"alpha", "beta"}


def test_completion_offers_every_option_of_each_verb():
    """The completion's options per verb are exactly those the verb's usage
    line names (an option added to the CLI and not to the completion, or
    the other way round, fails here)."""
    text = (ROOT / "dist/vm.bash-completion").read_text()
    listed = dict(re.findall(r'^\t(\w+)\) opts="([^"]*)" ;;$', text, re.M))
    assert set(listed) == {"check", "console", "info", "list", "log", "start", "stop"}
    for verb, opts in listed.items():
        r = subprocess.run([str(BUILD / "vm"), verb, "--help"], capture_output=True,
                           text=True)
        usage = (r.stdout + r.stderr).split("\n\n")[0]
        usage = usage[usage.index("usage:"):]
        assert set(opts.split()) == set(re.findall(r"\[(--?[a-z-]+)", usage)), (verb, usage)
