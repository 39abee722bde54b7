/* The monitor as the engine sees it: the state machine's backend (vm.h)
 * and the links' ops (links.h) turned into requests on the channel
 * (monchan.h), and the monitor's own messages turned into VM events. */
#ifndef VMHOSTD_ENGINE_BACKEND_H
#define VMHOSTD_ENGINE_BACKEND_H

#include "engine/links.h"
#include "engine/monchan.h"
#include "engine/vm.h"

extern const struct vm_backend mon_backend;
extern const struct links_ops mon_links_ops;

/* monchan_dispatch_fn for the engine (owner: struct engine). */
void backend_dispatch(void *owner, struct mon_reply *r);

#endif
