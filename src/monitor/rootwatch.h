/* Watching the config root for VM directories that come and go
 * (inotify), so that the engine's copy of their names stays current
 * without a listing per `vm list` (monitor/namepush.h).
 *
 * An event only says which name to look at again: the names events
 * touched are looked at (vmconfig_root_entry) when the changes are
 * taken, so a burst of events on one name costs one look, and what goes
 * out is each name's state at that moment, in whatever order its events
 * came.  Lost events (the kernel's queue overflowed, or more names than
 * ROOTWATCH_TOUCHED_MAX waiting) ask for a whole listing instead; the
 * root itself deleted, moved or unmounted ends the watch.
 *
 * Not seen: a change behind a link (a linked VM directory whose target
 * goes stays listed until its name has an event), and the root's own
 * path changing above it (a parent renamed, a linked root pointed
 * elsewhere): the watch stays on the directory it opened.
 */
#ifndef VMHOSTD_MONITOR_ROOTWATCH_H
#define VMHOSTD_MONITOR_ROOTWATCH_H

#include <stdbool.h>
#include <stddef.h>

/* Past this many touched names waiting, a whole listing is cheaper. */
#define ROOTWATCH_TOUCHED_MAX 65536

struct rootwatch {
	int fd;                 /* inotify; -1: not watching */
	char *root;             /* opened for each take only: an fd held
				 * would keep a removed root from being
				 * freed, and IN_DELETE_SELF from coming */
	char **touched;         /* valid VM names events named, unsorted */
	size_t touched_count, touched_cap;
	bool overflow;          /* events were lost: list the whole root */
	bool lost;              /* the root went: the watch is over */
};

/* A name whose state changed: a VM directory by that name now, or not. */
struct rootwatch_change {
	char *name;
	bool present;
};

void rootwatch_init(struct rootwatch *w);
/* An inotify instance (O_NONBLOCK|O_CLOEXEC) watching root for what
 * rootwatch_open watches; also the engine's, which it only drains to
 * know that there were events (namepush.h).  -1 with errno. */
int rootwatch_instance(const char *root);
/* Watch root (O_NONBLOCK|O_CLOEXEC).  -1 with errno (ENOENT, ENOTDIR,
 * EACCES, EMFILE or ENOSPC for inotify's per-user limits). */
int rootwatch_open(struct rootwatch *w, const char *root);
void rootwatch_close(struct rootwatch *w);
/* Read every event waiting.  0 (see touched, overflow, lost), or -1
 * with errno on a read error, after which lost is set. */
int rootwatch_read(struct rootwatch *w);
/* Whether there is something to take: touched names or an overflow. */
bool rootwatch_pending(const struct rootwatch *w);
/* The touched names, sorted (strcmp) and once each, with their state
 * now; the touched set is emptied.  -1 with errno ENOMEM (the touched
 * names are kept). */
int rootwatch_take(struct rootwatch *w, struct rootwatch_change **changes,
		   size_t *count);
void rootwatch_changes_free(struct rootwatch_change *changes, size_t count);
/* A whole listing, which makes touched names and an overflow moot:
 * rootwatch_names of the watched root.  -1 with errno. */
int rootwatch_list(struct rootwatch *w, char ***names, size_t *count);
/* The valid VM names of root, watched or not, sorted (strcmp;
 * vmconfig_list_free).  -1 with errno. */
int rootwatch_names(const char *root, char ***names, size_t *count);

#endif
