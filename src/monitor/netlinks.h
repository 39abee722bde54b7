/* Inter-VM links, the monitor's half: the persistent link table
 * (STATE/links), each link's bridge and the two taps on it.  The engine
 * decides when a provider's end is plugged (engine/links.h); here the
 * interfaces are made and removed, and the engine's requests checked: a
 * tap is only made for a link that the client's gathered configuration
 * names and whose client and provider both run.
 *
 * A link's bridge lives while either end has a tap.  Taps are not
 * persistent: a QEMU that dies takes its taps along.
 */
#ifndef VMHOSTD_MONITOR_NETLINKS_H
#define VMHOSTD_MONITOR_NETLINKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "monitor/monitor.h"
#include "vmm/vmm.h"

/* Load STATE/links (a damaged file: -1 with errno EBADMSG and the reason
 * in err).  */
int netlinks_init(struct monitor *m, char *err, size_t len);
/* Delete every host interface under our prefix that no adopted VM holds
 * (at start-up, after adoption). */
int netlinks_reconcile(struct monitor *m, char *err, size_t len);
void netlinks_fini(struct monitor *m);

/* The ids the table has for vm's client links: [{"provider", "id"}] (id
 * null for a pair never started). */
json_t *netlinks_ids(struct monitor *m, const struct vm_config *cfg);
/* How many hot-plug ports a provider gets: one per VM in the config root
 * that names it, and a few spare; none if no VM names it (a leaf VM,
 * which boots on microvm, and takes a client only after a restart). */
unsigned int netlinks_ports(struct monitor *m, const char *name);

/* Launching vm: one link per provider, its client tap's fd in nics[i]
 * (caller closes), *links as netlinks_ids.  -1 with err set; whatever was
 * made then goes with netlinks_vm_gone. */
int netlinks_client(struct monitor *m, struct mvm *vm, struct vmm_nic *nics,
		    json_t **links, char *err, size_t len);
/* Adopting vm: its links exist already. */
void netlinks_adopt(struct monitor *m, struct mvm *vm);
/* A tap for the provider's end: fd, or -1 with err set. */
int netlinks_plug(struct monitor *m, const char *client, const char *provider,
		  char *err, size_t len);
void netlinks_unplugged(struct monitor *m, const char *client,
			const char *provider);
/* The engine's note of a provider end, kept for a new engine. */
void netlinks_note(struct monitor *m, const struct ps_linknote *ln);
/* Provider ends with name as provider, as notes: [{"client", "id",
 * "plug", "port", "gen"}] (for PS_ADOPT and the record). */
json_t *netlinks_provider_json(struct monitor *m, const char *name);
/* Restore provider notes from a record. */
void netlinks_provider_restore(struct monitor *m, const char *name,
			       json_t *notes);
/* Every process of vm is gone: remove what was its. */
void netlinks_vm_gone(struct monitor *m, const char *name);

#endif
