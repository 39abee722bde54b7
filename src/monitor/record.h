/* VMs that outlive their monitor.
 *
 * QEMU and its helpers are not killed when vmhostd dies (spawn.h: no
 * PDEATHSIG), and QEMU's QMP, serial and console are sockets it listens
 * on in STATE/run/NAME, so a new monitor can take a VM over.  Each running
 * VM has a record there, STATE/run/NAME/record (JSON: boot id, QEMU's and
 * each helper's pid with its start time from /proc/PID/stat, the VM's uid,
 * accelerator, configuration, links and the engine's last view of it),
 * rewritten whenever one of those changes.
 *
 * At start-up, before it serves anything, the monitor reads every record.
 * A VM whose QEMU still runs (same boot, pid and start time, checked again
 * after pidfd_open so a reused pid is never taken) is adopted: watched
 * through pidfds, its sockets connected again, handed to the engine.  A
 * VM whose QEMU is gone has its helpers stopped and its leftovers removed.
 * Either way a VM never runs twice.
 */
#ifndef VMHOSTD_MONITOR_RECORD_H
#define VMHOSTD_MONITOR_RECORD_H

#include "monitor/monitor.h"

/* Write vm's record (temp file, rename).  -1 with errno; a VM without a
 * record must not run, or a restart could miss it. */
int record_write(struct monitor *m, struct mvm *vm);
/* Remove vm's record: its processes are reaped. */
void record_remove(struct mvm *vm);
/* A launched VM made from name's record, its processes and fds not yet
 * attached (handover.c); NULL if it has no valid record. */
struct mvm *record_load(struct monitor *m, const char *name);
/* At start-up: adopt or clean up what every record names. */
void record_adopt_all(struct monitor *m);
/* /proc/PID/stat's start time (clock ticks after boot): -1 with errno. */
int record_start_time(pid_t pid, unsigned long long *start);

#endif
