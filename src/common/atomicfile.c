#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomicfile.h"

/* Make a rename in path's directory durable. */
static int atomicfile_sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd, ret, saved;

	if (!copy)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -1;
	ret = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return ret;
}

int atomicfile_write(const char *path, bool durable,
		     int (*write_fn)(FILE *f, void *arg), void *arg)
{
	char *tmp;
	FILE *f;
	int fd, saved, bad;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		goto fail;
	f = fdopen(fd, "w");
	if (!f) {
		saved = errno;
		close(fd);
		errno = saved;
		goto fail_unlink;
	}
	bad = write_fn(f, arg) < 0 || fflush(f) == EOF ||
	      (durable && fsync(fileno(f)) < 0);
	saved = errno;
	if (fclose(f) == EOF && !bad) {
		bad = 1;
		saved = errno;
	}
	errno = saved;
	if (bad || rename(tmp, path) < 0)
		goto fail_unlink;
	free(tmp);
	return durable ? atomicfile_sync_dir(path) : 0;

fail_unlink:
	saved = errno;
	unlink(tmp);
	errno = saved;
fail:
	saved = errno;
	free(tmp);
	errno = saved;
	return -1;
}
