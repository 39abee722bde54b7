/* vm log NAME [-f]: the serial console log (serial.log.1, serial.log),
 * and with -f everything the guest writes from then on. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/cli.h"

/* What a guest wrote, for a terminal: control characters (an escape
 * sequence could rewrite the screen or the terminal's settings) shown as
 * \xNN, C1 controls (U+0080..U+009F) too; line ends and tabs kept.
 * pending holds a 0xC2 that ended the last chunk. */
static int log_write_safe(const char *data, size_t n, bool *pending)
{
	char out[4 * 8192 + 8];
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)data[i];

		if (*pending) {
			*pending = false;
			if (c >= 0x80 && c <= 0x9f) {
				o += (size_t)sprintf(out + o, "\\xc2\\x%02x", c);
				continue;
			}
			out[o++] = (char)0xc2;
		}
		if (c == 0xc2) {
			*pending = true;
		} else if ((c < 0x20 && c != '\n' && c != '\t' && c != '\r') ||
			   c == 0x7f) {
			o += (size_t)sprintf(out + o, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	return client_write_all(1, out, o);
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
	bool follow = false, tty = isatty(1), pending = false;
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
	/* Into a pipe or a file the log goes as it is. */
	for (size_t off = 0; off < cc.len; off += (size_t)n) {
		n = (ssize_t)(cc.len - off < sizeof chunk ? cc.len - off : sizeof chunk);
		if ((tty ? log_write_safe(cc.buf + off, (size_t)n, &pending) :
		     client_write_all(1, cc.buf + off, (size_t)n)) < 0)
			goto out;
	}
	for (;;) {
		n = read(cc.fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if ((tty ? log_write_safe(chunk, (size_t)n, &pending) :
		     client_write_all(1, chunk, (size_t)n)) < 0)
			break;
	}
out:
	client_close(&cc);
	return r;

usage:
	cli_print_usage(stderr, "log");
	return CLI_EXIT_USAGE;
}
