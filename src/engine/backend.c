/* The monitor as the engine sees it: the state machine's backend
 * (vm.h), what links need (links.h), and the messages the monitor sends
 * on its own (a process exited, a run is gone, a VM handed over, ready,
 * shut down).  See backend.h. */
#include "engine/backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/engine.h"

/* How long handed-over VMs have to confirm over QMP before requests are
 * served anyway. */
#define MON_CONFIRM_MS 2000


static struct vm *mon_vm(struct engine *e, json_t *o, bool create)
{
	const char *name = json_string_value(json_object_get(o, "name"));

	if (!name || !vmconfig_name_valid(name))
		return NULL;
	return vm_find(&e->vms, name, create);
}

/* PS_ADOPT: a VM that runs already, with its fds. */
static void mon_adopt(struct engine *e, struct mon_reply *r)
{
	struct vm_ev ev = { .type = EV_LAUNCHED, .adopted = true };
	struct vm *vm = mon_vm(e, r->json, true);
	json_t *pl = json_object_get(r->json, "provider_links"), *o;
	struct ps_linknote ln;
	size_t i;

	if (!vm || r->nfds != 5) {
		daemon_log("adopt: bad message (%zu fds)", r->nfds);
		mon_reply_clear(r);
		return;
	}
	ev.data = json_incref(r->json);
	memcpy(ev.fds, r->fds, sizeof ev.fds);
	r->nfds = 0;
	vm_event(vm, &ev);
	if (!vm->run)
		return;
	if (vm->state == VM_BOOTING) {
		vm->run->confirming = true;
		e->adopting++;
	}
	/* Its links as a client: their taps are in its QEMU. */
	links_client_up(&e->links, vm->name, json_object_get(r->json, "links"));
	/* Its links as a provider, as the last engine left them. */
	json_array_foreach(pl, i, o) {
		const char *client = json_string_value(json_object_get(o, "client"));

		if (!client || !vmconfig_name_valid(client))
			continue;
		memset(&ln, 0, sizeof ln);
		ln.plug = (uint8_t)json_integer_value(json_object_get(o, "plug"));
		ln.port = (int8_t)json_integer_value(json_object_get(o, "port"));
		ln.gen = (uint32_t)json_integer_value(json_object_get(o, "gen"));
		if (ln.plug > PS_PLUG_REMOVING || ln.port < -1 || ln.port >= 64)
			continue;
		if (ln.port >= 0)
			vm->run->ports_busy |= 1ull << ln.port;
		links_adopt(&e->links, client, vm->name,
			    (unsigned int)json_integer_value(json_object_get(o, "id")),
			    &ln);
	}
}

static void mon_exited(struct engine *e, struct mon_reply *r)
{
	struct vm *vm = mon_vm(e, r->json, false);
	const char *why = json_string_value(json_object_get(r->json, "reason"));
	struct vm_ev ev = { .fds = { -1, -1, -1, -1, -1 } };

	if (!vm)
		return;
	ev.type = json_is_true(json_object_get(r->json, "main")) ?
		  EV_QEMU_EXITED : EV_HELPER_EXITED;
	ev.clean = json_is_true(json_object_get(r->json, "clean"));
	snprintf(ev.reason, sizeof ev.reason, "%s", why ? why : "exited");
	vm_event(vm, &ev);
}

/* Serve requests once every handed-over VM is confirmed (or gone): a
 * client never sees a VM that runs as "starting". */
static void mon_serve(struct engine *e)
{
	if (!e->ready || e->adopting || e->control.started)
		return;
	if (control_start(&e->control) < 0)
		daemon_log("control socket: %s", strerror(errno));
	else
		daemon_log("serving requests");
}

static void mon_serve_anyway(struct loop_source *src, uint32_t events)
{
	struct engine *e = src->arg;

	loop_timer_ack(src->fd);
	loop_del(&e->loop, src);
	close(src->fd);
	src->fd = -1;
	if (e->adopting)
		daemon_log("%u handed-over VM(s) not confirmed yet; serving anyway",
			   e->adopting);
	e->adopting = 0;
	mon_serve(e);
}

static void mon_serve_deadline(struct engine *e)
{
	static struct loop_source t;

	t = (struct loop_source){ loop_timer_new(), mon_serve_anyway, e };
	if (t.fd < 0 || loop_add(&e->loop, &t, EPOLLIN) < 0 ||
	    loop_timer_arm(t.fd, MON_CONFIRM_MS) < 0) {
		e->adopting = 0;
		return;
	}
}

static void mon_confirmed(struct engine *e, struct vm *vm)
{
	if (!vm->run || !vm->run->confirming)
		return;
	vm->run->confirming = false;
	if (e->adopting)
		e->adopting--;
	mon_serve(e);
}

void backend_dispatch(void *owner, struct mon_reply *r)
{
	struct engine *e = owner;
	struct vm *vm;

	switch (r->type) {
	case PS_EXITED:
		mon_exited(e, r);
		break;
	case PS_GONE:
		if ((vm = mon_vm(e, r->json, false)))
			vm_event_simple(vm, EV_GONE, NULL);
		break;
	case PS_ADOPT:
		mon_adopt(e, r);
		break;
	case PS_READY:
		e->ready = true;
		links_adopted(&e->links);
		/* A QEMU that does not answer does not keep everyone waiting. */
		if (e->adopting)
			mon_serve_deadline(e);
		mon_serve(e);
		break;
	case PS_SHUTDOWN:
		daemon_log("shutting down: %s every VM",
			   json_is_true(json_object_get(r->json, "force")) ?
			   "forcing off" : "powering off");
		e->shutting_down = true;
		vm_stop_all(&e->vms, json_is_true(json_object_get(r->json, "force")));
		mon_backend.settled(e);
		break;
	default:
		/* A late answer to a request that was forgotten. */
		break;
	}
}

/* --- the state machine's backend --- */

static void mon_loaded(void *owner, struct mon_reply *r, void *arg)
{
	struct vm_ev ev = { .fds = { -1, -1, -1, -1, -1 } };

	ev.type = json_is_true(json_object_get(r->json, "ok")) ?
		  EV_LOADED : EV_LOAD_FAILED;
	ev.data = json_incref(r->json);
	vm_event(arg, &ev);
}

static int mon_vm_load(void *arg, struct vm *vm)
{
	struct engine *e = arg;
	struct ps_load l = { .keep = 1 };

	if (ps_set_name(l.name, vm->name) < 0)
		return -1;
	return mon_request(&e->mon, PS_LOAD, &l, sizeof l, mon_loaded, vm);
}

static void mon_vm_release(void *arg, struct vm *vm)
{
	struct engine *e = arg;

	mon_forget(&e->mon, vm);
	mon_send_name(&e->mon, PS_RELEASE, vm->name);
}

static void mon_launched(void *owner, struct mon_reply *r, void *arg)
{
	struct vm_ev ev = { .fds = { -1, -1, -1, -1, -1 } };
	const char *why = json_string_value(json_object_get(r->json, "error"));

	if (!json_is_true(json_object_get(r->json, "ok")) || r->nfds != 5) {
		ev.type = EV_LAUNCH_FAILED;
		snprintf(ev.reason, sizeof ev.reason, "%s",
			 why ? why : "start failed: the monitor's answer lacks the VM's fds");
		vm_event(arg, &ev);
		return;
	}
	ev.type = EV_LAUNCHED;
	ev.data = json_incref(r->json);
	memcpy(ev.fds, r->fds, sizeof ev.fds);
	r->nfds = 0;
	vm_event(arg, &ev);
}

static int mon_vm_launch(void *arg, struct vm *vm)
{
	struct engine *e = arg;
	struct ps_name n;

	if (ps_set_name(n.name, vm->name) < 0)
		return -1;
	return mon_request(&e->mon, PS_LAUNCH, &n, sizeof n, mon_launched, vm);
}

static int mon_vm_kill(void *arg, struct vm *vm)
{
	struct engine *e = arg;

	/* A launch answer still on its way is no longer wanted. */
	mon_forget(&e->mon, vm);
	return mon_send_name(&e->mon, PS_KILL, vm->name);
}

static int mon_vm_powerdown(void *arg, struct vm *vm)
{
	if (!vm->run)
		return -1;
	return qmps_call(&vm->run->qmp, "system_powerdown", NULL, -1, NULL, NULL);
}

static void mon_vm_note(void *arg, struct vm *vm)
{
	struct engine *e = arg;
	struct ps_note n;

	memset(&n, 0, sizeof n);
	if (ps_set_name(n.name, vm->name) < 0)
		return;
	n.state = (uint8_t)vm->state;
	n.since = vm->since;
	snprintf(n.reason, sizeof n.reason, "%s", vm->reason);
	mon_send(&e->mon, PS_NOTE, &n, sizeof n);
}

static void mon_vm_running(void *arg, struct vm *vm)
{
	struct engine *e = arg;

	mon_confirmed(e, vm);
	links_client_up(&e->links, vm->name,
			json_object_get(vm->run->launched, "links"));
	links_vm_running(&e->links, vm->name);
}

static void mon_vm_down(void *arg, struct vm *vm)
{
	struct engine *e = arg;

	mon_confirmed(e, vm);
	links_vm_down(&e->links, vm->name);
}

static void mon_vm_qmp_event(void *arg, struct vm *vm,
			     const struct qmp_msg *msg)
{
	struct engine *e = arg;

	links_event(&e->links, vm->name, msg);
}

static void mon_vm_settled(void *arg)
{
	struct engine *e = arg;

	if (!e->shutting_down || vm_any_active(&e->vms))
		return;
	daemon_log("every VM is down");
	mon_send(&e->mon, PS_BYE, NULL, 0);
	loop_quit(&e->loop);
}

const struct vm_backend mon_backend = {
	.load = mon_vm_load,
	.release = mon_vm_release,
	.launch = mon_vm_launch,
	.kill = mon_vm_kill,
	.powerdown = mon_vm_powerdown,
	.note = mon_vm_note,
	.running = mon_vm_running,
	.down = mon_vm_down,
	.qmp_event = mon_vm_qmp_event,
	.settled = mon_vm_settled,
};

/* --- what links need --- */

static bool mon_link_peer(void *arg, const char *name, struct links_peer *p)
{
	struct engine *e = arg;
	struct vm *vm = vm_find(&e->vms, name, false);

	/* Running, or handed over and finishing its handshake: the session
	 * takes commands after its qmp_capabilities, in order. */
	if (!vm || !vm->run || !qmps_is_open(&vm->run->qmp) ||
	    !(vm->state == VM_RUNNING ||
	      (vm->state == VM_BOOTING && vm->run->adopted)))
		return false;
	p->qmp = &vm->run->qmp;
	p->hotplug_ports = vm->run->hotplug_ports;
	p->ports_busy = &vm->run->ports_busy;
	return true;
}

static int mon_link_plug(void *arg, const char *client, const char *provider,
			 char *err, size_t len)
{
	struct engine *e = arg;
	struct ps_pair pair;
	struct mon_reply r;
	const char *why;
	int fd = -1;

	if (ps_set_name(pair.client, client) < 0 ||
	    ps_set_name(pair.provider, provider) < 0 ||
	    mon_call(&e->mon, PS_PLUG, &pair, sizeof pair, &r) < 0) {
		snprintf(err, len, "tap: %s", strerror(errno));
		return -1;
	}
	why = json_string_value(json_object_get(r.json, "error"));
	if (r.type == PS_TAP && json_is_true(json_object_get(r.json, "ok")) &&
	    r.nfds == 1) {
		fd = r.fds[0];
		r.fds[0] = -1;
	} else {
		snprintf(err, len, "%s", why ? why : "tap: no fd in the answer");
	}
	mon_reply_clear(&r);
	return fd;
}

static void mon_link_unplugged(void *arg, const char *client,
			       const char *provider)
{
	struct engine *e = arg;
	struct ps_pair pair;

	if (ps_set_name(pair.client, client) == 0 &&
	    ps_set_name(pair.provider, provider) == 0)
		mon_send(&e->mon, PS_UNPLUGGED, &pair, sizeof pair);
}

static void mon_link_note(void *arg, const struct ps_linknote *ln)
{
	struct engine *e = arg;

	mon_send(&e->mon, PS_LINKNOTE, ln, sizeof *ln);
}

const struct links_ops mon_links_ops = {
	.peer = mon_link_peer,
	.plug = mon_link_plug,
	.unplugged = mon_link_unplugged,
	.note = mon_link_note,
};
