/* Unit tests of spawn() and the virtiofsd plumbing, with real processes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/spawn.h"
#include "vmm/virtiofsd.h"

static int run_sh(const char *script, const int *keep, size_t nkeep,
		  char *out, size_t outlen)
{
	char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
	int p[2], status, pidfd;
	pid_t pid;
	size_t len = 0;
	ssize_t n;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	struct spawn_opts o = { .path = "/bin/sh", .argv = argv,
				.keep_fds = keep, .keep_count = nkeep,
				.log_fd = p[1] };
	assert_int_equal(spawn(&o, &pid, &pidfd), 0);
	close(p[1]);
	assert_int_equal(getsid(pid), pid); /* own session */
	while ((n = read(p[0], out + len, outlen - 1 - len)) > 0)
		len += (size_t)n;
	out[len] = '\0';
	close(p[0]);
	struct pollfd pf = { .fd = pidfd, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 5000), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close(pidfd);
	return status;
}

static void test_fds(void **state)
{
	int keep = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int leak = open("/dev/null", O_RDONLY); /* deliberately inheritable */
	char script[256], out[512];

	snprintf(script, sizeof(script),
		 "test -e /proc/self/fd/%d && echo keep; "
		 "test -e /proc/self/fd/%d && echo leak; "
		 "read x || echo stdin-null; echo err >&2", keep, leak);
	int status = run_sh(script, &keep, 1, out, sizeof(out));
	assert_true(WIFEXITED(status));
	assert_string_equal(out, "keep\nstdin-null\nerr\n");
	/* The parent's flags are untouched. */
	assert_int_equal(fcntl(keep, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(keep);
	close(leak);
}

static void test_signals_reset(void **state)
{
	sigset_t set, old;
	char out[64];

	/* A daemon blocks signals for its signalfd; the child must not. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, &old);
	signal(SIGINT, SIG_IGN);
	int status = run_sh("kill -TERM $$; echo survived", NULL, 0, out,
			    sizeof(out));
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGINT, SIG_DFL);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGTERM);
	assert_string_equal(out, "");
}

static void test_errors(void **state)
{
	char *argv[] = { "/nonexistent/x", NULL };
	struct spawn_opts o = { .path = argv[0], .argv = argv, .log_fd = -1 };
	pid_t pid;
	int low = 2;

	errno = 0;
	assert_int_equal(spawn(&o, &pid, NULL), -1);
	assert_int_equal(errno, ENOENT);
	o.path = "/bin/true";
	o.keep_fds = &low;
	o.keep_count = 1;
	errno = 0;
	assert_int_equal(spawn(&o, &pid, NULL), -1);
	assert_int_equal(errno, EINVAL);
	o.path = "true"; /* no PATH search */
	o.keep_count = 0;
	assert_int_equal(spawn(&o, &pid, NULL), -1);
	assert_int_equal(errno, EINVAL);
	/* No zombie left behind by the failures. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void test_virtiofsd_sockets(void **state)
{
	char dir[] = "/tmp/test-vfs.XXXXXX", path[64];
	int lfd, cfd, afd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s", dir);
	assert_int_equal(virtiofsd_sockets(path, &lfd, &cfd), 0);
	/* The name is gone, the queued connection is there. */
	assert_int_equal(access(path, F_OK), -1);
	afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(afd >= 0);
	assert_int_equal(write(cfd, "x", 1), 1);
	char c;
	assert_int_equal(read(afd, &c, 1), 1);
	assert_int_equal(fcntl(lfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(fcntl(cfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(afd);
	close(cfd);
	close(lfd);
	assert_int_equal(rmdir(dir), 0);
}

static void test_virtiofsd_argv(void **state)
{
	struct virtiofsd_opts o = { .source = "/ext/docs", .listen_fd = 9,
				    .sandbox = VIRTIOFSD_SANDBOX_NAMESPACE };
	char **argv;

	assert_int_equal(virtiofsd_argv(&o, &argv), 0);
	assert_string_equal(argv[0], VIRTIOFSD_PATH);
	assert_string_equal(argv[1], "--fd=9");
	assert_string_equal(argv[2], "-o");
	assert_string_equal(argv[3], "source=/ext/docs");
	assert_string_equal(argv[4], "-o");
	assert_string_equal(argv[5], "sandbox=namespace");
	virtiofsd_argv_free(argv);
	o.sandbox = VIRTIOFSD_SANDBOX_CHROOT;
	assert_int_equal(virtiofsd_argv(&o, &argv), 0);
	assert_string_equal(argv[5], "sandbox=chroot");
	virtiofsd_argv_free(argv);
	o.source = "/ext/a,b";
	errno = 0;
	assert_int_equal(virtiofsd_argv(&o, &argv), -1);
	assert_int_equal(errno, EINVAL);
	o.source = "relative";
	assert_int_equal(virtiofsd_argv(&o, &argv), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fds),
		cmocka_unit_test(test_signals_reset),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_virtiofsd_sockets),
		cmocka_unit_test(test_virtiofsd_argv),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
