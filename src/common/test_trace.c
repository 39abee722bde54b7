/* Unit tests of the start-path trace: phase order, first mark wins, the
 * ready line found across any split of the serial stream, JSON shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "common/trace.h"

static void test_unbegun_marks_nothing(void **state)
{
	struct start_trace t = { 0 };
	json_t *j;

	start_trace_mark(&t, START_QEMU_EXEC);
	start_trace_serial(&t, "vmhost-guest: ready\n", 20);
	for (int p = 0; p < START_PHASES; p++)
		assert_int_equal(t.ns[p], 0);
	j = start_trace_json(&t);
	assert_true(json_is_null(j));
	json_decref(j);
}

static void test_first_mark_wins(void **state)
{
	struct start_trace t;
	uint64_t first;

	start_trace_begin(&t);
	assert_int_not_equal(t.ns[START_ACCEPTED], 0);
	start_trace_mark(&t, START_CONFIG_LOADED);
	first = t.ns[START_CONFIG_LOADED];
	assert_true(first >= t.ns[START_ACCEPTED]);
	start_trace_mark(&t, START_CONFIG_LOADED);
	assert_int_equal(t.ns[START_CONFIG_LOADED], first);
	/* A new start forgets the old one. */
	start_trace_begin(&t);
	assert_int_equal(t.ns[START_CONFIG_LOADED], 0);
}

/* Feed text in pieces of size step; whether the ready line was seen. */
static bool fed(const char *text, size_t step)
{
	struct start_trace t;
	size_t n = strlen(text);

	start_trace_begin(&t);
	for (size_t i = 0; i < n; i += step)
		start_trace_serial(&t, text + i, n - i < step ? n - i : step);
	return t.ns[START_READY_LINE] != 0;
}

static void test_ready_line_any_split(void **state)
{
	static const char boot[] =
		"[    0.1] Linux version\nvmhost-guest: virtio-fs data\n"
		"vvmhost-guest: rvmhost-guest: ready\n";
	static const char line[] = START_TRACE_READY_LINE;

	/* The matcher relies on the first character occurring once. */
	assert_ptr_equal(strrchr(line, line[0]), line);
	for (size_t step = 1; step <= sizeof boot; step++)
		assert_true(fed(boot, step));
	assert_false(fed("vmhost-guest: read\nvmhost-guest: ", 1));
	assert_false(fed("vmhost-guest: READY\n", 3));
}

static void test_first_serial_byte(void **state)
{
	struct start_trace t;

	start_trace_begin(&t);
	start_trace_serial(&t, "", 0);
	assert_int_equal(t.ns[START_FIRST_SERIAL], 0);
	start_trace_serial(&t, "x", 1);
	assert_int_not_equal(t.ns[START_FIRST_SERIAL], 0);
	assert_int_equal(t.ns[START_READY_LINE], 0);
}

static void test_json(void **state)
{
	struct start_trace t;
	json_t *j, *ms, *ns;

	start_trace_begin(&t);
	start_trace_mark(&t, START_QEMU_EXEC);
	j = start_trace_json(&t);
	ms = json_object_get(j, "ms");
	ns = json_object_get(j, "monotonic_ns");
	assert_int_equal(json_object_size(ms), START_PHASES);
	assert_int_equal(json_object_size(ns), START_PHASES);
	assert_true(json_real_value(json_object_get(ms, "accepted")) == 0.0);
	assert_true(json_real_value(json_object_get(ms, "qemu_exec")) >= 0.0);
	assert_true(json_is_real(json_object_get(ms, "qemu_exec")));
	assert_true(json_is_null(json_object_get(ms, "ready_line")));
	assert_int_equal(json_integer_value(json_object_get(ns, "accepted")),
			 (json_int_t)t.ns[START_ACCEPTED]);
	for (int p = 0; p < START_PHASES; p++)
		assert_non_null(json_object_get(ms, start_trace_name(p)));
	json_decref(j);
}

/* Marks made in another process (the monitor's launch) and taken here:
 * only those between the start and now, never over a mark of our own. */
static void test_marks_taken(void **state)
{
	struct start_trace there, here;
	json_t *marks;
	uint64_t before;

	start_trace_begin(&here);
	start_trace_begin(&there);
	start_trace_mark(&there, START_FILES_OPENED);
	start_trace_mark(&there, START_QEMU_EXEC);
	marks = start_trace_marks(&there);
	assert_non_null(marks);
	/* Unmarked phases and the other side's start stay out. */
	assert_int_equal(json_object_size(marks), 2);
	assert_null(json_object_get(marks, "accepted"));
	start_trace_mark(&here, START_QEMU_EXEC);
	before = here.ns[START_QEMU_EXEC];
	start_trace_take(&here, marks);
	assert_int_equal(here.ns[START_FILES_OPENED], there.ns[START_FILES_OPENED]);
	assert_int_equal(here.ns[START_QEMU_EXEC], before);
	json_decref(marks);

	/* Before the start, in the future, or not a number: ignored. */
	marks = json_pack("{s:I,s:I,s:s,s:I}",
			  "helpers_spawned", (json_int_t)here.ns[START_ACCEPTED] - 1,
			  "qmp_greeting", (json_int_t)here.ns[START_ACCEPTED] +
					  (json_int_t)3600000000000,
			  "qmp_ready", "soon",
			  "ready_line", (json_int_t)-5);
	start_trace_take(&here, marks);
	assert_int_equal(here.ns[START_HELPERS_SPAWNED], 0);
	assert_int_equal(here.ns[START_QMP_GREETING], 0);
	assert_int_equal(here.ns[START_QMP_READY], 0);
	assert_int_equal(here.ns[START_READY_LINE], 0);
	json_decref(marks);

	/* No start here: nothing taken. */
	memset(&here, 0, sizeof here);
	marks = start_trace_marks(&there);
	start_trace_take(&here, marks);
	assert_int_equal(here.ns[START_FILES_OPENED], 0);
	start_trace_take(&here, NULL);
	json_decref(marks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unbegun_marks_nothing),
		cmocka_unit_test(test_first_mark_wins),
		cmocka_unit_test(test_ready_line_any_split),
		cmocka_unit_test(test_first_serial_byte),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_marks_taken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
