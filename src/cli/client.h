/* Talking to vmhostd over STATE/control: one JSON request line, one JSON
 * reply line; console and log then carry raw bytes. */
#ifndef VMHOST_CLI_CLIENT_H
#define VMHOST_CLI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cli/cli.h"

#define CLIENT_DEFAULT_STATE_DIR "/run/vmhost"
#define CLIENT_REPLY_MAX (4 * 1024 * 1024)
#define CLIENT_REPLY_FIRST (64 * 1024) /* the read buffer to begin with */

struct client_conn {
	int fd;
	char *buf;       /* bytes read past the reply line stay here */
	size_t len;
};

/* --state-dir, else $VMHOST_STATE_DIR, else /run/vmhost. */
const char *client_state_dir(const char *opt);

/* Connect to the daemon; -1 with errno set. */
int client_open(struct client_conn *cc, const char *state_dir);
void client_close(struct client_conn *cc);
/* Send req (not stolen) and read one reply into *reply. -1 with errno. */
int client_request(struct client_conn *cc, const json_t *req, json_t **reply);

/* The whole exchange for simple verbs: connect, send, check "ok".  Prints
 * errors as "vm VERB: ..." and returns an exit code; on success *reply
 * holds the reply (caller decrefs) and cc stays open if cc is not NULL. */
int client_call(const char *verb, const char *state_dir, json_t *req,
		json_t **reply, struct client_conn *cc);

/* write(2) all of p; -1 with errno.  vm ignores SIGPIPE, so a closed
 * peer is EPIPE, not death. */
int client_write_all(int fd, const void *p, size_t n);

/* The read-only verbs (list, info): [--json] [--state-dir DIR] and NAME
 * when named; asks the daemon for op, then prints reply[key] as JSON or
 * with print_text.  Returns the exit code. */
int client_show(int argc, char **argv, const char *op, bool named,
		const char *key, void (*print_text)(json_t *value));

/* s as it may be shown on a terminal: itself when printable (valid UTF-8,
 * no control characters), else an escaped copy (common/text.h) in one of
 * a few static buffers, valid until that many more calls.  NULL: "-". */
const char *cli_text(const char *s);
/* The string at key of o, through cli_text. */
const char *cli_str(const json_t *o, const char *key);

/* Print the daemon's error reply, with the loader's diagnostics. */
void client_print_error(const char *verb, const json_t *reply);

#endif
