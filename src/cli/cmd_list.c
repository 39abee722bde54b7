/* vm list [--json]: every VM directory in the config root, with its state. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/cli.h"

static const char *list_colour(const char *state)
{
	if (!strcmp(state, "running"))
		return "\033[32m";
	if (!strcmp(state, "failed"))
		return "\033[31m";
	if (!strcmp(state, "starting") || !strcmp(state, "stopping"))
		return "\033[33m";
	return "";
}

static void list_since(json_t *since, char *buf, size_t len)
{
	time_t t;
	struct tm tm;

	if (!json_is_integer(since)) {
		snprintf(buf, len, "-");
		return;
	}
	t = (time_t)json_integer_value(since);
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void list_table(json_t *vms)
{
	bool colour = isatty(1);
	int wname = 4, wstate = 7;
	char pid[24], since[32];
	const char *name, *state, *reason;
	json_t *vm;
	size_t i;
	int n;

	json_array_foreach(vms, i, vm) {
		n = (int)strlen(cli_str(vm, "name"));
		if (n > wname)
			wname = n;
	}
	printf("%-*s  %-*s  %-7s  %-19s  %s\n", wname, "NAME", wstate, "STATE",
	       "PID", "SINCE", "REASON");
	json_array_foreach(vms, i, vm) {
		if (!json_is_string(json_object_get(vm, "name")) ||
		    !json_is_string(json_object_get(vm, "state")))
			continue;
		name = cli_str(vm, "name");
		state = cli_str(vm, "state");
		reason = json_is_string(json_object_get(vm, "reason")) ?
			 cli_str(vm, "reason") : NULL;
		if (json_is_integer(json_object_get(vm, "pid")))
			snprintf(pid, sizeof pid, "%lld",
				 (long long)json_integer_value(json_object_get(vm, "pid")));
		else
			snprintf(pid, sizeof pid, "-");
		list_since(json_object_get(vm, "since"), since, sizeof since);
		printf("%-*s  %s%-*s%s  %-7s  %-19s  %s\n", wname, name,
		       colour ? list_colour(state) : "", wstate, state,
		       colour ? "\033[0m" : "", pid, since, reason ? reason : "");
	}
}

int cmd_list(int argc, char **argv)
{
	return client_show(argc, argv, "list", false, "vms", list_table);
}
