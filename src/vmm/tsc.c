/* The host's TSC rate, for telling TCG guests theirs.  See vmm.h.
 *
 * Under TCG QEMU's guest TSC is the host's TSC (cpu_get_host_ticks), so
 * the guest's rate is the host's.  The host kernel converts its TSC to
 * CLOCK_MONOTONIC_RAW with the rate it calibrated, so timing one against
 * the other gives that rate, as long as the host's clocksource is the
 * TSC. */
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>

#define TSC_CLOCKSOURCE "/sys/devices/system/clocksource/clocksource0/current_clocksource"
#define TSC_INTERVAL_NS 50000000L
#define TSC_TRIES 8

static uint64_t tsc_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A (TSC, ns) pair read as close together as TSC_TRIES attempts allow. */
static void tsc_sample(uint64_t *tsc, uint64_t *ns)
{
	uint64_t best = UINT64_MAX, t0, t1, c;

	for (int i = 0; i < TSC_TRIES; i++) {
		t0 = tsc_ns();
		c = __rdtsc();
		t1 = tsc_ns();
		if (t1 - t0 < best) {
			best = t1 - t0;
			*tsc = c;
			*ns = t0 + (t1 - t0) / 2;
		}
	}
}

static bool tsc_host_clocksource(void)
{
	char buf[16] = "";
	ssize_t n;
	int fd = open(TSC_CLOCKSOURCE, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	return n > 0 && !strcmp(buf, "tsc\n");
}

int vmm_host_tsc_khz(unsigned long *khz)
{
	struct timespec pause = { 0, TSC_INTERVAL_NS };
	uint64_t c0, c1, n0, n1;

	if (!tsc_host_clocksource()) {
		errno = ENOTSUP;
		return -1;
	}
	tsc_sample(&c0, &n0);
	while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
		;
	tsc_sample(&c1, &n1);
	if (n1 <= n0 || c1 <= c0) {
		errno = ENOTSUP;
		return -1;
	}
	/* cycles per ms, rounded */
	*khz = (unsigned long)(((c1 - c0) * 1000000u + (n1 - n0) / 2) /
			       (n1 - n0));
	return 0;
}
#else
int vmm_host_tsc_khz(unsigned long *khz)
{
	(void)khz;
	errno = ENOTSUP;
	return -1;
}
#endif
