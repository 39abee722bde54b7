/* The jail every QEMU and helper (virtiofsd, passt) runs in.
 *
 * Applied in the forked child before exec (spawn.h: clone_flags give it
 * new pid, IPC and usually network namespaces, so it is pid 1 of its
 * own; jail_enter does the rest):
 *   - a mount namespace of its own, private (nothing propagates either
 *     way), whose root is a fresh read-only tmpfs holding only: /usr
 *     read-only (libraries, firmware under /usr/share) with the host's
 *     merged-/usr links (/bin -> usr/bin, ...), /dev/null, /dev/urandom,
 *     /dev/kvm only under KVM, /proc of its own pid namespace, and what
 *     the jail asks for (a share's tree for virtiofsd, /etc/resolv.conf
 *     for passt), and an empty /tmp, a mount point for passt's own
 *     sandbox (the root is read-only).  No /etc, /home, /root, data partition or state dir:
 *     the old root is detached after pivot_root.
 *   - rlimits: no core dumps, a bounded number of open files.
 *   - for virtiofsd, a user namespace whose root is the VM directory's
 *     owner and primary group (no supplementary groups: Debian's virtiofsd
 *     drops them itself, CVE-2022-0358), so everything it does on the host
 *     it does with no more than the owner's reach, and a bounding set cut
 *     to what its sandbox uses.
 * The uid switch of QEMU and passt (privdrop.h) comes after, in spawn.
 */
#ifndef VMHOST_JAIL_H
#define VMHOST_JAIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

struct jail {
	bool kvm;             /* /dev/kvm */
	bool full_proc;       /* all of /proc (a sandbox inside mounts its
			       * own), else only its processes (subset=pid) */
	bool resolv_conf;     /* /etc/resolv.conf, read-only, if the host
			       * has one (passt tells the guest the DNS) */
	int tree_fd;          /* -1, or a detached mount (jail_tree) put at
			       * /share, nosuid, nodev */
	rlim_t nofile;        /* RLIMIT_NOFILE, soft and hard */
	/* A user namespace (clone_flags has CLONE_NEWUSER): its uid 0 is
	 * ns_uid on the host, its gid 0 ns_gid; nothing else is mapped. */
	bool userns;
	uid_t ns_uid;
	gid_t ns_gid;
	uint64_t ns_caps;     /* bounding set in the user namespace */
};

#define JAIL_SHARE "/share"

/* The clone flags for a jailed child: new pid and IPC namespaces, a new
 * network namespace unless net (passt needs the host's), and a user
 * namespace if j->userns. */
uint64_t jail_clone_flags(const struct jail *j, bool net);

/* A detached copy of the mount tree at dirfd (open_tree), O_CLOEXEC, for
 * j->tree_fd: the very directory the fd names, never looked up again by
 * path.  -1 with errno. */
int jail_tree(int dirfd);

/* In the parent, for a child cloned with CLONE_NEWUSER: write its uid
 * and gid maps.  -1 with errno. */
int jail_map_ids(pid_t pid, const struct jail *j);

/* In the child, before exec (and before privdrop_apply): build the jail
 * and change root into it.  Only async-signal-safe calls.  -1 with
 * errno. */
int jail_enter(const struct jail *j);

#endif
