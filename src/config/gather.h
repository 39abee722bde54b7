/* The gatherer: everything a VM uses from its directory, opened once,
 * with the reach of the directory's owner (issue 11).
 *
 * A forked child takes the identity of the owner of CONFIG_ROOT/NAME (its
 * uid; the gid and supplementary groups of that uid's passwd entry, or
 * only the overflow group 65534 when it has none), is made non-dumpable
 * and no_new_privs, runs the loader (vmconfig.h) and opens every file the
 * VM will use: O_PATH first (links followed where the format allows
 * them), the type checked on that fd (a FIFO or a device is never opened
 * by surprise; a block device only if the administrator allowed it), then
 * the real open through /proc/self/fd/N, whose permission check is the
 * owner's, and a check that it is the same inode.  The kernel is copied
 * into a sealed memfd there (common/sealcopy.h).  A root-owned directory
 * stays root: it may use everything root can open, but block devices
 * still need the allow-list.  When the caller is not root nobody's
 * identity is taken: files are opened with the caller's own reach.
 *
 * The child sends the config (vmwire.h) or its diagnostics, with the fds,
 * over a socketpair.  The parent treats that as hostile: it decodes with
 * full validation, checks every fd again (type, access mode, counts,
 * seals), checks that every share lies inside the data root and neither
 * is, lies inside nor contains the config root or vmhostd's state
 * directory (confine.h), and applies the host limits (hostlimits.h).
 *
 * Providers: the child checks only the names in providers/net.  Whether
 * the provider graph has a cycle, and whether each provider is a valid VM,
 * the parent decides from gathers of those providers, each as its own
 * owner (a VM's owner may be unable to read another owner's directory).
 *
 * What was checked is what is used: the VM gets exactly these fds,
 * whatever the owner changes afterwards.
 */
#ifndef VMHOST_GATHER_H
#define VMHOST_GATHER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/hostlimits.h"
#include "config/vmfiles.h"

#define GATHER_TIMEOUT_MS 10000  /* default, per VM, for the sync calls */
#define GATHER_NOGROUP 65534     /* the gid of an owner without passwd entry */

struct gather_policy {
	struct vmconfig_roots roots;
	const char *state_dir;      /* vmhostd's; shares may not reach it
				     * (NULL, or missing: nothing to protect) */
	dev_t *block_devices;       /* allowed, by st_rdev */
	size_t block_device_count;
	struct hostlimits limits;
	unsigned int timeout_ms;    /* sync calls: 0 means GATHER_TIMEOUT_MS */
	bool check_only;            /* vm check: the kernel is not copied */
};

/* Zero p, with the host's default limits.  -1 with errno (no meminfo). */
int gather_policy_init(struct gather_policy *p);
void gather_policy_free(struct gather_policy *p);
/* Allow the block device at path (matched by st_rdev).  -1 with errno:
 * ENOTBLK if it is not a block device, or stat's. */
int gather_allow_block_device(struct gather_policy *p, const char *path);

/* Gather one VM and check its providers (cycles, validity).  0 with files
 * filled when the VM is valid (warnings allowed); -1 with errno EINVAL
 * when it is not, or another errno on a system failure (a time-out is
 * ETIMEDOUT); diags says why in both cases.  Waits at most timeout_ms
 * per child; a child past its time is killed. */
int gather_load(const struct gather_policy *p, const char *name,
		struct vm_files *files, struct diags *diags);

/* Many VMs, for vm check: one child per distinct owner.  names must be
 * distinct.  results[i] gets names[i]'s verdict and diagnostics, and its
 * config when valid; its fds are checked and closed.  -1 with errno only
 * on a failure that leaves no verdict at all (e.g. no config root). */
struct gather_result {
	struct vm_config *cfg;
	struct diags diags;
	bool valid;
};
int gather_check(const struct gather_policy *p, char *const *names,
		 size_t count, struct gather_result *results);
void gather_result_free(struct gather_result *r);

/* The asynchronous pair, for an event loop: one VM, its own files only
 * (no provider checks).  gather_spawn forks the child; watch child->sock
 * for input, and kill the child at a deadline with gather_cancel
 * (child->pidfd tells when it exits; -1 where pidfd_open is missing).
 * p must outlive the child. */
enum gather_status {
	GATHER_PENDING,   /* call gather_collect again when sock is readable */
	GATHER_VALID,     /* files filled, child reaped */
	GATHER_INVALID,   /* diags say why, child reaped */
};
struct gather_run;
struct gather_child {
	pid_t pid;
	int pidfd;
	int sock;
	struct gather_run *run;
};
/* GATHER_PENDING with child filled, or GATHER_INVALID (no child: e.g. no
 * such VM), or -1 with errno. */
int gather_spawn(const struct gather_policy *p, const char *name,
		 struct gather_child *child, struct diags *diags);
/* Reads what is there without blocking.  -1 with errno when the child
 * broke the protocol or died (also in diags); the child is then gone. */
int gather_collect(struct gather_child *child, struct vm_files *files,
		   struct diags *diags);
/* Kill the child (SIGKILL), reap it, close everything. */
void gather_cancel(struct gather_child *child);
/* The caller's deadline passed: cancel, and say so in diags exactly as
 * the synchronous calls do. */
void gather_timed_out(struct gather_child *child, struct diags *diags);

#endif
