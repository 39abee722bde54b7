/* The engine's copy of the config root's VM names, as the monitor sends
 * them (PS_NAMES, monitor/namepush.h): a whole list in parts, then the
 * names that changed.  `list` answers from it while it is complete and
 * watched and the engine's own watch of the root (which came with the
 * list) has seen nothing since; after events there, the engine asks the
 * monitor for a sync first, and with no complete, watched copy for a
 * whole list (monchan.h).
 *
 * The monitor's messages are parsed like any other input: a message that
 * is not what PS_NAMES describes, or names a name that is not a valid VM
 * name, drops the copy, and the engine asks again.
 */
#ifndef VMHOSTD_ENGINE_NAMES_H
#define VMHOSTD_ENGINE_NAMES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct names {
	char **v;          /* sorted (strcmp), once each, valid VM names */
	size_t count;
	bool listed;       /* a whole list began ("reset") */
	bool complete;     /* ... and its last part came */
	bool watching;     /* the monitor sends every change after it */
	bool synced;       /* "synced" came since the owner cleared it */
	int watch_fd;      /* the engine's own inotify watch; -1: none */
};

void names_init(struct names *ns);
/* Drop every name and the watch: the copy is neither complete nor
 * watched. */
void names_clear(struct names *ns);
/* Apply one PS_NAMES message and the fd that came with it (-1: none;
 * taken): the copy becomes (copy - del) + add, each of them strictly
 * ascending.  0, or -1 with errno EPROTO for a bad one or ENOMEM; either
 * way the copy is dropped. */
int names_apply(struct names *ns, json_t *msg, int fd);
/* Whether the copy is complete and kept current by the monitor. */
bool names_current(const struct names *ns);
/* Whether the root may have changed since the last sync: drains the
 * engine's own watch; true if it held anything, or there is none. */
bool names_stale(struct names *ns);

#endif
