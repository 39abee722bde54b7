/* The engine's end of the channel to the monitor (privsep/privsep.h), and
 * the backend the state machine uses in the daemon (vm.h).
 *
 * Requests the monitor answers at once (list, lookup, plug) wait for
 * their answer here; messages that arrive meanwhile (a process exited, a
 * load finished) are queued and handled from the loop right after, in
 * order.  Answers to load and launch are routed to whoever asked by the
 * request's number.  If the monitor goes away the engine exits: the
 * monitor is its parent and the only one who can restart it.
 */
#ifndef VMHOSTD_ENGINE_MON_H
#define VMHOSTD_ENGINE_MON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "privsep/privsep.h"

struct engine;
struct links_ops;
struct vm_backend;
struct mon_msg;
struct mon_wait;

/* A message from the monitor: its JSON and the fds that came along
 * (ownership passes to whoever takes them: set the slot to -1). */
struct mon_reply {
	uint16_t type;
	json_t *json;
	int fds[PS_FDS_MAX];
	size_t nfds;
};

typedef void mon_reply_fn(struct engine *e, struct mon_reply *r, void *arg);

struct mon {
	struct engine *e;
	struct loop_source src;
	struct loop_deferred drain;
	uint32_t seq;
	struct mon_msg *queue, **queue_tail;
	struct mon_wait *waits;    /* asynchronous requests awaiting answers */
};

int mon_open(struct mon *m, struct engine *e, int fd);
void mon_close(struct mon *m);

/* Fire-and-forget requests; -1 with errno if the send failed. */
int mon_send(struct mon *m, uint16_t type, const void *payload, size_t len);
int mon_send_name(struct mon *m, uint16_t type, const char *name);
/* An asynchronous request: fn(arg) gets its answer (or never, after
 * mon_forget(arg)). */
int mon_request(struct mon *m, uint16_t type, const void *payload,
		size_t len, mon_reply_fn *fn, void *arg);
void mon_forget(struct mon *m, void *arg);

/* Synchronous: the VM directory names in the config root (a JSON array,
 * caller decrefs), or NULL with errno. */
json_t *mon_list(struct mon *m);
/* Synchronous: 1 if CONFIG_ROOT/name is a directory, 0 if not, -1. */
int mon_lookup(struct mon *m, const char *name);

void mon_reply_clear(struct mon_reply *r);

/* The state machine's backend in the daemon, and the links' ops. */
extern const struct vm_backend mon_backend;
extern const struct links_ops mon_links_ops;

#endif
