/* The kernel's small control files (/proc/PID/uid_map, cgroupfs): each
 * written in one write(2), as the kernel takes them only whole, and read
 * whole. */
#ifndef VMHOST_KFILE_H
#define VMHOST_KFILE_H

#include <stddef.h>
#include <sys/types.h>

/* Write text to the existing file at path in one write.  -1 with errno
 * (EIO if the kernel took only part of it). */
int kfile_write(const char *path, const char *text);

/* Read the file at path into buf (at most len - 1 bytes, NUL-terminated).
 * Returns the length, or -1 with errno. */
ssize_t kfile_read(const char *path, char *buf, size_t len);

#endif
