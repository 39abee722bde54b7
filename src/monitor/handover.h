/* Upgrading vmhostd without stopping a VM: on SIGHUP the monitor stops
 * the engine (which loses nothing: monitor.h), writes what it holds into
 * a memfd (the lock, the control socket, and for each running VM its fds
 * and the pidfds of its processes, all kept open across exec) and
 * re-executes the vmhostd binary on disk with --handover FD.  The new
 * image takes everything back (its processes are still its children, so
 * exit statuses are not lost), reads the rest from the VMs' records
 * (record.h), and starts a new engine.  The guests notice nothing.  The
 * config root's watch is not handed over (its fd closes at exec): the new
 * image watches anew, before its engine's first list (namepush.h). */
#ifndef VMHOSTD_MONITOR_HANDOVER_H
#define VMHOSTD_MONITOR_HANDOVER_H

#include "monitor/monitor.h"

/* Re-execute path with argv (and --handover); returns only on failure,
 * -1 with errno, everything as it was (the engine to be started again). */
int handover_exec(struct monitor *m, const char *path);
/* In the new image, before the monitor's start-up: parse the handover
 * memfd fd into m (lock and control fds, m->handover); -1 with errno. */
int handover_read(struct monitor *m, int fd);
/* Take the VMs of the handover over (instead of record adoption for
 * them); the rest of the records are adopted as after a crash. */
void handover_adopt(struct monitor *m);

#endif
