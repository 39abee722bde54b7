/* Unit tests of the engine's copy of the config root's VM names
 * (names.h): a whole list in parts, changes after it, what makes it
 * current, the watch that tells it stale (a real inotify watch) and the
 * sync, and messages that are not what PS_NAMES says, which drop it.
 * A merge of thousands of random changes is checked against a plain
 * sorted set. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/names.h"

static int apply(struct names *ns, const char *text)
{
	json_t *o = json_loads(text, 0, NULL);
	int r;

	assert_non_null(o);
	r = names_apply(ns, o, -1);
	json_decref(o);
	return r;
}

/* ns holds exactly the names in want, in that order. */
static void holds(const struct names *ns, const char *const *want, size_t n)
{
	assert_int_equal(ns->count, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(ns->v[i], want[i]);
}

static void test_list_in_parts(void **state)
{
	static const char *const all[] = { "a", "b", "c", "d" };
	struct names ns;

	names_init(&ns);
	assert_false(names_current(&ns));
	assert_int_equal(apply(&ns, "{\"reset\":true,\"add\":[\"b\",\"d\"],"
			       "\"more\":true,\"watching\":true}"), 0);
	assert_true(ns.listed);
	assert_false(ns.complete);
	assert_false(names_current(&ns));
	assert_int_equal(apply(&ns, "{\"reset\":false,\"add\":[\"a\",\"c\"],"
			       "\"more\":false,\"watching\":true}"), 0);
	assert_true(names_current(&ns));
	holds(&ns, all, 4);
	/* A new whole list replaces it. */
	assert_int_equal(apply(&ns, "{\"reset\":true,\"add\":[\"x\"],"
			       "\"more\":true,\"watching\":true}"), 0);
	assert_false(names_current(&ns));
	holds(&ns, (const char *const[]){ "x" }, 1);
	names_clear(&ns);
}

static void test_changes(void **state)
{
	struct names ns;

	names_init(&ns);
	assert_int_equal(apply(&ns, "{\"reset\":true,\"add\":[\"b\",\"d\"],"
			       "\"more\":false,\"watching\":true}"), 0);
	assert_int_equal(apply(&ns, "{\"add\":[\"a\",\"c\",\"e\"],\"del\":[\"d\"]}"), 0);
	holds(&ns, (const char *const[]){ "a", "b", "c", "e" }, 4);
	/* Deleting what is not there, adding what is: no change. */
	assert_int_equal(apply(&ns, "{\"add\":[\"a\"],\"del\":[\"zz\"]}"), 0);
	holds(&ns, (const char *const[]){ "a", "b", "c", "e" }, 4);
	/* Both at once: (copy - del) + add. */
	assert_int_equal(apply(&ns, "{\"add\":[\"b\"],\"del\":[\"a\",\"b\",\"e\"]}"), 0);
	holds(&ns, (const char *const[]){ "b", "c" }, 2);
	assert_int_equal(apply(&ns, "{\"add\":[],\"del\":[\"b\",\"c\"]}"), 0);
	holds(&ns, NULL, 0);
	assert_true(names_current(&ns));
	names_clear(&ns);
}

static void test_unwatched_list(void **state)
{
	struct names ns;

	names_init(&ns);
	assert_int_equal(apply(&ns, "{\"reset\":true,\"add\":[\"a\"],"
			       "\"more\":false,\"watching\":false}"), 0);
	/* Complete (the list asked for is there) but not kept current. */
	assert_true(ns.complete);
	assert_false(names_current(&ns));
	holds(&ns, (const char *const[]){ "a" }, 1);
	names_clear(&ns);
}

static void test_bad_messages_drop_it(void **state)
{
	static const char *const bad[] = {
		"[]",
		"{\"add\":\"a\"}",
		"{\"add\":[1]}",
		"{\"add\":[\"..\"]}",
		"{\"add\":[\"-x\"]}",
		"{\"add\":[\"a/b\"]}",
		"{\"add\":[\"0123456789012345678901234567890123456789012345678901234567890123456789\"]}",
		"{\"del\":{}}",
		"{\"add\":[\"b\",\"a\"]}",
		"{\"del\":[\"a\",\"a\"]}",
		"{\"reset\":1}",
		"{\"more\":\"no\"}",
		"{\"watching\":null}",
	};
	struct names ns;

	names_init(&ns);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(apply(&ns, "{\"reset\":true,\"add\":[\"a\"],"
				       "\"more\":false,\"watching\":true}"), 0);
		assert_true(names_current(&ns));
		errno = 0;
		assert_int_equal(apply(&ns, bad[i]), -1);
		assert_int_equal(errno, EPROTO);
		assert_false(names_current(&ns));
		assert_false(ns.listed);
		assert_int_equal(ns.count, 0);
	}
	errno = 0;
	assert_int_equal(names_apply(&ns, NULL, -1), -1);
	assert_int_equal(errno, EPROTO);
	names_clear(&ns);
}

/* The watch that comes with a list: names_stale drains it. */
static void test_watch_and_sync(void **state)
{
	char dir[] = "/tmp/test-names-XXXXXX", sub[64];
	struct names ns;
	json_t *o;
	int fd, other;

	assert_non_null(mkdtemp(dir));
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(inotify_add_watch(fd, dir, IN_CREATE | IN_DELETE) >= 0);
	names_init(&ns);
	assert_true(names_stale(&ns));          /* no watch: cannot tell */
	o = json_loads("{\"reset\":true,\"add\":[\"a\"],\"more\":false,"
		       "\"watching\":true}", 0, NULL);
	assert_int_equal(names_apply(&ns, o, fd), 0);
	json_decref(o);
	assert_int_equal(ns.watch_fd, fd);
	assert_false(ns.synced);                /* only "synced" says so */
	assert_false(names_stale(&ns));
	snprintf(sub, sizeof sub, "%s/x", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(rmdir(sub), 0);
	assert_true(names_stale(&ns));
	assert_false(names_stale(&ns));         /* drained at once */
	ns.synced = false;
	assert_int_equal(apply(&ns, "{\"add\":[\"b\"],\"del\":[]}"), 0);
	assert_false(ns.synced);                /* changes are not a sync */
	assert_int_equal(apply(&ns, "{\"synced\":true}"), 0);
	assert_true(ns.synced);
	assert_int_equal(ns.count, 2);
	/* A watch with anything but a list's first part: refused, closed,
	 * and the copy with its own watch dropped. */
	other = dup(fd);
	o = json_loads("{\"add\":[\"c\"]}", 0, NULL);
	errno = 0;
	assert_int_equal(names_apply(&ns, o, other), -1);
	json_decref(o);
	assert_int_equal(errno, EPROTO);
	assert_int_equal(fcntl(other, F_GETFD), -1);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(ns.watch_fd, -1);
	assert_false(names_current(&ns));
	assert_int_equal(apply(&ns, "{\"synced\":false}"), -1);
	names_clear(&ns);
	assert_int_equal(rmdir(dir), 0);
}

/* Thousands of random changes against a plain set of 4096 flags. */
static void test_random_merges(void **state)
{
	enum { SPACE = 4096, ROUNDS = 300 };
	static bool set[SPACE];
	char *want[SPACE], text[64 * 1024];
	struct names ns;
	size_t n, len;

	srandom(14);
	names_init(&ns);
	assert_int_equal(apply(&ns, "{\"reset\":true,\"more\":false,\"watching\":true}"), 0);
	for (int round = 0; round < ROUNDS; round++) {
		bool in_add[SPACE] = { 0 }, in_del[SPACE] = { 0 };
		int k = (int)(random() % 64);
		bool first = true;

		for (int i = 0; i < k; i++) {
			in_add[random() % SPACE] = true;
			in_del[random() % SPACE] = true;
		}
		/* Ascending, as the monitor sends them. */
		len = (size_t)snprintf(text, sizeof text, "{\"add\":[");
		for (int v = 0; v < SPACE; v++) {
			if (!in_add[v])
				continue;
			len += (size_t)snprintf(text + len, sizeof text - len,
						"%s\"n%04d\"", first ? "" : ",", v);
			first = false;
		}
		len += (size_t)snprintf(text + len, sizeof text - len, "],\"del\":[");
		first = true;
		for (int v = 0; v < SPACE; v++) {
			if (!in_del[v])
				continue;
			len += (size_t)snprintf(text + len, sizeof text - len,
						"%s\"n%04d\"", first ? "" : ",", v);
			first = false;
		}
		snprintf(text + len, sizeof text - len, "]}");
		assert_int_equal(apply(&ns, text), 0);
		for (int v = 0; v < SPACE; v++)
			set[v] = in_add[v] || (set[v] && !in_del[v]);
	}
	n = 0;
	for (int v = 0; v < SPACE; v++) {
		if (!set[v])
			continue;
		want[n] = malloc(8);
		snprintf(want[n], 8, "n%04d", v);
		n++;
	}
	assert_true(n > 100);
	holds(&ns, (const char *const *)want, n);
	for (size_t i = 0; i < n; i++)
		free(want[i]);
	names_clear(&ns);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_in_parts),
		cmocka_unit_test(test_changes),
		cmocka_unit_test(test_unwatched_list),
		cmocka_unit_test(test_bad_messages_drop_it),
		cmocka_unit_test(test_watch_and_sync),
		cmocka_unit_test(test_random_merges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
