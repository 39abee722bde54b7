/* The engine's copy of the config root's VM names (docs/design.md).
 *
 * The engine cannot read the config root, and asking the monitor at
 * every `vm list` cost a round trip and a listing.  So the monitor
 * watches the root (rootwatch.h) and sends the engine (PS_NAMES) the
 * whole list when it says hello, then the names that changed, once per
 * loop turn however many events came.  The engine answers `list` from
 * its copy; it asks (PS_LIST) only when it has none, and then waits for
 * the whole list.
 *
 * A change pushed is a moment late, and a `vm list` right after a mkdir
 * must show it: so the first part of a whole list carries the engine's
 * own inotify watch of the root (made before the listing), which the
 * engine only drains.  Nothing there: its copy holds every change made
 * so far.  Something: it asks for a sync (PS_SYNC) and waits; the
 * monitor reads its own watch, which holds every event the engine's
 * did, sends what changed and then "synced".
 *
 * The monitor never waits for the engine, and a message that does not
 * fit in the channel kills it (channel.h); so these parts, however many
 * a burst of changes or a large root makes, go out only while at most a
 * quarter of the socket's buffer is unread, the rest when the engine has
 * read more (EPOLLOUT on the channel).  When the root cannot be watched
 * (it went, or inotify's limits), the list says so ("watching": false):
 * the engine uses it for the list it waits for, then asks again at the
 * next, and each ask tries to watch again.
 */
#ifndef VMHOSTD_MONITOR_NAMEPUSH_H
#define VMHOSTD_MONITOR_NAMEPUSH_H

#include "monitor/monitor.h"

/* Bytes of names per PS_NAMES part (the JSON is a little larger). */
#define NAMEPUSH_PART_BYTES (16 * 1024)

/* Watch the config root (said in the log if it cannot be).  -1 with
 * errno ENOMEM only. */
int namepush_init(struct monitor *m);
void namepush_fini(struct monitor *m);
/* Send the engine a whole list, watching the root again first if the
 * watch had ended: when it said hello and got every VM, and at PS_LIST
 * (it has no current copy and waits for a whole list). */
void namepush_whole(struct monitor *m);
/* PS_SYNC: the engine's own watch saw events; send every change our
 * watch has seen by now, then {"synced": true}. */
void namepush_sync(struct monitor *m);
/* The engine is gone: nothing is sent until the next one says hello. */
void namepush_engine_gone(struct monitor *m);
/* The channel has room again (EPOLLOUT). */
void namepush_writable(struct monitor *m);

#endif
