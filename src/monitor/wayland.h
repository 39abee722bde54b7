/* The monitor's side of Wayland (docs/wayland.md): whether a run gets
 * the vsock device and its helpers, and why not; which VM uids may
 * connect to the compositor; when a host end that ended starts again.
 *
 * vmhostd --wayland-display PATH names the compositor's socket.  A VM
 * with `wayland` gets its Wayland helpers (vmm/launch.h) when the daemon
 * has a compositor, vmhost-vsock and waypipe are there, and something
 * listens on the socket at the start; otherwise it starts without them
 * and its notes (the serial log, `vm start`, `vm info`) say why.  The
 * uids of the runs with Wayland, and only those, may connect to the
 * compositor (vmm/compositor.h): granted before a host end starts,
 * taken back when the run is gone, and at start-up from the runs of a
 * dead monitor.
 */
#ifndef VMHOSTD_MONITOR_WAYLAND_H
#define VMHOSTD_MONITOR_WAYLAND_H

#include <stdbool.h>
#include <stddef.h>

#include "monitor/monitor.h"

/* A host end that ended is started again after MWL_RESTART_MS, doubled
 * for each one in a row that ran less than MWL_STABLE_S, up to
 * MWL_RESTART_MAX_MS. */
#define MWL_RESTART_MS 500u
#define MWL_RESTART_MAX_MS 16000u
#define MWL_STABLE_S 10

/* For vm's launch (its uid picked): true with *wl filled (its
 * compositor_fd ours to close) and vm->wayland set, or false; either way
 * a note for vm->notes says which and why. */
bool mwl_prepare(struct monitor *m, struct mvm *vm, struct launch_wayland *wl);

/* For a new host end of vm: open the compositor again (it may have been
 * restarted), grant, check it listens.  0 with *wl filled, or -1 with
 * why. */
int mwl_reopen(struct monitor *m, struct mvm *vm, struct launch_wayland *wl,
	       char *why, size_t len);

/* Take back the grants of every uid whose run has no Wayland (a run
 * gone, or a dead monitor's). */
void mwl_sync(struct monitor *m);

/* The delay before the next host end of vm, counting this failure. */
unsigned int mwl_backoff(struct mvm *vm);

#endif
