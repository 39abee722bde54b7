/* Unit tests of the control protocol's parsing (control_parse,
 * proto_parse) and of the serial log's cap and syslog rate, and of the
 * same capped writer fed from a pipe (qemu.log). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/control.h"
#include "engine/proto.h"
#include "engine/serial.h"

static int parse(const char *line, struct proto_req *r, char *err,
		 size_t errlen)
{
	size_t used;
	json_t *req;
	int rc;

	rc = control_parse(line, strlen(line), &used, &req, err, errlen);
	if (rc <= 0)
		return rc ? -1 : 0;
	rc = proto_parse(req, r, err, errlen);
	json_decref(req);
	return rc < 0 ? -2 : 1;
}

static void test_framing(void **state)
{
	static const char in[] = "\n{\"op\":\"list\"}\n{\"op\"";
	char err[256];
	size_t used;
	json_t *req;

	assert_int_equal(control_parse(in, sizeof in - 1, &used, &req, err,
				       sizeof err), 0);
	assert_int_equal(used, 1);
	assert_int_equal(control_parse(in + 1, sizeof in - 2, &used, &req,
				       err, sizeof err), 1);
	assert_int_equal(used, 14);
	json_decref(req);
	/* No newline yet: nothing taken. */
	assert_int_equal(control_parse(in + 15, 5, &used, &req, err,
				       sizeof err), 0);
	assert_int_equal(used, 0);
	assert_null(req);
}

static void test_valid_requests(void **state)
{
	struct proto_req r;
	char err[256];

	assert_int_equal(parse("{\"op\":\"list\"}\n", &r, err, sizeof err), 1);
	assert_int_equal(r.op, PROTO_LIST);
	assert_int_equal(parse("{\"op\":\"stop\",\"name\":\"a\",\"force\":true,\"timeout\":3600}\n",
			       &r, err, sizeof err), 1);
	assert_int_equal(r.op, PROTO_STOP);
	assert_true(r.force && r.has_timeout);
	assert_int_equal(r.timeout, 3600);
	assert_int_equal(parse("{\"op\":\"log\",\"name\":\"a.b\",\"follow\":false}\n",
			       &r, err, sizeof err), 1);
	assert_int_equal(r.op, PROTO_LOG);
	assert_false(r.follow);
}

static void test_bad_requests(void **state)
{
	static const struct {
		const char *line;
		int rc;
		const char *err;
	} cases[] = {
		{ "{\"op\":\"list\"\n", -1, "bad request: " },
		{ "[1]\n", -1, "bad request: not a JSON object" },
		{ "{\"op\":\"list\",\"op\":\"stop\"}\n", -1, "bad request: duplicate" },
		{ "{\"op\":\"li\\u0000st\"}\n", -1, "bad request: " },
		{ "{}\n", -2, "bad request: \"op\" (a string) is missing" },
		{ "{\"op\":\"fly\"}\n", -2, "bad request: unknown op \"fly\"" },
		{ "{\"op\":\"start\"}\n", -2, "bad request: \"name\" (a string) is missing" },
		{ "{\"op\":\"start\",\"name\":\"../x\"}\n", -2, "invalid VM name \"../x\"" },
		{ "{\"op\":\"stop\",\"name\":\"a\",\"timeout\":3601}\n", -2, "bad request: timeout must be" },
		{ "{\"op\":\"stop\",\"name\":\"a\",\"force\":1}\n", -2, "bad request: \"force\" is a boolean" },
		{ "{\"op\":\"log\",\"name\":\"a\",\"follow\":\"y\"}\n", -2, "bad request: \"follow\" is a boolean" },
	};
	struct proto_req r;
	char err[256];

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		err[0] = '\0';
		assert_int_equal(parse(cases[i].line, &r, err, sizeof err),
				 cases[i].rc);
		if (strncmp(err, cases[i].err, strlen(cases[i].err)))
			fail_msg("%s: got \"%s\"", cases[i].line, err);
	}
}

static off_t size_of(const char *dir, const char *name)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* A guest that never stops writing keeps at most two generations of at
 * most cap bytes each. */
static void test_serial_cap(void **state)
{
	char dir[] = "/tmp/test-serial-XXXXXX", path[64], chunk[300];
	struct serial s;

	assert_non_null(mkdtemp(dir));
	memset(chunk, 'A', sizeof chunk);
	assert_int_equal(serial_open(&s, NULL, -1, dir, "serial.log", "vm", 1000, false), 0);
	for (int i = 0; i < 100; i++) {
		serial_feed(&s, chunk, sizeof chunk);
		assert_true(size_of(dir, "serial.log") <= 1000);
		assert_true(size_of(dir, "serial.log.1") <= 1000);
	}
	assert_int_equal(size_of(dir, "serial.log.1"), 900);
	serial_close(&s);
	snprintf(path, sizeof path, "%s/serial.log", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/serial.log.1", dir);
	unlink(path);
	rmdir(dir);
}

/* A guest printing short lines as fast as it can reaches syslog with at
 * most SERIAL_SYSLOG_BURST of them per window (LOG_PERROR shows what
 * syslog was given, /dev/log or not). */
static void test_serial_syslog_rate(void **state)
{
	char dir[] = "/tmp/test-serial-XXXXXX", path[64], out[] = "/tmp/test-syslog-XXXXXX";
	char buf[65536];
	struct serial s;
	int fd, saved, lines = 0;
	ssize_t n;

	assert_non_null(mkdtemp(dir));
	fd = mkstemp(out);
	assert_true(fd >= 0);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	openlog("test-proto", LOG_PERROR, LOG_USER);
	assert_int_equal(serial_open(&s, NULL, -1, dir, "serial.log", "vm", 1 << 20, true), 0);
	for (int i = 0; i < 1000; i++)
		serial_feed(&s, "y\n", 2);
	serial_close(&s);
	closelog();
	dup2(saved, STDERR_FILENO);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf, sizeof buf - 1)) > 0) {
		buf[n] = '\0';
		for (char *p = buf; (p = strstr(p, "vm vm: y")); p++)
			lines++;
	}
	close(fd);
	unlink(out);
	assert_int_equal(lines, SERIAL_SYSLOG_BURST);
	snprintf(path, sizeof path, "%s/serial.log", dir);
	unlink(path);
	rmdir(dir);
}

/* A helper's stderr as vmstate.c plumbs it: a non-blocking pipe drained
 * on each wake-up at most SERIAL_READ_BUDGET bytes at a time (so a
 * flooding QEMU cannot starve the loop) into a capped qemu.log. */
static void test_pipe_log(void **state)
{
	char dir[] = "/tmp/test-qemulog-XXXXXX", path[64], chunk[4096], tail[11];
	struct serial s;
	struct loop l;
	int p[2], left, fd;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(loop_init(&l), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_true(fcntl(p[0], F_SETPIPE_SZ, 4 * SERIAL_READ_BUDGET) >= 0);
	assert_int_equal(serial_open(&s, &l, p[0], dir, "qemu.log", "vm",
				     10000, false), 0);
	memset(chunk, 'Q', sizeof chunk);
	for (int i = 0; i < 2 * SERIAL_READ_BUDGET / (int)sizeof chunk; i++)
		assert_int_equal(write(p[1], chunk, sizeof chunk), sizeof chunk);
	/* One wake-up takes one budget and leaves the rest for the next. */
	s.src.ready(&s.src, EPOLLIN);
	assert_int_equal(ioctl(p[0], FIONREAD, &left), 0);
	assert_int_equal(left, SERIAL_READ_BUDGET);
	assert_true(size_of(dir, "qemu.log") <= 10000);
	assert_true(size_of(dir, "qemu.log.1") <= 10000);
	assert_int_equal(write(p[1], "last words\n", 11), 11);
	close(p[1]);
	s.src.ready(&s.src, EPOLLIN);
	assert_int_equal(ioctl(p[0], FIONREAD, &left), 0);
	assert_int_equal(left, 11);
	/* The writer is gone: what is left is read at close, up to EOF. */
	serial_close(&s);
	assert_int_equal(fcntl(p[0], F_GETFD), -1);
	assert_true(size_of(dir, "qemu.log") <= 10000);
	assert_true(size_of(dir, "qemu.log.1") <= 10000);
	snprintf(path, sizeof path, "%s/qemu.log", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, tail, sizeof tail,
			       size_of(dir, "qemu.log") - 11), 11);
	assert_memory_equal(tail, "last words\n", 11);
	close(fd);
	unlink(path);
	snprintf(path, sizeof path, "%s/qemu.log.1", dir);
	unlink(path);
	rmdir(dir);
	loop_fini(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_valid_requests),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_serial_cap),
		cmocka_unit_test(test_serial_syslog_rate),
		cmocka_unit_test(test_pipe_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
