/* vm start NAME: returns once QEMU runs the VM. */
#include <getopt.h>
#include <stdio.h>

#include "cli/client.h"
#include "cli/cli.h"

int cmd_start(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ 0 },
	};
	const char *state_dir = NULL;
	json_t *req, *reply = NULL, *vm;
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 's')
			goto usage;
		state_dir = optarg;
	}
	if (optind != argc - 1)
		goto usage;
	req = json_pack("{s:s,s:s}", "op", "start", "name", argv[optind]);
	r = client_call("start", client_state_dir(state_dir), req, &reply, NULL);
	json_decref(req);
	if (r)
		return r;
	vm = json_object_get(reply, "vm");
	printf("%s: %s (pid %lld)\n", argv[optind], cli_str(vm, "state"),
	       (long long)json_integer_value(json_object_get(vm, "pid")));
	json_decref(reply);
	return CLI_EXIT_OK;

usage:
	cli_print_usage(stderr, "start");
	return CLI_EXIT_USAGE;
}
