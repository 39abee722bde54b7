/* Capped, rotated logs of what a VM writes.  See serial.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "engine/serial.h"

static void serial_ready(struct loop_source *src, uint32_t events);

static int serial_open_log(struct serial *s)
{
	struct stat st;

	s->log_fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
			 O_NOFOLLOW, 0640);
	if (s->log_fd < 0)
		return -1;
	s->size = fstat(s->log_fd, &st) == 0 ? (size_t)st.st_size : 0;
	return 0;
}

int serial_open(struct serial *s, struct loop *loop, int fd, const char *dir,
		const char *name, const char *vm, size_t cap, bool use_syslog)
{
	memset(s, 0, sizeof *s);
	s->loop = loop;
	s->vm = vm;
	s->cap = cap;
	s->syslog = use_syslog;
	s->log_fd = -1;
	s->src = (struct loop_source){ fd, serial_ready, s };
	if (asprintf(&s->path, "%s/%s", dir, name) < 0)
		goto fail;
	if (asprintf(&s->path_old, "%s/%s.1", dir, name) < 0)
		goto fail_path;
	if (serial_open_log(s) < 0)
		goto fail_old;
	if (fd >= 0 && loop_add(loop, &s->src, EPOLLIN) < 0)
		goto fail_log;
	return 0;

fail_log:
	close(s->log_fd);
fail_old:
	free(s->path_old);
fail_path:
	free(s->path);
fail:
	s->path = s->path_old = NULL;
	return -1;
}

/* One generation is kept: NAME becomes NAME.1. */
static void serial_rotate(struct serial *s)
{
	close(s->log_fd);
	rename(s->path, s->path_old);
	if (serial_open_log(s) < 0)
		s->log_fd = -1;
}

static void serial_syslog_line(struct serial *s)
{
	size_t len = s->line_len;
	struct timespec ts;

	if (!len)
		return;
	s->line_len = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec >= s->syslog_window + SERIAL_SYSLOG_WINDOW_S) {
		if (s->syslog_dropped)
			syslog(LOG_WARNING, "vm %s: %lu serial lines not sent to syslog (more than %d in %d s); serial.log has them",
			       s->vm, s->syslog_dropped, SERIAL_SYSLOG_BURST,
			       SERIAL_SYSLOG_WINDOW_S);
		s->syslog_window = ts.tv_sec;
		s->syslog_lines = 0;
		s->syslog_dropped = 0;
	}
	if (s->syslog_lines == SERIAL_SYSLOG_BURST) {
		s->syslog_dropped++;
		return;
	}
	s->syslog_lines++;
	syslog(LOG_INFO, "vm %s: %.*s", s->vm, (int)len, s->line);
}

/* Guest bytes are hostile: only printable ASCII reaches syslog. */
static void serial_syslog(struct serial *s, const char *data, size_t n)
{
	unsigned char ch;
	size_t i;

	for (i = 0; i < n; i++) {
		ch = (unsigned char)data[i];
		if (ch == '\n') {
			serial_syslog_line(s);
			continue;
		}
		if (ch == '\r')
			continue;
		if (ch == '\t')
			ch = ' ';
		else if (ch < 0x20 || ch >= 0x7f)
			ch = '?';
		s->line[s->line_len++] = (char)ch;
		if (s->line_len == sizeof s->line)
			serial_syslog_line(s);
	}
}

void serial_feed(struct serial *s, const char *data, size_t n)
{
	ssize_t w;

	if (s->size && s->size + n > s->cap)
		serial_rotate(s);
	if (s->log_fd >= 0) {
		w = write(s->log_fd, data, n);
		if (w > 0)
			s->size += (size_t)w;
	}
	if (s->syslog)
		serial_syslog(s, data, n);
	if (s->tap)
		s->tap(s->tap_arg, data, n);
}

/* Read up to budget bytes: 0 when the budget or the data ran out, -1 at
 * end of stream or on an error. */
static int serial_drain(struct serial *s, size_t budget)
{
	char chunk[4096];
	size_t total = 0;
	ssize_t n;

	while (total < budget) {
		n = read(s->src.fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		serial_feed(s, chunk, (size_t)n);
		total += (size_t)n;
	}
	return 0;
}

static void serial_ready(struct loop_source *src, uint32_t events)
{
	struct serial *s = src->arg;

	if (serial_drain(s, SERIAL_READ_BUDGET) < 0) {
		/* The writer is gone; its exit arrives through the pidfd. */
		loop_del(s->loop, &s->src);
		close(s->src.fd);
		s->src.fd = -1;
	}
}

void serial_close(struct serial *s)
{
	if (s->src.fd >= 0) {
		/* What the writer wrote before it went, within reason. */
		serial_drain(s, s->cap);
		loop_del(s->loop, &s->src);
		close(s->src.fd);
		s->src.fd = -1;
	}
	if (s->syslog)
		serial_syslog_line(s);
	if (s->log_fd >= 0)
		close(s->log_fd);
	s->log_fd = -1;
	free(s->path);
	free(s->path_old);
	s->path = s->path_old = NULL;
}
