/* Unit tests of the QMP codec. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/qmp.h"

static const char greeting[] =
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, "
	"\"major\": 7}, \"package\": \"Debian\"}, \"capabilities\": [\"oob\"]}}\r\n";

static void test_greeting_byte_by_byte(void **state)
{
	struct qmp_codec *c = qmp_codec_new(0);
	struct qmp_msg m;

	for (size_t i = 0; i < sizeof(greeting) - 1; i++) {
		assert_int_equal(qmp_pop(c, &m), 0);
		assert_int_equal(qmp_feed(c, greeting + i, 1), 0);
	}
	assert_int_equal(qmp_pop(c, &m), 1);
	assert_int_equal(m.kind, QMP_GREETING);
	assert_non_null(json_object_get(m.value, "version"));
	qmp_msg_clear(&m);
	assert_int_equal(qmp_pop(c, &m), 0);
	qmp_codec_free(c);
}

static void test_two_in_one_read(void **state)
{
	static const char in[] =
		"{\"return\": {}, \"id\": 7}\r\n"
		"{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
		"\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true}}\r\n"
		"{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, "
		"\"id\": 8}\n{\"ret";
	struct qmp_codec *c = qmp_codec_new(0);
	struct qmp_msg m;

	assert_int_equal(qmp_feed(c, in, sizeof(in) - 1), 0);
	assert_int_equal(qmp_pop(c, &m), 1);
	assert_int_equal(m.kind, QMP_RETURN);
	assert_true(m.has_id);
	assert_int_equal(m.id, 7);
	qmp_msg_clear(&m);
	assert_int_equal(qmp_pop(c, &m), 1);
	assert_int_equal(m.kind, QMP_EVENT);
	assert_string_equal(m.event, "SHUTDOWN");
	assert_true(json_is_true(json_object_get(m.value, "guest")));
	assert_false(m.has_id);
	qmp_msg_clear(&m);
	assert_int_equal(qmp_pop(c, &m), 1);
	assert_int_equal(m.kind, QMP_ERROR);
	assert_string_equal(m.error_class, "GenericError");
	assert_string_equal(m.error_desc, "no");
	assert_int_equal(m.id, 8);
	qmp_msg_clear(&m);
	/* The tail is incomplete until its newline comes. */
	assert_int_equal(qmp_pop(c, &m), 0);
	assert_int_equal(qmp_feed(c, "urn\": 3, \"id\": 9}\n", 18), 0);
	assert_int_equal(qmp_pop(c, &m), 1);
	assert_int_equal(m.kind, QMP_RETURN);
	assert_int_equal(json_integer_value(m.value), 3);
	qmp_msg_clear(&m);
	qmp_codec_free(c);
}

static void test_oversize(void **state)
{
	struct qmp_codec *c = qmp_codec_new(64);
	struct qmp_msg m;
	char big[1000];

	memset(big, ' ', sizeof(big));
	big[0] = '{';
	/* Streams in pieces, never completing: stays bounded, no message. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(qmp_feed(c, big, sizeof(big)), 0);
	assert_int_equal(qmp_pop(c, &m), 0);
	assert_int_equal(qmp_feed(c, "}\n{\"return\": 1}\n", 16), 0);
	errno = 0;
	assert_int_equal(qmp_pop(c, &m), -1);
	assert_int_equal(errno, EMSGSIZE);
	/* Resynchronised on the next line. */
	assert_int_equal(qmp_pop(c, &m), 1);
	assert_int_equal(m.kind, QMP_RETURN);
	qmp_msg_clear(&m);
	/* Exactly at the cap is fine. */
	char line[66];
	memset(line, ' ', 64);
	line[0] = '{';
	memcpy(line + 50, "\"return\":1}", 11);
	line[61] = ' ';
	line[64] = '\n';
	assert_int_equal(qmp_feed(c, line, 65), 0);
	assert_int_equal(qmp_pop(c, &m), 1);
	qmp_msg_clear(&m);
	qmp_codec_free(c);
}

static void test_garbage(void **state)
{
	static const char *const bad[] = {
		"not json\n", "[1, 2]\n", "\"str\"\n", "42\n", "{}\n",
		"{\"event\": 3}\n", "{\"error\": \"x\"}\n",
		"{\"error\": {\"desc\": \"no class\"}}\n", "{\"QMP\": 1}\n",
		"{\"return\": 1, \"return\": 2}\n", "{\"return\": \"\\u0000\"\n",
		"\x01\x02\xff\xfe\n",
	};
	struct qmp_codec *c = qmp_codec_new(0);
	struct qmp_msg m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(qmp_feed(c, bad[i], strlen(bad[i])), 0);
		errno = 0;
		assert_int_equal(qmp_pop(c, &m), -1);
		assert_int_equal(errno, EBADMSG);
		assert_null(m.root);
	}
	/* A line of NULs is not blank (strchr(" \t\r", 0) would say so). */
	assert_int_equal(qmp_feed(c, "\0 \0\n", 4), 0);
	assert_int_equal(qmp_pop(c, &m), -1);
	assert_int_equal(errno, EBADMSG);
	/* Blank lines are skipped, an id of the wrong type is no id. */
	assert_int_equal(qmp_feed(c, "\r\n\n{\"return\": {}, \"id\": \"x\"}\n", 29), 0);
	assert_int_equal(qmp_pop(c, &m), 1);
	assert_false(m.has_id);
	qmp_msg_clear(&m);
	qmp_codec_free(c);
}

static void test_command(void **state)
{
	size_t len;
	char *s = qmp_command("query-status", NULL, 5, &len);
	json_t *args = json_pack("{s:s}", "id", "nic0");

	assert_non_null(s);
	assert_string_equal(s, "{\"execute\":\"query-status\",\"id\":5}\n");
	assert_int_equal(len, strlen(s));
	free(s);
	s = qmp_command("device_del", args, 6, NULL);
	assert_non_null(s);
	assert_non_null(strstr(s, "\"arguments\":{\"id\":\"nic0\"}"));
	assert_int_equal(s[strlen(s) - 1], '\n');
	free(s);
	json_decref(args);
	errno = 0;
	assert_null(qmp_command(NULL, NULL, 1, NULL));
	assert_int_equal(errno, EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_greeting_byte_by_byte),
		cmocka_unit_test(test_two_in_one_read),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_command),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
