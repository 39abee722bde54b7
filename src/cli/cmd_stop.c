/* vm stop NAME [--force] [--timeout S]: ACPI power off, then kill. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/client.h"
#include "cli/cli.h"

int cmd_stop(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ "state-dir", required_argument, NULL, 's' },
		{ 0 },
	};
	const char *state_dir = NULL, *reason;
	json_t *req, *reply = NULL, *vm;
	long timeout = 30;
	bool force = false;
	char *end;
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'f': force = true; break;
		case 's': state_dir = optarg; break;
		case 't':
			timeout = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end || timeout < 0 || timeout > 3600) {
				fprintf(stderr, "vm stop: --timeout %s: give 0 to 3600 seconds\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		default: goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	req = json_pack("{s:s,s:s,s:b,s:I}", "op", "stop", "name", argv[optind],
			"force", force, "timeout", (json_int_t)timeout);
	r = client_call("stop", client_state_dir(state_dir), req, &reply, NULL);
	json_decref(req);
	if (r)
		return r;
	vm = json_object_get(reply, "vm");
	reason = json_is_string(json_object_get(vm, "reason")) ?
		 cli_str(vm, "reason") : NULL;
	printf("%s: %s%s%s%s\n", argv[optind], cli_str(vm, "state"),
	       reason ? " (" : "", reason ? reason : "", reason ? ")" : "");
	json_decref(reply);
	return CLI_EXIT_OK;

usage:
	cli_print_usage(stderr, "stop");
	return CLI_EXIT_USAGE;
}
