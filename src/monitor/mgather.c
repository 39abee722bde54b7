/* Gathering a VM's directory.  See mgather.h.
 *
 * For now the monitor loads the directory itself and opens each file
 * without blocking, checking its type on the open fd; the owner-identity
 * gatherer (config/gather.h) replaces this. */
#include "monitor/mgather.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/virtiofsd.h"

static int mgather_open(const char *path, bool blk_ok)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 ||
	    !(S_ISREG(st.st_mode) || (blk_ok && S_ISBLK(st.st_mode)))) {
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

int mgather(struct monitor *m, const char *name, bool open_files,
	    struct vm_files *f, struct diags *diags)
{
	struct vm_config *cfg;
	size_t i;

	*f = (struct vm_files){ .kernel_fd = -1 };
	if (vmconfig_load(&m->roots, name, &cfg, diags) < 0)
		return -1;
	f->cfg = cfg;
	if (!open_files)
		return 0;
	f->disk_fds = calloc(cfg->disk_count + 1, sizeof *f->disk_fds);
	f->share_fds = calloc(cfg->share_count + 1, sizeof *f->share_fds);
	if (!f->disk_fds || !f->share_fds)
		goto fail_errno;
	for (i = 0; i < cfg->disk_count; i++)
		f->disk_fds[i] = -1;
	for (i = 0; i < cfg->share_count; i++)
		f->share_fds[i] = -1;
	f->kernel_fd = mgather_open(cfg->kernel, false);
	if (f->kernel_fd < 0) {
		diags_add(diags, DIAG_ERROR, name, "vmlinux", "%s",
			  errno == ESTALE ? "changed since it was checked: no longer a regular file" :
			  strerror(errno));
		goto fail;
	}
	for (i = 0; i < cfg->disk_count; i++) {
		f->disk_fds[i] = mgather_open(cfg->disks[i].path, true);
		if (f->disk_fds[i] < 0) {
			diags_add(diags, DIAG_ERROR, name, cfg->disks[i].relpath,
				  "%s", errno == ESTALE ? "changed since it was checked: no longer a regular file or block device" :
				  strerror(errno));
			goto fail;
		}
	}
	for (i = 0; i < cfg->share_count; i++) {
		f->share_fds[i] = virtiofsd_open_source(cfg->shares[i].host_dir);
		if (f->share_fds[i] < 0) {
			diags_add(diags, DIAG_ERROR, name, "shared-dirs", "%s: %s",
				  cfg->shares[i].tag, errno == ESTALE ?
				  "changed since it was checked" : strerror(errno));
			goto fail;
		}
	}
	return 0;

fail_errno:
	diags_add(diags, DIAG_ERROR, name, ".", "%s", strerror(errno));
fail:
	vm_files_release(f);
	return -1;
}
