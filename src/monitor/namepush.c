/* The config root's VM names, pushed to the engine.  See namepush.h. */
#include "monitor/namepush.h"

#include <errno.h>
#include <jansson.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "monitor/channel.h"
#include "monitor/rootwatch.h"

struct namepush {
	struct monitor *m;
	struct rootwatch w;
	struct loop_source src;        /* the inotify fd */
	struct loop_deferred later;    /* send after this turn's events */
	bool copy;                     /* the engine keeps a copy: changes
					* go to it */
	bool want_out;                 /* EPOLLOUT asked of the channel */
	bool said_unwatched;           /* logged; not again until watched */
	/* What waits to go out: a whole list, then changes. */
	bool listing;
	bool list_first;
	bool list_watched;             /* changes will follow the list */
	int engine_watch;              /* goes with the list's first part */
	bool sync_due;                 /* "synced" after the changes */
	char **list;
	size_t list_count, list_next;
	struct rootwatch_change *changes;
	size_t change_count, change_next;
};

static void namepush_events(struct loop_source *src, uint32_t events);
static void namepush_send(struct namepush *p);

static void namepush_send_later(struct loop_deferred *d)
{
	namepush_send(d->arg);
}

static void namepush_drop(struct namepush *p)
{
	if (p->engine_watch >= 0)
		close(p->engine_watch);
	p->engine_watch = -1;
	vmconfig_list_free(p->list, p->list_count);
	p->list = NULL;
	p->list_count = p->list_next = 0;
	p->listing = false;
	rootwatch_changes_free(p->changes, p->change_count);
	p->changes = NULL;
	p->change_count = p->change_next = 0;
}

static void namepush_want_out(struct namepush *p, bool on)
{
	struct monitor *m = p->m;

	if (p->want_out == on || m->engine.fd < 0)
		return;
	if (loop_mod(&m->loop, &m->engine, EPOLLIN | (on ? EPOLLOUT : 0)) == 0)
		p->want_out = on;
}

static int namepush_watch(struct namepush *p)
{
	struct monitor *m = p->m;

	if (p->w.fd >= 0)
		return 0;
	if (rootwatch_open(&p->w, m->roots.config_root) < 0)
		goto fail;
	p->src = (struct loop_source){ p->w.fd, namepush_events, p };
	if (loop_add(&m->loop, &p->src, EPOLLIN) < 0) {
		rootwatch_close(&p->w);
		goto fail;
	}
	if (p->said_unwatched)
		daemon_log("config root %s: watched again", m->roots.config_root);
	p->said_unwatched = false;
	return 0;
fail:
	if (!p->said_unwatched)
		daemon_log("config root %s: cannot watch it (%s): the engine asks for its VM directories at every list",
			   m->roots.config_root, strerror(errno));
	p->said_unwatched = true;
	return -1;
}

static void namepush_unwatch(struct namepush *p, const char *why)
{
	struct monitor *m = p->m;

	if (p->w.fd >= 0)
		loop_del(&m->loop, &p->src);
	rootwatch_close(&p->w);
	daemon_log("config root %s: %s: not watched; the engine asks for its VM directories at every list until it is",
		   m->roots.config_root, why);
	p->said_unwatched = true;
}

/* Queue a whole list, which replaces whatever changes waited (a sync
 * asked for still ends with "synced"): the root's names as they are now,
 * whether changes will follow, and the engine's own watch, made before
 * the listing (an engine without one asks for a sync at every list). */
static void namepush_list(struct namepush *p)
{
	bool watched = p->w.fd >= 0;
	int r;

	namepush_drop(p);
	if (watched) {
		p->engine_watch = rootwatch_instance(p->m->roots.config_root);
		if (p->engine_watch < 0)
			daemon_log("config root %s: a watch for the engine: %s; it asks the monitor at every list",
				   p->m->roots.config_root, strerror(errno));
	}
	r = watched ? rootwatch_list(&p->w, &p->list, &p->list_count) :
	    rootwatch_names(p->m->roots.config_root, &p->list, &p->list_count);
	if (r < 0) {
		/* As before the watch: a root that cannot be listed has no
		 * VM to show. */
		if (watched)
			namepush_unwatch(p, strerror(errno));
		p->list = NULL;
		p->list_count = 0;
		watched = false;
		if (p->engine_watch >= 0)
			close(p->engine_watch);
		p->engine_watch = -1;
	}
	p->listing = true;
	p->list_first = true;
	p->list_watched = watched;
	p->copy = watched;
}

static void namepush_take(struct namepush *p)
{
	if (p->w.overflow) {
		namepush_list(p);
		return;
	}
	if (rootwatch_take(&p->w, &p->changes, &p->change_count) < 0) {
		namepush_unwatch(p, strerror(errno));
		namepush_list(p);
	}
}

static json_t *namepush_list_part(struct namepush *p)
{
	json_t *add = json_array(), *msg;
	size_t bytes = 0;
	bool more;

	for (; add && p->list_next < p->list_count && bytes < NAMEPUSH_PART_BYTES;
	     p->list_next++) {
		json_array_append_new(add, json_string(p->list[p->list_next]));
		bytes += strlen(p->list[p->list_next]) + 3;
	}
	more = p->list_next < p->list_count;
	msg = json_pack("{s:b,s:o,s:b,s:b}", "reset", p->list_first, "add", add,
			"more", more, "watching", p->list_watched);
	p->list_first = false;
	if (!more) {
		vmconfig_list_free(p->list, p->list_count);
		p->list = NULL;
		p->list_count = p->list_next = 0;
		p->listing = false;
	}
	return msg;
}

static json_t *namepush_change_part(struct namepush *p)
{
	json_t *add = json_array(), *del = json_array();
	struct rootwatch_change *c;
	size_t bytes = 0;

	for (; add && del && p->change_next < p->change_count &&
	     bytes < NAMEPUSH_PART_BYTES; p->change_next++) {
		c = &p->changes[p->change_next];
		json_array_append_new(c->present ? add : del,
				      json_string(c->name));
		bytes += strlen(c->name) + 3;
	}
	if (p->change_next == p->change_count) {
		rootwatch_changes_free(p->changes, p->change_count);
		p->changes = NULL;
		p->change_count = p->change_next = 0;
	}
	return json_pack("{s:o,s:o}", "add", add, "del", del);
}

/* Whether the channel has room for a part: at most a quarter of its
 * buffer unread, which is also when EPOLLOUT calls it writable (so a
 * wake-up for room always finds it). */
static bool namepush_room(struct monitor *m)
{
	int queued, size;
	socklen_t len = sizeof size;

	if (ioctl(m->engine.fd, SIOCOUTQ, &queued) < 0 ||
	    getsockopt(m->engine.fd, SOL_SOCKET, SO_SNDBUF, &size, &len) < 0)
		return true;
	return (long)queued * 4 <= (long)size;
}

/* What waits, in order: the whole list, the changes, the changes
 * touched since (a sync asked for every one read by then), "synced". */
static void namepush_send(struct namepush *p)
{
	struct monitor *m = p->m;
	int fd;
	json_t *msg;

	while (m->engine.fd >= 0 && m->engine_ready) {
		if (p->copy && !p->listing && !p->changes &&
		    rootwatch_pending(&p->w))
			namepush_take(p);
		if (!p->listing && !p->changes && !p->sync_due)
			break;
		if (!namepush_room(m)) {
			namepush_want_out(p, true);
			return;
		}
		fd = p->listing && p->list_first ? p->engine_watch : -1;
		if (p->listing)
			msg = namepush_list_part(p);
		else if (p->changes)
			msg = namepush_change_part(p);
		else {
			msg = json_pack("{s:b}", "synced", 1);
			p->sync_due = false;
		}
		if (!msg) {
			/* Out of memory: the engine asks when it needs them. */
			namepush_drop(p);
			p->copy = false;
			fd = -1;
			msg = json_pack("{s:b,s:[],s:b,s:b}", "reset", 1, "add",
					"more", 0, "watching", 0);
		}
		engine_send(m, PS_NAMES, 0, msg, &fd, fd >= 0 ? 1 : 0);
		if (fd >= 0 && fd == p->engine_watch) {
			close(p->engine_watch);
			p->engine_watch = -1;
		}
	}
	namepush_want_out(p, false);
}

/* Read the events waiting; false if the watch ended (the engine's copy
 * then becomes an unwatched list: it asks from now on). */
static bool namepush_read(struct namepush *p)
{
	int r = rootwatch_read(&p->w);

	if (r == 0 && !p->w.lost)
		return true;
	namepush_unwatch(p, r < 0 ? strerror(errno) : "deleted, moved or unmounted");
	if (p->copy) {
		namepush_list(p);
		namepush_send(p);
	}
	return false;
}

static void namepush_events(struct loop_source *src, uint32_t events)
{
	struct namepush *p = src->arg;

	/* Once per loop turn, however many events this turn brings. */
	if (namepush_read(p) && p->copy && rootwatch_pending(&p->w))
		loop_defer(&p->m->loop, &p->later);
}

int namepush_init(struct monitor *m)
{
	struct namepush *p = calloc(1, sizeof *p);

	if (!p)
		return -1;
	p->m = m;
	p->engine_watch = -1;
	rootwatch_init(&p->w);
	p->later = (struct loop_deferred){ .run = namepush_send_later, .arg = p };
	m->names = p;
	namepush_watch(p);
	return 0;
}

void namepush_fini(struct monitor *m)
{
	struct namepush *p = m->names;

	if (!p)
		return;
	if (p->w.fd >= 0)
		loop_del(&m->loop, &p->src);
	rootwatch_close(&p->w);
	loop_undefer(&m->loop, &p->later);
	namepush_drop(p);
	free(p);
	m->names = NULL;
}

void namepush_whole(struct monitor *m)
{
	struct namepush *p = m->names;

	/* Even with a list on its way: this engine may have dropped a
	 * part (names.h), and a list that crosses an ask is only sent
	 * twice. */
	if (!p)
		return;
	namepush_watch(p);
	namepush_list(p);
	namepush_send(p);
}

void namepush_sync(struct monitor *m)
{
	struct namepush *p = m->names;

	if (!p)
		return;
	p->sync_due = true;
	/* Without a copy, a whole list answers, then "synced". */
	if (!p->copy) {
		namepush_whole(m);
		return;
	}
	/* Every event the engine saw is in our queue too, by now (if the
	 * watch ended, an unwatched list goes first). */
	if (namepush_read(p))
		namepush_send(p);
}

void namepush_engine_gone(struct monitor *m)
{
	struct namepush *p = m->names;

	if (!p)
		return;
	loop_undefer(&m->loop, &p->later);
	namepush_drop(p);
	p->copy = false;
	p->sync_due = false;
	p->want_out = false;
}

void namepush_writable(struct monitor *m)
{
	if (m->names)
		namepush_send(m->names);
}
