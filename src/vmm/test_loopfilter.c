/* Unit test of the loopback filter with real sockets: a process in a
 * cgroup2 directory with the filter cannot connect (TCP or UDP) or send
 * (UDP) to any loopback or unspecified address, IPv4, IPv6 or
 * IPv4-mapped, while a process outside can, and both still reach a
 * non-loopback address of this host.  Root and a cgroup2 mount needed:
 * skipped (not passed) otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/loopfilter.h"

#define CG2_MAGIC 0x63677270

static char cg_dir[256];

/* A cgroup2 directory of ours, or "" if this host has none. */
static int find_cgroup2(void)
{
	static const char *const mounts[] = { "/sys/fs/cgroup/unified",
					      "/sys/fs/cgroup" };
	struct statfs fs;

	for (size_t i = 0; i < 2; i++) {
		if (statfs(mounts[i], &fs) < 0 || fs.f_type != CG2_MAGIC)
			continue;
		snprintf(cg_dir, sizeof cg_dir, "%s/vmhost-test-loopfilter-%d",
			 mounts[i], (int)getpid());
		return mkdir(cg_dir, 0755);
	}
	return -1;
}

struct target {
	const char *what;
	int family, type;
	const char *addr;
	bool loopback;   /* the filter must refuse it */
};

static int listen_on(int family, int type, const char *addr, uint16_t *port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &s4->sin_addr);
		len = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
		len = sizeof *s6;
	}
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		close(fd);
		return -1;
	}
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
		      ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* 0 if reaching t at port worked, else the errno. */
static int reach(const struct target *t, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd = socket(t->family, t->type | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		return errno;
	if (t->family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, t->addr, &s4->sin_addr);
		len = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, t->addr, &s6->sin6_addr);
		len = sizeof *s6;
	}
	if (t->type == SOCK_STREAM)
		rc = connect(fd, (struct sockaddr *)&ss, len);
	else
		rc = sendto(fd, "x", 1, 0, (struct sockaddr *)&ss, len) == 1 ? 0 : -1;
	rc = rc < 0 ? errno : 0;
	close(fd);
	return rc;
}

/* A non-loopback IPv4 address of this host, or NULL. */
static const char *host_address(char *buf, size_t len)
{
	struct ifaddrs *all, *i;
	const char *found = NULL;

	if (getifaddrs(&all) < 0)
		return NULL;
	for (i = all; i && !found; i = i->ifa_next) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)i->ifa_addr;

		if (!s4 || s4->sin_family != AF_INET ||
		    (ntohl(s4->sin_addr.s_addr) >> 24) == 127)
			continue;
		found = inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)len);
	}
	freeifaddrs(all);
	return found;
}

static void test_filter(void **state)
{
	char host[64];
	struct target t[] = {
		{ "tcp 127.0.0.1", AF_INET, SOCK_STREAM, "127.0.0.1", true },
		{ "tcp 127.1.2.3", AF_INET, SOCK_STREAM, "127.1.2.3", true },
		{ "tcp 0.0.0.0", AF_INET, SOCK_STREAM, "0.0.0.0", true },
		{ "udp 127.0.0.1", AF_INET, SOCK_DGRAM, "127.0.0.1", true },
		{ "tcp ::1", AF_INET6, SOCK_STREAM, "::1", true },
		{ "tcp ::", AF_INET6, SOCK_STREAM, "::", true },
		{ "tcp ::ffff:127.0.0.1", AF_INET6, SOCK_STREAM, "::ffff:127.0.0.1", true },
		{ "udp ::1", AF_INET6, SOCK_DGRAM, "::1", true },
		{ "tcp host address", AF_INET, SOCK_STREAM, NULL, false },
	};
	size_t n = sizeof t / sizeof *t;
	uint16_t port4, port6, uport4, uport6;
	int l4, l6, u4, u6, dirfd, go[2], res[2], status;
	int got[sizeof t / sizeof *t];
	pid_t pid;

	if (geteuid() != 0 || find_cgroup2() < 0) {
		printf("no root or no cgroup2 mount: skipped\n");
		skip();
	}
	t[n - 1].addr = host_address(host, sizeof host);
	if (!t[n - 1].addr)
		n--;
	/* Listening on every address: what refuses is the filter. */
	l4 = listen_on(AF_INET, SOCK_STREAM, "0.0.0.0", &port4);
	l6 = listen_on(AF_INET6, SOCK_STREAM, "::", &port6);
	u4 = listen_on(AF_INET, SOCK_DGRAM, "127.0.0.1", &uport4);
	u6 = listen_on(AF_INET6, SOCK_DGRAM, "::1", &uport6);
	assert_true(l4 >= 0 && l6 >= 0 && u4 >= 0 && u6 >= 0);
#define PORT(x) ((x).type == SOCK_DGRAM ? ((x).family == AF_INET ? uport4 : uport6) : \
		 ((x).family == AF_INET ? port4 : port6))
	/* Outside the cgroup, everything is reachable. */
	for (size_t i = 0; i < n; i++)
		assert_int_equal(reach(&t[i], PORT(t[i])), 0);

	dirfd = open(cg_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	assert_int_equal(loopfilter_attach(dirfd), 0);
	assert_int_equal(pipe2(go, O_CLOEXEC), 0);
	assert_int_equal(pipe2(res, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char c;

		if (read(go[0], &c, 1) != 1)
			_exit(1);
		for (size_t i = 0; i < n; i++)
			got[i] = reach(&t[i], PORT(t[i]));
		_exit(write(res[1], got, sizeof got) == sizeof got ? 0 : 1);
	}
	close(res[1]);
	{
		char path[300], num[16];
		int fd;

		snprintf(path, sizeof path, "%s/cgroup.procs", cg_dir);
		snprintf(num, sizeof num, "%d", (int)pid);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, num, strlen(num)), (ssize_t)strlen(num));
		close(fd);
	}
	assert_int_equal(write(go[1], "g", 1), 1);
	assert_int_equal(read(res[0], got, sizeof got), (ssize_t)sizeof got);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (size_t i = 0; i < n; i++) {
		if (got[i] != (t[i].loopback ? EPERM : 0))
			fail_msg("%s: errno %d, want %d", t[i].what, got[i],
				 t[i].loopback ? EPERM : 0);
	}
	close(dirfd);
	close(l4);
	close(l6);
	close(u4);
	close(u6);
	assert_int_equal(rmdir(cg_dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
