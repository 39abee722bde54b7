/* vmhostd's monitor: the privileged parent (docs/design.md).
 *
 * It holds what needs root and nothing that parses guest input: the state
 * directory's lock, the control socket (bound here, served by the engine),
 * the link table with its bridges and taps, and for each VM the files
 * gathered from its directory and everything its run holds (processes,
 * our ends of QMP, serial and console, log pipes).  It starts the engine
 * jailed, answers the engine's requests after checking each, restarts the
 * engine when it dies and hands it every running VM again, and keeps the
 * engine's copy of the config root's VM names current (namepush.h).
 */
#ifndef VMHOSTD_MONITOR_H
#define VMHOSTD_MONITOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/loop.h"
#include "common/privdrop.h"
#include "config/gather.h"
#include "config/vmconfig.h"
#include "config/vmfiles.h"
#include "privsep/privsep.h"
#include "vmm/cgroup.h"
#include "vmm/launch.h"
#include "vmm/vmm.h"

struct addrtable;
struct mlink;
struct mload;
struct mvm;
struct namepush;

/* One process of a VM, watched through its own pidfd (a dup of the
 * run's).  proc is its entry in the run (launch.h), whose pid goes to 0
 * once it is reaped. */
struct mchild {
	struct mvm *vm;
	struct loop_source src;
	pid_t pid;
	bool ours;               /* our child (reaped with its status); an
				  * adopted one is only watched */
	struct launch_proc *proc;
	char what[64];           /* "QEMU", "virtiofsd for share TAG", "passt" */
};

/* The fds of a run that the engine gets (and gets again after a
 * restart): QMP, serial, console, qemu.log pipe, helpers' log pipe. */
enum { RUN_QMP, RUN_SERIAL, RUN_CONSOLE, RUN_QEMU_LOG, RUN_HELPER_LOG,
       RUN_FDS };

/* A VM as the monitor knows it: only while it has files held or a run. */
struct mvm {
	struct monitor *m;
	struct mvm *next;
	char name[VMCONFIG_NAME_MAX + 1];
	char *run_dir;           /* STATE/run/NAME: root's, sockets, record */

	/* Gathered for a start (PS_LOAD with keep), until launched. */
	struct vm_files files;
	bool held;

	/* The run: what launch.h started (processes, cgroup, sockets), and
	 * a watcher per process. */
	bool launched;
	bool killing;            /* PS_KILL, or QEMU exited: until all gone */
	struct vm_run run;
	struct mchild qemu;
	struct mchild *helpers;  /* the virtiofsds, then passt */
	size_t helper_count;
	int fds[RUN_FDS];
	uid_t uid;
	struct privdrop drop;    /* QEMU's and its helpers' ids (uid != 0) */

	/* Wayland (monitor/wayland.h): the run has vmhost-vsock and a host
	 * end, and its uid may connect to the compositor; the host end is
	 * started again when it ends, later each time it ends early. */
	bool wayland;
	int wl_log_fd;           /* the helpers' log pipe, for new host ends */
	struct loop_source wl_timer;
	unsigned int wl_failures;
	time_t wl_started;
	enum vmm_accel accel;
	unsigned int hotplug_ports;
	json_t *config;          /* as sent to the engine */
	json_t *links;           /* its client links: [{"provider", "id"}] */
	json_t *notes;           /* lines for its serial log (no Wayland...) */
	struct ps_note note;     /* the engine's view, for a new engine */
};

struct monitor {
	struct loop loop;
	struct loop_source signals;
	struct vmconfig_roots roots;
	const char *state_dir;
	/* How VM directories are gathered: roots, state dir, allowed block
	 * devices, host limits (config/gather.h). */
	struct gather_policy gather;
	struct mload *loads;     /* gatherings in progress */
	enum vmm_accel accel;
	const char *accel_why;
	unsigned long tsc_khz;   /* TCG: the host's TSC rate (vmm.h); 0: unknown */
	const char *qemu;        /* --qemu: the emulator; NULL: Debian's */
	const char *wayland_display; /* the compositor's socket; NULL: none */
	const char *vsock_backend;   /* vmhost-vsock's path, and it opened */
	int vsock_backend_fd;        /* O_PATH (-1 without a compositor) */
	bool use_syslog;
	uid_t uid_base;          /* QEMU of slot N runs as uid base + N */
	uid_t engine_uid;
	const char *link_prefix;
	struct cgroup_root *cgroups;  /* where VM cgroups go; NULL: none (not
				       * root) */
	char **argv;             /* for the re-exec on SIGHUP */
	char *exe_path;          /* the binary on disk, as at start-up */
	int lock_fd;

	/* The engine. */
	int exe_fd;              /* this binary, for the engine's exec */
	int control_fd;          /* the listening control socket */
	char *control_path;
	pid_t engine_pid;
	struct loop_source engine_exit;  /* its pidfd */
	struct loop_source engine;       /* the channel */
	struct loop_source restart;      /* timer: a restart after a crash */
	unsigned int engine_crashes;     /* in a row, for the back-off */
	time_t engine_started;
	bool engine_ready;               /* it said hello */
	bool engine_bye;                 /* it shut every VM down */
	bool shutting_down;
	bool force;

	struct addrtable *link_table;
	struct mlink *links;
	struct mvm *vms;
	/* The config root watched, and the engine's copy of its VM names
	 * (namepush.h). */
	struct namepush *names;
};

void monitor_quit_if_done(struct monitor *m);

#endif
