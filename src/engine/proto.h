/* The control protocol's grammar (see request.h for the operations): a
 * parsed request object to a validated struct proto_req.  No I/O and no
 * daemon state, so that it can be fuzzed alone (fuzz/fuzz_control.c).
 */
#ifndef VMHOSTD_PROTO_H
#define VMHOSTD_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define PROTO_STOP_TIMEOUT_MAX 3600

enum proto_op {
	PROTO_LIST,
	PROTO_INFO,
	PROTO_START,
	PROTO_STOP,
	PROTO_CONSOLE,
	PROTO_LOG,
};

struct proto_req {
	enum proto_op op;
	const char *name;       /* borrowed from the object; NULL for list */
	bool force;             /* stop */
	bool has_timeout;       /* stop: timeout given */
	unsigned int timeout;   /* stop, seconds */
	bool follow;            /* log */
};

/* Validate req: op known, every field of the right type and range, name
 * a valid VM name.  Returns 0, or -1 with errno EINVAL and err set to the
 * reply's error message. */
int proto_parse(json_t *req, struct proto_req *out, char *err, size_t errlen);

#endif
