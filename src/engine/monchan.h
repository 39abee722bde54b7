/* The engine's end of the channel to the monitor (privsep/privsep.h).
 *
 * Requests the monitor answers at once (lookup, plug) wait for their
 * answer here; messages that arrive meanwhile are queued and handed on
 * from the loop right after, in order.  The config root's VM names
 * (PS_NAMES) go into the channel's copy as they are read, never queued,
 * so that they apply in the order sent (names.h).  Answers to asynchronous
 * requests (load, launch) go to whoever asked, by the request's number;
 * everything else to the owner's dispatch function (backend.h).  If the
 * monitor goes away the engine exits: the monitor is its parent and the
 * only one who can restart it.
 */
#ifndef VMHOSTD_ENGINE_MONCHAN_H
#define VMHOSTD_ENGINE_MONCHAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "engine/names.h"
#include "privsep/privsep.h"

/* A message from the monitor: its JSON and the fds that came along
 * (ownership passes to whoever takes them: set the slot to -1, or nfds 0
 * after taking them all). */
struct mon_reply {
	uint16_t type;
	json_t *json;
	int fds[PS_FDS_MAX];
	size_t nfds;
};

typedef void monchan_reply_fn(void *owner, struct mon_reply *r, void *arg);
typedef void monchan_dispatch_fn(void *owner, struct mon_reply *r);

struct monchan_msg;
struct monchan_wait;

struct monchan {
	struct loop *loop;
	struct loop_source src;
	struct loop_deferred drain;
	uint32_t seq;
	monchan_dispatch_fn *dispatch;
	void *owner;
	struct monchan_msg *queue, **queue_tail;
	struct monchan_wait *waits;  /* asynchronous requests awaiting answers */
	struct names names;          /* the config root's VM names */
};

int mon_open(struct monchan *m, struct loop *loop, int fd,
	     monchan_dispatch_fn *dispatch, void *owner);
void mon_close(struct monchan *m);

/* Fire-and-forget requests; -1 with errno if the send failed. */
int mon_send(struct monchan *m, uint16_t type, const void *payload, size_t len);
int mon_send_name(struct monchan *m, uint16_t type, const char *name);
/* An asynchronous request: fn(owner, answer, arg), or never after
 * mon_forget(arg). */
int mon_request(struct monchan *m, uint16_t type, const void *payload,
		size_t len, monchan_reply_fn *fn, void *arg);
void mon_forget(struct monchan *m, void *arg);
/* Synchronous: send and wait for the answer with the same number (the
 * caller clears r).  -1 with errno. */
int mon_call(struct monchan *m, uint16_t type, const void *payload,
	     size_t len, struct mon_reply *r);

/* Make m->names hold every VM directory name of the config root: at
 * once if the copy is current and its watch saw nothing (names.h); after
 * a sync (PS_SYNC) if it saw something; else after asking for a whole
 * list (PS_LIST).  Waits for the monitor; 0, or -1 with errno. */
int mon_names(struct monchan *m);
/* Synchronous: 1 if CONFIG_ROOT/name is a directory, 0 if not, -1. */
int mon_lookup(struct monchan *m, const char *name);

void mon_reply_clear(struct mon_reply *r);

#endif
