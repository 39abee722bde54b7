/* What vmhostd keeps of root once it is set up (docs/security.md).
 *
 * After binding the control socket, loading the link table and stopping
 * a dead daemon's VMs, a root vmhostd empties its capability bounding set
 * but for PRIVILEGES_BOUNDING, and its permitted and effective sets but
 * for PRIVILEGES_DAEMON.  It stays uid 0, so the virtiofsds it spawns
 * (root, no file capabilities) get the bounding set at exec: the extra
 * PRIVILEGES_VIRTIOFSD bits are theirs, which their sandbox then reduces
 * further.  QEMU gets none (privdrop.h).
 */
#ifndef VMHOSTD_PRIVILEGES_H
#define VMHOSTD_PRIVILEGES_H

#include <linux/capability.h>
#include <stddef.h>
#include <stdint.h>

#define PRIVILEGES_BIT(cap) ((uint64_t)1 << (cap))

/* The monitor's own: taps and bridges; QEMU's and the engine's uid
 * switch and their empty bounding sets; signals to QEMU (another uid); VM
 * directories and shares of any owner (read, search); virtiofsd's
 * private mount and the engine's jail, made in the forked child before
 * exec; handing the engine its log directories (chown). */
#define PRIVILEGES_DAEMON                                                   \
	(PRIVILEGES_BIT(CAP_NET_ADMIN) | PRIVILEGES_BIT(CAP_SETUID) |       \
	 PRIVILEGES_BIT(CAP_CHOWN) |                                        \
	 PRIVILEGES_BIT(CAP_SETGID) | PRIVILEGES_BIT(CAP_SETPCAP) |         \
	 PRIVILEGES_BIT(CAP_KILL) | PRIVILEGES_BIT(CAP_DAC_READ_SEARCH) |   \
	 PRIVILEGES_BIT(CAP_SYS_ADMIN))

/* virtiofsd's as well: its sandbox (sys_admin: unshare, mount,
 * pivot_root), what its worker keeps to serve files as the guest's ids
 * (chown, dac_override, fowner, fsetid, setgid, setuid), and sys_resource
 * to raise its open-file limit at start-up. */
#define PRIVILEGES_VIRTIOFSD                                                \
	(PRIVILEGES_BIT(CAP_SYS_ADMIN) | PRIVILEGES_BIT(CAP_CHOWN) |        \
	 PRIVILEGES_BIT(CAP_DAC_OVERRIDE) | PRIVILEGES_BIT(CAP_FOWNER) |    \
	 PRIVILEGES_BIT(CAP_FSETID) | PRIVILEGES_BIT(CAP_SETGID) |          \
	 PRIVILEGES_BIT(CAP_SETUID) | PRIVILEGES_BIT(CAP_SYS_RESOURCE))

#define PRIVILEGES_BOUNDING (PRIVILEGES_DAEMON | PRIVILEGES_VIRTIOFSD)

/* Reduce the bounding, permitted and effective sets as above, and clear
 * the inheritable and ambient ones; then read back what is left (less,
 * if the daemon was started without some).  Only for root; -1 with
 * errno. */
int privileges_reduce(uint64_t *permitted, uint64_t *bounding);

/* "cap_chown,cap_kill,..." for mask, truncated to len. */
void privileges_names(uint64_t mask, char *buf, size_t len);

#endif
