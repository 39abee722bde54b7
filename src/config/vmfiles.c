/* Releasing what a gathering opened.  See vmfiles.h. */
#include "config/vmfiles.h"

#include <stdlib.h>
#include <unistd.h>

static void vm_files_close(int *fds, size_t n)
{
	for (size_t i = 0; fds && i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

void vm_files_release(struct vm_files *f)
{
	size_t disks = f->cfg ? f->cfg->disk_count : 0;
	size_t shares = f->cfg ? f->cfg->share_count : 0;

	if (f->kernel_fd >= 0)
		close(f->kernel_fd);
	vm_files_close(f->disk_fds, disks);
	vm_files_close(f->share_fds, shares);
	free(f->disk_fds);
	free(f->share_fds);
	vmconfig_free(f->cfg);
	*f = (struct vm_files){ .kernel_fd = -1 };
}
