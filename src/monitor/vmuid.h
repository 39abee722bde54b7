/* Which unprivileged uid runs a VM's QEMU.
 *
 * Each active VM holds a slot that neither another of our VMs holds (one
 * being torn down still holds its own until every process of its run is
 * reaped and its cgroup removed) nor any live process uses (another
 * daemon's QEMU, or a process of an earlier run that would not die); its
 * QEMU and passt run as uid and gid uid_base + slot (common/privdrop.h),
 * so no two VMs whose processes live share a uid and none can signal,
 * ptrace or open another's files or /proc entries.  Slots are taken in
 * turn (next-fit from the last one handed out), not lowest-first, so a
 * uid just freed is the last to come back.  The ids need no /etc/passwd entry: nothing
 * looks them up.
 */
#ifndef VMHOSTD_VMUID_H
#define VMHOSTD_VMUID_H

#include "common/privdrop.h"
#include "monitor/monitor.h"

#define VMUID_BASE_DEFAULT 1900000u
#define VMUID_SLOTS 65536u

/* Fill out for vm (and set vm->uid).  Returns 0 with vm->uid 0 and out
 * untouched (*drop false) when the daemon runs without uid_base.  -1 with
 * errno: EAGAIN when every slot is taken, else privdrop_for_slot's. */
int vmuid_pick(struct monitor *m, struct mvm *vm, struct privdrop *out,
	       bool *drop);

#endif
