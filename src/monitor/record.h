/* Records of running VMs, STATE/run/NAME/record: what a new monitor
 * needs to take a VM over (adopt.h, handover.h).
 *
 * QEMU and its helpers are not killed when vmhostd dies (spawn.h: no
 * PDEATHSIG), and QEMU's QMP, serial and console are sockets it listens
 * on in the run dir (launch.h), so a VM can be taken over.  The record
 * (JSON) holds the boot id, QEMU's and each helper's pid with its start
 * time from /proc/PID/stat, the VM's uid, accelerator, configuration,
 * links and the engine's last view of it; it is rewritten (temp file,
 * rename) whenever one of those changes.  A VM whose record cannot be
 * written is not allowed to run: a restart could miss it.
 */
#ifndef VMHOSTD_MONITOR_RECORD_H
#define VMHOSTD_MONITOR_RECORD_H

#include <jansson.h>

#include "monitor/monitor.h"

/* What the engine gets of a run (PS_LAUNCHED, PS_ADOPT), and the core of
 * its record: name, pid, uid, accel, hotplug_ports, links, config,
 * notes. */
json_t *record_run_json(const struct mvm *vm);

/* Write vm's record.  -1 with errno. */
int record_write(struct monitor *m, struct mvm *vm);
/* Remove vm's record: its processes are reaped. */
void record_remove(const struct mvm *vm);
/* The record in run_dir (NULL if none or damaged: it is the monitor's own
 * file in a root-only directory, but it is still checked). */
json_t *record_read(const char *run_dir);
/* Fill vm's run fields (not its processes or fds) from record o; vm is
 * launched afterwards. */
void record_fill(struct monitor *m, struct mvm *vm, json_t *o);
/* Whether o was written during this boot. */
bool record_this_boot(json_t *o);
/* A pidfd for a process record entry p ({"pid", "start"}) if that
 * process still runs (same start time, checked again after pidfd_open so
 * the fd cannot name a newcomer), with its pid; -1 otherwise. */
int record_open_proc(json_t *p, pid_t *pid);

#endif
