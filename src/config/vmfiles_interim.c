/* Opening a VM's files as the caller, by checked path: the interim
 * opener.  See vmfiles_interim.h. */
#include "config/vmfiles_interim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void vm_files_interim_close(struct vm_files *f)
{
	size_t disks = f->cfg ? f->cfg->disk_count : 0;
	size_t shares = f->cfg ? f->cfg->share_count : 0;

	if (f->kernel_fd >= 0)
		close(f->kernel_fd);
	for (size_t i = 0; f->disk_fds && i < disks; i++)
		if (f->disk_fds[i] >= 0)
			close(f->disk_fds[i]);
	for (size_t i = 0; f->share_fds && i < shares; i++)
		if (f->share_fds[i] >= 0)
			close(f->share_fds[i]);
	free(f->disk_fds);
	free(f->share_fds);
	*f = (struct vm_files){ .cfg = f->cfg, .kernel_fd = -1 };
}

void vm_files_release(struct vm_files *f)
{
	vm_files_interim_close(f);
	vmconfig_free(f->cfg);
	f->cfg = NULL;
}

/* A file the loader just checked: it may have been swapped since (for a
 * FIFO, which would block, or a device), so the open never blocks and
 * the fd must still be a regular file (or a block device, for disks). */
static int interim_open_file(const char *path, const char *relpath,
			     bool blk_ok, char *err, size_t len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, len, "start failed: %s: %s", relpath,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 ||
	    !(S_ISREG(st.st_mode) || (blk_ok && S_ISBLK(st.st_mode)))) {
		snprintf(err, len, "start failed: %s: changed since it was checked: no longer a regular file%s",
			 relpath, blk_ok ? " or block device" : "");
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

/* The share's resolved directory, and still that path: the fd's own
 * name must be dir (no component swapped for a link since). */
static int interim_open_share(const struct vm_share *sh, char *err, size_t len)
{
	char link[64], got[PATH_MAX];
	ssize_t n;
	int fd = open(sh->host_dir, O_RDONLY | O_DIRECTORY | O_NOCTTY |
		      O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, len, "start failed: shared-dirs/%s: %s: %s",
			 sh->tag, sh->host_dir, strerror(errno));
		return -1;
	}
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, got, sizeof got);
	if (n < 0 || (size_t)n != strlen(sh->host_dir) ||
	    memcmp(got, sh->host_dir, (size_t)n)) {
		snprintf(err, len, "start failed: shared-dirs/%s: %s changed since it was checked",
			 sh->tag, sh->host_dir);
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

static void interim_owner(struct vm_files *f, const struct stat *dir)
{
	struct passwd pw, *found = NULL;
	char buf[4096];

	f->owner = dir->st_uid;
	f->group = dir->st_gid;
	if (getpwuid_r(dir->st_uid, &pw, buf, sizeof buf, &found) == 0 && found)
		f->group = pw.pw_gid;
}

int vm_files_interim_open(struct vm_config *cfg, struct vm_files *f,
			  char *err, size_t len)
{
	struct stat st;
	int saved;

	*f = (struct vm_files){ .cfg = cfg, .kernel_fd = -1 };
	f->disk_fds = calloc(cfg->disk_count + 1, sizeof *f->disk_fds);
	f->share_fds = calloc(cfg->share_count + 1, sizeof *f->share_fds);
	if (!f->disk_fds || !f->share_fds) {
		snprintf(err, len, "start failed: %s", strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < cfg->disk_count; i++)
		f->disk_fds[i] = -1;
	for (size_t i = 0; i < cfg->share_count; i++)
		f->share_fds[i] = -1;
	if (stat(cfg->dir, &st) < 0) {
		snprintf(err, len, "start failed: .: %s", strerror(errno));
		goto fail;
	}
	interim_owner(f, &st);
	f->kernel_fd = interim_open_file(cfg->kernel, "vmlinux", false, err, len);
	if (f->kernel_fd < 0)
		goto fail;
	for (size_t i = 0; i < cfg->disk_count; i++) {
		f->disk_fds[i] = interim_open_file(cfg->disks[i].path,
						   cfg->disks[i].relpath, true,
						   err, len);
		if (f->disk_fds[i] < 0)
			goto fail;
	}
	for (size_t i = 0; i < cfg->share_count; i++) {
		f->share_fds[i] = interim_open_share(&cfg->shares[i], err, len);
		if (f->share_fds[i] < 0)
			goto fail;
	}
	return 0;
fail:
	saved = errno;
	vm_files_interim_close(f);
	errno = saved;
	return -1;
}
