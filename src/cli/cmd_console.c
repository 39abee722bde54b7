/* vm console NAME: attach to the VM's virtio-console (hvc0).
 *
 * On a terminal: raw mode, Ctrl-] detaches.  Otherwise stdin and stdout
 * are piped as they are, so scripts can drive the guest; after stdin ends,
 * output is still copied until the guest has been quiet for --linger
 * seconds (default 2) or the VM stops. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/cli.h"

#define CONSOLE_DETACH 0x1d /* Ctrl-] */

/* Copy between the terminal (or pipes) and the daemon until detach, the
 * end of the stream, the linger time after stdin ends, or a signal on
 * sigfd (-1: none): then its number. */
static int console_pump(int sock, bool tty, int linger_ms, int sigfd)
{
	struct pollfd p[3] = {
		{ .fd = 0, .events = POLLIN },
		{ .fd = sock, .events = POLLIN },
		{ .fd = sigfd, .events = POLLIN },
	};
	struct signalfd_siginfo si;
	char chunk[4096], *detach;
	bool in_open = true;
	ssize_t n;
	int r;

	for (;;) {
		p[0].fd = in_open ? 0 : -1;
		r = poll(p, 3, in_open ? -1 : linger_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0; /* quiet for the linger time */
		if (p[2].revents && read(sigfd, &si, sizeof si) == sizeof si)
			return (int)si.ssi_signo;
		if (p[1].revents) {
			n = read(sock, chunk, sizeof chunk);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return 0; /* the VM stopped */
			if (client_write_all(1, chunk, (size_t)n) < 0)
				return -1;
		}
		if (in_open && p[0].revents) {
			n = read(0, chunk, sizeof chunk);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				in_open = false;
				continue;
			}
			detach = tty ? memchr(chunk, CONSOLE_DETACH, (size_t)n) : NULL;
			if (detach)
				n = detach - chunk;
			if (n && client_write_all(sock, chunk, (size_t)n) < 0)
				return 0;
			if (detach)
				return 0;
		}
	}
}

int cmd_console(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "linger", required_argument, NULL, 'l' },
		{ "state-dir", required_argument, NULL, 's' },
		{ 0 },
	};
	struct client_conn cc;
	struct termios saved, raw;
	const char *state_dir = NULL;
	json_t *req, *reply = NULL;
	sigset_t stop_signals, old_mask;
	double linger = 2;
	bool tty;
	char *end;
	int opt, r, sigfd = -1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's': state_dir = optarg; break;
		case 'l':
			linger = strtod(optarg, &end);
			if (*end || linger < 0 || linger > 86400) {
				fprintf(stderr, "vm console: --linger %s: give seconds\n",
					optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		default: goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	req = json_pack("{s:s,s:s}", "op", "console", "name", argv[optind]);
	r = client_call("console", client_state_dir(state_dir), req, &reply, &cc);
	json_decref(req);
	if (r)
		return r;
	json_decref(reply);

	tty = isatty(0) && tcgetattr(0, &saved) == 0;
	fprintf(stderr, "Connected to %s; detach with Ctrl-]%s\n", argv[optind],
		tty ? "" : " (stdin is not a terminal: piping)");
	if (tty) {
		/* A signal that would end vm ends the session instead, so
		 * that the terminal is given back as it was. */
		sigemptyset(&stop_signals);
		sigaddset(&stop_signals, SIGTERM);
		sigaddset(&stop_signals, SIGHUP);
		sigaddset(&stop_signals, SIGINT);
		sigaddset(&stop_signals, SIGQUIT);
		sigprocmask(SIG_BLOCK, &stop_signals, &old_mask);
		sigfd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
	}
	r = client_write_all(1, cc.buf, cc.len) < 0 ? -1 : 0;
	if (r == 0)
		r = console_pump(cc.fd, tty, (int)(linger * 1000), sigfd);
	if (tty) {
		tcsetattr(0, TCSANOW, &saved);
		fprintf(stderr, "\r\nDetached from %s\n", argv[optind]);
	}
	client_close(&cc);
	if (tty) {
		if (sigfd >= 0)
			close(sigfd);
		/* End as the signal would have ended vm. */
		if (r > 0)
			signal(r, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
		if (r > 0)
			raise(r);
	}
	return r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;

usage:
	cli_print_usage(stderr, "console");
	return CLI_EXIT_USAGE;
}
