/* What vmhostd keeps of root once it is set up (docs/security.md).
 *
 * After binding the control socket, loading the link table and stopping
 * a dead daemon's VMs, a root vmhostd empties its capability bounding set,
 * and its permitted and effective sets, but for PRIVILEGES_DAEMON.  QEMU
 * and passt get none (privdrop.h); virtiofsd runs in a user namespace of
 * its own, whose capabilities reach only inside it (vmm/jail.h), so it
 * needs none of the daemon's either.
 */
#ifndef VMHOSTD_PRIVILEGES_H
#define VMHOSTD_PRIVILEGES_H

#include <linux/capability.h>
#include <stddef.h>
#include <stdint.h>

#define PRIVILEGES_BIT(cap) ((uint64_t)1 << (cap))

/* The monitor's own: taps and bridges; QEMU's, passt's and the engine's
 * uid switch and their empty bounding sets, and virtiofsd's uid and gid
 * maps; signals to the VM's processes (other uids); VM directories and
 * shares of any owner (read, search); the jails (mount namespaces, mounts,
 * pivot_root, a detached copy of each share) and the engine's, made in
 * the forked child before exec; handing the engine its log directories
 * (chown); setfcap, which the kernel asks of whoever maps uid 0 into a
 * user namespace (virtiofsd of a root-owned VM directory). */
#define PRIVILEGES_DAEMON                                                   \
	(PRIVILEGES_BIT(CAP_NET_ADMIN) | PRIVILEGES_BIT(CAP_SETUID) |       \
	 PRIVILEGES_BIT(CAP_CHOWN) |                                        \
	 PRIVILEGES_BIT(CAP_SETGID) | PRIVILEGES_BIT(CAP_SETPCAP) |         \
	 PRIVILEGES_BIT(CAP_KILL) | PRIVILEGES_BIT(CAP_DAC_READ_SEARCH) |   \
	 PRIVILEGES_BIT(CAP_SYS_ADMIN) | PRIVILEGES_BIT(CAP_SETFCAP))

#define PRIVILEGES_BOUNDING PRIVILEGES_DAEMON

/* Reduce the bounding, permitted and effective sets as above, and clear
 * the inheritable and ambient ones; then read back what is left (less,
 * if the daemon was started without some).  Only for root; -1 with
 * errno. */
int privileges_reduce(uint64_t *permitted, uint64_t *bounding);

/* "cap_chown,cap_kill,..." for mask, truncated to len. */
void privileges_names(uint64_t mask, char *buf, size_t len);

#endif
