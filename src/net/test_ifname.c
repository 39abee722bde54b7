#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "net/ifname.h"

static void test_format(void **state)
{
	char buf[IFNAMSIZ];

	(void)state;
	assert_int_equal(ifname_format("vmh-", IFNAME_BRIDGE, 0xa546, buf), 0);
	assert_string_equal(buf, "vmh-a546-br");
	assert_int_equal(ifname_format("vmh-", IFNAME_CLIENT, 0x0001, buf), 0);
	assert_string_equal(buf, "vmh-0001-c");
	assert_int_equal(ifname_format("vmh-", IFNAME_PROVIDER, 0xfffe, buf), 0);
	assert_string_equal(buf, "vmh-fffe-p");
	/* The longest prefix still fits with its NUL. */
	assert_int_equal(ifname_format("abcdefgh", IFNAME_BRIDGE, 0xfffe, buf), 0);
	assert_string_equal(buf, "abcdefghfffe-br");
	assert_int_equal(strlen(buf), IFNAMSIZ - 1);
}

static void test_format_rejects(void **state)
{
	char buf[IFNAMSIZ];

	(void)state;
	errno = 0;
	assert_int_equal(ifname_format("vmh-", IFNAME_BRIDGE, 0x0000, buf), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(ifname_format("vmh-", IFNAME_BRIDGE, 0xffff, buf), -1);
	assert_int_equal(ifname_format("abcdefghi", IFNAME_BRIDGE, 1, buf), -1);
	assert_int_equal(ifname_format("", IFNAME_BRIDGE, 1, buf), -1);
	assert_int_equal(ifname_format("VMH-", IFNAME_BRIDGE, 1, buf), -1);
	assert_int_equal(ifname_format("v/h", IFNAME_BRIDGE, 1, buf), -1);
	assert_int_equal(ifname_format("vmh-", (enum ifname_role)7, 1, buf), -1);
	assert_int_equal(errno, EINVAL);
}

static void test_roundtrip_every_id(void **state)
{
	char buf[IFNAMSIZ];

	(void)state;
	for (uint32_t id = 1; id < 0xffff; id++) {
		for (int r = IFNAME_BRIDGE; r <= IFNAME_PROVIDER; r++) {
			enum ifname_role role;
			uint16_t got;

			assert_int_equal(ifname_format("vmh-", r, (uint16_t)id, buf), 0);
			assert_int_equal(ifname_parse("vmh-", buf, &role, &got), 0);
			assert_int_equal(role, r);
			assert_int_equal(got, id);
		}
	}
}

static void test_parse_foreign(void **state)
{
	static const char *const foreign[] = {
		"eth0", "vmh-", "vmh-a546", "vmh-a546-", "vmh-a546-b",
		"vmh-a546-brx", "vmh-A546-br", "vmh-a54-br", "vmh-a5467-br",
		"vmh-0000-br", "vmh-ffff-c", "vmx-a546-br", "xvmh-a546-br",
		"vmh-a546_br", "vmh-a546-q", "vmh-g546-p",
	};
	enum ifname_role role;
	uint16_t id;

	(void)state;
	for (size_t i = 0; i < sizeof(foreign) / sizeof(*foreign); i++) {
		errno = 0;
		assert_int_equal(ifname_parse("vmh-", foreign[i], &role, &id), -1);
		assert_int_equal(errno, EINVAL);
	}
	/* Another daemon's prefix is not ours. */
	assert_int_equal(ifname_parse("vmt-", "vmh-a546-br", &role, &id), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_rejects),
		cmocka_unit_test(test_roundtrip_every_id),
		cmocka_unit_test(test_parse_foreign),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
