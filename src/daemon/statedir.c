#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/statedir.h"

static int statedir_mkdir(const char *path)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int statedir_lock(const char *state)
{
	char *path;
	int fd, e;

	if (statedir_mkdir(state) < 0)
		return -1;
	if (asprintf(&path, "%s/vms", state) < 0)
		return -1;
	if (statedir_mkdir(path) < 0)
		goto fail_path;
	free(path);
	if (asprintf(&path, "%s/lock", state) < 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto fail_path;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		e = errno;
		close(fd);
		errno = e;
		goto fail_path;
	}
	free(path);
	return fd;

fail_path:
	e = errno;
	free(path);
	errno = e;
	return -1;
}

char *statedir_vm(const char *state, const char *name)
{
	char *path;

	if (asprintf(&path, "%s/vms/%s", state, name) < 0)
		return NULL;
	if (statedir_mkdir(path) < 0) {
		free(path);
		return NULL;
	}
	return path;
}

char *statedir_socket(const char *dir, const char *name)
{
	struct sockaddr_un sun;
	char *path;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return NULL;
	if (strlen(path) >= sizeof sun.sun_path) {
		free(path);
		errno = ENAMETOOLONG;
		return NULL;
	}
	return path;
}

int statedir_write_pid(int lock_fd)
{
	if (ftruncate(lock_fd, 0) < 0)
		return -1;
	return dprintf(lock_fd, "%ld\n", (long)getpid()) < 0 ? -1 : 0;
}
