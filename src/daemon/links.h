/* Inter-VM links in the daemon (issue 5, docs/networking.md).
 *
 * One link per (client, provider) pair: a quiet bridge holding the
 * client's tap and the provider's tap.  The client's NIC is on QEMU's
 * command line; the provider's is hot-plugged over QMP while both run:
 *
 *   none -> adding (getfd, netdev_add, device_add) -> up
 *   up -> removing (device_del, then DEVICE_DELETED or a timeout,
 *                   then netdev_del) -> none
 *
 * A link lives from its client's start until its client is down and its
 * provider's end is unplugged.  Every step is a reply or a timer in the
 * event loop; nothing here waits.
 */
#ifndef VMHOSTD_LINKS_H
#define VMHOSTD_LINKS_H

#include <jansson.h>
#include <stddef.h>

#include "daemon/daemon.h"
#include "vmm/qmp.h"

/* How long a provider's guest has to acknowledge an unplug (pciehp waits
 * 5 s after the attention button) before its NIC is dropped anyway. */
#define LINKS_UNPLUG_TIMEOUT_MS 15000

struct vm;
struct vm_config;

/* Load STATE/links (a damaged file: -1 with errno EBADMSG and the reason
 * in err) and delete every host interface under d->link_prefix: no VM
 * runs yet, so none is live.  Interfaces that do not parse are not ours
 * and stay. */
int links_init(struct daemon *d, char *err, size_t len);
/* At exit: delete what is left of every link. */
void links_fini(struct daemon *d);

/* vm is starting: the client ends of its links become vm->nics (fds for
 * QEMU) and vm->hotplug_ports is sized for its clients.  On failure, err
 * says why; whatever was made goes with links_vm_down. */
int links_prepare(struct vm *vm, char *err, size_t len);
/* vm runs: plug the provider end of each link that now has both ends. */
void links_vm_running(struct vm *vm);
/* vm is down (every child reaped): unplug or forget its links. */
void links_vm_down(struct vm *vm);
/* A QMP event from vm (DEVICE_DELETED ends an unplug). */
void links_event(struct vm *vm, const struct qmp_msg *msg);

/* vm's links as a client (one per provider in cfg, live or not) and as a
 * provider (live ones): for vm info. */
json_t *links_json(struct vm *vm, const struct vm_config *cfg);

#endif
