"""Wayland from a guest to the host's compositor, end to end without the
daemon: real headless weston, real QEMU with a vhost-user-vsock device
served by vmhost-vsock, the guest kit's appvm.img (waypipe server and
vsock-relay started by its init), a waypipe client as the host end.

Which windows are on the compositor comes from weston's own scene graph
(weston-debug), whose client PID tells a guest's window (the PID of that
VM's host end) from anything else; what they look like, from a screenshot.
"""
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from helpers.guest import wait_for
from helpers.wayland import (WaylandVM, Weston, colourful_pixels, rss_kib,
                             WAYLAND_PORT)

FLOOD_PORT = 6001


@pytest.fixture
def weston(tmp_path):
    w = Weston(tmp_path / "weston")
    yield w
    w.close()


@pytest.fixture
def vms(tmp_path, guest_dir):
    started = []

    def start(weston=None, **kw):
        vm = WaylandVM(tmp_path / f"vm{len(started)}", guest_dir, weston, **kw)
        started.append(vm)
        return vm

    yield start
    for vm in started:
        vm.close()
    # Nothing outlives its VM: QEMU gone, so the backend exits by itself.
    for vm in started:
        if vm.backend is not None:
            assert vm.backend.wait(10) == 0, vm.backend_text()


def guest_windows(windows, vm, title="simple-shm"):
    return [w for w in windows if w[0] == title and vm.owns(w)]


def start_clients(vm, n, cmd="weston-simple-shm"):
    vm.guest.run("; ".join([f"({cmd} >/tmp/client{i}.log 2>&1 &)" for i in range(n)]))


def test_wayland_info_and_window(weston, vms):
    vm = vms(weston)
    g = vm.guest
    # The backend runs under its seccomp allow-list (src/vsock/sandbox.c).
    status = open(f"/proc/{vm.backend.pid}/status").read()
    assert "\nSeccomp:\t2\n" in status and "\nNoNewPrivs:\t1\n" in status
    assert "wayland on /run/user/0/wayland-0 through host vsock port 6000" in g.serial_text()
    # Shells on the console have the display.
    assert g.run("echo $XDG_RUNTIME_DIR $WAYLAND_DISPLAY") == "/run/user/0 wayland-0"

    info = g.run("wayland-info 2>&1", timeout=60)
    guest_ifaces = set(re.findall(r"interface: '(\w+)'", info))
    assert {"wl_compositor", "xdg_wm_base", "wl_shm"} <= guest_ifaces, info
    # They are the host compositor's: what the guest sees is a subset of
    # the host's own list (waypipe drops what it cannot forward), weston's
    # private globals included.
    host = subprocess.run(["wayland-info"], env=weston.env, capture_output=True,
                          text=True, timeout=30).stdout
    host_ifaces = set(re.findall(r"interface: '(\w+)'", host))
    assert guest_ifaces <= host_ifaces, guest_ifaces - host_ifaces
    print("guest sees:", sorted(guest_ifaces))
    assert any(i.startswith("weston_") for i in guest_ifaces), guest_ifaces

    before = weston.screenshot()
    assert not guest_windows(weston.windows(), vm)
    start_clients(vm, 1)
    wins = weston.wait_windows(lambda ws: guest_windows(ws, vm), 60,
                               "the guest's simple-shm window")
    box = guest_windows(wins, vm)[0][2]
    assert box[2] - box[0] == 250 and box[3] - box[1] == 250  # simple-shm's size
    # Its pixels: the window's area had none of those colours before, and
    # has them once the guest has drawn (give it a few frames).
    assert colourful_pixels(before, box) < 100
    deadline = time.monotonic() + 60
    while True:
        shot = weston.screenshot()
        n = colourful_pixels(shot, box)
        if n > 250 * 250 // 4 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert n > 250 * 250 // 4, f"{n} coloured pixels in {box} ({weston.last_shot})"
    # The transport carried it: guest-to-host bytes through vmhost-vsock.
    stats = vm.backend_stats()
    assert stats["conns"] >= 1 and stats["to_host"] > 250 * 250 * 4


def test_four_clients_one_vm(weston, vms):
    vm = vms(weston)
    start_clients(vm, 4)
    weston.wait_windows(lambda ws: len(guest_windows(ws, vm)) == 4, 90,
                        "four guest windows")
    # One vsock connection per application.
    assert vm.backend_stats()["conns"] == 4
    # A fifth client still gets through while the four draw.
    assert "interface: 'wl_compositor'" in vm.guest.run("wayland-info 2>&1", timeout=60)


def test_two_vms(weston, vms):
    a = vms(weston)
    b = vms(weston)
    start_clients(a, 1)
    start_clients(b, 1)
    weston.wait_windows(
        lambda ws: len(guest_windows(ws, a)) == 1 and len(guest_windows(ws, b)) == 1
        and len(ws) == 2, 90, "a window from each VM")
    # One VM going away leaves the other's window.
    a.close()
    weston.wait_windows(lambda ws: len(ws) == 1 and guest_windows(ws, b), 60,
                        "only b's window")
    assert "interface: 'xdg_wm_base'" in b.guest.run("wayland-info 2>&1", timeout=60)


def test_host_end_killed(weston, vms):
    vm = vms(weston)
    start_clients(vm, 1)
    wins = weston.wait_windows(lambda ws: guest_windows(ws, vm), 60, "the guest's window")
    # The host end and the process it forked for the application (the
    # daemon will kill the host end's whole cgroup).
    forked = [w[1] for w in guest_windows(wins, vm)]
    vm.host_end.kill()
    vm.host_end.wait()
    for pid in forked:
        os.kill(pid, signal.SIGKILL)
    # The window goes, the VM and its backend stay.
    weston.wait_windows(lambda ws: not ws, 30, "window gone")
    assert vm.guest.run("echo alive") == "alive"
    assert vm.backend.poll() is None
    # With no host end, an application fails, and the backend says why.
    out = vm.guest.run("wayland-info 2>&1; echo rc=$?", timeout=60)
    assert "wl_compositor" not in out, out
    assert f"{vm.host_socket}: Connection refused" in vm.backend_text()
    # The client that was running lost its display and exited.
    assert vm.guest.run("pidof weston-simple-shm || echo none") == "none"
    # The next application gets the new host end.
    vm.start_host_end()
    start_clients(vm, 1)
    weston.wait_windows(lambda ws: guest_windows(ws, vm), 60,
                        "the window through the new host end")


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


def test_flood_and_stall_bounded(weston, vms, tmp_path):
    """A guest floods eight connections and leaves four others unread:
    the backend's memory stays within its per-connection buffers, the
    flooding VM's own Wayland still works, and another VM is unaffected."""
    a = vms(weston, extra_ports=(FLOOD_PORT,))
    b = vms(weston)
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


def test_no_wayland(guest_dir, vms):
    vm = vms(None, wayland=False)
    g = vm.guest
    assert "wayland" not in g.serial_text()
    # No virtio vsock device, no guest end, no display for shells.
    assert g.run("ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport/ | grep -c virtio || true") == "0"
    assert g.run("ls /sys/firmware/qemu_fw_cfg/by_name/opt/vmhost/ 2>/dev/null | grep -c wayland || true") == "0"
    assert g.run("test -e /run/wayland && echo yes || echo no") == "no"
    assert g.run("pidof waypipe vsock-relay || echo none") == "none"
    assert g.run("echo \"[$WAYLAND_DISPLAY]\"") == "[]"


def test_sanitized_backend(weston, tmp_path, guest_dir, monkeypatch):
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
