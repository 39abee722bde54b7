/* Unit tests of the QEMU command line and accelerator choice. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/vmm.h"

struct fixture {
	struct vm_config cfg;
	struct vm_disk disks[3];
	struct vm_share shares[2];
	int disk_fds[3];
	int vfs_fds[2];
	struct vmm_nic nics[2];
	struct vmm_launch l;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	static char *names[] = { "rootfs.ext4", "blk/a.img", "blk/b.img" };

	assert_non_null(f);
	strcpy(f->cfg.name, "appvm-lynx");
	f->cfg.kernel = "/x/vmlinux";
	f->cfg.memory = 512ull << 20;
	f->cfg.cpus = 1;
	f->cfg.cmdline = "console=ttyS0 root=PARTLABEL=root ro quiet,x";
	for (int i = 0; i < 3; i++) {
		FILE *t = tmpfile();
		assert_non_null(t);
		f->disk_fds[i] = dup(fileno(t));
		fclose(t);
		f->disks[i].relpath = names[i];
		f->disks[i].path = names[i];
	}
	f->cfg.disks = f->disks;
	f->cfg.disk_count = 3;
	strcpy(f->shares[0].tag, "docs");
	strcpy(f->shares[1].tag, "media");
	f->shares[0].host_dir = "/ext/docs";
	f->shares[1].host_dir = "/ext/media";
	f->cfg.shares = f->shares;
	f->cfg.share_count = 2;
	f->cfg.uplink = true;
	f->vfs_fds[0] = 40;
	f->vfs_fds[1] = 41;
	f->nics[0].tap_fd = 50;
	linkaddr_mac(LINKADDR_CLIENT, 0xa546, f->nics[0].mac);
	f->nics[1].tap_fd = 51;
	linkaddr_mac(LINKADDR_CLIENT, 0x0102, f->nics[1].mac);
	f->l = (struct vmm_launch){
		.cfg = &f->cfg, .accel = VMM_ACCEL_TCG, .kernel_fd = 10,
		.qmp_fd = 11, .serial_fd = 12, .console_fd = 13,
		.disk_fds = f->disk_fds, .virtiofs_fds = f->vfs_fds,
		.nics = f->nics, .nic_count = 2, .hotplug_ports = 10,
		.uplink_fd = 60,
	};
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 3; i++)
		close(f->disk_fds[i]);
	free(f);
	return 0;
}

static int argv_find(char **argv, const char *s)
{
	for (int i = 0; argv[i]; i++)
		if (strcmp(argv[i], s) == 0)
			return i;
	return -1;
}

/* The index of opt immediately followed by value, or fail. */
static int argv_pair(char **argv, const char *opt, const char *value)
{
	for (int i = 0; argv[i] && argv[i + 1]; i++)
		if (strcmp(argv[i], opt) == 0 && strcmp(argv[i + 1], value) == 0)
			return i;
	fail_msg("missing %s %s", opt, value);
	return -1;
}

static void test_full(void **state)
{
	struct fixture *f = *state;
	char **argv, buf[256];

	assert_int_equal(vmm_argv(&f->l, &argv), 0);
	assert_string_equal(argv[0], VMM_QEMU_PATH);
	argv_pair(argv, "-name", "guest=appvm-lynx,debug-threads=on");
	/* Paused until the caller has connected (launch.h). */
	assert_true(argv_find(argv, "-S") > 0);
	assert_true(argv_find(argv, "-nodefaults") > 0);
	assert_true(argv_find(argv, "-no-user-config") > 0);
	argv_pair(argv, "-display", "none");
	argv_pair(argv, "-machine", "q35,memory-backend=mem,i8042=off");
	argv_pair(argv, "-bios", VMM_QBOOT_PATH);
	argv_pair(argv, "-accel", "tcg,tb-size=128");
	argv_pair(argv, "-cpu", "max");
	argv_pair(argv, "-m", "512M");
	argv_pair(argv, "-object", "memory-backend-memfd,id=mem,size=512M,share=on");
	argv_pair(argv, "-smp", "1");
	argv_pair(argv, "-kernel", "/proc/self/fd/10");
	/* -append is no QemuOpts: its commas are the guest's business.
	 * Under TCG the timer check is off (qemu.c says why). */
	snprintf(buf, sizeof buf, "%s no_timer_check", f->cfg.cmdline);
	argv_pair(argv, "-append", buf);
	argv_pair(argv, "-sandbox", "on,obsolete=deny,elevateprivileges=deny,"
		  "spawn=deny,resourcecontrol=deny");
	/* Listening sockets QEMU serves one client at a time. */
	argv_pair(argv, "-chardev", "socket,id=qmp,fd=11,server=on,wait=off");
	argv_pair(argv, "-mon", "chardev=qmp,mode=control");
	argv_pair(argv, "-chardev", "socket,id=serial0,fd=12,server=on,wait=off");
	argv_pair(argv, "-serial", "chardev:serial0");
	argv_pair(argv, "-device", "virtio-serial-pci,id=vser0");
	argv_pair(argv, "-chardev", "socket,id=hvc0,fd=13,server=on,wait=off");
	argv_pair(argv, "-device", "virtconsole,chardev=hvc0,bus=vser0.0");
	/* Disks in the loader's order, each its own fdset, read-only. */
	int last = 0;
	for (int i = 0; i < 3; i++) {
		snprintf(buf, sizeof(buf), "fd=%d,set=%d,opaque=disk%d",
			 f->disk_fds[i], i + 1, i);
		int at = argv_pair(argv, "-add-fd", buf);
		assert_true(at > last);
		last = at;
		snprintf(buf, sizeof(buf), "{\"driver\":\"raw\",\"node-name\":"
			 "\"disk%d\",\"read-only\":true,\"file\":{\"driver\":"
			 "\"file\",\"filename\":\"/dev/fdset/%d\",\"read-only\":"
			 "true}}", i, i + 1);
		at = argv_pair(argv, "-blockdev", buf);
		assert_true(at > last);
		snprintf(buf, sizeof(buf), "virtio-blk-pci,id=blk%d,drive=disk%d",
			 i, i);
		assert_true(argv_pair(argv, "-device", buf) > at);
	}
	argv_pair(argv, "-chardev", "socket,id=vfs0,fd=40");
	argv_pair(argv, "-device", "vhost-user-fs-pci,id=fs0,chardev=vfs0,tag=docs");
	argv_pair(argv, "-chardev", "socket,id=vfs1,fd=41");
	argv_pair(argv, "-device", "vhost-user-fs-pci,id=fs1,chardev=vfs1,tag=media");
	argv_pair(argv, "-fw_cfg", "name=opt/vmhost/virtiofs-tags,string=docs,,media");
	argv_pair(argv, "-netdev", "tap,id=net0,fd=50");
	argv_pair(argv, "-device", "virtio-net-pci,id=nic0,netdev=net0,mac=0A:B3:EC:00:A5:46");
	argv_pair(argv, "-netdev", "tap,id=net1,fd=51");
	argv_pair(argv, "-device", "virtio-net-pci,id=nic1,netdev=net1,mac=0A:B3:EC:00:01:02");
	/* The uplink is passt's socket: QEMU has no user-mode network. */
	argv_pair(argv, "-netdev", "stream,id=uplink,server=off,addr.type=fd,addr.str=60");
	assert_int_equal(argv_find(argv, "user,id=uplink"), -1);
	/* Hot-plug ports come before every auto-placed device. */
	int hp0 = argv_pair(argv, "-device", "pcie-root-port,id=hp0,bus=pcie.0,"
			    "chassis=1,addr=0x18.0x0,multifunction=on,io-reserve=0");
	assert_true(hp0 < argv_find(argv, "virtio-serial-pci,id=vser0"));
	argv_pair(argv, "-device", "pcie-root-port,id=hp7,bus=pcie.0,"
		  "chassis=8,addr=0x18.0x7,io-reserve=0");
	argv_pair(argv, "-device", "pcie-root-port,id=hp9,bus=pcie.0,"
		  "chassis=10,addr=0x19.0x1,io-reserve=0");
	vmm_hotplug_port_id(9, buf, sizeof(buf));
	assert_string_equal(buf, "hp9");
	/* No element is empty or has a stray space from splitting. */
	for (int i = 0; argv[i]; i++)
		assert_true(argv[i][0] != '\0');
	vmm_argv_free(argv);
}

static const char *uplink_mac(char **argv)
{
	for (int i = 0; argv[i]; i++)
		if (strncmp(argv[i], "virtio-net-pci,id=uplink0,", 26) == 0)
			return strstr(argv[i], "mac=") + 4;
	return NULL;
}

static void test_uplink_mac(void **state)
{
	struct fixture *f = *state;
	char **a, **b, mac1[32], mac2[32];
	uint8_t m[6];
	uint16_t id;

	assert_int_equal(vmm_argv(&f->l, &a), 0);
	assert_int_equal(vmm_argv(&f->l, &b), 0);
	assert_non_null(uplink_mac(a));
	strcpy(mac1, uplink_mac(a));
	assert_string_equal(mac1, uplink_mac(b));
	assert_int_equal(linkaddr_parse_mac(mac1, m), 0);
	assert_int_equal(m[0] & 0x03, 0x02); /* local, unicast */
	assert_int_equal(linkaddr_classify(m, &id), LINKADDR_FOREIGN);
	vmm_argv_free(a);
	vmm_argv_free(b);
	strcpy(f->cfg.name, "netvm");
	assert_int_equal(vmm_argv(&f->l, &a), 0);
	strcpy(mac2, uplink_mac(a));
	assert_string_not_equal(mac1, mac2);
	vmm_argv_free(a);
	f->cfg.uplink = false;
	assert_int_equal(vmm_argv(&f->l, &a), 0);
	assert_null(uplink_mac(a));
	assert_int_equal(argv_find(a, "user,id=uplink"), -1);
	vmm_argv_free(a);
}

static void test_kvm_smp(void **state)
{
	struct fixture *f = *state;
	char **argv;

	f->l.accel = VMM_ACCEL_KVM;
	f->cfg.cpus = 4;
	assert_int_equal(vmm_argv(&f->l, &argv), 0);
	argv_pair(argv, "-accel", "kvm");
	argv_pair(argv, "-cpu", "host");
	argv_pair(argv, "-smp", "4");
	argv_pair(argv, "-append", f->cfg.cmdline);
	vmm_argv_free(argv);
	f->l.accel = VMM_ACCEL_TCG;
	assert_int_equal(vmm_argv(&f->l, &argv), 0);
	argv_pair(argv, "-accel", "tcg,tb-size=128,thread=multi");
	argv_pair(argv, "-cpu", "max");
	vmm_argv_free(argv);
}

static void test_minimal(void **state)
{
	struct fixture *f = *state;
	char **argv;

	f->cfg.share_count = 0;
	f->l.nic_count = 0;
	f->l.hotplug_ports = 0;
	f->cfg.uplink = false;
	assert_int_equal(vmm_argv(&f->l, &argv), 0);
	/* No shares: no fw_cfg tag list at all. */
	assert_int_equal(argv_find(argv, "-fw_cfg"), -1);
	assert_int_equal(argv_find(argv, "-netdev"), -1);
	for (int i = 0; argv[i]; i++)
		assert_null(strstr(argv[i], "pcie-root-port"));
	vmm_argv_free(argv);
}

/* Whether argv names a device on the transport: "pci" or "device". */
static bool argv_all_on(char **argv, const char *transport)
{
	static const char *const devs[] = { "virtio-serial", "virtio-blk",
					    "vhost-user-fs", "virtio-net" };
	char prefix[64];
	int seen = 0;

	for (int i = 0; argv[i]; i++)
		for (size_t k = 0; k < sizeof devs / sizeof devs[0]; k++) {
			snprintf(prefix, sizeof prefix, "%s-", devs[k]);
			if (strncmp(argv[i], prefix, strlen(prefix)))
				continue;
			snprintf(prefix, sizeof prefix, "%s-%s,", devs[k], transport);
			if (strncmp(argv[i], prefix, strlen(prefix)))
				return false;
			seen++;
		}
	return seen > 0;
}

/* The machine argv boots: "q35" (virtio on PCI) or "microvm" (virtio-mmio). */
static void expect_machine(struct fixture *f, const char *machine)
{
	bool q35 = !strcmp(machine, "q35");
	char **argv;

	assert_int_equal(vmm_argv(&f->l, &argv), 0);
	assert_int_equal(strncmp(argv[argv_find(argv, "-machine") + 1], machine,
				 strlen(machine)), 0);
	assert_true(argv_all_on(argv, q35 ? "pci" : "device"));
	vmm_argv_free(argv);
}

static void test_microvm(void **state)
{
	struct fixture *f = *state;
	char **argv, buf[256];

	/* A leaf (no hot-plug ports) under TCG with the TSC rate known. */
	f->l.hotplug_ports = 0;
	f->l.tsc_khz = 2596122;
	assert_int_equal(vmm_argv(&f->l, &argv), 0);
	argv_pair(argv, "-machine", "microvm,memory-backend=mem,isa-serial=on,"
		  "rtc=on,acpi=on");
	argv_pair(argv, "-global", "virtio-mmio.force-legacy=false");
	assert_int_equal(argv_find(argv, "-bios"), -1);
	snprintf(buf, sizeof buf, "%s no_timer_check tsc_early_khz=2596122 "
		 "tsc=reliable", f->cfg.cmdline);
	argv_pair(argv, "-append", buf);
	assert_true(argv_all_on(argv, "device"));
	argv_pair(argv, "-device", "virtio-blk-device,id=blk2,drive=disk2");
	argv_pair(argv, "-device", "vhost-user-fs-device,id=fs1,chardev=vfs1,tag=media");
	argv_pair(argv, "-device", "virtio-net-device,id=nic1,netdev=net1,mac=0A:B3:EC:00:01:02");
	argv_pair(argv, "-device", "virtconsole,chardev=hvc0,bus=vser0.0");
	argv_pair(argv, "-fw_cfg", "name=opt/vmhost/virtiofs-tags,string=docs,,media");
	vmm_argv_free(argv);

	/* KVM keeps time by itself (kvm-clock): no rate, no TCG options. */
	f->l.accel = VMM_ACCEL_KVM;
	f->l.tsc_khz = 0;
	assert_int_equal(vmm_argv(&f->l, &argv), 0);
	assert_true(argv_find(argv, "microvm,memory-backend=mem,isa-serial=on,"
			      "rtc=on,acpi=on") > 0);
	argv_pair(argv, "-append", f->cfg.cmdline);
	vmm_argv_free(argv);

	/* TCG with the rate unknown: q35, where the guest calibrates. */
	f->l.accel = VMM_ACCEL_TCG;
	expect_machine(f, "q35");

	/* A provider (hot-plug ports) stays on q35. */
	f->l.tsc_khz = 2596122;
	f->l.hotplug_ports = 1;
	expect_machine(f, "q35");

	/* So does a VM with the vhost-user-vsock device. */
	f->l.hotplug_ports = 0;
	f->l.vsock = true;
	f->l.vsock_fd = 61;
	expect_machine(f, "q35");
	f->l.vsock = false;

	/* More virtio devices than microvm's 24 transports: q35. */
	f->l.hotplug_ports = 0;
	f->cfg.share_count = 0;
	f->cfg.uplink = false;
	f->l.nic_count = 0;
	struct vm_disk many[23];
	int fds[23];
	for (int i = 0; i < 23; i++) {
		many[i] = f->disks[0];
		fds[i] = f->disk_fds[0];
	}
	f->cfg.disks = many;
	f->l.disk_fds = fds;
	f->cfg.disk_count = 23;  /* + the console's virtio-serial: 24 */
	expect_machine(f, "microvm");
	f->cfg.uplink = true;
	expect_machine(f, "q35");
}

static void expect_einval(struct fixture *f)
{
	char **argv = (char **)0x1;

	errno = 0;
	assert_int_equal(vmm_argv(&f->l, &argv), -1);
	assert_int_equal(errno, EINVAL);
	assert_ptr_equal(argv, (char **)0x1);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;

	strcpy(f->shares[1].tag, "a,b");
	expect_einval(f);
	strcpy(f->shares[1].tag, "media");
	strcpy(f->cfg.name, "x,y");
	expect_einval(f);
	strcpy(f->cfg.name, "ok");
	f->cfg.memory = (512ull << 20) + 4096;
	expect_einval(f);
	f->cfg.memory = 0;
	expect_einval(f);
	f->cfg.memory = 256ull << 20;
	f->l.hotplug_ports = VMM_HOTPLUG_MAX + 1;
	expect_einval(f);
	f->l.hotplug_ports = VMM_HOTPLUG_MAX;
	char **argv;
	assert_int_equal(vmm_argv(&f->l, &argv), 0);
	argv_pair(argv, "-device", "pcie-root-port,id=hp55,bus=pcie.0,"
		  "chassis=56,addr=0x1e.0x7,io-reserve=0");
	vmm_argv_free(argv);
	f->l.kernel_fd = -1;
	expect_einval(f);
	f->l.kernel_fd = 10;
	f->vfs_fds[0] = -1;
	expect_einval(f);
	f->vfs_fds[0] = 40;
	/* A disk fd that is no file or block device. */
	int saved = f->disk_fds[1];
	f->disk_fds[1] = -1;
	expect_einval(f);
	f->disk_fds[1] = saved;
	f->nics[1].tap_fd = -1;
	expect_einval(f);
	f->nics[1].tap_fd = 51;
	f->l.uplink_fd = -1;          /* uplink asked for, no socket */
	expect_einval(f);
}

static void test_vsock(void **state)
{
	struct fixture *f = *state;
	char **argv;
	int *fds;
	size_t n;

	/* Without the device: no vsock, no Wayland port, even with the flag. */
	f->cfg.wayland = true;
	assert_int_equal(vmm_argv(&f->l, &argv), 0);
	for (int i = 0; argv[i]; i++) {
		assert_null(strstr(argv[i], "vsock"));
		assert_null(strstr(argv[i], "wayland"));
	}
	vmm_argv_free(argv);

	f->l.vsock = true;
	f->l.vsock_fd = 60;
	assert_int_equal(vmm_argv(&f->l, &argv), 0);
	argv_pair(argv, "-chardev", "socket,id=vsock,fd=60");
	argv_pair(argv, "-device", "vhost-user-vsock-pci,id=vsock0,chardev=vsock");
	argv_pair(argv, "-fw_cfg", "name=opt/vmhost/wayland-port,string=6000");
	/* vhost-user needs shareable guest RAM, which every VM has. */
	argv_pair(argv, "-object", "memory-backend-memfd,id=mem,size=512M,share=on");
	vmm_argv_free(argv);
	assert_int_equal(vmm_launch_fds(&f->l, &fds, &n), 0);
	/* Kernel, QMP, serial, console, 3 disks, 2 shares, 2 NICs, the
	 * uplink's socket if any, and the vsock device's, last. */
	assert_int_equal(n, 4 + 3 + 2 + 2 + (f->cfg.uplink ? 1 : 0) + 1);
	assert_int_equal(fds[n - 1], 60);
	free(fds);

	/* The device without the flag: no Wayland port for the guest. */
	f->cfg.wayland = false;
	assert_int_equal(vmm_argv(&f->l, &argv), 0);
	argv_pair(argv, "-device", "vhost-user-vsock-pci,id=vsock0,chardev=vsock");
	for (int i = 0; argv[i]; i++)
		assert_null(strstr(argv[i], "wayland"));
	vmm_argv_free(argv);

	f->l.vsock_fd = -1;
	expect_einval(f);
}

static void test_launch_fds(void **state)
{
	struct fixture *f = *state;
	int *fds;
	size_t n;

	assert_int_equal(vmm_launch_fds(&f->l, &fds, &n), 0);
	assert_int_equal(n, 4 + 3 + 2 + 2 + 1);
	assert_int_equal(fds[0], 10);
	assert_int_equal(fds[4], f->disk_fds[0]);
	assert_int_equal(fds[7], 40);
	assert_int_equal(fds[10], 51);
	assert_int_equal(fds[11], 60);
	free(fds);
}

static void test_accel(void **state)
{
	enum vmm_accel a;
	const char *why = NULL;

	assert_int_equal(vmm_accel_resolve("tcg", &a, &why), 0);
	assert_int_equal(a, VMM_ACCEL_TCG);
	assert_non_null(why);
	assert_int_equal(vmm_accel_resolve("kvm", &a, &why), 0);
	assert_int_equal(a, VMM_ACCEL_KVM);
	errno = 0;
	assert_int_equal(vmm_accel_resolve("xen", &a, &why), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(vmm_accel_resolve("auto", &a, &why), 0);
	bool vendor = access("/sys/module/kvm_intel", F_OK) == 0 ||
		      access("/sys/module/kvm_amd", F_OK) == 0;
	bool rw = access("/dev/kvm", R_OK | W_OK) == 0;
	assert_int_equal(a, vendor && rw ? VMM_ACCEL_KVM : VMM_ACCEL_TCG);
	assert_string_equal(vmm_accel_name(a), vendor && rw ? "kvm" : "tcg");
	assert_non_null(strstr(why, vmm_accel_name(a)[0] == 'k' ? "KVM" : "TCG"));
}

/* The host's TSC rate: where the host keeps time with its TSC, two
 * measurements agree to 0.01 % (a guest told it drifts no more). */
static void test_host_tsc_khz(void **state)
{
	unsigned long a = 0, b = 0;
	char cs[16] = "";
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/"
			"current_clocksource", "r");

	if (f) {
		if (!fgets(cs, sizeof cs, f))
			cs[0] = '\0';
		fclose(f);
	}
	if (strcmp(cs, "tsc\n")) {
		errno = 0;
		assert_int_equal(vmm_host_tsc_khz(&a), -1);
		assert_int_equal(errno, ENOTSUP);
		return;
	}
	assert_int_equal(vmm_host_tsc_khz(&a), 0);
	assert_int_equal(vmm_host_tsc_khz(&b), 0);
	assert_in_range(a, 100000, 10000000);
	assert_true((a > b ? a - b : b - a) * 10000 <= a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_uplink_mac, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_kvm_smp, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_minimal, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_microvm, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_refusals, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_launch_fds, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_vsock, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_accel),
		cmocka_unit_test(test_host_tsc_khz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
