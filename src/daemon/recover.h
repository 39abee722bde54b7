/* VMs that outlive their daemon.
 *
 * QEMU and virtiofsd are not killed when vmhostd dies (spawn.h: no
 * PDEATHSIG), so a VM keeps running through a daemon crash.  It cannot be
 * adopted afterwards: its QMP monitor, serial port and console were
 * socketpairs whose other ends died with the daemon.  So each running VM
 * has a record, STATE/vms/NAME/pids (boot id, then "qemu PID START",
 * "virtiofsd PID START" and "passt PID START" lines, START being the
 * process's start time in /proc/PID/stat), and the next daemon, before it
 * serves any request, stops every process whose pid and start time still
 * match: SIGTERM, then SIGKILL, through a pidfd, so a reused pid is never
 * signalled.  It then empties and removes the run's cgroup, removes stale
 * sockets and the record, and lists the VM as stopped with what it did
 * as the reason.  A VM is therefore never started twice.
 */
#ifndef VMHOSTD_RECOVER_H
#define VMHOSTD_RECOVER_H

#include "daemon/daemon.h"
#include "daemon/vmstate.h"

/* Write vm's record (atomically: temp file, rename).  -1 with errno; the
 * caller must then not let the VM run, or a restart could miss it. */
int recover_record(struct vm *vm);
/* Remove vm's record: its processes are reaped. */
void recover_forget(struct vm *vm);
/* At start-up: stop what records name, create the VMs' entries (stopped,
 * with the reason) and log each step.  Waits at most about 20 s per VM. */
void recover_orphans(struct daemon *d);

#endif
