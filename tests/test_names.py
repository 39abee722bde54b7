"""`vm list` without a round trip to the monitor (issue 14): the monitor
watches the config root (inotify) and keeps the engine's copy of its VM
names current, so a VM directory created, removed or renamed shows in the
very next list (the engine's own watch of the root makes it ask for a
sync when a change may not have been pushed yet), and a list request
with nothing changed does not wake the monitor at all.  Checked
on a burst of 10000 directories, a root moved away and back, and after
an engine kill -9 and a SIGHUP re-exec, with a running VM (the fake QEMU
of test_engine.py) whose directory goes while it runs.

"Does not wake the monitor": its voluntary context switches
(/proc/PID/status) over 200 list requests; asking it, as before, costs
about one per request."""
import os
import shutil
import signal

import pytest

from helpers.daemon import Daemon, wait_until
from test_engine import fake_qemu, fake_vm  # noqa: F401 (a fixture)

LISTS = 200


def names(d):
    r = d.request({"op": "list"})
    assert r["ok"], r
    return [v["name"] for v in r["vms"]]


def shown(d, want, what, timeout=30):
    """Wait until the list is exactly want (sorted)."""
    want = sorted(want)
    wait_until(lambda: names(d) == want, timeout, what)


def monitor_wakeups(d, lists=LISTS):
    """The monitor's voluntary context switches over lists requests."""
    def switches():
        with open(f"/proc/{d.proc.pid}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    return int(line.split()[1])
        raise AssertionError("no voluntary_ctxt_switches")
    before = switches()
    for _ in range(lists):
        names(d)
    return switches() - before


def assert_not_asked(d):
    woke = monitor_wakeups(d)
    print(f"monitor woken {woke} times by {LISTS} list requests")
    assert woke < LISTS // 20, f"the monitor was woken {woke} times by {LISTS} lists"


@pytest.fixture
def d(tmp_path, vmhostd_bin, fake_qemu):  # noqa: F811
    with Daemon.serving(tmp_path, args=["--qemu", str(fake_qemu)]) as d:
        yield d


def test_list_follows_the_root(d):
    """Created, removed, renamed, linked: each shows in the next list; a
    file, an invalid name and a link to a file do not; lists are served
    without waking the monitor."""
    root = d.root.path
    for n in ("a", "b"):
        d.root.vm(n)
    shown(d, ["a", "b"], "the first VMs")
    assert_not_asked(d)
    os.mkdir(root / "c")
    shown(d, ["a", "b", "c"], "a new directory")
    os.rename(root / "c", root / "d")
    shown(d, ["a", "b", "d"], "a renamed directory")
    os.rmdir(root / "d")
    shown(d, ["a", "b"], "a removed directory")
    (root / "file").write_text("not a VM\n")
    (root / "file-link").symlink_to(root / "file")
    os.mkdir(root / ".hidden")
    os.mkdir(root / "-dash")
    os.symlink(d.root.path / "a", root / "link")
    # The link's event comes after the others': once it shows, they
    # were seen too.
    shown(d, ["a", "b", "link"], "a link to a VM directory")
    (root / "link").unlink()
    os.rename(root / "b", root.parent / "b-away")
    shown(d, ["a"], "a directory moved out")
    os.rename(root.parent / "b-away", root / "b")
    shown(d, ["a", "b"], "a directory moved in")
    assert_not_asked(d)


def test_list_right_after_a_change(d):
    """No wait between the change and the list: each of 100 changes is
    in the next list request, and in the next `vm list`."""
    root = d.root.path
    d.root.vm("a")
    for i in range(50):
        os.mkdir(root / f"n{i}")
        assert f"n{i}" in names(d), i
        os.rename(root / f"n{i}", root / f"m{i}")
        got = names(d)
        assert f"m{i}" in got and f"n{i}" not in got, i
    for i in range(50):
        os.rmdir(root / f"m{i}")
        assert f"m{i}" not in names(d), i
    os.mkdir(root / "cli")
    r = d.vm("list")
    assert r.returncode == 0 and "cli" in r.stdout, r.stdout + r.stderr
    assert names(d) == ["a", "cli"]
    assert_not_asked(d)


def test_burst_of_10000(d):
    """10000 directories made as fast as Python can, then removed: the
    list shows each state exactly, and the engine, sent them in parts,
    is never killed for a full channel."""
    root = d.root.path
    d.root.vm("keep")
    shown(d, ["keep"], "the first VM")
    engine = d.engine_pid()
    burst = [f"b{i:05d}" for i in range(10000)]
    for n in burst:
        os.mkdir(root / n)
    shown(d, ["keep", *burst], "10000 new directories", timeout=60)
    assert_not_asked(d)
    for n in burst:
        os.rmdir(root / n)
    shown(d, ["keep"], "10000 directories removed", timeout=60)
    assert d.engine_pid() == engine
    log = d.stderr()
    assert "killing it" not in log and "engine killed" not in log, log[-2000:]


def test_root_moved_away_and_back(d):
    """The root itself moved away: the watch ends, the list is empty and
    asked of the monitor each time; moved back: the next list watches it
    again, and lists stop waking the monitor.  Then removed and made
    anew: the same."""
    root = d.root.path
    d.root.vm("a")
    shown(d, ["a"], "the first VM")
    away = root.parent / "moved-root"
    os.rename(root, away)
    shown(d, [], "the root moved away")
    # Asked each time (a wake-up may serve two requests that came close).
    woke = monitor_wakeups(d, 20)
    assert woke >= 10, f"an unwatched root: 20 lists woke the monitor {woke} times"
    os.rename(away, root)
    shown(d, ["a"], "the root back")
    os.mkdir(root / "b")
    shown(d, ["a", "b"], "a new directory in the root watched again")
    assert_not_asked(d)
    log = d.stderr()
    assert "deleted, moved or unmounted: not watched" in log
    assert "watched again" in log
    shutil.rmtree(root)
    shown(d, [], "the root removed")
    assert monitor_wakeups(d, 20) >= 10
    os.mkdir(root)
    os.mkdir(root / "c")
    shown(d, ["c"], "the root made anew")
    os.mkdir(root / "e")
    shown(d, ["c", "e"], "a new directory in the new root")
    assert_not_asked(d)


def start_fake(d, name):
    fake_vm(d, name, "")
    r = d.vm("start", name)
    assert r.returncode == 0, r.stderr + d.stderr()[-2000:]
    assert d.record(name)["state"] == "running"


def test_after_engine_kill9(d):
    """A new engine gets the whole list and then every change; a running
    VM whose directory went is listed while it runs."""
    start_fake(d, "run")
    d.root.vm("idle")
    shown(d, ["idle", "run"], "both VMs")
    old = d.engine_pid()
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: (e := d.engine_pid()) and e != old, 10, "a new engine")
    os.mkdir(d.root.path / "made-after")
    shown(d, ["idle", "made-after", "run"], "the list after the restart")
    os.rename(d.root.path / "run", d.root.path.parent / "run-away")
    shown(d, ["idle", "made-after", "run"], "a running VM without its directory")
    assert d.record("run")["state"] == "running"
    assert_not_asked(d)
    assert d.vm("stop", "--force", "run").returncode == 0
    shown(d, ["idle", "made-after"], "the VM stopped without its directory")
    os.rename(d.root.path.parent / "run-away", d.root.path / "run")
    d.assert_clean("run")


def test_after_sighup(d):
    """The re-executed monitor watches the root anew (its inotify fd
    closes at exec) and its new engine gets the whole list."""
    start_fake(d, "run")
    shown(d, ["run"], "the VM")
    monitor, old = d.proc.pid, d.engine_pid()
    os.kill(monitor, signal.SIGHUP)
    wait_until(lambda: (e := d.engine_pid()) and e != old, 10, "a new engine")
    assert d.proc.pid == monitor and d.proc.poll() is None
    os.mkdir(d.root.path / "made-after")
    shown(d, ["made-after", "run"], "the list after the re-exec")
    os.rmdir(d.root.path / "made-after")
    shown(d, ["run"], "a directory removed after the re-exec")
    assert d.record("run")["state"] == "running"
    assert_not_asked(d)
    assert d.vm("stop", "--force", "run").returncode == 0
    d.assert_clean("run")
