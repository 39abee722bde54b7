/* Where a shared directory leads, judged on open directory fds.
 *
 * A share must lie inside the data root and must neither be, lie inside,
 * nor contain a protected directory (the config root, which holds every
 * VM's kernel, disks and settings, and vmhostd's state directory).  The
 * check walks ".." from an fd up to the root and compares each step's
 * device and inode, so no path is resolved again and a link swapped
 * meanwhile changes nothing.  The walk never reads a file and stats with
 * AT_STATX_DONT_SYNC, so a directory on a FUSE or network filesystem its
 * owner controls cannot make it wait on that filesystem.
 *
 * Identity is by inode: the same directory bind-mounted elsewhere is the
 * same directory.  The verdict holds while nobody who could not be
 * trusted with it moves directories above the config root or the state
 * directory (both are root's).
 */
#ifndef VMHOST_CONFINE_H
#define VMHOST_CONFINE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CONFINE_DEPTH_MAX 4096 /* ".." steps before giving up (ELOOP) */

struct confine_id {
	dev_t dev;
	ino_t ino;
};

/* Device and inode of what fd (any fd, O_PATH too) refers to. */
int confine_id(int fd, struct confine_id *id);
bool confine_same(const struct confine_id *a, const struct confine_id *b);

/* 1 if the directory open at fd is top or lies below it, 0 if not, -1
 * with errno (ELOOP past CONFINE_DEPTH_MAX steps, or what openat/statx
 * met).  A directory removed since it was opened is judged where it was. */
int confine_below(int fd, const struct confine_id *top);

enum confine_verdict {
	CONFINE_OK,
	CONFINE_OUTSIDE,   /* not inside the data root */
	CONFINE_IS,        /* is protected[*which] */
	CONFINE_INSIDE,    /* lies below protected[*which] */
	CONFINE_CONTAINS,  /* has protected[*which] below it */
};

/* Judge the share open at share_fd against the data root and n protected
 * directories (fds; -1 entries are skipped).  *which is set for IS,
 * INSIDE and CONTAINS.  -1 with errno when a walk fails. */
int confine_share(int share_fd, int data_root_fd, const int *protected_fds,
		  size_t n, enum confine_verdict *verdict, size_t *which);

#endif
