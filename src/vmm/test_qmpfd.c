/* Unit tests of qmp_send: a command line with a descriptor attached, as
 * QMP's getfd expects it. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/qmp.h"

/* Read one message from sock: its bytes and the fd that came with it. */
static ssize_t recv_with_fd(int sock, char *buf, size_t len, int *fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

	*fd = -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(cm), sizeof(int));
	return n;
}

static void test_fd_arrives_with_line(void **state)
{
	json_t *args = json_pack("{s:s}", "fdname", "link-a546");
	struct stat a, b;
	char buf[256];
	size_t len;
	char *line = qmp_command("getfd", args, 9, &len);
	int sv[2], fd, got;
	ssize_t n;

	assert_non_null(line);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(qmp_send(sv[0], line, len, fd), 0);
	n = recv_with_fd(sv[1], buf, sizeof(buf) - 1, &got);
	assert_int_equal(n, (ssize_t)len);
	buf[n] = '\0';
	assert_string_equal(buf, line);
	assert_true(got >= 0 && got != fd);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(fstat(got, &b), 0);
	assert_true(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
	/* The sender keeps its own copy. */
	assert_int_equal(fcntl(fd, F_GETFD), FD_CLOEXEC);
	close(got);
	close(fd);
	close(sv[0]);
	close(sv[1]);
	free(line);
	json_decref(args);
}

static void test_no_fd(void **state)
{
	char buf[64];
	int sv[2], got;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(qmp_send(sv[0], "{}\n", 3, -1), 0);
	assert_int_equal(recv_with_fd(sv[1], buf, sizeof(buf), &got), 3);
	assert_int_equal(got, -1);
	close(sv[0]);
	close(sv[1]);
}

static void test_peer_gone(void **state)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	errno = 0;
	assert_int_equal(qmp_send(sv[0], "{}\n", 3, 0), -1);
	assert_int_equal(errno, EPIPE);
	close(sv[0]);
}

/* A full socket is reported, never waited on. */
static void test_full_socket_does_not_block(void **state)
{
	static char big[1 << 16];
	int sv[2], r = 0, i;

	memset(big, ' ', sizeof(big));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	for (i = 0; i < 256 && r == 0; i++)
		r = qmp_send(sv[0], big, sizeof(big), -1);
	assert_int_equal(r, -1);
	assert_int_equal(errno, EAGAIN);
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_arrives_with_line),
		cmocka_unit_test(test_no_fd),
		cmocka_unit_test(test_peer_gone),
		cmocka_unit_test(test_full_socket_does_not_block),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
