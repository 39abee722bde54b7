/* The state directory's layout, lock and sockets.  See statedir.h. */
#include "monitor/statedir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int statedir_mkdir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int statedir_sub(const char *state, const char *sub, mode_t mode)
{
	char *path;
	int r;

	if (asprintf(&path, "%s/%s", state, sub) < 0)
		return -1;
	r = statedir_mkdir(path, mode);
	free(path);
	return r;
}

int statedir_lock(const char *state)
{
	char *path;
	int fd, e;

	/* vms/ is searchable: the engine, another uid, reaches its own
	 * directories in it (through a bind mount; STATE stays 0700). */
	if (statedir_mkdir(state, 0700) < 0 ||
	    statedir_sub(state, "vms", 0711) < 0 ||
	    statedir_sub(state, "run", 0700) < 0)
		return -1;
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

/* dir and the files in it (not below) belong to uid. */
static void statedir_chown_dir(int dirfd, uid_t uid)
{
	struct dirent *e;
	DIR *d;
	int fd = dup(dirfd);

	if (fchown(dirfd, uid, uid) < 0 || fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			(void)!fchownat(dirfd, e->d_name, uid, uid,
					AT_SYMLINK_NOFOLLOW);
	closedir(d);
}

char *statedir_vm(const char *state, const char *name, uid_t engine_uid)
{
	char *path;
	int fd;

	if (asprintf(&path, "%s/vms/%s", state, name) < 0)
		return NULL;
	if (statedir_mkdir(path, 0700) < 0)
		goto fail;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	statedir_chown_dir(fd, engine_uid);
	close(fd);
	return path;
fail:
	free(path);
	return NULL;
}

void statedir_chown_vms(const char *state, uid_t engine_uid)
{
	struct dirent *e;
	char *path;
	DIR *d;
	int fd;

	if (asprintf(&path, "%s/vms", state) < 0)
		return;
	d = opendir(path);
	free(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		statedir_chown_dir(fd, engine_uid);
		close(fd);
	}
	closedir(d);
}

char *statedir_run(const char *state, const char *name)
{
	char *path;

	if (asprintf(&path, "%s/run/%s", state, name) < 0)
		return NULL;
	if (statedir_mkdir(path, 0700) < 0) {
		free(path);
		return NULL;
	}
	return path;
}

void statedir_clean_run(const char *run_dir)
{
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(run_dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' ||
		    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISSOCK(st.st_mode))
			unlinkat(dirfd(d), e->d_name, 0);
		else if (S_ISDIR(st.st_mode))
			unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
	}
	closedir(d);
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

int statedir_control(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t old;
	int fd, r, e;

	if (strlen(path) >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* The state dir lock is held: a socket left here is stale. */
	unlink(path);
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (r < 0 || chmod(path, 0600) < 0 || listen(fd, 64) < 0) {
		e = errno;
		close(fd);
		unlink(path);
		errno = e;
		return -1;
	}
	return fd;
}

int statedir_write_pid(int lock_fd)
{
	if (ftruncate(lock_fd, 0) < 0)
		return -1;
	return dprintf(lock_fd, "%ld\n", (long)getpid()) < 0 ? -1 : 0;
}
