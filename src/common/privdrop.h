/* Dropping root for a helper process (QEMU) between fork and exec.
 *
 * The target is one uid and one gid with no supplementary groups but an
 * optional single extra one (the group of /dev/kvm when the device is not
 * world-accessible), and no way back: the saved ids change too, which
 * clears every capability, and no_new_privs stops set-id binaries and file
 * capabilities from giving any back after exec.
 */
#ifndef VMHOST_PRIVDROP_H
#define VMHOST_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct privdrop {
	uid_t uid;
	gid_t gid;
	bool has_extra;     /* extra_gid is a supplementary group */
	gid_t extra_gid;
};

/* uid and gid base + slot, plus the group that opens /dev/kvm if kvm is
 * set and the device is not open to others.  -1 with errno EOVERFLOW when
 * base + slot leaves the uid range, or stat's errno for /dev/kvm. */
int privdrop_for_slot(uid_t base, unsigned int slot, bool kvm,
		      struct privdrop *out);

/* Drop from the capability bounding set every capability whose bit
 * (1 << CAP_X) is not in keep; needs CAP_SETPCAP.  Async-signal-safe.
 * -1 with errno. */
int privdrop_bounding(uint64_t keep);

/* Take uid and gid (real, effective and saved) and exactly the n
 * supplementary groups, then check it took: -1 with errno EPERM if any id
 * differs or, for uid != 0, root could be regained.  Dropping from root to
 * another uid clears every capability.  Async-signal-safe.  -1 with errno. */
int privdrop_identity(uid_t uid, gid_t gid, const gid_t *groups, size_t n);

/* Become p for good: setgroups, setresgid, setresuid, then no_new_privs.
 * Only async-signal-safe calls: runs in a forked child.  -1 with errno;
 * also EPERM if any id could still be regained. */
int privdrop_apply(const struct privdrop *p);

#endif
