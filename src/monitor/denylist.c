/* The monitor's seccomp deny-list.  See denylist.h. */
#include "monitor/denylist.h"

#include <errno.h>
#include <seccomp.h>

#include "common/scfilter.h"

static const int denylist_syscalls[] = {
	/* the kernel itself */
	SCMP_SYS(init_module), SCMP_SYS(finit_module), SCMP_SYS(delete_module),
	SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load), SCMP_SYS(reboot),
	SCMP_SYS(iopl), SCMP_SYS(ioperm), SCMP_SYS(swapon), SCMP_SYS(swapoff),
	SCMP_SYS(acct), SCMP_SYS(quotactl), SCMP_SYS(syslog),
	SCMP_SYS(lookup_dcookie), SCMP_SYS(uselib), SCMP_SYS(vhangup),
	SCMP_SYS(sethostname), SCMP_SYS(setdomainname),
	/* the clock */
	SCMP_SYS(settimeofday), SCMP_SYS(clock_settime), SCMP_SYS(clock_adjtime),
	SCMP_SYS(adjtimex),
	/* other processes' memory (the ASan test build lets LeakSanitizer,
	 * which ptraces the daemon's threads at exit, keep ptrace) */
#if !defined(__SANITIZE_ADDRESS__)
	SCMP_SYS(ptrace),
#endif
	SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
	/* any inode of the host, with dac_read_search */
	SCMP_SYS(open_by_handle_at),
	/* keyrings, perf events, userfaultfd */
	SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key),
	SCMP_SYS(perf_event_open), SCMP_SYS(userfaultfd),
};

size_t denylist_count(void)
{
	return sizeof denylist_syscalls / sizeof *denylist_syscalls;
}

/* Another ABI's calls (int 0x80, x32) would pass a native-only list:
 * they kill instead.  No no_new_privs: nothing else changes for the
 * children. */
static int denylist_attrs(scmp_filter_ctx ctx)
{
	int r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);

	return r ? r : seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
}

int denylist_install(void)
{
	return scfilter_load(SCMP_ACT_ALLOW, SCMP_ACT_ERRNO(EPERM), denylist_syscalls,
			     denylist_count(), denylist_attrs);
}
