/* Unit tests of atomicfile_write: the old content survives every failure. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/atomicfile.h"

static char dir[] = "/tmp/atomicfile-XXXXXX";
static char path[64], tmp[64];

static int write_text(FILE *f, void *arg)
{
	return fputs(arg, f) == EOF ? -1 : 0;
}

static int write_then_fail(FILE *f, void *arg)
{
	fputs("half", f);
	errno = EIO;
	return -1;
}

static void slurp(char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void test_replace_and_keep(void **state)
{
	char buf[64];

	assert_int_equal(atomicfile_write(path, true, write_text, "one\n"), 0);
	slurp(buf, sizeof buf);
	assert_string_equal(buf, "one\n");
	assert_int_equal(atomicfile_write(path, false, write_text, "two\n"), 0);
	slurp(buf, sizeof buf);
	assert_string_equal(buf, "two\n");

	/* A writer that fails: old content, no temp file, its errno. */
	assert_int_equal(atomicfile_write(path, true, write_then_fail, NULL), -1);
	assert_int_equal(errno, EIO);
	slurp(buf, sizeof buf);
	assert_string_equal(buf, "two\n");
	assert_int_equal(access(tmp, F_OK), -1);
}

static void test_tmp_link_refused(void **state)
{
	char buf[64];

	/* A link planted at the temp name is not followed; the file stays. */
	assert_int_equal(symlink("/dev/full", tmp), 0);
	assert_int_equal(atomicfile_write(path, true, write_text, "three\n"), -1);
	assert_int_equal(errno, ELOOP);
	slurp(buf, sizeof buf);
	assert_string_equal(buf, "two\n");
	unlink(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replace_and_keep),
		cmocka_unit_test(test_tmp_link_refused),
	};
	int r;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof path, "%s/state", dir);
	snprintf(tmp, sizeof tmp, "%s/state.tmp", dir);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(path);
	rmdir(dir);
	return r;
}
