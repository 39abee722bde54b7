/* libFuzzer target: the QMP codec on what QEMU (and through it, the
 * guest) sends.  The input is fed in chunks whose sizes come from the
 * input, with a small message cap so that the overlong-line path is
 * reached; every message popped is looked at as the daemon would.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "vmm/qmp.h"

static void fuzz_drain(struct qmp_codec *c)
{
	struct qmp_msg m;
	int r;

	while ((r = qmp_pop(c, &m)) != 0) {
		if (r < 0) {
			if (errno != EMSGSIZE && errno != EBADMSG &&
			    errno != ENOMEM)
				__builtin_trap();
			continue;
		}
		switch (m.kind) {
		case QMP_EVENT:
			if (!m.event || strlen(m.event) > 1u << 20)
				__builtin_trap();
			break;
		case QMP_ERROR:
			if (!m.error_class || !m.error_desc)
				__builtin_trap();
			break;
		default:
			break;
		}
		qmp_msg_clear(&m);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct qmp_codec *c;
	size_t chunk, n;

	if (len < 2)
		return 0;
	/* Byte 0: the read size; byte 1: the message cap (1..256 bytes,
	 * or the default when 0). */
	chunk = (size_t)data[0] % 128 + 1;
	c = qmp_codec_new(data[1]);
	if (!c)
		return 0;
	data += 2;
	len -= 2;
	while (len) {
		n = len < chunk ? len : chunk;
		if (qmp_feed(c, data, n) < 0)
			break;
		fuzz_drain(c);
		data += n;
		len -= n;
	}
	fuzz_drain(c);
	qmp_codec_free(c);
	return 0;
}
