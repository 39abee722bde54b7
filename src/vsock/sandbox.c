/* vmhost-vsock's seccomp filter.  See sandbox.h. */
#include "vsock/sandbox.h"

#include <seccomp.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "common/scfilter.h"

static const int vsock_syscalls[] = {
	/* the loop and its fds: vhost-user socket, eventfds, host sockets */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(sendmsg),
	SCMP_SYS(connect), SCMP_SYS(shutdown), SCMP_SYS(close),
	SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday),
	/* memory (mmap and mprotect below, never executable) */
	SCMP_SYS(munmap), SCMP_SYS(brk), SCMP_SYS(madvise), SCMP_SYS(mremap),
	/* the process itself */
	SCMP_SYS(futex), SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(restart_syscall),
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
	/* the sanitizers' runtime (LeakSanitizer stops the world with
	 * ptrace at exit), in the ASan/UBSan test build only */
	SCMP_SYS(sigaltstack), SCMP_SYS(prctl), SCMP_SYS(sched_yield),
	SCMP_SYS(tgkill), SCMP_SYS(kill), SCMP_SYS(getppid),
	SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(wait4), SCMP_SYS(waitid),
	SCMP_SYS(ptrace), SCMP_SYS(set_robust_list), SCMP_SYS(rseq),
	SCMP_SYS(arch_prctl), SCMP_SYS(rt_sigaction), SCMP_SYS(mprotect),
	SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(readlink),
	SCMP_SYS(readlinkat), SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(fstat),
	SCMP_SYS(newfstatat), SCMP_SYS(access), SCMP_SYS(lseek),
	SCMP_SYS(pread64), SCMP_SYS(getdents), SCMP_SYS(getdents64),
	SCMP_SYS(pipe2), SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3),
	SCMP_SYS(fcntl), SCMP_SYS(getrlimit), SCMP_SYS(prlimit64),
	SCMP_SYS(mincore), SCMP_SYS(munlock), SCMP_SYS(sched_getaffinity),
	SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(uname),
	SCMP_SYS(getrusage), SCMP_SYS(getuid), SCMP_SYS(geteuid),
#endif
};

/* Spelled out: clang's -Wmissing-field-initializers rejects SCMP_A0(). */
static const struct scmp_arg_cmp unix_only = {
	.arg = 0, .op = SCMP_CMP_EQ, .datum_a = AF_UNIX, .datum_b = 0,
};
static const struct scmp_arg_cmp no_exec = {
	.arg = 2, .op = SCMP_CMP_MASKED_EQ, .datum_a = PROT_EXEC, .datum_b = 0,
};

/* Beside the list: unix stream sockets only (to BASE_P), and guest
 * memory and the allocator's never executable. */
static int vsock_sandbox_args(scmp_filter_ctx ctx)
{
	int r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, unix_only);

	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, no_exec);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_UNDEFINED__)
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				     no_exec);
#endif
	return r;
}

int vsock_sandbox(void)
{
	return scfilter_load(SCMP_ACT_KILL_PROCESS, SCMP_ACT_ALLOW, vsock_syscalls,
			     sizeof vsock_syscalls / sizeof *vsock_syscalls,
			     vsock_sandbox_args);
}
