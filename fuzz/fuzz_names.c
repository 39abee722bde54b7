/* libFuzzer target: the engine's copy of the config root's VM names
 * (engine/names.c), on the PS_NAMES messages the monitor sends it, parsed
 * as the engine parses them (json_loadb, duplicates rejected), with no
 * fd.  The input is a sequence of messages, each a length byte and that
 * many bytes of JSON text (the last one cut short if the input ends).
 *
 * The checks, after every message: the copy is strictly ascending and
 * holds valid VM names only; a message taken leaves exactly
 * (copy - del) + add (the copy emptied first on "reset"), and "more"
 * decides completeness only within a whole list; a message refused drops
 * the copy and every flag.  Nothing leaks (LeakSanitizer).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/vmconfig.h"
#include "engine/names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fuzz_holds(const struct names *ns, const char *s)
{
	for (size_t i = 0; i < ns->count; i++)
		if (!strcmp(ns->v[i], s))
			return true;
	return false;
}

/* Whether s is in arr (NULL: an empty array). */
static bool fuzz_in_array(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (!strcmp(json_string_value(v), s))
			return true;
	return false;
}

/* After a message was taken: the copy is what it should be. */
static void fuzz_check_taken(const struct names *ns, char **old, size_t nold,
			     json_t *msg)
{
	json_t *add = json_object_get(msg, "add");
	json_t *del = json_object_get(msg, "del");
	json_t *more = json_object_get(msg, "more");
	bool reset = json_is_true(json_object_get(msg, "reset"));
	size_t want = 0, i;
	json_t *v;

	if (reset)
		nold = 0;
	for (i = 0; i < nold; i++) {
		bool gone = fuzz_in_array(del, old[i]) &&
			    !fuzz_in_array(add, old[i]);

		if (fuzz_holds(ns, old[i]) == gone)
			__builtin_trap();
		want += !gone;
	}
	/* A name in add stays or comes, whatever del says. */
	json_array_foreach(add, i, v) {
		const char *s = json_string_value(v);
		bool had = false;

		if (!fuzz_holds(ns, s))
			__builtin_trap();
		for (size_t j = 0; j < nold && !had; j++)
			had = !strcmp(old[j], s);
		want += !had;
	}
	if (ns->count != want)
		__builtin_trap();
	if (reset && !ns->listed)
		__builtin_trap();
	if (more && ns->listed && ns->complete != !json_is_true(more))
		__builtin_trap();
	if (ns->complete && !ns->listed)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct names ns;
	size_t at = 0;

	names_init(&ns);
	while (at < size) {
		size_t len = data[at++], nold = ns.count;
		char **old = calloc(nold + 1, sizeof *old);
		json_t *msg;
		int r;

		if (!old)
			abort();
		if (len > size - at)
			len = size - at;
		for (size_t i = 0; i < nold; i++)
			if (!(old[i] = strdup(ns.v[i])))
				abort();
		msg = json_loadb((const char *)data + at, len,
				 JSON_REJECT_DUPLICATES, NULL);
		at += len;
		r = names_apply(&ns, msg, -1);
		for (size_t i = 0; i < ns.count; i++)
			if (!vmconfig_name_valid(ns.v[i]) ||
			    (i && strcmp(ns.v[i - 1], ns.v[i]) >= 0))
				__builtin_trap();
		if (r == 0)
			fuzz_check_taken(&ns, old, nold, msg);
		else if (ns.count || ns.listed || ns.complete ||
			 ns.watching || ns.synced)
			__builtin_trap();
		for (size_t i = 0; i < nold; i++)
			free(old[i]);
		free(old);
		json_decref(msg);
	}
	names_clear(&ns);
	return 0;
}
