/* Unit tests of the vhost-user backend protocol: a test frontend on a
 * socketpair sends what QEMU would (and what it should not). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "vsock/vhostuser.h"

#define MEM_SIZE (1u << 20)
#define MEM_UVA 0x10000000ull

struct fx {
	int front, back;
	struct vu_dev d;
	int memfd;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int sv[2];

	assert_non_null(f);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->front = sv[0];
	f->back = sv[1];
	vu_init(&f->d, f->back, 3);
	f->memfd = memfd_create("guest", MFD_CLOEXEC);
	assert_true(f->memfd >= 0);
	assert_int_equal(ftruncate(f->memfd, MEM_SIZE), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	vu_reset(&f->d);
	close(f->front);
	close(f->back);
	close(f->memfd);
	free(f);
	return 0;
}

/* Send a message as the frontend, flags = version 1. */
static void send_msg(struct fx *f, uint32_t req, uint32_t flags, const void *payload,
		     uint32_t size, const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	uint8_t buf[12 + 512];
	struct iovec iov = { buf, 12 + size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	memcpy(buf, &req, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	if (size)
		memcpy(buf + 12, payload, size);
	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(f->front, &mh, 0), (ssize_t)(12 + size));
}

/* The backend reads and handles one message: its vu_handle result. */
static int handle(struct fx *f)
{
	struct vu_msg m;
	const char *what;

	assert_int_equal(vu_recv(f->back, &m), 1);
	return vu_handle(&f->d, &m, &what);
}

static int req(struct fx *f, uint32_t req, const void *payload, uint32_t size,
	       const int *fds, unsigned int nfds)
{
	send_msg(f, req, 1, payload, size, fds, nfds);
	return handle(f);
}

/* Read a reply: its payload size, which must match req. */
static uint32_t reply(struct fx *f, uint32_t req, void *payload)
{
	uint32_t hdr[3];

	assert_int_equal(read(f->front, hdr, 12), 12);
	assert_int_equal(hdr[0], req);
	assert_int_equal(hdr[1], 1 | 4);
	if (hdr[2])
		assert_int_equal(read(f->front, payload, hdr[2]), (ssize_t)hdr[2]);
	return hdr[2];
}

static void test_features_and_config(void **state)
{
	struct fx *f = *state;
	uint8_t cfg[12 + 8];
	uint64_t v;

	assert_int_equal(req(f, 1, NULL, 0, NULL, 0), 0);
	assert_int_equal(reply(f, 1, &v), 8);
	assert_true(v & (1ull << 32));
	assert_true(v & (1ull << 30));
	assert_int_equal(req(f, 15, NULL, 0, NULL, 0), 0);
	assert_int_equal(reply(f, 15, &v), 8);
	assert_int_equal(v, 1ull << 9);
	v = 1ull << 9;
	assert_int_equal(req(f, 16, &v, 8, NULL, 0), 0);
	/* Features we did not offer are refused. */
	v = 1ull << 0;
	assert_int_equal(req(f, 16, &v, 8, NULL, 0), -1);
	assert_int_equal(errno, EINVAL);
	v = (1ull << 32) | (1ull << 28);
	assert_int_equal(req(f, 2, &v, 8, NULL, 0), -1);
	v = (1ull << 32) | (1ull << 30);
	assert_int_equal(req(f, 2, &v, 8, NULL, 0), 0);

	/* The guest CID, whole or in part; nothing past the 8 bytes. */
	uint32_t c[3] = { 0, 8, 0 };
	memcpy(cfg, c, 12);
	assert_int_equal(req(f, 24, cfg, 12 + 8, NULL, 0), 0);
	assert_int_equal(reply(f, 24, cfg), 20);
	memcpy(&v, cfg + 12, 8);
	assert_int_equal(v, 3);
	c[0] = 4;
	c[1] = 5;
	memcpy(cfg, c, 12);
	assert_int_equal(req(f, 24, cfg, 12 + 5, NULL, 0), -1);
	assert_int_equal(errno, EINVAL);
	/* A request we do not know ends the session. */
	assert_int_equal(req(f, 99, NULL, 0, NULL, 0), -1);
	assert_int_equal(errno, EPROTO);
}

struct region {
	uint64_t gpa, size, uva, off;
};

static int mem_table(struct fx *f, const struct region *r, uint32_t n,
		     const int *fds, unsigned int nfds)
{
	uint8_t buf[8 + 8 * sizeof(struct region)];
	uint32_t hdr[2] = { n, 0 };

	memcpy(buf, hdr, 8);
	memcpy(buf + 8, r, n * sizeof(*r));
	return req(f, 5, buf, 8 + n * sizeof(*r), fds, nfds);
}

static void test_mem_table(void **state)
{
	struct fx *f = *state;
	struct region r[2] = {
		{ 0, MEM_SIZE / 2, MEM_UVA, 0 },
		{ MEM_SIZE / 2, MEM_SIZE / 2, MEM_UVA + MEM_SIZE / 2, MEM_SIZE / 2 },
	};
	int fds[2] = { f->memfd, f->memfd };

	assert_int_equal(mem_table(f, r, 2, fds, 2), 0);
	assert_int_equal(f->d.mem.count, 2);
	assert_non_null(guestmem_gpa(&f->d.mem, MEM_SIZE / 2 - 8, 8));
	/* Across the two regions: refused. */
	assert_null(guestmem_gpa(&f->d.mem, MEM_SIZE / 2 - 8, 16));
	assert_null(guestmem_gpa(&f->d.mem, MEM_SIZE, 1));
	assert_null(guestmem_gpa(&f->d.mem, UINT64_MAX, 2));
	/* The same bytes through both mappings and the fd. */
	uint8_t *p = guestmem_uva(&f->d.mem, MEM_UVA + MEM_SIZE - 4, 4);
	memcpy(p, "abcd", 4);
	char back[4];
	assert_int_equal(pread(f->memfd, back, 4, MEM_SIZE - 4), 4);
	assert_memory_equal(back, "abcd", 4);

	/* An fd short, overlapping guest ranges, a size that wraps. */
	assert_int_equal(mem_table(f, r, 2, fds, 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(f->d.mem.count, 0);
	r[1].gpa = 4096;
	assert_int_equal(mem_table(f, r, 2, fds, 2), -1);
	assert_int_equal(errno, EINVAL);
	r[0].size = UINT64_MAX;
	assert_int_equal(mem_table(f, r, 1, fds, 1), -1);
	assert_int_equal(f->d.mem.count, 0);
}

static void test_ring_lifecycle(void **state)
{
	struct fx *f = *state;
	struct region r = { 0, MEM_SIZE, MEM_UVA, 0 };
	uint32_t st[2];
	uint64_t v;
	int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC);

	v = (1ull << 32) | (1ull << 30);
	assert_int_equal(req(f, 2, &v, 8, NULL, 0), 0);
	assert_int_equal(mem_table(f, &r, 1, &f->memfd, 1), 0);
	st[0] = 1;
	st[1] = 100; /* not a power of two */
	assert_int_equal(req(f, 8, st, 8, NULL, 0), -1);
	st[1] = 256;
	assert_int_equal(req(f, 8, st, 8, NULL, 0), 0);
	st[0] = 2; /* only rings 0 and 1 */
	assert_int_equal(req(f, 8, st, 8, NULL, 0), -1);
	st[0] = 1;
	st[1] = 7;
	assert_int_equal(req(f, 10, st, 8, NULL, 0), 0);

	uint8_t addr[40] = { 0 };
	uint32_t index = 1;
	uint64_t a[3] = { MEM_UVA, MEM_UVA + 0x2000, MEM_UVA + 0x1000 };
	memcpy(addr, &index, 4);
	memcpy(addr + 8, a, sizeof(a));
	assert_int_equal(req(f, 9, addr, 40, NULL, 0), 0);
	v = 1;
	assert_int_equal(req(f, 13, &v, 8, &call, 1), 0);
	assert_int_equal(req(f, 12, &v, 8, &kick, 1), 0);
	/* Started, but protocol features were acked: disabled until enabled. */
	assert_true(f->d.ring[1].started);
	assert_false(vu_ring_running(&f->d, 1));
	st[1] = 1;
	assert_int_equal(req(f, 18, st, 8, NULL, 0), 0);
	assert_true(vu_ring_running(&f->d, 1));
	assert_int_equal(f->d.ring[1].ring.last_avail, 7);

	/* Stop: the base comes back, the ring no longer runs. */
	st[1] = 0;
	assert_int_equal(req(f, 11, st, 8, NULL, 0), 0);
	assert_int_equal(reply(f, 11, st), 8);
	assert_int_equal(st[0], 1);
	assert_int_equal(st[1], 7);
	assert_false(vu_ring_running(&f->d, 1));
	assert_int_equal(f->d.ring[1].kick_fd, -1);

	/* A ring outside guest memory cannot start. */
	a[0] = MEM_UVA + MEM_SIZE - 16;
	memcpy(addr + 8, a, sizeof(a));
	assert_int_equal(req(f, 9, addr, 40, NULL, 0), 0);
	kick = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(req(f, 12, &v, 8, &kick, 1), -1);
	assert_int_equal(errno, EFAULT);
	/* No fd for the kick (polling) is not supported. */
	v = 1 | (1u << 8);
	assert_int_equal(req(f, 12, &v, 8, NULL, 0), -1);
	assert_int_equal(errno, EINVAL);
}

static void test_framing(void **state)
{
	struct fx *f = *state;
	struct vu_msg m;
	uint64_t v = 0;

	/* Wrong version. */
	send_msg(f, 1, 2, NULL, 0, NULL, 0);
	assert_int_equal(vu_recv(f->back, &m), -1);
	assert_int_equal(errno, EBADMSG);
	/* A size beyond any message we take. */
	uint32_t hdr[3] = { 1, 1, 100000 };
	assert_int_equal(write(f->front, hdr, 12), 12);
	assert_int_equal(vu_recv(f->back, &m), -1);
	assert_int_equal(errno, EBADMSG);
	/* A payload too short for its request. */
	assert_int_equal(req(f, 2, &v, 4, NULL, 0), -1);
	assert_int_equal(errno, EINVAL);
	/* The frontend hangs up. */
	close(f->front);
	f->front = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(vu_recv(f->back, &m), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_features_and_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mem_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
