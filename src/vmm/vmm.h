/* The VMM backend: everything the daemon needs to launch one VM and speak to
 * its monitor.  QEMU is the only backend today (qemu.c, qmp.c); the wayland
 * flag is where a cross-domain-capable VMM would plug in (vmm_caps).
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

enum vmm_accel { VMM_ACCEL_TCG, VMM_ACCEL_KVM };

/* Resolve --accel auto|kvm|tcg.  For auto: KVM only when /dev/kvm opens
 * read-write and kvm_intel or kvm_amd is loaded (kvm_pvm cannot run a
 * normal guest); otherwise TCG.  *why gets a static sentence for the log.
 * Returns -1 with errno EINVAL for an unknown mode. */
int vmm_accel_resolve(const char *mode, enum vmm_accel *accel,
		      const char **why);
const char *vmm_accel_name(enum vmm_accel accel);

/* A NIC present at boot: the client end of an inter-VM link. */
struct vmm_nic {
	int tap_fd;
	uint8_t mac[LINKADDR_MAC_LEN];
};

struct vmm_launch {
	const struct vm_config *cfg;
	enum vmm_accel accel;
	int qmp_fd;            /* connected socket: QMP monitor */
	int serial_fd;         /* connected socket: serial console, read by the daemon */
	int console_fd;        /* connected socket: virtio-console hvc0 */
	const int *disk_fds;   /* one per cfg->disks, opened O_RDONLY */
	const char *const *virtiofs_sockets; /* one per cfg->shares */
	const struct vmm_nic *nics;
	size_t nic_count;
	unsigned int hotplug_ports; /* free pcie-root-ports for provider links */
};

/* What the backend can do; the daemon reports what it had to leave out. */
struct vmm_caps {
	bool wayland; /* virtio-gpu cross-domain context */
};
void vmm_caps_get(struct vmm_caps *caps);

/* Build the VMM's argv (NULL-terminated, caller frees with vmm_argv_free).
 * Returns -1 with errno set on failure. */
int vmm_argv(const struct vmm_launch *launch, char ***argv);
void vmm_argv_free(char **argv);

/* The pcie-root-port id for hot-plug slot n (n < hotplug_ports), for
 * device_add's bus=.  buf holds at least 16 bytes. */
void vmm_hotplug_port_id(unsigned int n, char *buf, size_t len);

#endif
