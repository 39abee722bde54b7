/* vm log NAME [-f]: the serial console log (serial.log.1, serial.log),
 * and with -f everything the guest writes from then on. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/cli.h"

int cmd_log(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "state-dir", required_argument, NULL, 's' },
		{ 0 },
	};
	struct client_conn cc;
	const char *state_dir = NULL;
	json_t *req, *reply = NULL;
	bool follow = false;
	char chunk[8192];
	ssize_t n;
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
		switch (opt) {
		case 'f': follow = true; break;
		case 's': state_dir = optarg; break;
		default: goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	req = json_pack("{s:s,s:s,s:b}", "op", "log", "name", argv[optind],
			"follow", follow);
	r = client_call("log", client_state_dir(state_dir), req, &reply, &cc);
	json_decref(req);
	if (r)
		return r;
	json_decref(reply);
	r = CLI_EXIT_OK;
	if (client_write_all(1, cc.buf, cc.len) < 0)
		goto out;
	for (;;) {
		n = read(cc.fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (client_write_all(1, chunk, (size_t)n) < 0)
			break;
	}
out:
	client_close(&cc);
	return r;

usage:
	cli_print_usage(stderr, "log");
	return CLI_EXIT_USAGE;
}
