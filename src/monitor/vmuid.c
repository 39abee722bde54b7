/* Per-VM uids.  See vmuid.h. */
#include "monitor/vmuid.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

/* Mark in busy (VMUID_SLOTS bits) the slots whose uid some live process
 * has: another daemon's QEMU, or anyone else using the range by mistake.
 * /proc/PID belongs to the process's effective uid. */
static void vmuid_scan(uid_t base, uint8_t *busy)
{
	struct dirent *e;
	struct stat st;
	DIR *dir = opendir("/proc");

	if (!dir)
		return;
	while ((e = readdir(dir))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9' ||
		    fstatat(dirfd(dir), e->d_name, &st, 0) < 0 ||
		    st.st_uid < base || st.st_uid - base >= VMUID_SLOTS)
			continue;
		busy[(st.st_uid - base) / 8] |= (uint8_t)(1u << ((st.st_uid - base) % 8));
	}
	closedir(dir);
}

/* Where the next search starts: allocation rotates (next-fit), so a uid
 * just given up is the last to be handed out again. */
static unsigned int vmuid_next;

int vmuid_pick(struct monitor *m, struct mvm *vm, struct privdrop *out,
	       bool *drop)
{
	static uint8_t busy[VMUID_SLOTS / 8]; /* 8 KiB: not on the stack */
	struct mvm *o;
	unsigned int slot, n;

	*drop = false;
	vm->uid = 0;
	if (!m->uid_base)
		return 0;
	memset(busy, 0, sizeof busy);
	vmuid_scan(m->uid_base, busy);
	/* A VM keeps its uid until every process of it is gone (launched
	 * stays true until then). */
	for (o = m->vms; o; o = o->next)
		if (o != vm && o->launched && o->uid >= m->uid_base &&
		    o->uid - m->uid_base < VMUID_SLOTS)
			busy[(o->uid - m->uid_base) / 8] |=
				(uint8_t)(1u << ((o->uid - m->uid_base) % 8));
	for (n = 0; n < VMUID_SLOTS; n++) {
		slot = (vmuid_next + n) % VMUID_SLOTS;
		if (!(busy[slot / 8] & (1u << (slot % 8))))
			break;
	}
	if (n == VMUID_SLOTS) {
		errno = EAGAIN;
		return -1;
	}
	if (privdrop_for_slot(m->uid_base, slot, vm->accel == VMM_ACCEL_KVM,
			      out) < 0)
		return -1;
	vmuid_next = (slot + 1) % VMUID_SLOTS;
	vm->uid = out->uid;
	*drop = true;
	return 0;
}
