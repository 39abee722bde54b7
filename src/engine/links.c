/* Inter-VM links: the provider end's hot-plug over QMP.  See links.h and
 * docs/networking.md. */
#include "engine/links.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "common/linkaddr.h"
#include "common/log.h"
#include "config/vmconfig.h"
#include "net/ifname.h"
#include "vmm/vmm.h"

static const char *const links_plug_names[] = {
	[PS_PLUG_NONE] = "none",
	[PS_PLUG_ADDING] = "plugging",
	[PS_PLUG_UP] = "plugged",
	[PS_PLUG_REMOVING] = "unplugging",
};

/* The command in flight while adding. */
enum links_step { LINKS_GETFD, LINKS_NETDEV, LINKS_DEVICE };

static const char *const links_step_names[] = {
	[LINKS_GETFD] = "getfd",
	[LINKS_NETDEV] = "netdev_add",
	[LINKS_DEVICE] = "device_add",
};

struct vmlink {
	struct vmlink *next;
	struct links *ls;
	char client[VMCONFIG_NAME_MAX + 1];
	char provider[VMCONFIG_NAME_MAX + 1];
	uint16_t id;
	char qid[32];             /* "link-a546-N": fd, netdev and device id
				   * of plug N (a device whose unplug was
				   * never acknowledged may keep the last) */
	unsigned int gen;
	bool client_on;           /* the client runs, its tap on the bridge */
	enum ps_plug plug;        /* the provider's end */
	enum links_step step;
	bool unplug_wanted;       /* the client went down while adding */
	int port;                 /* the provider's hot-plug port, or -1 */
	struct loop_source timer; /* deadline of the current plug or unplug */
	struct timespec t0;       /* when it began, for the log */
	char why[256];            /* why the provider's end is down */
};

static void links_plug(struct vmlink *l);
static void links_unplug(struct vmlink *l);

static long links_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 +
	       (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static bool links_peer(struct vmlink *l, struct links_peer *p)
{
	return l->ls->ops->peer(l->ls->arg, l->provider, p);
}

static struct vmlink *links_find(struct links *ls, const char *client,
				 const char *provider)
{
	for (struct vmlink *l = ls->list; l; l = l->next)
		if (!strcmp(l->client, client) && !strcmp(l->provider, provider))
			return l;
	return NULL;
}

static void links_note(struct vmlink *l)
{
	struct ps_linknote ln;

	memset(&ln, 0, sizeof ln);
	snprintf(ln.pair.client, sizeof ln.pair.client, "%s", l->client);
	snprintf(ln.pair.provider, sizeof ln.pair.provider, "%s", l->provider);
	ln.plug = (uint8_t)l->plug;
	ln.port = (int8_t)l->port;
	ln.gen = l->gen;
	l->ls->ops->note(l->ls->arg, &ln);
}

static void links_timer_stop(struct vmlink *l)
{
	if (l->timer.fd < 0)
		return;
	loop_del(l->ls->loop, &l->timer);
	close(l->timer.fd);
	l->timer.fd = -1;
}

static void links_timer_ready(struct loop_source *src, uint32_t events);

static int links_timer_arm(struct vmlink *l, unsigned long ms)
{
	if (l->timer.fd < 0) {
		l->timer = (struct loop_source){ loop_timer_new(),
						 links_timer_ready, l };
		if (l->timer.fd < 0)
			return -1;
		if (loop_add(l->ls->loop, &l->timer, EPOLLIN) < 0) {
			close(l->timer.fd);
			l->timer.fd = -1;
			return -1;
		}
	}
	return loop_timer_arm(l->timer.fd, ms);
}

static struct vmlink *links_new(struct links *ls, const char *client,
				const char *provider, uint16_t id)
{
	struct vmlink *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->ls = ls;
	snprintf(l->client, sizeof(l->client), "%s", client);
	snprintf(l->provider, sizeof(l->provider), "%s", provider);
	l->id = id;
	l->port = -1;
	l->timer.fd = -1;
	l->next = ls->list;
	ls->list = l;
	return l;
}

static void links_free(struct vmlink *l)
{
	struct vmlink **pp;
	struct links_peer p;

	if (links_peer(l, &p))
		qmps_forget(p.qmp, l);
	links_timer_stop(l);
	for (pp = &l->ls->list; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	daemon_log("link %s -> %s (%04x): forgotten", l->client, l->provider,
		   l->id);
	free(l);
}

/* The provider's end is gone: its tap may go too. */
static void links_end_gone(struct vmlink *l)
{
	l->plug = PS_PLUG_NONE;
	l->port = -1;
	l->unplug_wanted = false;
	l->ls->ops->unplugged(l->ls->arg, l->client, l->provider);
	links_note(l);
	if (!l->client_on)
		links_free(l);
}

/* --- the provider's end: plug --- */

/* Adding failed at l->step: undo what QEMU holds, free the port unless a
 * device may sit in it. */
static void links_plug_undo(struct vmlink *l, bool port_dead)
{
	json_t *args = json_pack("{s:s}", "id", l->qid);
	json_t *fdargs = json_pack("{s:s}", "fdname", l->qid);
	struct links_peer p;

	links_timer_stop(l);
	if (links_peer(l, &p)) {
		qmps_forget(p.qmp, l);
		if (l->step == LINKS_DEVICE)
			qmps_call(p.qmp, "netdev_del", args, -1, NULL, NULL);
		else if (l->step == LINKS_NETDEV)
			qmps_call(p.qmp, "closefd", fdargs, -1, NULL, NULL);
		if (!port_dead && l->port >= 0)
			*p.ports_busy &= ~(1ull << l->port);
	}
	json_decref(args);
	json_decref(fdargs);
	links_end_gone(l);
}

static void links_plug_reply(void *owner, const struct qmp_msg *msg,
			     void *arg)
{
	struct vmlink *l = arg;
	char mac[LINKADDR_MAC_STRLEN], bus[16];
	uint8_t m[LINKADDR_MAC_LEN];
	struct links_peer p;
	json_t *args = NULL;
	int r = -1;

	if (l->plug != PS_PLUG_ADDING || !links_peer(l, &p))
		return;
	if (msg->kind == QMP_ERROR) {
		char err[200];

		qmps_error(msg, err, sizeof err);
		snprintf(l->why, sizeof(l->why), "%s on %s: %.150s",
			 links_step_names[l->step], l->provider, err);
		daemon_log("link %s -> %s (%04x): %s", l->client, l->provider,
			   l->id, l->why);
		links_plug_undo(l, false);
		return;
	}
	switch (l->step) {
	case LINKS_GETFD:
		args = json_pack("{s:s,s:s,s:s}", "type", "tap", "id", l->qid,
				 "fd", l->qid);
		l->step = LINKS_NETDEV;
		r = qmps_call(p.qmp, "netdev_add", args, -1, links_plug_reply, l);
		break;
	case LINKS_NETDEV:
		linkaddr_mac(LINKADDR_PROVIDER, l->id, m);
		linkaddr_format_mac(m, mac);
		vmm_hotplug_port_id((unsigned int)l->port, bus, sizeof(bus));
		args = json_pack("{s:s,s:s,s:s,s:s,s:s}", "driver",
				 "virtio-net-pci", "id", l->qid, "netdev", l->qid,
				 "bus", bus, "mac", mac);
		l->step = LINKS_DEVICE;
		r = qmps_call(p.qmp, "device_add", args, -1, links_plug_reply, l);
		break;
	case LINKS_DEVICE:
		vmm_hotplug_port_id((unsigned int)l->port, bus, sizeof(bus));
		links_timer_stop(l);
		l->plug = PS_PLUG_UP;
		l->why[0] = '\0';
		links_note(l);
		daemon_log("link %s -> %s (%04x): up, %s port %s, plugged in %ld ms",
			   l->client, l->provider, l->id, l->provider, bus,
			   links_ms_since(&l->t0));
		if (!l->client_on || l->unplug_wanted)
			links_unplug(l);
		return;
	}
	json_decref(args);
	if (r < 0) {
		snprintf(l->why, sizeof(l->why), "%s on %s: %s",
			 links_step_names[l->step], l->provider, strerror(errno));
		links_plug_undo(l, false);
	}
}

/* Hot-plug l's provider end if both ends run and it is not there. */
static void links_plug(struct vmlink *l)
{
	struct links_peer p;
	unsigned int port;
	json_t *args;
	int fd, r;

	if (l->plug != PS_PLUG_NONE || !l->client_on || !links_peer(l, &p))
		return;
	for (port = 0; port < p.hotplug_ports &&
	     (*p.ports_busy & (1ull << port)); port++)
		;
	if (port >= p.hotplug_ports) {
		if (!p.hotplug_ports)
			snprintf(l->why, sizeof(l->why),
				 "%s started as no VM's provider, so it has no hot-plug port: restart it",
				 l->provider);
		else
			snprintf(l->why, sizeof(l->why),
				 "%s has no free hot-plug port (it has %u)",
				 l->provider, p.hotplug_ports);
		goto fail;
	}
	fd = l->ls->ops->plug(l->ls->arg, l->client, l->provider, l->why,
			      sizeof l->why);
	if (fd < 0)
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, &l->t0);
	snprintf(l->qid, sizeof(l->qid), "link-%04x-%u", l->id, ++l->gen);
	args = json_pack("{s:s}", "fdname", l->qid);
	r = qmps_call(p.qmp, "getfd", args, fd, links_plug_reply, l);
	json_decref(args);
	/* Sent: the fd in flight keeps the tap alive until QEMU has it. */
	close(fd);
	if (r < 0 || links_timer_arm(l, LINKS_PLUG_TIMEOUT_MS) < 0) {
		snprintf(l->why, sizeof(l->why), "getfd on %s: %s", l->provider,
			 strerror(errno));
		qmps_forget(p.qmp, l);
		l->ls->ops->unplugged(l->ls->arg, l->client, l->provider);
		goto fail;
	}
	*p.ports_busy |= 1ull << port;
	l->port = (int)port;
	l->plug = PS_PLUG_ADDING;
	l->step = LINKS_GETFD;
	links_note(l);
	return;
fail:
	daemon_log("link %s -> %s (%04x): down: %s", l->client, l->provider,
		   l->id, l->why);
}

/* --- the provider's end: unplug --- */

/* The unplug is over, acknowledged by the guest or not: drop the netdev
 * (QEMU closes its tap), then plug again (if replug) or forget the link
 * once its client is down too. */
static void links_unplug_done(struct vmlink *l, bool acked, bool replug)
{
	json_t *args = json_pack("{s:s}", "id", l->qid);
	char port[16] = "?";
	struct links_peer p;
	bool client_on = l->client_on;

	if (l->port >= 0)
		vmm_hotplug_port_id((unsigned int)l->port, port, sizeof(port));
	links_timer_stop(l);
	if (links_peer(l, &p)) {
		qmps_forget(p.qmp, l);
		qmps_call(p.qmp, "netdev_del", args, -1, NULL, NULL);
		/* An unacknowledged device still sits in its port. */
		if (acked && l->port >= 0)
			*p.ports_busy &= ~(1ull << l->port);
	}
	json_decref(args);
	if (acked)
		daemon_log("link %s -> %s (%04x): unplugged in %ld ms",
			   l->client, l->provider, l->id, links_ms_since(&l->t0));
	else
		daemon_log("link %s -> %s (%04x): %s did not acknowledge the unplug; NIC dropped, port %s unusable until it restarts",
			   l->client, l->provider, l->id, l->provider, port);
	links_end_gone(l);
	if (client_on && replug)
		links_plug(l);
}

static void links_unplug_reply(void *owner, const struct qmp_msg *msg,
			       void *arg)
{
	struct vmlink *l = arg;
	char err[200];

	if (l->plug != PS_PLUG_REMOVING || msg->kind != QMP_ERROR)
		return; /* accepted: DEVICE_DELETED follows */
	qmps_error(msg, err, sizeof err);
	daemon_log("link %s -> %s (%04x): device_del: %s", l->client,
		   l->provider, l->id, err);
	links_unplug_done(l, false, true);
}

static void links_unplug(struct vmlink *l)
{
	struct links_peer p;
	json_t *args;
	int r = -1;

	if (l->plug == PS_PLUG_ADDING) {
		l->unplug_wanted = true;
		return;
	}
	if (l->plug != PS_PLUG_UP)
		return;
	l->unplug_wanted = false;
	l->plug = PS_PLUG_REMOVING;
	links_note(l);
	clock_gettime(CLOCK_MONOTONIC, &l->t0);
	args = json_pack("{s:s}", "id", l->qid);
	if (links_peer(l, &p))
		r = qmps_call(p.qmp, "device_del", args, -1, links_unplug_reply, l);
	json_decref(args);
	if (r < 0 || links_timer_arm(l, LINKS_UNPLUG_TIMEOUT_MS) < 0)
		links_unplug_done(l, false, true);
}

static void links_timer_ready(struct loop_source *src, uint32_t events)
{
	struct vmlink *l = src->arg;

	loop_timer_ack(src->fd);
	if (l->plug == PS_PLUG_REMOVING) {
		links_unplug_done(l, false, true);
	} else if (l->plug == PS_PLUG_ADDING) {
		snprintf(l->why, sizeof(l->why), "%s on %s: no answer in %d ms",
			 links_step_names[l->step], l->provider,
			 LINKS_PLUG_TIMEOUT_MS);
		daemon_log("link %s -> %s (%04x): %s", l->client, l->provider,
			   l->id, l->why);
		links_plug_undo(l, true);
	}
}

void links_event(struct links *ls, const char *name, const struct qmp_msg *msg)
{
	const char *dev;
	struct vmlink *l;

	if (strcmp(msg->event, "DEVICE_DELETED"))
		return;
	/* data.device is the id we gave; anything else is not ours. */
	dev = json_string_value(json_object_get(msg->value, "device"));
	if (!dev)
		return;
	for (l = ls->list; l; l = l->next) {
		if (!l->qid[0] || strcmp(l->qid, dev) || strcmp(l->provider, name))
			continue;
		if (l->plug == PS_PLUG_REMOVING) {
			links_unplug_done(l, true, true);
		} else if (l->plug == PS_PLUG_UP) {
			/* The guest ejected it by itself: leave the link down
			 * rather than re-plug into a guest that keeps saying no. */
			snprintf(l->why, sizeof(l->why),
				 "%s's guest removed the NIC", l->provider);
			daemon_log("link %s -> %s (%04x): down: %s", l->client,
				   l->provider, l->id, l->why);
			links_unplug_done(l, true, false);
		}
		return;
	}
}

/* --- VM transitions --- */

void links_client_up(struct links *ls, const char *client, json_t *links)
{
	const char *provider;
	struct vmlink *l;
	json_t *o;
	json_int_t id;
	size_t i;

	json_array_foreach(links, i, o) {
		provider = json_string_value(json_object_get(o, "provider"));
		id = json_integer_value(json_object_get(o, "id"));
		if (!provider || !vmconfig_name_valid(provider) || id < 0 ||
		    id > UINT16_MAX)
			continue;
		l = links_find(ls, client, provider);
		if (!l && !(l = links_new(ls, client, provider, (uint16_t)id))) {
			daemon_log("link %s -> %s: out of memory", client, provider);
			continue;
		}
		/* A link still unplugging from the last run is taken over:
		 * the provider's end comes back after. */
		l->id = (uint16_t)id;
		l->client_on = true;
		l->unplug_wanted = false;
		links_plug(l);
	}
}

void links_adopt(struct links *ls, const char *client, const char *provider,
		 unsigned int id, const struct ps_linknote *ln)
{
	struct vmlink *l = links_find(ls, client, provider);

	if (!l && !(l = links_new(ls, client, provider, (uint16_t)id)))
		return;
	/* The next plug gets a new number: a device caught half-way by the
	 * restart may still hold the old one in QEMU. */
	l->gen = ln->gen;
	snprintf(l->qid, sizeof(l->qid), "link-%04x-%u", l->id, l->gen);
	l->port = ln->port;
	if (ln->plug == PS_PLUG_UP)
		l->plug = PS_PLUG_UP;
	else if (ln->plug != PS_PLUG_NONE)
		snprintf(l->why, sizeof(l->why),
			 "caught half-way by a restart; plugged again on a new port");
}

void links_adopted(struct links *ls)
{
	struct vmlink *l, *next;

	/* A provider's end whose client did not come back: unplug it. */
	for (l = ls->list; l; l = next) {
		next = l->next;
		if (l->client_on)
			continue;
		if (l->plug == PS_PLUG_UP)
			links_unplug(l);
		else
			links_end_gone(l);
	}
}

void links_vm_running(struct links *ls, const char *name)
{
	for (struct vmlink *l = ls->list; l; l = l->next)
		if (!strcmp(l->client, name) || !strcmp(l->provider, name))
			links_plug(l);
}

void links_vm_down(struct links *ls, const char *name)
{
	struct vmlink *l, *next;

	for (l = ls->list; l; l = next) {
		next = l->next;
		if (!strcmp(l->provider, name)) {
			/* Its QEMU took the tap and the device along. */
			links_timer_stop(l);
			snprintf(l->why, sizeof(l->why), "%s is not running",
				 l->provider);
			if (l->plug != PS_PLUG_NONE)
				links_end_gone(l);
			else if (!l->client_on)
				links_free(l);
		} else if (!strcmp(l->client, name) && l->client_on) {
			l->client_on = false;
			if (l->plug == PS_PLUG_NONE)
				links_free(l);
			else
				links_unplug(l);
		}
	}
}

void links_init(struct links *ls, struct loop *loop, const char *prefix,
		const struct links_ops *ops, void *arg)
{
	ls->loop = loop;
	ls->prefix = prefix;
	ls->ops = ops;
	ls->arg = arg;
	ls->list = NULL;
}

void links_fini(struct links *ls)
{
	struct vmlink *l;

	while ((l = ls->list)) {
		ls->list = l->next;
		links_timer_stop(l);
		free(l);
	}
}

/* --- vm info --- */

static json_t *links_entry_json(struct links *ls, const char *role,
				const char *client, const char *provider,
				bool have_id, uint16_t id)
{
	struct vmlink *l = links_find(ls, client, provider);
	char mac[LINKADDR_MAC_STRLEN], ip[16], hex[5];
	char br[IFNAMSIZ], c[IFNAMSIZ], p[IFNAMSIZ], port[16];
	uint8_t m[LINKADDR_MAC_LEN];
	uint32_t a;
	json_t *o;

	o = json_pack("{s:s,s:s,s:s}", "role", role, "client", client,
		      "provider", provider);
	if (!o)
		return NULL;
	json_object_set_new(o, "state", json_string(
		l && l->client_on && l->plug == PS_PLUG_UP ? "up" : "down"));
	json_object_set_new(o, "provider_end", json_string(
		links_plug_names[l ? l->plug : PS_PLUG_NONE]));
	if (l && l->why[0] && l->plug != PS_PLUG_UP)
		json_object_set_new(o, "reason", json_string(l->why));
	if (!have_id) {
		/* No address until the client first starts. */
		json_object_set_new(o, "id", json_null());
		return o;
	}
	snprintf(hex, sizeof(hex), "%04x", id);
	json_object_set_new(o, "id", json_string(hex));
	linkaddr_mac(LINKADDR_CLIENT, id, m);
	linkaddr_format_mac(m, mac);
	json_object_set_new(o, "client_mac", json_string(mac));
	linkaddr_mac(LINKADDR_PROVIDER, id, m);
	linkaddr_format_mac(m, mac);
	json_object_set_new(o, "provider_mac", json_string(mac));
	a = linkaddr_client_ipv4(id);
	snprintf(ip, sizeof(ip), "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff,
		 (a >> 8) & 0xff, a & 0xff);
	json_object_set_new(o, "ipv4", json_string(ip));
	if (ifname_format(ls->prefix, IFNAME_BRIDGE, id, br) == 0 &&
	    ifname_format(ls->prefix, IFNAME_CLIENT, id, c) == 0 &&
	    ifname_format(ls->prefix, IFNAME_PROVIDER, id, p) == 0)
		json_object_set_new(o, "interfaces", json_pack(
			"{s:s,s:s,s:s}", "bridge", br, "client_tap", c,
			"provider_tap", p));
	if (l && l->port >= 0)
		vmm_hotplug_port_id((unsigned int)l->port, port, sizeof(port));
	json_object_set_new(o, "provider_port", l && l->port >= 0 ?
			    json_string(port) : json_null());
	return o;
}

json_t *links_json(struct links *ls, const char *name, json_t *client_links)
{
	json_t *a = json_array(), *o, *id;
	const char *provider;
	size_t i;

	json_array_foreach(client_links, i, o) {
		provider = json_string_value(json_object_get(o, "provider"));
		id = json_object_get(o, "id");
		if (!provider)
			continue;
		json_array_append_new(a, links_entry_json(ls, "client", name,
			provider, json_is_integer(id),
			(uint16_t)json_integer_value(id)));
	}
	for (struct vmlink *l = ls->list; a && l; l = l->next)
		if (!strcmp(l->provider, name) && l->client_on)
			json_array_append_new(a, links_entry_json(ls, "provider",
				l->client, l->provider, true, l->id));
	return a;
}
