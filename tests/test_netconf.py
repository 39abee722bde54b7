"""vm-netconf against real rtnetlink: two throwaway network namespaces (a
client VM and a provider VM) joined by veth pairs with chosen MACs.  Runs
both the host build and the static guest binary."""
import os
import pathlib
import subprocess

import pytest

from conftest import BUILD, GUEST
from helpers.guest import Netns, cpu_seconds, veth, wait_for

BINARIES = {
    "host": BUILD / "guest" / "netconf" / "vm-netconf",
    "static": GUEST / "vm-netconf",
}
BUSYBOX = "/bin/busybox"


@pytest.fixture(params=sorted(BINARIES))
def netconf_bin(request):
    path = BINARIES[request.param]
    if not path.exists():
        pytest.fail(f"{path} missing: run make and make guest")
    return path


@pytest.fixture
def nets():
    """(client, provider) namespaces, always deleted."""
    base = f"vmhnc{os.getpid()}"
    made = []
    try:
        made.append(Netns(base + "c"))
        made.append(Netns(base + "p"))
        yield made[0], made[1]
    finally:
        for ns in made:
            ns.delete()


class Agent:
    """vm-netconf running in a namespace, its stderr in a file."""

    def __init__(self, ns, binary, tmp, *args):
        self.log = pathlib.Path(tmp) / f"{ns.name}.log"
        with open(self.log, "wb") as f:
            self.proc = ns.popen([str(binary), *args], stdin=subprocess.DEVNULL,
                                 stdout=f, stderr=f)

    def lines(self):
        return self.log.read_text().splitlines()

    def wait_line(self, text, timeout=5):
        wait_for(lambda: any(text in l for l in self.lines()), timeout,
                 f"{text!r} in vm-netconf log {self.lines()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


@pytest.fixture
def agents():
    running = []
    yield running
    for a in running:
        a.stop()


CLIENT_MAC, PROVIDER_MAC = "0a:b3:ec:00:a5:46", "0a:b3:ec:80:a5:46"


def test_links_existing_and_hotplugged(nets, agents, netconf_bin, tmp_path):
    client, provider = nets
    veth(client, "va0", CLIENT_MAC, provider, "vb0", PROVIDER_MAC)
    veth(client, "vf0", "52:54:00:00:00:01", provider, "vg0", "52:54:00:00:00:02")
    veth(client, "vx0", "0a:b3:ec:00:ff:ff", provider, "vy0", "0a:b3:ec:7f:00:01")

    c = Agent(client, netconf_bin, tmp_path)
    p = Agent(provider, netconf_bin, tmp_path)
    agents += [c, p]
    c.wait_line("va0 0A:B3:EC:00:A5:46: client of link a546")
    p.wait_line("vb0 0A:B3:EC:80:A5:46: provider of link a546")

    assert client.ipv4("va0") == ["100.64.165.70/32"]
    assert client.is_up("va0")
    assert provider.ipv4("vb0") == ["169.254.0.1/32"]
    assert provider.is_up("vb0")
    croutes = client.routes()
    assert ("169.254.0.1", "va0", None, False) in croutes
    assert ("default", "va0", "169.254.0.1", True) in croutes
    assert ("100.64.165.70", "vb0", None, False) in provider.routes()

    # Foreign and invalid MACs are left alone (no DHCP without the flag).
    for ns, dev in ((client, "vf0"), (provider, "vg0"), (client, "vx0"), (provider, "vy0")):
        assert ns.ipv4(dev) == [] and not ns.is_up(dev), dev
    c.wait_line("vf0 52:54:00:00:00:01: foreign NIC: left alone")
    c.wait_line("vx0 0A:B3:EC:00:FF:FF: vmhost OUI with an invalid role or id")

    # The link works end to end.
    ping = client.popen([BUSYBOX, "ping", "-c", "1", "-W", "3", "169.254.0.1"],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert ping.wait(10) == 0, ping.stdout.read()

    # Hot-plug a second link while both agents run: host route only.
    veth(client, "va1", "0a:b3:ec:00:00:02", provider, "vb1", "0a:b3:ec:80:00:02")
    c.wait_line("va1 0A:B3:EC:00:00:02: client of link 0002")
    p.wait_line("vb1 0A:B3:EC:80:00:02: provider of link 0002")
    assert client.ipv4("va1") == ["100.64.0.2/32"]
    assert provider.ipv4("vb1") == ["169.254.0.1/32"]
    croutes = client.routes()
    assert ("169.254.0.1", "va1", None, False) in croutes
    assert [r for r in croutes if r[0] == "default"] == [("default", "va0", "169.254.0.1", True)]
    assert ("100.64.0.2", "vb1", None, False) in provider.routes()

    # One log line per interface, and no spinning: a burst of link events
    # (flag and MTU changes) costs next to no CPU and logs nothing new.
    # A link added after the burst marks its end: netlink delivers events
    # in order, so once the agents log the new link they have seen the
    # whole burst.  Carrier and operstate changes come later, from the
    # kernel's linkwatch, so the marker waits until they show the burst's
    # last state (va1 down, and so its peer).
    before = {a: len(a.lines()) for a in (c, p)}
    cpu0 = cpu_seconds(c.proc.pid)
    for i in range(30):
        client.ip("link", "set", "vf0", "mtu", str(1400 + i))
        client.ip("link", "set", "va1", "down" if i % 2 else "up")
    wait_for(lambda: client.ipj("link", "show", "dev", "va1")[0]["operstate"] == "DOWN" and
             provider.ipj("link", "show", "dev", "vb1")[0]["operstate"] == "DOWN",
             10, "the burst's last link state")
    veth(client, "va2", "0a:b3:ec:00:00:03", provider, "vb2", "0a:b3:ec:80:00:03")
    c.wait_line("va2 0A:B3:EC:00:00:03: client of link 0003")
    p.wait_line("vb2 0A:B3:EC:80:00:03: provider of link 0003")
    assert cpu_seconds(c.proc.pid) - cpu0 < 0.2
    assert c.proc.poll() is None and p.proc.poll() is None
    assert {a: len(a.lines()) for a in (c, p)} == {a: n + 1 for a, n in before.items()}
    for agent, names in ((c, ["va0", "va1", "va2", "vf0", "vx0"]),
                         (p, ["vb0", "vb1", "vb2", "vg0", "vy0"])):
        for name in names:
            assert sum(l.startswith(f"vm-netconf: {name} ") for l in agent.lines()) == 1, \
                (name, agent.lines())


def test_once_configures_and_exits(nets, netconf_bin):
    client, provider = nets
    veth(client, "va0", "0a:b3:ec:00:01:00", provider, "vb0", "0a:b3:ec:80:01:00")
    for ns in (client, provider):
        proc = ns.popen([str(netconf_bin), "--once"], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0, out
        assert len(out.splitlines()) == 1, out
    assert client.ipv4("va0") == ["100.64.1.0/32"]
    assert ("100.64.1.0", "vb0", None, False) in provider.routes()

    # A second run finds everything in place and still succeeds.
    proc = client.popen([str(netconf_bin), "--once"], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "FAILED" not in out, out
    assert client.ipv4("va0") == ["100.64.1.0/32"]


def test_dhcp_on_foreign_only_when_enabled(nets, agents, netconf_bin, tmp_path):
    client, provider = nets
    record = tmp_path / "dhcp-calls"
    fake = tmp_path / "fake-udhcpc"
    # Stands in for udhcpc: records how vm-netconf invoked it.
    fake.write_text(f"#!/bin/sh\necho \"$@\" >>{record}\n")
    fake.chmod(0o755)
    veth(client, "vf0", "52:54:00:00:00:01", provider, "vg0", "52:54:00:00:00:02")
    veth(client, "va0", CLIENT_MAC, provider, "vb0", PROVIDER_MAC)

    a = Agent(client, netconf_bin, tmp_path, "--dhcp-foreign", f"--dhcp-cmd={fake}")
    agents.append(a)
    a.wait_line("vf0 52:54:00:00:00:01: foreign NIC: up, DHCP")
    wait_for(record.exists, 5, "the DHCP client to be started")
    assert client.is_up("vf0")
    # Hot-plugged foreign NIC: its own DHCP client; our links get none.
    veth(client, "vf1", "52:54:00:00:00:03", provider, "vg1", "52:54:00:00:00:04")
    a.wait_line("vf1 52:54:00:00:00:03: foreign NIC: up, DHCP")
    wait_for(lambda: len(record.read_text().splitlines()) == 2, 5, "second DHCP client")
    assert sorted(record.read_text().splitlines()) == ["-i vf0 -b", "-i vf1 -b"]
    assert client.ipv4("va0") == ["100.64.165.70/32"]
