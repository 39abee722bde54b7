/* libFuzzer target: control.c's connection state machine over a real
 * socket, driven without blocking.
 *
 * Input: byte 0 = write size (1..256), byte 1 = flags (bit 0: the client
 * reads its replies while writing; bit 1: it half-closes at the end
 * instead of just closing), then the bytes the client writes.  The
 * request handler is a stub with the daemon's shapes of answer: "list"
 * at once, "start" later (pending until the next round), "console" turns
 * the connection into an echoing stream, anything else an error.  After
 * every input no client may be left: a stuck or leaked connection traps.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/control.h"

static struct loop fuzz_loop;
static struct control fuzz_ctl;
static char fuzz_dir[64], fuzz_path[96];
static struct client *fuzz_waiting; /* a "start" not answered yet */
static int fuzz_viewer;             /* owner token of streaming clients */

static void fuzz_gone(void *owner, struct client *c)
{
	if (c == fuzz_waiting)
		fuzz_waiting = NULL;
}

static void fuzz_echo(void *owner, struct client *c, const char *data,
		      size_t n)
{
	control_send(c, data, n);
}

static void fuzz_request(void *arg, struct client *c, json_t *req)
{
	const char *op = json_string_value(json_object_get(req, "op"));

	if (!op)
		control_error(c, "no op");
	else if (!strcmp(op, "list"))
		control_ok(c);
	else if (!strcmp(op, "start") && !fuzz_waiting) {
		fuzz_waiting = c;
		control_own(c, NULL, fuzz_gone);
	} else if (!strcmp(op, "console"))
		control_stream(c, &fuzz_viewer, fuzz_echo, NULL);
	else
		control_error(c, "unknown op");
}

/* Run every ready callback, then answer a waiting start: one round. */
static void fuzz_round(void)
{
	struct epoll_event ev;
	struct loop_source *src;
	struct client *c;

	for (int i = 0; i < 10000; i++) {
		if (epoll_wait(fuzz_loop.epfd, &ev, 1, 0) != 1)
			break;
		src = ev.data.ptr;
		src->ready(src, ev.events);
		loop_run_deferred(&fuzz_loop);
	}
	if (fuzz_waiting) {
		c = fuzz_waiting;
		fuzz_waiting = NULL;
		control_disown(c);
		control_ok(c);
	}
}

/* Read what the daemon sent; count its lines (replies). */
static void fuzz_read(int fd, size_t *replies)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < n; i++)
			*replies += buf[i] == '\n';
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(fuzz_dir, sizeof fuzz_dir, "/dev/shm/vmhost-fuzz-XXXXXX");
	if (!mkdtemp(fuzz_dir) || loop_init(&fuzz_loop) < 0)
		exit(1);
	snprintf(fuzz_path, sizeof fuzz_path, "%s/control", fuzz_dir);
	/* The monitor binds the socket; the engine serves the fd. */
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	strcpy(sun.sun_path, fuzz_path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
	    listen(lfd, 64) < 0 ||
	    control_init(&fuzz_ctl, &fuzz_loop, lfd, getuid(), fuzz_request,
			 NULL) < 0 || control_start(&fuzz_ctl) < 0) {
		perror(fuzz_path);
		exit(1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t chunk, n, lines = 0, replies = 0;
	bool streams;
	unsigned flags;
	ssize_t w;
	int fd, i;

	if (len < 2)
		return 0;
	chunk = (size_t)data[0] + 1;
	flags = data[1];
	data += 2;
	len -= 2;
	streams = memmem(data, len, "console", 7) != NULL;
	strcpy(sun.sun_path, fuzz_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
		abort();
	fcntl(fd, F_SETFL, O_NONBLOCK);
	fuzz_round();
	while (len) {
		n = len < chunk ? len : chunk;
		w = write(fd, data, n);
		if (w > 0) {
			for (ssize_t k = 0; k < w; k++)
				lines += data[k] == '\n';
			data += w;
			len -= (size_t)w;
		}
		fuzz_round();
		if (flags & 1)
			fuzz_read(fd, &replies);
		if (w <= 0 && !(flags & 1))
			break; /* the daemon stopped reading a non-reader */
	}
	if (flags & 2) {
		shutdown(fd, SHUT_WR);
		for (i = 0; i < 8; i++) {
			fuzz_round();
			fuzz_read(fd, &replies);
		}
	}
	close(fd);
	/* One reply per request line, one more for a truncated or overlong
	 * one; never a storm of them. */
	if (!streams && replies > lines + 1)
		__builtin_trap();
	for (i = 0; i < 8 && fuzz_ctl.clients; i++)
		fuzz_round();
	if (fuzz_ctl.clients || fuzz_ctl.client_count)
		__builtin_trap(); /* a connection outlived its peer */
	return 0;
}
