/* One QMP session with a VM's QEMU, in the engine's event loop.
 *
 * Opens with the handshake (greeting, qmp_capabilities, query-status, and
 * cont when QEMU waits), then carries commands and their answers and hands
 * events on.  A session handed over from another engine or reconnected
 * after a crash (adopted) starts with qmp_capabilities at once: QEMU
 * greets a new connection but not a continuing one, and refuses a second
 * negotiation, which is then just as good.
 *
 * QEMU may be hostile: each wake-up reads at most QMPS_READ_BUDGET bytes
 * and handles at most QMPS_MSG_BUDGET messages, more waits for the next
 * turn of the loop (so a flood delays neither other VMs nor clients), a
 * line is at most QMPS_LINE_MAX bytes, and what is logged of it is
 * escaped and rate-limited.
 */
#ifndef VMHOSTD_QMPSESSION_H
#define VMHOSTD_QMPSESSION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"
#include "common/loop.h"
#include "vmm/qmp.h"

#define QMPS_READ_BUDGET (16 * 1024)
#define QMPS_MSG_BUDGET 64
#define QMPS_LINE_MAX (256 * 1024)
#define QMPS_LOG_BURST 20       /* log lines per window, per VM */
#define QMPS_LOG_WINDOW_S 10
#define QMPS_CALLS_MAX 256      /* commands awaiting an answer */

/* The answer to qmps_call: a QMP_RETURN or QMP_ERROR (untrusted). */
typedef void qmps_reply_fn(void *owner, const struct qmp_msg *reply,
			   void *arg);

struct qmps_ops {
	void (*greeted)(void *owner);   /* QEMU greeted (NULL: not wanted) */
	void (*ready)(void *owner);                     /* guest runs */
	void (*failed)(void *owner, const char *why);   /* handshake failed */
	void (*event)(void *owner, const struct qmp_msg *msg);
};

struct qmps_call;

struct qmp_session {
	struct loop *loop;
	struct loop_source src;
	struct loop_deferred more;   /* messages left over the budget */
	struct qmp_codec *codec;
	const struct qmps_ops *ops;
	void *owner;
	const char *vm;              /* for the log */
	uint64_t next_id;
	uint64_t step_id;            /* the handshake's command in flight */
	int step;
	struct qmps_call *calls;
	size_t call_count;
	struct lograte rate;
};

/* Take fd (a connected stream socket) and start the handshake; adopted:
 * see above.  -1 with errno (fd is then closed). */
int qmps_open(struct qmp_session *s, struct loop *loop, int fd,
	      const char *vm, bool adopted, const struct qmps_ops *ops,
	      void *owner);
/* Close; pending calls are dropped without a call. */
void qmps_close(struct qmp_session *s);
bool qmps_is_open(const struct qmp_session *s);

/* Send a command (fd >= 0 rides along as SCM_RIGHTS, for getfd) and call
 * fn with its answer; fn NULL ignores it.  Never blocks; -1 with errno. */
int qmps_call(struct qmp_session *s, const char *execute, json_t *args,
	      int fd, qmps_reply_fn *fn, void *arg);
/* "CLASS: DESC" of a QMP_ERROR, escaped and cut (QEMU's words end up in
 * reasons and logs). */
void qmps_error(const struct qmp_msg *msg, char *buf, size_t len);

/* Drop the pending calls whose arg is arg: fn is never called. */
void qmps_forget(struct qmp_session *s, void *arg);

#endif
