/* Unit tests of the vsock device: streams, credit, refusals, and hostile
 * rings, driven by the fake guest driver (testdrv.h) against real unix
 * sockets in a private directory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "vsock/testdrv.h"
#include "vsock/vsockdev.h"

#define CID 3
#define PORT 6000
#define BUF 8192

struct fx {
	char dir[64];
	char base[96];
	int listener;
	struct testdrv t;
	struct vsockdev *d;
	int slot_fd[8];       /* the host socket the device watches per slot */
};

static int fx_watch(void *ctx, int fd, unsigned int slot)
{
	struct fx *f = ctx;

	assert_true(slot < 8);
	f->slot_fd[slot] = fd;
	return 0;
}

static int fx_listen(struct fx *f, uint32_t port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", f->base, port);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

static int setup_n(void **state, unsigned int max_conns)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct vsockdev_config cfg = {
		.guest_cid = CID, .ports = { PORT, PORT + 1 }, .port_count = 2,
		.max_conns = max_conns, .buf_size = BUF,
	};
	struct vsockdev_ops ops = { .watch = fx_watch };

	assert_non_null(f);
	strcpy(f->dir, "/tmp/test-vsockdev-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->base, sizeof(f->base), "%s/vsock", f->dir);
	cfg.base = f->base;
	f->listener = fx_listen(f, PORT);
	assert_int_equal(testdrv_init(&f->t, 64, CID), 0);
	f->d = vsockdev_new(&cfg, &ops, f);
	assert_non_null(f->d);
	vsockdev_attach(f->d, &f->t.rx, &f->t.tx, &f->t.gm);
	*state = f;
	return 0;
}

static int setup(void **state) { return setup_n(state, 4); }
static int setup_one(void **state) { return setup_n(state, 1); }

static int teardown(void **state)
{
	struct fx *f = *state;
	char path[160];

	vsockdev_free(f->d);
	testdrv_fini(&f->t);
	close(f->listener);
	for (uint32_t p = PORT; p <= PORT + 1; p++) {
		snprintf(path, sizeof(path), "%s_%u", f->base, p);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void run(struct fx *f)
{
	bool more;

	do
		vsockdev_run(f->d, &more);
	while (more);
}

/* The next packet on rx, which must be there. */
static struct vsock_hdr expect_pkt(struct fx *f, uint16_t op, uint8_t *payload,
				   uint32_t *len)
{
	struct vsock_hdr h;
	uint32_t n;

	assert_true(testdrv_recv(&f->t, &h, payload, len ? len : &n));
	assert_int_equal(h.op, op);
	assert_int_equal(h.src_cid, VSOCK_CID_HOST);
	assert_int_equal(h.dst_cid, CID);
	assert_int_equal(h.type, VSOCK_TYPE_STREAM);
	return h;
}

static void expect_nothing(struct fx *f)
{
	struct vsock_hdr h;
	uint32_t n;

	assert_false(testdrv_recv(&f->t, &h, NULL, &n));
}

/* Guest port gport connects to PORT; returns the accepted host socket. */
static int fx_connect(struct fx *f, uint32_t gport, uint32_t buf_alloc)
{
	struct vsock_hdr h;
	int fd;

	testdrv_post_rx(&f->t, 16);
	assert_true(testdrv_send_op(&f->t, gport, PORT, VSOCK_OP_REQUEST, 0,
				    NULL, 0, buf_alloc, 0));
	run(f);
	h = expect_pkt(f, VSOCK_OP_RESPONSE, NULL, NULL);
	assert_int_equal(h.dst_port, gport);
	assert_int_equal(h.src_port, PORT);
	assert_int_equal(h.buf_alloc, BUF);
	fd = accept4(f->listener, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static void test_stream(void **state)
{
	struct fx *f = *state;
	uint8_t buf[TESTDRV_PAYLOAD];
	struct vsock_hdr h;
	uint32_t len;
	int host = fx_connect(f, 1000, 65536);

	/* guest -> host */
	assert_true(testdrv_send_op(&f->t, 1000, PORT, VSOCK_OP_RW, 0,
				    "hello", 5, 65536, 0));
	run(f);
	assert_int_equal(read(host, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);

	/* host -> guest, after the socket reports input */
	assert_int_equal(write(host, "world!", 6), 6);
	vsockdev_conn_ready(f->d, 0, EPOLLIN);
	run(f);
	h = expect_pkt(f, VSOCK_OP_RW, buf, &len);
	assert_int_equal(len, 6);
	assert_int_equal(h.len, 6);
	assert_memory_equal(buf, "world!", 6);
	/* Our fwd_cnt says the 5 bytes reached the host. */
	assert_int_equal(h.fwd_cnt, 5);

	/* The host end closes: SHUTDOWN(SEND) to the guest; the guest then
	 * shuts down both ways and gets the final RST. */
	close(host);
	vsockdev_conn_ready(f->d, 0, EPOLLIN | EPOLLRDHUP);
	run(f);
	h = expect_pkt(f, VSOCK_OP_SHUTDOWN, NULL, NULL);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_SEND);
	assert_true(testdrv_send_op(&f->t, 1000, PORT, VSOCK_OP_SHUTDOWN, 3,
				    NULL, 0, 65536, 6));
	run(f);
	expect_pkt(f, VSOCK_OP_RST, NULL, NULL);
	struct vsockdev_stats s;
	vsockdev_get_stats(f->d, &s);
	assert_int_equal(s.conns, 0);
	assert_int_equal(s.bytes_to_host, 5);
	assert_int_equal(s.bytes_to_guest, 6);
}

static void test_guest_shutdown(void **state)
{
	struct fx *f = *state;
	uint8_t b;
	int host = fx_connect(f, 1001, 65536);

	/* The guest closes: the host sees EOF, the guest its RST. */
	assert_true(testdrv_send_op(&f->t, 1001, PORT, VSOCK_OP_SHUTDOWN, 3,
				    NULL, 0, 65536, 0));
	run(f);
	expect_pkt(f, VSOCK_OP_RST, NULL, NULL);
	assert_int_equal(read(host, &b, 1), 0);
	close(host);
}

/* The host end goes away while the guest still sends: a reset, and no
 * SIGPIPE (which would end this test). */
static void test_host_gone(void **state)
{
	struct fx *f = *state;
	struct vsock_hdr h;
	uint32_t len;
	bool rst = false;
	int host = fx_connect(f, 1002, 65536);

	close(host);
	for (int i = 0; i < 2 && !rst; i++) {
		assert_true(testdrv_send_op(&f->t, 1002, PORT, VSOCK_OP_RW, 0,
					    "more", 4, 65536, 0));
		run(f);
		while (testdrv_recv(&f->t, &h, NULL, &len))
			rst = rst || (h.op == VSOCK_OP_RST && h.dst_port == 1002);
	}
	assert_true(rst);
}

static void test_refusals(void **state)
{
	struct fx *f = *state;
	struct vsock_hdr h;

	testdrv_post_rx(&f->t, 16);
	/* A port not on the list, an allowed port with no listener. */
	assert_true(testdrv_send_op(&f->t, 5, 22, VSOCK_OP_REQUEST, 0, NULL, 0, 4096, 0));
	assert_true(testdrv_send_op(&f->t, 6, PORT + 1, VSOCK_OP_REQUEST, 0, NULL, 0, 4096, 0));
	/* Data for a connection that does not exist. */
	assert_true(testdrv_send_op(&f->t, 7, PORT, VSOCK_OP_RW, 0, "x", 1, 4096, 0));
	run(f);
	h = expect_pkt(f, VSOCK_OP_RST, NULL, NULL);
	assert_int_equal(h.dst_port, 5);
	assert_int_equal(h.src_port, 22);
	h = expect_pkt(f, VSOCK_OP_RST, NULL, NULL);
	assert_int_equal(h.dst_port, 6);
	h = expect_pkt(f, VSOCK_OP_RST, NULL, NULL);
	assert_int_equal(h.dst_port, 7);
	expect_nothing(f);

	/* A packet claiming another source CID, or not for the host: no
	 * answer at all. */
	h = (struct vsock_hdr){ .src_cid = CID + 1, .dst_cid = VSOCK_CID_HOST,
				.src_port = 8, .dst_port = PORT,
				.type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_REQUEST };
	assert_true(testdrv_send(&f->t, &h, NULL, 0));
	h.src_cid = CID;
	h.dst_cid = 7;
	assert_true(testdrv_send(&f->t, &h, NULL, 0));
	/* A seqpacket request: refused with RST. */
	h.dst_cid = VSOCK_CID_HOST;
	h.type = VSOCK_TYPE_SEQPACKET;
	assert_true(testdrv_send(&f->t, &h, NULL, 0));
	run(f);
	h = expect_pkt(f, VSOCK_OP_RST, NULL, NULL);
	assert_int_equal(h.dst_port, 8);
	expect_nothing(f);
	struct vsockdev_stats s;
	vsockdev_get_stats(f->d, &s);
	assert_int_equal(s.packets_dropped, 2);
	assert_int_equal(s.conns_refused, 2);
}

static void test_conn_cap(void **state)
{
	struct fx *f = *state;
	int host = fx_connect(f, 2000, 4096);
	struct vsock_hdr h;

	/* max_conns is 1 here: the second is refused, the first lives. */
	assert_true(testdrv_send_op(&f->t, 2001, PORT, VSOCK_OP_REQUEST, 0, NULL, 0, 4096, 0));
	run(f);
	h = expect_pkt(f, VSOCK_OP_RST, NULL, NULL);
	assert_int_equal(h.dst_port, 2001);
	assert_true(testdrv_send_op(&f->t, 2000, PORT, VSOCK_OP_RW, 0, "ok", 2, 4096, 0));
	run(f);
	char b[2];
	assert_int_equal(read(host, b, 2), 2);
	close(host);
}

/* The guest stops reading: we send no more than its credit, and read no
 * more from the host socket meanwhile. */
static void test_guest_credit(void **state)
{
	struct fx *f = *state;
	static uint8_t big[64 * 1024];
	uint8_t buf[TESTDRV_PAYLOAD];
	uint32_t got = 0, len;
	struct vsock_hdr h;
	int host = fx_connect(f, 3000, 10000);

	memset(big, 'z', sizeof(big));
	assert_int_equal(write(host, big, sizeof(big)), (ssize_t)sizeof(big));
	vsockdev_conn_ready(f->d, 0, EPOLLIN);
	for (int round = 0; round < 4; round++) {
		testdrv_post_rx(&f->t, 32);
		run(f);
		while (testdrv_recv(&f->t, &h, buf, &len)) {
			assert_int_equal(h.op, VSOCK_OP_RW);
			got += len;
		}
	}
	assert_int_equal(got, 10000);
	/* The guest read it all and says so: the next 10000 come. */
	assert_true(testdrv_send_op(&f->t, 3000, PORT, VSOCK_OP_CREDIT_UPDATE, 0,
				    NULL, 0, 10000, 10000));
	run(f);
	while (testdrv_recv(&f->t, &h, buf, &len))
		got += len;
	assert_int_equal(got, 20000);
	close(host);
}

/* The host end stops reading: the guest may fill our buffer (its credit),
 * and a packet beyond that resets the connection. */
static void test_host_stall(void **state)
{
	struct fx *f = *state;
	static uint8_t chunk[TESTDRV_PAYLOAD];
	struct vsockdev_stats s;
	struct vsock_hdr h;
	int host = fx_connect(f, 4000, 4096);
	int small = 4096;
	uint32_t sent = 0;

	/* A small host receive buffer, so the socket fills first. */
	setsockopt(host, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(f->slot_fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	for (int i = 0; i < 400; i++) {
		vsockdev_get_stats(f->d, &s);
		if (s.buffered + sizeof(chunk) > BUF)
			break;
		assert_true(testdrv_send_op(&f->t, 4000, PORT, VSOCK_OP_RW, 0,
					    chunk, sizeof(chunk), 4096, 0));
		sent += sizeof(chunk);
		run(f);
	}
	vsockdev_get_stats(f->d, &s);
	assert_true(s.buffered > 0);
	assert_true(s.buffered <= BUF);
	assert_int_equal(s.conns, 1);
	/* Credit is buf_alloc - (sent - fwd_cnt): the device said so in its
	 * last packet.  Exceed it. */
	assert_true(testdrv_send_op(&f->t, 4000, PORT, VSOCK_OP_RW, 0,
				    chunk, sizeof(chunk), 4096, 0));
	assert_true(testdrv_send_op(&f->t, 4000, PORT, VSOCK_OP_RW, 0,
				    chunk, sizeof(chunk), 4096, 0));
	run(f);
	vsockdev_get_stats(f->d, &s);
	assert_int_equal(s.conns, 0);
	assert_int_equal(s.buffered, 0);
	bool rst = false;
	uint32_t len;
	while (testdrv_recv(&f->t, &h, NULL, &len))
		rst = rst || h.op == VSOCK_OP_RST;
	assert_true(rst);
	(void)sent;
	close(host);
}

/* Descriptor chains a hostile guest can write. */
static void put_raw_desc(struct fx *f, uint16_t i, uint64_t addr, uint32_t len,
			 uint16_t flags, uint16_t next)
{
	uint8_t *d = f->t.mem + testdrv_desc_off(&f->t, 1) + 16 * (size_t)i;

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static void publish_raw(struct fx *f, uint16_t head)
{
	uint8_t *avail = f->t.mem + testdrv_avail_off(&f->t, 1);
	uint16_t idx = f->t.avail[1];

	memcpy(avail + 4 + 2 * (idx % f->t.num), &head, 2);
	f->t.avail[1] = ++idx;
	memcpy(avail + 2, &idx, 2);
}

static void test_hostile_chains(void **state)
{
	struct fx *f = *state;
	struct vsockdev_stats s;

	/* A loop, an address outside guest memory, a length that wraps,
	 * indirect, writable-then-readable: each is given back unused. */
	put_raw_desc(f, 40, TESTDRV_GPA, 44, 1, 40);
	publish_raw(f, 40);
	put_raw_desc(f, 41, 0x10, 44, 0, 0);
	publish_raw(f, 41);
	put_raw_desc(f, 42, TESTDRV_GPA + f->t.size - 8, 44, 0, 0);
	publish_raw(f, 42);
	put_raw_desc(f, 43, UINT64_MAX - 8, 44, 0, 0);
	publish_raw(f, 43);
	put_raw_desc(f, 44, TESTDRV_GPA, 44, 4, 0);
	publish_raw(f, 44);
	put_raw_desc(f, 45, TESTDRV_GPA, 44, 2 | 1, 46);
	put_raw_desc(f, 46, TESTDRV_GPA, 44, 0, 0);
	publish_raw(f, 45);
	/* A next link out of the ring. */
	put_raw_desc(f, 47, TESTDRV_GPA, 44, 1, 1000);
	publish_raw(f, 47);
	run(f);
	assert_int_equal(testdrv_reap_tx(&f->t), 7);
	vsockdev_get_stats(f->d, &s);
	assert_int_equal(s.packets_dropped, 7);
	assert_false(f->t.tx.broken);

	/* Still working afterwards. */
	close(fx_connect(f, 5000, 4096));

	/* A head index beyond the ring breaks it: nothing more is read. */
	testdrv_reap_tx(&f->t);
	publish_raw(f, 1000);
	run(f);
	assert_true(f->t.tx.broken);
	assert_int_equal(testdrv_reap_tx(&f->t), 0);
}

static void test_avail_runaway(void **state)
{
	struct fx *f = *state;
	uint8_t *avail = f->t.mem + testdrv_avail_off(&f->t, 1);
	uint16_t idx = 1000; /* far more than num ahead of us */

	memcpy(avail + 2, &idx, 2);
	run(f);
	assert_true(f->t.tx.broken);
}

static void test_bad_config(void **state)
{
	struct vsockdev_config cfg = { .guest_cid = CID, .base = "/tmp/x",
				       .ports = { 1 }, .port_count = 1,
				       .max_conns = 1, .buf_size = BUF };
	char longbase[120];

	(void)state;
	struct vsockdev *d = vsockdev_new(&cfg, NULL, NULL);
	assert_non_null(d);
	vsockdev_free(d);
	cfg.guest_cid = 2;
	assert_null(vsockdev_new(&cfg, NULL, NULL));
	assert_int_equal(errno, EINVAL);
	cfg.guest_cid = CID;
	cfg.port_count = 0;
	assert_null(vsockdev_new(&cfg, NULL, NULL));
	cfg.port_count = 1;
	memset(longbase, 'a', sizeof(longbase) - 1);
	longbase[sizeof(longbase) - 1] = 0;
	cfg.base = longbase;
	assert_null(vsockdev_new(&cfg, NULL, NULL));
	assert_int_equal(errno, EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conn_cap, setup_one, teardown),
		cmocka_unit_test_setup_teardown(test_guest_credit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_stall, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_avail_runaway, setup, teardown),
		cmocka_unit_test(test_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
