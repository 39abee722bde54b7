/* The VMM backend: everything the daemon needs to launch one VM and speak to
 * its monitor.  QEMU is the only backend today (qemu.c, qmp.c); `wayland`
 * is a vhost-user-vsock device (vsock, below) served by vmhost-vsock.
 *
 * The daemon prepares every resource (sockets, disk fds, virtiofsd sockets,
 * taps) and the backend turns them into a command line.  All fds passed in
 * are the child's: the daemon clears O_CLOEXEC on exactly these in the child
 * (spawn.h) and nothing else leaks into the VMM.
 */
#ifndef VMHOST_VMM_H
#define VMHOST_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/linkaddr.h"
#include "config/vmconfig.h"

/* argv[0] of vmm_argv, an absolute path for spawn(). */
#define VMM_QEMU_PATH "/usr/bin/qemu-system-x86_64"
/* The firmware: qboot (Debian's qemu-system-data), which only loads
 * -kernel; faster to the kernel than the default SeaBIOS. */
#define VMM_QBOOT_PATH "/usr/share/qemu/qboot.rom"

enum vmm_accel { VMM_ACCEL_TCG, VMM_ACCEL_KVM };

/* Under TCG, the translated-code cache (MiB): part of what a VM's cgroup
 * allows beyond guest RAM (launch.h). */
#define VMM_TCG_TB_MIB 128

/* Resolve --accel auto|kvm|tcg.  For auto: KVM only when /dev/kvm opens
 * read-write and kvm_intel or kvm_amd is loaded (kvm_pvm cannot run a
 * normal guest); otherwise TCG.  *why gets a static sentence for the log.
 * Returns -1 with errno EINVAL for an unknown mode. */
int vmm_accel_resolve(const char *mode, enum vmm_accel *accel,
		      const char **why);
const char *vmm_accel_name(enum vmm_accel accel);

/* The rate of the host's TSC in kHz, measured against CLOCK_MONOTONIC_RAW
 * over about 50 ms (call it once, at start-up).  Under TCG a guest's TSC
 * runs at this rate, so the guest can be told it instead of calibrating.
 * -1 with errno ENOTSUP where the host does not keep time with its TSC
 * (then the rate may drift) or the host is not x86. */
int vmm_host_tsc_khz(unsigned long *khz);

/* A NIC present at boot: the client end of an inter-VM link. */
struct vmm_nic {
	int tap_fd;
	uint8_t mac[LINKADDR_MAC_LEN];
};

struct vmm_launch {
	const struct vm_config *cfg;
	const char *qemu;      /* the emulator, absolute; NULL: VMM_QEMU_PATH */
	enum vmm_accel accel;
	int kernel_fd;         /* cfg->kernel opened O_RDONLY; QEMU opens
				* /proc/self/fd/N, so no check-to-use race */
	int qmp_fd;            /* listening socket: QMP monitor */
	int serial_fd;         /* listening socket: serial console, read by the daemon */
	int console_fd;        /* listening socket: virtio-console hvc0 */
	const int *disk_fds;   /* one per cfg->disks, opened O_RDONLY */
	const int *virtiofs_fds; /* one per cfg->shares: connected socket to
				  * its virtiofsd (vmm/virtiofsd.h) */
	const struct vmm_nic *nics;
	size_t nic_count;
	unsigned int hotplug_ports; /* free pcie-root-ports for provider links;
				     * 0: a leaf VM, which boots on microvm
				     * where it can (qemu.c) */
	unsigned long tsc_khz; /* TCG: the host's TSC rate, which the guest's
				* TSC runs at (vmm_host_tsc_khz); 0: unknown */
	/* A vhost-user-vsock device served by the VM's vmhost-vsock
	 * (src/vsock/, docs/wayland.md): vsock_fd is the connected socket.
	 * With cfg->wayland the guest is told, over fw_cfg, the vsock port
	 * of its Wayland host end. */
	bool vsock;
	int vsock_fd;
	int uplink_fd;         /* cfg->uplink: connected stream socket to
				* passt (launch.h) */
};

/* The host port (vmhost-vsock --port) a guest's Wayland end connects to. */
#define VMM_WAYLAND_VSOCK_PORT 6000

/* Build the VMM's argv (NULL-terminated, caller frees with vmm_argv_free);
 * argv[0] is the executable's absolute path.  The VMM starts paused: QMP
 * "cont" runs the guest once the caller has connected to every socket.  Returns -1 with errno set on
 * failure (EINVAL: a missing fd, a comma where QEMU would split, memory
 * not a whole number of MiB, more than VMM_HOTPLUG_MAX ports). */
int vmm_argv(const struct vmm_launch *launch, char ***argv);
void vmm_argv_free(char **argv);

/* Every fd in launch the VMM must inherit (for spawn_opts.keep_fds), in a
 * malloc'd array the caller frees.  -1/errno on failure. */
int vmm_launch_fds(const struct vmm_launch *launch, int **fds, size_t *count);

/* Most hot-plug ports a VM can have (see qemu.c for why). */
#define VMM_HOTPLUG_MAX 56

/* The pcie-root-port id for hot-plug slot n (n < hotplug_ports), for
 * device_add's bus=.  buf holds at least 16 bytes. */
void vmm_hotplug_port_id(unsigned int n, char *buf, size_t len);

#endif
