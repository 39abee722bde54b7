/* The daemon's state directory:
 *
 *   STATE/lock           flock()ed by the running monitor; holds its pid
 *   STATE/control        the control socket (the monitor binds it, the
 *                        engine serves it)
 *   STATE/links          the link table (net/addrtable.h)
 *   STATE/vmhostd.log    the daemon's own log when not in the foreground
 *   STATE/vms/NAME/      the engine's (its uid, 0700): serial.log,
 *                        qemu.log, virtiofsd.log (each capped, with an
 *                        older .1)
 *   STATE/run/NAME/      the monitor's (root, 0700), while the VM runs:
 *                        its QMP, serial and console sockets, virtiofsd
 *                        sockets and mount points, the record a restarted
 *                        monitor adopts it from (record.h)
 *
 * STATE is root's, 0700: nobody else reaches into it.
 */
#ifndef VMHOSTD_STATEDIR_H
#define VMHOSTD_STATEDIR_H

#include <stddef.h>
#include <sys/types.h>

/* Create STATE, STATE/vms and STATE/run and lock STATE/lock; returns the
 * lock fd, or -1 with errno (EWOULDBLOCK: another daemon holds it). */
int statedir_lock(const char *state);
/* Write our pid into the lock file (after detaching). */
int statedir_write_pid(int lock_fd);
/* Create STATE/vms/NAME for the engine (owned by engine_uid, 0700; an
 * existing one is handed over) and return its path (caller frees). */
char *statedir_vm(const char *state, const char *name, uid_t engine_uid);
/* Hand every STATE/vms/NAME and its files to engine_uid. */
void statedir_chown_vms(const char *state, uid_t engine_uid);
/* Create STATE/run/NAME (root, 0700) and return its path. */
char *statedir_run(const char *state, const char *name);
/* Remove the sockets and empty directories a run left in its run dir. */
void statedir_clean_run(const char *run_dir);
/* PATH/NAME, caller frees; NULL with errno on failure or when too long
 * for a unix socket path (ENAMETOOLONG). */
char *statedir_socket(const char *dir, const char *name);
/* Bind and listen on the control socket STATE/control (0600, no window
 * in which another user could connect); the fd, O_CLOEXEC|O_NONBLOCK. */
int statedir_control(const char *path);

#endif
