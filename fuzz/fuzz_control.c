/* libFuzzer target: the control protocol as vmhostd reads it.
 *
 * The input is what a client sends.  It goes through the same steps as in
 * client_pump: bytes are buffered up to CONTROL_REQUEST_MAX (in chunks
 * whose sizes come from the input, as recv would cut them), each line is
 * parsed by control_parse and, when it is an object, validated by
 * proto_parse; a buffer that overflows is dropped as the daemon does.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config/vmconfig.h"
#include "common/buf.h"
#include "engine/control.h"
#include "engine/proto.h"

static void fuzz_pump(struct buf *in)
{
	struct proto_req r;
	char err[256];
	json_t *req;
	size_t used;
	int rc;

	while (in->len) {
		err[0] = '\0';
		rc = control_parse(in->data, in->len, &used, &req, err,
				   sizeof err);
		if (!used)
			return;
		buf_consume(in, used);
		if (rc < 0 && !err[0])
			__builtin_trap(); /* an error must say what is wrong */
		if (rc <= 0)
			continue;
		err[0] = '\0';
		if (proto_parse(req, &r, err, sizeof err) < 0) {
			if (!err[0])
				__builtin_trap();
		} else if ((r.op != PROTO_LIST &&
			    (!r.name || !vmconfig_name_valid(r.name))) ||
			   r.timeout > PROTO_STOP_TIMEOUT_MAX) {
			/* What reaches the daemon must be valid. */
			__builtin_trap();
		}
		json_decref(req);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct buf in;
	size_t chunk;

	buf_init(&in, CONTROL_REQUEST_MAX);
	/* The first byte picks the read size, the rest is the stream. */
	chunk = len ? (size_t)data[0] % 64 + 1 : 1;
	if (len) {
		data++;
		len--;
	}
	while (len) {
		size_t n = len < chunk ? len : chunk;

		if (buf_append(&in, data, n) < 0) {
			in.len = 0; /* the daemon answers "too long" and closes */
			break;
		}
		fuzz_pump(&in);
		data += n;
		len -= n;
	}
	buf_free(&in);
	return 0;
}
