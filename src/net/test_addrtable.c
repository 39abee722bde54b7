/* The link id table against real files in a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/addrtable.h"

struct fixture {
	char dir[64];
	char path[96];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	strcpy(fx->dir, "/tmp/vmhost-addrtable-XXXXXX");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/links", fx->dir);
	*state = fx;
	return 0;
}

/* Remove whatever the test left, even after a failed assertion. */
static int teardown(void **state)
{
	struct fixture *fx = *state;
	DIR *d = opendir(fx->dir);
	struct dirent *e;

	if (d) {
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
			    unlinkat(dirfd(d), e->d_name, 0) == -1)
				unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
		closedir(d);
	}
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* The names in dir, other than . and .., in one string. */
static void dir_listing(const char *dir, char *buf, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	assert_non_null(d);
	buf[0] = '\0';
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			strncat(buf, e->d_name, len - strlen(buf) - 2);
			strcat(buf, " ");
		}
	closedir(d);
}

static void test_missing_file_is_empty(void **state)
{
	struct fixture *fx = *state;
	struct addrtable *t = NULL;
	uint16_t id;

	assert_int_equal(addrtable_load(fx->path, &t, NULL), 0);
	assert_int_equal(addrtable_count(t), 0);
	errno = 0;
	assert_int_equal(addrtable_lookup(t, "app", "net", &id), -1);
	assert_int_equal(errno, ENOENT);
	addrtable_free(t);
}

static void test_acquire_persist_reload(void **state)
{
	struct fixture *fx = *state;
	struct addrtable *t = NULL, *u = NULL;
	uint16_t a, b, c, again;
	const char *client, *provider;
	char listing[256];

	assert_int_equal(addrtable_load(fx->path, &t, NULL), 0);
	assert_int_equal(addrtable_acquire(t, "appvm-lynx", "netvm", &a), 0);
	assert_int_equal(addrtable_acquire(t, "appvm-mail", "netvm", &b), 0);
	assert_int_equal(addrtable_acquire(t, "appvm-lynx", "vpnvm", &c), 0);
	assert_true(a != b && b != c && a != c);
	assert_true(a != 0 && a != 0xffff && b != 0 && b != 0xffff);
	/* The same pair, the same id. */
	assert_int_equal(addrtable_acquire(t, "appvm-lynx", "netvm", &again), 0);
	assert_int_equal(again, a);
	/* Direction matters: a link is (client, provider). */
	assert_int_equal(addrtable_acquire(t, "netvm", "appvm-lynx", &again), 0);
	assert_true(again != a);
	assert_int_equal(addrtable_count(t), 4);

	/* Saved as it went: a fresh load (a daemon restart) agrees. */
	assert_int_equal(addrtable_load(fx->path, &u, NULL), 0);
	assert_int_equal(addrtable_count(u), 4);
	assert_int_equal(addrtable_lookup(u, "appvm-lynx", "netvm", &again), 0);
	assert_int_equal(again, a);
	assert_int_equal(addrtable_lookup(u, "appvm-mail", "netvm", &again), 0);
	assert_int_equal(again, b);
	assert_int_equal(addrtable_find_id(u, c, &client, &provider), 0);
	assert_string_equal(client, "appvm-lynx");
	assert_string_equal(provider, "vpnvm");
	errno = 0;
	assert_int_equal(addrtable_find_id(u, 0, &client, &provider), -1);
	assert_int_equal(errno, ENOENT);

	/* Releasing one keeps the others' ids and is saved too. */
	assert_int_equal(addrtable_release(u, "appvm-mail", "netvm"), 0);
	addrtable_free(u);
	u = NULL;
	assert_int_equal(addrtable_load(fx->path, &u, NULL), 0);
	assert_int_equal(addrtable_count(u), 3);
	errno = 0;
	assert_int_equal(addrtable_lookup(u, "appvm-mail", "netvm", &again), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(addrtable_lookup(u, "appvm-lynx", "vpnvm", &again), 0);
	assert_int_equal(again, c);
	errno = 0;
	assert_int_equal(addrtable_release(u, "appvm-mail", "netvm"), -1);
	assert_int_equal(errno, ENOENT);

	/* No temp file left behind. */
	dir_listing(fx->dir, listing, sizeof(listing));
	assert_string_equal(listing, "links ");
	addrtable_free(t);
	addrtable_free(u);
}

static void test_bad_names(void **state)
{
	struct fixture *fx = *state;
	struct addrtable *t = NULL;
	char long_name[66];
	uint16_t id;
	bool created;

	memset(long_name, 'a', 65);
	long_name[65] = '\0';
	assert_int_equal(addrtable_load(fx->path, &t, NULL), 0);
	const char *bad[] = { "", ".hidden", "-x", "a b", "a/b", "a\n",
			      long_name };
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		errno = 0;
		assert_int_equal(addrtable_assign(t, bad[i], "net", &id,
						  &created), -1);
		assert_int_equal(errno, EINVAL);
		errno = 0;
		assert_int_equal(addrtable_assign(t, "app", bad[i], &id,
						  &created), -1);
		assert_int_equal(errno, EINVAL);
	}
	errno = 0;
	assert_int_equal(addrtable_assign(t, "net", "net", &id, &created), -1);
	assert_int_equal(errno, EINVAL);
	long_name[64] = '\0';
	assert_int_equal(addrtable_assign(t, long_name, "A.b_c-9", &id,
					  &created), 0);
	assert_true(created);
	addrtable_free(t);
}

static void test_exhaustion(void **state)
{
	struct fixture *fx = *state;
	struct addrtable *t = NULL, *u = NULL;
	static uint8_t seen[65536];
	char client[16];
	uint16_t id;
	bool created;

	memset(seen, 0, sizeof(seen));
	assert_int_equal(addrtable_load(fx->path, &t, NULL), 0);
	for (unsigned int i = 0; i < ADDRTABLE_MAX_LINKS; i++) {
		snprintf(client, sizeof(client), "vm%u", i);
		assert_int_equal(addrtable_assign(t, client, "netvm", &id,
						  &created), 0);
		assert_true(created);
		assert_true(id != 0 && id != 0xffff);
		assert_int_equal(seen[id], 0);
		seen[id] = 1;
	}
	assert_int_equal(addrtable_count(t), ADDRTABLE_MAX_LINKS);
	errno = 0;
	assert_int_equal(addrtable_assign(t, "one-more", "netvm", &id,
					  &created), -1);
	assert_int_equal(errno, ENOSPC);
	/* A known pair still answers when full. */
	assert_int_equal(addrtable_assign(t, "vm7", "netvm", &id, &created), 0);
	assert_false(created);

	/* Full tables save and load; freeing one id makes room for one. */
	assert_int_equal(addrtable_save(t), 0);
	assert_int_equal(addrtable_load(fx->path, &u, NULL), 0);
	assert_int_equal(addrtable_count(u), ADDRTABLE_MAX_LINKS);
	errno = 0;
	assert_int_equal(addrtable_acquire(u, "one-more", "netvm", &id), -1);
	assert_int_equal(errno, ENOSPC);
	uint16_t freed;
	assert_int_equal(addrtable_lookup(u, "vm1234", "netvm", &freed), 0);
	assert_int_equal(addrtable_remove(u, "vm1234", "netvm"), 0);
	assert_int_equal(addrtable_assign(u, "one-more", "netvm", &id,
					  &created), 0);
	assert_int_equal(id, freed);
	addrtable_free(t);
	addrtable_free(u);
}

static void expect_damage(const char *path, const char *text,
			  unsigned long line, const char *words)
{
	struct addrtable *t = NULL;
	struct addrtable_error err;

	write_file(path, text);
	errno = 0;
	assert_int_equal(addrtable_load(path, &t, &err), -1);
	assert_int_equal(errno, EBADMSG);
	assert_null(t);
	if (err.line != line || !strstr(err.message, words))
		fail_msg("%s: got line %lu \"%s\", want line %lu \"%s\"",
			 text, err.line, err.message, line, words);
}

static void test_damaged(void **state)
{
	struct fixture *fx = *state;
	struct addrtable *t = NULL;
	char listing[256];

	const char *ok = "# comment\n\n0001 app net\n";
	expect_damage(fx->path, "0001 app net\n0001 mail net\n", 2, "twice");
	expect_damage(fx->path, "0001 app net\n0002 app net\n", 2, "twice");
	expect_damage(fx->path, "0000 app net\n", 1, "never assigned");
	expect_damage(fx->path, "# x\nffff app net\n", 2, "never assigned");
	expect_damage(fx->path, "0001 app net\n0002 mail\n", 2, "missing provider");
	expect_damage(fx->path, "0001 app net\n0002 mail net", 2, "truncated");
	expect_damage(fx->path, "0001 app net\n0002 ma/il net\n", 2, "client");
	expect_damage(fx->path, "0001 app .net\n", 1, "provider");
	expect_damage(fx->path, "0001 app net extra\n", 1, "provider");
	expect_damage(fx->path, "00g1 app net\n", 1, "hex");
	expect_damage(fx->path, "0A01 app net\n", 1, "hex");
	expect_damage(fx->path, "001 app net\n", 1, "hex");
	expect_damage(fx->path, "0001  app net\n", 1, "client");
	expect_damage(fx->path, "0001 net net\n", 1, "itself");
	expect_damage(fx->path, "\n\n\ngarbage\n", 4, "ID CLIENT PROVIDER");

	/* A NUL byte inside a line. */
	FILE *f = fopen(fx->path, "we");
	assert_non_null(f);
	assert_int_equal(fwrite("0001 app\0 net\n", 1, 14, f), 14);
	assert_int_equal(fclose(f), 0);
	struct addrtable_error err;
	assert_int_equal(addrtable_load(fx->path, &t, &err), -1);
	assert_int_equal(errno, EBADMSG);
	assert_int_equal(err.line, 1);

	char big[400];
	memset(big, 'a', sizeof(big) - 2);
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	expect_damage(fx->path, big, 1, "too long");

	/* And the good one loads; the refused ones were left as they were. */
	write_file(fx->path, ok);
	assert_int_equal(addrtable_load(fx->path, &t, NULL), 0);
	assert_int_equal(addrtable_count(t), 1);
	addrtable_free(t);
	dir_listing(fx->dir, listing, sizeof(listing));
	assert_string_equal(listing, "links ");
}

static void test_failed_save_changes_nothing(void **state)
{
	struct fixture *fx = *state;
	struct addrtable *t = NULL;
	char listing[256];
	uint16_t id;

	/* A directory where the file should be: rename() fails. */
	assert_int_equal(mkdir(fx->path, 0700), 0);
	assert_int_equal(addrtable_load(fx->path, &t, NULL), -1);
	assert_int_equal(errno, EISDIR);
	assert_int_equal(rmdir(fx->path), 0);
	assert_int_equal(addrtable_load(fx->path, &t, NULL), 0);
	assert_int_equal(mkdir(fx->path, 0700), 0);
	errno = 0;
	assert_int_equal(addrtable_acquire(t, "app", "net", &id), -1);
	assert_int_equal(errno, EISDIR);
	/* Not handed out, not kept, no temp file. */
	assert_int_equal(addrtable_count(t), 0);
	dir_listing(fx->dir, listing, sizeof(listing));
	assert_string_equal(listing, "links ");
	assert_int_equal(rmdir(fx->path), 0);

	/* A stale temp file from a crash is overwritten, then gone. */
	char tmp[128];
	snprintf(tmp, sizeof(tmp), "%s.tmp", fx->path);
	write_file(tmp, "junk");
	assert_int_equal(addrtable_acquire(t, "app", "net", &id), 0);
	dir_listing(fx->dir, listing, sizeof(listing));
	assert_string_equal(listing, "links ");
	addrtable_free(t);
}

static void test_file_format(void **state)
{
	struct fixture *fx = *state;
	struct addrtable *t = NULL;
	char text[512], want[512];
	uint16_t a, b;
	FILE *f;
	size_t n;

	assert_int_equal(addrtable_load(fx->path, &t, NULL), 0);
	assert_int_equal(addrtable_acquire(t, "b", "net", &a), 0);
	assert_int_equal(addrtable_acquire(t, "a", "net", &b), 0);
	f = fopen(fx->path, "re");
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	/* Sorted by id, lowercase hex. */
	uint16_t lo = a < b ? a : b, hi = a < b ? b : a;
	snprintf(want, sizeof(want),
		 "# vmhost link ids: ID CLIENT PROVIDER (docs/networking.md)\n"
		 "%04x %s net\n%04x %s net\n",
		 lo, lo == a ? "b" : "a", hi, hi == a ? "b" : "a");
	assert_string_equal(text, want);
	addrtable_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_missing_file_is_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acquire_persist_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exhaustion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_save_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_format, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
