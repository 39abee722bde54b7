/* libFuzzer target: the vsock device (src/vsock/vring.c, vsockpkt.c,
 * vsockdev.c) on what a hostile guest writes into its rings, with real
 * host sockets behind it (a listener for port 1 under FUZZ_TMPDIR or
 * /dev/shm, which the input can accept from, write to and close).
 *
 * Input: byte 0 picks the ring size (4 << (b % 4)); then operations, each
 * an opcode byte (value % 8) and its operands:
 *   0 H[44] N[1] P[N]  send a packet: header H (if H[0] is odd, its CIDs
 *                      and type are made valid) and N payload bytes
 *   1 N[1]             post N rx buffers
 *   2 I[1] D[16]       write raw descriptor I % num of the tx ring
 *   3 I[2]             publish head I on tx (anything, out of range too)
 *   4 S[1] E[1]        a host socket event (bits of E) on slot S % 4
 *   5 N[1] P[N]        accept a host connection and write N bytes to it
 *   6                  close the host connections accepted so far
 *   7                  run the device and drain rx
 * The device runs once more at the end; nothing may crash, leak or hang,
 * and the device's byte counts may never exceed its buffer bounds.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vsock/testdrv.h"
#include "vsock/vsockdev.h"

#define CID 3
#define BUF 4096
#define MAX_CONNS 4
#define MAX_HOST 8

static char dir[80];
static char base[96];
static char sock_path[108];
static int listener = -1;

/* The private directory goes when the fuzzer exits. */
static void fuzz_cleanup(void)
{
	unlink(sock_path);
	rmdir(dir);
}

static void fuzz_init(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *tmp = getenv("FUZZ_TMPDIR");

	snprintf(dir, sizeof(dir), "%s/fuzz-vsock-XXXXXX", tmp ? tmp : "/dev/shm");
	if (!mkdtemp(dir))
		abort();
	snprintf(base, sizeof(base), "%s/v", dir);
	snprintf(sock_path, sizeof(sock_path), "%s_1", base);
	strcpy(sa.sun_path, sock_path);
	atexit(fuzz_cleanup);
	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(listener, 64) < 0)
		abort();
}

static void drain(struct testdrv *t)
{
	uint8_t payload[TESTDRV_PAYLOAD];
	struct vsock_hdr h;
	uint32_t len;

	while (testdrv_recv(t, &h, payload, &len))
		if (len > TESTDRV_PAYLOAD)
			__builtin_trap();
	testdrv_reap_tx(t);
}

static void run(struct vsockdev *d, struct testdrv *t)
{
	struct vsockdev_stats s;
	bool more;
	int rounds = 0;

	do
		vsockdev_run(d, &more);
	while (more && ++rounds < 64);
	vsockdev_get_stats(d, &s);
	if (s.conns > MAX_CONNS || s.buffered > (size_t)MAX_CONNS * BUF ||
	    s.buffer_bytes > (size_t)MAX_CONNS * BUF)
		__builtin_trap();
	drain(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct vsockdev_config cfg = {
		.guest_cid = CID, .ports = { 1, 2 }, .port_count = 2,
		.max_conns = MAX_CONNS, .buf_size = BUF,
	};
	int host[MAX_HOST], nhost = 0, fd;
	struct testdrv t;
	struct vsockdev *d;
	size_t i = 1;

	if (listener < 0)
		fuzz_init();
	if (len < 1 || testdrv_init(&t, (uint16_t)(4 << (data[0] % 4)), CID) < 0)
		return 0;
	cfg.base = base;
	d = vsockdev_new(&cfg, NULL, NULL);
	if (!d)
		abort();
	vsockdev_attach(d, &t.rx, &t.tx, &t.gm);
	while (i < len) {
		uint8_t op = data[i++] % 8;

		switch (op) {
		case 0: {
			struct vsock_hdr h;
			uint8_t n;

			if (len - i < VSOCK_HDR_LEN + 1)
				goto done;
			vsock_hdr_decode(data + i, &h);
			if (data[i] & 1) {
				h.src_cid = CID;
				h.dst_cid = VSOCK_CID_HOST;
				h.type = VSOCK_TYPE_STREAM;
				h.op %= 8;
				h.dst_port = h.dst_port % 3;
			}
			i += VSOCK_HDR_LEN;
			n = data[i++];
			if (len - i < n)
				goto done;
			testdrv_send(&t, &h, data + i, n);
			i += n;
			break;
		}
		case 1:
			if (i < len)
				testdrv_post_rx(&t, data[i++]);
			break;
		case 2:
			if (len - i < 17)
				goto done;
			memcpy(t.mem + testdrv_desc_off(&t, 1) +
			       16 * (size_t)(data[i] % t.num), data + i + 1, 16);
			i += 17;
			break;
		case 3: {
			uint8_t *avail = t.mem + testdrv_avail_off(&t, 1);
			uint16_t idx = t.avail[1];

			if (len - i < 2)
				goto done;
			memcpy(avail + 4 + 2 * (idx % t.num), data + i, 2);
			t.avail[1] = ++idx;
			memcpy(avail + 2, &idx, 2);
			i += 2;
			break;
		}
		case 4: {
			static const uint32_t bits[] = { EPOLLIN, EPOLLOUT, EPOLLRDHUP,
							 EPOLLHUP, EPOLLERR };
			uint32_t ev = 0;

			if (len - i < 2)
				goto done;
			for (int b = 0; b < 5; b++)
				if (data[i + 1] & (1 << b))
					ev |= bits[b];
			vsockdev_conn_ready(d, data[i] % MAX_CONNS, ev);
			i += 2;
			break;
		}
		case 5: {
			uint8_t n;

			if (len - i < 1)
				goto done;
			n = data[i++];
			if (len - i < n)
				goto done;
			if (nhost < MAX_HOST) {
				fd = accept4(listener, NULL, NULL,
					     SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (fd >= 0) {
					host[nhost++] = fd;
					(void)!send(fd, data + i, n, MSG_NOSIGNAL);
				}
			}
			i += n;
			break;
		}
		case 6:
			while (nhost)
				close(host[--nhost]);
			break;
		case 7:
			run(d, &t);
			break;
		}
	}
done:
	run(d, &t);
	vsockdev_free(d);
	testdrv_fini(&t);
	while (nhost)
		close(host[--nhost]);
	/* Connections the device made and nobody accepted. */
	while ((fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(fd);
	return 0;
}
