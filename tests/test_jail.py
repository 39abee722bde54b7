"""Jails, cgroups, the owner's reach in shares, and the uplink's reach
(issue 11, parts 2, 4 and 6; docs/security.md), against real QEMU,
virtiofsd and passt, a real user created here, and real namespaces:

- from the host, QEMU's root holds no /etc/passwd or /home, and its mount,
  pid, IPC and network namespaces are its own; virtiofsd's and passt's too
  (passt keeps the host's network: it is the uplink);
- every process of a VM is in the VM's own cgroup, with its limits set;
- a probe in QEMU's namespaces with QEMU's uid reads no host file, reaches
  no host socket (path or abstract) and sees no host process;
- vm stop of a VM whose virtiofsd does not act on SIGTERM leaves nothing;
- uids rotate; the cgroup v2 code holds and empties a real run;
- kill -9 of QEMU leaves no process, cgroup or mount;
- what the guest writes in a share is the directory owner's, and guest
  root reaches no more than the owner;
- a guest behind uplink reaches the outside but not the host's loopback,
  unless its directory says host-loopback.
"""
import json
import os
import pathlib
import pwd
import signal
import socket
import subprocess
import threading

import pytest

from helpers import vmdirs

from helpers.daemon import GUEST, READY, Daemon, cmdline, wait_until

# src/vmm/launch.h: what a run may hold beyond guest RAM, and its tasks.
MEMORY_OVERHEAD = 256 << 20
MEMORY_PER_SHARE = 32 << 20
PIDS_BASE, PIDS_PER_SHARE = 128, 8

PROBE = r"""
import json, os, socket, sys
host_file, host_sock, abstract, host_pid, port = sys.argv[1:6]
out = {"uid": os.getuid()}
for name, path in (("passwd", "/etc/passwd"), ("host_file", host_file)):
    try:
        open(path).read()
        out[name] = "read"
    except OSError as e:
        out[name] = e.strerror
for name, addr in (("path_socket", host_sock), ("abstract_socket", "\0" + abstract)):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(addr)
        out[name] = "connected"
    except OSError as e:
        out[name] = e.strerror
try:
    socket.create_connection(("127.0.0.1", int(port)), timeout=3)
    out["tcp_loopback"] = "connected"
except OSError as e:
    out["tcp_loopback"] = e.strerror or str(e)
try:
    os.kill(int(host_pid), 0)
    out["signal_host"] = "sent"
except OSError as e:
    out["signal_host"] = e.strerror
out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps(out))
"""


def status(pid):
    return dict(l.split(":\t", 1) for l in
                pathlib.Path(f"/proc/{pid}/status").read_text().splitlines())


def ns(pid, kind):
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def children(pid):
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and
            pathlib.Path(f"/proc/{p}/stat").exists() and
            open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == str(pid)]


def run_pids(d, name):
    return d.run_pids(name)


def helpers_of(d, name, what):
    return [p for p in run_pids(d, name) if what in cmdline(p)]


def alive(pid):
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def assert_gone(d, name, procs):
    """Nothing of name's run is left (other VMs may still run): no
    process, cgroup, socket or mount."""
    assert procs and not [p for p in procs if alive(p)]
    assert not d.cgroups(name), d.cgroups(name)
    for run in (d.state / "vms" / name, d.state / "run" / name):
        assert not run.exists() or not [p.name for p in run.iterdir() if p.is_socket()]
    assert str(d.state) not in pathlib.Path("/proc/mounts").read_text()


@pytest.fixture(scope="module")
def owner():
    """A real user who owns VM directories and shares, removed after."""
    if os.geteuid() != 0:
        pytest.skip("needs root: users, jails and cgroups")
    name = f"vmhj{os.getpid() % 100000}"
    subprocess.run(["useradd", "-M", "-U", "-s", "/usr/sbin/nologin", name],
                   check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)


@pytest.fixture(scope="module")
def d(vmhostd_bin, guest_dir, owner):
    # Traversable by the owner: the gatherer reads its directory as it.
    with vmdirs.open_tmp() as tmp, Daemon.serving(tmp) as d:
        home = d.root.data_dir("home")
        os.chown(home, owner.pw_uid, owner.pw_gid)
        os.chmod(home, 0o700)
        for name, uid, mode in (("mine", owner.pw_uid, 0o600),
                                ("roots", 0, 0o600), ("public", 0, 0o644)):
            (home / name).write_text(f"{name}\n")
            os.chown(home / name, uid, -1)
            os.chmod(home / name, mode)
        d.home = home
        vm = d.guest("jq", shares={"home": home})
        os.chown(vm.path, owner.pw_uid, owner.pw_gid)
        for n in ("up", "uplo"):
            v = d.root.vm(n, kernel=GUEST / "vmlinux", disks={"root": GUEST / "netvm.img"})
            v.setting("memory", "192M")
            v.setting("uplink", "host-loopback" if n == "uplo" else "")
        r = d.vm("start", "jq")
        assert r.returncode == 0, r.stderr + d.stderr()[-3000:]
        d.wait_serial("jq", READY, 180)
        yield d


def test_qemu_sees_only_its_jail(d):
    qemu = d.record("jq")["pid"]
    root = pathlib.Path(f"/proc/{qemu}/root")
    assert not (root / "etc" / "passwd").exists()
    assert not (root / "home").exists() and not (root / "root").exists()
    assert (root / "usr" / "share" / "qemu").is_dir()    # firmware
    assert sorted(os.listdir(root / "dev")) == ["null", "urandom"]  # no kvm under TCG
    # Nothing but /usr, its links, /dev, its /proc and an empty /tmp.
    assert set(os.listdir(root)) <= {"usr", "bin", "sbin", "lib", "lib32", "lib64",
                                     "libx32", "dev", "proc", "tmp"}
    assert os.listdir(root / "tmp") == []
    me = os.getpid()
    for kind in ("mnt", "pid", "ipc", "net"):
        assert ns(qemu, kind) != ns(me, kind), kind
    assert status(qemu)["NSpid"].split()[-1] == "1"
    # Its own /proc: itself only.
    assert [p for p in os.listdir(root / "proc") if p.isdigit()] == ["1"]
    # virtiofsd: every namespace its own, a user namespace included.
    for p in helpers_of(d, "jq", "virtiofsd"):
        for kind in ("mnt", "pid", "ipc", "net", "user"):
            assert ns(p, kind) != ns(me, kind), (p, kind)


def test_cgroup_holds_the_run_with_limits(d):
    rec = d.request({"op": "info", "name": "jq"})["vm"]
    qemu = rec["pid"]
    fsds = helpers_of(d, "jq", "virtiofsd")
    assert len(fsds) == 2                     # its jail's pid 1 and the worker
    assert set(run_pids(d, "jq")) == {qemu, *fsds}
    assert rec["cgroup"] in map(str, d.cgroups("jq"))
    for p in [qemu] + fsds:
        lines = pathlib.Path(f"/proc/{p}/cgroup").read_text()
        assert f"/{d.cgroup_parent}/jq\n" in lines, lines
    mem = [c for c in d.cgroups("jq") if "/memory/" in str(c)][0]
    pids = [c for c in d.cgroups("jq") if "/pids/" in str(c)][0]
    want = (256 << 20) + MEMORY_OVERHEAD + MEMORY_PER_SHARE
    assert int((mem / "memory.limit_in_bytes").read_text()) == want
    assert int((pids / "pids.max").read_text()) == PIDS_BASE + 1 + PIDS_PER_SHARE


@pytest.fixture
def host_targets(tmp_path):
    """A host file and sockets (path and abstract) anyone could use, and
    a TCP listener on the host's loopback."""
    secret = pathlib.Path("/tmp") / f"vmhost-jail-probe-{os.getpid()}"
    secret.write_text("host\n")
    secret.chmod(0o644)
    path = pathlib.Path("/run") / f"vmhost-jail-probe-{os.getpid()}.sock"
    socks = []
    for addr in (str(path), f"\0vmhost-jail-probe-{os.getpid()}"):
        s = socket.socket(socket.AF_UNIX)
        s.bind(addr)
        s.listen(4)
        socks.append(s)
    path.chmod(0o777)
    tcp = socket.create_server(("127.0.0.1", 0))
    try:
        yield str(secret), str(path), f"vmhost-jail-probe-{os.getpid()}", tcp.getsockname()[1]
    finally:
        for s in socks + [tcp]:
            s.close()
        path.unlink()
        secret.unlink()


def test_probe_in_qemus_namespaces(d, host_targets):
    """What a guest that took over QEMU could reach: run as QEMU's uid in
    QEMU's mount, pid, IPC and network namespaces, in its root."""
    rec = d.request({"op": "info", "name": "jq"})["vm"]
    qemu, uid = rec["pid"], rec["uid"]
    host_file, host_sock, abstract, port = host_targets
    r = subprocess.run(
        ["nsenter", f"--target={qemu}", "--mount", "--pid", "--ipc", "--net",
         "--root", "--wd=/",
         "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
         "--no-new-privs", "--",
         "/usr/bin/python3", "-I", "-c", PROBE,
         host_file, host_sock, abstract, str(os.getpid()), str(port)],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["uid"] == uid
    assert out["passwd"] == "No such file or directory"
    assert out["host_file"] == "No such file or directory"
    assert out["path_socket"] == "No such file or directory"
    assert out["abstract_socket"] == "Connection refused"   # another network namespace
    assert out["tcp_loopback"] in ("Connection refused", "Network is unreachable")
    assert out["signal_host"] == "No such process"
    # QEMU (pid 1) and the probe's own: no host process is even visible.
    assert 1 in out["pids"] and len(out["pids"]) <= 3, out["pids"]


def test_stop_kills_a_virtiofsd_that_ignores_sigterm(d):
    """Both virtiofsd processes stopped (SIGSTOP: no SIGTERM acts): vm stop
    still leaves no process and no cgroup."""
    d.guest("stub", shares={"t": d.root.data_dir("stub")})
    r = d.vm("start", "stub")
    assert r.returncode == 0, r.stderr
    d.wait_serial("stub", READY, 180)
    fsds = helpers_of(d, "stub", "virtiofsd")
    assert len(fsds) == 2
    for p in fsds:
        os.kill(p, signal.SIGSTOP)
    wait_until(lambda: all(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0] == "T"
                           for p in fsds), 10, "virtiofsd stopped")
    r = d.vm("stop", "--timeout", "60", "stub", timeout=120)
    assert r.returncode == 0, r.stderr
    assert d.record("stub")["state"] == "stopped"
    assert_gone(d, "stub", fsds)


def test_kill9_of_qemu_leaves_nothing(d):
    d.guest("k9", shares={"t": d.root.data_dir("k9")})
    assert d.vm("start", "k9").returncode == 0
    procs = run_pids(d, "k9")
    assert len(procs) == 3
    os.kill(d.record("k9")["pid"], signal.SIGKILL)
    rec = d.wait_state("k9", ("failed",), 60)
    assert rec["reason"] == "QEMU killed by signal 9"
    assert_gone(d, "k9", procs)


def test_share_is_the_owners(d, owner):
    """Guest root creates files as the owner, reads what the owner may
    read and nothing else, and cannot give a file away."""
    S = "/run/virtiofs/home"
    with d.console("jq") as con:
        out = con.run(f"cat {S}/mine {S}/public; cat {S}/roots; "
                      f"echo guest > {S}/new; mkdir {S}/newdir; "
                      f"chown 1000 {S}/new; echo chown=$?; chmod 4755 {S}/new")
    assert "mine\npublic\n" in out
    assert f"{S}/roots': Permission denied" in out or "roots: Permission denied" in out, out
    assert "chown=1" in out
    for name in ("new", "newdir"):
        st = os.stat(d.home / name)
        assert (st.st_uid, st.st_gid) == (owner.pw_uid, owner.pw_gid), name
    # Set-user-ID, as the owner could: to the owner, who has that already.
    assert os.stat(d.home / "new").st_mode & 0o7777 == 0o4755
    # A guest user other than root has no host identity at all.
    with d.console("jq") as con:
        out = con.run(f"chmod 777 {S}; su -s /bin/sh nobody -c 'echo x > {S}/bynobody'; "
                      f"echo rc=$?; chmod 700 {S}")
    assert "rc=1" in out and "Invalid argument" in out
    assert not (d.home / "bynobody").exists()


class Listener:
    """A TCP server that records who connected, and answers an HTTP
    request (or, after 2 s of silence, no request) with one line."""

    def __init__(self, addr):
        self.sock = socket.create_server((addr, 0))
        self.port = self.sock.getsockname()[1]
        self.peers = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer[0])
            c.settimeout(2)
            try:
                c.recv(4096)
            except OSError:
                pass
            try:
                c.sendall(b"HTTP/1.0 200 OK\r\n\r\nhello-from-the-host\n")
            except OSError:
                pass
            c.close()

    def close(self):
        # shutdown first: a thread blocked in accept() keeps a closed
        # socket listening (and answering later tests on its port).
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def host_address():
    out = subprocess.run(["ip", "-4", "-o", "route", "get", "192.0.2.1"],
                         capture_output=True, text=True).stdout.split()
    if "src" not in out:
        pytest.skip("no non-loopback IPv4 address on this host")
    return out[out.index("src") + 1]


def uplink_console(d, name):
    """Start name, and its console once its uplink has a DHCP lease."""
    assert d.vm("start", name, timeout=180).returncode == 0
    d.wait_serial(name, READY, 180)
    con = d.console(name)
    con.run("i=0; until ip -4 addr show dev eth0 | grep -q 'inet '; do "
            "i=$((i+1)); [ $i -ge 60 ] && break; sleep 1; done", timeout=120)
    return con


def test_uplink_does_not_reach_host_loopback(d):
    lo, out = Listener("127.0.0.1"), Listener(host_address())
    try:
        with uplink_console(d, "up") as con:
            # The outside (here the host's own non-loopback address) works.
            got = con.run(f"wget -O- http://{host_address()}:{out.port}/", timeout=60)
            assert "hello-from-the-host" in got
            # The gateway is no way to the host's loopback...
            got = con.run(f"nc -w 5 10.0.2.2 {lo.port} </dev/null; echo rc=$?",
                          timeout=60)
            assert "hello-from-the-host" not in got and "rc=1" in got
            # ...and neither is routing 127.0.0.1 out of the uplink.
            got = con.run("echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet; "
                          "ip route del local 127.0.0.0/8 dev lo table local; "
                          "ip route del local 127.0.0.1 dev lo table local; "
                          "ip route add 127.0.0.1/32 via 10.0.2.2 dev eth0; "
                          f"nc -w 5 127.0.0.1 {lo.port} </dev/null; echo rc=$?",
                          timeout=60)
            assert "hello-from-the-host" not in got and "rc=1" in got
        assert lo.peers == []
        assert out.peers                 # the control: the uplink works
        passt = helpers_of(d, "up", "passt")
        assert len(passt) == 1
        me = os.getpid()
        assert ns(passt[0], "net") == ns(me, "net")   # it is the uplink
        for kind in ("mnt", "pid", "ipc"):
            assert ns(passt[0], kind) != ns(me, kind), kind
        assert status(passt[0])["Uid"].split()[0] == str(
            d.request({"op": "info", "name": "up"})["vm"]["uid"])
        procs = run_pids(d, "up")
        assert d.vm("stop", "--force", "up").returncode == 0
        assert_gone(d, "up", procs)
    finally:
        lo.close()
        out.close()


def test_kill9_of_passt_fails_the_vm(d):
    assert d.vm("start", "up", timeout=180).returncode == 0
    procs = run_pids(d, "up")
    (passt,) = helpers_of(d, "up", "passt")
    os.kill(passt, signal.SIGKILL)
    rec = d.wait_state("up", ("failed",), 60)
    assert rec["reason"] == "passt killed by signal 9"
    assert_gone(d, "up", procs)


def test_uplink_with_host_loopback_reaches_it(d):
    lo = Listener("127.0.0.1")
    try:
        with uplink_console(d, "uplo") as con:
            got = con.run(f"wget -O- http://10.0.2.2:{lo.port}/", timeout=60)
        assert "hello-from-the-host" in got
        assert lo.peers == ["127.0.0.1"]
        procs = run_pids(d, "uplo")
        assert d.vm("stop", "--force", "uplo").returncode == 0
        assert_gone(d, "uplo", procs)
    finally:
        lo.close()


def test_uids_rotate(d):
    """A VM's uid is not handed out again at once: slots are taken in turn
    (next-fit), so a uid just given back is the last to be reused."""
    d.guest("rot")
    uids = []
    for _ in range(3):
        assert d.vm("start", "rot").returncode == 0
        uids.append(d.request({"op": "info", "name": "rot"})["vm"]["uid"])
        assert d.vm("stop", "--force", "rot").returncode == 0
    assert len(set(uids)) == 3 and uids == sorted(uids), uids


def test_cgroup_v2_mount(tmp_path, vmhostd_bin, guest_dir):
    """The cgroup v2 code with a real VM, as far as this host allows: a
    cgroup2 mount given with --cgroup-mount (the unified hierarchy of a
    hybrid host, which has no memory or pids controller, so no caps here)
    holds the run, and a stop empties and removes it (cgroup.kill)."""
    mount = pathlib.Path("/sys/fs/cgroup/unified")
    if os.geteuid() != 0 or not mount.is_dir() or \
            subprocess.run(["stat", "-f", "-c", "%T", str(mount)],
                           capture_output=True, text=True).stdout.strip() != "cgroup2fs":
        pytest.skip("no cgroup2 mount at /sys/fs/cgroup/unified")
    with Daemon.serving(tmp_path, args=["--cgroup-mount", str(mount)]) as d:
        d.guest("v2", shares={"t": d.root.data_dir("t")})
        assert "VM cgroups: cgroup v2" in d.stderr()
        assert d.vm("start", "v2").returncode == 0
        rec = d.request({"op": "info", "name": "v2"})["vm"]
        cg = pathlib.Path(rec["cgroup"])
        assert cg.is_relative_to(mount)
        procs = [int(p) for p in (cg / "cgroup.procs").read_text().split()]
        assert rec["pid"] in procs and len(procs) == 3
        assert "populated 1" in (cg / "cgroup.events").read_text()
        assert d.vm("stop", "--force", "v2").returncode == 0
        assert_gone(d, "v2", procs)
