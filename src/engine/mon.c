/* The engine's channel to the monitor and the backend of its state
 * machine.  See mon.h. */
#include "engine/mon.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/engine.h"

/* A message that arrived while a synchronous request waited. */
struct mon_msg {
	struct mon_msg *next;
	uint32_t seq;
	struct mon_reply r;
};

struct mon_wait {
	struct mon_wait *next;
	uint32_t seq;
	mon_reply_fn *fn;
	void *arg;
};

/* How long a synchronous request may wait: the monitor answers these at
 * once, so only a monitor that is gone (or wedged) takes this long. */
#define MON_SYNC_TIMEOUT_MS 10000
/* How long handed-over VMs have to confirm over QMP before requests are
 * served anyway. */
#define MON_CONFIRM_MS 2000

void mon_reply_clear(struct mon_reply *r)
{
	json_decref(r->json);
	r->json = NULL;
	for (size_t i = 0; i < r->nfds; i++)
		if (r->fds[i] >= 0)
			close(r->fds[i]);
	r->nfds = 0;
}

/* The monitor is gone: nobody can launch, kill or restart anything for
 * us, and it restarts the engine when it comes back. */
static void mon_lost(struct mon *m, const char *why)
{
	daemon_log("the monitor is gone (%s): exiting", why);
	exit(1);
}

/* Read one message: 1, 0 when none waits, or the engine exits. */
static int mon_read(struct mon *m, uint32_t *seq, struct mon_reply *r)
{
	static char buf[PS_PAYLOAD_MAX + 1];
	struct ps_hdr hdr;
	json_error_t jerr;
	ssize_t n;

	memset(r, 0, sizeof *r);
	n = ps_recv(m->src.fd, &hdr, buf, PS_PAYLOAD_MAX, r->fds);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0 || (n == 0 && hdr.type == 0))
		mon_lost(m, n < 0 ? strerror(errno) : "end of stream");
	r->type = hdr.type;
	r->nfds = hdr.nfds;
	*seq = hdr.seq;
	r->json = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(r->json)) {
		daemon_log("monitor message %u: not a JSON object: %s",
			   hdr.type, jerr.text);
		mon_reply_clear(r);
		r->json = json_object();
	}
	return 1;
}

static void mon_queue(struct mon *m, uint32_t seq, struct mon_reply *r)
{
	struct mon_msg *q = calloc(1, sizeof *q);

	if (!q) {
		daemon_log("monitor message %u lost: out of memory", r->type);
		mon_reply_clear(r);
		return;
	}
	q->seq = seq;
	q->r = *r;
	*m->queue_tail = q;
	m->queue_tail = &q->next;
	loop_defer(&m->e->loop, &m->drain);
}

static int mon_next_seq(struct mon *m)
{
	if (++m->seq == 0)
		m->seq = 1;
	return (int)m->seq;
}

int mon_send(struct mon *m, uint16_t type, const void *payload, size_t len)
{
	return ps_send(m->src.fd, type, (uint32_t)mon_next_seq(m), payload, len,
		       NULL, 0);
}

int mon_send_name(struct mon *m, uint16_t type, const char *name)
{
	struct ps_name n;

	if (ps_set_name(n.name, name) < 0)
		return -1;
	return mon_send(m, type, &n, sizeof n);
}

/* Send and wait for the answer with the same number; what else comes
 * meanwhile is queued.  The caller clears r. */
static int mon_call(struct mon *m, uint16_t type, const void *payload,
		    size_t len, struct mon_reply *r)
{
	uint32_t seq = (uint32_t)mon_next_seq(m), got;
	struct pollfd p = { .fd = m->src.fd, .events = POLLIN };
	int n;

	if (ps_send(m->src.fd, type, seq, payload, len, NULL, 0) < 0)
		return -1;
	for (;;) {
		while (mon_read(m, &got, r)) {
			if (got == seq)
				return 0;
			mon_queue(m, got, r);
		}
		n = poll(&p, 1, MON_SYNC_TIMEOUT_MS);
		if (n == 0)
			mon_lost(m, "no answer");
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

int mon_request(struct mon *m, uint16_t type, const void *payload,
		size_t len, mon_reply_fn *fn, void *arg)
{
	struct mon_wait *w = calloc(1, sizeof *w);

	if (!w)
		return -1;
	w->seq = (uint32_t)mon_next_seq(m);
	w->fn = fn;
	w->arg = arg;
	if (ps_send(m->src.fd, type, w->seq, payload, len, NULL, 0) < 0) {
		free(w);
		return -1;
	}
	w->next = m->waits;
	m->waits = w;
	return 0;
}

void mon_forget(struct mon *m, void *arg)
{
	struct mon_wait **pp = &m->waits, *w;

	while ((w = *pp)) {
		if (w->arg == arg) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

json_t *mon_list(struct mon *m)
{
	struct mon_reply r;
	json_t *all = json_array(), *names;
	bool more = true;

	if (!all)
		return NULL;
	/* The names come in parts; the first answers the request. */
	if (mon_call(m, PS_LIST, NULL, 0, &r) < 0)
		goto fail;
	for (;;) {
		names = json_object_get(r.json, "names");
		more = json_is_true(json_object_get(r.json, "more"));
		if (r.type != PS_NAMES || !json_is_array(names) ||
		    json_array_extend(all, names) < 0) {
			mon_reply_clear(&r);
			errno = EPROTO;
			goto fail;
		}
		mon_reply_clear(&r);
		if (!more)
			return all;
		if (mon_call(m, PS_LIST, NULL, 0, &r) < 0)
			goto fail;
	}
fail:
	json_decref(all);
	return NULL;
}

int mon_lookup(struct mon *m, const char *name)
{
	struct mon_reply r;
	struct ps_name n;
	int found;

	if (ps_set_name(n.name, name) < 0)
		return -1;
	if (mon_call(m, PS_LOOKUP, &n, sizeof n, &r) < 0)
		return -1;
	found = json_is_true(json_object_get(r.json, "exists"));
	mon_reply_clear(&r);
	return found;
}

/* --- messages from the monitor --- */

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

static void mon_dispatch(struct engine *e, uint32_t seq, struct mon_reply *r)
{
	struct mon_wait **pp, *w;
	struct vm *vm;

	for (pp = &e->mon.waits; (w = *pp); pp = &w->next) {
		if (w->seq != seq)
			continue;
		*pp = w->next;
		w->fn(e, r, w->arg);
		free(w);
		mon_reply_clear(r);
		return;
	}
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
	mon_reply_clear(r);
}

static void mon_drain(struct loop_deferred *d)
{
	struct mon *m = d->arg;
	struct mon_msg *q;

	while ((q = m->queue)) {
		m->queue = q->next;
		if (!m->queue)
			m->queue_tail = &m->queue;
		mon_dispatch(m->e, q->seq, &q->r);
		free(q);
	}
}

static void mon_ready(struct loop_source *src, uint32_t events)
{
	struct mon *m = src->arg;
	struct mon_reply r;
	uint32_t seq;
	int n = 0;

	/* Older messages first. */
	mon_drain(&m->drain);
	while (n++ < 64 && mon_read(m, &seq, &r))
		mon_dispatch(m->e, seq, &r);
}

int mon_open(struct mon *m, struct engine *e, int fd)
{
	memset(m, 0, sizeof *m);
	m->e = e;
	m->queue_tail = &m->queue;
	m->src = (struct loop_source){ fd, mon_ready, m };
	m->drain = (struct loop_deferred){ .run = mon_drain, .arg = m };
	return loop_add(&e->loop, &m->src, EPOLLIN);
}

void mon_close(struct mon *m)
{
	struct mon_wait *w;
	struct mon_msg *q;

	loop_undefer(&m->e->loop, &m->drain);
	while ((q = m->queue)) {
		m->queue = q->next;
		mon_reply_clear(&q->r);
		free(q);
	}
	while ((w = m->waits)) {
		m->waits = w->next;
		free(w);
	}
	if (m->src.fd >= 0) {
		loop_del(&m->e->loop, &m->src);
		close(m->src.fd);
	}
	m->src.fd = -1;
}

/* --- the state machine's backend --- */

static void mon_loaded(struct engine *e, struct mon_reply *r, void *arg)
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

static void mon_launched(struct engine *e, struct mon_reply *r, void *arg)
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
