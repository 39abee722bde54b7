/* Unit tests of the config root's watch (rootwatch.h) on a real
 * directory: what each kind of entry and change yields, a burst of
 * events on one name, the kernel's queue overflowing (as root: the
 * queue's size is a global sysctl, lowered only while the watch is
 * made), and the root itself removed or moved. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/vmconfig.h"
#include "monitor/rootwatch.h"

static char base[64], root[96];

static int setup(void **state)
{
	strcpy(base, "/tmp/test-rootwatch-XXXXXX");
	assert_non_null(mkdtemp(base));
	snprintf(root, sizeof root, "%s/root", base);
	assert_int_equal(mkdir(root, 0755), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", base);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void at(const char *name, char *path, size_t size)
{
	snprintf(path, size, "%s/%s", root, name);
}

static void make_dir(const char *name)
{
	char p[256];

	at(name, p, sizeof p);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void remove_dir(const char *name)
{
	char p[256];

	at(name, p, sizeof p);
	assert_int_equal(rmdir(p), 0);
}

/* The changes taken now, as "+name" / "-name" joined by spaces. */
static void taken(struct rootwatch *w, const char *want)
{
	struct rootwatch_change *c;
	char got[4096] = "";
	size_t n;

	assert_int_equal(rootwatch_read(w), 0);
	assert_int_equal(rootwatch_take(w, &c, &n), 0);
	for (size_t i = 0; i < n; i++)
		snprintf(got + strlen(got), sizeof got - strlen(got), "%s%c%s",
			 i ? " " : "", c[i].present ? '+' : '-', c[i].name);
	rootwatch_changes_free(c, n);
	assert_string_equal(got, want);
	assert_false(rootwatch_pending(w));
}

static void test_entries(void **state)
{
	struct rootwatch w;
	char p[256], q[256];
	int fd;

	rootwatch_init(&w);
	assert_int_equal(rootwatch_open(&w, root), 0);
	taken(&w, "");
	make_dir("b");
	make_dir("a");
	make_dir(".hidden");
	make_dir("-dash");
	at("file", p, sizeof p);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	at("file-link", q, sizeof q);
	assert_int_equal(symlink(p, q), 0);
	at("a", p, sizeof p);
	at("link", q, sizeof q);
	assert_int_equal(symlink(p, q), 0);
	at("dangling", q, sizeof q);
	assert_int_equal(symlink("/nonexistent/x", q), 0);
	/* Sorted, once each; what vmconfig_list would list is present. */
	taken(&w, "+a +b +dangling -file -file-link +link");
	remove_dir("a");
	at("b", p, sizeof p);
	at("c", q, sizeof q);
	assert_int_equal(rename(p, q), 0);
	taken(&w, "-a -b +c");
	/* Moved out of the root and in from outside. */
	snprintf(p, sizeof p, "%s/outside", base);
	assert_int_equal(rename(q, p), 0);
	taken(&w, "-c");
	at("d", q, sizeof q);
	assert_int_equal(rename(p, q), 0);
	taken(&w, "+d");
	assert_false(w.lost);
	assert_false(w.overflow);
	rootwatch_close(&w);
	assert_int_equal(w.fd, -1);
}

/* Many events on a name: one change, its state when taken. */
static void test_burst_on_one_name(void **state)
{
	struct rootwatch w;

	rootwatch_init(&w);
	assert_int_equal(rootwatch_open(&w, root), 0);
	for (int i = 0; i < 100; i++) {
		make_dir("x");
		remove_dir("x");
	}
	make_dir("x");
	assert_int_equal(rootwatch_read(&w), 0);
	assert_int_equal(w.touched_count, 201);
	taken(&w, "+x");
	make_dir("y");
	remove_dir("y");
	taken(&w, "-y");
	rootwatch_close(&w);
}

static void test_list(void **state)
{
	struct rootwatch w;
	char **names;
	size_t n;

	make_dir("b");
	make_dir("a");
	make_dir(".not-a-vm");
	rootwatch_init(&w);
	assert_int_equal(rootwatch_open(&w, root), 0);
	make_dir("c");
	assert_int_equal(rootwatch_read(&w), 0);
	assert_true(rootwatch_pending(&w));
	/* A whole listing makes what was touched moot. */
	assert_int_equal(rootwatch_list(&w, &names, &n), 0);
	assert_false(rootwatch_pending(&w));
	assert_int_equal(n, 3);
	assert_string_equal(names[0], "a");
	assert_string_equal(names[1], "b");
	assert_string_equal(names[2], "c");
	vmconfig_list_free(names, n);
	rootwatch_close(&w);
	errno = 0;
	assert_int_equal(rootwatch_list(&w, &names, &n), -1);
	assert_int_equal(errno, EBADF);
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld", &v), 1);
	fclose(f);
	return v;
}

static void write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fprintf(f, "%ld\n", v) > 0);
	assert_int_equal(fclose(f), 0);
}

/* The kernel drops events: a whole listing is asked for. */
static void test_overflow(void **state)
{
	static const char knob[] = "/proc/sys/fs/inotify/max_queued_events";
	struct rootwatch_change *c;
	struct rootwatch w;
	char name[16];
	long was;
	int r;
	size_t n;

	if (geteuid() != 0) {
		/* Only root may shrink the queue. */
		skip();
	}
	rootwatch_init(&w);
	/* The size is taken when the instance is made: lowered for that
	 * moment only (it is global). */
	was = read_long(knob);
	write_long(knob, 16);
	r = rootwatch_open(&w, root);
	write_long(knob, was);
	assert_int_equal(r, 0);
	assert_int_equal(read_long(knob), was);
	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof name, "o%02d", i);
		make_dir(name);
	}
	assert_int_equal(rootwatch_read(&w), 0);
	assert_true(w.overflow);
	assert_true(rootwatch_pending(&w));
	assert_int_equal(w.touched_count, 0);
	assert_int_equal(rootwatch_take(&w, &c, &n), 0);
	assert_int_equal(n, 0);
	assert_true(w.overflow);   /* taking changes does not answer it */
	rootwatch_close(&w);
}

static void test_root_removed(void **state)
{
	struct rootwatch w;

	rootwatch_init(&w);
	assert_int_equal(rootwatch_open(&w, root), 0);
	make_dir("a");
	remove_dir("a");
	assert_int_equal(rmdir(root), 0);
	assert_int_equal(rootwatch_read(&w), 0);
	assert_true(w.lost);
	rootwatch_close(&w);
	/* Nothing to watch now. */
	errno = 0;
	assert_int_equal(rootwatch_open(&w, root), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(w.fd, -1);
	assert_int_equal(mkdir(root, 0755), 0);
}

static void test_root_moved(void **state)
{
	struct rootwatch w;
	char away[128];

	rootwatch_init(&w);
	assert_int_equal(rootwatch_open(&w, root), 0);
	snprintf(away, sizeof away, "%s/away", base);
	assert_int_equal(rename(root, away), 0);
	assert_int_equal(rootwatch_read(&w), 0);
	assert_true(w.lost);
	rootwatch_close(&w);
	assert_int_equal(rename(away, root), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst_on_one_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_moved, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
