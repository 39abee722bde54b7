/* vsock-relay: the guest end of vmhost's host services over AF_VSOCK.
 *
 *   vsock-relay listen PATH PORT   accept on the unix socket PATH; relay
 *                                  each connection to the host (CID 2)
 *                                  port PORT over its own vsock connection
 *   vsock-relay connect PORT       relay stdin/stdout to host port PORT
 *
 * The Wayland path uses the first: waypipe's server connects to PATH once
 * per application, and the host's vmhost-vsock turns each vsock connection
 * into one to the host end's socket.  Static (musl), one forked child per
 * connection, plain read/write with half-closes passed on.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define RELAY_BUF (64 * 1024)

static int vsock_connect(unsigned int port)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST,
		.svm_port = port,
	};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* One direction: in_fd to out_fd.  Returns 1 moved, 0 EOF, -1 error. */
static int relay_once(int in_fd, int out_fd, char *buf)
{
	ssize_t n, off = 0;

	do
		n = read(in_fd, buf, RELAY_BUF);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -1 : 0;
	while (off < n) {
		ssize_t w = write(out_fd, buf + off, (size_t)(n - off));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += w;
	}
	return 1;
}

/* Relay a_in -> b and b -> a_out until both directions end. */
static int relay(int a_in, int a_out, int b)
{
	static char buf[RELAY_BUF];
	struct pollfd p[2] = { { .fd = a_in, .events = POLLIN },
			       { .fd = b, .events = POLLIN } };
	int open_dirs = 2;

	while (open_dirs) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (int i = 0; i < 2; i++) {
			int out = i == 0 ? b : a_out, r;

			if (p[i].fd < 0 || !p[i].revents)
				continue;
			r = relay_once(p[i].fd, out, buf);
			if (r < 0)
				return -1;
			if (r == 0) {
				/* Pass the half-close on. */
				if (shutdown(out, SHUT_WR) < 0 && errno == ENOTSOCK)
					close(out);
				p[i].fd = -1;
				open_dirs--;
			}
		}
	}
	return 0;
}

static int parse_port(const char *s, unsigned int *port)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v > UINT_MAX - 1 || s[0] == '-')
		return -1;
	*port = (unsigned int)v;
	return 0;
}

static int cmd_connect(unsigned int port)
{
	int fd = vsock_connect(port);

	if (fd < 0) {
		fprintf(stderr, "vsock-relay: host port %u: %s\n", port, strerror(errno));
		return 1;
	}
	return relay(0, 1, fd) < 0 ? 1 : 0;
}

static int cmd_listen(const char *path, unsigned int port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct sigaction sig = { .sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT };
	int lfd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vsock-relay: %s: path too long\n", path);
		return 2;
	}
	strcpy(sa.sun_path, path);
	/* Children are not waited for. */
	sigaction(SIGCHLD, &sig, NULL);
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 16) < 0) {
		fprintf(stderr, "vsock-relay: %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (;;) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		pid_t pid;

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "vsock-relay: accept: %s\n", strerror(errno));
			return 1;
		}
		pid = fork();
		if (pid == 0) {
			int vfd;

			close(lfd);
			vfd = vsock_connect(port);
			if (vfd < 0) {
				fprintf(stderr, "vsock-relay: host port %u: %s\n",
					port, strerror(errno));
				_exit(1);
			}
			_exit(relay(cfd, cfd, vfd) < 0 ? 1 : 0);
		}
		if (pid < 0)
			fprintf(stderr, "vsock-relay: fork: %s\n", strerror(errno));
		close(cfd);
	}
}

int main(int argc, char **argv)
{
	unsigned int port;

	if (argc == 3 && !strcmp(argv[1], "connect") && !parse_port(argv[2], &port))
		return cmd_connect(port);
	if (argc == 4 && !strcmp(argv[1], "listen") && !parse_port(argv[3], &port))
		return cmd_listen(argv[2], port);
	fprintf(stderr, "usage: vsock-relay listen PATH PORT | vsock-relay connect PORT\n");
	return 2;
}
