"""Least privilege (issue 6, item 1; docs/security.md): each VM's QEMU
runs as its own unprivileged uid with no capabilities, no groups,
no_new_privs and seccomp; virtiofsd's worker is sandboxed with only the
file capabilities it needs; neither holds the daemon's fds."""
import os
import subprocess

import pytest

from helpers import vmdirs
from helpers.daemon import GUEST, READY, Daemon, cmdline, descendants, wait_until

UID_BASE = 1900000


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def fd_targets(pid):
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def as_uid(uid, *cmd):
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}",
                           "--clear-groups", "--", *cmd],
                          capture_output=True, text=True, timeout=10)


@pytest.fixture(scope="module")
def two(tmp_path_factory, vmhostd_bin, guest_dir):
    if os.geteuid() != 0:
        pytest.skip("uids are switched only when vmhostd runs as root")
    d = Daemon(tmp_path_factory.mktemp("priv")).start()
    home = d.root.data_dir("home")
    d.guest("pa", shares={"home": home})
    d.guest("pb")
    try:
        for n in ("pa", "pb"):
            r = d.vm("start", n)
            assert r.returncode == 0, r.stderr + d.stderr()
        yield d
        for n in ("pa", "pb"):
            d.vm("stop", "--force", n)
        d.assert_clean()
    finally:
        d.stop()


def test_qemu_runs_as_its_own_uid(two):
    uids = {}
    for n in ("pa", "pb"):
        rec = two.request({"op": "info", "name": n})["vm"]
        st = status(rec["pid"])
        uid = rec["uid"]
        assert uid >= UID_BASE
        assert st["Uid"].split() == [str(uid)] * 4
        assert st["Gid"].split() == [str(uid)] * 4
        assert st["Groups"] == ""
        assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
        assert int(st["CapBnd"], 16) == 0
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2"
        uids[n] = uid
    assert uids["pa"] != uids["pb"]
    assert "QEMU runs as uid and gid 1900000 + slot" in two.stderr()


def test_qemu_holds_no_daemon_fds(two):
    state = str(two.state)
    for n in ("pa", "pb"):
        pid = two.record(n)["pid"]
        for t in fd_targets(pid):
            # Nothing there: not the lock, the control socket, the daemon's
            # log, another VM's files, nor its own logs (a pipe writes them).
            assert not t.startswith(state), t
        assert any(t.startswith("/memfd:vmlinux") for t in fd_targets(pid))


def test_one_vm_cannot_reach_another(two):
    a = two.request({"op": "info", "name": "pa"})["vm"]
    b = two.record("pb")["pid"]
    assert as_uid(a["uid"], "kill", "-0", str(b)).returncode != 0
    assert as_uid(a["uid"], "cat", f"/proc/{b}/environ").returncode != 0
    assert as_uid(a["uid"], "ls", str(two.state)).returncode != 0
    assert as_uid(a["uid"], "true").returncode == 0      # setpriv itself works


def test_virtiofsd_is_sandboxed(two):
    """virtiofsd runs in a user namespace whose root is the owner of the
    VM's directory (here root, who owns the test's directories; see
    tests/test_jail.py for an ordinary user), holds capabilities only
    there, and its worker is pid 1 of a namespace inside its jail's,
    rooted in the share."""
    fsds = [p for p in descendants(two.proc.pid) if "virtiofsd" in cmdline(p)]
    assert fsds
    owner = os.stat(two.root.path / "pa").st_uid
    workers = 0
    for p in fsds:
        st = status(p)
        assert int(st["CapBnd"], 16) == 0 and st["NoNewPrivs"] == "1"
        assert os.readlink(f"/proc/{p}/ns/user") != os.readlink("/proc/self/ns/user")
        assert open(f"/proc/{p}/uid_map").read().split() == ["0", str(owner), "1"]
        assert st["Uid"].split() == [str(owner)] * 4
        nspid = st["NSpid"].split()
        if len(nspid) == 2:
            # Pid 1 of its jail: only waits for its worker.
            assert nspid[-1] == "1" and int(st["CapEff"], 16) == 0
            continue
        # The worker: pid 1 of a namespace of its own inside the jail's,
        # seccomp, and in its user namespace only chown, dac_override,
        # fowner, fsetid, setgid, setuid (no mknod, no setfcap: -o modcaps).
        workers += 1
        assert len(nspid) == 3 and nspid[-1] == "1"
        assert st["Seccomp"] == "2"
        assert int(st["CapEff"], 16) == 0xdb
        assert os.readlink(f"/proc/{p}/root") == "/"   # pivoted: "/" is the share
        assert os.stat(f"/proc/{p}/root").st_ino == os.stat(two.root.data_root / "home").st_ino
    assert workers == 1


def test_uid_base_option(tmp_path, vmhostd_bin):
    """Bad bases are usage errors; a non-root daemon refuses one (it could
    not switch uids) and runs QEMU as itself."""
    def run(*args, uid=None):
        cmd = [str(vmhostd_bin), "--config-root", str(tmp_path), "--state-dir",
               str(tmp_path / "state"), "--foreground", *args]
        if uid is not None:
            cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10)

    for bad in ("0", "999", "abc", "12x", "4294967295"):
        r = run("--uid-base", bad)
        assert r.returncode == 2 and "--uid-base" in r.stderr, bad
    os.chmod(tmp_path, 0o777)
    r = run("--uid-base", "5000", uid=UID_BASE - 1)
    assert r.returncode == 2 and "--uid-base" in r.stderr
    assert not (tmp_path / "state").exists()     # refused before touching it


def test_uid_in_use_is_skipped(two):
    """A uid some process already has (say another daemon's QEMU) is not
    handed out."""
    used = {os.stat(f"/proc/{p}").st_uid for p in os.listdir("/proc") if p.isdigit()}
    free = next(u for u in range(UID_BASE, UID_BASE + 65536) if u not in used)
    squatter = subprocess.Popen(["setpriv", f"--reuid={free}", f"--regid={free}",
                                 "--clear-groups", "--", "sleep", "60"])
    try:
        # Popen returns before setpriv has switched: wait, or the daemon
        # may look first and rightly pick that uid.
        wait_until(lambda: os.stat(f"/proc/{squatter.pid}").st_uid == free, 10,
                   "the squatter's uid")
        two.guest("pc")
        r = two.vm("start", "pc")
        assert r.returncode == 0, r.stderr
        uid = two.request({"op": "info", "name": "pc"})["vm"]["uid"]
        assert uid != free and uid >= UID_BASE
        assert uid not in (two.request({"op": "info", "name": n})["vm"]["uid"]
                           for n in ("pa", "pb"))
        assert two.vm("stop", "--force", "pc").returncode == 0
    finally:
        squatter.kill()
        squatter.wait()


CAPS = {"chown": 0, "dac_override": 1, "dac_read_search": 2, "fowner": 3,
        "fsetid": 4, "kill": 5, "setgid": 6, "setuid": 7, "setpcap": 8,
        "net_admin": 12, "sys_admin": 21, "sys_resource": 24, "setfcap": 31}
# docs/security.md, src/monitor/privileges.h: the monitor's own set, which
# is also its bounding set (virtiofsd's capabilities are its user
# namespace's, not the daemon's).
DAEMON_CAPS = ("chown", "dac_read_search", "kill", "setgid", "setuid", "setpcap",
               "net_admin", "sys_admin", "setfcap")
BOUNDING_CAPS = DAEMON_CAPS


def mask(names):
    return sum(1 << CAPS[n] for n in names)


@pytest.fixture
def open_tmp_path():
    with vmdirs.open_tmp() as path:
        yield path


def test_daemon_keeps_only_what_it_needs(open_tmp_path, vmhostd_bin, guest_dir):
    """After start-up vmhostd holds only the documented capabilities, and
    a VM with a share and a network link still boots, reads and writes its
    share and reaches its provider."""
    if os.geteuid() != 0:
        pytest.skip("only a root vmhostd drops capabilities")
    # Another user's VM directory is gathered as that user, who must be
    # able to reach it: not from pytest's root-only tmp_path.
    d = Daemon(open_tmp_path).start()
    try:
        # In the foreground the socket listens a moment before the drop
        # and the deny-list.
        wait_until(lambda: "seccomp: " in d.stderr(), 10, "the drop and the deny-list")
        # Of course no more than it was started with (a container may
        # lack some, e.g. sys_resource).
        st, ours = status(d.proc.pid), status(os.getpid())
        assert int(st["CapBnd"], 16) == mask(BOUNDING_CAPS) & int(ours["CapBnd"], 16)
        assert int(st["CapPrm"], 16) == int(st["CapEff"], 16) == \
            mask(DAEMON_CAPS) & int(ours["CapPrm"], 16)
        assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0
        # One seccomp filter, its deny-list (src/monitor/test_denylist.c
        # checks what it denies), and the host's namespaces: its taps and
        # bridges are the host's.
        assert st["Seccomp"] == "2" and st["Seccomp_filters"] == "1"
        assert st["Uid"].split() == ["0"] * 4
        for ns in ("net", "mnt", "pid"):
            assert os.readlink(f"/proc/{d.proc.pid}/ns/{ns}") == os.readlink(f"/proc/self/ns/{ns}")

        home = d.root.data_dir("home")
        (home / "in.txt").write_text("from the host\n")
        net = d.root.vm("pnet", kernel=GUEST / "vmlinux", disks={"root": GUEST / "netvm.img"})
        net.setting("memory", "192M")
        app = d.guest("papp", shares={"home": home})
        app.provider("pnet")
        # Another user's private directories: gathered as that user.
        for path in (home, app.path):
            os.chown(path, 12345, 12345)
            os.chmod(path, 0o700)
        r = d.vm("start", "papp", timeout=180)
        assert r.returncode == 0, r.stderr + d.stderr()[-3000:]
        # virtiofsd still gets what its sandbox needs (in its user
        # namespace), then keeps its six there.
        fsds = [p for p in descendants(d.proc.pid) if "virtiofsd" in cmdline(p)]
        assert fsds and all(int(status(p)["CapBnd"], 16) == 0 for p in fsds)
        d.wait_serial("pnet", READY, timeout=180)
        d.wait_serial("papp", READY, timeout=180)
        with d.console("papp") as con:
            assert con.run("cat /run/virtiofs/home/in.txt") == "from the host"
            con.run("echo from-guest > /run/virtiofs/home/out.txt; sync")
            # The link takes a moment to come up.
            out = con.run("i=0; until ping -c 1 -W 3 169.254.0.1 >/dev/null; do "
                          "i=$((i+1)); [ $i -ge 30 ] && break; sleep 1; done; "
                          "echo tries=$i", timeout=150)
            assert "tries=" in out and "tries=30" not in out, out
        assert (home / "out.txt").read_text() == "from-guest\n"
        for n in ("papp", "pnet"):
            assert d.vm("stop", "--force", n).returncode == 0
        d.assert_clean()
    finally:
        d.stop()
