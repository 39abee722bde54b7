/* vm log NAME [-f]: the serial console log (serial.log.1, serial.log),
 * and with -f everything the guest writes from then on. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/cli.h"

static int log_write(const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(1, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

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
	r = EXIT_VM_OK;
	if (log_write(cc.buf, cc.len) < 0)
		goto out;
	for (;;) {
		n = read(cc.fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (log_write(chunk, (size_t)n) < 0)
			break;
	}
out:
	client_close(&cc);
	return r;

usage:
	cli_print_usage(stderr, "log");
	return EXIT_VM_USAGE;
}
