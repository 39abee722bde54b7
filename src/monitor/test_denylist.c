/* Unit tests of the monitor's seccomp deny-list (denylist.h), each in a
 * child that loads it (as root: a filter without no_new_privs needs
 * CAP_SYS_ADMIN): a denied call fails with EPERM where it would have
 * failed otherwise, an allowed one still works, a child forked after it
 * inherits it, and an i386 system call kills the process. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "monitor/denylist.h"

/* Run fn in a child, which loads the filter first if filtered; its
 * wait status. */
static int in_child(int (*fn)(void), bool filtered)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(filtered && denylist_install() < 0 ? 100 : fn());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void assert_exited(int status, bool zero)
{
	assert_true(WIFEXITED(status));
	if (zero)
		assert_int_equal(WEXITSTATUS(status), 0);
	else
		assert_int_not_equal(WEXITSTATUS(status), 0);
}

/* 0 if every denied call fails with EPERM and allowed ones work. */
static int denied_and_allowed(void)
{
	char buf[16];
	int fd;

	errno = 0;
	if (syscall(SYS_open_by_handle_at, -1, NULL, 0) != -1 || errno != EPERM)
		return 1;      /* unfiltered: EBADF or EFAULT */
#if !defined(__SANITIZE_ADDRESS__)    /* kept for LeakSanitizer there */
	errno = 0;
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != -1 || errno != EPERM)
		return 2;      /* unfiltered: allowed */
#endif
	errno = 0;
	if (syscall(SYS_keyctl, 0, 0, 0, 0, 0) != -1 || errno != EPERM)
		return 3;
	errno = 0;
	if (syscall(SYS_init_module, NULL, 0, "") != -1 || errno != EPERM)
		return 4;
	errno = 0;
	if (syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0) != -1 || errno != EPERM)
		return 5;
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof buf) != 0 || getpid() <= 0)
		return 6;
	close(fd);
	return 0;
}

static int grandchild_inherits(void)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(denied_and_allowed());
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 20;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 21;
}

static int i386_getpid(void)
{
#if defined(__x86_64__)
	long r;

	/* int 0x80: the i386 ABI's getpid (20). */
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
	return r > 0 ? 30 : 31;        /* reached only without the filter */
#else
	raise(SIGSYS);
	return 32;
#endif
}

static void root_only(void)
{
	if (geteuid() != 0)
		skip();
}

static void test_denied_and_allowed(void **state)
{
	(void)state;
	root_only();
	assert_exited(in_child(denied_and_allowed, true), true);
}

/* Without the filter the same checks fail: they test the filter. */
static void test_checks_fail_unfiltered(void **state)
{
	(void)state;
	assert_exited(in_child(denied_and_allowed, false), false);
}

static void test_children_inherit(void **state)
{
	(void)state;
	root_only();
	assert_exited(in_child(grandchild_inherits, true), true);
}

static void test_other_abi_kills(void **state)
{
	(void)state;
	root_only();
	int st = in_child(i386_getpid, true);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void test_list(void **state)
{
	(void)state;
	assert_true(denylist_count() >= 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_denied_and_allowed),
		cmocka_unit_test(test_checks_fail_unfiltered),
		cmocka_unit_test(test_children_inherit),
		cmocka_unit_test(test_other_abi_kills),
		cmocka_unit_test(test_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
