/* Host limits on one VM's memory and CPUs.  See hostlimits.h. */
#include "config/hostlimits.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* MemTotal from /proc/meminfo, in bytes. */
static int hostlimits_memtotal(uint64_t *bytes)
{
	FILE *f = fopen("/proc/meminfo", "re");
	unsigned long long kb;
	char line[256];
	int r = -1;

	if (!f)
		return -1;
	errno = ENODATA;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
			*bytes = (uint64_t)kb << 10;
			r = 0;
			break;
		}
	fclose(f);
	return r;
}

static unsigned int hostlimits_cpus(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned int)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned int)n : 1;
}

int hostlimits_default(struct hostlimits *l)
{
	uint64_t reserve;

	memset(l, 0, sizeof(*l));
	if (hostlimits_memtotal(&l->host_memory) < 0)
		return -1;
	reserve = l->host_memory / 8;
	if (reserve < HOSTLIMITS_RESERVE_MIN)
		reserve = HOSTLIMITS_RESERVE_MIN;
	if (reserve > HOSTLIMITS_RESERVE_MAX)
		reserve = HOSTLIMITS_RESERVE_MAX;
	l->max_memory = l->host_memory > reserve ?
			(l->host_memory - reserve) & ~((1ull << 20) - 1) : 0;
	l->host_cpus = hostlimits_cpus();
	l->max_cpus = l->host_cpus;
	return 0;
}

int hostlimits_set_memory(struct hostlimits *l, const char *arg,
			  const char **why)
{
	if (vmconfig_parse_memory(arg, &l->max_memory, why) < 0)
		return -1;
	l->memory_set = true;
	return 0;
}

int hostlimits_set_cpus(struct hostlimits *l, const char *arg,
			const char **why)
{
	if (vmconfig_parse_cpus(arg, &l->max_cpus, why) < 0)
		return -1;
	l->cpus_set = true;
	return 0;
}

/* "2G" for whole GiB, else "1536M" (sizes here are whole MiB or more). */
static void hostlimits_size(uint64_t bytes, char *buf, size_t len)
{
	if (bytes % (1ull << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "G", bytes >> 30);
	else
		snprintf(buf, len, "%" PRIu64 "M", bytes >> 20);
}

static int hostlimits_memory(const struct hostlimits *l,
			     const struct vm_config *cfg, struct diags *d)
{
	char want[32], max[32], ram[32], reserve[32];

	if (cfg->memory <= l->max_memory)
		return 0;
	hostlimits_size(cfg->memory, want, sizeof(want));
	hostlimits_size(l->max_memory, max, sizeof(max));
	if (l->memory_set)
		return diags_add(d, DIAG_ERROR, cfg->name, "memory",
				 "%s is more than a VM may have here (at most %s, set by --max-memory)",
				 want, max) < 0 ? -1 : 1;
	hostlimits_size(l->host_memory & ~((1ull << 20) - 1), ram, sizeof(ram));
	hostlimits_size((l->host_memory & ~((1ull << 20) - 1)) - l->max_memory,
			reserve, sizeof(reserve));
	return diags_add(d, DIAG_ERROR, cfg->name, "memory",
			 "%s is more than a VM may have on this host (at most %s: %s of RAM less %s kept for the host; --max-memory SIZE changes it)",
			 want, max, ram, reserve) < 0 ? -1 : 1;
}

static int hostlimits_cpu_count(const struct hostlimits *l,
				const struct vm_config *cfg, struct diags *d)
{
	if (cfg->cpus <= l->max_cpus)
		return 0;
	if (l->cpus_set)
		return diags_add(d, DIAG_ERROR, cfg->name, "cpus",
				 "%u CPUs is more than a VM may have here (at most %u, set by --max-cpus)",
				 cfg->cpus, l->max_cpus) < 0 ? -1 : 1;
	return diags_add(d, DIAG_ERROR, cfg->name, "cpus",
			 "%u CPUs is more than this host has (%u; --max-cpus N changes it)",
			 cfg->cpus, l->max_cpus) < 0 ? -1 : 1;
}

int hostlimits_check(const struct hostlimits *l, const struct vm_config *cfg,
		     struct diags *d)
{
	int m = hostlimits_memory(l, cfg, d), c;

	if (m < 0)
		return -1;
	c = hostlimits_cpu_count(l, cfg, d);
	return c < 0 ? -1 : m + c;
}
