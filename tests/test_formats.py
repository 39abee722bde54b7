"""VM directories the other tests do not boot, booted through the daemon
(issue 15, item 5): the older format (a bare rootfs.ext4, no blk/, and
the loader's own command line), `cpus` 2, and a daemon started with
--data-root, which is where shared directories must then live."""
import json
import subprocess

import pytest

from helpers.daemon import GUEST, READY, Daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, vm_bin, vmhostd_bin, guest_dir):
    with Daemon.serving(tmp_path_factory.mktemp("formats")) as d:
        yield d


def root_partition(image, dest):
    """The ext4 filesystem inside the kit's GPT image (partition "root"),
    as the bare image the older format holds."""
    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], check=True,
                                      capture_output=True, text=True).stdout)
    part = [p for p in table["partitiontable"]["partitions"] if p.get("name") == "root"][0]
    sector = table["partitiontable"].get("sectorsize", 512)
    with open(image, "rb") as src, open(dest, "wb") as out:
        src.seek(part["start"] * sector)
        left = part["size"] * sector
        while left:
            chunk = src.read(min(left, 1 << 20))
            assert chunk, "image shorter than its partition table says"
            out.write(chunk)
            left -= len(chunk)
    return dest


def test_older_format_boots(daemon, tmp_path):
    d = daemon
    vm = d.root.vm("old", kernel=GUEST / "vmlinux", disks=())
    root_partition(GUEST / "appvm.img", vm.path / "rootfs.ext4")
    vm.setting("memory", "256M")
    assert not (vm.path / "blk").exists() and not (vm.path / "cmdline").exists()
    r = d.vm("start", "old")
    assert r.returncode == 0, r.stderr + d.stderr()
    d.wait_serial("old", READY)
    with d.console("old") as con:
        assert con.run("ls /sys/block") == "vda"
        cmdline = con.run("cat /proc/cmdline")
        assert "root=/dev/vda" in cmdline.split(), cmdline
        assert con.run("grep ' / ' /proc/mounts | cut -d' ' -f1,3") == "/dev/root ext4"
    info = json.loads(d.vm("info", "--json", "old").stdout)
    assert [x["guest"] for x in info["config"]["disks"]] == ["/dev/vda"]
    r = d.vm("stop", "old")
    assert r.returncode == 0, r.stderr
    assert d.record("old")["reason"] == "powered off by vm stop"
    d.assert_clean("old")


def test_two_cpus(daemon):
    d = daemon
    vm = d.guest("smp")
    vm.setting("cpus", "2")
    r = d.vm("start", "smp")
    assert r.returncode == 0, r.stderr + d.stderr()
    d.wait_serial("smp", READY)
    pid = d.record("smp")["pid"]
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    assert argv[argv.index(b"-smp") + 1] == b"2"
    with d.console("smp") as con:
        assert con.run("grep -c ^processor /proc/cpuinfo") == "2"
        assert con.run("cat /sys/devices/system/cpu/online") == "0-1"
    assert json.loads(d.vm("info", "--json", "smp").stdout)["config"]["cpus"] == 2
    r = d.vm("stop", "smp")
    assert r.returncode == 0, r.stderr
    d.assert_clean("smp")


def test_data_root_option(tmp_path):
    """With --data-root D, a share under D works and one outside it (but
    under the default data root) is refused, naming VM, path and reason."""
    d = Daemon(tmp_path)
    data = tmp_path / "userdata"
    (data / "docs").mkdir(parents=True)
    (data / "docs" / "hello").write_text("hello from the data root\n")
    d.args += ["--data-root", str(data)]
    d.start()
    try:
        d.guest("in", shares={"docs": data / "docs"})
        d.guest("out", shares={"home": d.root.data_dir("home")})  # default root: tmp/ext
        r = d.vm("start", "out")
        assert r.returncode == 1, r.stdout
        assert "out: shared-dirs/home/dir" in r.stderr and "outside the data root" in r.stderr, \
            r.stderr
        assert d.record("out")["state"] == "stopped"
        r = d.vm("start", "in")
        assert r.returncode == 0, r.stderr + d.stderr()
        d.wait_serial("in", READY)
        with d.console("in") as con:
            assert con.run("cat /run/virtiofs/docs/hello") == "hello from the data root"
        assert d.vm("stop", "in").returncode == 0
        d.assert_clean()
    finally:
        d.stop()
