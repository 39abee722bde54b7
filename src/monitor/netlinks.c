/* Inter-VM links: table, bridges, taps.  See netlinks.h and
 * docs/networking.md. */
#include "monitor/netlinks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/linkaddr.h"
#include "common/log.h"
#include "net/addrtable.h"
#include "net/bridge.h"
#include "net/ifname.h"
#include "net/link.h"
#include "net/tap.h"

/* Spare hot-plug ports beyond the configured clients, for clients added
 * while the provider runs. */
#define NETLINKS_SPARE_PORTS 4

struct mlink {
	struct mlink *next;
	char client[VMCONFIG_NAME_MAX + 1];
	char provider[VMCONFIG_NAME_MAX + 1];
	uint16_t id;
	char br[IFNAMSIZ], ctap[IFNAMSIZ], ptap[IFNAMSIZ];
	bool client_on;          /* the client's tap exists */
	bool provider_on;        /* the provider's tap was made */
	struct ps_linknote note; /* the engine's view of the provider end */
};

static void netlinks_del_if(const char *name)
{
	if (link_delete(name) < 0 && errno != ENODEV)
		daemon_log("interface %s: delete: %s", name, strerror(errno));
}

static struct mlink *netlinks_find(struct monitor *m, const char *client,
				   const char *provider)
{
	for (struct mlink *l = m->links; l; l = l->next)
		if (!strcmp(l->client, client) && !strcmp(l->provider, provider))
			return l;
	return NULL;
}

static struct mlink *netlinks_new(struct monitor *m, const char *client,
				  const char *provider, uint16_t id)
{
	struct mlink *l = calloc(1, sizeof *l);

	if (!l)
		return NULL;
	snprintf(l->client, sizeof l->client, "%s", client);
	snprintf(l->provider, sizeof l->provider, "%s", provider);
	l->id = id;
	l->note.port = -1;
	if (ifname_format(m->link_prefix, IFNAME_BRIDGE, id, l->br) < 0 ||
	    ifname_format(m->link_prefix, IFNAME_CLIENT, id, l->ctap) < 0 ||
	    ifname_format(m->link_prefix, IFNAME_PROVIDER, id, l->ptap) < 0) {
		free(l);
		return NULL;
	}
	l->next = m->links;
	m->links = l;
	return l;
}

static void netlinks_free(struct monitor *m, struct mlink *l)
{
	struct mlink **pp;

	netlinks_del_if(l->ptap);
	netlinks_del_if(l->ctap);
	netlinks_del_if(l->br);
	for (pp = &m->links; *pp; pp = &(*pp)->next) {
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
static int netlinks_tap(const char *br, const char *name, int *fd)
{
	int saved;

	if (tap_open(name, fd) < 0) {
		if (errno != EBUSY)
			return -1;
		netlinks_del_if(name);
		if (tap_open(name, fd) < 0)
			return -1;
	}
	if (link_set_quiet(name) < 0 || bridge_add_if(br, name) < 0 ||
	    link_set_up(name) < 0) {
		saved = errno;
		close(*fd);
		netlinks_del_if(name);
		errno = saved;
		return -1;
	}
	return 0;
}

static int netlinks_bridge(const char *br)
{
	if (bridge_create(br) < 0) {
		/* Reconciliation ran at start-up, so only a bridge made
		 * behind our back can be here; it is under our prefix. */
		if (errno != EEXIST)
			return -1;
		netlinks_del_if(br);
		if (bridge_create(br) < 0)
			return -1;
	}
	return link_set_up(br);
}

json_t *netlinks_ids(struct monitor *m, const struct vm_config *cfg)
{
	json_t *a = json_array();
	uint16_t id;

	for (size_t i = 0; a && i < cfg->provider_count; i++)
		json_array_append_new(a, json_pack("{s:s,s:o}", "provider",
			cfg->providers[i], "id",
			addrtable_lookup(m->link_table, cfg->name,
					 cfg->providers[i], &id) == 0 ?
			json_integer(id) : json_null()));
	return a;
}

unsigned int netlinks_ports(struct monitor *m, const char *name)
{
	char **names = NULL, *path;
	size_t count = 0, n = 0;
	struct stat st;

	/* Unknown: ports for clients to come, rather than none. */
	if (vmconfig_list(m->roots.config_root, &names, &count) < 0)
		return NETLINKS_SPARE_PORTS;
	for (size_t i = 0; i < count; i++) {
		if (!strcmp(names[i], name) || !vmconfig_name_valid(names[i]))
			continue;
		if (asprintf(&path, "%s/%s/providers/net/%s",
			     m->roots.config_root, names[i], name) < 0)
			continue;
		if (lstat(path, &st) == 0)
			n++;
		free(path);
	}
	vmconfig_list_free(names, count);
	/* Every port slows the guest's boot (under TCG 56 ports took a
	 * provider from 11 s to 21 s to its shell).  No client, no port: a
	 * leaf VM boots on microvm (vmm/qemu.c). */
	if (n > VMM_HOTPLUG_MAX)
		daemon_log("vm %s: %zu VMs name it as provider, but it takes %d links at once",
			   name, n, VMM_HOTPLUG_MAX);
	if (!n)
		return 0;
	return n + NETLINKS_SPARE_PORTS < VMM_HOTPLUG_MAX ?
	       (unsigned int)n + NETLINKS_SPARE_PORTS : VMM_HOTPLUG_MAX;
}

int netlinks_client(struct monitor *m, struct mvm *vm, struct vmm_nic *nics,
		    json_t **links, char *err, size_t len)
{
	const struct vm_config *cfg = vm->files.cfg;
	const char *p;
	struct mlink *l;
	uint16_t id;
	int fd;

	*links = json_array();
	for (size_t i = 0; i < cfg->provider_count; i++) {
		p = cfg->providers[i];
		if (addrtable_acquire(m->link_table, vm->name, p, &id) < 0) {
			if (errno == ENOSPC)
				snprintf(err, len, "start failed: link to %s: all %u link addresses are in use",
					 p, ADDRTABLE_MAX_LINKS);
			else
				snprintf(err, len, "start failed: link to %s: %s/links: %s",
					 p, m->state_dir, strerror(errno));
			return -1;
		}
		l = netlinks_find(m, vm->name, p);
		if (!l) {
			l = netlinks_new(m, vm->name, p, id);
			if (!l)
				goto fail_errno;
			if (netlinks_bridge(l->br) < 0) {
				snprintf(err, len, "start failed: link to %s: bridge %s: %s",
					 p, l->br, strerror(errno));
				netlinks_free(m, l);
				return -1;
			}
		}
		if (netlinks_tap(l->br, l->ctap, &fd) < 0) {
			snprintf(err, len, "start failed: link to %s: tap %s: %s",
				 p, l->ctap, strerror(errno));
			return -1;
		}
		l->client_on = true;
		nics[i].tap_fd = fd;
		linkaddr_mac(LINKADDR_CLIENT, id, nics[i].mac);
		json_array_append_new(*links, json_pack("{s:s,s:i}", "provider",
							p, "id", (int)id));
		daemon_log("link %s -> %s (%04x): client end %s on %s",
			   vm->name, p, id, l->ctap, l->br);
	}
	return 0;

fail_errno:
	snprintf(err, len, "start failed: links: %s", strerror(errno));
	return -1;
}

void netlinks_adopt(struct monitor *m, struct mvm *vm)
{
	json_t *o;
	size_t i;

	json_array_foreach(vm->links, i, o) {
		const char *p = json_string_value(json_object_get(o, "provider"));
		json_int_t id = json_integer_value(json_object_get(o, "id"));
		struct mlink *l;

		if (!p || !vmconfig_name_valid(p) || id <= 0 || id >= 0xffff)
			continue;
		l = netlinks_find(m, vm->name, p);
		if (!l && !(l = netlinks_new(m, vm->name, p, (uint16_t)id)))
			continue;
		l->client_on = true;
	}
}

static struct mvm *netlinks_running(struct monitor *m, const char *name)
{
	for (struct mvm *vm = m->vms; vm; vm = vm->next)
		if (!strcmp(vm->name, name))
			return vm->launched && !vm->killing ? vm : NULL;
	return NULL;
}

int netlinks_plug(struct monitor *m, const char *client, const char *provider,
		  char *err, size_t len)
{
	struct mlink *l = netlinks_find(m, client, provider);
	int fd;

	/* The engine asks; the link must be one the client's launch made,
	 * and both ends must run. */
	if (!l || !l->client_on || !netlinks_running(m, client) ||
	    !netlinks_running(m, provider)) {
		snprintf(err, len, "tap for %s -> %s: no such live link", client,
			 provider);
		errno = ENOENT;
		return -1;
	}
	if (netlinks_tap(l->br, l->ptap, &fd) < 0) {
		snprintf(err, len, "tap %s: %s", l->ptap, strerror(errno));
		return -1;
	}
	l->provider_on = true;
	return fd;
}

void netlinks_unplugged(struct monitor *m, const char *client,
			const char *provider)
{
	struct mlink *l = netlinks_find(m, client, provider);

	if (!l)
		return;
	netlinks_del_if(l->ptap);
	l->provider_on = false;
	l->note.plug = PS_PLUG_NONE;
	l->note.port = -1;
	if (!l->client_on)
		netlinks_free(m, l);
}

void netlinks_note(struct monitor *m, const struct ps_linknote *ln)
{
	struct mlink *l = netlinks_find(m, ln->pair.client, ln->pair.provider);

	if (l)
		l->note = *ln;
}

json_t *netlinks_provider_json(struct monitor *m, const char *name)
{
	json_t *a = json_array();

	for (struct mlink *l = m->links; a && l; l = l->next)
		if (!strcmp(l->provider, name) && l->note.plug != PS_PLUG_NONE)
			json_array_append_new(a, json_pack(
				"{s:s,s:i,s:i,s:i,s:I}", "client", l->client,
				"id", (int)l->id, "plug", (int)l->note.plug,
				"port", (int)l->note.port,
				"gen", (json_int_t)l->note.gen));
	return a;
}

void netlinks_provider_restore(struct monitor *m, const char *name,
			       json_t *notes)
{
	struct mlink *l;
	json_t *o;
	size_t i;

	json_array_foreach(notes, i, o) {
		const char *c = json_string_value(json_object_get(o, "client"));
		json_int_t id = json_integer_value(json_object_get(o, "id"));
		json_int_t plug = json_integer_value(json_object_get(o, "plug"));
		json_int_t port = json_integer_value(json_object_get(o, "port"));

		if (!c || !vmconfig_name_valid(c) || !strcmp(c, name) ||
		    id <= 0 || id >= 0xffff || plug < 0 || plug > PS_PLUG_REMOVING ||
		    port < -1 || port >= 64)
			continue;
		l = netlinks_find(m, c, name);
		if (!l && !(l = netlinks_new(m, c, name, (uint16_t)id)))
			continue;
		l->provider_on = true;
		snprintf(l->note.pair.client, sizeof l->note.pair.client, "%s", c);
		snprintf(l->note.pair.provider, sizeof l->note.pair.provider, "%s", name);
		l->note.plug = (uint8_t)plug;
		l->note.port = (int8_t)port;
		l->note.gen = (uint32_t)json_integer_value(json_object_get(o, "gen"));
	}
}

void netlinks_vm_gone(struct monitor *m, const char *name)
{
	struct mlink *l, *next;

	for (l = m->links; l; l = next) {
		next = l->next;
		if (!strcmp(l->client, name)) {
			netlinks_del_if(l->ctap);
			l->client_on = false;
		}
		if (!strcmp(l->provider, name)) {
			/* Its QEMU held the tap: gone with it. */
			netlinks_del_if(l->ptap);
			l->provider_on = false;
			l->note.plug = PS_PLUG_NONE;
			l->note.port = -1;
		}
		if (!l->client_on && !l->provider_on)
			netlinks_free(m, l);
	}
}

/* --- start-up, exit --- */

int netlinks_init(struct monitor *m, char *err, size_t len)
{
	struct addrtable_error aerr = { 0 };
	char *path;
	int r;

	if (asprintf(&path, "%s/links", m->state_dir) < 0)
		return -1;
	r = addrtable_load(path, &m->link_table, &aerr);
	if (r < 0 && errno == EBADMSG)
		snprintf(err, len, "%s:%lu: %s", path, aerr.line, aerr.message);
	else if (r < 0)
		snprintf(err, len, "%s: %s", path, strerror(errno));
	free(path);
	return r;
}

static int netlinks_reconcile_one(const char *name, void *arg)
{
	struct monitor *m = arg;
	enum ifname_role role;
	uint16_t id;

	if (ifname_parse(m->link_prefix, name, &role, &id) < 0) {
		daemon_log("interface %s: not one of ours, left alone", name);
		return 0;
	}
	for (struct mlink *l = m->links; l; l = l->next)
		if (l->id == id && (role == IFNAME_BRIDGE ||
		    (role == IFNAME_CLIENT && l->client_on) ||
		    (role == IFNAME_PROVIDER && l->provider_on)))
			return 0;
	if (link_delete(name) < 0 && errno != ENODEV)
		daemon_log("interface %s: stale, but delete failed: %s", name,
			   strerror(errno));
	else
		daemon_log("interface %s: stale (no live link), deleted", name);
	return 0;
}

int netlinks_reconcile(struct monitor *m, char *err, size_t len)
{
	if (link_list_prefix(m->link_prefix, netlinks_reconcile_one, m) < 0) {
		snprintf(err, len, "listing interfaces %s*: %s", m->link_prefix,
			 strerror(errno));
		return -1;
	}
	return 0;
}

void netlinks_fini(struct monitor *m)
{
	while (m->links)
		netlinks_free(m, m->links);
	addrtable_free(m->link_table);
	m->link_table = NULL;
}
