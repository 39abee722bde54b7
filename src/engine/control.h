/* The control socket: STATE/control, newline-delimited JSON.
 *
 * A client sends one JSON object per line ({"op": ...}); each gets exactly
 * one JSON reply line ({"ok": true, ...} or {"ok": false, "error": ...}).
 * A request may be answered later (start waits for the VM to run); further
 * requests wait in the client's buffer meanwhile.  `console` and `log`
 * turn the connection into a raw byte stream after their reply.
 *
 * Clients are untrusted in size and speed: a request line is at most
 * CONTROL_REQUEST_MAX bytes, newline included (longer: an error reply, then
 * the connection is closed); a client whose unread replies pass
 * CONTROL_OUT_PAUSE is not read until it reads them; a streaming client
 * (console, log -f) that falls CONTROL_OUT_MAX behind is dropped; a client
 * that neither sends a full request nor waits for a reply within the idle
 * timeout gets an error and is closed, and dropped if it does not take
 * that either; at most CONTROL_CLIENTS_MAX are connected at once.  Only
 * root and the daemon's user are served (SO_PEERCRED).
 *
 * A reply never runs the client's next request from inside the code that
 * answered: the next one is taken from the loop afterwards.  The socket
 * itself is the monitor's (it binds it and keeps it across engine
 * restarts); the engine gets the listening fd.
 */
#ifndef VMHOSTD_ENGINE_CONTROL_H
#define VMHOSTD_ENGINE_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/loop.h"

#define CONTROL_REQUEST_MAX (64 * 1024)
#define CONTROL_OUT_MAX (4 * 1024 * 1024)
/* Replies a client has not read, past which its requests are not read. */
#define CONTROL_OUT_PAUSE (64 * 1024)
#define CONTROL_IDLE_MS 60000
#define CONTROL_CLIENTS_MAX 256 /* more are refused with an error */

struct client;
struct control;

/* Called for each request; must answer with control_reply or
 * control_stream, now or later. */
typedef void control_request_fn(void *arg, struct client *c, json_t *req);
/* Raw bytes from a streaming client. */
typedef void control_input_fn(void *owner, struct client *c,
			      const char *data, size_t n);
/* The client is going away; forget it. */
typedef void control_close_fn(void *owner, struct client *c);

struct client {
	struct control *ctl;
	struct loop_source src;
	struct loop_source timer;
	struct buf in;
	struct buf out;
	uid_t uid;
	struct loop_deferred pump_later;
	bool pending;      /* a request awaits its reply */
	bool streaming;
	bool dispatching;
	bool eof;          /* the peer shut down its side */
	bool closing;      /* close once out drains */
	bool dead;         /* shut down; freed on the next event */
	void *owner;       /* whoever holds a pointer to this client */
	control_input_fn *input;
	control_close_fn *closed;
	struct client *next, *prev;
};

struct control {
	struct loop *loop;
	struct loop_source src;
	bool started;
	uid_t uid;         /* served besides root */
	control_request_fn *request;
	void *arg;
	struct client *clients;
	size_t client_count;
};

/* The first request line of data (len bytes), without I/O.  Returns 0
 * when no full line is buffered (*used 0) or the line is empty (*used 1),
 * 1 with *req a JSON object (caller decrefs), or -1 with err set (a bad
 * line); *used is the bytes taken, newline included. */
int control_parse(const char *data, size_t len, size_t *used, json_t **req,
		  char *err, size_t errlen);

/* Serve the listening socket fd (taken) once control_start is called:
 * root and uid may connect. */
int control_init(struct control *ctl, struct loop *loop, int fd, uid_t uid,
		 control_request_fn *request, void *arg);
int control_start(struct control *ctl);
/* Close every client and the fd. */
void control_fini(struct control *ctl);

/* Answer the pending request; steals reply. */
void control_reply(struct client *c, json_t *reply);
/* The same with the reply already encoded: len bytes of one JSON object
 * on one line (the newline is added). */
void control_reply_text(struct client *c, const char *text, size_t len);
void control_ok(struct client *c);
void control_error(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Answer with {"ok":true} and switch to a raw stream. owner's callbacks
 * receive input and the close. */
void control_stream(struct client *c, void *owner, control_input_fn *input,
		    control_close_fn *closed);
/* Queue raw bytes to a streaming client; a client that cannot keep up is
 * dropped (its closed callback runs later, from the loop). */
void control_send(struct client *c, const void *data, size_t n);
/* Close once everything queued has been written. */
void control_finish(struct client *c);
/* Tell closed (with owner) when c goes away, e.g. while it waits. */
void control_own(struct client *c, void *owner, control_close_fn *closed);
/* Forget the owner without closing (the owner goes away first). */
void control_disown(struct client *c);

#endif
