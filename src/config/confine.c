/* Share confinement by walking ".." on fds.  See confine.h. */
#include "config/confine.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int confine_id(int fd, struct confine_id *id)
{
	struct statx stx;

	/* Type, device and inode never change for an open file: no need to
	 * ask the filesystem (FUSE) for fresh attributes. */
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC,
		  STATX_TYPE | STATX_INO, &stx) < 0)
		return -1;
	id->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	id->ino = stx.stx_ino;
	return 0;
}

bool confine_same(const struct confine_id *a, const struct confine_id *b)
{
	return a->dev == b->dev && a->ino == b->ino;
}

int confine_below(int fd, const struct confine_id *top)
{
	struct confine_id cur, up;
	int dir, parent, saved, r = -1;

	dir = openat(fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	if (confine_id(dir, &cur) < 0)
		goto out;
	for (int depth = 0; depth < CONFINE_DEPTH_MAX; depth++) {
		if (confine_same(&cur, top)) {
			r = 1;
			goto out;
		}
		parent = openat(dir, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (parent < 0)
			goto out;
		close(dir);
		dir = parent;
		if (confine_id(dir, &up) < 0)
			goto out;
		/* ".." of the root is the root. */
		if (confine_same(&up, &cur)) {
			r = 0;
			goto out;
		}
		cur = up;
	}
	errno = ELOOP;
out:
	saved = errno;
	close(dir);
	errno = saved;
	return r;
}

int confine_share(int share_fd, int data_root_fd, const int *protected_fds,
		  size_t n, enum confine_verdict *verdict, size_t *which)
{
	struct confine_id share, data, prot;
	int r;

	*verdict = CONFINE_OK;
	*which = 0;
	if (confine_id(share_fd, &share) < 0 ||
	    confine_id(data_root_fd, &data) < 0)
		return -1;
	r = confine_below(share_fd, &data);
	if (r <= 0) {
		*verdict = CONFINE_OUTSIDE;
		return r;
	}
	for (size_t i = 0; i < n; i++) {
		if (protected_fds[i] < 0)
			continue;
		if (confine_id(protected_fds[i], &prot) < 0)
			return -1;
		r = confine_below(share_fd, &prot);
		if (r < 0)
			return -1;
		if (r) {
			*verdict = confine_same(&share, &prot) ? CONFINE_IS :
				   CONFINE_INSIDE;
			*which = i;
			return 0;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (protected_fds[i] < 0)
			continue;
		r = confine_below(protected_fds[i], &share);
		if (r < 0)
			return -1;
		if (r) {
			*verdict = CONFINE_CONTAINS;
			*which = i;
			return 0;
		}
	}
	return 0;
}
