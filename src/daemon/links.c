/* Inter-VM links.  See links.h and docs/networking.md. */
#include "daemon/links.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/linkaddr.h"
#include "daemon/vmstate.h"
#include "net/addrtable.h"
#include "net/bridge.h"
#include "net/ifname.h"
#include "net/link.h"
#include "net/tap.h"

/* QEMU answers these without the guest, but its monitor shares a thread
 * with TCG: 30 guests booting on 2 cores delayed answers past 10 s. */
#define LINKS_PLUG_TIMEOUT_MS 60000

enum links_plug { LINKS_NONE, LINKS_ADDING, LINKS_UP, LINKS_REMOVING };

static const char *const links_plug_names[] = {
	[LINKS_NONE] = "none",
	[LINKS_ADDING] = "plugging",
	[LINKS_UP] = "plugged",
	[LINKS_REMOVING] = "unplugging",
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
	struct daemon *d;
	char client[VMCONFIG_NAME_MAX + 1];
	char provider[VMCONFIG_NAME_MAX + 1];
	uint16_t id;
	char qid[32];             /* "link-a546-N": fd, netdev and device id
				   * of plug N (a device whose unplug was
				   * never acknowledged may keep the last) */
	unsigned int gen;
	char br[IFNAMSIZ], ctap[IFNAMSIZ], ptap[IFNAMSIZ];
	bool client_on;           /* the client is up, its tap on the bridge */
	enum links_plug plug;     /* the provider's end */
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

static struct vm *links_provider(const struct vmlink *l)
{
	return vmstate_find(l->d, l->provider, false);
}

static struct vmlink *links_find(struct daemon *d, const char *client,
				 const char *provider)
{
	struct vmlink *l;

	for (l = d->links; l; l = l->next)
		if (!strcmp(l->client, client) && !strcmp(l->provider, provider))
			return l;
	return NULL;
}

/* Delete a host interface of ours; gone already is fine. */
static void links_del_if(const char *name)
{
	if (link_delete(name) < 0 && errno != ENODEV)
		daemon_log("interface %s: delete: %s", name, strerror(errno));
}

static void links_timer_stop(struct vmlink *l)
{
	if (l->timer.fd < 0)
		return;
	loop_del(&l->d->loop, &l->timer);
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
		if (loop_add(&l->d->loop, &l->timer, EPOLLIN) < 0) {
			close(l->timer.fd);
			l->timer.fd = -1;
			return -1;
		}
	}
	return loop_timer_arm(l->timer.fd, ms);
}

static struct vmlink *links_new(struct daemon *d, const char *client,
				const char *provider, uint16_t id)
{
	struct vmlink *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->d = d;
	snprintf(l->client, sizeof(l->client), "%s", client);
	snprintf(l->provider, sizeof(l->provider), "%s", provider);
	l->id = id;
	l->port = -1;
	l->timer.fd = -1;
	if (ifname_format(d->link_prefix, IFNAME_BRIDGE, id, l->br) < 0 ||
	    ifname_format(d->link_prefix, IFNAME_CLIENT, id, l->ctap) < 0 ||
	    ifname_format(d->link_prefix, IFNAME_PROVIDER, id, l->ptap) < 0) {
		free(l);
		return NULL;
	}
	l->next = d->links;
	d->links = l;
	return l;
}

/* Forget l and every host interface it had. */
static void links_free(struct vmlink *l)
{
	struct vmlink **pp;
	struct vm *pv = links_provider(l);

	if (pv)
		vmstate_qmp_forget(pv, l);
	links_timer_stop(l);
	links_del_if(l->ptap);
	links_del_if(l->ctap);
	links_del_if(l->br);
	for (pp = &l->d->links; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	daemon_log("link %s -> %s (%04x): removed", l->client, l->provider, l->id);
	free(l);
}

/* A tap on bridge br, quiet and up, its fd in *fd.  A tap of that name
 * left attached to a dead link is replaced. */
static int links_tap(const char *br, const char *name, int *fd)
{
	int saved;

	if (tap_open(name, fd) < 0) {
		if (errno != EBUSY)
			return -1;
		links_del_if(name);
		if (tap_open(name, fd) < 0)
			return -1;
	}
	if (link_set_quiet(name) < 0 || bridge_add_if(br, name) < 0 ||
	    link_set_up(name) < 0) {
		saved = errno;
		close(*fd);
		links_del_if(name);
		errno = saved;
		return -1;
	}
	return 0;
}

static int links_bridge(const char *br)
{
	if (bridge_create(br) < 0) {
		/* Reconciliation runs at start-up, so only a bridge made
		 * behind our back can be here; it is under our prefix. */
		if (errno != EEXIST)
			return -1;
		links_del_if(br);
		if (bridge_create(br) < 0)
			return -1;
	}
	return link_set_up(br);
}

/* --- the provider's end: plug --- */

/* Adding failed at l->step: undo what QEMU holds, free the port unless
 * a device may sit in it. */
static void links_plug_undo(struct vmlink *l, bool port_dead)
{
	struct vm *pv = links_provider(l);
	json_t *args = json_pack("{s:s}", "id", l->qid);
	json_t *fdargs = json_pack("{s:s}", "fdname", l->qid);

	if (pv) {
		vmstate_qmp_forget(pv, l);
		if (l->step == LINKS_DEVICE)
			vmstate_qmp_call(pv, "netdev_del", args, -1, NULL, NULL);
		else if (l->step == LINKS_NETDEV)
			vmstate_qmp_call(pv, "closefd", fdargs, -1, NULL, NULL);
		if (!port_dead && l->port >= 0)
			pv->ports_busy &= ~(1ull << l->port);
	}
	json_decref(args);
	json_decref(fdargs);
	links_timer_stop(l);
	links_del_if(l->ptap);
	l->plug = LINKS_NONE;
	l->port = -1;
	l->unplug_wanted = false;
	if (!l->client_on)
		links_free(l);
}

static void links_plug_reply(struct vm *pv, const struct qmp_msg *msg,
			     void *arg)
{
	struct vmlink *l = arg;
	char mac[LINKADDR_MAC_STRLEN], bus[16];
	uint8_t m[LINKADDR_MAC_LEN];
	json_t *args = NULL;
	int r = -1;

	if (l->plug != LINKS_ADDING)
		return;
	if (msg->kind == QMP_ERROR) {
		snprintf(l->why, sizeof(l->why), "%s on %s: %.40s: %.100s",
			 links_step_names[l->step], l->provider,
			 msg->error_class, msg->error_desc);
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
		r = vmstate_qmp_call(pv, "netdev_add", args, -1,
				     links_plug_reply, l);
		break;
	case LINKS_NETDEV:
		linkaddr_mac(LINKADDR_PROVIDER, l->id, m);
		linkaddr_format_mac(m, mac);
		vmm_hotplug_port_id((unsigned int)l->port, bus, sizeof(bus));
		args = json_pack("{s:s,s:s,s:s,s:s,s:s}", "driver",
				 "virtio-net-pci", "id", l->qid, "netdev", l->qid,
				 "bus", bus, "mac", mac);
		l->step = LINKS_DEVICE;
		r = vmstate_qmp_call(pv, "device_add", args, -1,
				     links_plug_reply, l);
		break;
	case LINKS_DEVICE:
		vmm_hotplug_port_id((unsigned int)l->port, bus, sizeof(bus));
		links_timer_stop(l);
		l->plug = LINKS_UP;
		l->why[0] = '\0';
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
	struct vm *pv = links_provider(l);
	unsigned int port;
	json_t *args;
	int fd, r;

	if (l->plug != LINKS_NONE || !l->client_on || !pv ||
	    !vmstate_running(pv))
		return;
	for (port = 0; port < pv->hotplug_ports &&
	     (pv->ports_busy & (1ull << port)); port++)
		;
	if (port >= pv->hotplug_ports) {
		if (!pv->hotplug_ports)
			snprintf(l->why, sizeof(l->why),
				 "%s started as no VM's provider, so it has no hot-plug port: restart it",
				 l->provider);
		else
			snprintf(l->why, sizeof(l->why),
				 "%s has no free hot-plug port (it has %u)",
				 l->provider, pv->hotplug_ports);
		goto fail;
	}
	if (links_tap(l->br, l->ptap, &fd) < 0) {
		snprintf(l->why, sizeof(l->why), "tap %s: %s", l->ptap,
			 strerror(errno));
		goto fail;
	}
	clock_gettime(CLOCK_MONOTONIC, &l->t0);
	snprintf(l->qid, sizeof(l->qid), "link-%04x-%u", l->id, ++l->gen);
	args = json_pack("{s:s}", "fdname", l->qid);
	r = vmstate_qmp_call(pv, "getfd", args, fd, links_plug_reply, l);
	json_decref(args);
	/* Sent: the fd in flight keeps the tap alive until QEMU has it. */
	close(fd);
	if (r < 0 || links_timer_arm(l, LINKS_PLUG_TIMEOUT_MS) < 0) {
		snprintf(l->why, sizeof(l->why), "getfd on %s: %s", l->provider,
			 strerror(errno));
		vmstate_qmp_forget(pv, l);
		links_del_if(l->ptap);
		goto fail;
	}
	pv->ports_busy |= 1ull << port;
	l->port = (int)port;
	l->plug = LINKS_ADDING;
	l->step = LINKS_GETFD;
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
	struct vm *pv = links_provider(l);
	json_t *args = json_pack("{s:s}", "id", l->qid);
	char port[16] = "?";

	if (l->port >= 0)
		vmm_hotplug_port_id((unsigned int)l->port, port, sizeof(port));

	links_timer_stop(l);
	if (pv) {
		vmstate_qmp_forget(pv, l);
		vmstate_qmp_call(pv, "netdev_del", args, -1, NULL, NULL);
		/* An unacknowledged device still sits in its port. */
		if (acked && l->port >= 0)
			pv->ports_busy &= ~(1ull << l->port);
	}
	json_decref(args);
	links_del_if(l->ptap);
	if (acked)
		daemon_log("link %s -> %s (%04x): unplugged in %ld ms",
			   l->client, l->provider, l->id, links_ms_since(&l->t0));
	else
		daemon_log("link %s -> %s (%04x): %s did not acknowledge the unplug; NIC dropped, port %s unusable until it restarts",
			   l->client, l->provider, l->id, l->provider, port);
	l->plug = LINKS_NONE;
	l->port = -1;
	if (!l->client_on)
		links_free(l);
	else if (replug)
		links_plug(l);
}

static void links_unplug_reply(struct vm *pv, const struct qmp_msg *msg,
			       void *arg)
{
	struct vmlink *l = arg;

	if (l->plug != LINKS_REMOVING || msg->kind != QMP_ERROR)
		return; /* accepted: DEVICE_DELETED follows */
	daemon_log("link %s -> %s (%04x): device_del: %.40s: %.100s",
		   l->client, l->provider, l->id, msg->error_class,
		   msg->error_desc);
	links_unplug_done(l, false, true);
}

static void links_unplug(struct vmlink *l)
{
	struct vm *pv = links_provider(l);
	json_t *args;
	int r;

	if (l->plug == LINKS_ADDING) {
		l->unplug_wanted = true;
		return;
	}
	if (l->plug != LINKS_UP)
		return;
	l->unplug_wanted = false;
	l->plug = LINKS_REMOVING;
	clock_gettime(CLOCK_MONOTONIC, &l->t0);
	args = json_pack("{s:s}", "id", l->qid);
	r = pv ? vmstate_qmp_call(pv, "device_del", args, -1,
				  links_unplug_reply, l) : -1;
	json_decref(args);
	if (r < 0 || links_timer_arm(l, LINKS_UNPLUG_TIMEOUT_MS) < 0)
		links_unplug_done(l, false, true);
}

static void links_timer_ready(struct loop_source *src, uint32_t events)
{
	struct vmlink *l = src->arg;

	loop_timer_ack(src->fd);
	if (l->plug == LINKS_REMOVING) {
		links_unplug_done(l, false, true);
	} else if (l->plug == LINKS_ADDING) {
		snprintf(l->why, sizeof(l->why), "%s on %s: no answer in %d ms",
			 links_step_names[l->step], l->provider,
			 LINKS_PLUG_TIMEOUT_MS);
		daemon_log("link %s -> %s (%04x): %s", l->client, l->provider,
			   l->id, l->why);
		links_plug_undo(l, true);
	}
}

void links_event(struct vm *vm, const struct qmp_msg *msg)
{
	const char *dev;
	struct vmlink *l;

	if (strcmp(msg->event, "DEVICE_DELETED"))
		return;
	/* data.device is the id we gave; anything else is not ours. */
	dev = json_string_value(json_object_get(msg->value, "device"));
	if (!dev)
		return;
	for (l = vm->d->links; l; l = l->next) {
		if (!l->qid[0] || strcmp(l->qid, dev) ||
		    strcmp(l->provider, vm->name))
			continue;
		if (l->plug == LINKS_REMOVING) {
			links_unplug_done(l, true, true);
		} else if (l->plug == LINKS_UP) {
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

/* How many VMs of the config root name vm as their provider. */
static size_t links_clients_configured(struct vm *vm)
{
	char **names = NULL, *path;
	size_t count = 0, n = 0, i;
	struct stat st;

	if (vmconfig_list(vm->d->roots.config_root, &names, &count) < 0)
		return 0;
	for (i = 0; i < count; i++) {
		if (!strcmp(names[i], vm->name) || !vmconfig_name_valid(names[i]))
			continue;
		if (asprintf(&path, "%s/%s/providers/net/%s",
			     vm->d->roots.config_root, names[i], vm->name) < 0)
			continue;
		if (lstat(path, &st) == 0)
			n++;
		free(path);
	}
	vmconfig_list_free(names, count);
	return n;
}

int links_prepare(struct vm *vm, char *err, size_t len)
{
	struct daemon *d = vm->d;
	struct vm_config *cfg = vm->cfg;
	size_t clients = links_clients_configured(vm), i;
	const char *p;
	struct vmlink *l;
	uint16_t id;
	int fd;

	/* One port per configured client plus a few spare, for clients
	 * added while it runs: every port slows the guest's boot (under TCG
	 * 56 ports took the provider from 11 s to 21 s to its shell).  No
	 * client, no port: a leaf VM boots on microvm (qemu.c). */
	vm->hotplug_ports = !clients ? 0 :
			    clients + VMSTATE_HOTPLUG_PORTS < VMM_HOTPLUG_MAX ?
			    (unsigned int)clients + VMSTATE_HOTPLUG_PORTS :
			    VMM_HOTPLUG_MAX;
	vm->ports_busy = 0;
	if (clients > VMM_HOTPLUG_MAX)
		daemon_log("vm %s: %zu VMs name it as provider, but it takes %d links at once",
			   vm->name, clients, VMM_HOTPLUG_MAX);
	vm->nic_count = 0;
	vm->nics = calloc(cfg->provider_count + 1, sizeof(*vm->nics));
	if (!vm->nics)
		goto fail_errno;
	for (i = 0; i < cfg->provider_count; i++) {
		p = cfg->providers[i];
		if (addrtable_acquire(d->link_table, vm->name, p, &id) < 0) {
			if (errno == ENOSPC)
				snprintf(err, len, "start failed: link to %s: all %u link addresses are in use",
					 p, ADDRTABLE_MAX_LINKS);
			else
				snprintf(err, len, "start failed: link to %s: %s/links: %s",
					 p, d->state_dir, strerror(errno));
			return -1;
		}
		l = links_find(d, vm->name, p);
		if (!l) {
			l = links_new(d, vm->name, p, id);
			if (!l)
				goto fail_errno;
			if (links_bridge(l->br) < 0) {
				snprintf(err, len, "start failed: link to %s: bridge %s: %s",
					 p, l->br, strerror(errno));
				links_free(l);
				return -1;
			}
		}
		/* A link still unplugging from the last run is taken over: its
		 * bridge stays, and the provider's end comes back after. */
		l->client_on = true;
		l->unplug_wanted = false;
		if (links_tap(l->br, l->ctap, &fd) < 0) {
			snprintf(err, len, "start failed: link to %s: tap %s: %s",
				 p, l->ctap, strerror(errno));
			return -1;
		}
		vm->nics[i].tap_fd = fd;
		linkaddr_mac(LINKADDR_CLIENT, id, vm->nics[i].mac);
		vm->nic_count = i + 1;
		daemon_log("link %s -> %s (%04x): client end %s on %s",
			   vm->name, p, id, l->ctap, l->br);
	}
	return 0;

fail_errno:
	snprintf(err, len, "start failed: links: %s", strerror(errno));
	return -1;
}

void links_vm_running(struct vm *vm)
{
	struct vmlink *l;

	for (l = vm->d->links; l; l = l->next)
		if (!strcmp(l->client, vm->name) || !strcmp(l->provider, vm->name))
			links_plug(l);
}

void links_vm_down(struct vm *vm)
{
	struct vmlink *l, *next;

	for (l = vm->d->links; l; l = next) {
		next = l->next;
		if (!strcmp(l->provider, vm->name)) {
			/* Its QEMU took the tap and the device along. */
			links_timer_stop(l);
			if (l->plug != LINKS_NONE)
				links_del_if(l->ptap);
			l->plug = LINKS_NONE;
			l->port = -1;
			l->unplug_wanted = false;
			snprintf(l->why, sizeof(l->why), "%s is not running",
				 l->provider);
			if (!l->client_on)
				links_free(l);
		} else if (!strcmp(l->client, vm->name) && l->client_on) {
			l->client_on = false;
			links_del_if(l->ctap);
			if (l->plug == LINKS_NONE)
				links_free(l);
			else
				links_unplug(l);
		}
	}
}

/* --- start-up, exit --- */

static int links_reconcile_one(const char *name, void *arg)
{
	struct daemon *d = arg;
	enum ifname_role role;
	uint16_t id;

	if (ifname_parse(d->link_prefix, name, &role, &id) < 0) {
		daemon_log("interface %s: not one of ours, left alone", name);
		return 0;
	}
	if (link_delete(name) < 0 && errno != ENODEV)
		daemon_log("interface %s: stale, but delete failed: %s", name,
			   strerror(errno));
	else
		daemon_log("interface %s: stale (no live link), deleted", name);
	return 0;
}

int links_init(struct daemon *d, char *err, size_t len)
{
	struct addrtable_error aerr = { 0 };
	char *path;
	int r;

	if (asprintf(&path, "%s/links", d->state_dir) < 0)
		return -1;
	r = addrtable_load(path, &d->link_table, &aerr);
	if (r < 0 && errno == EBADMSG)
		snprintf(err, len, "%s:%lu: %s", path, aerr.line, aerr.message);
	else if (r < 0)
		snprintf(err, len, "%s: %s", path, strerror(errno));
	free(path);
	if (r < 0)
		return -1;
	/* No VM survives a daemon restart, so no link is live. */
	if (link_list_prefix(d->link_prefix, links_reconcile_one, d) < 0) {
		snprintf(err, len, "listing interfaces %s*: %s", d->link_prefix,
			 strerror(errno));
		return -1;
	}
	return 0;
}

void links_fini(struct daemon *d)
{
	while (d->links)
		links_free(d->links);
	addrtable_free(d->link_table);
	d->link_table = NULL;
}

/* --- vm info --- */

static json_t *links_entry_json(struct daemon *d, const char *role,
				const char *client, const char *provider,
				bool have_id, uint16_t id)
{
	struct vmlink *l = links_find(d, client, provider);
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
		l && l->client_on && l->plug == LINKS_UP ? "up" : "down"));
	json_object_set_new(o, "provider_end", json_string(
		links_plug_names[l ? l->plug : LINKS_NONE]));
	if (l && l->why[0] && l->plug != LINKS_UP)
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
	if (ifname_format(d->link_prefix, IFNAME_BRIDGE, id, br) == 0 &&
	    ifname_format(d->link_prefix, IFNAME_CLIENT, id, c) == 0 &&
	    ifname_format(d->link_prefix, IFNAME_PROVIDER, id, p) == 0)
		json_object_set_new(o, "interfaces", json_pack(
			"{s:s,s:s,s:s}", "bridge", br, "client_tap", c,
			"provider_tap", p));
	if (l && l->port >= 0)
		vmm_hotplug_port_id((unsigned int)l->port, port, sizeof(port));
	json_object_set_new(o, "provider_port", l && l->port >= 0 ?
			    json_string(port) : json_null());
	return o;
}

json_t *links_json(struct vm *vm, const struct vm_config *cfg)
{
	struct daemon *d = vm->d;
	json_t *a = json_array();
	struct vmlink *l;
	uint16_t id;
	size_t i;
	bool have;

	for (i = 0; a && cfg && i < cfg->provider_count; i++) {
		have = addrtable_lookup(d->link_table, vm->name,
					cfg->providers[i], &id) == 0;
		json_array_append_new(a, links_entry_json(d, "client", vm->name,
			cfg->providers[i], have, id));
	}
	for (l = d->links; a && l; l = l->next)
		if (!strcmp(l->provider, vm->name) && l->client_on)
			json_array_append_new(a, links_entry_json(d, "provider",
				l->client, l->provider, true, l->id));
	return a;
}
