/* The engine's seccomp allow-list.  See seccomp.h. */
#include "engine/allowlist.h"

#include <seccomp.h>
#include <stddef.h>

#include "common/scfilter.h"

static const int engine_syscalls[] = {
	/* the loop */
	SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait), SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime),
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	/* fds it has: clients, the monitor, QMP, serial, console, pipes */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(sendto),
	SCMP_SYS(sendmsg), SCMP_SYS(accept4), SCMP_SYS(getsockopt),
	SCMP_SYS(shutdown), SCMP_SYS(close), SCMP_SYS(fcntl),
	SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx),
	SCMP_SYS(lseek),
	/* its logs under STATE/vms (the only files in its mount namespace) */
	SCMP_SYS(openat), SCMP_SYS(rename), SCMP_SYS(renameat),
	SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
	/* memory */
	SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
	SCMP_SYS(madvise), SCMP_SYS(mprotect),
	/* the process itself */
	SCMP_SYS(getpid), SCMP_SYS(getppid), SCMP_SYS(gettid), SCMP_SYS(getuid),
	SCMP_SYS(geteuid), SCMP_SYS(getrandom), SCMP_SYS(futex),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(restart_syscall),
	/* glibc's qsort of more than a few items asks how much memory the
	 * host has; harmless, and a sort must not kill the engine */
	SCMP_SYS(sysinfo),
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
	/* the sanitizers' runtime, in the ASan/UBSan test build only */
	SCMP_SYS(sigaltstack), SCMP_SYS(prctl), SCMP_SYS(sched_yield),
	SCMP_SYS(tgkill), SCMP_SYS(readlink),
	SCMP_SYS(readlinkat), SCMP_SYS(pipe2), SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64), SCMP_SYS(clone), SCMP_SYS(wait4),
	SCMP_SYS(mincore), SCMP_SYS(munlock), SCMP_SYS(sched_getaffinity),
#endif
};

int engine_seccomp(void)
{
	return scfilter_load(SCMP_ACT_KILL_PROCESS, SCMP_ACT_ALLOW, engine_syscalls,
			     sizeof engine_syscalls / sizeof *engine_syscalls, NULL);
}
