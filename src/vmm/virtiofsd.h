/* One virtiofsd (/usr/lib/qemu/virtiofsd, the C one of QEMU 7.2) per
 * shared directory.
 *
 * Socket plumbing, with no window where anyone else can connect and no
 * waiting for virtiofsd to create its socket:
 *   1. virtiofsd_sockets() binds a listening unix socket at a private path
 *      (in the VM's 0700 state dir), connects a second socket to it (the
 *      connection waits in the backlog), then unlinks the path.
 *   2. launch.h starts virtiofsd with --fd=LISTEN; it accepts the queued
 *      connection.
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
	const char *source;     /* the directory it serves, as it sees it
				 * (JAIL_SHARE in its jail) */
	int listen_fd;          /* from virtiofsd_sockets */
	enum virtiofsd_sandbox sandbox;
	const char *binary;     /* NULL: VIRTIOFSD_PATH */
};

/* Make the socket pair described above at tmp_path (which must not exist;
 * it is gone again on return).  Both fds O_CLOEXEC.  -1/errno on failure. */
int virtiofsd_sockets(const char *tmp_path, int *listen_fd, int *qemu_fd);

/* The argv for one virtiofsd (NULL-terminated, free with
 * virtiofsd_argv_free).  EINVAL for a source with a comma (virtiofsd
 * splits -o values on commas).  It keeps the open-file limit it is
 * started with (its jail's). */
int virtiofsd_argv(const struct virtiofsd_opts *opts, char ***argv);
void virtiofsd_argv_free(char **argv);

#endif
