/* One VM's life in the daemon: an explicit state machine
 *
 *   stopped -> starting -> running -> stopping -> stopped
 *                 |           |           (guest powered off, or killed
 *                 v           v            after the stop timeout)
 *              failed      failed (QEMU crashed, exited with status N,
 *                                  a virtiofsd died)
 *
 * and everything it owns while not stopped: the QEMU and virtiofsd
 * processes (pidfds), the QMP, serial and console sockets, the stop
 * timer, and the clients waiting for a transition.  Every transition is an
 * event-loop callback; nothing here blocks.
 */
#ifndef VMHOSTD_VMSTATE_H
#define VMHOSTD_VMSTATE_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "common/trace.h"
#include "config/vmconfig.h"
#include "daemon/console.h"
#include "daemon/control.h"
#include "daemon/daemon.h"
#include "daemon/serial.h"
#include "vmm/qmp.h"
#include "vmm/vmm.h"

#define VMSTATE_WAITERS_MAX 16
#define VMSTATE_FOLLOWERS_MAX 16
#define VMSTATE_START_TIMEOUT_MS 60000
#define VMSTATE_STOP_TIMEOUT_S 30
#define VMSTATE_HOTPLUG_PORTS 4

enum vm_state { VM_STOPPED, VM_STARTING, VM_RUNNING, VM_STOPPING, VM_FAILED };

struct vm;

/* A process the VM owns, watched through its pidfd. */
struct vm_child {
	struct vm *vm;
	struct loop_source src;
	pid_t pid;
	const char *what;   /* "QEMU", "virtiofsd for share TAG" */
	char label[VMCONFIG_TAG_MAX + 32];
};

enum vm_wait { VM_WAIT_START, VM_WAIT_STOP };

/* The answer to a vmstate_qmp_call: a QMP_RETURN or QMP_ERROR message
 * (untrusted contents).  Calls still pending when the monitor closes are
 * dropped without a call: the owner hears of it through links_vm_down. */
typedef void vmstate_qmp_fn(struct vm *vm, const struct qmp_msg *reply,
			    void *arg);
struct vm_qmp_call;

struct vm {
	struct daemon *d;
	struct vm *next;
	char name[VMCONFIG_NAME_MAX + 1];
	char *dir;                 /* STATE/vms/NAME */
	enum vm_state state;
	char reason[512];          /* why it is failed or stopped */
	time_t since;
	struct start_trace trace;  /* the last start's phases (trace.h) */

	/* Set while starting, running or stopping. */
	struct vm_config *cfg;
	enum vmm_accel accel;
	uid_t uid;                 /* QEMU's own uid (privdrop.h); 0: the
				    * daemon's, when it is not root */
	bool wayland_dropped;      /* asked for, but the VMM cannot */
	struct vm_child qemu;
	struct vm_child *fsd;      /* one per cfg->shares */
	size_t fsd_count;
	struct loop_source qmp;
	struct qmp_codec *codec;
	uint64_t qmp_id;
	int qmp_step;
	struct serial serial;
	bool serial_open;
	/* QEMU's and the virtiofsds' stdout and stderr, through pipes into
	 * capped logs (serial.h): qemu.log, virtiofsd.log. */
	struct serial qemu_log;
	bool qemu_log_open;
	struct serial fsd_log;
	bool fsd_log_open;
	struct console console;
	bool console_open;
	struct loop_source timer;
	unsigned int stop_timeout;

	/* Where inter-VM links plug in (issue 5): NICs present at boot, and
	 * free root ports for clients hot-plugged into a provider. */
	struct vmm_nic *nics;
	size_t nic_count;
	unsigned int hotplug_ports;
	uint64_t ports_busy;       /* bit n: port n holds a link's NIC */
	struct vm_qmp_call *calls; /* commands awaiting their answer */
	bool awaiting_providers;   /* starting: its providers start first */

	/* Teardown: once every child is reaped, settle here. */
	bool tearing_down;
	enum vm_state end_state;
	char end_reason[512];

	struct {
		struct client *c;
		enum vm_wait kind;
	} waiters[VMSTATE_WAITERS_MAX];
	size_t waiter_count;
	struct client *followers[VMSTATE_FOLLOWERS_MAX];
	size_t follower_count;
};

const char *vmstate_name(enum vm_state s);
/* The record for name, created (stopped) if create; NULL if none. */
/* Whether CONFIG_ROOT/name is a directory, and the error reply when not. */
bool vmstate_dir_exists(const struct daemon *d, const char *name);
void vmstate_unknown(const struct daemon *d, struct client *c,
		     const char *name);
struct vm *vmstate_find(struct daemon *d, const char *name, bool create);
bool vmstate_active(const struct vm *vm);
bool vmstate_any_active(struct daemon *d);

/* Requests: each answers c, now or when the transition completes. */
void vmstate_start(struct vm *vm, struct client *c);
void vmstate_stop(struct vm *vm, struct client *c, bool force,
		  unsigned int timeout_s);
/* Stream the serial log to c; with follow, keep sending new output. */
void vmstate_log(struct vm *vm, struct client *c, bool follow);
void vmstate_console(struct vm *vm, struct client *c);
/* name, state, pid, since, reason (+ config and devices if detail). */
json_t *vmstate_json(struct vm *vm, bool detail);

/* Send a QMP command to a running VM (fd >= 0 goes along as SCM_RIGHTS,
 * for getfd) and call fn with its answer; fn NULL ignores the answer.
 * Never blocks; -1 with errno if it could not be sent. */
int vmstate_qmp_call(struct vm *vm, const char *execute, json_t *args, int fd,
		     vmstate_qmp_fn *fn, void *arg);
/* Drop vm's pending calls whose arg is arg: their fn is never called. */
void vmstate_qmp_forget(struct vm *vm, void *arg);
/* Whether vm is running and not on its way down. */
bool vmstate_running(const struct vm *vm);

void vmstate_stop_all(struct daemon *d, bool force);
/* At exit: kill and reap whatever is left, free every record. */
void vmstate_free_all(struct daemon *d);

#endif
