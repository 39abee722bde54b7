/* Everything a VM's start uses from its directory, opened once.
 *
 * A start, and `vm check` run as root, gather a VM (gather.h): in a child
 * that has taken the identity of the VM directory's owner, the loader
 * reads the directory and every file the VM will use is opened there,
 * never following a link where none is allowed and never opening a
 * device or FIFO by surprise (type checked on an O_PATH fd first).  The
 * fds travel back to the privileged parent, which checks them again and
 * holds them until QEMU and virtiofsd get exactly these: what was checked
 * is what is used, whatever the owner changes meanwhile.
 */
#ifndef VMHOST_VMFILES_H
#define VMHOST_VMFILES_H

#include <sys/types.h>

#include "config/vmconfig.h"

struct vm_files {
	struct vm_config *cfg;
	uid_t owner;        /* the VM directory's owner: whose reach the VM has */
	gid_t group;        /* the owner's primary group */
	int kernel_fd;      /* vmlinux: a regular file, O_RDONLY */
	int *disk_fds;      /* one per cfg->disks: O_RDONLY, a regular file or
			     * an allowed block device */
	int *share_fds;     /* one per cfg->shares: the shared directory,
			     * O_RDONLY|O_DIRECTORY */
};

/* Close every fd, free cfg and the arrays; f is then empty (fds -1). */
void vm_files_release(struct vm_files *f);

#endif
