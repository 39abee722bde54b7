/* One cgroup per VM run: every process of the VM (QEMU, its virtiofsds,
 * passt) is put in it before it runs anything, its memory and task count
 * are capped, and a stop empties it, whatever its processes do with
 * SIGTERM.
 *
 * Layout: DAEMON/PARENT/NAME, where DAEMON is the daemon's own cgroup and
 * PARENT its --cgroup-parent (default "vmhost"), so daemons with other
 * parents never touch each other's VMs.
 *   - cgroup v2 (where /sys/fs/cgroup is cgroup2, or the mount given):
 *     one directory; memory and pids are enabled down the tree when the
 *     hierarchy offers them.  If DAEMON holds processes (cgroup v2 allows
 *     none beside enabled controllers), the daemon first moves itself to
 *     the leaf DAEMON/PARENT/.vmhostd, as systemd's Delegate= expects.
 *     Kill: cgroup.kill.
 *   - cgroup v1: a directory in each of the memory, pids and freezer
 *     hierarchies, and in the unified (cgroup2) one of a hybrid host,
 *     which has no controllers but takes cgroup BPF programs
 *     (loopfilter.h).  Kill: freeze, SIGKILL each process, thaw, until
 *     empty.
 */
#ifndef VMHOST_CGROUP_H
#define VMHOST_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CGROUP_PARENT_DEFAULT "vmhost"
#define CGROUP_DIRS_MAX 4      /* v1: memory, pids, freezer, unified */

enum cgroup_version { CGROUP_V1 = 1, CGROUP_V2 = 2 };

/* Where a daemon's VM cgroups go. */
struct cgroup_root {
	enum cgroup_version version;
	char *base[CGROUP_DIRS_MAX]; /* DAEMON/PARENT in each hierarchy */
	const char *kind[CGROUP_DIRS_MAX]; /* "memory", ...; v2: "unified" */
	size_t count;
	int v2;                /* index of the cgroup2 directory; -1: none */
	bool memory, pids;     /* whether limits can be set */
};

struct cgroup {
	const struct cgroup_root *root;
	char *dir[CGROUP_DIRS_MAX];
};

/* Whether parent is a usable PARENT: 1 to 64 of [A-Za-z0-9_-]. */
bool cgroup_parent_valid(const char *parent);

/* Find the hierarchies and make DAEMON/PARENT.  v2_mount: NULL to decide
 * by /sys/fs/cgroup (cgroup2: v2, else v1), or a cgroup2 mount to use.
 * -1 with errno (ENOENT: no usable hierarchy); what failed in why. */
int cgroup_root_init(struct cgroup_root *r, const char *parent,
		     const char *v2_mount, char *why, size_t len);
void cgroup_root_fini(struct cgroup_root *r);

/* Make DAEMON/PARENT/name with these limits (0: none).  An empty one
 * left behind (a crash) is reused; one with processes in it fails with
 * EBUSY.  -1 with errno. */
int cgroup_create(const struct cgroup_root *r, const char *name,
		  uint64_t memory_max, uint64_t pids_max, struct cgroup *cg);
/* Open an existing DAEMON/PARENT/name (a restarted daemon).  -1 with
 * errno ENOENT if there is none. */
int cgroup_open(const struct cgroup_root *r, const char *name,
		struct cgroup *cg);
/* Move pid in.  -1 with errno. */
int cgroup_attach(const struct cgroup *cg, pid_t pid);
/* SIGKILL every process in it, once (cgroup.kill, or one freeze, kill,
 * thaw round); -1 with errno. */
int cgroup_kill(const struct cgroup *cg);
/* Whether any process is in it (1), none (0), or -1 with errno. */
int cgroup_populated(const struct cgroup *cg);
/* Kill until empty (waiting at most about timeout_ms), then remove it;
 * cg is then empty.  -1 with errno EBUSY if something stayed (cg kept). */
int cgroup_destroy(struct cgroup *cg, int timeout_ms);
/* Forget cg without touching the directories. */
void cgroup_free(struct cgroup *cg);
/* The directory of cg in hierarchy i (for logs and tests). */
const char *cgroup_dir(const struct cgroup *cg, size_t i);
/* cg's directory in a cgroup2 hierarchy (for cgroup BPF), or NULL. */
const char *cgroup_v2_dir(const struct cgroup *cg);

#endif
