/* A VM in the engine: its record and its state machine.
 *
 * One table, vm_table in vm.c, says for every state and event what
 * happens and which state follows, in the manner of s6-supervise:
 *
 *   stopped/failed --start--> loading --loaded--> waiting --providers up-->
 *   launching --launched--> booting --QMP reports running--> running
 *   running --stop--> stopping --QEMU exited--> down --gone--> stopped
 *
 * and every failure, cancel and deadline goes to `down` (the monitor
 * kills what runs) or, before anything ran, straight to a settled state.
 * `down` waits for the monitor to report that nothing of the run is
 * left; only then does the VM settle, so a VM can never start twice.
 *
 * Events are handled one at a time: one raised while another is being
 * handled (a provider's start failing its clients, say) waits in a queue,
 * so no handler ever runs inside another.  Everything one launch holds on
 * the engine's side is in struct vm_session, freed in one place.
 */
#ifndef VMHOSTD_ENGINE_VM_H
#define VMHOSTD_ENGINE_VM_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/buf.h"
#include "common/loop.h"
#include "common/trace.h"
#include "config/vmconfig.h"
#include "engine/console.h"
#include "engine/control.h"
#include "engine/qmpsession.h"
#include "engine/serial.h"

#define VM_WAITERS_MAX 16
#define VM_FOLLOWERS_MAX 16
#define VM_START_TIMEOUT_MS 60000
#define VM_STOP_TIMEOUT_S 30
#define VM_REASON_SIZE 512

enum vm_state {
	VM_STOPPED,    /* settled: never ran, powered off, or stopped */
	VM_FAILED,     /* settled: a start or a run failed; reason says why */
	VM_LOADING,    /* the monitor gathers the VM's directory */
	VM_WAITING,    /* its providers start first: a count of those left */
	VM_LAUNCHING,  /* the monitor starts QEMU and its helpers */
	VM_BOOTING,    /* QEMU runs; QMP handshake until it reports running */
	VM_RUNNING,
	VM_STOPPING,   /* ACPI power button pressed; a deadline is armed */
	VM_DOWN,       /* killed or exited: until the monitor reports every
			* process of the run gone, then it settles */
	VM_STATE_COUNT
};

enum vm_event {
	EV_START,          /* a request (or a client VM needing it) */
	EV_STOP,           /* a request: ACPI power off, timeout */
	EV_FORCE,          /* a request: kill */
	EV_LOADED,         /* the monitor gathered a valid directory */
	EV_LOAD_FAILED,    /* ... or not: diagnostics */
	EV_PROVIDERS_UP,   /* the last provider it waited for runs */
	EV_PROVIDER_FAILED,
	EV_LAUNCHED,       /* QEMU and helpers run; their fds came along */
	EV_LAUNCH_FAILED,
	EV_QMP_UP,         /* QMP handshake done, the guest runs */
	EV_QMP_FAILED,
	EV_DEADLINE,       /* the start or stop timer fired */
	EV_QEMU_EXITED,
	EV_HELPER_EXITED,  /* a virtiofsd (or other helper) of a live VM */
	EV_GONE,           /* the monitor: nothing of the run is left */
	EV_COUNT
};

/* One event with what it carries.  Pointers are owned by the event
 * until it is handled (vm_event takes them). */
struct vm_ev {
	enum vm_event type;
	struct client *c;         /* START, STOP, FORCE: who asked (or NULL) */
	unsigned int timeout_s;   /* STOP */
	bool clean;               /* QEMU_EXITED, HELPER_EXITED: exit 0 */
	char reason[VM_REASON_SIZE]; /* failures and exits: why */
	json_t *data;             /* LOADED, LOAD_FAILED, LAUNCHED: the
				   * monitor's message */
	int fds[5];               /* LAUNCHED: QMP, serial, console,
				   * qemu.log pipe, helpers' log pipe; -1 */
	bool adopted;             /* LAUNCHED by a handover (PS_ADOPT) */
};

struct vm;
struct vm_queued;

enum vm_wait { VM_WAIT_START, VM_WAIT_STOP };

/* What the machine asks of the world outside it: the monitor (mon.c) in
 * the daemon, a fake in src/engine/test_vm.c.  load, launch and kill are
 * answered later by events; a call that fails returns -1 and the machine
 * treats it as that answer.  arg is struct vms's backend_arg. */
struct vm_backend {
	int (*load)(void *arg, struct vm *vm);
	void (*release)(void *arg, struct vm *vm);
	int (*launch)(void *arg, struct vm *vm);
	int (*kill)(void *arg, struct vm *vm);
	int (*powerdown)(void *arg, struct vm *vm);
	/* The state changed: a restarted engine gets it back. */
	void (*note)(void *arg, struct vm *vm);
	/* The run is up or down: links plug or unplug. */
	void (*running)(void *arg, struct vm *vm);
	void (*down)(void *arg, struct vm *vm);
	/* A QMP event of a running VM. */
	void (*qmp_event)(void *arg, struct vm *vm, const struct qmp_msg *msg);
	/* A VM settled: the engine may be done shutting down. */
	void (*settled)(void *arg);
};

/* Every record, and what they share. */
struct vms {
	struct loop *loop;
	const struct vm_backend *backend;
	void *backend_arg;
	const char *state_dir;
	bool use_syslog;
	struct vm *list;          /* sorted by name (strcmp) */
	/* Events raised while one is being handled. */
	struct vm_queued *queue, **queue_tail;
	bool dispatching;
};

/* Everything one launch holds on the engine's side: the session with its
 * QEMU (the monitor's side of the run is vmm/launch.h's struct vm_session). */
struct vm_session {
	pid_t pid;
	uid_t uid;                 /* QEMU's own uid; 0: the daemon's */
	char accel[8];
	struct qmp_session qmp;
	struct serial serial;      /* serial.log */
	struct serial qemu_log;    /* qemu.log */
	struct serial helper_log;  /* virtiofsd.log (every helper) */
	bool serial_open, qemu_log_open, helper_log_open;
	struct console console;
	bool console_open;
	unsigned int hotplug_ports;
	uint64_t ports_busy;       /* bit n: hot-plug port n holds a link */
	bool adopted;              /* handed over: since and reason kept */
	bool confirming;           /* adopted, its QMP handshake not done */
	bool shutdown_seen;        /* QMP SHUTDOWN: the guest powered off (an
				    * adopted QEMU's exit status is unknown) */
	json_t *launched;          /* the monitor's PS_LAUNCHED, for info */
};

struct vm {
	struct vms *vms;
	struct vm *next;
	char name[VMCONFIG_NAME_MAX + 1];
	char *dir;                 /* STATE/vms/NAME: its logs */
	enum vm_state state;
	char reason[VM_REASON_SIZE];
	time_t since;
	struct start_trace trace;  /* the last start's phases (trace.h) */

	/* From loading until settled: the gathered configuration (the
	 * monitor's JSON: see vmconfig_json in config/). */
	json_t *config;
	json_t *link_ids;          /* [{"provider", "id"}]: its client links */
	/* From launched until settled. */
	struct vm_session *run;

	/* waiting: providers not yet running (each a count in this VM, and
	 * this VM in each provider's list of dependents). */
	unsigned int providers_left;
	struct vm **dependents;
	size_t dependent_count;
	unsigned int visit;        /* a walk of the dependency graph */

	/* down: how it settles; loading: the settled state it came from,
	 * where an invalid directory leaves it (bad input changes nothing). */
	enum vm_state end_state;
	char end_reason[VM_REASON_SIZE];

	struct loop_source timer;  /* booting: start deadline; stopping:
				    * stop deadline */
	unsigned int stop_timeout_s;

	struct {
		struct client *c;
		enum vm_wait kind;
	} waiters[VM_WAITERS_MAX];
	size_t waiter_count;
	struct client *followers[VM_FOLLOWERS_MAX];
	size_t follower_count;
};

const char *vm_state_name(enum vm_state s);
/* What `vm list` shows: stopped, failed, starting, running, stopping. */
const char *vm_state_public(enum vm_state s);
const char *vm_event_name(enum vm_event ev);

void vms_init(struct vms *vms, struct loop *loop,
	       const struct vm_backend *backend, void *backend_arg,
	       const char *state_dir, bool use_syslog);
/* The record for name, created (stopped) if create; NULL if none (or no
 * memory, or the name is too long).  Records live until vms_free. */
struct vm *vm_find(struct vms *vms, const char *name, bool create);
/* Whether it is anywhere between settled states. */
bool vm_active(const struct vm *vm);
bool vm_any_active(struct vms *vms);
/* Whether it runs and is not on its way down. */
bool vm_running(const struct vm *vm);
/* The short record: name, state, pid, since, reason. */
json_t *vm_brief(const struct vm *vm);
/* The same as JSON text onto out, for a list of many: vm's, or with vm
 * NULL that of name, a VM without a record (stopped, never started).
 * -1 with errno (ENOBUFS past out's limit). */
int vm_brief_text(struct buf *out, const char *name, const struct vm *vm);
/* What the monitor said of vm's run at its launch (no Wayland, and why):
 * a new array, empty without a run. */
json_t *vm_notes(const struct vm *vm);

/* Hand vm an event: now, or after the one being handled.  Takes the
 * event's data and fds. */
void vm_event(struct vm *vm, struct vm_ev *ev);
/* An event with no payload. */
void vm_event_simple(struct vm *vm, enum vm_event type, const char *reason);
/* Clear an event without handling it: close its fds, drop its data. */
void vm_ev_release(struct vm_ev *ev);

/* The next state for each (state, event), -1 where the event is ignored
 * (for the unit tests and docs/design.md). */
int vm_next_state(enum vm_state s, enum vm_event ev);

/* Stop every active VM (shutdown); force kills. */
void vm_stop_all(struct vms *vms, bool force);
/* At exit: free every record (the monitor keeps the VMs' processes). */
void vms_free(struct vms *vms);

/* A VM's clients waiting on a transition, and log followers. */
void vm_follow(struct vm *vm, struct client *c);

#endif
