/* Dropping root before exec.  See privdrop.h. */
#include "common/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Highest id we hand out: (uid_t)-1 means "unchanged" to setresuid. */
#define PRIVDROP_ID_MAX 0xfffffff0u

int privdrop_for_slot(uid_t base, unsigned int slot, bool kvm,
		      struct privdrop *out)
{
	struct stat st;

	if (base == 0 || (uint64_t)base + slot > PRIVDROP_ID_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	out->uid = base + slot;
	out->gid = (gid_t)(base + slot);
	out->has_extra = false;
	out->extra_gid = 0;
	if (!kvm)
		return 0;
	if (stat("/dev/kvm", &st) < 0)
		return -1;
	/* Without the device's group QEMU could not open it. */
	if ((st.st_mode & (S_IROTH | S_IWOTH)) != (S_IROTH | S_IWOTH)) {
		out->has_extra = true;
		out->extra_gid = st.st_gid;
	}
	return 0;
}

int privdrop_bounding(uint64_t keep)
{
	/* EINVAL: past the last capability this kernel knows. */
	for (int cap = 0; cap < 64; cap++)
		if (!(keep & (uint64_t)1 << cap) &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return -1;
	return 0;
}

int privdrop_identity(uid_t uid, gid_t gid, const gid_t *groups, size_t n)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	/* Groups first: after setresuid we could no longer change them. */
	if (setgroups(n, groups) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		return -1;
	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -1;
	if (r != uid || e != uid || s != uid || rg != gid || eg != gid ||
	    sg != gid || (uid != 0 && setuid(0) == 0)) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

int privdrop_apply(const struct privdrop *p)
{
	if (p->uid == 0 || p->gid == 0) {
		errno = EINVAL;
		return -1;
	}
	/* Empty the bounding set too, while we still may (CAP_SETPCAP): with
	 * no_new_privs it is belt and braces. */
	if (privdrop_bounding(0) < 0 ||
	    privdrop_identity(p->uid, p->gid, &p->extra_gid,
			      p->has_extra ? 1 : 0) < 0)
		return -1;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}
