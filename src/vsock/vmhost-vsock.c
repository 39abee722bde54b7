/* vmhost-vsock: the vhost-user-vsock backend of one VM.  QEMU's
 * vhost-user-vsock-pci device talks to it over one unix socket (--fd, as
 * virtiofsd's, or --socket-path); a guest connect() to the host (CID 2) on
 * an allowed --port P becomes a connection to the unix socket BASE_P.
 * One process per VM, single-threaded, epoll; it exits when QEMU hangs up.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vsock/sandbox.h"
#include "vsock/vhostuser.h"
#include "vsock/vsockdev.h"

#define DEFAULT_GUEST_CID 3
#define DEFAULT_MAX_CONNS 32
#define DEFAULT_BUF_SIZE (256u * 1024)

/* epoll tags: kind in the high word, index in the low one. */
enum { TAG_VHOST = 1, TAG_KICK, TAG_CONN, TAG_SIGNAL };
#define TAG(kind, i) ((uint64_t)(kind) << 32 | (uint32_t)(i))

struct backend {
	const char *name;
	int epfd;
	struct vu_dev vu;
	struct vsockdev *dev;
	int kick_watched[VU_RINGS];
	bool attached;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vmhost-vsock (--fd N | --socket-path PATH) --base PATH --port P [--port P...]\n"
		"                    [--guest-cid CID] [--max-conns N] [--buf-size BYTES] [--name NAME]\n"
		"A guest connection to host port P is relayed to the unix socket BASE_P.\n");
}

static void backend_log(void *ctx, const char *msg)
{
	struct backend *b = ctx;

	fprintf(stderr, "vmhost-vsock: %s: %s\n", b->name, msg);
}

static int backend_watch(void *ctx, int fd, unsigned int slot)
{
	struct backend *b = ctx;
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.u64 = TAG(TAG_CONN, slot),
	};

	return epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || errno || v > max || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

/* The vhost-user connection: a connected socket, or a listening one whose
 * first connection we take. */
static int open_vhost_socket(int fd, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int accepting = 0, conn;
	socklen_t len = sizeof(accepting);

	if (path) {
		if (strlen(path) >= sizeof(sa.sun_path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		strcpy(sa.sun_path, path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(fd, 1) < 0) {
			int saved = errno;

			close(fd);
			errno = saved;
			return -1;
		}
		accepting = 1;
	} else {
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) < 0)
			return -1;
	}
	if (!accepting)
		return fd;
	do
		conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	while (conn < 0 && errno == EINTR);
	close(fd);
	if (path)
		unlink(path);
	return conn;
}

/* After a vhost-user message: watch the current kick fds, and give the
 * device its rings when both run (take them away when either stops). */
static int backend_sync(struct backend *b)
{
	bool running = true;

	for (unsigned int i = 0; i < VU_RINGS; i++) {
		int fd = b->vu.ring[i].kick_fd;

		if (fd != b->kick_watched[i]) {
			struct epoll_event ev = { .events = EPOLLIN,
						  .data.u64 = TAG(TAG_KICK, i) };

			/* A replaced fd was closed, which unwatched it. */
			if (fd >= 0 && epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
				return -1;
			b->kick_watched[i] = fd;
		}
		running = running && vu_ring_running(&b->vu, i);
	}
	if (running != b->attached) {
		if (running)
			vsockdev_attach(b->dev, &b->vu.ring[VU_RING_RX].ring,
					&b->vu.ring[VU_RING_TX].ring, &b->vu.mem);
		else
			vsockdev_attach(b->dev, NULL, NULL, NULL);
		b->attached = running;
		fprintf(stderr, "vmhost-vsock: %s: device %s\n", b->name,
			running ? "started" : "stopped");
	}
	return 0;
}

static void backend_stats(struct backend *b)
{
	struct vsockdev_stats s;

	vsockdev_get_stats(b->dev, &s);
	fprintf(stderr, "vmhost-vsock: %s: stats conns=%u opened=%" PRIu64
		" refused=%" PRIu64 " resets=%" PRIu64 " dropped=%" PRIu64
		" to_host=%" PRIu64 " to_guest=%" PRIu64 " buffered=%zu"
		" buffers=%zu\n", b->name, s.conns, s.conns_opened,
		s.conns_refused, s.resets_sent, s.packets_dropped,
		s.bytes_to_host, s.bytes_to_guest, s.buffered, s.buffer_bytes);
}

/* Serve until QEMU hangs up (0) or something fails (-1, logged). */
static int backend_loop(struct backend *b, int sigfd)
{
	bool more = false;

	for (;;) {
		struct epoll_event evs[64];
		bool work = false;
		int n = epoll_wait(b->epfd, evs, 64, more ? 0 : -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("vmhost-vsock: epoll_wait");
			return -1;
		}
		for (int i = 0; i < n; i++) {
			uint32_t kind = (uint32_t)(evs[i].data.u64 >> 32);
			uint32_t idx = (uint32_t)evs[i].data.u64;

			if (kind == TAG_VHOST) {
				struct vu_msg m;
				const char *what = "?";
				int r = vu_recv(b->vu.sock, &m);

				if (r == 0)
					return 0;
				if (r < 0 || vu_handle(&b->vu, &m, &what) < 0) {
					fprintf(stderr, "vmhost-vsock: %s: vhost-user %s (%u): %s\n",
						b->name, r < 0 ? "message" : what,
						r < 0 ? 0 : m.request, strerror(errno));
					return -1;
				}
				if (backend_sync(b) < 0) {
					perror("vmhost-vsock: epoll_ctl");
					return -1;
				}
				work = true;
			} else if (kind == TAG_KICK && idx < VU_RINGS) {
				uint64_t count;

				if (read(b->vu.ring[idx].kick_fd, &count, sizeof(count)) < 0 &&
				    errno != EAGAIN)
					return -1;
				work = true;
			} else if (kind == TAG_CONN) {
				vsockdev_conn_ready(b->dev, idx, evs[i].events);
				work = true;
			} else if (kind == TAG_SIGNAL) {
				struct signalfd_siginfo si;

				if (read(sigfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGUSR1) {
					backend_stats(b);
					continue;
				}
				return 0;
			}
		}
		if (work || more) {
			unsigned int notify = vsockdev_run(b->dev, &more);

			if (notify & VSOCKDEV_NOTIFY_RX)
				vu_ring_notify(&b->vu, VU_RING_RX);
			if (notify & VSOCKDEV_NOTIFY_TX)
				vu_ring_notify(&b->vu, VU_RING_TX);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fd", required_argument, NULL, 'f' },
		{ "socket-path", required_argument, NULL, 's' },
		{ "base", required_argument, NULL, 'b' },
		{ "port", required_argument, NULL, 'p' },
		{ "guest-cid", required_argument, NULL, 'c' },
		{ "max-conns", required_argument, NULL, 'm' },
		{ "buf-size", required_argument, NULL, 'z' },
		{ "name", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct vsockdev_config cfg = {
		.guest_cid = DEFAULT_GUEST_CID, .max_conns = DEFAULT_MAX_CONNS,
		.buf_size = DEFAULT_BUF_SIZE,
	};
	struct vsockdev_ops ops = { .watch = backend_watch, .log = backend_log };
	struct backend b = { .name = "vsock", .epfd = -1,
			     .kick_watched = { -1, -1 } };
	const char *path = NULL;
	struct epoll_event ev;
	int fd = -1, sock = -1, sigfd = -1, rc = 1, c;
	sigset_t sigs;
	uint64_t v;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_u64(optarg, INT_MAX, &v) < 0 || v < 3)
				goto bad_value;
			fd = (int)v;
			break;
		case 's':
			path = optarg;
			break;
		case 'b':
			cfg.base = optarg;
			break;
		case 'p':
			if (parse_u64(optarg, UINT32_MAX, &v) < 0)
				goto bad_value;
			if (cfg.port_count == VSOCKDEV_MAX_PORTS) {
				fprintf(stderr, "vmhost-vsock: at most %d ports\n",
					VSOCKDEV_MAX_PORTS);
				return 2;
			}
			cfg.ports[cfg.port_count++] = (uint32_t)v;
			break;
		case 'c':
			if (parse_u64(optarg, UINT32_MAX - 1, &v) < 0 || v < 3)
				goto bad_value;
			cfg.guest_cid = v;
			break;
		case 'm':
			if (parse_u64(optarg, 4096, &v) < 0 || !v)
				goto bad_value;
			cfg.max_conns = (unsigned int)v;
			break;
		case 'z':
			if (parse_u64(optarg, 1u << 30, &v) < 0 || v < 4096)
				goto bad_value;
			cfg.buf_size = (uint32_t)v;
			break;
		case 'n':
			b.name = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (fd < 0) == !path || !cfg.base || !cfg.port_count) {
		usage(stderr);
		return 2;
	}

	b.dev = vsockdev_new(&cfg, &ops, &b);
	if (!b.dev) {
		fprintf(stderr, "vmhost-vsock: %s: %s_PORT: %s\n", b.name,
			cfg.base, errno == EINVAL ? "path too long or bad limits" :
			strerror(errno));
		return 2;
	}
	sock = open_vhost_socket(fd, path);
	if (sock < 0) {
		fprintf(stderr, "vmhost-vsock: %s: vhost-user socket %s: %s\n",
			b.name, path ? path : "(--fd)", strerror(errno));
		goto fail;
	}
	vu_init(&b.vu, sock, cfg.guest_cid);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGUSR1);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	b.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sigfd < 0 || b.epfd < 0) {
		perror("vmhost-vsock: setup");
		goto fail;
	}
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = TAG(TAG_VHOST, 0) };
	if (epoll_ctl(b.epfd, EPOLL_CTL_ADD, sock, &ev) < 0)
		goto fail_epoll;
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = TAG(TAG_SIGNAL, 0) };
	if (epoll_ctl(b.epfd, EPOLL_CTL_ADD, sigfd, &ev) < 0)
		goto fail_epoll;
	fprintf(stderr, "vmhost-vsock: %s: serving guest cid %" PRIu64 ", %s_PORT\n",
		b.name, cfg.guest_cid, cfg.base);
	/* Everything is open: from here on, the allow-list. */
	if (vsock_sandbox() < 0) {
		fprintf(stderr, "vmhost-vsock: %s: seccomp: %s\n", b.name, strerror(errno));
		goto fail;
	}
	if (backend_loop(&b, sigfd) == 0)
		rc = 0;
	backend_stats(&b);
	goto fail;
fail_epoll:
	perror("vmhost-vsock: epoll_ctl");
fail:
	vsockdev_free(b.dev);
	if (sock >= 0) {
		vu_reset(&b.vu);
		close(sock);
	}
	if (b.epfd >= 0)
		close(b.epfd);
	if (sigfd >= 0)
		close(sigfd);
	return rc;
bad_value:
	fprintf(stderr, "vmhost-vsock: %s: not a valid value for %s\n",
		optarg, argv[optind - 1]);
	return 2;
}
