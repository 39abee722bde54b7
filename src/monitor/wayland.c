/* The monitor's Wayland: which runs get it and why not, the compositor
 * grants, the pace of host end restarts.  See wayland.h. */
#include "monitor/wayland.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "monitor/vmuid.h"
#include "vmm/compositor.h"

/* Let exactly the uids of the runs with Wayland connect to the socket at
 * fd; probe: check that something listens. */
static int mwl_grant(struct monitor *m, int fd, bool probe, char *why,
		     size_t len)
{
	uid_t *uids;
	size_t n = 0;
	int rc;

	for (struct mvm *vm = m->vms; vm; vm = vm->next)
		n++;
	uids = calloc(n + 1, sizeof *uids);
	if (!uids) {
		snprintf(why, len, "%s: %s", m->wayland_display, strerror(errno));
		return -1;
	}
	n = 0;
	for (struct mvm *vm = m->vms; vm; vm = vm->next)
		if (vm->wayland && vm->uid)
			uids[n++] = vm->uid;
	/* A daemon that is not root runs every VM as itself: no grants. */
	rc = compositor_grant(fd, m->wayland_display, m->uid_base,
			      m->uid_base ? VMUID_SLOTS : 0, uids, n, probe,
			      why, len);
	free(uids);
	return rc;
}

int mwl_reopen(struct monitor *m, struct mvm *vm, struct launch_wayland *wl,
	       char *why, size_t len)
{
	int fd;

	*wl = (struct launch_wayland){
		.display = m->wayland_display, .compositor_fd = -1,
		.backend_fd = m->vsock_backend_fd, .log_fd = vm->wl_log_fd,
	};
	fd = compositor_open(m->wayland_display, why, len);
	if (fd < 0)
		return -1;
	if (mwl_grant(m, fd, true, why, len) < 0) {
		close(fd);
		return -1;
	}
	wl->compositor_fd = fd;
	return 0;
}

static void mwl_note(struct mvm *vm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void mwl_note(struct mvm *vm, const char *fmt, ...)
{
	char note[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(note, sizeof note, fmt, ap);
	va_end(ap);
	daemon_log("vm %s: %s", vm->name, note);
	json_array_append_new(vm->notes, json_string(note));
}

bool mwl_prepare(struct monitor *m, struct mvm *vm, struct launch_wayland *wl)
{
	static const char without[] = "the VM runs without Wayland";
	char why[768];

	vm->wayland = false;
	if (!vm->files.cfg->wayland)
		return false;
	if (!m->wayland_display) {
		mwl_note(vm, "wayland: vmhostd has no compositor (it runs without --wayland-display); %s",
			 without);
		return false;
	}
	if (access(LAUNCH_WAYPIPE_PATH, X_OK) < 0) {
		mwl_note(vm, "wayland: %s: %s (Debian package waypipe); %s",
			 LAUNCH_WAYPIPE_PATH, strerror(errno), without);
		return false;
	}
	/* Its uid among the granted ones from now on. */
	vm->wayland = true;
	if (mwl_reopen(m, vm, wl, why, sizeof why) < 0) {
		vm->wayland = false;
		mwl_sync(m);
		mwl_note(vm, "wayland: %s; %s", why, without);
		return false;
	}
	mwl_note(vm, "wayland: on the compositor at %s (guest vsock port %u, host end %s)",
		 m->wayland_display, VMM_WAYLAND_VSOCK_PORT, LAUNCH_WAYPIPE_PATH);
	return true;
}

void mwl_sync(struct monitor *m)
{
	char why[768];
	int fd;

	if (!m->wayland_display || !m->uid_base)
		return;
	/* No compositor there: nothing to take back from. */
	fd = compositor_open(m->wayland_display, why, sizeof why);
	if (fd < 0)
		return;
	if (mwl_grant(m, fd, false, why, sizeof why) < 0)
		daemon_log("wayland: updating who may connect: %s", why);
	close(fd);
}

unsigned int mwl_backoff(struct mvm *vm)
{
	unsigned int ms = MWL_RESTART_MS;

	/* One that ran long enough ends a row; retries without a host end
	 * in between (no compositor) go on counting. */
	if (vm->wl_started && time(NULL) - vm->wl_started >= MWL_STABLE_S)
		vm->wl_failures = 0;
	vm->wl_started = 0;
	for (unsigned int i = 0; i < vm->wl_failures && ms < MWL_RESTART_MAX_MS; i++)
		ms *= 2;
	vm->wl_failures++;
	return ms < MWL_RESTART_MAX_MS ? ms : MWL_RESTART_MAX_MS;
}
