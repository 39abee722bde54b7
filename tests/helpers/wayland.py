"""The Wayland path without the daemon (docs/wayland.md): a headless weston
on the host, and guests booted under plain QEMU with a vhost-user-vsock
device served by build/src/vsock/vmhost-vsock and a waypipe client as the
host end.

    weston = Weston(tmp_path / "weston")
    vm = WaylandVM(tmp_path / "vm0", guest_dir, weston)
    vm.guest.run("wayland-info")
    weston.windows()            # [(title, pid, (x0, y0, x1, y1)), ...]
    weston.screenshot()         # PIL image of the compositor's output
"""
import os
import pathlib
import re
import signal
import socket
import subprocess
import time

from helpers.daemon import descendants
from helpers.guest import Guest, wait_for

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("VMHOST_BUILD", ROOT / "build"))
VSOCK_BACKEND = BUILD / "src" / "vsock" / "vmhost-vsock"
WAYLAND_PORT = 6000  # VMM_WAYLAND_VSOCK_PORT in src/vmm/vmm.h
READY = "vmhost-guest: ready"
BOOT_TIMEOUT = 120


def rss_kib(pid):
    """Resident set size of pid, in KiB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def stop(proc, sig=signal.SIGTERM, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Weston:
    """Headless weston (pixman renderer, so it really draws) with the debug
    protocol on, in a private runtime directory."""

    def __init__(self, workdir, name="wl-host", width=1024, height=768):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.runtime = self.dir / "runtime"
        self.runtime.mkdir(mode=0o700, exist_ok=True)
        self.socket = self.runtime / name
        self.env = dict(os.environ, XDG_RUNTIME_DIR=str(self.runtime),
                        WAYLAND_DISPLAY=str(self.socket))
        self.env.pop("DISPLAY", None)
        self.log = open(self.dir / "weston.log", "wb")
        self.proc = subprocess.Popen(
            ["weston", "--backend=headless-backend.so", "--use-pixman", "--debug",
             f"--socket={name}", f"--width={width}", f"--height={height}",
             "--idle-time=0"],
            env=self.env, cwd=self.dir, stdin=subprocess.DEVNULL,
            stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: self.socket.exists() or self.proc.poll() is not None,
                     30, "weston's socket")
            if self.proc.poll() is not None:
                raise RuntimeError("weston exited:\n" + self.log_text())
        except BaseException:
            self.close()
            raise

    def log_text(self):
        return (self.dir / "weston.log").read_text(errors="replace")

    def client(self, argv, **kw):
        """Run a Wayland client directly on the host compositor."""
        return subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, **kw)

    def windows(self):
        """Top-level windows from weston's scene graph:
        [(title, client pid, (x0, y0, x1, y1))]."""
        out = subprocess.run(["timeout", "10", "weston-debug", "scene-graph"],
                             env=self.env, capture_output=True, text=True).stdout
        wins = []
        pat = re.compile(r"role xdg_toplevel, PID (\d+), .*top-level window '([^']*)'.*\n"
                         r"\s*position: \((-?\d+), (-?\d+)\) -> \((-?\d+), (-?\d+)\)")
        for m in pat.finditer(out):
            pid, title = int(m.group(1)), m.group(2)
            wins.append((title, pid, tuple(int(m.group(i)) for i in range(3, 7))))
        return wins

    def wait_windows(self, pred, timeout, what):
        seen = []

        def check():
            seen[:] = self.windows()
            return pred(seen)
        try:
            wait_for(check, timeout, what, interval=0.5)
        except TimeoutError as e:
            raise TimeoutError(f"{e}; windows: {seen}") from None
        return list(seen)

    def screenshot(self):
        """The compositor's output now, as a PIL image (weston-screenshooter
        through the debug protocol)."""
        from PIL import Image
        shots = self.dir / "shots"
        shots.mkdir(exist_ok=True)
        before = set(shots.iterdir())
        subprocess.run(["weston-screenshooter"], env=self.env, cwd=shots,
                       check=True, timeout=30, capture_output=True)
        new = sorted(set(shots.iterdir()) - before)
        assert len(new) == 1, new
        img = Image.open(new[0])
        img.load()
        self.last_shot = new[0]
        return img.convert("RGB")

    def close(self):
        stop(self.proc)
        self.log.close()


def colourful_pixels(img, box=None):
    """Pixels whose channels differ by more than 100: the demo clients'
    colours; weston's background, panel and text are grey."""
    if box:
        img = img.crop(box)
    return sum(1 for r, g, b in img.getdata() if max(r, g, b) - min(r, g, b) > 100)


class WaylandVM:
    """One appvm under plain QEMU with its transport: vmhost-vsock on a
    socketpair (--fd, as the daemon will pass it), allowed ports
    WAYLAND_PORT and extra_ports, and a waypipe client at BASE_6000 beside
    weston (unless wayland=False: then no device, no fw_cfg, no host end)."""

    def __init__(self, workdir, guest_dir, weston=None, wayland=True, extra_ports=(),
                 max_conns=None):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.base = self.dir / "vsock"
        self.weston = weston
        self.backend = self.host_end = self.guest = None
        self.host_end_log = None
        extra, fds = [], ()
        try:
            if wayland:
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                argv = [str(VSOCK_BACKEND), "--fd", str(ours.fileno()),
                        "--base", str(self.base), "--name", self.dir.name,
                        "--port", str(WAYLAND_PORT)]
                for p in extra_ports:
                    argv += ["--port", str(p)]
                if max_conns:
                    argv += ["--max-conns", str(max_conns)]
                self.backend_log = self.dir / "vmhost-vsock.log"
                self.backend = subprocess.Popen(argv, pass_fds=(ours.fileno(),),
                                                stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL,
                                                stderr=open(self.backend_log, "wb"))
                ours.close()
                fds = (theirs.fileno(),)
                extra = ["-chardev", f"socket,id=vsock,fd={theirs.fileno()}",
                         "-device", "vhost-user-vsock-pci,id=vsock0,chardev=vsock",
                         "-fw_cfg", f"name=opt/vmhost/wayland-port,string={WAYLAND_PORT}"]
                if weston:
                    self.start_host_end()
            self.guest = Guest(self.dir, guest_dir / "vmlinux", guest_dir / "appvm.img",
                               memfd=True, extra=extra, pass_fds=fds)
            if wayland:
                theirs.close()
            self.guest.wait_serial(READY, BOOT_TIMEOUT)
        except BaseException:
            self.close()
            raise

    @property
    def host_socket(self):
        return pathlib.Path(f"{self.base}_{WAYLAND_PORT}")

    def start_host_end(self):
        """waypipe client at BASE_6000 talking to weston."""
        if self.host_socket.exists():
            self.host_socket.unlink()  # a dead host end's
        self.host_end_log = open(self.dir / "waypipe-client.log", "ab")
        self.host_end = subprocess.Popen(
            ["waypipe", "--socket", str(self.host_socket), "client"],
            env=self.weston.env, stdin=subprocess.DEVNULL,
            stdout=self.host_end_log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.host_socket.exists() or self.host_end.poll() is not None,
                 20, "waypipe client socket")
        assert self.host_end.poll() is None, "waypipe client exited"

    def owns(self, window):
        """Whether a window from Weston.windows() is this VM's: its client
        is this VM's host end or a process it forked (one per application)."""
        if self.host_end is None or self.host_end.poll() is not None:
            return False
        return window[1] in [self.host_end.pid] + descendants(self.host_end.pid)

    def backend_text(self):
        return self.backend_log.read_text(errors="replace")

    def backend_stats(self):
        """The counters vmhost-vsock prints on SIGUSR1, as a dict."""
        before = self.backend_text().count(" stats ")
        self.backend.send_signal(signal.SIGUSR1)
        wait_for(lambda: self.backend_text().count(" stats ") > before, 10, "stats")
        line = [ln for ln in self.backend_text().splitlines() if " stats " in ln][-1]
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}

    def close(self):
        if self.guest is not None:
            self.guest.close()
        stop(self.host_end)
        if self.host_end_log:
            self.host_end_log.close()
        stop(self.backend)
