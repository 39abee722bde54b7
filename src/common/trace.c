/* The start-path trace: phase timestamps of a VM start.  See trace.h. */
#include <string.h>
#include <time.h>

#include "common/trace.h"

static const char *const start_phase_names[START_PHASES] = {
	[START_ACCEPTED] = "accepted",
	[START_CONFIG_LOADED] = "config_loaded",
	[START_FILES_OPENED] = "files_opened",
	[START_HELPERS_SPAWNED] = "helpers_spawned",
	[START_QEMU_EXEC] = "qemu_exec",
	[START_QMP_GREETING] = "qmp_greeting",
	[START_QMP_READY] = "qmp_ready",
	[START_FIRST_SERIAL] = "first_serial_byte",
	[START_READY_LINE] = "ready_line",
};

static uint64_t start_trace_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void start_trace_begin(struct start_trace *t)
{
	memset(t, 0, sizeof *t);
	t->ns[START_ACCEPTED] = start_trace_clock();
}

void start_trace_mark(struct start_trace *t, enum start_phase phase)
{
	if (t->ns[START_ACCEPTED] && !t->ns[phase])
		t->ns[phase] = start_trace_clock();
}

void start_trace_serial(struct start_trace *t, const char *data, size_t n)
{
	static const char line[] = START_TRACE_READY_LINE;
	size_t i;

	if (!n || !t->ns[START_ACCEPTED] || t->ns[START_READY_LINE])
		return;
	start_trace_mark(t, START_FIRST_SERIAL);
	/* The line's first character occurs in it only once, so a mismatch
	 * can restart the match at the current byte. */
	for (i = 0; i < n; i++) {
		if (data[i] != line[t->ready_matched])
			t->ready_matched = data[i] == line[0];
		else if (++t->ready_matched == sizeof line - 1) {
			start_trace_mark(t, START_READY_LINE);
			return;
		}
	}
}

const char *start_trace_name(enum start_phase phase)
{
	return start_phase_names[phase];
}

json_t *start_trace_json(const struct start_trace *t)
{
	json_t *o, *ns, *ms;
	uint64_t t0 = t->ns[START_ACCEPTED];

	if (!t0)
		return json_null();
	ns = json_object();
	ms = json_object();
	o = json_pack("{s:o,s:o}", "monotonic_ns", ns, "ms", ms);
	if (!o)
		return NULL;
	for (int p = 0; p < START_PHASES; p++) {
		json_object_set_new(ns, start_phase_names[p], t->ns[p] ?
			json_integer((json_int_t)t->ns[p]) : json_null());
		json_object_set_new(ms, start_phase_names[p], t->ns[p] ?
			json_real((double)(t->ns[p] - t0) / 1e6) : json_null());
	}
	return o;
}

json_t *start_trace_marks(const struct start_trace *t)
{
	json_t *o = json_object();

	for (int p = START_ACCEPTED + 1; o && p < START_PHASES; p++)
		if (t->ns[p] && json_object_set_new(o, start_phase_names[p],
				json_integer((json_int_t)t->ns[p])) < 0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

void start_trace_take(struct start_trace *t, const json_t *marks)
{
	uint64_t now = start_trace_clock();
	json_int_t ns;
	json_t *v;

	if (!t->ns[START_ACCEPTED] || !json_is_object(marks))
		return;
	for (int p = START_ACCEPTED + 1; p < START_PHASES; p++) {
		v = json_object_get(marks, start_phase_names[p]);
		if (!json_is_integer(v) || t->ns[p])
			continue;
		ns = json_integer_value(v);
		if (ns >= (json_int_t)t->ns[START_ACCEPTED] && (uint64_t)ns <= now)
			t->ns[p] = (uint64_t)ns;
	}
}
