/* The engine process as the monitor sees it: started jailed, restarted
 * when it dies (handed every running VM again), and its requests, each
 * checked (ps_check_request) before anything acts on it.  An engine that
 * sends something malformed is killed and replaced. */
#ifndef VMHOSTD_MONITOR_ENGINEP_H
#define VMHOSTD_MONITOR_ENGINEP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "monitor/monitor.h"

/* Start the engine: fork, jail (its uid, no capabilities, no_new_privs,
 * a mount namespace with only STATE/vms), exec.  -1 with errno. */
int enginep_start(struct monitor *m);
/* Handle one request (validated first), as the channel does: for the
 * fuzz target. */
void enginep_request(struct monitor *m, const struct ps_hdr *hdr,
		     const void *payload, size_t len);
/* Tell the engine to stop every VM (force: kill) and then leave. */
void enginep_shutdown(struct monitor *m, bool force);
/* Kill the engine (SIGKILL) without a restart: exit, re-exec. */
void enginep_stop(struct monitor *m);

#endif
