/* Gathering a VM's directory for the monitor: its configuration and an fd
 * of every file it uses (config/vmfiles.h). */
#ifndef VMHOSTD_MONITOR_MGATHER_H
#define VMHOSTD_MONITOR_MGATHER_H

#include <stdbool.h>

#include "monitor/monitor.h"

/* Load name and open its files into *files; problems go to diags.
 * -1 when the VM is invalid. */
int mgather(struct monitor *m, const char *name, bool open_files,
	    struct vm_files *files, struct diags *diags);

#endif
