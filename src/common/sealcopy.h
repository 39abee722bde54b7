/* A private, read-only copy of a file for a process that must not see the
 * original: the kernel a VM boots.
 *
 * QEMU opens its -kernel by path, and after dropping root (privdrop.h) it
 * could not reopen a root-only file even through /proc/self/fd/N.  A memfd
 * copy sealed against writes is readable by any uid through that link,
 * cannot change under QEMU (the VM directory's owner can rewrite vmlinux
 * at any time), and names nothing on the host's filesystems.
 */
#ifndef VMHOST_SEALCOPY_H
#define VMHOST_SEALCOPY_H

#include <stdbool.h>
#include <sys/types.h>

/* Copy the regular file open at fd (from offset 0) into a new memfd named
 * name, seal it (no write, grow, shrink or new seals) and return it,
 * O_CLOEXEC; fd already such a sealed memfd is returned dup'ed.  -1 with errno: EINVAL for a non-regular file, EFBIG if it is
 * larger than max bytes, or what the copy met. */
int sealcopy(int fd, const char *name, off_t max);

/* Whether fd is a memfd sealed as sealcopy seals: nobody can change it. */
bool sealcopy_sealed(int fd);

#endif
