/* A VM's record and its state machine: one table of state x event.  See
 * vm.h. */
#include "engine/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "common/text.h"

static const char *const vm_state_names[VM_STATE_COUNT] = {
	[VM_STOPPED] = "stopped",
	[VM_FAILED] = "failed",
	[VM_LOADING] = "loading",
	[VM_WAITING] = "waiting",
	[VM_LAUNCHING] = "launching",
	[VM_BOOTING] = "booting",
	[VM_RUNNING] = "running",
	[VM_STOPPING] = "stopping",
	[VM_DOWN] = "down",
};

static const char *const vm_public_names[VM_STATE_COUNT] = {
	[VM_STOPPED] = "stopped",
	[VM_FAILED] = "failed",
	[VM_LOADING] = "starting",
	[VM_WAITING] = "starting",
	[VM_LAUNCHING] = "starting",
	[VM_BOOTING] = "starting",
	[VM_RUNNING] = "running",
	[VM_STOPPING] = "stopping",
	[VM_DOWN] = "stopping",
};

static const char *const vm_event_names[EV_COUNT] = {
	[EV_START] = "start",
	[EV_STOP] = "stop",
	[EV_FORCE] = "force",
	[EV_LOADED] = "loaded",
	[EV_LOAD_FAILED] = "load failed",
	[EV_PROVIDERS_UP] = "providers up",
	[EV_PROVIDER_FAILED] = "provider failed",
	[EV_LAUNCHED] = "launched",
	[EV_LAUNCH_FAILED] = "launch failed",
	[EV_QMP_UP] = "QMP up",
	[EV_QMP_FAILED] = "QMP failed",
	[EV_DEADLINE] = "deadline",
	[EV_QEMU_EXITED] = "QEMU exited",
	[EV_HELPER_EXITED] = "helper exited",
	[EV_GONE] = "gone",
};

/* The backend call f for vm. */
#define B(vm) ((vm)->vms->backend)
#define BA(vm) ((vm)->vms->backend_arg)

const char *vm_state_name(enum vm_state s)
{
	return s < VM_STATE_COUNT ? vm_state_names[s] : "?";
}

const char *vm_state_public(enum vm_state s)
{
	return s < VM_STATE_COUNT ? vm_public_names[s] : "?";
}

const char *vm_event_name(enum vm_event ev)
{
	return ev < EV_COUNT ? vm_event_names[ev] : "?";
}

bool vm_active(const struct vm *vm)
{
	return vm->state != VM_STOPPED && vm->state != VM_FAILED;
}

bool vm_any_active(struct vms *vms)
{
	for (struct vm *vm = vms->list; vm; vm = vm->next)
		if (vm_active(vm))
			return true;
	return false;
}

void vms_init(struct vms *vms, struct loop *loop,
	       const struct vm_backend *backend, void *backend_arg,
	       const char *state_dir, bool use_syslog)
{
	memset(vms, 0, sizeof *vms);
	vms->loop = loop;
	vms->backend = backend;
	vms->backend_arg = backend_arg;
	vms->state_dir = state_dir;
	vms->use_syslog = use_syslog;
	vms->queue_tail = &vms->queue;
}

bool vm_running(const struct vm *vm)
{
	return vm->state == VM_RUNNING && vm->run;
}

struct vm *vm_find(struct vms *vms, const char *name, bool create)
{
	struct vm *vm, **at;
	int c = 1;

	/* Sorted by name: `list` walks it beside the sorted names. */
	for (at = &vms->list; *at && (c = strcmp((*at)->name, name)) < 0;
	     at = &(*at)->next)
		;
	if (c == 0)
		return *at;
	if (!create || strlen(name) > VMCONFIG_NAME_MAX)
		return NULL;
	vm = calloc(1, sizeof *vm);
	if (!vm)
		return NULL;
	if (asprintf(&vm->dir, "%s/vms/%s", vms->state_dir, name) < 0) {
		free(vm);
		return NULL;
	}
	vm->vms = vms;
	strcpy(vm->name, name);
	vm->state = VM_STOPPED;
	vm->timer.fd = -1;
	vm->next = *at;
	*at = vm;
	return vm;
}

/* --- clients waiting for a transition --- */

static void vm_waiter_gone(void *owner, struct client *c)
{
	struct vm *vm = owner;

	for (size_t i = 0; i < vm->waiter_count; i++) {
		if (vm->waiters[i].c != c)
			continue;
		vm->waiters[i] = vm->waiters[--vm->waiter_count];
		return;
	}
}

static void vm_wait(struct vm *vm, struct client *c, enum vm_wait kind)
{
	if (!c)
		return;
	if (vm->waiter_count == VM_WAITERS_MAX) {
		control_error(c, "%s: too many clients waiting", vm->name);
		return;
	}
	vm->waiters[vm->waiter_count].c = c;
	vm->waiters[vm->waiter_count].kind = kind;
	vm->waiter_count++;
	control_own(c, vm, vm_waiter_gone);
}

json_t *vm_brief(const struct vm *vm)
{
	return json_pack("{s:s,s:s,s:o,s:o,s:o}", "name", vm->name,
			 "state", vm_state_public(vm->state),
			 "pid", vm->run && vm->run->pid ?
				json_integer(vm->run->pid) : json_null(),
			 "since", vm->since ? json_integer(vm->since) : json_null(),
			 "reason", vm->reason[0] ? json_string(vm->reason) :
				json_null());
}

/* s as a JSON string onto out: a VM name as it is (none of its
 * characters needs an escape), anything else as jansson escapes it. */
static int vm_text_string(struct buf *out, const char *s)
{
	json_t *j;
	char *text;
	int r;

	if (vmconfig_name_valid(s))
		return buf_append(out, "\"", 1) < 0 ||
		       buf_append(out, s, strlen(s)) < 0 ||
		       buf_append(out, "\"", 1) < 0 ? -1 : 0;
	j = json_string(s);
	text = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text) {
		errno = EINVAL;   /* not UTF-8: vm_brief fails alike */
		return -1;
	}
	r = buf_append(out, text, strlen(text));
	free(text);
	return r;
}

int vm_brief_text(struct buf *out, const char *name, const struct vm *vm)
{
	char pid[24] = "null", since[24] = "null", middle[128];
	int n;

	if (vm && vm->run && vm->run->pid)
		snprintf(pid, sizeof pid, "%lld", (long long)vm->run->pid);
	if (vm && vm->since)
		snprintf(since, sizeof since, "%lld", (long long)vm->since);
	n = snprintf(middle, sizeof middle,
		     ",\"state\":\"%s\",\"pid\":%s,\"since\":%s,\"reason\":",
		     vm_state_public(vm ? vm->state : VM_STOPPED), pid, since);
	if (buf_append(out, "{\"name\":", 8) < 0 ||
	    vm_text_string(out, vm ? vm->name : name) < 0 ||
	    buf_append(out, middle, (size_t)n) < 0)
		return -1;
	if (vm && vm->reason[0] ? vm_text_string(out, vm->reason) < 0 :
	    buf_append(out, "null", 4) < 0)
		return -1;
	return buf_append(out, "}", 1);
}

json_t *vm_notes(const struct vm *vm)
{
	json_t *notes = vm->run ? json_object_get(vm->run->launched, "notes") :
			NULL;

	return json_is_array(notes) ? json_deep_copy(notes) : json_array();
}

/* Answer every waiter of kind: ok with the record, or an error.  The
 * answer never runs a client's next request here (control.c defers it). */
static void vm_answer(struct vm *vm, enum vm_wait kind, bool ok,
		      const char *msg)
{
	struct client *c;
	size_t i = vm->waiter_count;

	while (i--) {
		if (vm->waiters[i].kind != kind)
			continue;
		c = vm->waiters[i].c;
		vm->waiters[i] = vm->waiters[--vm->waiter_count];
		control_disown(c);
		if (ok)
			control_reply(c, json_pack("{s:b,s:o,s:o}", "ok", 1, "vm",
						   vm_brief(vm), "notes",
						   vm_notes(vm)));
		else
			control_error(c, "%s", msg);
	}
}

/* --- the record's state --- */

static void vm_set(struct vm *vm, enum vm_state s, const char *reason)
{
	vm->state = s;
	vm->since = time(NULL);
	snprintf(vm->reason, sizeof vm->reason, "%s", reason ? reason : "");
	daemon_log("vm %s: %s%s%s", vm->name, vm_state_name(s),
		   vm->reason[0] ? ": " : "", vm->reason);
	B(vm)->note(BA(vm), vm);
}

/* --- timers: the start and stop deadlines --- */

static void vm_timer_ready(struct loop_source *src, uint32_t events)
{
	struct vm *vm = src->arg;

	loop_timer_ack(src->fd);
	vm_event_simple(vm, EV_DEADLINE, NULL);
}

static int vm_timer_arm(struct vm *vm, unsigned long ms)
{
	if (vm->timer.fd < 0) {
		vm->timer = (struct loop_source){ loop_timer_new(), vm_timer_ready, vm };
		if (vm->timer.fd < 0)
			return -1;
		if (loop_add(vm->vms->loop, &vm->timer, EPOLLIN) < 0) {
			close(vm->timer.fd);
			vm->timer.fd = -1;
			return -1;
		}
	}
	return loop_timer_arm(vm->timer.fd, ms);
}

static void vm_timer_close(struct vm *vm)
{
	if (vm->timer.fd < 0)
		return;
	loop_del(vm->vms->loop, &vm->timer);
	close(vm->timer.fd);
	vm->timer.fd = -1;
}

/* --- dependencies: a VM waits for a count of providers --- */

static int vm_depend(struct vm *provider, struct vm *client)
{
	struct vm **d;

	d = realloc(provider->dependents,
		    (provider->dependent_count + 1) * sizeof *d);
	if (!d)
		return -1;
	d[provider->dependent_count++] = client;
	provider->dependents = d;
	client->providers_left++;
	return 0;
}

/* client no longer waits for anyone (it failed or was cancelled). */
static void vm_undepend(struct vm *client)
{
	for (struct vm *p = client->vms->list; p; p = p->next) {
		for (size_t i = 0; i < p->dependent_count; i++) {
			if (p->dependents[i] != client)
				continue;
			p->dependents[i] = p->dependents[--p->dependent_count];
			break;
		}
	}
	client->providers_left = 0;
}

/* Whether a waits for b, through any chain of providers: b's dependents
 * wait for b, theirs for them, and so on. */
static bool vm_waits_for(struct vm *a, struct vm *b)
{
	static unsigned int mark;
	struct vm **todo, *v;
	size_t n = 0, cap = 16;
	bool found = false;

	if (!(todo = malloc(cap * sizeof *todo)))
		return false;
	mark++;
	todo[n++] = b;
	b->visit = mark;
	while (n && !found) {
		v = todo[--n];
		for (size_t i = 0; i < v->dependent_count && !found; i++) {
			struct vm *d = v->dependents[i];

			if (d == a)
				found = true;
			if (d->visit == mark)
				continue;
			d->visit = mark;
			if (n == cap) {
				struct vm **t = realloc(todo, 2 * cap * sizeof *t);

				if (!t)
					break;
				todo = t;
				cap *= 2;
			}
			todo[n++] = d;
		}
	}
	free(todo);
	return found;
}

/* provider runs: each client counts it; the last one launches. */
static void vm_dependents_up(struct vm *provider)
{
	struct vm *c;

	for (size_t i = 0; i < provider->dependent_count; i++) {
		c = provider->dependents[i];
		if (c->providers_left && !--c->providers_left)
			vm_event_simple(c, EV_PROVIDERS_UP, NULL);
	}
	provider->dependent_count = 0;
}

/* provider will not run: its waiting clients fail, naming it. */
static void vm_dependents_fail(struct vm *provider, const char *why)
{
	struct vm_ev ev = { .type = EV_PROVIDER_FAILED };
	struct vm *c;
	size_t n = provider->dependent_count;

	provider->dependent_count = 0;
	for (size_t i = 0; i < n; i++) {
		c = provider->dependents[i];
		snprintf(ev.reason, sizeof ev.reason,
			 "start failed: provider %s did not start: %.400s",
			 provider->name, why);
		vm_event(c, &ev);
	}
}

/* --- the run: what one launch holds on the engine's side --- */

static void vm_run_free(struct vm *vm)
{
	struct vm_session *r = vm->run;

	if (!r)
		return;
	qmps_close(&r->qmp);
	if (r->serial_open)
		serial_close(&r->serial);
	if (r->qemu_log_open)
		serial_close(&r->qemu_log);
	if (r->helper_log_open)
		serial_close(&r->helper_log);
	if (r->console_open)
		console_close(&r->console);
	json_decref(r->launched);
	free(r);
	vm->run = NULL;
}

/* --- settling --- */

/* End the VM's life in a settled state: free its run, answer waiters,
 * fail clients that waited for it. */
static enum vm_state vm_settle(struct vm *vm, enum vm_state s,
			       const char *reason)
{
	char *msg = NULL;

	vm_timer_close(vm);
	if (vm->run || vm->state == VM_DOWN)
		B(vm)->down(BA(vm), vm);
	vm_run_free(vm);
	vm_undepend(vm);
	json_decref(vm->config);
	vm->config = NULL;
	json_decref(vm->link_ids);
	vm->link_ids = NULL;
	vm_set(vm, s, reason);
	vm_dependents_fail(vm, vm->reason[0] ? vm->reason : vm_state_name(s));
	if (asprintf(&msg, "%s: %s", vm->name, vm->reason) < 0)
		msg = NULL;
	vm_answer(vm, VM_WAIT_START, false, msg ? msg : vm->reason);
	vm_answer(vm, VM_WAIT_STOP, true, NULL);
	free(msg);
	B(vm)->settled(BA(vm));
	return s;
}

/* The run is over or must be: kill (unless it is going by itself), and
 * settle as end once the monitor reports it gone.  The first reason
 * given is the one kept. */
static enum vm_state vm_go_down(struct vm *vm, bool kill, enum vm_state end,
				const char *reason)
{
	vm_timer_close(vm);
	if (vm->run)
		qmps_close(&vm->run->qmp);
	vm->end_state = end;
	snprintf(vm->end_reason, sizeof vm->end_reason, "%s", reason);
	if (kill && B(vm)->kill(BA(vm), vm) < 0)
		daemon_log("vm %s: asking the monitor to kill it: %s",
			   vm->name, strerror(errno));
	vm_dependents_fail(vm, reason);
	vm_set(vm, VM_DOWN, NULL);
	return VM_DOWN;
}

/* --- actions: each returns the state that follows --- */

typedef enum vm_state vm_action(struct vm *vm, struct vm_ev *ev);

static enum vm_state act_load(struct vm *vm, struct vm_ev *ev)
{
	char reason[VM_REASON_SIZE];

	vm_wait(vm, ev->c, VM_WAIT_START);
	start_trace_begin(&vm->trace);
	vm->end_state = vm->state;   /* loading: where a bad directory returns */
	snprintf(vm->end_reason, sizeof vm->end_reason, "%s", vm->reason);
	if (B(vm)->load(BA(vm), vm) < 0) {
		snprintf(reason, sizeof reason, "start failed: asking the monitor: %s",
			 strerror(errno));
		return vm_settle(vm, VM_FAILED, reason);
	}
	vm->state = VM_LOADING;
	daemon_log("vm %s: loading", vm->name);
	return VM_LOADING;
}

static enum vm_state act_join_start(struct vm *vm, struct vm_ev *ev)
{
	vm_wait(vm, ev->c, VM_WAIT_START);
	return vm->state;
}

static enum vm_state act_join_stop(struct vm *vm, struct vm_ev *ev)
{
	vm_wait(vm, ev->c, VM_WAIT_STOP);
	return vm->state;
}

static enum vm_state act_refuse(struct vm *vm, struct vm_ev *ev)
{
	if (!ev->c)
		return vm->state;
	switch (vm->state) {
	case VM_RUNNING:
		control_error(ev->c, "%s is already running", vm->name);
		break;
	case VM_STOPPING:
		control_error(ev->c, "%s is stopping; start it again once stopped",
			      vm->name);
		break;
	case VM_DOWN:
		control_error(ev->c, "%s is still being cleaned up; start it again once stopped",
			      vm->name);
		break;
	default:
		control_error(ev->c, "%s is not running (%s%s%s)", vm->name,
			      vm_state_public(vm->state),
			      vm->reason[0] ? ": " : "", vm->reason);
		break;
	}
	return vm->state;
}

/* Stop before anything runs: nothing to kill. */
static enum vm_state act_cancel(struct vm *vm, struct vm_ev *ev)
{
	vm_wait(vm, ev->c, VM_WAIT_STOP);
	B(vm)->release(BA(vm), vm);
	return vm_settle(vm, VM_STOPPED, "start cancelled by vm stop");
}

static enum vm_state act_kill(struct vm *vm, struct vm_ev *ev)
{
	vm_wait(vm, ev->c, VM_WAIT_STOP);
	if (ev->type == EV_FORCE && vm->state != VM_LAUNCHING &&
	    vm->state != VM_BOOTING)
		return vm_go_down(vm, true, VM_STOPPED,
				  "forced off by vm stop --force");
	return vm_go_down(vm, true, VM_STOPPED, "start cancelled by vm stop");
}

static enum vm_state act_powerdown(struct vm *vm, struct vm_ev *ev)
{
	vm_wait(vm, ev->c, VM_WAIT_STOP);
	vm->stop_timeout_s = ev->timeout_s;
	if (B(vm)->powerdown(BA(vm), vm) < 0)
		return vm_go_down(vm, true, VM_STOPPED,
				  "forced off: the monitor is gone");
	if (vm_timer_arm(vm, (unsigned long)ev->timeout_s * 1000) < 0)
		return vm_go_down(vm, true, VM_STOPPED,
				  "forced off: no timer for the stop timeout");
	vm_set(vm, VM_STOPPING, "powering off (ACPI power button)");
	return VM_STOPPING;
}

/* The directory is valid: its providers first, then launch. */
static enum vm_state act_loaded(struct vm *vm, struct vm_ev *ev)
{
	json_t *providers, *p;
	struct vm *pv;
	char why[VM_REASON_SIZE];
	size_t i;

	start_trace_mark(&vm->trace, START_CONFIG_LOADED);
	vm->config = json_incref(json_object_get(ev->data, "config"));
	vm->link_ids = json_incref(json_object_get(ev->data, "links"));
	providers = json_object_get(vm->config, "providers");
	vm->providers_left = 0;
	json_array_foreach(providers, i, p) {
		pv = json_is_string(p) ? vm_find(vm->vms, json_string_value(p), true) : NULL;
		if (!pv) {
			B(vm)->release(BA(vm), vm);
			return vm_settle(vm, VM_FAILED, "start failed: providers: out of memory");
		}
		if (pv->state == VM_RUNNING)
			continue;
		/* The monitor gathers each VM alone: a cycle shows here. */
		if (pv == vm || vm_waits_for(pv, vm)) {
			snprintf(why, sizeof why,
				 "start failed: providers/net/%s: provider cycle: %s waits for %s",
				 pv->name, pv->name, vm->name);
			vm_undepend(vm);
			B(vm)->release(BA(vm), vm);
			return vm_settle(vm, VM_FAILED, why);
		}
		if (pv->state == VM_STOPPING || pv->state == VM_DOWN) {
			snprintf(why, sizeof why,
				 "start failed: provider %s did not start: %s%s%.300s",
				 pv->name, vm_state_public(pv->state),
				 pv->reason[0] ? ": " : "", pv->reason);
			vm_undepend(vm);
			B(vm)->release(BA(vm), vm);
			return vm_settle(vm, VM_FAILED, why);
		}
		if (vm_depend(pv, vm) < 0) {
			vm_undepend(vm);
			B(vm)->release(BA(vm), vm);
			return vm_settle(vm, VM_FAILED, "start failed: providers: out of memory");
		}
		if (!vm_active(pv)) {
			daemon_log("vm %s: starting its provider %s first",
				   vm->name, pv->name);
			vm_event_simple(pv, EV_START, NULL);
		}
	}
	vm_set(vm, VM_WAITING, NULL);
	if (!vm->providers_left)
		vm_event_simple(vm, EV_PROVIDERS_UP, NULL);
	return VM_WAITING;
}

/* A bad directory changes nothing: back to where it was. */
static enum vm_state act_load_failed(struct vm *vm, struct vm_ev *ev)
{
	const char *why = json_string_value(json_object_get(ev->data, "error"));
	json_t *reply, *diags = json_object_get(ev->data, "diagnostics");
	char msg[VM_REASON_SIZE];
	struct client *c;
	size_t i = vm->waiter_count;

	vm->state = vm->end_state;
	snprintf(vm->reason, sizeof vm->reason, "%s", vm->end_reason);
	daemon_log("vm %s: invalid configuration; still %s", vm->name,
		   vm_state_name(vm->state));
	while (i--) {
		if (vm->waiters[i].kind != VM_WAIT_START)
			continue;
		c = vm->waiters[i].c;
		vm->waiters[i] = vm->waiters[--vm->waiter_count];
		control_disown(c);
		/* An unknown VM's message names it already. */
		if (why && !strncmp(why, "unknown VM", 10))
			snprintf(msg, sizeof msg, "%s", why);
		else
			snprintf(msg, sizeof msg, "%s: %s", vm->name,
				 why ? why : "invalid configuration");
		reply = json_pack("{s:b,s:s,s:o}", "ok", 0, "error", msg,
				  "diagnostics", diags ? json_incref(diags) :
				  json_array());
		control_reply(c, reply);
	}
	vm_dependents_fail(vm, "invalid configuration (see vm check)");
	vm_answer(vm, VM_WAIT_STOP, true, NULL);
	B(vm)->settled(BA(vm));
	return vm->state;
}

static enum vm_state act_launch(struct vm *vm, struct vm_ev *ev)
{
	char reason[VM_REASON_SIZE];

	if (B(vm)->launch(BA(vm), vm) < 0) {
		snprintf(reason, sizeof reason, "start failed: asking the monitor: %s",
			 strerror(errno));
		B(vm)->release(BA(vm), vm);
		return vm_settle(vm, VM_FAILED, reason);
	}
	vm_set(vm, VM_LAUNCHING, NULL);
	return VM_LAUNCHING;
}

static enum vm_state act_fail(struct vm *vm, struct vm_ev *ev)
{
	vm_undepend(vm);
	if (ev->type == EV_PROVIDER_FAILED)
		B(vm)->release(BA(vm), vm);
	return vm_settle(vm, VM_FAILED, ev->reason);
}

static void vm_qmp_greeted(void *owner)
{
	struct vm *vm = owner;

	start_trace_mark(&vm->trace, START_QMP_GREETING);
}

static void vm_qmp_ready(void *owner)
{
	vm_event_simple(owner, EV_QMP_UP, NULL);
}

static void vm_qmp_failed(void *owner, const char *why)
{
	char reason[VM_REASON_SIZE];

	snprintf(reason, sizeof reason, "start failed: QMP %s", why);
	vm_event_simple(owner, EV_QMP_FAILED, reason);
}

static void vm_qmp_event(void *owner, const struct qmp_msg *msg)
{
	struct vm *vm = owner;

	if (vm->run && !strcmp(msg->event, "SHUTDOWN"))
		vm->run->shutdown_seen = true;
	B(vm)->qmp_event(BA(vm), vm, msg);
}

static const struct qmps_ops vm_qmp_ops = {
	.greeted = vm_qmp_greeted,
	.ready = vm_qmp_ready,
	.failed = vm_qmp_failed,
	.event = vm_qmp_event,
};

static void vm_serial_tap(void *arg, const char *data, size_t n)
{
	struct vm *vm = arg;

	start_trace_serial(&vm->trace, data, n);
	for (size_t i = 0; i < vm->follower_count; i++)
		control_send(vm->followers[i], data, n);
}

/* Take the launched run's fds: QMP, serial.log, console, and the helper
 * logs.  -1 with reason set. */
static int vm_run_open(struct vm *vm, struct vm_ev *ev, char *reason,
		       size_t len)
{
	struct loop *l = vm->vms->loop;
	struct vm_session *r;
	json_t *d = ev->data;
	const char *accel;

	r = vm->run = calloc(1, sizeof *r);
	if (!r)
		goto fail_errno;
	r->launched = json_incref(d);
	/* Its links have their ids now, if it is their first start. */
	json_decref(vm->link_ids);
	vm->link_ids = json_incref(json_object_get(d, "links"));
	r->pid = (pid_t)json_integer_value(json_object_get(d, "pid"));
	r->uid = (uid_t)json_integer_value(json_object_get(d, "uid"));
	accel = json_string_value(json_object_get(d, "accel"));
	snprintf(r->accel, sizeof r->accel, "%s", accel ? accel : "?");
	r->hotplug_ports = (unsigned int)json_integer_value(
		json_object_get(d, "hotplug_ports"));
	if (serial_open(&r->serial, l, ev->fds[1], vm->dir, "serial.log",
			vm->name, SERIAL_LOG_CAP, vm->vms->use_syslog) < 0) {
		snprintf(reason, len, "start failed: %s/serial.log: %s", vm->dir,
			 strerror(errno));
		return -1;
	}
	ev->fds[1] = -1;
	r->serial_open = true;
	r->serial.tap = vm_serial_tap;
	r->serial.tap_arg = vm;
	if (console_open(&r->console, l, ev->fds[2]) < 0)
		goto fail_errno;
	ev->fds[2] = -1;
	r->console_open = true;
	/* The helpers' logs only help diagnose: without them it runs. */
	if (serial_open(&r->qemu_log, l, ev->fds[3], vm->dir, "qemu.log",
			vm->name, SERIAL_LOG_CAP, false) == 0) {
		r->qemu_log_open = true;
		ev->fds[3] = -1;
	}
	if (serial_open(&r->helper_log, l, ev->fds[4], vm->dir, "virtiofsd.log",
			vm->name, SERIAL_LOG_CAP, false) == 0) {
		r->helper_log_open = true;
		ev->fds[4] = -1;
	}
	if (qmps_open(&r->qmp, l, ev->fds[0], vm->name, ev->adopted,
		      &vm_qmp_ops, vm) < 0) {
		ev->fds[0] = -1;
		goto fail_errno;
	}
	ev->fds[0] = -1;
	return 0;

fail_errno:
	snprintf(reason, len, "start failed: %s", strerror(errno));
	return -1;
}

/* Messages the monitor has for the serial log (no Wayland, and why). */
static void vm_run_notes(struct vm *vm)
{
	json_t *notes = json_object_get(vm->run->launched, "notes"), *n;
	size_t i;

	json_array_foreach(notes, i, n) {
		const char *s = json_string_value(n);

		if (!s)
			continue;
		serial_feed(&vm->run->serial, "vmhostd: ", 9);
		serial_feed(&vm->run->serial, s, strlen(s));
		serial_feed(&vm->run->serial, "\n", 1);
	}
}

static enum vm_state act_launched(struct vm *vm, struct vm_ev *ev)
{
	char reason[VM_REASON_SIZE];

	/* The monitor's marks: files, helpers, QEMU's exec. */
	start_trace_take(&vm->trace, json_object_get(ev->data, "start_trace"));
	if (vm_run_open(vm, ev, reason, sizeof reason) < 0)
		return vm_go_down(vm, true, VM_FAILED, reason);
	if (!ev->adopted)
		vm_run_notes(vm);
	if (vm_timer_arm(vm, VM_START_TIMEOUT_MS) < 0)
		return vm_go_down(vm, true, VM_FAILED,
				  "start failed: no timer for the start deadline");
	vm_set(vm, VM_BOOTING, NULL);
	return VM_BOOTING;
}

/* A VM that ran under an engine before this one (PS_ADOPT). */
static enum vm_state act_adopt(struct vm *vm, struct vm_ev *ev)
{
	json_t *d = ev->data;
	const char *state = json_string_value(json_object_get(d, "state"));
	const char *reason = json_string_value(json_object_get(d, "reason"));
	char why[VM_REASON_SIZE];

	if (!ev->adopted)
		return vm->state;
	vm->config = json_incref(json_object_get(d, "config"));
	vm->since = (time_t)json_integer_value(json_object_get(d, "since"));
	if (vm_run_open(vm, ev, why, sizeof why) < 0)
		return vm_go_down(vm, true, VM_FAILED, why);
	vm->run->adopted = true;
	snprintf(vm->reason, sizeof vm->reason, "%s", reason ? reason : "");
	if (state && !strcmp(state, "down"))
		return vm_go_down(vm, false, VM_STOPPED,
				  reason ? reason : "stopped");
	vm->state = VM_BOOTING;
	daemon_log("vm %s: adopted, QEMU pid %ld", vm->name, (long)vm->run->pid);
	if (vm_timer_arm(vm, VM_START_TIMEOUT_MS) < 0)
		return vm_go_down(vm, true, VM_FAILED,
				  "adoption failed: no timer for the deadline");
	return VM_BOOTING;
}

static enum vm_state act_qmp_up(struct vm *vm, struct vm_ev *ev)
{
	time_t since = vm->since;

	vm_timer_close(vm);
	start_trace_mark(&vm->trace, START_QMP_READY);
	vm_set(vm, VM_RUNNING, NULL);
	if (vm->run->adopted && since)
		vm->since = since;   /* it has run since then, not since now */
	vm_answer(vm, VM_WAIT_START, true, NULL);
	B(vm)->running(BA(vm), vm);
	vm_dependents_up(vm);
	return VM_RUNNING;
}

static enum vm_state act_fail_kill(struct vm *vm, struct vm_ev *ev)
{
	if (ev->type == EV_HELPER_EXITED && ev->clean)
		return vm->state; /* QEMU hung up on it; QEMU's exit follows */
	if (ev->type == EV_DEADLINE)
		snprintf(ev->reason, sizeof ev->reason,
			 "start failed: QEMU did not report running in time");
	return vm_go_down(vm, true, VM_FAILED, ev->reason);
}

static enum vm_state act_stop_deadline(struct vm *vm, struct vm_ev *ev)
{
	char reason[VM_REASON_SIZE];

	snprintf(reason, sizeof reason,
		 "forced off: the guest did not power off within %u s",
		 vm->stop_timeout_s);
	return vm_go_down(vm, true, VM_STOPPED, reason);
}

/* The last line QEMU wrote to qemu.log, for start errors: ": LINE", cut
 * and escaped (QEMU may be the guest's). */
static void vm_qemu_last_words(struct vm *vm, char *out, size_t len)
{
	char buf[1024], *p, *end, *path, *safe;
	ssize_t n;
	off_t size;
	int fd;

	out[0] = '\0';
	/* What it wrote is in the pipe now: into qemu.log first. */
	if (vm->run && vm->run->qemu_log_open) {
		serial_close(&vm->run->qemu_log);
		vm->run->qemu_log_open = false;
	}
	if (asprintf(&path, "%s/qemu.log", vm->dir) < 0)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(path);
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	lseek(fd, size > (off_t)sizeof buf - 1 ? size - (off_t)sizeof buf + 1 : 0,
	      SEEK_SET);
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	end = buf + strlen(buf);
	while (end > buf && (end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	p = strrchr(buf, '\n');
	p = p ? p + 1 : buf;
	safe = text_escape(p, strlen(p), 200, TEXT_UTF8);
	snprintf(out, len, ": %s", safe ? safe : "?");
	free(safe);
}

static enum vm_state act_exited(struct vm *vm, struct vm_ev *ev)
{
	char reason[VM_REASON_SIZE], last[256];

	if (vm->run && vm->run->adopted && vm->run->shutdown_seen)
		ev->clean = true;
	switch (vm->state) {
	case VM_LAUNCHING:
	case VM_BOOTING:
		vm_qemu_last_words(vm, last, sizeof last);
		snprintf(reason, sizeof reason, "start failed: %.200s%s",
			 ev->reason, last);
		return vm_go_down(vm, false, VM_FAILED, reason);
	case VM_STOPPING:
		return vm_go_down(vm, false, VM_STOPPED, ev->clean ?
				  "powered off by vm stop" : ev->reason);
	default:
		if (ev->clean)
			return vm_go_down(vm, false, VM_STOPPED, "guest powered off");
		return vm_go_down(vm, false, VM_FAILED, ev->reason);
	}
}

static enum vm_state act_gone(struct vm *vm, struct vm_ev *ev)
{
	return vm_settle(vm, vm->end_state, vm->end_reason);
}

/* Gone while it was thought to run: the monitor lost it (a crash of the
 * whole daemon while the VM ended, say). */
static enum vm_state act_gone_early(struct vm *vm, struct vm_ev *ev)
{
	return vm_settle(vm, VM_FAILED, ev->reason[0] ? ev->reason :
			 "its processes are gone");
}

static enum vm_state act_ignore(struct vm *vm, struct vm_ev *ev)
{
	return vm->state;
}

struct vm_transition {
	vm_action *act;
	enum vm_state next; /* the usual outcome; failures divert */
};

#define T(a, n) { act_##a, VM_##n }

/* The machine.  Empty cells: the event means nothing in that state (a
 * late answer, a deadline that raced with its cancel) and is dropped. */
static const struct vm_transition vm_table[VM_STATE_COUNT][EV_COUNT] = {
	[VM_STOPPED] = {
		[EV_START] = T(load, LOADING),
		[EV_STOP] = T(refuse, STOPPED),
		[EV_FORCE] = T(refuse, STOPPED),
		[EV_LAUNCHED] = T(adopt, BOOTING),
	},
	[VM_FAILED] = {
		[EV_START] = T(load, LOADING),
		[EV_STOP] = T(refuse, FAILED),
		[EV_FORCE] = T(refuse, FAILED),
		[EV_LAUNCHED] = T(adopt, BOOTING),
	},
	[VM_LOADING] = {
		[EV_START] = T(join_start, LOADING),
		[EV_STOP] = T(cancel, STOPPED),
		[EV_FORCE] = T(cancel, STOPPED),
		[EV_LOADED] = T(loaded, WAITING),
		[EV_LOAD_FAILED] = T(load_failed, STOPPED),
	},
	[VM_WAITING] = {
		[EV_START] = T(join_start, WAITING),
		[EV_STOP] = T(cancel, STOPPED),
		[EV_FORCE] = T(cancel, STOPPED),
		[EV_PROVIDERS_UP] = T(launch, LAUNCHING),
		[EV_PROVIDER_FAILED] = T(fail, FAILED),
	},
	[VM_LAUNCHING] = {
		[EV_START] = T(join_start, LAUNCHING),
		[EV_STOP] = T(kill, DOWN),
		[EV_FORCE] = T(kill, DOWN),
		[EV_LAUNCHED] = T(launched, BOOTING),
		[EV_LAUNCH_FAILED] = T(fail, FAILED),
		[EV_QEMU_EXITED] = T(exited, DOWN),
		[EV_GONE] = T(gone_early, FAILED),
	},
	[VM_BOOTING] = {
		[EV_START] = T(join_start, BOOTING),
		[EV_STOP] = T(kill, DOWN),
		[EV_FORCE] = T(kill, DOWN),
		[EV_QMP_UP] = T(qmp_up, RUNNING),
		[EV_QMP_FAILED] = T(fail_kill, DOWN),
		[EV_DEADLINE] = T(fail_kill, DOWN),
		[EV_QEMU_EXITED] = T(exited, DOWN),
		[EV_HELPER_EXITED] = T(fail_kill, DOWN),
		[EV_GONE] = T(gone_early, FAILED),
	},
	[VM_RUNNING] = {
		[EV_START] = T(refuse, RUNNING),
		[EV_STOP] = T(powerdown, STOPPING),
		[EV_FORCE] = T(kill, DOWN),
		[EV_QEMU_EXITED] = T(exited, DOWN),
		[EV_HELPER_EXITED] = T(fail_kill, DOWN),
		[EV_GONE] = T(gone_early, FAILED),
	},
	[VM_STOPPING] = {
		[EV_START] = T(refuse, STOPPING),
		[EV_STOP] = T(join_stop, STOPPING),
		[EV_FORCE] = T(kill, DOWN),
		[EV_DEADLINE] = T(stop_deadline, DOWN),
		[EV_QEMU_EXITED] = T(exited, DOWN),
		[EV_HELPER_EXITED] = T(ignore, STOPPING),
		[EV_GONE] = T(gone_early, FAILED),
	},
	[VM_DOWN] = {
		[EV_START] = T(refuse, DOWN),
		[EV_STOP] = T(join_stop, DOWN),
		[EV_FORCE] = T(join_stop, DOWN),
		[EV_GONE] = T(gone, STOPPED),
	},
};

#undef T

int vm_next_state(enum vm_state s, enum vm_event ev)
{
	if (s >= VM_STATE_COUNT || ev >= EV_COUNT || !vm_table[s][ev].act)
		return -1;
	return (int)vm_table[s][ev].next;
}

void vm_ev_release(struct vm_ev *ev)
{
	json_decref(ev->data);
	ev->data = NULL;
	for (size_t i = 0; i < sizeof ev->fds / sizeof *ev->fds; i++) {
		if (ev->fds[i] >= 0)
			close(ev->fds[i]);
		ev->fds[i] = -1;
	}
}

static void vm_handle(struct vm *vm, struct vm_ev *ev)
{
	const struct vm_transition *t = &vm_table[vm->state][ev->type];

	if (t->act)
		t->act(vm, ev);
	else if (ev->c)
		control_error(ev->c, "%s: cannot %s now (%s)", vm->name,
			      vm_event_name(ev->type), vm_state_name(vm->state));
	vm_ev_release(ev);
}

/* An event raised while one is handled waits here (vm.h). */
struct vm_queued {
	struct vm_queued *next;
	struct vm *vm;
	struct vm_ev ev;
};

static void vm_drain(struct vms *e)
{
	struct vm_queued *q;

	e->dispatching = true;
	while ((q = e->queue)) {
		e->queue = q->next;
		if (!e->queue)
			e->queue_tail = &e->queue;
		vm_handle(q->vm, &q->ev);
		free(q);
	}
	e->dispatching = false;
}

void vm_event(struct vm *vm, struct vm_ev *ev)
{
	struct vms *e = vm->vms;
	struct vm_queued *q;

	if (!e->dispatching) {
		e->dispatching = true;
		vm_handle(vm, ev);
		vm_drain(e);
		return;
	}
	/* A client pointer cannot wait: it may be gone by then.  Requests
	 * only come from the loop's top level, where nothing is queued. */
	q = calloc(1, sizeof *q);
	if (!q) {
		daemon_log("vm %s: event %s lost: out of memory", vm->name,
			   vm_event_name(ev->type));
		vm_ev_release(ev);
		return;
	}
	q->vm = vm;
	q->ev = *ev;
	q->ev.c = NULL;
	*e->queue_tail = q;
	e->queue_tail = &q->next;
	/* The event's data and fds belong to the queue now. */
	ev->data = NULL;
	for (size_t i = 0; i < sizeof ev->fds / sizeof *ev->fds; i++)
		ev->fds[i] = -1;
}

void vm_event_simple(struct vm *vm, enum vm_event type, const char *reason)
{
	struct vm_ev ev = { .type = type, .fds = { -1, -1, -1, -1, -1 } };

	if (reason)
		snprintf(ev.reason, sizeof ev.reason, "%s", reason);
	vm_event(vm, &ev);
}

/* --- log followers (vm log -f) --- */

static void vm_follower_gone(void *owner, struct client *c)
{
	struct vm *vm = owner;

	for (size_t i = 0; i < vm->follower_count; i++) {
		if (vm->followers[i] != c)
			continue;
		vm->followers[i] = vm->followers[--vm->follower_count];
		return;
	}
}

void vm_follow(struct vm *vm, struct client *c)
{
	if (vm->follower_count == VM_FOLLOWERS_MAX) {
		control_error(c, "%s: too many log followers", vm->name);
		return;
	}
	vm->followers[vm->follower_count++] = c;
	control_stream(c, vm, NULL, vm_follower_gone);
}

/* --- all of them --- */

void vm_stop_all(struct vms *vms, bool force)
{
	for (struct vm *vm = vms->list; vm; vm = vm->next) {
		if (!vm_active(vm))
			continue;
		struct vm_ev ev = {
			.type = force ? EV_FORCE : EV_STOP,
			.timeout_s = VM_STOP_TIMEOUT_S,
			.fds = { -1, -1, -1, -1, -1 },
		};
		vm_event(vm, &ev);
	}
}

void vms_free(struct vms *vms)
{
	struct vm_queued *q;
	struct vm *vm;

	while ((q = vms->queue)) {
		vms->queue = q->next;
		vm_ev_release(&q->ev);
		free(q);
	}
	vms->queue_tail = &vms->queue;
	while ((vm = vms->list)) {
		vms->list = vm->next;
		vm_timer_close(vm);
		vm_run_free(vm);
		json_decref(vm->config);
		json_decref(vm->link_ids);
		free(vm->dependents);
		free(vm->dir);
		free(vm);
	}
}
