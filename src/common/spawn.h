/* Starting helper processes (QEMU, virtiofsd, passt) with exactly the fds
 * they need, optionally in namespaces of their own.
 *
 * The child gets: stdin from /dev/null, stdout and stderr on log_fd, a new
 * session, an empty signal mask and default signal dispositions (the
 * daemon blocks signals for its signalfd), and only the fds in keep_fds
 * besides 0-2.  Those keep their numbers, so an argv can name them
 * ("fd=7") before the fork.  No PDEATHSIG: VMs outlive a daemon restart.
 *
 * The child is made with clone3: clone_flags may ask for new pid, network,
 * IPC and user namespaces (it is then pid 1 of its pid namespace), and the
 * pidfd comes from the clone itself, so it can never name another process.
 * The child waits until parent_setup (cgroup, uid maps) has run.
 */
#ifndef VMHOST_SPAWN_H
#define VMHOST_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/privdrop.h"

struct spawn_opts {
	const char *path;          /* executable, absolute: no PATH search */
	char *const *argv;         /* argv[0] included, NULL-terminated */
	char *const *envp;         /* NULL: a minimal PATH only */
	const int *keep_fds;       /* passed to the child, same numbers, >= 3 */
	size_t keep_count;
	int log_fd;                /* stdout and stderr; -1: /dev/null */
	const struct privdrop *drop; /* NULL: keep our ids; else become it
				      * (and cd /) just before exec */
	/* CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUSER (others
	 * are refused with EINVAL; a mount namespace is the jail's, made in
	 * child_setup). */
	uint64_t clone_flags;
	/* Run in the parent once the child exists, before it does anything:
	 * -1 with errno kills it and fails the spawn. */
	int (*parent_setup)(pid_t pid, void *arg);
	void *parent_arg;
	/* Run in the child once its fds are in place, before drop: only
	 * async-signal-safe calls; -1 with errno fails the spawn. */
	int (*child_setup)(void *arg);
	void *child_arg;
};

/* Clone and exec.  On success returns 0, stores the pid and a pidfd
 * (O_CLOEXEC; poll it for exit, then reap with waitpid or waitid(P_PIDFD)).
 * pidfd may be NULL if the caller does not want one.  A failed exec is
 * reported here (the child is reaped): -1 with the exec's errno.
 * keep_fds below 3 are refused with EINVAL. */
int spawn(const struct spawn_opts *opts, pid_t *pid, int *pidfd);

#endif
