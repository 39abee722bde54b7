/* The control socket's clients: framing, limits, replies and streams.
 * See control.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/text.h"
#include "engine/control.h"

static void client_ready(struct loop_source *src, uint32_t events);
static void client_timer(struct loop_source *src, uint32_t events);

static void client_free(struct client *c)
{
	struct control *ctl = c->ctl;

	loop_undefer(ctl->loop, &c->pump_later);
	if (c->closed)
		c->closed(c->owner, c);
	loop_del(ctl->loop, &c->src);
	loop_del(ctl->loop, &c->timer);
	close(c->src.fd);
	if (c->timer.fd >= 0)
		close(c->timer.fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		ctl->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ctl->client_count--;
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

/* Ask the loop to free c: it reports a hang-up for a socket shut down in
 * both directions.  Safe from any callback, unlike client_free. */
/* A viewer that types and hangs up at once: a send to it can fail before
 * its input was read, and that input still belongs to the guest. */
static void client_drain_input(struct client *c)
{
	char chunk[4096];
	ssize_t n;

	if (!c->streaming || !c->input || c->eof)
		return;
	while ((n = recv(c->src.fd, chunk, sizeof chunk, MSG_DONTWAIT)) > 0)
		c->input(c->owner, c, chunk, (size_t)n);
}

static void client_kill(struct client *c)
{
	if (c->dead)
		return;
	client_drain_input(c);
	c->dead = true;
	shutdown(c->src.fd, SHUT_RDWR);
	loop_mod(c->ctl->loop, &c->src, EPOLLIN);
}

/* Whether a whole request is buffered, waiting for the one in progress. */
static bool client_backlogged(const struct client *c)
{
	return c->pending && c->in.len && memchr(c->in.data, '\n', c->in.len);
}

static void client_events(struct client *c)
{
	uint32_t ev = 0;

	if (c->dead)
		return;
	/* A client that does not read its replies is not read either, nor
	 * one whose next request waits for the answer to the last: its
	 * requests wait in the kernel's buffers, not in ours. */
	if (!c->eof && !c->closing &&
	    (c->streaming || (c->out.len < CONTROL_OUT_PAUSE &&
			      !client_backlogged(c))))
		ev |= EPOLLIN;
	if (c->out.len)
		ev |= EPOLLOUT;
	loop_mod(c->ctl->loop, &c->src, ev);
}

static void client_flush(struct client *c)
{
	ssize_t n;

	while (c->out.len && !c->dead) {
		n = send(c->src.fd, c->out.data, c->out.len,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			client_kill(c);
			return;
		}
		buf_consume(&c->out, (size_t)n);
	}
	if (c->closing && !c->out.len) {
		client_kill(c);
		return;
	}
	client_events(c);
}

static void client_queue(struct client *c, const void *data, size_t n)
{
	if (c->dead)
		return;
	if (buf_append(&c->out, data, n) < 0) {
		/* It does not read what it asked for: drop it. */
		client_kill(c);
		return;
	}
	client_flush(c);
}

static void client_idle(struct client *c, bool arm)
{
	loop_timer_arm(c->timer.fd, arm ? CONTROL_IDLE_MS : 0);
}

int control_parse(const char *data, size_t len, size_t *used, json_t **req,
		  char *err, size_t errlen)
{
	json_error_t jerr;
	const char *nl = memchr(data, '\n', len);
	size_t n;

	*req = NULL;
	*used = 0;
	if (!nl)
		return 0;
	n = (size_t)(nl - data);
	*used = n + 1;
	if (!n)
		return 0;
	/* Without JSON_ALLOW_NUL, "\u0000" in a string is rejected: names
	 * and ops end up in C strings. */
	*req = json_loadb(data, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!*req) {
		snprintf(err, errlen, "bad request: %s", jerr.text);
		return -1;
	}
	if (!json_is_object(*req)) {
		json_decref(*req);
		*req = NULL;
		snprintf(err, errlen, "bad request: not a JSON object");
		return -1;
	}
	return 1;
}

static void client_pump(struct client *c)
{
	struct control *ctl = c->ctl;
	char err[256];
	json_t *req;
	size_t used;
	int r;

	if (c->dispatching)
		return;
	c->dispatching = true;
	while (!c->pending && !c->streaming && !c->dead && !c->closing &&
	       c->out.len < CONTROL_OUT_PAUSE && c->in.len) {
		r = control_parse(c->in.data, c->in.len, &used, &req, err,
				  sizeof err);
		if (!used)
			break;
		buf_consume(&c->in, used);
		if (!r)
			continue;
		c->pending = true;
		client_idle(c, false);
		if (r < 0) {
			control_error(c, "%s", err);
			continue;
		}
		ctl->request(ctl->arg, c, req);
		json_decref(req);
	}
	if (c->streaming && c->in.len && c->input && !c->dead) {
		c->input(c->owner, c, c->in.data, c->in.len);
		c->in.len = 0;
	}
	c->dispatching = false;
	if (c->eof && !c->pending && !c->streaming && !c->closing &&
	    !c->dead && c->out.len < CONTROL_OUT_PAUSE) {
		if (c->in.len) {
			/* Dropped first: the reply pumps again. */
			c->in.len = 0;
			c->pending = true;
			control_error(c, "bad request: truncated (no newline before end of input)");
		}
		control_finish(c);
	}
}

/* A reply was queued: the next request is read from the loop, never
 * inside the code that answered (which may be in the middle of changing
 * the very state the next request looks at). */
static void client_pump_later(struct loop_deferred *d)
{
	struct client *c = d->arg;

	if (c->dead)
		return;
	client_pump(c);
	client_events(c);
}

static void client_read(struct client *c)
{
	char chunk[4096];
	ssize_t n;

	for (;;) {
		n = recv(c->src.fd, chunk, sizeof chunk, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				client_kill(c);
			return;
		}
		if (n == 0) {
			c->eof = true;
			if (c->streaming) {
				/* A viewer that closed its input keeps
				 * receiving until it closes the socket. */
				client_events(c);
				return;
			}
			client_events(c);
			client_pump(c);
			return;
		}
		if (c->streaming) {
			if (c->input)
				c->input(c->owner, c, chunk, (size_t)n);
			continue;
		}
		if (buf_append(&c->in, chunk, (size_t)n) < 0) {
			c->in.len = 0;
			if (!c->pending) {
				c->pending = true;
				control_error(c, "bad request: longer than %d bytes",
					      CONTROL_REQUEST_MAX);
			}
			control_finish(c);
			return;
		}
		client_pump(c);
		if (c->dead || c->closing)
			return;
		if (c->out.len >= CONTROL_OUT_PAUSE || client_backlogged(c)) {
			client_events(c);
			return;
		}
	}
}

static void client_ready(struct loop_source *src, uint32_t events)
{
	struct client *c = src->arg;

	if (c->dead) {
		client_free(c);
		return;
	}
	if (events & EPOLLIN)
		client_read(c);
	if (!c->dead && (events & EPOLLOUT)) {
		client_flush(c);
		/* Requests held back while replies were waiting. */
		if (!c->dead)
			client_pump(c);
	}
	if (!c->dead && (events & (EPOLLHUP | EPOLLERR)))
		client_kill(c);
	if (c->dead && (events & (EPOLLHUP | EPOLLERR)))
		client_free(c);
}

static void client_timer(struct loop_source *src, uint32_t events)
{
	struct client *c = src->arg;

	loop_timer_ack(src->fd);
	if (c->closing) {
		/* It did not take its last reply in time either. */
		client_kill(c);
		return;
	}
	if (c->pending || c->streaming || c->dead)
		return;
	c->pending = true;
	control_error(c, "idle for %d s: closing", CONTROL_IDLE_MS / 1000);
	control_finish(c);
}

static void control_accept(struct loop_source *src, uint32_t events)
{
	struct control *ctl = src->arg;
	struct client *c;
	struct ucred cred;
	socklen_t len = sizeof cred;
	static const char refused[] =
		"{\"ok\": false, \"error\": \"permission denied: not root nor the daemon's user\"}\n";
	static const char busy[] =
		"{\"ok\": false, \"error\": \"too many clients connected; try again later\"}\n";
	int fd;

	fd = accept4(ctl->src.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != ctl->uid)) {
		send(fd, refused, sizeof refused - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return;
	}
	/* Each client holds two fds: keep enough for the VMs. */
	if (ctl->client_count >= CONTROL_CLIENTS_MAX) {
		send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c)
		goto fail_fd;
	c->ctl = ctl;
	c->uid = cred.uid;
	c->pump_later = (struct loop_deferred){ .run = client_pump_later, .arg = c };
	c->src = (struct loop_source){ fd, client_ready, c };
	c->timer = (struct loop_source){ loop_timer_new(), client_timer, c };
	if (c->timer.fd < 0)
		goto fail_client;
	buf_init(&c->in, CONTROL_REQUEST_MAX);
	buf_init(&c->out, CONTROL_OUT_MAX);
	if (loop_add(ctl->loop, &c->src, EPOLLIN) < 0)
		goto fail_timer;
	if (loop_add(ctl->loop, &c->timer, EPOLLIN) < 0)
		goto fail_watch;
	client_idle(c, true);
	c->next = ctl->clients;
	if (c->next)
		c->next->prev = c;
	ctl->clients = c;
	ctl->client_count++;
	return;

fail_watch:
	loop_del(ctl->loop, &c->src);
fail_timer:
	close(c->timer.fd);
fail_client:
	free(c);
fail_fd:
	close(fd);
}

int control_init(struct control *ctl, struct loop *loop, int fd, uid_t uid,
		 control_request_fn *request, void *arg)
{
	memset(ctl, 0, sizeof *ctl);
	ctl->loop = loop;
	ctl->uid = uid;
	ctl->request = request;
	ctl->arg = arg;
	ctl->src = (struct loop_source){ fd, control_accept, ctl };
	return 0;
}

int control_start(struct control *ctl)
{
	if (ctl->started)
		return 0;
	if (loop_add(ctl->loop, &ctl->src, EPOLLIN) < 0)
		return -1;
	ctl->started = true;
	return 0;
}

void control_fini(struct control *ctl)
{
	while (ctl->clients)
		client_free(ctl->clients);
	if (ctl->src.fd >= 0) {
		if (ctl->started)
			loop_del(ctl->loop, &ctl->src);
		close(ctl->src.fd);
	}
	ctl->src.fd = -1;
	ctl->started = false;
}

void control_reply_text(struct client *c, const char *text, size_t len)
{
	if (!c->pending)
		return;
	c->pending = false;
	if (c->dead)
		return;
	/* The reply and its newline in one write. */
	if (buf_append(&c->out, text, len) < 0 ||
	    buf_append(&c->out, "\n", 1) < 0) {
		/* It does not read what it asked for: drop it. */
		client_kill(c);
		return;
	}
	client_flush(c);
	if (c->dead || c->streaming)
		return;
	client_idle(c, true);
	loop_defer(c->ctl->loop, &c->pump_later);
}

void control_reply(struct client *c, json_t *reply)
{
	static const char failed[] = "{\"ok\": false, \"error\": \"internal error: the reply could not be built\"}";
	char *s;

	if (!c->pending) {
		json_decref(reply);
		return;
	}
	s = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	json_decref(reply);
	/* A reply that cannot be built still gets an answer. */
	control_reply_text(c, s ? s : failed, s ? strlen(s) : strlen(failed));
	free(s);
}

void control_ok(struct client *c)
{
	control_reply(c, json_pack("{s:b}", "ok", 1));
}

void control_error(struct client *c, const char *fmt, ...)
{
	char msg[1024], *safe;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	/* Cut on a character, and never let a quoted byte that is not
	 * UTF-8 make the reply unsendable (JSON strings are UTF-8). */
	n = (int)text_utf8_cut(msg, (size_t)n < sizeof msg ? (size_t)n :
			       sizeof msg - 1);
	msg[n] = '\0';
	safe = text_utf8_valid(msg, (size_t)n) ? NULL :
	       text_escape(msg, (size_t)n, sizeof msg, TEXT_UTF8);
	control_reply(c, json_pack("{s:b,s:s}", "ok", 0, "error",
				   safe ? safe : msg));
	free(safe);
}

void control_stream(struct client *c, void *owner, control_input_fn *input,
		    control_close_fn *closed)
{
	c->streaming = true;
	c->owner = owner;
	c->input = input;
	c->closed = closed;
	control_ok(c);
	/* Anything typed after the request line is console input. */
	loop_defer(c->ctl->loop, &c->pump_later);
}

void control_send(struct client *c, const void *data, size_t n)
{
	client_queue(c, data, n);
}

void control_finish(struct client *c)
{
	if (c->dead)
		return;
	c->closing = true;
	client_flush(c);
}

void control_own(struct client *c, void *owner, control_close_fn *closed)
{
	c->owner = owner;
	c->closed = closed;
}

void control_disown(struct client *c)
{
	c->owner = NULL;
	c->input = NULL;
	c->closed = NULL;
}
