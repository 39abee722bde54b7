/* Replacing a small state file so that readers see the old content or the
 * new, never a mix: write PATH.tmp, then rename it over PATH.  Used for the
 * link table (which must survive a power loss) and the run records. */
#ifndef VMHOST_ATOMICFILE_H
#define VMHOST_ATOMICFILE_H

#include <stdbool.h>
#include <stdio.h>

/* write_fn fills f and returns 0, or -1 with errno set.  durable: fsync
 * the file before the rename and the directory after it.  On failure
 * (including a full disk, seen when the buffer is flushed) returns -1 with
 * errno set, PATH is untouched and PATH.tmp removed.  PATH.tmp is opened
 * O_NOFOLLOW, mode 0600; one left by a crash is overwritten. */
int atomicfile_write(const char *path, bool durable,
		     int (*write_fn)(FILE *f, void *arg), void *arg);

#endif
