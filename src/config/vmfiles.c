/* struct vm_files: what a gathered VM holds, and its release. */
#include "config/vmfiles.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void vm_files_init(struct vm_files *f)
{
	memset(f, 0, sizeof(*f));
	f->kernel_fd = -1;
}

static void vm_files_close(int *fds, size_t n)
{
	if (!fds)
		return;
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
}

void vm_files_release(struct vm_files *f)
{
	size_t disks = f->cfg ? f->cfg->disk_count : 0;
	size_t shares = f->cfg ? f->cfg->share_count : 0;

	if (f->kernel_fd >= 0)
		close(f->kernel_fd);
	vm_files_close(f->disk_fds, disks);
	vm_files_close(f->share_fds, shares);
	free(f->groups);
	vmconfig_free(f->cfg);
	vm_files_init(f);
}
