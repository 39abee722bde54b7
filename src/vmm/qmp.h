/* An incremental QMP codec for a non-blocking event loop.
 *
 * Feed it whatever bytes the socket gave (any fragmentation), then pop
 * complete messages.  QEMU ends every message with a newline and never
 * puts one inside; each line must be one JSON object.  Everything here is
 * untrusted: a line longer than the cap, invalid JSON, or JSON that is not
 * a QMP message is reported as an error for that line only (the codec
 * resynchronises at the next newline), never a crash or an unbounded
 * buffer.  No I/O in the codec itself.
 */
#ifndef VMHOST_QMP_H
#define VMHOST_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QMP_DEFAULT_MAX_MSG (4u << 20) /* bytes per message */

enum qmp_kind {
	QMP_GREETING, /* {"QMP": {...}} */
	QMP_RETURN,   /* {"return": ..., "id": ...} */
	QMP_ERROR,    /* {"error": {"class", "desc"}, "id": ...} */
	QMP_EVENT,    /* {"event": "NAME", "data": {...}, "timestamp": ...} */
};

struct qmp_msg {
	enum qmp_kind kind;
	json_t *root;        /* owned: the whole message */
	/* The rest borrow from root (valid until qmp_msg_clear). */
	bool has_id;
	uint64_t id;         /* our ids are unsigned integers */
	json_t *value;       /* return value, event data, or greeting body; may be NULL */
	const char *event;   /* QMP_EVENT: its name */
	const char *error_class; /* QMP_ERROR */
	const char *error_desc;  /* QMP_ERROR */
};

struct qmp_codec;

/* max_msg 0 means QMP_DEFAULT_MAX_MSG.  NULL/ENOMEM on failure. */
struct qmp_codec *qmp_codec_new(size_t max_msg);
void qmp_codec_free(struct qmp_codec *c);

/* Append bytes.  Never fails for size reasons (an overlong line is
 * dropped as it streams and reported by qmp_pop); -1/ENOMEM only. */
int qmp_feed(struct qmp_codec *c, const void *buf, size_t len);

/* Take the next complete message.  Returns 1 and fills *msg (free with
 * qmp_msg_clear), 0 when no complete line is buffered, or -1 for one bad
 * line with errno EMSGSIZE (too long), EBADMSG (not JSON, not an object,
 * not a QMP message) or ENOMEM; call again for the next line. */
int qmp_pop(struct qmp_codec *c, struct qmp_msg *msg);
void qmp_msg_clear(struct qmp_msg *msg);
/* Whether qmp_pop has a line (or an overflow) to report without more
 * input: lets a reader stop feeding until it has caught up. */
bool qmp_has_line(const struct qmp_codec *c);

/* A command line, newline-terminated: {"execute": E, "arguments": A,
 * "id": ID}.  args may be NULL; it is not stolen.  Returns a malloc'd
 * string and its length, or NULL with errno set. */
char *qmp_command(const char *execute, json_t *args, uint64_t id,
		  size_t *len);

/* Write one command line (from qmp_command) to a non-blocking socket,
 * with fd (if >= 0) as SCM_RIGHTS ancillary data on its first byte: how
 * QMP's getfd receives a descriptor (the socket must be AF_UNIX).  Never
 * waits: 0 once every byte is out; -1 with errno otherwise (EAGAIN: the
 * socket is full mid-line, EPIPE: QEMU is gone).  The caller keeps fd. */
int qmp_send(int sock, const char *line, size_t len, int fd);

/* Blocking helpers for tests and vmm-try only (never in the daemon's
 * loop).  They read fd with a timeout; events seen meanwhile are dropped.
 * qmp_sync_handshake waits for the greeting and negotiates
 * qmp_capabilities.  qmp_sync_command sends one command and waits for its
 * answer: 0 with *ret (owned, may be NULL) on return, -1 with errno EIO on
 * a QMP error (class copied into errbuf if given), ETIMEDOUT, EPIPE. */
int qmp_sync_handshake(int fd, struct qmp_codec *c, int timeout_ms);
int qmp_sync_command(int fd, struct qmp_codec *c, const char *execute,
		     json_t *args, uint64_t id, int timeout_ms, json_t **ret,
		     char *errbuf, size_t errlen);

#endif
