/* Launching a gathered VM: everything its run needs, made, started and
 * recorded in one function that unwinds through one path on failure
 * (vmd's config_setvm and vm_start): link taps, sockets, log pipes, the
 * virtiofsds, QEMU as the VM's own uid, the adoption record. */
#ifndef VMHOSTD_MONITOR_MLAUNCH_H
#define VMHOSTD_MONITOR_MLAUNCH_H

#include <stddef.h>

#include "monitor/monitor.h"

/* Launch vm (its files held): on success its run fields are filled and
 * the files are consumed; -1 with err set, and nothing of the attempt
 * left behind.  The files are released either way. */
int mlaunch(struct monitor *m, struct mvm *vm, char *err, size_t len);

/* Connect to a running QEMU's QMP, serial and console sockets again (a
 * monitor that restarted): vm->fds[RUN_QMP..RUN_CONSOLE]. */
int mlaunch_reconnect(struct mvm *vm);

#endif
