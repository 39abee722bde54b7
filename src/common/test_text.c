/* Unit tests of text.h: escaping, UTF-8 cuts and checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/text.h"

static void check_escape(const char *in, size_t len, size_t max,
			 unsigned flags, const char *want)
{
	char *s = text_escape(in, len, max, flags);

	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static void test_escape(void **state)
{
	check_escape("a\"b\\c\n\t\x01\xff", 9, 100, TEXT_ASCII,
		     "a\\\"b\\\\c\\n\\t\\x01\\xff");
	check_escape("abcdef", 6, 3, TEXT_ASCII, "abc...");
	/* Terminal escapes never pass, in either mode. */
	check_escape("\x1b[2J", 4, 100, TEXT_UTF8, "\\x1b[2J");
	/* Valid UTF-8 stays in UTF8 mode, not in ASCII mode. */
	check_escape("caf\xc3\xa9", 5, 100, TEXT_UTF8, "caf\xc3\xa9");
	check_escape("caf\xc3\xa9", 5, 100, TEXT_ASCII, "caf\\xc3\\xa9");
	/* C1 controls (U+009B is a CSI) and invalid bytes are escaped. */
	check_escape("\xc2\x9b" "1m", 4, 100, TEXT_UTF8, "\\xc2\\x9b1m");
	check_escape("\xff\xfe", 2, 100, TEXT_UTF8, "\\xff\\xfe");
	/* Overlong encodings and surrogates are not UTF-8. */
	check_escape("\xc0\xaf", 2, 100, TEXT_UTF8, "\\xc0\\xaf");
	check_escape("\xed\xa0\x80", 3, 100, TEXT_UTF8, "\\xed\\xa0\\x80");
	/* A cut never splits a character. */
	check_escape("ab\xc3\xa9z", 5, 3, TEXT_UTF8, "ab...");
}

static void test_cut(void **state)
{
	assert_int_equal(text_utf8_cut("abc", 3), 3);
	assert_int_equal(text_utf8_cut("ab\xc3\xa9", 4), 4);
	assert_int_equal(text_utf8_cut("ab\xc3\xa9", 3), 2);
	assert_int_equal(text_utf8_cut("\xf0\x9f\x98\x80", 3), 0);
	assert_int_equal(text_utf8_cut("\xf0\x9f\x98\x80", 4), 4);
	/* Invalid bytes are kept whole: they do not make a sequence. */
	assert_int_equal(text_utf8_cut("a\xff", 2), 2);
}

static void test_valid(void **state)
{
	assert_true(text_utf8_valid("caf\xc3\xa9", 5));
	assert_false(text_utf8_valid("a\0b", 3));
	assert_false(text_utf8_valid("\xc3", 1));
	assert_true(text_printable("tab\there", 8));
	assert_false(text_printable("bell\a", 5));
	assert_false(text_printable("\xc2\x9b", 2));
	assert_true(text_printable("\xe2\x82\xac", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
