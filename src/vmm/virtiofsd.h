/* One virtiofsd (/usr/lib/qemu/virtiofsd, the C one of QEMU 7.2) per
 * shared directory.
 *
 * Socket plumbing, with no window where anyone else can connect and no
 * waiting for virtiofsd to create its socket:
 *   1. virtiofsd_sockets() binds a listening unix socket at a private path
 *      (in the VM's 0700 state dir), connects a second socket to it (the
 *      connection waits in the backlog), then unlinks the path.
 *   2. virtiofsd_spawn() starts virtiofsd with --fd=LISTEN; it accepts the
 *      queued connection.
 *   3. QEMU gets the connected end (struct vmm_launch.virtiofs_fds) as
 *      -chardev socket,fd=N.
 * The daemon closes both fds after spawning QEMU.  virtiofsd exits by
 * itself when QEMU closes the connection; the daemon still reaps it (and
 * kills it if QEMU died without it noticing).
 */
#ifndef VMHOST_VIRTIOFSD_H
#define VMHOST_VIRTIOFSD_H

#include <stddef.h>
#include <sys/types.h>

#define VIRTIOFSD_PATH "/usr/lib/qemu/virtiofsd"

enum virtiofsd_sandbox {
	VIRTIOFSD_SANDBOX_NAMESPACE, /* mount+pid+net ns, pivot_root: root only */
	VIRTIOFSD_SANDBOX_CHROOT,    /* chroot into the share */
};

struct virtiofsd_opts {
	const char *source;     /* the share's resolved host directory */
	int listen_fd;          /* from virtiofsd_sockets */
	enum virtiofsd_sandbox sandbox;
	const char *binary;     /* NULL: VIRTIOFSD_PATH */
	/* Pinning (namespace sandbox only): > 2, an fd of the share's
	 * directory, as the gatherer opened and checked it (config/
	 * gather.h); virtiofsd then gets a private mount namespace where a
	 * clone of that very directory (open_tree, no path looked up again)
	 * is mounted at pin_at (an empty directory only root can change) and
	 * serves pin_at, so nobody can swap the share between the check and
	 * virtiofsd's own mount.  0: serve source by path. */
	int source_fd;
	const char *pin_at;
};

/* Make the socket pair described above at tmp_path (which must not exist;
 * it is gone again on return).  Both fds O_CLOEXEC.  -1/errno on failure. */
int virtiofsd_sockets(const char *tmp_path, int *listen_fd, int *qemu_fd);

/* The argv for one virtiofsd (NULL-terminated, free with
 * virtiofsd_argv_free).  EINVAL for a source with a comma (virtiofsd
 * splits -o values on commas). */
int virtiofsd_argv(const struct virtiofsd_opts *opts, char ***argv);
void virtiofsd_argv_free(char **argv);

/* Build the argv and spawn it (common/spawn.h), passing only listen_fd.
 * log_fd receives its stderr (-1: /dev/null). */
int virtiofsd_spawn(const struct virtiofsd_opts *opts, int log_fd,
		    pid_t *pid, int *pidfd);

#endif
