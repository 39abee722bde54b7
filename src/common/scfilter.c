/* Build and load a seccomp filter from a list.  See scfilter.h. */
#include "common/scfilter.h"

#include <errno.h>

int scfilter_load(uint32_t dflt, uint32_t act, const int *calls, size_t n,
		  int (*extra)(scmp_filter_ctx ctx))
{
	scmp_filter_ctx ctx = seccomp_init(dflt);
	int r = 0;

	if (!ctx) {
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; !r && i < n; i++)
		r = seccomp_rule_add(ctx, act, calls[i], 0);
	if (!r && extra)
		r = extra(ctx);
	if (!r)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	if (r < 0) {
		errno = -r;
		return -1;
	}
	return 0;
}
