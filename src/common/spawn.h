/* Starting helper processes (QEMU, virtiofsd) with exactly the fds they
 * need.
 *
 * The child gets: stdin from /dev/null, stdout and stderr on log_fd, a new
 * session, an empty signal mask and default signal dispositions (the
 * daemon blocks signals for its signalfd), and only the fds in keep_fds
 * besides 0-2.  Those keep their numbers, so an argv can name them
 * ("fd=7") before the fork.  No PDEATHSIG: VMs outlive a daemon restart.
 */
#ifndef VMHOST_SPAWN_H
#define VMHOST_SPAWN_H

#include <stddef.h>
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
	/* Run in the child once its fds are in place, before drop: only
	 * async-signal-safe calls; -1 with errno fails the spawn. */
	int (*child_setup)(void *arg);
	void *child_arg;
};

/* Fork and exec.  On success returns 0, stores the pid and a pidfd
 * (O_CLOEXEC; poll it for exit, then reap with waitpid or waitid(P_PIDFD)).
 * pidfd may be NULL if the caller does not want one.  A failed exec is
 * reported here (the child is reaped): -1 with the exec's errno.
 * keep_fds below 3 are refused with EINVAL. */
int spawn(const struct spawn_opts *opts, pid_t *pid, int *pidfd);

#endif
