/* vm-netconf's decisions: what each MAC turns into (addresses, routes,
 * default), and the once-per-interface table.  The MAC classification
 * itself is tested in src/common/test_linkaddr.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "netconf.h"

static void plan_str(const char *s, bool default_taken, bool dhcp,
		     struct netconf_plan *p)
{
	uint8_t mac[LINKADDR_MAC_LEN];

	assert_int_equal(linkaddr_parse_mac(s, mac), 0);
	netconf_plan(mac, true, false, default_taken, dhcp, p);
}

static void assert_ipv4(uint32_t addr, const char *want)
{
	char buf[16];

	netconf_format_ipv4(addr, buf);
	assert_string_equal(buf, want);
}

static void test_client_octets(void **state)
{
	static const struct {
		const char *mac;
		const char *addr;
	} cases[] = {
		{ "0A:B3:EC:00:A5:46", "100.64.165.70" },
		{ "0A:B3:EC:00:00:01", "100.64.0.1" },
		{ "0A:B3:EC:00:01:00", "100.64.1.0" },
		{ "0A:B3:EC:00:7F:80", "100.64.127.128" },
		{ "0A:B3:EC:00:80:7F", "100.64.128.127" },
		{ "0A:B3:EC:00:FE:FF", "100.64.254.255" },
		{ "0A:B3:EC:00:FF:FE", "100.64.255.254" },
	};
	struct netconf_plan p;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		plan_str(cases[i].mac, false, false, &p);
		assert_int_equal(p.action, NETCONF_CLIENT);
		assert_ipv4(p.local, cases[i].addr);
		assert_ipv4(p.peer, "169.254.0.1");
		assert_true(p.set_default);
	}
}

static void test_provider_octets(void **state)
{
	static const struct {
		const char *mac;
		const char *peer;
	} cases[] = {
		{ "0A:B3:EC:80:00:01", "100.64.0.1" },
		{ "0A:B3:EC:80:7F:FE", "100.64.127.254" },
		{ "0A:B3:EC:80:FF:00", "100.64.255.0" },
	};
	struct netconf_plan p;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		plan_str(cases[i].mac, false, false, &p);
		assert_int_equal(p.action, NETCONF_PROVIDER);
		assert_ipv4(p.local, "169.254.0.1");
		assert_ipv4(p.peer, cases[i].peer);
		assert_false(p.set_default); /* providers never route out */
	}
}

static void test_not_ours(void **state)
{
	struct netconf_plan p;
	uint8_t mac[LINKADDR_MAC_LEN] = { 0x0a, 0xb3, 0xec, 0x00, 0x01, 0x02 };

	(void)state;
	/* Fourth octets other than 00 and 80, and ids 0000/FFFF. */
	plan_str("0A:B3:EC:01:01:02", false, true, &p);
	assert_int_equal(p.action, NETCONF_INVALID);
	plan_str("0A:B3:EC:7F:01:02", false, true, &p);
	assert_int_equal(p.action, NETCONF_INVALID);
	plan_str("0A:B3:EC:FE:01:02", false, true, &p);
	assert_int_equal(p.action, NETCONF_INVALID);
	plan_str("0A:B3:EC:FF:01:02", false, true, &p);
	assert_int_equal(p.action, NETCONF_INVALID);
	plan_str("0A:B3:EC:00:FF:FF", false, true, &p);
	assert_int_equal(p.action, NETCONF_INVALID);
	plan_str("0A:B3:EC:80:00:00", false, true, &p);
	assert_int_equal(p.action, NETCONF_INVALID);

	/* Foreign NICs: DHCP only when enabled. */
	plan_str("52:54:00:12:34:56", false, false, &p);
	assert_int_equal(p.action, NETCONF_FOREIGN);
	plan_str("52:54:00:12:34:56", false, true, &p);
	assert_int_equal(p.action, NETCONF_DHCP);

	/* Loopback, non-Ethernet, no MAC: skipped even with our OUI. */
	netconf_plan(mac, true, true, false, true, &p);
	assert_int_equal(p.action, NETCONF_SKIP);
	netconf_plan(mac, false, false, false, true, &p);
	assert_int_equal(p.action, NETCONF_SKIP);
	netconf_plan(NULL, true, false, false, true, &p);
	assert_int_equal(p.action, NETCONF_SKIP);
}

static void test_default_once(void **state)
{
	struct netconf_plan p;

	(void)state;
	plan_str("0A:B3:EC:00:00:02", true, false, &p);
	assert_int_equal(p.action, NETCONF_CLIENT);
	assert_false(p.set_default);
}

static void test_describe(void **state)
{
	struct netconf_plan p;
	uint8_t mac[LINKADDR_MAC_LEN];
	char line[160];

	(void)state;
	assert_int_equal(linkaddr_parse_mac("0a:b3:ec:00:a5:46", mac), 0);
	netconf_plan(mac, true, false, false, false, &p);
	netconf_describe(&p, "eth0", mac, line, sizeof(line));
	assert_string_equal(line, "eth0 0A:B3:EC:00:A5:46: client of link a546: "
			    "100.64.165.70/32, route 169.254.0.1, default via it");
	/* Truncates rather than overflows. */
	netconf_describe(&p, "eth0", mac, line, 8);
	assert_string_equal(line, "eth0 0A");
}

static void test_table(void **state)
{
	static struct netconf_table t;
	uint8_t a[LINKADDR_MAC_LEN] = { 0x0a, 0xb3, 0xec, 0x00, 0x00, 0x01 };
	uint8_t b[LINKADDR_MAC_LEN] = { 0x0a, 0xb3, 0xec, 0x00, 0x00, 0x02 };

	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(netconf_table_add(&t, 2, a), 1);
	assert_int_equal(netconf_table_add(&t, 2, a), 0); /* repeat event */
	assert_int_equal(netconf_table_add(&t, 3, b), 1);
	assert_false(netconf_table_default_taken(&t));
	netconf_table_set_default(&t, 2);
	assert_true(netconf_table_default_taken(&t));

	/* A new MAC on a known index is a new device; loses the default. */
	assert_int_equal(netconf_table_add(&t, 2, b), 1);
	assert_false(netconf_table_default_taken(&t));

	netconf_table_set_default(&t, 3);
	assert_true(netconf_table_remove(&t, 3));
	assert_false(netconf_table_default_taken(&t));
	assert_false(netconf_table_remove(&t, 3));
	assert_int_equal(netconf_table_add(&t, 3, b), 1);

	/* Bounded. */
	memset(&t, 0, sizeof(t));
	for (int i = 0; i < NETCONF_MAX_LINKS; i++)
		assert_int_equal(netconf_table_add(&t, 100 + i, a), 1);
	assert_int_equal(netconf_table_add(&t, 1, a), -1);
	assert_int_equal(netconf_table_add(&t, 100, a), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_octets),
		cmocka_unit_test(test_provider_octets),
		cmocka_unit_test(test_not_ours),
		cmocka_unit_test(test_default_once),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
