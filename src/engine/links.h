/* Inter-VM links, the engine's half (docs/networking.md).
 *
 * One link per (client, provider) pair: a quiet bridge holding the
 * client's tap and the provider's tap.  The monitor makes the bridge and
 * the client's tap when it launches the client (the client's NIC is on
 * QEMU's command line) and, when asked, the provider's tap; the engine
 * hot-plugs the provider's NIC over QMP while both run:
 *
 *   none -> adding (getfd, netdev_add, device_add) -> up
 *   up -> removing (device_del, then DEVICE_DELETED or a timeout,
 *                   then netdev_del) -> none
 *
 * Every step is a reply or a timer in the event loop; nothing waits.  The
 * module knows VMs only by name: what it needs of a running one (its QMP
 * session and hot-plug ports) and of the monitor comes through struct
 * links_ops, so it sits below the state machine.
 */
#ifndef VMHOSTD_ENGINE_LINKS_H
#define VMHOSTD_ENGINE_LINKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "engine/qmpsession.h"
#include "privsep/privsep.h"

/* How long a provider's guest has to acknowledge an unplug (pciehp waits
 * 5 s after the attention button) before its NIC is dropped anyway. */
#define LINKS_UNPLUG_TIMEOUT_MS 15000
/* QEMU answers these without the guest, but its monitor shares a thread
 * with TCG: 30 guests booting on 2 cores delayed answers past 10 s. */
#define LINKS_PLUG_TIMEOUT_MS 60000

/* What links needs of a running provider. */
struct links_peer {
	struct qmp_session *qmp;
	unsigned int hotplug_ports;
	uint64_t *ports_busy;      /* bit n: port n holds a link's NIC */
};

struct links_ops {
	/* Fill *peer if name runs (and is not on its way down). */
	bool (*peer)(void *arg, const char *name, struct links_peer *peer);
	/* A new tap for the provider's end (the monitor's): fd or -1 with
	 * err set. */
	int (*plug)(void *arg, const char *client, const char *provider,
		    char *err, size_t len);
	/* The provider's tap may go. */
	void (*unplugged)(void *arg, const char *client, const char *provider);
	/* A link's provider end changed: kept for a restarted engine. */
	void (*note)(void *arg, const struct ps_linknote *ln);
};

struct vmlink;

struct links {
	struct loop *loop;
	const char *prefix;        /* host interface names: PREFIX + id + role */
	const struct links_ops *ops;
	void *arg;
	struct vmlink *list;
};

void links_init(struct links *ls, struct loop *loop, const char *prefix,
		const struct links_ops *ops, void *arg);
void links_fini(struct links *ls);

/* client was launched with these links ([{"provider", "id"}]): their
 * client ends are up; plug the provider ends that can be. */
void links_client_up(struct links *ls, const char *client, json_t *links);
/* A handed-over provider end (PS_ADOPT's "provider_links"); its port is
 * busy in the provider already (the caller marks it). */
void links_adopt(struct links *ls, const char *client, const char *provider,
		 unsigned int id, const struct ps_linknote *ln);
/* Every running VM was handed over: unplug the provider ends whose client
 * did not come back. */
void links_adopted(struct links *ls);
/* name runs: plug every link that now has both ends. */
void links_vm_running(struct links *ls, const char *name);
/* name is down: unplug or forget its links. */
void links_vm_down(struct links *ls, const char *name);
/* A QMP event from name (DEVICE_DELETED ends an unplug). */
void links_event(struct links *ls, const char *name, const struct qmp_msg *msg);

/* name's links as a client (one per provider in config, with the ids the
 * monitor gave: [{"provider", "id"}]) and as a provider (live ones): for
 * vm info. */
json_t *links_json(struct links *ls, const char *name, json_t *client_links);

#endif
