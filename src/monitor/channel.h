/* The monitor's end of the channel to the engine (privsep/privsep.h):
 * sending.  The monitor never waits for the engine: a message to an
 * engine that is not there is dropped, and one that does not read is
 * killed (the monitor starts a new one, enginep.h). */
#ifndef VMHOSTD_MONITOR_CHANNEL_H
#define VMHOSTD_MONITOR_CHANNEL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "monitor/monitor.h"

/* Send o (stolen; NULL sends {}) with fds (kept). */
void engine_send(struct monitor *m, uint16_t type, uint32_t seq, json_t *o,
		 const int *fds, size_t nfds);

#endif
