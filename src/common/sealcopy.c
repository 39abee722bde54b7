/* Sealed memfd copies.  See sealcopy.h. */
#include "common/sealcopy.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEALCOPY_SEALS (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

bool sealcopy_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	return seals >= 0 && (seals & SEALCOPY_SEALS) == SEALCOPY_SEALS;
}

int sealcopy(int fd, const char *name, off_t max)
{
	struct stat st;
	off_t off = 0;
	ssize_t n;
	int mfd, saved;

	if (fstat(fd, &st) < 0)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	if (st.st_size > max) {
		errno = EFBIG;
		return -1;
	}
	/* Already such a copy (the gatherer makes one): nothing can change
	 * it, so it can be shared. */
	if (sealcopy_sealed(fd))
		return fcntl(fd, F_DUPFD_CLOEXEC, 3);
	mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -1;
	/* Size from fstat: a file that grows meanwhile is cut there, one that
	 * shrinks ends the copy early (sendfile returns 0). */
	while (off < st.st_size) {
		n = sendfile(mfd, fd, &off, (size_t)(st.st_size - off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
	}
	if (fcntl(mfd, F_ADD_SEALS, SEALCOPY_SEALS) < 0)
		goto fail;
	return mfd;

fail:
	saved = errno;
	close(mfd);
	errno = saved;
	return -1;
}
