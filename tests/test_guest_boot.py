"""Boot each guest image with a plain qemu-system-x86_64 command line under
TCG (q35, the image as a read-only virtio-blk disk), as the vmhost daemon
will: ready line on the serial console, a shell on hvc0, virtio-fs shares
named over fw_cfg, vm-netconf on its NICs, and a clean ACPI poweroff."""
import pytest

from helpers.guest import Guest, wait_for

READY = "vmhost-guest: ready"
BOOT_TIMEOUT = 90  # TCG on a shared 2-core machine; ~3 s when idle


@pytest.fixture
def boot(guest_dir, tmp_path):
    guests = []

    def start(image, **kw):
        d = tmp_path / f"vm{len(guests)}"
        d.mkdir()
        g = Guest(d, guest_dir / "vmlinux", guest_dir / image, **kw)
        guests.append(g)
        return g

    yield start
    for g in guests:
        g.close()


def powerdown(g):
    g.qmp("system_powerdown")
    assert g.wait_exit(30) is not None, "guest did not power off:\n" + g.serial_text()[-2000:]
    serial = g.serial_text()
    assert "vmhost-guest: powering off" in serial  # init's shutdown ran
    assert "reboot: Power down" in serial


def test_appvm(boot, tmp_path):
    shares = {}
    for tag in ("docs", "media"):
        shares[tag] = tmp_path / f"share-{tag}"
        shares[tag].mkdir()
        (shares[tag] / "hello").write_text(f"hello from {tag}\n")
    g = boot("appvm.img", shares=shares,
             extra=["-netdev", "user,id=n0,restrict=on",
                    "-device", "virtio-net-pci,netdev=n0,mac=0A:B3:EC:00:A5:46"])
    g.wait_serial(READY, BOOT_TIMEOUT)
    assert g.run("echo $((6*7))") == "42"

    # The shares named over fw_cfg ("docs,,media") are mounted by tag.
    assert g.run("cat /run/virtiofs/docs/hello") == "hello from docs"
    assert g.run("cat /run/virtiofs/media/hello") == "hello from media"

    # Root is read-only; tmpfs where things are written.
    assert "Read-only file system" in g.run("touch /etc/x 2>&1")
    assert g.run("touch /tmp/x /var/x /run/x && echo ok") == "ok"

    # vm-netconf configured the client end from the MAC.
    g.wait_serial("vm-netconf: eth0 0A:B3:EC:00:A5:46: client of link a546", 10)
    assert "inet 100.64.165.70/32" in g.run("ip -4 addr show dev eth0")
    routes = g.run("ip route")
    assert "default via 169.254.0.1 dev eth0" in routes and "onlink" in routes
    assert "169.254.0.1 dev eth0" in routes

    powerdown(g)


def test_netvm(boot):
    g = boot("netvm.img",
             extra=["-netdev", "user,id=up",
                    "-device", "virtio-net-pci,netdev=up,mac=52:54:00:12:34:56",
                    "-device", "pcie-root-port,id=rp1,chassis=1"])
    g.wait_serial(READY, BOOT_TIMEOUT)
    assert g.run("echo $((6*7))") == "42"

    # Provider: forwarding and NAT out of the uplink.
    assert g.run("cat /proc/sys/net/ipv4/ip_forward") == "1"
    ruleset = g.run("nft list ruleset")
    assert "ip saddr 100.64.0.0/16" in ruleset and "masquerade" in ruleset

    # The uplink (foreign MAC) gets DHCP from QEMU's user-mode network.
    g.wait_serial("vm-netconf: eth0 52:54:00:12:34:56: foreign NIC: up, DHCP", 10)
    g.wait_serial("eth0: DHCP lease 10.0.2.15", 30)
    assert "inet 10.0.2.15/" in g.run("ip -4 addr show dev eth0")
    assert "default via 10.0.2.2 dev eth0" in g.run("ip route")

    # A link hot-plugged into the running provider is configured too.
    g.qmp("netdev_add", type="user", id="l1", restrict=True)
    g.qmp("device_add", driver="virtio-net-pci", id="link1", bus="rp1",
          netdev="l1", mac="0A:B3:EC:80:01:02")
    g.wait_serial("0A:B3:EC:80:01:02: provider of link 0102", 30)
    dev = g.run("ip -o link | grep -i 0a:b3:ec:80:01:02 | cut -d: -f2").strip()
    assert dev.startswith("eth"), dev
    assert "inet 169.254.0.1/32" in g.run(f"ip -4 addr show dev {dev}")
    assert f"100.64.1.2 dev {dev}" in g.run("ip route")

    powerdown(g)


def test_demo_tree(guest_dir):
    """make guest writes the demo config tree from the kit it built."""
    data = guest_dir.parent / "demo" / "svc" / "data"
    for vm in ("netvm", "appvm"):
        assert (data / vm / "vmlinux").resolve() == (guest_dir / "vmlinux").resolve()
        assert (data / vm / "blk" / "root.img").resolve() == (guest_dir / f"{vm}.img").resolve()
    assert (data / "netvm" / "uplink").is_file()
    assert (data / "appvm" / "providers" / "net" / "netvm").is_file()
    shared = (data / "appvm" / "shared-dirs" / "demo" / "dir").resolve()
    assert shared.is_dir() and (shared / "hello").is_file()
    # Shared directories must live on the data root (the config root's
    # grandparent).
    assert shared.is_relative_to((data.parent.parent).resolve())
