/* Unit tests for the share confinement walk (confine.h) on a real tree:
 * inside, outside, equal to, inside of and containing the protected
 * directories, through links and bind mounts, and a removed directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/confine.h"

struct tree {
	char top[64];      /* outside everything */
	int data;          /* TOP/ext: the data root */
	int config;        /* TOP/ext/svc/data: the config root */
	int state;         /* TOP/ext/run/vmhost: a state dir inside the data root */
};

static void t_mkdir(const char *top, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", top, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

static int t_open(const char *top, const char *rel)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", top, rel);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static int setup(void **state)
{
	static const char *const dirs[] = {
		"ext", "ext/svc", "ext/svc/data", "ext/svc/data/app",
		"ext/home", "ext/home/u", "ext/run", "ext/run/vmhost",
		"ext/run/vmhost/vms", "outside",
	};
	struct tree *t = calloc(1, sizeof(*t));

	strcpy(t->top, "/tmp/test-confine-XXXXXX");
	assert_non_null(mkdtemp(t->top));
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		t_mkdir(t->top, dirs[i]);
	t->data = t_open(t->top, "ext");
	t->config = t_open(t->top, "ext/svc/data");
	t->state = t_open(t->top, "ext/run/vmhost");
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tree *t = *state;
	char cmd[128];

	close(t->data);
	close(t->config);
	close(t->state);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->top);
	assert_int_equal(system(cmd), 0);
	free(t);
	return 0;
}

/* The verdict for TOP/rel (opened through links, as the gatherer does). */
static enum confine_verdict verdict(struct tree *t, const char *rel,
				    size_t *which)
{
	const int protect[2] = { t->config, t->state };
	enum confine_verdict v;
	int fd = t_open(t->top, rel);

	assert_int_equal(confine_share(fd, t->data, protect, 2, &v, which), 0);
	close(fd);
	return v;
}

static void test_verdicts(void **state)
{
	struct tree *t = *state;
	size_t which = 99;

	assert_int_equal(verdict(t, "ext/home", &which), CONFINE_OK);
	assert_int_equal(verdict(t, "ext/home/u", &which), CONFINE_OK);
	assert_int_equal(verdict(t, "outside", &which), CONFINE_OUTSIDE);
	assert_int_equal(verdict(t, ".", &which), CONFINE_OUTSIDE);
	assert_int_equal(verdict(t, "ext/svc/data", &which), CONFINE_IS);
	assert_int_equal(which, 0);
	assert_int_equal(verdict(t, "ext/svc/data/app", &which), CONFINE_INSIDE);
	assert_int_equal(which, 0);
	assert_int_equal(verdict(t, "ext/run/vmhost", &which), CONFINE_IS);
	assert_int_equal(which, 1);
	assert_int_equal(verdict(t, "ext/run/vmhost/vms", &which), CONFINE_INSIDE);
	assert_int_equal(which, 1);
	/* The data root itself holds both; ext/svc holds the config root. */
	assert_int_equal(verdict(t, "ext", &which), CONFINE_CONTAINS);
	assert_int_equal(which, 0);
	assert_int_equal(verdict(t, "ext/svc", &which), CONFINE_CONTAINS);
	assert_int_equal(which, 0);
	assert_int_equal(verdict(t, "ext/run", &which), CONFINE_CONTAINS);
	assert_int_equal(which, 1);
}

/* Links resolve before the walk: what counts is where the fd is. */
static void test_links(void **state)
{
	struct tree *t = *state;
	char path[PATH_MAX], target[PATH_MAX];
	size_t which;

	snprintf(path, sizeof(path), "%s/ext/home/up", t->top);
	assert_int_equal(symlink("../svc", path), 0);
	assert_int_equal(verdict(t, "ext/home/up", &which), CONFINE_CONTAINS);
	snprintf(path, sizeof(path), "%s/ext/home/out", t->top);
	snprintf(target, sizeof(target), "%s/outside", t->top);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(verdict(t, "ext/home/out", &which), CONFINE_OUTSIDE);
	/* A link outside the data root to a directory inside it is fine. */
	snprintf(path, sizeof(path), "%s/outside/in", t->top);
	snprintf(target, sizeof(target), "%s/ext/home/u", t->top);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(verdict(t, "outside/in", &which), CONFINE_OK);
}

/* Identity is by inode: the config root bind-mounted outside the data
 * root is still the config root; the data root bind-mounted elsewhere
 * still holds it. */
static void test_bind_mounts(void **state)
{
	struct tree *t = *state;
	char from[PATH_MAX], to[PATH_MAX];
	size_t which;

	if (geteuid() != 0)
		skip();
	snprintf(from, sizeof(from), "%s/ext/svc/data", t->top);
	snprintf(to, sizeof(to), "%s/outside", t->top);
	assert_int_equal(mount(from, to, NULL, MS_BIND, NULL), 0);
	assert_int_equal(verdict(t, "outside", &which), CONFINE_OUTSIDE);
	assert_int_equal(umount2(to, MNT_DETACH), 0);
	snprintf(from, sizeof(from), "%s/ext/home", t->top);
	snprintf(to, sizeof(to), "%s/ext/svc/data/app", t->top);
	assert_int_equal(mount(from, to, NULL, MS_BIND, NULL), 0);
	/* Reached through the config root, but it is the home directory
	 * whose ".." is the data root's: the mount's parent is what ".."
	 * gives from a mount root. */
	assert_int_equal(verdict(t, "ext/svc/data/app", &which), CONFINE_INSIDE);
	assert_int_equal(umount2(to, MNT_DETACH), 0);
}

/* A directory removed after it was opened keeps its place for ".." (the
 * kernel keeps its parent): judged where it was; nothing can be created
 * in it any more. */
static void test_removed_directory(void **state)
{
	struct tree *t = *state;
	char path[PATH_MAX];
	size_t which;

	t_mkdir(t->top, "ext/svc/data/gone");
	snprintf(path, sizeof(path), "%s/ext/svc/data/gone", t->top);
	int fd = t_open(t->top, "ext/svc/data/gone");
	const int protect[1] = { t->config };
	enum confine_verdict v;

	assert_int_equal(rmdir(path), 0);
	assert_int_equal(confine_share(fd, t->data, protect, 1, &v, &which), 0);
	assert_int_equal(v, CONFINE_INSIDE);
	close(fd);
}

/* confine_below on its own: equal counts, a sibling does not. */
static void test_below(void **state)
{
	struct tree *t = *state;
	struct confine_id data, config;
	int home = t_open(t->top, "ext/home");

	assert_int_equal(confine_id(t->data, &data), 0);
	assert_int_equal(confine_id(t->config, &config), 0);
	assert_int_equal(confine_below(t->data, &data), 1);
	assert_int_equal(confine_below(t->config, &data), 1);
	assert_int_equal(confine_below(home, &config), 0);
	assert_int_equal(confine_below(t->data, &config), 0);
	close(home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_verdicts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_mounts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_below, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
