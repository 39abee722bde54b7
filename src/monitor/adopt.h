/* Taking over the VMs a dead monitor left running (record.h).
 *
 * At start-up, before anything is served, every record is read.  A VM
 * whose QEMU still runs (same boot, pid and start time) is adopted: its
 * processes watched through pidfds (not our children: their exit status
 * is unknown), its cgroup opened again, its QMP, serial and console
 * sockets connected again, its links kept; the engine gets it like any
 * other run.  A VM whose QEMU is gone has its cgroup emptied and removed
 * (the helpers with it) and its leftovers cleaned.  A VM that is found
 * but cannot be reached is killed: it may not run unsupervised.  Either
 * way a VM never runs twice.
 */
#ifndef VMHOSTD_MONITOR_ADOPT_H
#define VMHOSTD_MONITOR_ADOPT_H

#include "monitor/monitor.h"

void adopt_all(struct monitor *m);

#endif
