"""Wayland from a guest to the host's compositor, end to end (issue 13,
docs/wayland.md): real headless weston run by a real desktop user created
here, real QEMU, the guest kit's appvm.img (waypipe server and vsock-relay
started by its init).

Through vmhostd --wayland-display: the daemon starts vmhost-vsock and the
waypipe host end, jailed, as the VM's uid, in the VM's cgroup; the VM's
uid may connect to the compositor (an ACL entry) while it runs.  Which
windows are on the compositor comes from weston's scene graph
(weston-debug), whose client PID tells whose they are (a process in the
VM's cgroup); what they look like, from a screenshot.

Under plain QEMU, where the test itself is the host service: a guest that
floods its transport or stops reading, and the backend under ASan.
"""
import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from helpers import users, vmdirs
from helpers.daemon import READY, Daemon, cmdline
from helpers.guest import wait_for
from helpers.wayland import (VSOCK_BACKEND, WaylandVM, Weston, acl,
                             colourful_pixels, rss_kib)

FLOOD_PORT = 6001
SHM = "simple-shm"   # weston-simple-shm's window title


@pytest.fixture(scope="module")
def desktop_user():
    """The compositor's owner, as on a desktop: not root, not the VMs'."""
    if os.geteuid() != 0:
        pytest.skip("needs root: users, jails and cgroups")
    with users.user("wl") as u:
        yield u


@pytest.fixture
def workdir():
    # One the desktop user can reach (pytest's tmp_path is root's 0700).
    with vmdirs.open_tmp("vmh-wl-") as p:
        yield p


@pytest.fixture
def weston(workdir, desktop_user):
    w = Weston(workdir / "weston", user=desktop_user)
    yield w
    w.close()


def wayland_args(display):
    return ["--wayland-display", str(display), "--vsock-backend", str(VSOCK_BACKEND)]


@pytest.fixture
def daemon(tmp_path, weston, guest_dir):
    with Daemon.serving(tmp_path, args=wayland_args(weston.socket)) as d:
        yield d


def start(d, name, wayland=True):
    """Start a VM of the guest kit (with the wayland flag); `vm start`'s
    output once the guest is ready."""
    vm = d.guest(name)
    if wayland:
        vm.flag("wayland")
    r = d.vm("start", name)
    assert r.returncode == 0, r.stderr + d.stderr()
    d.wait_serial(name, READY, 120)
    return r.stdout


def helpers_of(d, name):
    """{"vsock": pid, "host end": pid, "apps": [pids]} of name's run: the
    host end is the waypipe whose parent is not a waypipe (pid 1 of its
    namespace); the ones it forked serve one application each."""
    pids = d.run_pids(name)
    wp = [p for p in pids if cmdline(p).startswith("/usr/bin/waypipe ")]
    main = [p for p in wp if ppid(p) not in wp]
    vsock = [p for p in pids if cmdline(p).startswith("vmhost-vsock ")]
    return {"vsock": vsock[0] if vsock else None,
            "host end": main[0] if main else None,
            "apps": [p for p in wp if p not in main], "all": wp + vsock}


def ppid(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


def status(pid):
    return dict(ln.split(":\t", 1) for ln in
                open(f"/proc/{pid}/status").read().splitlines())


def windows_of(d, windows, name, title=SHM):
    pids = d.run_pids(name)
    return [w for w in windows if w[0] == title and w[1] in pids]


def clients(d, name, n, cmd="weston-simple-shm"):
    with d.console(name) as con:
        con.run("; ".join(f"({cmd} >/tmp/client{i}.log 2>&1 &)" for i in range(n)))


def guest(d, name, command, timeout=60):
    with d.console(name) as con:
        return con.run(command, timeout=timeout)


def vm_uid(d, name):
    return int(d.request({"op": "info", "name": name})["vm"]["uid"])


def backend_stats(d, name, pid):
    """The counters vmhost-vsock prints on SIGUSR1 (into the VM's helper
    log), as a dict."""
    log = d.state / "vms" / name / "virtiofsd.log"
    before = log.read_text().count(" stats ")
    os.kill(pid, signal.SIGUSR1)
    wait_for(lambda: log.read_text().count(" stats ") > before, 10, "stats")
    line = [ln for ln in log.read_text().splitlines() if " stats " in ln][-1]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def root_entries(pid, path=""):
    return sorted(os.listdir(f"/proc/{pid}/root/{path}"))


def test_window_through_the_daemon(daemon, weston):
    d = daemon
    before_acl = acl(weston.socket)
    out = start(d, "gfx")
    note = f"wayland: on the compositor at {weston.socket}"
    assert f"gfx: note: {note}" in out, out
    assert note in d.vm("info", "gfx").stdout
    assert f"vmhostd: {note}" in d.serial_log("gfx")
    assert "wayland on /run/user/0/wayland-0 through host vsock port 6000" in d.serial_log("gfx")

    # The helpers: the VM's uid, in its cgroup, each in namespaces of its
    # own, no capabilities, no_new_privs; vmhost-vsock under its seccomp
    # allow-list.
    uid = vm_uid(d, "gfx")
    h = helpers_of(d, "gfx")
    qemu = d.record("gfx")["pid"]
    for pid in (h["vsock"], h["host end"]):
        st = status(pid)
        assert st["Uid"].split()[0] == str(uid) and st["Gid"].split()[0] == str(uid)
        assert st["CapEff"] == "0000000000000000" and st["NoNewPrivs"] == "1"
        for kind in ("mnt", "pid", "ipc", "net"):
            mine = os.readlink(f"/proc/{pid}/ns/{kind}")
            assert mine != os.readlink(f"/proc/self/ns/{kind}"), (pid, kind)
            assert mine != os.readlink(f"/proc/{qemu}/ns/{kind}"), (pid, kind)
    assert status(h["vsock"])["Seccomp"] == "2"
    # What each can reach: the host end the compositor's socket and the
    # transport directory, vmhost-vsock the transport only, QEMU neither;
    # no /etc, no /home.
    assert root_entries(h["host end"], "run") == ["vmhost", "wayland"]
    assert root_entries(h["host end"], "run/wayland") == ["compositor"]
    assert root_entries(h["host end"], "run/vmhost") == ["vsock_6000"]
    assert root_entries(h["vsock"], "run") == ["vmhost"]
    assert not os.path.exists(f"/proc/{qemu}/root/run")
    for pid in (h["vsock"], h["host end"], qemu):
        assert not {"etc", "home", "root"} & set(root_entries(pid)), root_entries(pid)
    # The compositor's socket: the VM's uid may connect while it runs.
    assert f"user:{uid}:rw-" in acl(weston.socket)

    info = guest(d, "gfx", "wayland-info 2>&1")
    guest_ifaces = set(re.findall(r"interface: '(\w+)'", info))
    assert {"wl_compositor", "xdg_wm_base", "wl_shm"} <= guest_ifaces, info
    # The host compositor's: a subset of its own list (waypipe drops what
    # it cannot forward), weston's private globals among them.
    host = subprocess.run(["wayland-info"], env=weston.env, capture_output=True,
                          text=True, timeout=30).stdout
    host_ifaces = set(re.findall(r"interface: '(\w+)'", host))
    assert guest_ifaces <= host_ifaces, guest_ifaces - host_ifaces
    assert any(i.startswith("weston_") for i in guest_ifaces), guest_ifaces

    shot0 = weston.screenshot()
    assert not weston.windows()
    clients(d, "gfx", 1)
    wins = weston.wait_windows(lambda ws: windows_of(d, ws, "gfx"), 60,
                               "the guest's window")
    box = windows_of(d, wins, "gfx")[0][2]
    assert (box[2] - box[0], box[3] - box[1]) == (250, 250)  # simple-shm's size
    assert colourful_pixels(shot0, box) < 100
    deadline = time.monotonic() + 60
    while True:
        n = colourful_pixels(weston.screenshot(), box)
        if n > 250 * 250 // 4 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert n > 250 * 250 // 4, f"{n} coloured pixels in {box} ({weston.last_shot})"

    r = d.vm("stop", "--force", "gfx")
    assert r.returncode == 0, r.stderr
    weston.wait_windows(lambda ws: not ws, 30, "the window to go")
    # Nothing of it left: processes, transport tmpfs, grant.
    d.assert_clean("gfx")
    assert not (d.state / "run" / "gfx" / "wayland").exists()
    assert acl(weston.socket) == before_acl


def test_four_clients_and_two_vms(daemon, weston):
    d = daemon
    start(d, "a")
    start(d, "b")
    ua, ub = vm_uid(d, "a"), vm_uid(d, "b")
    assert ua != ub
    clients(d, "a", 4)
    clients(d, "b", 1)
    weston.wait_windows(lambda ws: len(windows_of(d, ws, "a")) == 4 and
                        len(windows_of(d, ws, "b")) == 1 and len(ws) == 5,
                        120, "four windows from a, one from b")
    # One host end process per application (waypipe forks one each).
    ha = helpers_of(d, "a")
    assert len(ha["apps"]) == 4
    rss = {p: rss_kib(p) for p in ha["all"]}
    print(f"four clients: host end {rss[ha['host end']]} KiB, its four application "
          f"processes {sum(rss[p] for p in ha['apps'])} KiB, vmhost-vsock "
          f"{rss[ha['vsock']]} KiB (RSS)")
    # A fifth application of a gets through while the four draw.
    assert "interface: 'wl_compositor'" in guest(d, "a", "wayland-info 2>&1")
    assert {f"user:{ua}:rw-", f"user:{ub}:rw-"} <= set(acl(weston.socket))
    # a stops: its windows and its grant go; b's stay.
    assert d.vm("stop", "--force", "a").returncode == 0
    weston.wait_windows(lambda ws: len(ws) == 1 and windows_of(d, ws, "b"), 60,
                        "only b's window")
    assert f"user:{ua}:rw-" not in acl(weston.socket)
    assert f"user:{ub}:rw-" in acl(weston.socket)
    assert "interface: 'xdg_wm_base'" in guest(d, "b", "wayland-info 2>&1")


def restarts(d):
    """The back-off delays the daemon has announced, in order."""
    return [int(ms) for ms in re.findall(r"a new Wayland host end in (\d+) ms", d.stderr())]


def test_host_end_killed(daemon, weston):
    """The host end killed: the VM runs on, the daemon says so and starts
    a new one, which serves the next application; while the compositor is
    gone, the daemon tries again later each time; once it is back (a new
    socket), the VM's applications show on it."""
    d = daemon
    start(d, "gfx")
    uid = vm_uid(d, "gfx")
    clients(d, "gfx", 1)
    weston.wait_windows(lambda ws: windows_of(d, ws, "gfx"), 60, "the guest's window")
    old = helpers_of(d, "gfx")
    os.kill(old["host end"], signal.SIGKILL)
    # Its namespace's processes go with it (it is their pid 1): the
    # window goes; the VM, its backend and QEMU stay.
    weston.wait_windows(lambda ws: not ws, 30, "the window to go")
    new_host_end(d, "gfx", old["host end"])
    new = helpers_of(d, "gfx")
    assert new["vsock"] == old["vsock"] and d.record("gfx")["state"] == "running"
    log = d.stderr()
    assert "vm gfx: Wayland host end killed by signal 9; a new Wayland host end in" in log
    assert f"a new Wayland host end runs: pid {new['host end']}" in log
    helper_log = (d.state / "vms" / "gfx" / "virtiofsd.log").read_text()
    assert "vmhostd: Wayland host end killed by signal 9" in helper_log
    assert guest(d, "gfx", "echo alive") == "alive"
    clients(d, "gfx", 1)
    weston.wait_windows(lambda ws: windows_of(d, ws, "gfx"), 60,
                        "the window through the new host end")

    # No compositor: each try waits longer.
    weston.stop()
    os.kill(new["host end"], signal.SIGKILL)
    wait_for(lambda: d.stderr().count("is the compositor running?") >= 3, 60,
             "three tries without a compositor", interval=0.5)
    delays = restarts(d)
    print(f"host end restarts: waits announced {delays} ms")
    assert delays[-3] < delays[-2] < delays[-1], delays
    assert helpers_of(d, "gfx")["host end"] is None
    assert d.record("gfx")["state"] == "running"
    # The compositor back, on a new socket: the next try grants it and
    # starts a host end; an application shows.
    weston.start()
    new_host_end(d, "gfx", None)
    assert f"user:{uid}:rw-" in acl(weston.socket)
    clients(d, "gfx", 1)
    weston.wait_windows(lambda ws: windows_of(d, ws, "gfx"), 60,
                        "the window on the restarted compositor")


def test_backend_killed(daemon, weston):
    """vmhost-vsock killed: QEMU's vhost-user device has lost its backend
    for good (QEMU 7.2 does not reconnect), so the VM runs on without
    Wayland, and the daemon says so; a stop still leaves nothing."""
    d = daemon
    start(d, "gfx")
    h = helpers_of(d, "gfx")
    os.kill(h["vsock"], signal.SIGKILL)
    msg = "vm gfx: vmhost-vsock killed by signal 9: the VM has no Wayland until it is started again"
    wait_for(lambda: msg in d.stderr(), 30, "the daemon to say so")
    assert d.record("gfx")["state"] == "running"
    out = guest(d, "gfx", "echo alive; wayland-info 2>&1", 90)
    assert out.startswith("alive") and "wl_compositor" not in out, out
    # No new host end is started for a transport that is gone.
    assert "a new Wayland host end" not in d.stderr()
    assert d.vm("stop", "gfx").returncode == 0
    d.assert_clean("gfx")


def successor(prev, tmp, name):
    """A new vmhostd on prev's state dir and arguments (prev killed)."""
    (tmp / name).mkdir()
    d = Daemon(tmp / name, args=prev.args)
    os.rmdir(d.state)
    d.root, d.state = prev.root, prev.state
    return d.start()


def listening(pid):
    """Whether pid's network namespace has a listening unix socket at
    vsock_6000 (the host end's, for the guest's applications)."""
    try:
        lines = open(f"/proc/{pid}/net/unix").read().splitlines()[1:]
    except OSError:
        return False
    return any(len(f) == 8 and f[7].endswith("vsock_6000") and int(f[3], 16) & 0x10000
               for f in map(str.split, lines))


def new_host_end(d, name, old):
    """Once a host end other than old, started by d's monitor, listens:
    its pid."""
    def ready():
        p = helpers_of(d, name)["host end"]
        return p not in (None, old) and ppid(p) == d.proc.pid and listening(p) and p
    wait_for(ready, 30, "a new host end")
    return helpers_of(d, name)["host end"]


def test_daemon_restarts(tmp_path, weston, guest_dir):
    """A re-executed monitor (SIGHUP) and a new one after kill -9 of the
    daemon: the Wayland helpers run on, and a host end that ends is
    started again.  A run that ended while no daemon ran loses its grant
    and its transport at the next start."""
    before = acl(weston.socket)
    (tmp_path / "a").mkdir()
    daemons = [Daemon(tmp_path / "a", args=wayland_args(weston.socket)).start()]
    try:
        a = daemons[0]
        start(a, "gfx")
        uid = vm_uid(a, "gfx")
        h = helpers_of(a, "gfx")
        os.kill(a.proc.pid, signal.SIGHUP)
        wait_for(lambda: "taken over from the previous image" in a.stderr(), 30,
                 "the re-exec")
        assert helpers_of(a, "gfx")["host end"] == h["host end"]
        os.kill(h["host end"], signal.SIGKILL)
        new_host_end(a, "gfx", h["host end"])
        clients(a, "gfx", 1)
        weston.wait_windows(lambda ws: windows_of(a, ws, "gfx"), 60,
                            "a window after the re-exec")

        a.kill9()
        b = successor(a, tmp_path, "b")
        daemons.append(b)
        assert "vm gfx: adopted" in b.stderr()
        h2 = helpers_of(b, "gfx")
        assert h2["vsock"] == h["vsock"] and h2["host end"]
        os.kill(h2["host end"], signal.SIGKILL)
        new_host_end(b, "gfx", h2["host end"])
        assert f"user:{uid}:rw-" in acl(weston.socket)
        clients(b, "gfx", 1)
        weston.wait_windows(lambda ws: windows_of(b, ws, "gfx"), 60,
                            "a window after the adoption")

        # The daemon and then the whole run killed: the next daemon finds
        # the grant and the transport of a run that is no more.
        b.kill9()

        def run_killed():
            # A process may end by itself meanwhile (an application's
            # host-side process when the guest's client quits).
            for p in b.run_pids("gfx"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
            return not b.run_pids("gfx")
        wait_for(run_killed, 30, "the run's processes to die")
        assert f"user:{uid}:rw-" in acl(weston.socket)
        assert (b.state / "run" / "gfx" / "wayland").is_mount()
        c = successor(b, tmp_path, "c")
        daemons.append(c)
        assert acl(weston.socket) == before
        assert not (c.state / "run" / "gfx" / "wayland").exists()
        c.assert_clean("gfx")
    finally:
        daemons[-1].stop()


def test_hostile_flood_through_the_daemon(daemon, weston):
    """A guest that floods its Wayland port with garbage, eight
    connections at a time, over and over: vmhost-vsock's memory stays
    bounded, the host end goes on (it drops each connection that does not
    speak its protocol), and the guest's own Wayland and another VM's
    work meanwhile."""
    d = daemon
    start(d, "bad")
    start(d, "good")
    h = helpers_of(d, "bad")
    base = rss_kib(h["vsock"])
    guest(d, "bad", "; ".join(
        ["(for i in $(seq 200); do vsock-relay connect 6000 </dev/zero >/dev/null 2>&1; "
         "done &)"] * 8))
    wait_for(lambda: backend_stats(d, "bad", h["vsock"])["to_host"] > 4 << 20, 120,
             "4 MiB of the flood to reach the host end", interval=1)
    peak = base
    end = time.monotonic() + 15
    while time.monotonic() < end:
        peak = max(peak, rss_kib(h["vsock"]))
        time.sleep(0.5)
    assert "interface: 'wl_compositor'" in guest(d, "good", "wayland-info 2>&1", 90)
    assert "interface: 'wl_compositor'" in guest(d, "bad", "wayland-info 2>&1", 90)
    s = backend_stats(d, "bad", h["vsock"])
    print(f"hostile flood: vmhost-vsock RSS {base} KiB before, at most {peak} KiB during; "
          f"{s['to_host']} B to the host end, {s['conns']} connections open")
    assert peak - base < 8 * 256 + 4096
    after = helpers_of(d, "bad")
    assert (after["vsock"], after["host end"]) == (h["vsock"], h["host end"])


def test_without_a_compositor(tmp_path, workdir, guest_dir):
    """No --wayland-display, a socket path with nothing there, and a
    socket nobody listens on: the VM starts without the device and its
    helpers, and vm start, vm info and the serial log say why."""
    stale = workdir / "stale"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))
    s.close()
    cases = [
        ([], "wayland: vmhostd has no compositor (it runs without --wayland-display)"),
        (wayland_args(workdir / "nothing"),
         f"wayland: {workdir}/nothing: no such file (is the compositor running?)"),
        (wayland_args(stale),
         f"wayland: {stale}: nothing listens there (connection refused)"),
    ]
    for i, (args, why) in enumerate(cases):
        with Daemon.serving(tmp_path / f"d{i}", args=args) as d:
            vm = d.guest("gfx")
            vm.flag("wayland")
            if not args:
                # Not running: info already says what a start would.
                assert why in d.vm("info", "gfx").stdout
            r = d.vm("start", "gfx")
            assert r.returncode == 0, r.stderr
            assert f"gfx: note: {why}; the VM runs without Wayland" in r.stdout, r.stdout
            assert why in d.vm("info", "gfx").stdout
            assert f"vmhostd: {why}" in d.serial_log("gfx")
            assert not [p for p in d.run_pids("gfx") if "waypipe" in cmdline(p)
                        or "vmhost-vsock" in cmdline(p)]
            if i == 0:
                # The guest has no transport and no display.
                d.wait_serial("gfx", READY, 120)
                assert_no_wayland_in_guest(d, "gfx")
            d.vm("stop", "--force", "gfx")
            d.assert_clean("gfx")


def assert_no_wayland_in_guest(d, name):
    out = guest(d, name, "ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport/ | grep -c virtio; "
                "ls /sys/firmware/qemu_fw_cfg/by_name/opt/vmhost/ 2>/dev/null | grep -c wayland; "
                "test -e /run/wayland && echo yes || echo no; "
                "pidof waypipe vsock-relay || echo none; echo \"[$WAYLAND_DISPLAY]\"")
    assert out.split() == ["0", "0", "no", "none", "[]"], out
    assert "wayland on" not in d.serial_log(name)


def test_no_wayland_flag(daemon, weston):
    """A VM without `wayland` beside a compositor: no device, no backend,
    no host end, no grant, no note."""
    d = daemon
    out = start(d, "plain", wayland=False)
    assert "note" not in out
    assert not helpers_of(d, "plain")["all"]
    assert not (d.state / "run" / "plain" / "wayland").exists()
    uid = vm_uid(d, "plain")
    assert not [ln for ln in acl(weston.socket) if ln.startswith(f"user:{uid}:")]
    assert "note:" not in d.vm("info", "plain").stdout
    assert_no_wayland_in_guest(d, "plain")


def test_check_wayland(vm_bin, tmp_path, weston):
    """vm check takes vmhostd's --wayland-display: it warns about a VM
    with wayland when no compositor is given or none listens there."""
    root = vmdirs.ConfigRoot(tmp_path)
    root.vm("gfx").flag("wayland")
    root.vm("plain")

    def check(*args):
        return subprocess.run([str(vm_bin), "check", "--config-root", str(root.path), *args],
                              capture_output=True, text=True)
    r = check()
    assert r.returncode == 0 and r.stderr.splitlines() == [
        "gfx: wayland: warning: no compositor given (--wayland-display PATH, as vmhostd's): "
        "it would start without Wayland"], r.stderr
    r = check("--wayland-display", str(weston.socket))
    assert r.returncode == 0 and r.stderr == "" and "gfx: ok" in r.stdout, r.stderr
    weston.stop()
    r = check("--wayland-display", str(weston.socket))
    assert r.returncode == 0 and r.stderr.splitlines() == [
        f"gfx: wayland: warning: {weston.socket}: no such file (is the compositor running?): "
        "it would start without Wayland"], r.stderr


def test_sanitized_daemon(tmp_path, weston, guest_dir, monkeypatch):
    """vmhostd and vmhost-vsock built with ASan and UBSan (make asan)
    through the Wayland path: a window, a host end killed and started
    again, a stop; the daemon exits 0 on SIGTERM with no sanitizer report
    (leaks included), and so does vmhost-vsock."""
    import helpers.daemon as hd
    from test_asan import ASAN, sanitizer_reports
    if not (ASAN / "vmhostd").exists():
        pytest.fail(f"{ASAN / 'vmhostd'} missing: run make asan")
    monkeypatch.setattr(hd, "VMHOSTD", ASAN / "vmhostd")
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:halt_on_error=1")
    monkeypatch.setenv("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    args = ["--wayland-display", str(weston.socket),
            "--vsock-backend", str(ASAN / "src" / "vsock" / "vmhost-vsock")]
    d = Daemon(tmp_path, args=args).start()
    try:
        start(d, "gfx")
        clients(d, "gfx", 1)
        weston.wait_windows(lambda ws: windows_of(d, ws, "gfx"), 120, "the window")
        old = helpers_of(d, "gfx")["host end"]
        os.kill(old, signal.SIGKILL)
        new_host_end(d, "gfx", old)
        clients(d, "gfx", 1)
        weston.wait_windows(lambda ws: windows_of(d, ws, "gfx"), 120,
                            "the window through the new host end")
        assert d.vm("stop", "gfx").returncode == 0
        # vmhost-vsock's stderr: the VM's helper log.
        helpers = (d.state / "vms" / "gfx" / "virtiofsd.log").read_text(errors="replace")
        assert "vmhost-vsock: gfx: device started" in helpers
        assert not sanitizer_reports(helpers), helpers
        # An abort (abort_on_error) would be a SIGABRT.
        assert "killed by signal 6" not in d.stderr(), d.stderr()
    finally:
        d.stop()
    assert d.proc.returncode == 0, d.stderr()
    assert not sanitizer_reports((tmp_path / "vmhostd.stderr").read_text(errors="replace")), \
        d.stderr()


# --- plain QEMU: the test is the host service behind vmhost-vsock ---


@pytest.fixture
def vms(tmp_path, guest_dir):
    started = []

    def start_vm(weston=None, **kw):
        vm = WaylandVM(tmp_path / f"vm{len(started)}", guest_dir, weston, **kw)
        started.append(vm)
        return vm

    yield start_vm
    for vm in started:
        vm.close()
    # Nothing outlives its VM: QEMU gone, so the backend exits by itself.
    for vm in started:
        if vm.backend is not None:
            assert vm.backend.wait(10) == 0, vm.backend_text()


def guest_windows(windows, vm, title=SHM):
    return [w for w in windows if w[0] == title and vm.owns(w)]


def start_clients(vm, n, cmd="weston-simple-shm"):
    vm.guest.run("; ".join([f"({cmd} >/tmp/client{i}.log 2>&1 &)" for i in range(n)]))


@pytest.fixture
def plain_weston(tmp_path):
    w = Weston(tmp_path / "weston")
    yield w
    w.close()


class Sink:
    """A host service on FLOOD_PORT for the flood test: accepts every
    connection and never reads (guest-to-host flood), or writes as much as
    it can without blocking (for a guest that does not read)."""

    def __init__(self, path, write):
        self.path = path
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(str(path))
        self.srv.listen(64)
        self.conns = []
        self.written = 0
        self.write = write
        self.stop = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        self.srv.settimeout(0.2)
        chunk = b"w" * 65536
        while not self.stop:
            try:
                c, _ = self.srv.accept()
                c.setblocking(False)
                self.conns.append(c)
            except socket.timeout:
                pass
            if self.write:
                for c in self.conns:
                    try:
                        while True:
                            self.written += c.send(chunk)
                    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                        pass

    def close(self):
        self.stop = True
        self.thread.join()
        for c in self.conns:
            c.close()
        self.srv.close()
        os.unlink(self.path)


def test_flood_and_stall_bounded(plain_weston, vms, tmp_path):
    """A guest floods eight connections and leaves four others unread:
    the backend's memory stays within its per-connection buffers, the
    flooding VM's own Wayland still works, and another VM is unaffected."""
    a = vms(plain_weston, extra_ports=(FLOOD_PORT,))
    b = vms(plain_weston)
    base_rss = rss_kib(a.backend.pid)

    flood = Sink(f"{a.base}_{FLOOD_PORT}", write=False)
    try:
        a.guest.run("; ".join(
            [f"(vsock-relay connect {FLOOD_PORT} </dev/zero >/dev/null 2>&1 &)"
             for _ in range(8)]))
        wait_for(lambda: len(flood.conns) == 8, 60, "eight flooding connections")

        # Guest-to-host: the backend holds at most buf-size (256 KiB) per
        # connection; the rest waits in the guest.
        def buffered_full():
            s = a.backend_stats()
            return s["buffered"] >= 8 * 200 * 1024
        wait_for(buffered_full, 120, "the backend's buffers to fill", interval=1)
        s1 = a.backend_stats()
        time.sleep(5)
        s2 = a.backend_stats()
        assert s2["buffered"] <= 8 * 256 * 1024
        assert s2["to_host"] - s1["to_host"] < 2 * 1024 * 1024  # the sink reads nothing
        flood_rss = rss_kib(a.backend.pid)
        print(f"flood: backend RSS {base_rss} KiB idle, {flood_rss} KiB with 8 flooding "
              f"connections; buffered {s2['buffered']} B; to_host {s2['to_host']} B")
        assert flood_rss - base_rss < 8 * 256 + 4096, (base_rss, flood_rss)

        # The same guest's Wayland and the other VM's still work.
        assert "interface: 'wl_compositor'" in a.guest.run("wayland-info 2>&1", timeout=90)
        assert "interface: 'wl_compositor'" in b.guest.run("wayland-info 2>&1", timeout=90)
    finally:
        # The backend's writes now fail: it resets those connections.
        flood.close()

    # Host-to-guest with a guest that does not read: each relay writes
    # into a pipe nobody drains, so its vsock socket is not read either.
    stall = Sink(f"{a.base}_{FLOOD_PORT}", write=True)
    try:
        a.guest.run("; ".join(
            [f"(vsock-relay connect {FLOOD_PORT} </dev/null | sleep 100000 &)"
             for _ in range(4)]))
        wait_for(lambda: len(stall.conns) == 4, 60, "four unread connections")

        def stalled():
            w = stall.written
            time.sleep(3)
            return stall.written == w and w > 0
        wait_for(stalled, 120, "the host writer to be blocked", interval=0)
        s = a.backend_stats()
        stall_rss = rss_kib(a.backend.pid)
        print(f"stall: host wrote {stall.written} B into 4 connections the guest does not "
              f"read; backend passed {s['to_guest']} B to the guest; RSS {stall_rss} KiB")
        # The backend read no more than the guest had credit for (its
        # socket buffer, 256 KiB by default, per connection) and kept none.
        assert s["to_guest"] <= 4 * (256 * 1024 + 64 * 1024) + 1024 * 1024, s
        assert stall_rss - base_rss < 8 * 256 + 4096
        assert "interface: 'xdg_wm_base'" in b.guest.run("wayland-info 2>&1", timeout=90)
        assert "interface: 'xdg_wm_base'" in a.guest.run("wayland-info 2>&1", timeout=90)
    finally:
        stall.close()


def test_sanitized_backend(plain_weston, tmp_path, guest_dir, monkeypatch):
    """vmhost-vsock built with ASan and UBSan (make asan) under real QEMU:
    four clients and a guest that opens and resets connections in a loop;
    it exits 0 when QEMU goes, with no sanitizer report (leaks included)."""
    import helpers.wayland as hw
    asan = hw.BUILD / "asan" / "src" / "vsock" / "vmhost-vsock"
    if not asan.exists():
        pytest.fail(f"{asan} missing: run make asan")
    monkeypatch.setattr(hw, "VSOCK_BACKEND", asan)
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1:halt_on_error=1")
    monkeypatch.setenv("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    weston = plain_weston
    vm = WaylandVM(tmp_path / "asan-vm", guest_dir, weston, extra_ports=(FLOOD_PORT,))
    try:
        start_clients(vm, 4)
        weston.wait_windows(lambda ws: len(guest_windows(ws, vm)) == 4, 120,
                            "four guest windows")
        # Refused connections (no listener on FLOOD_PORT, a port not
        # allowed) and short-lived ones, many times over.
        out = vm.guest.run("for i in $(seq 50); do vsock-relay connect 6001 </dev/null; "
                           "vsock-relay connect 7 </dev/null; done 2>&1 | sort | uniq -c",
                           timeout=120)
        assert "Connection reset by peer" in out, out
        assert vm.backend_stats()["refused"] == 100
    finally:
        vm.close()
    text = vm.backend_text()
    assert vm.backend.returncode == 0, text
    assert not [ln for ln in text.splitlines()
                if "Sanitizer" in ln or "runtime error:" in ln], text
