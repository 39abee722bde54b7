/* The engine's channel to the monitor.  See monchan.h. */
#include "engine/monchan.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/log.h"

/* A message that arrived while a synchronous request waited. */
struct monchan_msg {
	struct monchan_msg *next;
	uint32_t seq;
	struct mon_reply r;
};

struct monchan_wait {
	struct monchan_wait *next;
	uint32_t seq;
	monchan_reply_fn *fn;
	void *arg;
};

/* How long a synchronous request may wait: the monitor answers these at
 * once, so only a monitor that is gone (or wedged) takes this long. */
#define MON_SYNC_TIMEOUT_MS 10000

void mon_reply_clear(struct mon_reply *r)
{
	json_decref(r->json);
	r->json = NULL;
	for (size_t i = 0; i < r->nfds; i++)
		if (r->fds[i] >= 0)
			close(r->fds[i]);
	r->nfds = 0;
}

/* The monitor is gone: nobody can launch, kill or restart anything for
 * us, and it restarts the engine when it comes back. */
static void mon_lost(struct monchan *m, const char *why)
{
	daemon_log("the monitor is gone (%s): exiting", why);
	exit(1);
}

/* PS_NAMES: into the copy at once, with the watch that may come
 * along. */
static void mon_names_part(struct monchan *m, const char *buf, size_t n,
			   int *fds, size_t nfds)
{
	json_t *o = json_loadb(buf, n, JSON_REJECT_DUPLICATES, NULL);
	int fd = nfds == 1 ? fds[0] : -1;

	if (nfds > 1) {
		for (size_t i = 0; i < nfds; i++)
			close(fds[i]);
		fd = -1;
		json_decref(o);
		o = NULL;       /* refused below: the copy is dropped */
	}
	if (names_apply(&m->names, o, fd) < 0)
		daemon_log("monitor's VM names: %s; asking again at the next list",
			   errno == EPROTO ? "a bad message" : strerror(errno));
	json_decref(o);
}

/* Read one message (PS_NAMES, which are applied here, aside): 1, 0 when
 * none waits, or the engine exits. */
static int mon_read(struct monchan *m, uint32_t *seq, struct mon_reply *r)
{
	static char buf[PS_PAYLOAD_MAX + 1];
	struct ps_hdr hdr;
	json_error_t jerr;
	ssize_t n;

again:
	memset(r, 0, sizeof *r);
	n = ps_recv(m->src.fd, &hdr, buf, PS_PAYLOAD_MAX, r->fds);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0 || (n == 0 && hdr.type == 0))
		mon_lost(m, n < 0 ? strerror(errno) : "end of stream");
	if (hdr.type == PS_NAMES) {
		mon_names_part(m, buf, (size_t)n, r->fds, hdr.nfds);
		goto again;
	}
	r->type = hdr.type;
	r->nfds = hdr.nfds;
	*seq = hdr.seq;
	r->json = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(r->json)) {
		daemon_log("monitor message %u: not a JSON object: %s",
			   hdr.type, jerr.text);
		mon_reply_clear(r);
		r->json = json_object();
	}
	return 1;
}

static void mon_queue(struct monchan *m, uint32_t seq, struct mon_reply *r)
{
	struct monchan_msg *q = calloc(1, sizeof *q);

	if (!q) {
		daemon_log("monitor message %u lost: out of memory", r->type);
		mon_reply_clear(r);
		return;
	}
	q->seq = seq;
	q->r = *r;
	*m->queue_tail = q;
	m->queue_tail = &q->next;
	loop_defer(m->loop, &m->drain);
}

static int mon_next_seq(struct monchan *m)
{
	if (++m->seq == 0)
		m->seq = 1;
	return (int)m->seq;
}

int mon_send(struct monchan *m, uint16_t type, const void *payload, size_t len)
{
	return ps_send(m->src.fd, type, (uint32_t)mon_next_seq(m), payload, len,
		       NULL, 0);
}

int mon_send_name(struct monchan *m, uint16_t type, const char *name)
{
	struct ps_name n;

	if (ps_set_name(n.name, name) < 0)
		return -1;
	return mon_send(m, type, &n, sizeof n);
}

/* Send and wait for the answer with the same number; what else comes
 * meanwhile is queued.  The caller clears r. */
int mon_call(struct monchan *m, uint16_t type, const void *payload,
		    size_t len, struct mon_reply *r)
{
	uint32_t seq = (uint32_t)mon_next_seq(m), got;
	struct pollfd p = { .fd = m->src.fd, .events = POLLIN };
	int n;

	if (ps_send(m->src.fd, type, seq, payload, len, NULL, 0) < 0)
		return -1;
	for (;;) {
		while (mon_read(m, &got, r)) {
			if (got == seq)
				return 0;
			mon_queue(m, got, r);
		}
		n = poll(&p, 1, MON_SYNC_TIMEOUT_MS);
		if (n == 0)
			mon_lost(m, "no answer");
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

int mon_request(struct monchan *m, uint16_t type, const void *payload,
		size_t len, monchan_reply_fn *fn, void *arg)
{
	struct monchan_wait *w = calloc(1, sizeof *w);

	if (!w)
		return -1;
	w->seq = (uint32_t)mon_next_seq(m);
	w->fn = fn;
	w->arg = arg;
	if (ps_send(m->src.fd, type, w->seq, payload, len, NULL, 0) < 0) {
		free(w);
		return -1;
	}
	w->next = m->waits;
	m->waits = w;
	return 0;
}

void mon_forget(struct monchan *m, void *arg)
{
	struct monchan_wait **pp = &m->waits, *w;

	while ((w = *pp)) {
		if (w->arg == arg) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
}

int mon_names(struct monchan *m)
{
	struct pollfd p = { .fd = m->src.fd, .events = POLLIN };
	bool *done = &m->names.complete;
	uint16_t ask = PS_LIST;
	struct mon_reply r;
	uint32_t seq;
	int n;

	if (names_current(&m->names)) {
		if (!names_stale(&m->names))
			return 0;
		/* Wait for "synced": after every change the monitor had
		 * seen, and after a whole list that crosses the ask. */
		ask = PS_SYNC;
		done = &m->names.synced;
	} else if (m->names.listed && !m->names.complete) {
		ask = 0;      /* a whole list is on its way: wait for it */
	}
	if (ask && mon_send(m, ask, NULL, 0) < 0)
		return -1;
	/* What the copy held before a new list or sync does not count. */
	if (ask == PS_LIST)
		m->names.listed = m->names.complete = false;
	m->names.synced = false;
	for (;;) {
		while (!*done && mon_read(m, &seq, &r))
			mon_queue(m, seq, &r);
		if (*done)
			return 0;
		n = poll(&p, 1, MON_SYNC_TIMEOUT_MS);
		if (n == 0)
			mon_lost(m, "no answer");
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

int mon_lookup(struct monchan *m, const char *name)
{
	struct mon_reply r;
	struct ps_name n;
	int found;

	if (ps_set_name(n.name, name) < 0)
		return -1;
	if (mon_call(m, PS_LOOKUP, &n, sizeof n, &r) < 0)
		return -1;
	found = json_is_true(json_object_get(r.json, "exists"));
	mon_reply_clear(&r);
	return found;
}

/* An answer to an asynchronous request goes to whoever asked; anything
 * else to the owner's dispatch. */
static void mon_dispatch(struct monchan *m, uint32_t seq, struct mon_reply *r)
{
	struct monchan_wait **pp, *w;

	for (pp = &m->waits; (w = *pp); pp = &w->next) {
		if (w->seq != seq)
			continue;
		*pp = w->next;
		w->fn(m->owner, r, w->arg);
		free(w);
		mon_reply_clear(r);
		return;
	}
	m->dispatch(m->owner, r);
	mon_reply_clear(r);
}

static void mon_drain(struct loop_deferred *d)
{
	struct monchan *m = d->arg;
	struct monchan_msg *q;

	while ((q = m->queue)) {
		m->queue = q->next;
		if (!m->queue)
			m->queue_tail = &m->queue;
		mon_dispatch(m, q->seq, &q->r);
		free(q);
	}
}

static void mon_ready(struct loop_source *src, uint32_t events)
{
	struct monchan *m = src->arg;
	struct mon_reply r;
	uint32_t seq;
	int n = 0;

	/* Older messages first. */
	mon_drain(&m->drain);
	while (n++ < 64 && mon_read(m, &seq, &r))
		mon_dispatch(m, seq, &r);
}

int mon_open(struct monchan *m, struct loop *loop, int fd,
	     monchan_dispatch_fn *dispatch, void *owner)
{
	memset(m, 0, sizeof *m);
	m->loop = loop;
	m->dispatch = dispatch;
	m->owner = owner;
	m->queue_tail = &m->queue;
	m->src = (struct loop_source){ fd, mon_ready, m };
	m->drain = (struct loop_deferred){ .run = mon_drain, .arg = m };
	names_init(&m->names);
	return loop_add(loop, &m->src, EPOLLIN);
}

void mon_close(struct monchan *m)
{
	struct monchan_wait *w;
	struct monchan_msg *q;

	loop_undefer(m->loop, &m->drain);
	while ((q = m->queue)) {
		m->queue = q->next;
		mon_reply_clear(&q->r);
		free(q);
	}
	while ((w = m->waits)) {
		m->waits = w->next;
		free(w);
	}
	if (m->src.fd >= 0) {
		loop_del(m->loop, &m->src);
		close(m->src.fd);
	}
	m->src.fd = -1;
	names_clear(&m->names);
}

