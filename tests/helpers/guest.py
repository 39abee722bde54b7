"""Boot a guest image under a plain qemu-system-x86_64 (TCG, q35) and talk
to it: serial log in a file, hvc0 and QMP on unix sockets, optional
virtio-fs shares served by a real virtiofsd."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

QEMU = "qemu-system-x86_64"
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
CMDLINE = "console=ttyS0 root=PARTLABEL=root ro panic=-1"
MEM_MB = 256


def wait_for(pred, timeout, what, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Guest:
    """One QEMU process and its virtiofsds; always call close()."""

    def __init__(self, workdir, kernel, image, shares=None, extra=(), memfd=False,
                 pass_fds=()):
        """memfd: guest RAM in a shareable memfd even without shares (for
        other vhost-user backends, such as vmhost-vsock); pass_fds: fds
        QEMU inherits (extra can name them, as -chardev socket,fd=N)."""
        self.dir = pathlib.Path(workdir)
        self.serial = self.dir / "serial.log"
        self.hvc_path = self.dir / "hvc0.sock"
        self.qmp_path = self.dir / "qmp.sock"
        self.procs = []
        self.qemu = None
        self.hvc = None
        self.hvc_buf = b""
        argv = [QEMU, "-M", "q35,accel=tcg", "-m", str(MEM_MB), "-smp", "1",
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-kernel", str(kernel), "-append", CMDLINE,
                "-drive", f"file={image},if=none,id=root,format=raw,readonly=on",
                "-device", "virtio-blk-pci,drive=root",
                "-chardev", f"file,id=ser,path={self.serial}", "-serial", "chardev:ser",
                "-chardev", f"socket,id=hvc0,path={self.hvc_path},server=on,wait=off",
                "-device", "virtio-serial-pci,id=vser0",
                "-device", "virtconsole,chardev=hvc0,bus=vser0.0",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        try:
            argv += self._start_shares(shares or {}, memfd)
            argv += list(extra)
            self.qemu_log = open(self.dir / "qemu.log", "wb")
            self.qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=self.qemu_log, stderr=subprocess.STDOUT,
                                         pass_fds=tuple(pass_fds))
            self.procs.append(self.qemu)
            wait_for(lambda: self.hvc_path.exists() or self.qemu.poll() is not None,
                     10, "QEMU sockets")
            if self.qemu.poll() is not None:
                raise RuntimeError(f"qemu exited: {self.qemu_output()}")
        except BaseException:
            self.close()
            raise

    def _start_shares(self, shares, memfd):
        """shares: {tag: host_dir}.  Each gets a virtiofsd; the guest learns
        the tags from fw_cfg, as the vmhost daemon tells it."""
        if not shares and not memfd:
            return []
        args = ["-object", f"memory-backend-memfd,id=mem,size={MEM_MB}M,share=on",
                "-numa", "node,memdev=mem"]
        for i, (tag, path) in enumerate(shares.items()):
            sock = self.dir / f"vfs{i}.sock"
            log = open(self.dir / f"virtiofsd-{i}.log", "wb")
            p = subprocess.Popen([VIRTIOFSD, f"--socket-path={sock}", "-o", f"source={path}",
                                  "-o", "sandbox=chroot", "-o", "cache=none"],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            self.procs.append(p)
            wait_for(lambda: sock.exists() or p.poll() is not None, 10, "virtiofsd socket")
            assert p.poll() is None, "virtiofsd exited early"
            args += ["-chardev", f"socket,id=vfs{i},path={sock}",
                     "-device", f"vhost-user-fs-pci,chardev=vfs{i},tag={tag}"]
        if shares:
            tags = ",,".join(shares)
            args += ["-fw_cfg", f"name=opt/vmhost/virtiofs-tags,string={tags}"]
        return args

    def qemu_output(self):
        try:
            return (self.dir / "qemu.log").read_text(errors="replace")
        except OSError:
            return ""

    def serial_text(self):
        try:
            return self.serial.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_serial(self, text, timeout=60):
        def seen():
            if self.qemu.poll() is not None:
                raise RuntimeError(f"qemu exited ({self.qemu.returncode}) before "
                                   f"{text!r}:\n{self.serial_text()}\n{self.qemu_output()}")
            return text in self.serial_text()
        try:
            wait_for(seen, timeout, repr(text), interval=0.1)
        except TimeoutError as e:
            raise TimeoutError(f"{e}; serial so far:\n{self.serial_text()}") from None

    # --- hvc0 -------------------------------------------------------------
    def _hvc_connect(self):
        if self.hvc is None:
            self.hvc = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.hvc.connect(str(self.hvc_path))
            self.hvc.settimeout(0.2)

    def run(self, command, timeout=20):
        """Run command in the hvc0 shell; return its output (between two
        markers, so the tty echo of the command itself is not included)."""
        self._hvc_connect()
        marker = f"M{os.getpid()}x{time.monotonic_ns()}"
        # The shell prints the markers computed, the echo shows them quoted.
        line = f"echo {marker}''B; {command}; echo {marker}''E\n"
        self.hvc.sendall(line.encode())
        begin, end = f"{marker}B".encode(), f"{marker}E".encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            i = self.hvc_buf.find(begin)
            j = self.hvc_buf.find(end, i + 1) if i >= 0 else -1
            if j >= 0:
                out = self.hvc_buf[i + len(begin):j]
                self.hvc_buf = self.hvc_buf[j + len(end):]
                return out.decode(errors="replace").replace("\r", "").strip("\n")
            try:
                data = self.hvc.recv(65536)
                if not data:
                    raise RuntimeError("hvc0 closed")
                self.hvc_buf += data
            except socket.timeout:
                pass
        raise TimeoutError(f"no answer to {command!r} on hvc0; got {self.hvc_buf[-500:]!r}")

    # --- QMP --------------------------------------------------------------
    def qmp(self, command, **arguments):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(self.qmp_path))
            f = s.makefile("rwb")
            json.loads(f.readline())  # greeting
            for cmd in ({"execute": "qmp_capabilities"},
                        {"execute": command, "arguments": arguments}):
                f.write(json.dumps(cmd).encode() + b"\n")
                f.flush()
                while True:
                    reply = json.loads(f.readline())
                    if "return" in reply or "error" in reply:
                        break
            if "error" in reply:
                raise RuntimeError(f"QMP {command}: {reply['error']}")
            return reply["return"]

    def wait_exit(self, timeout):
        try:
            return self.qemu.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self):
        if self.hvc is not None:
            self.hvc.close()
            self.hvc = None
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []
        if getattr(self, "qemu_log", None):
            self.qemu_log.close()
            self.qemu_log = None


# --- network namespaces for the vm-netconf tests --------------------------
def sh(*argv, check=True):
    return subprocess.run(argv, check=check, capture_output=True, text=True)


class Netns:
    """A throwaway network namespace; delete() removes it and its links."""

    def __init__(self, name):
        self.name = name
        sh("ip", "netns", "add", name)

    def ip(self, *args, check=True):
        return sh("ip", "-n", self.name, *args, check=check)

    def ipj(self, *args):
        out = self.ip("-j", *args).stdout.strip()
        return json.loads(out) if out else []

    def ipv4(self, dev):
        """['100.64.165.70/32', ...] on dev."""
        res = []
        for link in self.ipj("-4", "addr", "show", "dev", dev):
            for a in link.get("addr_info", []):
                res.append(f"{a['local']}/{a['prefixlen']}")
        return res

    def routes(self):
        """{(dst, dev, gateway-or-None, onlink)} of the main table."""
        res = set()
        for r in self.ipj("-4", "route", "show", "table", "main"):
            res.add((r["dst"], r.get("dev"), r.get("gateway"), "onlink" in r.get("flags", [])))
        return res

    def is_up(self, dev):
        return "UP" in self.ipj("link", "show", "dev", dev)[0]["flags"]

    def popen(self, argv, **kw):
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kw)

    def delete(self):
        sh("ip", "netns", "del", self.name, check=False)


def veth(a_ns, a_name, a_mac, b_ns, b_name, b_mac):
    """A veth pair across two namespaces with chosen MACs."""
    a_ns.ip("link", "add", a_name, "address", a_mac, "type", "veth",
            "peer", "name", b_name, "address", b_mac, "netns", b_ns.name)


def cpu_seconds(pid):
    """utime + stime of pid, in seconds."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
