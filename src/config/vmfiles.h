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

/* Larger is no kernel (a debug vmlinux is a few hundred MiB). */
#define VMFILES_KERNEL_MAX ((off_t)1 << 30)

struct vm_files {
	struct vm_config *cfg;
	uid_t owner;        /* whose reach the files were opened with: the VM
			     * directory's owner (the caller's own uid when
			     * the caller is not root) */
	gid_t group;        /* and that identity's gid */
	gid_t *groups;      /* and its supplementary groups */
	size_t group_count;
	int kernel_fd;      /* vmlinux: a memfd copy sealed against any
			     * change (common/sealcopy.h), O_RDONLY; with
			     * gather_policy.check_only the file itself */
	int *disk_fds;      /* one per cfg->disks: O_RDONLY, a regular file or
			     * an allowed block device */
	int *share_fds;     /* one per cfg->shares: the shared directory,
			     * O_RDONLY|O_DIRECTORY */
};

/* Empty: no config, every fd -1. */
void vm_files_init(struct vm_files *f);
/* Close every fd, free cfg and the arrays; f is then empty (fds -1). */
void vm_files_release(struct vm_files *f);

#endif
