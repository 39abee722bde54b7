/* The QEMU command line.  See vmm.h.
 *
 * Every argv element is built here explicitly; nothing goes through a
 * shell.  Values come validated from the loader, but anything that QemuOpts
 * would split on a comma is still refused with EINVAL rather than escaped,
 * except the fw_cfg tag list where ",," is the intended escape.
 */
#include "vmm/vmm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define QEMU_MIB (1ull << 20)

/* Hot-plug ports are pcie-root-ports packed 8 functions to a slot
 * (multifunction) in slots 0x18..0x1e of pcie.0, so they claim their
 * addresses before auto-placed devices.  That gives 7 * 8 = 56 ports and
 * leaves slots 0x01..0x17 (0x1f is the ICH9 LPC/SMBus) to the boot-time
 * devices.  Each port reserves no I/O window (io-reserve=0): the 64 KiB
 * I/O space would run out after a dozen ports, and PCIe virtio devices
 * need none. */
#define QEMU_HOTPLUG_FIRST_SLOT 0x18
#define QEMU_HOTPLUG_SLOTS 7
#define QEMU_HOTPLUG_MAX (QEMU_HOTPLUG_SLOTS * 8)
_Static_assert(QEMU_HOTPLUG_MAX == VMM_HOTPLUG_MAX, "vmm.h and qemu.c agree");

struct qemu_argv {
	char **v;
	size_t n;
	size_t cap;
};

static int qemu_arg(struct qemu_argv *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int qemu_arg(struct qemu_argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int rc;

	if (a->n + 2 > a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 64;
		char **nv = realloc(a->v, ncap * sizeof(*nv));

		if (!nv)
			return -1;
		a->v = nv;
		a->cap = ncap;
	}
	va_start(ap, fmt);
	rc = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (rc < 0) {
		errno = ENOMEM;
		return -1;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
	return 0;
}

void vmm_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

void vmm_hotplug_port_id(unsigned int n, char *buf, size_t len)
{
	snprintf(buf, len, "hp%u", n);
}

static bool qemu_opt_safe(const char *s)
{
	return s && *s && !strchr(s, ',');
}

/* Stable, locally administered, unicast, never our 0A:B3:EC OUI. */
static void qemu_uplink_mac(const char *name, char *buf)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
	uint8_t mac[LINKADDR_MAC_LEN];

	for (const char *p = name; *p; p++) {
		h ^= (uint8_t)*p;
		h *= 0x100000001b3ull;
	}
	mac[0] = 0x02;
	for (int i = 1; i < LINKADDR_MAC_LEN; i++)
		mac[i] = (uint8_t)(h >> (8 * (i - 1)));
	linkaddr_format_mac(mac, buf);
}

/* Appended to the guest's command line under TCG only. */
#define QEMU_TCG_CMDLINE "no_timer_check"

/* microvm's virtio-mmio transports (24 with its second IO-APIC, which
 * QEMU adds with ACPI). */
#define QEMU_MICROVM_TRANSPORTS 24

/* Leaf VMs, those no provider link is hot-plugged into (no hot-plug
 * ports), boot on microvm: virtio-mmio instead of PCI, no PCI bus to
 * enumerate, ACPI only for the power button; the guest reaches its ready
 * line sooner (docs/benchmarks.md).  Under TCG only when the guest can be
 * told its TSC rate: otherwise its kernel calibrates the TSC against the
 * PIT, which fails now and then on a busy host, and with no HPET, no PM
 * timer and no IRQ0 override in microvm's tables nothing else keeps time
 * and the boot hangs.  And only while its virtio devices fit.  A VM with
 * the vhost-user-vsock device stays on q35: vmhost-vsock and the guest's
 * relay have not been tried on virtio-mmio. */
static bool qemu_microvm(const struct vmm_launch *l)
{
	const struct vm_config *c = l->cfg;
	size_t devices = 1 + c->disk_count + c->share_count + l->nic_count +
			 (c->uplink ? 1 : 0);

	return !l->hotplug_ports && !l->vsock &&
	       devices <= QEMU_MICROVM_TRANSPORTS &&
	       (l->accel == VMM_ACCEL_KVM || l->tsc_khz);
}

/* A virtio device's name on the VM's transport: NAME-pci or, on
 * microvm, NAME-device (virtio-mmio). */
static const char *qemu_virtio(const struct vmm_launch *l)
{
	return qemu_microvm(l) ? "device" : "pci";
}

/* -machine and firmware.  q35: no i8042 (nothing uses a PS/2 keyboard or
 * mouse, and the guest kernel waits for the mouse probe before it runs
 * init, ~0.5 s under TCG); qboot instead of SeaBIOS (every boot is
 * -kernel, and qboot gets there faster; docs/benchmarks.md has both).
 * microvm: its default firmware is qboot already; an ISA serial port for
 * ttyS0, the RTC (without it the guest boots slower), ACPI for the power
 * button (vm stop); virtio 1.0 on virtio-mmio, as virtiofsd serves no
 * legacy device. */
static int qemu_args_machine_type(struct qemu_argv *a,
				  const struct vmm_launch *l)
{
	if (qemu_microvm(l))
		return qemu_arg(a, "-machine") ||
		       qemu_arg(a, "microvm,memory-backend=mem,isa-serial=on,"
				"rtc=on,acpi=on") ||
		       qemu_arg(a, "-global") ||
		       qemu_arg(a, "virtio-mmio.force-legacy=false") ? -1 : 0;
	return qemu_arg(a, "-machine") ||
	       qemu_arg(a, "q35,memory-backend=mem,i8042=off") ||
	       qemu_arg(a, "-bios") || qemu_arg(a, VMM_QBOOT_PATH) ? -1 : 0;
}

/* The guest's command line.  Under TCG the guest's TSC runs at the host's
 * rate: on microvm say which (tsc_early_khz), and that it is reliable
 * (the host keeps time with it), so the guest calibrates nothing. */
static int qemu_args_append(struct qemu_argv *a, const struct vmm_launch *l)
{
	const char *cmdline = l->cfg->cmdline;

	if (qemu_arg(a, "-append"))
		return -1;
	if (l->accel == VMM_ACCEL_KVM)
		return qemu_arg(a, "%s", cmdline);
	if (qemu_microvm(l))
		return qemu_arg(a, "%s " QEMU_TCG_CMDLINE
				" tsc_early_khz=%lu tsc=reliable", cmdline,
				l->tsc_khz);
	return qemu_arg(a, "%s " QEMU_TCG_CMDLINE, cmdline);
}

static int qemu_args_machine(struct qemu_argv *a, const struct vmm_launch *l)
{
	const struct vm_config *c = l->cfg;
	bool kvm = l->accel == VMM_ACCEL_KVM;
	unsigned long long mib = c->memory / QEMU_MIB;

	if (!qemu_opt_safe(c->name) || c->memory % QEMU_MIB || !mib ||
	    !c->cpus || l->kernel_fd < 0 || !c->cmdline) {
		errno = EINVAL;
		return -1;
	}
	if (qemu_arg(a, "%s", l->qemu ? l->qemu : VMM_QEMU_PATH) ||
	    qemu_arg(a, "-name") || qemu_arg(a, "guest=%s,debug-threads=on", c->name) ||
	    /* Paused until the caller has connected to serial and console
	     * (launch.h): no byte of the guest's is lost. */
	    qemu_arg(a, "-S") ||
	    qemu_arg(a, "-nodefaults") || qemu_arg(a, "-no-user-config") ||
	    qemu_arg(a, "-display") || qemu_arg(a, "none") ||
	    /* QEMU refuses -machine accel= together with -accel. */
	    qemu_args_machine_type(a, l) || qemu_arg(a, "-accel"))
		return -1;
	/* TCG's code cache is memory the VM's cgroup pays for (launch.h):
	 * a fixed size, not QEMU's default that grows towards 1 GiB. */
	if (kvm ? qemu_arg(a, "kvm") :
	    qemu_arg(a, "tcg,tb-size=%u%s", VMM_TCG_TB_MIB,
		     c->cpus > 1 ? ",thread=multi" : ""))
		return -1;
	/* Guest RAM is always shareable memfd: virtio-fs needs it, and one
	 * path for every VM is one path to test. */
	if (qemu_arg(a, "-cpu") || qemu_arg(a, kvm ? "host" : "max") ||
	    qemu_arg(a, "-m") || qemu_arg(a, "%lluM", mib) ||
	    qemu_arg(a, "-object") ||
	    qemu_arg(a, "memory-backend-memfd,id=mem,size=%lluM,share=on", mib) ||
	    qemu_arg(a, "-smp") || qemu_arg(a, "%u", c->cpus) ||
	    qemu_arg(a, "-kernel") || qemu_arg(a, "/proc/self/fd/%d", l->kernel_fd) ||
	    /* Under TCG on a busy host the vCPU can miss the ticks the
	     * kernel's IO-APIC timer check counts, and the guest panics
	     * ("IO-APIC + timer doesn't work!"); the timer is fine. */
	    qemu_args_append(a, l) ||
	    qemu_arg(a, "-sandbox") ||
	    qemu_arg(a, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,"
		     "resourcecontrol=deny"))
		return -1;
	return 0;
}

static int qemu_args_hotplug(struct qemu_argv *a, const struct vmm_launch *l)
{
	char id[16];

	if (l->hotplug_ports > QEMU_HOTPLUG_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (unsigned int i = 0; i < l->hotplug_ports; i++) {
		vmm_hotplug_port_id(i, id, sizeof(id));
		if (qemu_arg(a, "-device") ||
		    qemu_arg(a, "pcie-root-port,id=%s,bus=pcie.0,chassis=%u,"
			     "addr=0x%x.0x%x%s,io-reserve=0", id, i + 1,
			     QEMU_HOTPLUG_FIRST_SLOT + i / 8, i % 8,
			     i % 8 == 0 ? ",multifunction=on" : ""))
			return -1;
	}
	return 0;
}

static int qemu_args_chardevs(struct qemu_argv *a, const struct vmm_launch *l)
{
	if (l->qmp_fd < 0 || l->serial_fd < 0 || l->console_fd < 0) {
		errno = EINVAL;
		return -1;
	}
	/* Listening sockets: QEMU takes one client at a time on each, and
	 * the next after a hang-up (a restarted daemon, launch.h). */
	return qemu_arg(a, "-chardev") ||
	       qemu_arg(a, "socket,id=qmp,fd=%d,server=on,wait=off", l->qmp_fd) ||
	       qemu_arg(a, "-mon") || qemu_arg(a, "chardev=qmp,mode=control") ||
	       qemu_arg(a, "-chardev") ||
	       qemu_arg(a, "socket,id=serial0,fd=%d,server=on,wait=off",
			l->serial_fd) ||
	       qemu_arg(a, "-serial") || qemu_arg(a, "chardev:serial0") ||
	       qemu_arg(a, "-device") ||
	       qemu_arg(a, "virtio-serial-%s,id=vser0", qemu_virtio(l)) ||
	       qemu_arg(a, "-chardev") ||
	       qemu_arg(a, "socket,id=hvc0,fd=%d,server=on,wait=off",
			l->console_fd) ||
	       qemu_arg(a, "-device") ||
	       qemu_arg(a, "virtconsole,chardev=hvc0,bus=vser0.0") ? -1 : 0;
}

static int qemu_args_disks(struct qemu_argv *a, const struct vmm_launch *l)
{
	const struct vm_config *c = l->cfg;
	struct stat st;

	for (size_t i = 0; i < c->disk_count; i++) {
		int fd = l->disk_fds ? l->disk_fds[i] : -1;

		if (fd < 0 || fstat(fd, &st) < 0 ||
		    !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
			errno = EINVAL;
			return -1;
		}
		/* fdset i+1: QEMU opens /dev/fdset/N by dup'ing our fd. */
		if (qemu_arg(a, "-add-fd") ||
		    qemu_arg(a, "fd=%d,set=%zu,opaque=disk%zu", fd, i + 1, i) ||
		    qemu_arg(a, "-blockdev") ||
		    qemu_arg(a, "{\"driver\":\"raw\",\"node-name\":\"disk%zu\","
			     "\"read-only\":true,\"file\":{\"driver\":\"%s\","
			     "\"filename\":\"/dev/fdset/%zu\",\"read-only\":true}}",
			     i, S_ISBLK(st.st_mode) ? "host_device" : "file",
			     i + 1) ||
		    qemu_arg(a, "-device") ||
		    qemu_arg(a, "virtio-blk-%s,id=blk%zu,drive=disk%zu",
			     qemu_virtio(l), i, i))
			return -1;
	}
	return 0;
}

static int qemu_args_shares(struct qemu_argv *a, const struct vmm_launch *l)
{
	const struct vm_config *c = l->cfg;
	size_t len = 0;
	char *tags, *p;

	if (!c->share_count)
		return 0;
	for (size_t i = 0; i < c->share_count; i++) {
		if (!qemu_opt_safe(c->shares[i].tag) || !l->virtiofs_fds ||
		    l->virtiofs_fds[i] < 0) {
			errno = EINVAL;
			return -1;
		}
		if (qemu_arg(a, "-chardev") ||
		    qemu_arg(a, "socket,id=vfs%zu,fd=%d", i, l->virtiofs_fds[i]) ||
		    qemu_arg(a, "-device") ||
		    qemu_arg(a, "vhost-user-fs-%s,id=fs%zu,chardev=vfs%zu,tag=%s",
			     qemu_virtio(l), i, i, c->shares[i].tag))
			return -1;
		len += strlen(c->shares[i].tag) + 2;
	}
	/* The guest reads "TAG1,TAG2" from fw_cfg; QemuOpts wants ",,". */
	tags = calloc(1, len + 1);
	if (!tags)
		return -1;
	p = tags;
	for (size_t i = 0; i < c->share_count; i++)
		p += sprintf(p, "%s%s", i ? ",," : "", c->shares[i].tag);
	int rc = qemu_arg(a, "-fw_cfg") ||
		 qemu_arg(a, "name=opt/vmhost/virtiofs-tags,string=%s", tags);
	free(tags);
	return rc ? -1 : 0;
}

static int qemu_args_nics(struct qemu_argv *a, const struct vmm_launch *l)
{
	char mac[LINKADDR_MAC_STRLEN];

	for (size_t i = 0; i < l->nic_count; i++) {
		if (l->nics[i].tap_fd < 0) {
			errno = EINVAL;
			return -1;
		}
		linkaddr_format_mac(l->nics[i].mac, mac);
		if (qemu_arg(a, "-netdev") ||
		    qemu_arg(a, "tap,id=net%zu,fd=%d", i, l->nics[i].tap_fd) ||
		    qemu_arg(a, "-device") ||
		    qemu_arg(a, "virtio-net-%s,id=nic%zu,netdev=net%zu,mac=%s",
			     qemu_virtio(l), i, i, mac))
			return -1;
	}
	if (!l->cfg->uplink)
		return 0;
	if (l->uplink_fd < 0) {
		errno = EINVAL;
		return -1;
	}
	qemu_uplink_mac(l->cfg->name, mac);
	/* passt at the other end (launch.h): QEMU itself has no network. */
	return qemu_arg(a, "-netdev") ||
	       qemu_arg(a, "stream,id=uplink,server=off,addr.type=fd,addr.str=%d",
			l->uplink_fd) ||
	       qemu_arg(a, "-device") ||
	       qemu_arg(a, "virtio-net-%s,id=uplink0,netdev=uplink,mac=%s",
			qemu_virtio(l), mac)
	       ? -1 : 0;
}

static int qemu_args_vsock(struct qemu_argv *a, const struct vmm_launch *l)
{
	if (!l->vsock)
		return 0;
	if (l->vsock_fd < 0) {
		errno = EINVAL;
		return -1;
	}
	/* The guest CID is the backend's to give (GET_CONFIG). */
	if (qemu_arg(a, "-chardev") ||
	    qemu_arg(a, "socket,id=vsock,fd=%d", l->vsock_fd) ||
	    qemu_arg(a, "-device") ||
	    qemu_arg(a, "vhost-user-vsock-pci,id=vsock0,chardev=vsock"))
		return -1;
	if (!l->cfg->wayland)
		return 0;
	return qemu_arg(a, "-fw_cfg") ||
	       qemu_arg(a, "name=opt/vmhost/wayland-port,string=%u",
			VMM_WAYLAND_VSOCK_PORT) ? -1 : 0;
}

int vmm_argv(const struct vmm_launch *l, char ***argv)
{
	struct qemu_argv a = { 0 };
	int saved;

	if (!l || !l->cfg || !argv) {
		errno = EINVAL;
		return -1;
	}
	/* Hot-plug ports first: they take fixed addresses, the rest is
	 * placed after them in argv order (so disks enumerate in order). */
	if (qemu_args_machine(&a, l) < 0 || qemu_args_hotplug(&a, l) < 0 ||
	    qemu_args_chardevs(&a, l) < 0 || qemu_args_disks(&a, l) < 0 ||
	    qemu_args_shares(&a, l) < 0 || qemu_args_nics(&a, l) < 0 ||
	    qemu_args_vsock(&a, l) < 0)
		goto err;
	*argv = a.v;
	return 0;
err:
	saved = errno;
	vmm_argv_free(a.v);
	errno = saved;
	return -1;
}

int vmm_launch_fds(const struct vmm_launch *l, int **fds, size_t *count)
{
	const struct vm_config *c = l->cfg;
	/* kernel, QMP, serial, console, uplink, vsock, and the lists */
	size_t n = 0, max = 6 + c->disk_count + c->share_count + l->nic_count;
	int *v = calloc(max, sizeof(*v));

	if (!v)
		return -1;
	v[n++] = l->kernel_fd;
	v[n++] = l->qmp_fd;
	v[n++] = l->serial_fd;
	v[n++] = l->console_fd;
	for (size_t i = 0; i < c->disk_count; i++)
		v[n++] = l->disk_fds[i];
	for (size_t i = 0; i < c->share_count; i++)
		v[n++] = l->virtiofs_fds[i];
	for (size_t i = 0; i < l->nic_count; i++)
		v[n++] = l->nics[i].tap_fd;
	if (l->vsock)
		v[n++] = l->vsock_fd;
	if (c->uplink)
		v[n++] = l->uplink_fd;
	*fds = v;
	*count = n;
	return 0;
}
