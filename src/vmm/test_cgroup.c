/* Unit tests of the per-VM cgroup with real processes, in cgroup v1 (the
 * memory, pids and freezer hierarchies) and in a cgroup2 mount (the
 * unified one of a hybrid host; with no controllers it still has
 * cgroup.procs, cgroup.kill and cgroup.events).  Root only: skipped
 * otherwise, and a missing hierarchy is a skip, not a pass. */
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
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/spawn.h"
#include "vmm/cgroup.h"

#define UNIFIED "/sys/fs/cgroup/unified"

struct attach {
	const struct cgroup *cg;
};

static int attach_child(pid_t pid, void *arg)
{
	return cgroup_attach(arg, pid);
}

/* A shell in cg that ignores SIGTERM, with a grandchild that ignores it
 * too; returns the shell's pidfd. */
static int stubborn(const struct cgroup *cg, pid_t *pid)
{
	char *argv[] = { "/bin/sh", "-c",
			 "trap '' TERM; sleep 300 & sleep 300; wait", NULL };
	struct spawn_opts o = { .path = "/bin/sh", .argv = argv, .log_fd = -1,
				.parent_setup = attach_child,
				.parent_arg = (void *)cg };
	int pidfd;

	assert_int_equal(spawn(&o, pid, &pidfd), 0);
	return pidfd;
}

static void count_procs_in(const char *dir, int want)
{
	char path[4096], buf[4096];
	int n = 0, fd;
	ssize_t got;

	/* The grandchild needs a moment to be forked. */
	for (int tries = 0; tries < 500; tries++) {
		snprintf(path, sizeof path, "%s/cgroup.procs", dir);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		got = read(fd, buf, sizeof buf - 1);
		close(fd);
		assert_true(got >= 0);
		buf[got] = '\0';
		n = 0;
		for (char *p = buf; (p = strchr(p, '\n')); p++)
			n++;
		if (n == want)
			return;
		usleep(10000);
	}
	fail_msg("%d processes in %s, want %d", n, dir, want);
}

/* In every hierarchy: the processes are in all the VM's directories. */
static void count_procs(const struct cgroup *cg, int want)
{
	for (size_t i = 0; i < cg->root->count; i++)
		count_procs_in(cgroup_dir(cg, i), want);
}

static void run_kill(struct cgroup_root *r)
{
	struct cgroup cg;
	struct stat st;
	char dirs[CGROUP_DIRS_MAX][4096];
	pid_t pid;
	int pidfd;

	assert_int_equal(cgroup_create(r, "t1", 64 << 20, 32, &cg), 0);
	for (size_t i = 0; i < r->count; i++)
		snprintf(dirs[i], sizeof dirs[i], "%s", cgroup_dir(&cg, i));
	assert_int_equal(cgroup_populated(&cg), 0);
	pidfd = stubborn(&cg, &pid);
	count_procs(&cg, 3);
	assert_int_equal(cgroup_populated(&cg), 1);
	/* A second create of a busy one is refused. */
	struct cgroup again;
	assert_int_equal(cgroup_create(r, "t1", 0, 0, &again), -1);
	assert_int_equal(errno, EBUSY);
	/* SIGTERM does nothing to them. */
	kill(pid, SIGTERM);
	struct pollfd pf = { .fd = pidfd, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 300), 0);
	/* Destroy kills both, even the grandchild we never knew. */
	assert_int_equal(cgroup_destroy(&cg, 5000), 0);
	assert_int_equal(poll(&pf, 1, 5000), 1);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	close(pidfd);
	for (size_t i = 0; i < r->count; i++)
		assert_int_equal(stat(dirs[i], &st), -1);
}

static void test_v1(void **state)
{
	struct cgroup_root r;
	char why[256], path[4096], buf[64];
	struct cgroup cg;
	int fd;

	if (geteuid() != 0)
		skip();
	if (cgroup_root_init(&r, "vmhost-test-v1", NULL, why, sizeof why) < 0 ||
	    r.version != CGROUP_V1) {
		printf("no cgroup v1 here (%s): skipped\n", why);
		if (r.count)
			cgroup_root_fini(&r);
		skip();
	}
	assert_true(r.memory && r.pids);
	/* A hybrid host: the unified hierarchy too, for cgroup BPF. */
	struct statfs fs;
	if (statfs(UNIFIED, &fs) == 0 && fs.f_type == 0x63677270)
		assert_int_equal(r.v2, 3);
	/* The limits land where the kernel enforces them. */
	assert_int_equal(cgroup_create(&r, "lim", 96 << 20, 77, &cg), 0);
	if (r.v2 >= 0)
		assert_string_equal(cgroup_v2_dir(&cg), cgroup_dir(&cg, 3));
	snprintf(path, sizeof path, "%s/memory.limit_in_bytes", cgroup_dir(&cg, 0));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	buf[read(fd, buf, sizeof buf - 1)] = '\0';
	close(fd);
	assert_int_equal(strtoull(buf, NULL, 10), 96 << 20);
	snprintf(path, sizeof path, "%s/pids.max", cgroup_dir(&cg, 1));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	buf[read(fd, buf, sizeof buf - 1)] = '\0';
	close(fd);
	assert_string_equal(buf, "77\n");
	assert_int_equal(cgroup_destroy(&cg, 1000), 0);
	run_kill(&r);
	for (size_t i = 0; i < r.count; i++)
		assert_int_equal(rmdir(r.base[i]), 0);
	cgroup_root_fini(&r);
}

static void test_v2(void **state)
{
	struct cgroup_root r;
	struct statfs fs;
	char why[256];

	if (geteuid() != 0)
		skip();
	if (statfs(UNIFIED, &fs) < 0 || fs.f_type != 0x63677270) {
		printf("no cgroup2 at %s: skipped\n", UNIFIED);
		skip();
	}
	if (cgroup_root_init(&r, "vmhost-test-v2", UNIFIED, why, sizeof why) < 0)
		fail_msg("%s", why);
	assert_int_equal(r.version, CGROUP_V2);
	run_kill(&r);
	assert_int_equal(rmdir(r.base[0]), 0);
	cgroup_root_fini(&r);
}

static void test_parent_names(void **state)
{
	struct cgroup_root r;
	char why[256];

	assert_true(cgroup_parent_valid("vmhost"));
	assert_true(cgroup_parent_valid("t1a2-b_c"));
	assert_false(cgroup_parent_valid(""));
	assert_false(cgroup_parent_valid("a/b"));
	assert_false(cgroup_parent_valid(".."));
	assert_false(cgroup_parent_valid("a b"));
	assert_int_equal(cgroup_root_init(&r, "../x", NULL, why, sizeof why), -1);
	assert_int_equal(errno, EINVAL);
	/* Not a cgroup2 mount. */
	assert_int_equal(cgroup_root_init(&r, "x", "/tmp", why, sizeof why), -1);
	assert_non_null(strstr(why, "not a cgroup2 mount"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parent_names),
		cmocka_unit_test(test_v1),
		cmocka_unit_test(test_v2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
