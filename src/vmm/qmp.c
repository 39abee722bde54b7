/* Incremental QMP codec.  See qmp.h. */
#include "vmm/qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

struct qmp_codec {
	char *buf;        /* bytes of the current, incomplete line(s) */
	size_t off;       /* consumed bytes at the start of buf */
	size_t len;       /* bytes in buf after off */
	size_t cap;
	size_t max_msg;
	size_t scanned;   /* prefix of buf known to hold no newline */
	size_t tail;      /* bytes of buf after its last newline */
	bool discarding;  /* inside an overlong line: drop until newline */
	size_t overflows; /* overlong lines ended, not yet reported by pop */
};

struct qmp_codec *qmp_codec_new(size_t max_msg)
{
	struct qmp_codec *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->max_msg = max_msg ? max_msg : QMP_DEFAULT_MAX_MSG;
	return c;
}

void qmp_codec_free(struct qmp_codec *c)
{
	if (!c)
		return;
	free(c->buf);
	free(c);
}

/* Popping only advances off, so that a burst of small messages costs one
 * move here rather than one per message. */
static int qmp_reserve(struct qmp_codec *c, size_t more)
{
	size_t want = c->len + more, ncap;
	char *nbuf;

	if (c->off && c->off + want > c->cap) {
		memmove(c->buf, c->buf + c->off, c->len);
		c->off = 0;
	}
	if (c->off + want <= c->cap)
		return 0;
	ncap = c->cap ? c->cap : 4096;
	while (ncap < want)
		ncap *= 2;
	nbuf = realloc(c->buf, ncap);
	if (!nbuf)
		return -1;
	c->buf = nbuf;
	c->cap = ncap;
	return 0;
}

/* Drop an overlong line's bytes as they arrive, so the buffer stays
 * bounded by max_msg plus one read no matter what the peer sends. */
int qmp_feed(struct qmp_codec *c, const void *data, size_t len)
{
	const char *p = data, *nl;

	while (len) {
		if (c->discarding) {
			nl = memchr(p, '\n', len);
			if (!nl)
				return 0;
			c->discarding = false;
			c->overflows++;
			len -= (size_t)(nl + 1 - p);
			p = nl + 1;
			continue;
		}
		nl = memchr(p, '\n', len);
		size_t chunk = nl ? (size_t)(nl + 1 - p) : len;
		size_t cur = c->tail;
		size_t linelen = cur + (nl ? chunk - 1 : chunk);

		if (linelen > c->max_msg) {
			/* Forget the partial line and skip to its end. */
			c->len -= cur;
			c->tail = 0;
			if (c->scanned > c->len)
				c->scanned = c->len;
			c->discarding = true;
			continue; /* rescan p in discard mode */
		}
		if (qmp_reserve(c, chunk) < 0)
			return -1;
		memcpy(c->buf + c->off + c->len, p, chunk);
		c->len += chunk;
		c->tail = nl ? 0 : c->tail + chunk;
		p += chunk;
		len -= chunk;
	}
	return 0;
}

static void qmp_consume(struct qmp_codec *c, size_t n)
{
	c->off += n;
	c->len -= n;
	c->scanned = 0;
	if (!c->len)
		c->off = 0;
}

bool qmp_has_line(const struct qmp_codec *c)
{
	return c->overflows ||
	       (c->len > c->scanned &&
		memchr(c->buf + c->off + c->scanned, '\n', c->len - c->scanned));
}

static int qmp_get_id(json_t *root, struct qmp_msg *m)
{
	json_t *id = json_object_get(root, "id");

	if (!id)
		return 0;
	/* An id we did not send (ours are non-negative integers) is not an
	 * error in the message, but it can match no command. */
	if (json_is_integer(id) && json_integer_value(id) >= 0) {
		m->has_id = true;
		m->id = (uint64_t)json_integer_value(id);
	}
	return 0;
}

static int qmp_classify(json_t *root, struct qmp_msg *m)
{
	json_t *v;

	if ((v = json_object_get(root, "QMP"))) {
		if (!json_is_object(v))
			return -1;
		m->kind = QMP_GREETING;
		m->value = v;
		return 0;
	}
	if ((v = json_object_get(root, "event"))) {
		if (!json_is_string(v))
			return -1;
		m->kind = QMP_EVENT;
		m->event = json_string_value(v);
		m->value = json_object_get(root, "data");
		return 0;
	}
	if (json_object_get(root, "return")) {
		m->kind = QMP_RETURN;
		m->value = json_object_get(root, "return");
		return qmp_get_id(root, m);
	}
	if ((v = json_object_get(root, "error"))) {
		json_t *cls = json_object_get(v, "class");
		json_t *desc = json_object_get(v, "desc");

		if (!json_is_object(v) || !json_is_string(cls))
			return -1;
		m->kind = QMP_ERROR;
		m->value = v;
		m->error_class = json_string_value(cls);
		m->error_desc = json_is_string(desc) ? json_string_value(desc)
						     : "";
		return qmp_get_id(root, m);
	}
	return -1;
}

int qmp_pop(struct qmp_codec *c, struct qmp_msg *m)
{
	json_error_t jerr;
	json_t *root;
	char *nl;
	size_t linelen;

	memset(m, 0, sizeof(*m));
	if (c->overflows) {
		c->overflows--;
		errno = EMSGSIZE;
		return -1;
	}
	if (!c->len)
		return 0;
	for (;;) {
		char *line = c->buf + c->off;

		nl = c->len > c->scanned ?
			memchr(line + c->scanned, '\n', c->len - c->scanned) :
			NULL;
		if (!nl) {
			c->scanned = c->len;
			return 0;
		}
		linelen = (size_t)(nl - line);
		/* Blank lines (QEMU sends "\r\n") carry nothing. */
		size_t k = 0;
		/* Not strchr: it would match a NUL, its terminator. */
		while (k < linelen && (line[k] == ' ' || line[k] == '\t' ||
				       line[k] == '\r'))
			k++;
		if (k < linelen)
			break;
		qmp_consume(c, linelen + 1);
	}
	root = json_loadb(c->buf + c->off, linelen, JSON_REJECT_DUPLICATES, &jerr);
	qmp_consume(c, linelen + 1);
	if (!root) {
		errno = EBADMSG;
		return -1;
	}
	if (!json_is_object(root) || qmp_classify(root, m) < 0) {
		json_decref(root);
		memset(m, 0, sizeof(*m));
		errno = EBADMSG;
		return -1;
	}
	m->root = root;
	return 1;
}

void qmp_msg_clear(struct qmp_msg *m)
{
	json_decref(m->root);
	memset(m, 0, sizeof(*m));
}

char *qmp_command(const char *execute, json_t *args, uint64_t id,
		  size_t *len)
{
	json_t *cmd;
	char *s, *out;
	size_t n;

	if (!execute || (args && !json_is_object(args)) || id > INT64_MAX) {
		errno = EINVAL;
		return NULL;
	}
	cmd = json_pack("{s:s, s:I}", "execute", execute, "id",
			(json_int_t)id);
	if (!cmd)
		goto enomem;
	if (args && json_object_set(cmd, "arguments", args) < 0)
		goto err_cmd;
	s = json_dumps(cmd, JSON_COMPACT);
	json_decref(cmd);
	if (!s)
		goto enomem;
	n = strlen(s);
	out = realloc(s, n + 2);
	if (!out) {
		free(s);
		goto enomem;
	}
	out[n] = '\n';
	out[n + 1] = '\0';
	if (len)
		*len = n + 1;
	return out;
err_cmd:
	json_decref(cmd);
enomem:
	errno = ENOMEM;
	return NULL;
}

int qmp_send(int sock, const char *line, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov;
	struct msghdr mh;
	struct cmsghdr *cm;
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		iov = (struct iovec){ (char *)line + off, len - off };
		mh = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1 };
		/* The fd rides on the first byte only: once some of the line
		 * is out, QEMU has it. */
		if (fd >= 0 && off == 0) {
			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.buf;
			mh.msg_controllen = sizeof(ctl.buf);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &fd, sizeof(int));
		}
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/* ---- blocking helpers (tests, vmm-try) ---- */

static long long qmp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Next well-formed message; bad lines are skipped. */
static int qmp_sync_next(int fd, struct qmp_codec *c, long long deadline,
			 struct qmp_msg *m)
{
	char buf[4096];

	for (;;) {
		int r = qmp_pop(c, m);

		if (r == 1)
			return 0;
		if (r < 0 && errno == ENOMEM)
			return -1;
		if (r < 0)
			continue;
		long long left = deadline - qmp_now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			continue;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EPIPE;
			return -1;
		}
		if (qmp_feed(c, buf, (size_t)n) < 0)
			return -1;
	}
}

static int qmp_write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			poll(&p, 1, 1000);
			continue;
		}
		if (n < 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

int qmp_sync_command(int fd, struct qmp_codec *c, const char *execute,
		     json_t *args, uint64_t id, int timeout_ms, json_t **ret,
		     char *errbuf, size_t errlen)
{
	long long deadline = qmp_now_ms() + timeout_ms;
	struct qmp_msg m;
	size_t len;
	char *line = qmp_command(execute, args, id, &len);
	int rc;

	if (ret)
		*ret = NULL;
	if (!line)
		return -1;
	rc = qmp_write_all(fd, line, len);
	free(line);
	if (rc < 0)
		return -1;
	for (;;) {
		if (qmp_sync_next(fd, c, deadline, &m) < 0)
			return -1;
		if ((m.kind == QMP_RETURN || m.kind == QMP_ERROR) &&
		    m.has_id && m.id == id)
			break;
		qmp_msg_clear(&m);
	}
	if (m.kind == QMP_ERROR) {
		if (errbuf && errlen)
			snprintf(errbuf, errlen, "%s: %s", m.error_class,
				 m.error_desc);
		qmp_msg_clear(&m);
		errno = EIO;
		return -1;
	}
	if (ret && m.value)
		*ret = json_incref(m.value);
	qmp_msg_clear(&m);
	return 0;
}

int qmp_sync_handshake(int fd, struct qmp_codec *c, int timeout_ms)
{
	long long deadline = qmp_now_ms() + timeout_ms;
	struct qmp_msg m;
	bool greeting;

	if (qmp_sync_next(fd, c, deadline, &m) < 0)
		return -1;
	greeting = m.kind == QMP_GREETING;
	qmp_msg_clear(&m);
	if (!greeting) {
		errno = EPROTO;
		return -1;
	}
	return qmp_sync_command(fd, c, "qmp_capabilities", NULL, 0,
				timeout_ms, NULL, NULL, 0);
}
