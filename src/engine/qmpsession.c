/* A QMP session in the engine's loop: handshake, calls, events, and the
 * budgets that keep a hostile QEMU from starving the loop.  See
 * qmpsession.h. */
#include "engine/qmpsession.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/text.h"

struct qmps_call {
	struct qmps_call *next;
	uint64_t id;
	qmps_reply_fn *fn;
	void *arg;
};

/* The handshake: greeting -> qmp_capabilities -> query-status [-> cont]. */
enum { STEP_GREETING, STEP_CAPS, STEP_STATUS, STEP_CONT, STEP_DONE };

static void qmps_log(struct qmp_session *s, const char *what, const char *a,
		     const char *b)
{
	unsigned long dropped;
	char *ea, *eb;

	if (!lograte_allow(&s->rate, QMPS_LOG_BURST, QMPS_LOG_WINDOW_S,
			   &dropped))
		return;
	if (dropped)
		daemon_log("vm %s: %lu QMP lines not logged (more than %d in %d s)",
			   s->vm, dropped, QMPS_LOG_BURST, QMPS_LOG_WINDOW_S);
	ea = text_escape(a ? a : "", a ? strlen(a) : 0, 120, TEXT_UTF8);
	eb = text_escape(b ? b : "", b ? strlen(b) : 0, 240, TEXT_UTF8);
	daemon_log("vm %s: QMP %s%s%s%s%s", s->vm, what, ea && *ea ? " " : "",
		   ea ? ea : "", eb && *eb ? ": " : "", eb ? eb : "");
	free(ea);
	free(eb);
}

void qmps_error(const struct qmp_msg *msg, char *buf, size_t len)
{
	char *cls = text_escape(msg->error_class, strlen(msg->error_class),
				60, TEXT_UTF8);
	char *desc = text_escape(msg->error_desc, strlen(msg->error_desc),
				 300, TEXT_UTF8);

	snprintf(buf, len, "%s: %s", cls ? cls : "?", desc ? desc : "?");
	free(cls);
	free(desc);
}

static int qmps_send(struct qmp_session *s, const char *execute, json_t *args,
		     int fd, uint64_t *id)
{
	size_t len;
	char *line;
	int r;

	if (s->src.fd < 0) {
		errno = EPIPE;
		return -1;
	}
	*id = ++s->next_id;
	line = qmp_command(execute, args, *id, &len);
	if (!line)
		return -1;
	r = qmp_send(s->src.fd, line, len, fd);
	free(line);
	return r;
}

int qmps_call(struct qmp_session *s, const char *execute, json_t *args,
	      int fd, qmps_reply_fn *fn, void *arg)
{
	struct qmps_call *call = NULL;
	uint64_t id;

	if (fn && s->call_count >= QMPS_CALLS_MAX) {
		errno = EBUSY;
		return -1;
	}
	if (fn && !(call = calloc(1, sizeof *call)))
		return -1;
	if (qmps_send(s, execute, args, fd, &id) < 0) {
		free(call);
		return -1;
	}
	if (call) {
		*call = (struct qmps_call){ s->calls, id, fn, arg };
		s->calls = call;
		s->call_count++;
	}
	return 0;
}

void qmps_forget(struct qmp_session *s, void *arg)
{
	struct qmps_call **pp = &s->calls, *call;

	while ((call = *pp)) {
		if (call->arg == arg) {
			*pp = call->next;
			s->call_count--;
			free(call);
		} else {
			pp = &call->next;
		}
	}
}

static bool qmps_answer(struct qmp_session *s, const struct qmp_msg *msg)
{
	struct qmps_call **pp, *call;

	if (!msg->has_id)
		return false;
	for (pp = &s->calls; (call = *pp); pp = &call->next) {
		if (call->id != msg->id)
			continue;
		*pp = call->next;
		s->call_count--;
		call->fn(s->owner, msg, call->arg);
		free(call);
		return true;
	}
	return false;
}

static void qmps_step_send(struct qmp_session *s, int step,
			   const char *execute)
{
	s->step = step;
	if (qmps_send(s, execute, NULL, -1, &s->step_id) < 0) {
		char why[128];

		snprintf(why, sizeof why, "%s: %s", execute, strerror(errno));
		s->step = STEP_DONE;
		s->ops->failed(s->owner, why);
	}
}

/* The handshake's answers; false if msg was not one of them. */
static bool qmps_handshake(struct qmp_session *s, const struct qmp_msg *msg)
{
	const char *status;
	char why[400];

	if (s->step == STEP_DONE)
		return false;
	if (msg->kind == QMP_GREETING) {
		if (s->step != STEP_GREETING)
			return true;
		if (s->ops->greeted)
			s->ops->greeted(s->owner);
		qmps_step_send(s, STEP_CAPS, "qmp_capabilities");
		return true;
	}
	if ((msg->kind != QMP_RETURN && msg->kind != QMP_ERROR) ||
	    !msg->has_id || msg->id != s->step_id)
		return false;
	if (msg->kind == QMP_ERROR && s->step != STEP_CAPS) {
		qmps_error(msg, why, sizeof why);
		s->step = STEP_DONE;
		s->ops->failed(s->owner, why);
		return true;
	}
	switch (s->step) {
	case STEP_CAPS:   /* an error: negotiated already (adopted) */
	case STEP_CONT:
		qmps_step_send(s, STEP_STATUS, "query-status");
		break;
	case STEP_STATUS:
		status = json_string_value(json_object_get(msg->value, "status"));
		if (status && !strcmp(status, "running")) {
			s->step = STEP_DONE;
			s->ops->ready(s->owner);
		} else {
			qmps_step_send(s, STEP_CONT, "cont");
		}
		break;
	}
	return true;
}

static void qmps_dispatch(struct qmp_session *s, const struct qmp_msg *msg)
{
	if (qmps_handshake(s, msg))
		return;
	switch (msg->kind) {
	case QMP_RETURN:
	case QMP_ERROR:
		if (qmps_answer(s, msg))
			return;
		if (msg->kind == QMP_ERROR)
			qmps_log(s, "error", msg->error_class, msg->error_desc);
		return;
	case QMP_EVENT:
		qmps_log(s, "event", msg->event, NULL);
		s->ops->event(s->owner, msg);
		return;
	case QMP_GREETING:
		return;
	}
}

/* Handle at most the budget of complete lines; true if more wait. */
static bool qmps_pop_some(struct qmp_session *s)
{
	struct qmp_msg msg;
	int n = 0, r;

	while (s->codec && n < QMPS_MSG_BUDGET && (r = qmp_pop(s->codec, &msg))) {
		n++;
		if (r < 0) {
			qmps_log(s, "message dropped:", strerror(errno), NULL);
			continue;
		}
		qmps_dispatch(s, &msg);
		qmp_msg_clear(&msg);
	}
	return s->codec && qmp_has_line(s->codec);
}

static void qmps_hangup(struct qmp_session *s)
{
	/* QEMU is going; the monitor reports how.  What is buffered still
	 * counts (its last events). */
	loop_del(s->loop, &s->src);
	close(s->src.fd);
	s->src.fd = -1;
}

static void qmps_ready(struct loop_source *src, uint32_t events)
{
	struct qmp_session *s = src->arg;
	char chunk[4096];
	size_t total = 0;
	ssize_t n;

	/* Lines already read go first: no more is read until they are
	 * handled, so the codec never holds more than one budget. */
	if (qmps_pop_some(s)) {
		loop_defer(s->loop, &s->more);
		return;
	}
	while (total < QMPS_READ_BUDGET) {
		n = recv(src->fd, chunk, sizeof chunk, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			qmps_hangup(s);
			break;
		}
		if (qmp_feed(s->codec, chunk, (size_t)n) < 0)
			break;
		total += (size_t)n;
	}
	if (qmps_pop_some(s))
		loop_defer(s->loop, &s->more);
}

static void qmps_more(struct loop_deferred *d)
{
	struct qmp_session *s = d->arg;

	if (qmps_pop_some(s))
		loop_defer(s->loop, &s->more);
}

int qmps_open(struct qmp_session *s, struct loop *loop, int fd,
	      const char *vm, bool adopted, const struct qmps_ops *ops,
	      void *owner)
{
	memset(s, 0, sizeof *s);
	s->loop = loop;
	s->ops = ops;
	s->owner = owner;
	s->vm = vm;
	s->src = (struct loop_source){ fd, qmps_ready, s };
	s->more = (struct loop_deferred){ .run = qmps_more, .arg = s };
	s->codec = qmp_codec_new(QMPS_LINE_MAX);
	if (!s->codec || loop_add(loop, &s->src, EPOLLIN) < 0) {
		qmp_codec_free(s->codec);
		s->codec = NULL;
		close(fd);
		s->src.fd = -1;
		return -1;
	}
	s->step = STEP_GREETING;
	if (adopted)
		qmps_step_send(s, STEP_CAPS, "qmp_capabilities");
	return 0;
}

bool qmps_is_open(const struct qmp_session *s)
{
	return s->src.fd >= 0;
}

void qmps_close(struct qmp_session *s)
{
	struct qmps_call *call;

	if (!s->loop)
		return;
	while ((call = s->calls)) {
		s->calls = call->next;
		free(call);
	}
	s->call_count = 0;
	loop_undefer(s->loop, &s->more);
	if (s->src.fd >= 0) {
		loop_del(s->loop, &s->src);
		close(s->src.fd);
	}
	s->src.fd = -1;
	qmp_codec_free(s->codec);
	s->codec = NULL;
}
