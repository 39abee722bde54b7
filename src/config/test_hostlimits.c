/* Unit tests for the host limits: defaults from this host, the flags,
 * and the messages of a VM asking for too much. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/hostlimits.h"

static void test_defaults(void **state)
{
	struct hostlimits l;
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
	uint64_t ram = (uint64_t)pages * (uint64_t)size, reserve;

	assert_int_equal(hostlimits_default(&l), 0);
	/* MemTotal and sysconf agree on this host's RAM. */
	assert_true(l.host_memory == ram);
	reserve = ram / 8 < HOSTLIMITS_RESERVE_MIN ? HOSTLIMITS_RESERVE_MIN :
		  ram / 8 > HOSTLIMITS_RESERVE_MAX ? HOSTLIMITS_RESERVE_MAX : ram / 8;
	assert_true(l.max_memory <= ram - reserve);
	assert_true(l.max_memory > ram - reserve - (1 << 20));
	assert_int_equal(l.max_memory % (1 << 20), 0);
	assert_true(l.max_cpus >= 1);
	assert_true(l.max_cpus <= (unsigned int)sysconf(_SC_NPROCESSORS_ONLN));
	assert_false(l.memory_set || l.cpus_set);
}

static void test_flags(void **state)
{
	struct hostlimits l;
	const char *why;

	assert_int_equal(hostlimits_default(&l), 0);
	assert_int_equal(hostlimits_set_memory(&l, "2G", &why), 0);
	assert_int_equal(l.max_memory, 2ull << 30);
	assert_true(l.memory_set);
	assert_int_equal(hostlimits_set_cpus(&l, "3", &why), 0);
	assert_int_equal(l.max_cpus, 3);
	errno = 0;
	assert_int_equal(hostlimits_set_memory(&l, "lots", &why), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(hostlimits_set_cpus(&l, "0", &why), -1);
	assert_int_equal(hostlimits_set_cpus(&l, "65", &why), -1);
}

static void test_messages(void **state)
{
	struct hostlimits l = {
		.max_memory = 3ull << 30, .max_cpus = 2,
		.host_memory = 4ull << 30, .host_cpus = 2,
	};
	struct vm_config cfg = { .name = "big", .memory = 4ull << 30, .cpus = 4 };
	struct diags d;

	diags_init(&d);
	assert_int_equal(hostlimits_check(&l, &cfg, &d), 2);
	assert_string_equal(d.items[0].path, "memory");
	assert_string_equal(d.items[0].message,
			    "4G is more than a VM may have on this host (at most 3G: 4G of RAM less 1G kept for the host; --max-memory SIZE changes it)");
	assert_string_equal(d.items[1].path, "cpus");
	assert_string_equal(d.items[1].message,
			    "4 CPUs is more than this host has (2; --max-cpus N changes it)");
	diags_free(&d);

	l.memory_set = l.cpus_set = true;
	l.max_memory = 1536ull << 20;
	assert_int_equal(hostlimits_check(&l, &cfg, &d), 2);
	assert_string_equal(d.items[0].message,
			    "4G is more than a VM may have here (at most 1536M, set by --max-memory)");
	assert_string_equal(d.items[1].message,
			    "4 CPUs is more than a VM may have here (at most 2, set by --max-cpus)");
	diags_free(&d);

	/* At the limit is fine. */
	cfg.memory = l.max_memory;
	cfg.cpus = 2;
	assert_int_equal(hostlimits_check(&l, &cfg, &d), 0);
	assert_int_equal(d.count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
