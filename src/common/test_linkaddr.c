#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/linkaddr.h"

static enum linkaddr_role classify_str(const char *s, uint16_t *id)
{
	uint8_t mac[LINKADDR_MAC_LEN];

	assert_int_equal(linkaddr_parse_mac(s, mac), 0);
	return linkaddr_classify(mac, id);
}

static void test_seed_example(void **state)
{
	uint16_t id = 0;

	(void)state;
	/* The seed's example: 0A:B3:EC:00:A5:46 -> 100.64.165.70. */
	assert_int_equal(classify_str("0A:B3:EC:00:A5:46", &id), LINKADDR_CLIENT);
	assert_int_equal(id, 0xa546);
	assert_int_equal(linkaddr_client_ipv4(id),
			 (100u << 24) | (64u << 16) | (165u << 8) | 70u);
}

static void test_roles_by_fourth_octet(void **state)
{
	uint16_t id = 0;

	(void)state;
	assert_int_equal(classify_str("0a:b3:ec:80:01:02", &id), LINKADDR_PROVIDER);
	assert_int_equal(id, 0x0102);
	assert_int_equal(classify_str("0A:B3:EC:01:01:02", &id), LINKADDR_INVALID);
	assert_int_equal(classify_str("0A:B3:EC:7F:01:02", &id), LINKADDR_INVALID);
	assert_int_equal(classify_str("0A:B3:EC:FF:01:02", &id), LINKADDR_INVALID);
	assert_int_equal(classify_str("52:54:00:12:34:56", &id), LINKADDR_FOREIGN);
	assert_int_equal(classify_str("0A:B3:ED:00:01:02", &id), LINKADDR_FOREIGN);
}

static void test_edge_octets(void **state)
{
	static const struct {
		const char *mac;
		enum linkaddr_role role;
		uint32_t ipv4;
	} cases[] = {
		{ "0A:B3:EC:00:00:00", LINKADDR_INVALID, 0 },
		{ "0A:B3:EC:00:00:01", LINKADDR_CLIENT, 0x64400001 },
		{ "0A:B3:EC:00:01:00", LINKADDR_CLIENT, 0x64400100 },
		{ "0A:B3:EC:00:7F:80", LINKADDR_CLIENT, 0x64407f80 },
		{ "0A:B3:EC:00:80:7F", LINKADDR_CLIENT, 0x6440807f },
		{ "0A:B3:EC:00:FE:FF", LINKADDR_CLIENT, 0x6440feff },
		{ "0A:B3:EC:00:FF:FE", LINKADDR_CLIENT, 0x6440fffe },
		{ "0A:B3:EC:00:FF:FF", LINKADDR_INVALID, 0 },
		{ "0A:B3:EC:80:00:00", LINKADDR_INVALID, 0 },
		{ "0A:B3:EC:80:FF:FF", LINKADDR_INVALID, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint16_t id = 0;
		enum linkaddr_role role = classify_str(cases[i].mac, &id);

		assert_int_equal(role, cases[i].role);
		if (role == LINKADDR_CLIENT)
			assert_int_equal(linkaddr_client_ipv4(id), cases[i].ipv4);
	}
}

static void test_mac_roundtrip(void **state)
{
	uint8_t mac[LINKADDR_MAC_LEN];
	char buf[LINKADDR_MAC_STRLEN];
	uint16_t id = 0;

	(void)state;
	linkaddr_mac(LINKADDR_PROVIDER, 0xfe01, mac);
	linkaddr_format_mac(mac, buf);
	assert_string_equal(buf, "0A:B3:EC:80:FE:01");
	assert_int_equal(linkaddr_classify(mac, &id), LINKADDR_PROVIDER);
	assert_int_equal(id, 0xfe01);

	linkaddr_mac(LINKADDR_CLIENT, 0x0001, mac);
	linkaddr_format_mac(mac, buf);
	assert_string_equal(buf, "0A:B3:EC:00:00:01");
}

static void test_parse_rejects(void **state)
{
	uint8_t mac[LINKADDR_MAC_LEN];

	(void)state;
	assert_int_equal(linkaddr_parse_mac("0A:B3:EC:00:A5", mac), -1);
	assert_int_equal(linkaddr_parse_mac("0A:B3:EC:00:A5:46:00", mac), -1);
	assert_int_equal(linkaddr_parse_mac("0A:B3:EC:00:A5:4", mac), -1);
	assert_int_equal(linkaddr_parse_mac("0A-B3-EC-00-A5-46", mac), -1);
	assert_int_equal(linkaddr_parse_mac("", mac), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_example),
		cmocka_unit_test(test_roles_by_fourth_octet),
		cmocka_unit_test(test_edge_octets),
		cmocka_unit_test(test_mac_roundtrip),
		cmocka_unit_test(test_parse_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
