#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/client.h"
#include "common/text.h"

const char *client_state_dir(const char *opt)
{
	const char *env;

	if (opt)
		return opt;
	env = getenv("VMHOST_STATE_DIR");
	if (env && *env)
		return env;
	return CLIENT_DEFAULT_STATE_DIR;
}

int client_open(struct client_conn *cc, const char *state_dir)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int n, e;

	cc->buf = NULL;
	cc->len = 0;
	n = snprintf(sun.sun_path, sizeof sun.sun_path, "%s/control", state_dir);
	if (n < 0 || (size_t)n >= sizeof sun.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	cc->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cc->fd < 0)
		return -1;
	if (connect(cc->fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		e = errno;
		close(cc->fd);
		cc->fd = -1;
		errno = e;
		return -1;
	}
	return 0;
}

void client_close(struct client_conn *cc)
{
	if (cc->fd >= 0)
		close(cc->fd);
	cc->fd = -1;
	free(cc->buf);
	cc->buf = NULL;
	cc->len = 0;
}

int client_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int client_request(struct client_conn *cc, const json_t *req, json_t **reply)
{
	size_t cap = 0, line;
	json_error_t err;
	char *s, *nl, *p;
	ssize_t n;
	int r;

	s = json_dumps(req, JSON_COMPACT);
	if (!s)
		return -1;
	/* One write for the whole line: the daemon acts on it at once
	 * instead of waking once for the request and again for its end. */
	line = strlen(s);
	nl = realloc(s, line + 2);
	if (!nl) {
		free(s);
		return -1;
	}
	s = nl;
	memcpy(s + line, "\n", 2);
	r = client_write_all(cc->fd, s, line + 1);
	free(s);
	if (r < 0)
		return -1;

	free(cc->buf);
	cc->buf = NULL;
	cc->len = 0;
	for (;;) {
		if (cc->len && (nl = memchr(cc->buf, '\n', cc->len)))
			break;
		if (cc->len == CLIENT_REPLY_MAX) {
			errno = EMSGSIZE;
			return -1;
		}
		if (cc->len == cap) {
			/* Most replies (a list of 100 VMs is ~8 KiB) in one recv. */
			cap = cap ? cap * 2 : CLIENT_REPLY_FIRST;
			if (cap > CLIENT_REPLY_MAX)
				cap = CLIENT_REPLY_MAX;
			p = realloc(cc->buf, cap);
			if (!p)
				return -1;
			cc->buf = p;
		}
		n = recv(cc->fd, cc->buf + cc->len, cap - cc->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = ECONNRESET;
			return -1;
		}
		cc->len += (size_t)n;
	}
	line = (size_t)(nl - cc->buf);
	*reply = json_loadb(cc->buf, line, 0, &err);
	memmove(cc->buf, nl + 1, cc->len - line - 1);
	cc->len -= line + 1;
	if (!*reply || !json_is_object(*reply)) {
		json_decref(*reply);
		errno = EPROTO;
		return -1;
	}
	return 0;
}

const char *cli_text(const char *s)
{
	static char *ring[8];
	static unsigned int next;
	char **slot;

	if (!s)
		return "-";
	if (text_printable(s, strlen(s)))
		return s;
	/* The daemon's text (a QEMU error, a file name chosen by a VM
	 * directory's owner) must not drive the terminal. */
	slot = &ring[next++ % 8];
	free(*slot);
	*slot = text_escape(s, strlen(s), 4096, TEXT_UTF8);
	return *slot ? *slot : "?";
}

const char *cli_str(const json_t *o, const char *key)
{
	return cli_text(json_string_value(json_object_get(o, key)));
}

void client_print_error(const char *verb, const json_t *reply)
{
	json_t *diags = json_object_get(reply, "diagnostics");
	json_t *d;
	size_t i;

	json_array_foreach(diags, i, d)
		fprintf(stderr, "%s\n", cli_text(json_string_value(d)));
	fprintf(stderr, "vm %s: %s\n", verb,
		json_is_string(json_object_get(reply, "error")) ?
		cli_str(reply, "error") : "unknown error");
}

int client_call(const char *verb, const char *state_dir, json_t *req,
		json_t **reply, struct client_conn *cc)
{
	struct client_conn local;
	json_t *rep = NULL;

	if (!cc)
		cc = &local;
	if (client_open(cc, state_dir) < 0) {
		fprintf(stderr, "vm %s: no daemon at %s/control: %s\n", verb,
			state_dir, strerror(errno));
		return CLI_EXIT_NODAEMON;
	}
	if (client_request(cc, req, &rep) < 0) {
		fprintf(stderr, "vm %s: %s/control: %s\n", verb, state_dir,
			strerror(errno));
		client_close(cc);
		return CLI_EXIT_NODAEMON;
	}
	if (cc == &local)
		client_close(cc);
	if (!json_is_true(json_object_get(rep, "ok"))) {
		client_print_error(verb, rep);
		json_decref(rep);
		if (cc != &local)
			client_close(cc);
		return CLI_EXIT_FAIL;
	}
	if (reply)
		*reply = rep;
	else
		json_decref(rep);
	return CLI_EXIT_OK;
}

int client_show(int argc, char **argv, const char *op, bool named,
		const char *key, void (*print_text)(json_t *value))
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "state-dir", required_argument, NULL, 's' },
		{ 0 },
	};
	const char *state_dir = NULL;
	json_t *req, *reply = NULL, *value;
	bool as_json = false;
	char *text;
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': as_json = true; break;
		case 's': state_dir = optarg; break;
		default: goto usage;
		}
	}
	if (optind != argc - (named ? 1 : 0))
		goto usage;
	req = named ? json_pack("{s:s,s:s}", "op", op, "name", argv[optind]) :
		      json_pack("{s:s}", "op", op);
	r = client_call(op, client_state_dir(state_dir), req, &reply, NULL);
	json_decref(req);
	if (r)
		return r;
	value = json_object_get(reply, key);
	if (as_json) {
		/* Dumped to memory and written at once: json_dumpf writes each
		 * token with its own fwrite, which cost as much as the parse. */
		text = json_dumps(value, JSON_INDENT(2));
		if (!text) {
			json_decref(reply);
			fprintf(stderr, "vm %s: the daemon's reply has no %s\n",
				op, key);
			return CLI_EXIT_FAIL;
		}
		fputs(text, stdout);
		putchar('\n');
		free(text);
	} else {
		print_text(value);
	}
	json_decref(reply);
	return CLI_EXIT_OK;

usage:
	cli_print_usage(stderr, op);
	return CLI_EXIT_USAGE;
}
