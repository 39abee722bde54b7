/* libFuzzer target: the start trace's watch for the ready line in what
 * the guest writes to its serial console (common/trace.c).  Byte 0 is
 * the size of the reads (1..256) the rest is cut into; the rest is the
 * guest's output.  The trace must mark the ready line exactly when the
 * whole output holds it, whatever the cut, and mark the first byte iff
 * there is one.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char line[] = START_TRACE_READY_LINE;
	struct start_trace t;
	const char *out;
	size_t step, n, i;
	void *at;

	if (size < 1)
		return 0;
	step = (size_t)data[0] + 1;
	out = (const char *)data + 1;
	n = size - 1;
	start_trace_begin(&t);
	for (i = 0; i < n; i += step) {
		start_trace_serial(&t, out + i, n - i < step ? n - i : step);
		/* A whole match is the mark, and never more. */
		if (t.ready_matched > sizeof line - 1 ||
		    (t.ready_matched == sizeof line - 1) != !!t.ns[START_READY_LINE])
			__builtin_trap();
	}
	at = memmem(out, n, line, sizeof line - 1);
	if (!t.ns[START_READY_LINE] != !at)
		__builtin_trap();
	if (!t.ns[START_FIRST_SERIAL] != !n)
		__builtin_trap();
	return 0;
}
