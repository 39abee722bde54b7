/* vmhostd's engine: the unprivileged process that serves the control
 * socket and supervises the VMs the monitor launched.  The monitor starts
 * it (and starts it again if it dies) already jailed: its own uid, no
 * capabilities, no_new_privs, a mount namespace holding only the VMs' log
 * directories.  It adds its seccomp filter before reading any input.
 *
 *   vmhostd --engine --state-dir DIR --config-root DIR --accel NAME
 *           --accel-why TEXT --link-prefix P --client-uid UID [--syslog]
 *           [--wayland-why TEXT]
 *
 * fd 3 is the channel to the monitor, fd 4 the control socket.
 */
#include "engine/main.h"

#include "engine/engine.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/engine.h"
#include "engine/backend.h"
#include "engine/request.h"
#include "engine/allowlist.h"

#define ENGINE_MON_FD 3
#define ENGINE_CONTROL_FD 4

static int engine_args(struct engine *e, int argc, char **argv, uid_t *client,
		       bool *use_syslog, const char **prefix)
{
	static const struct option opts[] = {
		{ "engine", no_argument, NULL, 'E' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "config-root", required_argument, NULL, 'c' },
		{ "accel", required_argument, NULL, 'a' },
		{ "accel-why", required_argument, NULL, 'w' },
		{ "link-prefix", required_argument, NULL, 'l' },
		{ "client-uid", required_argument, NULL, 'u' },
		{ "syslog", no_argument, NULL, 'S' },
		{ "wayland-why", required_argument, NULL, 'W' },
		{ 0 },
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'E': break;
		case 's': e->state_dir = optarg; break;
		case 'c': e->config_root = optarg; break;
		case 'a': e->accel = optarg; break;
		case 'w': e->accel_why = optarg; break;
		case 'l': *prefix = optarg; break;
		case 'u': *client = (uid_t)strtoul(optarg, NULL, 10); break;
		case 'S': *use_syslog = true; break;
		case 'W': e->wayland_why = optarg; break;
		default: return -1;
		}
	}
	return e->state_dir && e->config_root && e->accel && e->accel_why &&
	       *prefix ? 0 : -1;
}

int engine_main(int argc, char **argv)
{
	static struct engine e;
	const char *prefix = NULL;
	bool use_syslog = false;
	uid_t client = 0;

	log_role("engine");
	prctl(PR_SET_NAME, "vmhostd: engine");
	if (engine_args(&e, argc, argv, &client, &use_syslog, &prefix) < 0) {
		daemon_log("bad arguments from the monitor");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Read what the jail and the filter will not let it read later. */
	tzset();
	json_object_seed(0);
	if (use_syslog)
		openlog("vmhostd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	if (loop_init(&e.loop) < 0) {
		daemon_log("event loop: %s", strerror(errno));
		return 1;
	}
	vms_init(&e.vms, &e.loop, &mon_backend, &e, e.state_dir, use_syslog);
	links_init(&e.links, &e.loop, prefix, &mon_links_ops, &e);
	if (control_init(&e.control, &e.loop, ENGINE_CONTROL_FD, client,
			 request_handle, &e) < 0 ||
	    mon_open(&e.mon, &e.loop, ENGINE_MON_FD, backend_dispatch, &e) < 0) {
		daemon_log("setting up: %s", strerror(errno));
		return 1;
	}
	if (engine_seccomp() < 0) {
		daemon_log("seccomp: %s", strerror(errno));
		return 1;
	}
	/* The monitor answers with every VM that runs, then PS_READY. */
	if (mon_send(&e.mon, PS_HELLO, NULL, 0) < 0) {
		daemon_log("monitor: %s", strerror(errno));
		return 1;
	}
	if (loop_run(&e.loop) < 0)
		daemon_log("event loop: %s", strerror(errno));
	control_fini(&e.control);
	vms_free(&e.vms);
	links_fini(&e.links);
	mon_close(&e.mon);
	loop_fini(&e.loop);
	return 0;
}
