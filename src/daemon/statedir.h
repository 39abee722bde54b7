/* The daemon's state directory:
 *
 *   STATE/lock           flock()ed by the running daemon; holds its pid
 *   STATE/control        the control socket
 *   STATE/vmhostd.log    the daemon's own log when not in the foreground
 *   STATE/vms/NAME/      serial.log, qemu.log, virtiofsd.log (each capped,
 *                        with an older .1: serial.h), fs-TAG.sock,
 *                        fs-TAG/ (empty: virtiofsd's mount point),
 *                        pids while it runs (recover.h)
 */
#ifndef VMHOSTD_STATEDIR_H
#define VMHOSTD_STATEDIR_H

#include <stddef.h>

/* Create STATE and STATE/vms (0700) and lock STATE/lock; returns the lock
 * fd, or -1 with errno (EWOULDBLOCK: another daemon holds it). */
int statedir_lock(const char *state);
/* Write our pid into the lock file (after detaching). */
int statedir_write_pid(int lock_fd);
/* Create STATE/vms/NAME and return its path (caller frees). */
char *statedir_vm(const char *state, const char *name);
/* PATH/NAME, caller frees; NULL with errno on failure or when too long
 * for a unix socket path (ENAMETOOLONG). */
char *statedir_socket(const char *dir, const char *name);

#endif
