"""Leaf VMs on microvm, providers on q35, and the start-path trace (issue 14).

A VM that no other VM names in providers/net needs no hot-plug port, so
vmhostd boots it on microvm (virtio-mmio), telling the guest its TSC rate
under TCG; a VM that is some VM's provider keeps q35 and its hot-plug
ports.  Every start records when each phase happened (`vm info --json`,
start_trace)."""
import json
import pathlib

import pytest

from helpers.daemon import READY, Daemon

PHASES = ["accepted", "config_loaded", "files_opened", "helpers_spawned", "qemu_exec",
          "qmp_greeting", "qmp_ready"]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, vm_bin, vmhostd_bin, guest_dir):
    with Daemon.serving(tmp_path_factory.mktemp("leaf")) as d:
        yield d


def qemu_argv(d, name):
    pid = d.record(name)["pid"]
    return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")


def option(argv, opt):
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == opt]


def start(d, name):
    r = d.vm("start", name)
    assert r.returncode == 0, r.stderr + d.stderr()[-3000:]
    d.wait_serial(name, READY)


def test_leaf_on_microvm(daemon):
    d = daemon
    home = d.root.data_dir("leaf-home")
    (home / "hello.txt").write_text("hello from the host\n")
    d.guest("leaf", shares={"home": home}, disks=2)
    start(d, "leaf")
    try:
        argv = qemu_argv(d, "leaf")
        assert option(argv, "-machine")[0].startswith("microvm,"), argv
        assert "-bios" not in argv
        devices = option(argv, "-device")
        virtio = [v for v in devices if v.startswith(("virtio-", "vhost-user-"))
                  and not v.startswith("virtconsole")]
        assert len(virtio) == 4 and all(v.split(",")[0].endswith("-device") for v in virtio), \
            devices
        assert not [v for v in devices if "pcie-root-port" in v]
        # Under TCG (here) the guest is told its TSC rate instead of
        # calibrating it against the PIT, which hung microvm boots.
        append = option(argv, "-append")[0]
        assert "tsc_early_khz=" in append and "tsc=reliable" in append, append
        disks = json.loads(d.vm("info", "--json", "leaf").stdout)["config"]["disks"]
        sectors = [pathlib.Path(x["host_path"]).stat().st_size // 512 for x in disks]
        assert sectors[0] == 2048 and sectors[1] > 2048, disks
        with d.console("leaf") as con:
            # Disks in the directory's order on virtio-mmio too: blk/extra1.img
            # (1 MiB) before blk/root.img.
            assert con.run("cat /sys/block/vda/size /sys/block/vdb/size") == \
                f"{sectors[0]}\n{sectors[1]}"
            assert con.run("cat /run/virtiofs/home/hello.txt") == "hello from the host"
            assert con.run("cat /sys/devices/system/clocksource/clocksource0/"
                           "current_clocksource").startswith("tsc")
    finally:
        # ACPI's power button works on microvm: a clean guest poweroff.
        r = d.vm("stop", "leaf")
    assert r.returncode == 0, r.stderr
    assert d.record("leaf")["reason"] == "powered off by vm stop"


def test_start_trace(daemon):
    d = daemon
    d.guest("traced")
    start(d, "traced")
    try:
        info = json.loads(d.vm("info", "--json", "traced").stdout)
        trace = info["start_trace"]
        ns, ms = trace["monotonic_ns"], trace["ms"]
        at = [ns[p] for p in PHASES]
        assert all(at) and at == sorted(at), ns
        assert ns["qemu_exec"] <= ns["first_serial_byte"] <= ns["ready_line"], ns
        assert ms["accepted"] == 0 and ms["ready_line"] == pytest.approx(
            (ns["ready_line"] - ns["accepted"]) / 1e6, abs=0.01)
        text = d.vm("info", "traced").stdout
        assert "start:     config_loaded +" in text and "ready_line +" in text, text
    finally:
        d.vm("stop", "--force", "traced")
    # A new start begins a new trace.
    start(d, "traced")
    try:
        again = json.loads(d.vm("info", "--json", "traced").stdout)["start_trace"]
        assert again["monotonic_ns"]["accepted"] > ns["ready_line"]
    finally:
        d.vm("stop", "--force", "traced")


def test_provider_keeps_q35(daemon):
    d = daemon
    d.guest("prov")
    client = d.guest("client")
    client.provider("prov")
    start(d, "prov")
    try:
        argv = qemu_argv(d, "prov")
        assert option(argv, "-machine")[0].startswith("q35,"), argv
        # One port for its configured client and the spare ones.
        ports = [v for v in option(argv, "-device") if v.startswith("pcie-root-port,")]
        assert len(ports) == 5, ports
        assert "tsc_early_khz=" not in option(argv, "-append")[0]
    finally:
        d.vm("stop", "--force", "prov")


def test_client_of_a_running_leaf(daemon):
    """A VM that was no VM's provider when it started has no hot-plug
    port: a client added later runs, its link down saying why."""
    d = daemon
    d.guest("solo")
    start(d, "solo")
    try:
        late = d.guest("late")
        late.provider("solo")
        r = d.vm("start", "late")
        assert r.returncode == 0, r.stderr
        try:
            [link] = json.loads(d.vm("info", "--json", "late").stdout)["links"]
            assert link["state"] != "up", link
            assert link["reason"] == ("solo started as no VM's provider, so it has no "
                                      "hot-plug port: restart it"), link
        finally:
            d.vm("stop", "--force", "late")
    finally:
        d.vm("stop", "--force", "solo")
