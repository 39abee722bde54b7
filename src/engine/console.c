/* A VM's virtio-console shared by its viewers.  See console.h. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/console.h"

static void console_ready(struct loop_source *src, uint32_t events);

int console_open(struct console *con, struct loop *loop, int fd)
{
	memset(con, 0, sizeof *con);
	con->loop = loop;
	con->src = (struct loop_source){ fd, console_ready, con };
	buf_init(&con->tx, CONSOLE_INPUT_MAX);
	if (loop_add(loop, &con->src, EPOLLIN) < 0) {
		con->src.fd = -1;
		return -1;
	}
	return 0;
}

static void console_events(struct console *con)
{
	if (con->src.fd >= 0)
		loop_mod(con->loop, &con->src,
			 EPOLLIN | (con->tx.len ? EPOLLOUT : 0));
}

static void console_record(struct console *con, const char *data, size_t n)
{
	size_t i, end;

	/* Only the tail can survive. */
	if (n > CONSOLE_SCROLLBACK) {
		data += n - CONSOLE_SCROLLBACK;
		n = CONSOLE_SCROLLBACK;
	}
	for (i = 0; i < n; i++) {
		end = (con->ring_start + con->ring_len) % CONSOLE_SCROLLBACK;
		con->ring[end] = data[i];
		if (con->ring_len < CONSOLE_SCROLLBACK)
			con->ring_len++;
		else
			con->ring_start = (con->ring_start + 1) % CONSOLE_SCROLLBACK;
	}
}

static void console_output(struct console *con, const char *data, size_t n)
{
	size_t i;

	console_record(con, data, n);
	for (i = 0; i < con->viewer_count; i++)
		control_send(con->viewers[i], data, n);
}

static void console_flush(struct console *con)
{
	ssize_t n;

	while (con->tx.len) {
		n = send(con->src.fd, con->tx.data, con->tx.len,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		buf_consume(&con->tx, (size_t)n);
	}
	console_events(con);
}

static void console_hangup(struct console *con)
{
	loop_del(con->loop, &con->src);
	close(con->src.fd);
	con->src.fd = -1;
}

static void console_ready(struct loop_source *src, uint32_t events)
{
	struct console *con = src->arg;
	char chunk[4096];
	size_t total = 0;
	ssize_t n;

	if (events & EPOLLOUT)
		console_flush(con);
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	/* Bounded per wake-up so that a flooding guest cannot starve the
	 * loop; the rest waits for the next one. */
	while (total < CONSOLE_READ_BUDGET) {
		n = recv(src->fd, chunk, sizeof chunk, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/* QEMU went away; its exit comes by pidfd. */
			console_hangup(con);
			return;
		}
		console_output(con, chunk, (size_t)n);
		total += (size_t)n;
	}
}

/* Input from a viewer.  A guest that does not read loses what overflows
 * its queue, rather than stalling every viewer. */
static void console_input(void *owner, struct client *c, const char *data,
			  size_t n)
{
	struct console *con = owner;

	if (con->src.fd < 0)
		return;
	if (n > con->tx.limit - con->tx.len)
		n = con->tx.limit - con->tx.len;
	buf_append(&con->tx, data, n);
	console_flush(con);
}

static void console_viewer_gone(void *owner, struct client *c)
{
	struct console *con = owner;
	size_t i;

	for (i = 0; i < con->viewer_count; i++) {
		if (con->viewers[i] != c)
			continue;
		con->viewers[i] = con->viewers[--con->viewer_count];
		return;
	}
}

static void console_replay(struct console *con, struct client *c)
{
	size_t first = CONSOLE_SCROLLBACK - con->ring_start;

	if (first > con->ring_len)
		first = con->ring_len;
	control_send(c, con->ring + con->ring_start, first);
	control_send(c, con->ring, con->ring_len - first);
}

int console_attach(struct console *con, struct client *c)
{
	if (con->viewer_count == CONSOLE_VIEWERS_MAX) {
		errno = EBUSY;
		return -1;
	}
	con->viewers[con->viewer_count++] = c;
	control_stream(c, con, console_input, console_viewer_gone);
	console_replay(con, c);
	return 0;
}

void console_close(struct console *con)
{
	struct client *c;

	while (con->viewer_count) {
		c = con->viewers[--con->viewer_count];
		control_disown(c);
		control_finish(c);
	}
	if (con->src.fd >= 0)
		console_hangup(con);
	buf_free(&con->tx);
}
