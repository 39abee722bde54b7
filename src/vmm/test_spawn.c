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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/sealcopy.h"
#include "common/spawn.h"
#include "vmm/virtiofsd.h"

static int run_sh_as(const char *script, const int *keep, size_t nkeep,
		     const struct privdrop *drop, char *out, size_t outlen)
{
	char *argv[] = { "/bin/sh", "-c", (char *)script, NULL };
	int p[2], status, pidfd;
	pid_t pid;
	size_t len = 0;
	ssize_t n;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	struct spawn_opts o = { .path = "/bin/sh", .argv = argv,
				.keep_fds = keep, .keep_count = nkeep,
				.log_fd = p[1], .drop = drop };
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

static int run_sh(const char *script, const int *keep, size_t nkeep,
		  char *out, size_t outlen)
{
	return run_sh_as(script, keep, nkeep, NULL, out, outlen);
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

/* As root: the child ends with one uid and gid, no groups, no
 * capabilities even in the bounding set, no_new_privs, cwd /. */
static void test_privdrop(void **state)
{
	struct privdrop p;
	char out[4096];
	pid_t pid;

	if (geteuid() != 0)
		skip();
	assert_int_equal(privdrop_for_slot(1900000, 123, false, &p), 0);
	assert_int_equal(p.uid, 1900123);
	assert_false(p.has_extra);
	int status = run_sh_as("grep -E '^(Uid|Gid|Groups|CapEff|CapBnd|NoNewPrivs):' "
			       "/proc/self/status; pwd", NULL, 0, &p, out,
			       sizeof out);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_non_null(strstr(out, "Uid:\t1900123\t1900123\t1900123\t1900123\n"));
	assert_non_null(strstr(out, "Gid:\t1900123\t1900123\t1900123\t1900123\n"));
	const char *g = strstr(out, "Groups:\t");
	assert_non_null(g);
	assert_int_equal(strspn(g + 8, " "), strcspn(g + 8, "\n"));
	assert_non_null(strstr(out, "CapEff:\t0000000000000000\n"));
	assert_non_null(strstr(out, "CapBnd:\t0000000000000000\n"));
	assert_non_null(strstr(out, "NoNewPrivs:\t1\n"));
	assert_non_null(strstr(out, "\n/\n"));
	/* Never "drop" to root; and ids past the range are refused. */
	char *argv[] = { "/bin/true", NULL };
	p.uid = 0;
	struct spawn_opts o = { .path = argv[0], .argv = argv, .log_fd = -1,
				.drop = &p };
	errno = 0;
	assert_int_equal(spawn(&o, &pid, NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(privdrop_for_slot(0xfffffff0u, 1, false, &p), -1);
	assert_int_equal(errno, EOVERFLOW);
}

/* As root: a bounding set reduced to a chosen few (vmhostd's own drop,
 * daemon/privileges.c), in a forked child so the test keeps its own. */
static void test_privdrop_bounding(void **state)
{
	uint64_t keep = (uint64_t)1 << 5 | (uint64_t)1 << 12; /* kill, net_admin */
	int status;
	pid_t pid;

	if (geteuid() != 0)
		skip();
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* What we had: a container may lack some already. */
		for (int cap = 0; cap < 64; cap++)
			if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1)
				keep &= ~((uint64_t)1 << cap);
		if (privdrop_bounding(keep) < 0)
			_exit(1);
		for (int cap = 0; cap < 64; cap++) {
			int r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);

			if (r < 0)
				break;
			if (r != !!(keep & (uint64_t)1 << cap))
				_exit(2);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_sealcopy(void **state)
{
	char path[] = "/tmp/test-sealcopy-XXXXXX", buf[64], link[64];
	int fd = mkstemp(path), mfd, rfd;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "kernel bytes", 12), 12);
	mfd = sealcopy(fd, "vmlinux", 1 << 20);
	assert_true(mfd >= 0);
	assert_int_equal(fcntl(mfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	/* The original may change; the copy may not. */
	assert_int_equal(pwrite(fd, "KERNEL", 6, 0), 6);
	assert_int_equal(pwrite(mfd, "x", 1, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(mfd, 0), -1);
	snprintf(link, sizeof link, "/proc/self/fd/%d", mfd);
	rfd = open(link, O_RDONLY | O_CLOEXEC);
	assert_true(rfd >= 0);
	memset(buf, 0, sizeof buf);
	assert_int_equal(read(rfd, buf, sizeof buf), 12);
	assert_string_equal(buf, "kernel bytes");
	close(rfd);
	close(mfd);
	errno = 0;
	assert_int_equal(sealcopy(fd, "vmlinux", 4), -1);
	assert_int_equal(errno, EFBIG);
	close(fd);
	unlink(path);
	/* Not a regular file: refused before reading (a FIFO would block). */
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(sealcopy(fd, "vmlinux", 1 << 20), -1);
	assert_int_equal(errno, EINVAL);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fds),
		cmocka_unit_test(test_signals_reset),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_virtiofsd_sockets),
		cmocka_unit_test(test_virtiofsd_argv),
		cmocka_unit_test(test_privdrop),
		cmocka_unit_test(test_privdrop_bounding),
		cmocka_unit_test(test_sealcopy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
