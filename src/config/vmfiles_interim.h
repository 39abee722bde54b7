/* The interim opener of struct vm_files (vmfiles.h), until the
 * owner-identity gatherer lands and replaces it (then this file goes).
 *
 * It opens, as the caller, by the paths the loader just checked, what the
 * daemon opened before: the kernel and each disk without blocking and
 * checked on the fd (a regular file; a block device for disks), each
 * share's resolved directory checked to be still that path (no component
 * swapped for a link since).  The owner is the VM directory's.
 */
#ifndef VMHOST_VMFILES_INTERIM_H
#define VMHOST_VMFILES_INTERIM_H

#include <stddef.h>

#include "config/vmfiles.h"

/* Fill f for cfg (f->cfg = cfg: vm_files_release would free it, so a
 * caller that keeps cfg closes f with vm_files_interim_close instead).
 * -1 with errno and err set to "start failed: PATH: problem"; every fd
 * is closed then, and cfg is still the caller's. */
int vm_files_interim_open(struct vm_config *cfg, struct vm_files *f,
			  char *err, size_t len);
/* Close f's fds and free its arrays, but not f->cfg. */
void vm_files_interim_close(struct vm_files *f);

#endif
