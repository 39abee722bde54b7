/* Host limits: the most memory and CPUs one VM may ask for on this host.
 *
 * By default a VM may have the host's RAM less a reserve for the host
 * itself (an eighth of the RAM, at least 512 MiB and at most 4 GiB) and
 * as many vCPUs as the CPUs the caller may run on (sched_getaffinity).
 * The administrator can set either (vmhostd and vm check take
 * --max-memory SIZE and --max-cpus N).  This is a check of each VM on its
 * own: it does not add up the VMs that run at the same time.
 */
#ifndef VMHOST_HOSTLIMITS_H
#define VMHOST_HOSTLIMITS_H

#include <stdbool.h>
#include <stdint.h>

#include "config/vmconfig.h"

#define HOSTLIMITS_RESERVE_MIN (512ull << 20)
#define HOSTLIMITS_RESERVE_MAX (4ull << 30)

struct hostlimits {
	uint64_t max_memory;     /* bytes */
	unsigned int max_cpus;
	uint64_t host_memory;    /* MemTotal, bytes (for the messages) */
	unsigned int host_cpus;
	bool memory_set;         /* max_memory from --max-memory */
	bool cpus_set;           /* max_cpus from --max-cpus */
};

/* The defaults, from /proc/meminfo and sched_getaffinity.  -1 with errno
 * if the host's memory cannot be read. */
int hostlimits_default(struct hostlimits *l);

/* --max-memory SIZE (as the memory file: 256M, 2G...) and --max-cpus N
 * (1 to 64).  -1 with errno EINVAL and *why set. */
int hostlimits_set_memory(struct hostlimits *l, const char *arg,
			  const char **why);
int hostlimits_set_cpus(struct hostlimits *l, const char *arg,
			const char **why);

/* Report on cfg's VM, as errors at "memory" and "cpus", what is more than
 * l allows.  Returns how many errors were added, or -1 with errno ENOMEM. */
int hostlimits_check(const struct hostlimits *l, const struct vm_config *cfg,
		     struct diags *d);

#endif
