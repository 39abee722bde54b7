/* virtio-vsock streams between guest ports and host unix sockets, with
 * credit-based flow control.  See vsockdev.h. */
#include "vsock/vsockdev.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vsock/vsockpkt.h"

/* Packets from the guest handled per vsockdev_run, so rx keeps up. */
#define VSOCKDEV_TX_BATCH 64
/* Largest payload we put in one rx packet (Linux's own limit). */
#define VSOCKDEV_MAX_PAYLOAD (64u * 1024)
/* RST replies waiting for an rx buffer; more are dropped (the guest then
 * only waits out its own timeout). */
#define VSOCKDEV_RST_QUEUE 64
/* Log lines the guest can cause per second. */
#define VSOCKDEV_LOG_PER_SEC 10

enum {
	PEND_RESPONSE = 1u << 0,
	PEND_CREDIT = 1u << 1,
	PEND_SHUTDOWN = 1u << 2,
};

struct vsockdev_conn {
	bool open;
	uint32_t guest_port, host_port;
	int fd;
	/* guest to host: a ring of d->cfg.buf_size bytes */
	uint8_t *buf;
	uint32_t buf_head, buf_len;
	uint32_t fwd_cnt, fwd_cnt_sent;
	bool guest_no_send, guest_no_rcv, host_shut_wr;
	/* host to guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	bool readable, host_eof;
	unsigned int pending;
};

struct vsockdev_rst {
	uint32_t guest_port, host_port;
};

struct vsockdev {
	struct vsockdev_config cfg;
	struct vsockdev_ops ops;
	void *ctx;
	struct vring *rx, *tx;
	const struct guestmem *mem;
	struct vsockdev_conn *conns;   /* cfg.max_conns slots */
	unsigned int rr;               /* round-robin start for rx */
	struct vsockdev_rst rst[VSOCKDEV_RST_QUEUE];
	unsigned int rst_count;
	struct vsockdev_stats stats;
	/* log rate limit */
	time_t log_sec;
	unsigned int log_lines;
	unsigned long log_dropped;
};

static void dev_log(struct vsockdev *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void dev_log(struct vsockdev *d, const char *fmt, ...)
{
	struct timespec now;
	char msg[256];
	va_list ap;

	if (!d->ops.log)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec != d->log_sec) {
		if (d->log_dropped) {
			snprintf(msg, sizeof(msg), "%lu log lines dropped",
				 d->log_dropped);
			d->ops.log(d->ctx, msg);
		}
		d->log_sec = now.tv_sec;
		d->log_lines = 0;
		d->log_dropped = 0;
	}
	if (d->log_lines++ >= VSOCKDEV_LOG_PER_SEC) {
		d->log_dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->ops.log(d->ctx, msg);
}

static int dev_sockpath(const struct vsockdev_config *cfg, uint32_t port,
			struct sockaddr_un *sa)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s_%u", cfg->base, port);
	if (n < 0 || (size_t)n >= sizeof(sa->sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

struct vsockdev *vsockdev_new(const struct vsockdev_config *cfg,
			      const struct vsockdev_ops *ops, void *ctx)
{
	struct sockaddr_un sa;
	struct vsockdev *d;

	if (!cfg->base || !cfg->port_count ||
	    cfg->port_count > VSOCKDEV_MAX_PORTS || !cfg->max_conns ||
	    cfg->max_conns > 4096 || cfg->buf_size < 4096 ||
	    cfg->buf_size > (1u << 30) || cfg->guest_cid <= VSOCK_CID_HOST ||
	    cfg->guest_cid > UINT32_MAX - 1) {
		errno = EINVAL;
		return NULL;
	}
	/* The longest path: BASE_4294967295. */
	if (dev_sockpath(cfg, UINT32_MAX, &sa) < 0) {
		errno = EINVAL;
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->conns = calloc(cfg->max_conns, sizeof(*d->conns));
	if (!d->conns) {
		free(d);
		errno = ENOMEM;
		return NULL;
	}
	d->cfg = *cfg;
	if (ops)
		d->ops = *ops;
	d->ctx = ctx;
	return d;
}

static void conn_close(struct vsockdev *d, struct vsockdev_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->buf) {
		free(c->buf);
		d->stats.buffer_bytes -= d->cfg.buf_size;
	}
	d->stats.buffered -= c->buf_len;
	d->stats.conns--;
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void dev_close_all(struct vsockdev *d)
{
	for (unsigned int i = 0; i < d->cfg.max_conns; i++)
		if (d->conns[i].open)
			conn_close(d, &d->conns[i]);
	d->rst_count = 0;
}

void vsockdev_free(struct vsockdev *d)
{
	if (!d)
		return;
	dev_close_all(d);
	free(d->conns);
	free(d);
}

void vsockdev_attach(struct vsockdev *d, struct vring *rx, struct vring *tx,
		     const struct guestmem *mem)
{
	if (!rx || !tx || !mem) {
		dev_close_all(d);
		rx = tx = NULL;
		mem = NULL;
	}
	d->rx = rx;
	d->tx = tx;
	d->mem = mem;
}

void vsockdev_get_stats(const struct vsockdev *d, struct vsockdev_stats *s)
{
	*s = d->stats;
}

static bool dev_port_allowed(const struct vsockdev *d, uint32_t port)
{
	for (size_t i = 0; i < d->cfg.port_count; i++)
		if (d->cfg.ports[i] == port)
			return true;
	return false;
}

static struct vsockdev_conn *dev_find(struct vsockdev *d, uint32_t guest_port,
				      uint32_t host_port)
{
	for (unsigned int i = 0; i < d->cfg.max_conns; i++) {
		struct vsockdev_conn *c = &d->conns[i];

		if (c->open && c->guest_port == guest_port &&
		    c->host_port == host_port)
			return c;
	}
	return NULL;
}

static void dev_queue_rst(struct vsockdev *d, uint32_t guest_port,
			  uint32_t host_port)
{
	if (d->rst_count == VSOCKDEV_RST_QUEUE) {
		d->stats.packets_dropped++;
		return;
	}
	d->rst[d->rst_count++] = (struct vsockdev_rst){ guest_port, host_port };
}

/* Close c and tell the guest (RST). */
static void conn_reset(struct vsockdev *d, struct vsockdev_conn *c)
{
	dev_queue_rst(d, c->guest_port, c->host_port);
	conn_close(d, c);
}

static uint32_t conn_unadvertised(const struct vsockdev_conn *c)
{
	return c->fwd_cnt - c->fwd_cnt_sent;
}

/* Push buffered guest bytes to the host socket; false if c was closed. */
static bool conn_flush(struct vsockdev *d, struct vsockdev_conn *c)
{
	uint32_t size = d->cfg.buf_size;

	while (c->buf_len) {
		struct iovec iov[2];
		uint32_t first = size - c->buf_head;
		int n = 1;
		ssize_t w;

		if (first > c->buf_len)
			first = c->buf_len;
		iov[0] = (struct iovec){ c->buf + c->buf_head, first };
		if (first < c->buf_len) {
			iov[1] = (struct iovec){ c->buf, c->buf_len - first };
			n = 2;
		}
		/* No SIGPIPE for a host end that went away: an error. */
		w = sendmsg(c->fd, &(struct msghdr){ .msg_iov = iov, .msg_iovlen = (size_t)n },
			    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w <= 0) {
			dev_log(d, "port %u<-%u: host socket write: %s",
				c->host_port, c->guest_port,
				w < 0 ? strerror(errno) : "closed");
			conn_reset(d, c);
			return false;
		}
		c->buf_head = (c->buf_head + (uint32_t)w) % size;
		c->buf_len -= (uint32_t)w;
		c->fwd_cnt += (uint32_t)w;
		d->stats.buffered -= (size_t)w;
		d->stats.bytes_to_host += (uint64_t)w;
	}
	if (conn_unadvertised(c) >= size / 4)
		c->pending |= PEND_CREDIT;
	return true;
}

/* Half-closes and the end of a connection once both sides are done. */
static void conn_settle(struct vsockdev *d, struct vsockdev_conn *c)
{
	if (c->buf_len)
		return;
	if (c->guest_no_send && (c->guest_no_rcv || c->host_eof)) {
		/* Nothing can flow any more: RST ends it on both sides (the
		 * Linux driver waits for one after its SHUTDOWN). */
		conn_reset(d, c);
		return;
	}
	if (c->guest_no_send && !c->host_shut_wr) {
		shutdown(c->fd, SHUT_WR);
		c->host_shut_wr = true;
	}
}

static void dev_open(struct vsockdev *d, const struct vsock_hdr *h)
{
	struct vsockdev_conn *c = NULL;
	struct sockaddr_un sa;
	int fd;

	if (!dev_port_allowed(d, h->dst_port)) {
		dev_log(d, "guest port %u: connection to host port %u refused: "
			"not an allowed port", h->src_port, h->dst_port);
		goto refuse;
	}
	for (unsigned int i = 0; i < d->cfg.max_conns && !c; i++)
		if (!d->conns[i].open)
			c = &d->conns[i];
	if (!c) {
		dev_log(d, "guest port %u: connection to host port %u refused: "
			"%u connections open", h->src_port, h->dst_port,
			d->cfg.max_conns);
		goto refuse;
	}
	if (dev_sockpath(&d->cfg, h->dst_port, &sa) < 0)
		goto refuse;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		dev_log(d, "socket: %s", strerror(errno));
		goto refuse;
	}
	/* A unix stream connect completes or fails at once; EAGAIN (a full
	 * backlog) is a refusal like any other. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		dev_log(d, "guest port %u: %s: %s", h->src_port, sa.sun_path,
			strerror(errno));
		close(fd);
		goto refuse;
	}
	if (d->ops.watch &&
	    d->ops.watch(d->ctx, fd, (unsigned int)(c - d->conns)) < 0) {
		dev_log(d, "cannot watch a socket: %s", strerror(errno));
		close(fd);
		goto refuse;
	}
	*c = (struct vsockdev_conn){
		.open = true, .guest_port = h->src_port, .host_port = h->dst_port,
		.fd = fd, .peer_buf_alloc = h->buf_alloc,
		.peer_fwd_cnt = h->fwd_cnt, .pending = PEND_RESPONSE,
	};
	d->stats.conns++;
	d->stats.conns_opened++;
	return;
refuse:
	d->stats.conns_refused++;
	dev_queue_rst(d, h->src_port, h->dst_port);
}

/* Guest payload into c's buffer, within the credit we gave. */
static void conn_take(struct vsockdev *d, struct vsockdev_conn *c,
		      const struct vring_chain *ch, uint32_t len)
{
	uint32_t size = d->cfg.buf_size, tail, first;

	if (c->guest_no_send || len > size - c->buf_len) {
		dev_log(d, "port %u<-%u: guest sent %s; reset",
			c->host_port, c->guest_port,
			c->guest_no_send ? "after its shutdown" :
			"beyond its credit");
		conn_reset(d, c);
		return;
	}
	if (!len)
		return;
	if (!c->buf) {
		c->buf = malloc(size);
		if (!c->buf) {
			conn_reset(d, c);
			return;
		}
		d->stats.buffer_bytes += size;
	}
	tail = (c->buf_head + c->buf_len) % size;
	first = size - tail < len ? size - tail : len;
	vring_chain_read(ch, VSOCK_HDR_LEN, c->buf + tail, first);
	if (first < len)
		vring_chain_read(ch, VSOCK_HDR_LEN + first, c->buf, len - first);
	c->buf_len += len;
	d->stats.buffered += len;
	conn_flush(d, c);
}

/* One packet from the guest. */
static void dev_handle(struct vsockdev *d, const struct vring_chain *ch)
{
	uint8_t raw[VSOCK_HDR_LEN];
	struct vsockdev_conn *c;
	struct vsock_hdr h;

	if (vring_chain_read(ch, 0, raw, sizeof(raw)) < sizeof(raw))
		goto drop;
	vsock_hdr_decode(raw, &h);
	/* Spoofed or misdirected: no answer at all. */
	if (h.src_cid != d->cfg.guest_cid || h.dst_cid != VSOCK_CID_HOST)
		goto drop;
	if (h.op == VSOCK_OP_RW && h.len > ch->read_len - VSOCK_HDR_LEN)
		goto drop;
	c = dev_find(d, h.src_port, h.dst_port);
	if (h.type != VSOCK_TYPE_STREAM) {
		if (h.op != VSOCK_OP_RST)
			dev_queue_rst(d, h.src_port, h.dst_port);
		return;
	}
	if (h.op == VSOCK_OP_RST) {
		if (c)
			conn_close(d, c);
		return;
	}
	if (h.op == VSOCK_OP_REQUEST) {
		if (c) {
			/* The guest's driver reuses no live port pair. */
			conn_reset(d, c);
			return;
		}
		dev_open(d, &h);
		return;
	}
	if (!c) {
		dev_queue_rst(d, h.src_port, h.dst_port);
		return;
	}
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case VSOCK_OP_RW:
		conn_take(d, c, ch, h.len);
		if (!c->open)
			return;
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c->pending |= PEND_CREDIT;
		break;
	case VSOCK_OP_SHUTDOWN:
		if (h.flags & VSOCK_SHUTDOWN_RCV)
			c->guest_no_rcv = true;
		if (h.flags & VSOCK_SHUTDOWN_SEND)
			c->guest_no_send = true;
		break;
	default:
		/* RESPONSE (we never request) and unknown operations. */
		conn_reset(d, c);
		return;
	}
	conn_settle(d, c);
	return;
drop:
	d->stats.packets_dropped++;
}

static void dev_hdr(const struct vsockdev *d, struct vsock_hdr *h,
		    uint32_t guest_port, uint32_t host_port, uint16_t op)
{
	*h = (struct vsock_hdr){
		.src_cid = VSOCK_CID_HOST, .dst_cid = d->cfg.guest_cid,
		.src_port = host_port, .dst_port = guest_port,
		.type = VSOCK_TYPE_STREAM, .op = op,
		.buf_alloc = d->cfg.buf_size,
	};
}

/* The guest's credit for c: what it can still take. */
static uint32_t conn_credit(const struct vsockdev_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static bool conn_can_read(const struct vsockdev_conn *c)
{
	return c->readable && !c->host_eof && !c->guest_no_rcv &&
	       !(c->pending & PEND_RESPONSE) && conn_credit(c) > 0;
}

static bool conn_has_work(const struct vsockdev_conn *c)
{
	return c->open && (c->pending || conn_can_read(c));
}

/* Fill one rx chain for c; returns the bytes written into it, or 0 if c
 * had nothing after all (its socket had no data). */
static uint32_t conn_fill(struct vsockdev *d, struct vsockdev_conn *c,
			  const struct vring_chain *ch)
{
	uint8_t raw[VSOCK_HDR_LEN];
	struct vsock_hdr h;
	uint32_t len = 0;

	if (c->pending & PEND_RESPONSE) {
		dev_hdr(d, &h, c->guest_port, c->host_port, VSOCK_OP_RESPONSE);
		c->pending &= ~PEND_RESPONSE;
	} else if (conn_can_read(c)) {
		struct iovec iov[VRING_CHAIN_MAX];
		size_t room, max = ch->write_len - VSOCK_HDR_LEN;
		ssize_t n;
		int niov;

		if (max > conn_credit(c))
			max = conn_credit(c);
		if (max > VSOCKDEV_MAX_PAYLOAD)
			max = VSOCKDEV_MAX_PAYLOAD;
		niov = vring_chain_write_iov(ch, VSOCK_HDR_LEN, max, iov,
					     VRING_CHAIN_MAX, &room);
		do
			n = readv(c->fd, iov, niov);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno == EAGAIN) {
			c->readable = false;
			return 0;
		}
		if (n < 0) {
			dev_log(d, "port %u<-%u: host socket read: %s",
				c->host_port, c->guest_port, strerror(errno));
			conn_reset(d, c);
			return 0;
		}
		if (n == 0) {
			/* The host end will send no more. */
			c->host_eof = true;
			c->pending |= PEND_SHUTDOWN;
			conn_settle(d, c);
			return 0;
		}
		len = (uint32_t)n;
		dev_hdr(d, &h, c->guest_port, c->host_port, VSOCK_OP_RW);
		h.len = len;
		c->tx_cnt += len;
		d->stats.bytes_to_guest += len;
	} else if (c->pending & PEND_SHUTDOWN) {
		dev_hdr(d, &h, c->guest_port, c->host_port, VSOCK_OP_SHUTDOWN);
		h.flags = VSOCK_SHUTDOWN_SEND;
		c->pending &= ~PEND_SHUTDOWN;
	} else if (c->pending & PEND_CREDIT) {
		dev_hdr(d, &h, c->guest_port, c->host_port,
			VSOCK_OP_CREDIT_UPDATE);
	} else {
		return 0;
	}
	/* Every packet carries our credit; no separate update needed. */
	h.fwd_cnt = c->fwd_cnt;
	c->fwd_cnt_sent = c->fwd_cnt;
	c->pending &= ~PEND_CREDIT;
	vsock_hdr_encode(&h, raw);
	vring_chain_write(ch, 0, raw, sizeof(raw));
	return VSOCK_HDR_LEN + len;
}

/* Fill one rx chain with the oldest queued RST. */
static uint32_t dev_fill_rst(struct vsockdev *d, const struct vring_chain *ch)
{
	uint8_t raw[VSOCK_HDR_LEN];
	struct vsock_hdr h;

	dev_hdr(d, &h, d->rst[0].guest_port, d->rst[0].host_port, VSOCK_OP_RST);
	memmove(d->rst, d->rst + 1, --d->rst_count * sizeof(d->rst[0]));
	vsock_hdr_encode(&h, raw);
	vring_chain_write(ch, 0, raw, sizeof(raw));
	d->stats.resets_sent++;
	return VSOCK_HDR_LEN;
}

/* The next connection with something for the guest, round robin. */
static struct vsockdev_conn *dev_next_work(struct vsockdev *d)
{
	for (unsigned int k = 0; k < d->cfg.max_conns; k++) {
		unsigned int i = (d->rr + k) % d->cfg.max_conns;

		if (conn_has_work(&d->conns[i])) {
			d->rr = (i + 1) % d->cfg.max_conns;
			return &d->conns[i];
		}
	}
	return NULL;
}

/* Give the guest what we have, while it has rx buffers. */
static bool dev_run_rx(struct vsockdev *d)
{
	struct vring_chain ch;
	bool pushed = false;

	for (;;) {
		struct vsockdev_conn *c = NULL;
		uint32_t len;
		int r;

		if (!d->rst_count) {
			c = dev_next_work(d);
			if (!c)
				break;
		}
		r = vring_pop(d->rx, d->mem, &ch);
		if (r == 0)
			break;
		if (r < 0 && errno == EPROTO) {
			dev_log(d, "rx ring broken: stopped");
			break;
		}
		/* rx buffers are write-only and hold at least a header. */
		if (r < 0 || ch.nread || ch.write_len < VSOCK_HDR_LEN + 1) {
			vring_push(d->rx, ch.head, 0);
			pushed = true;
			continue;
		}
		len = c ? conn_fill(d, c, &ch) : dev_fill_rst(d, &ch);
		if (!len) {
			vring_unpop(d->rx);
			continue;
		}
		vring_push(d->rx, ch.head, len);
		pushed = true;
	}
	return pushed;
}

unsigned int vsockdev_run(struct vsockdev *d, bool *more)
{
	unsigned int notify = 0;
	struct vring_chain ch;
	int r = 0;

	*more = false;
	if (!d->rx || !d->tx)
		return 0;
	for (int i = 0; i < VSOCKDEV_TX_BATCH; i++) {
		r = vring_pop(d->tx, d->mem, &ch);
		if (r == 0)
			break;
		if (r < 0 && errno == EPROTO) {
			dev_log(d, "tx ring broken: stopped");
			break;
		}
		if (r > 0)
			dev_handle(d, &ch);
		else
			d->stats.packets_dropped++;
		vring_push(d->tx, ch.head, 0);
		notify |= VSOCKDEV_NOTIFY_TX;
	}
	if (r > 0)
		*more = vring_has_avail(d->tx);
	if (dev_run_rx(d))
		notify |= VSOCKDEV_NOTIFY_RX;
	return notify;
}

void vsockdev_conn_ready(struct vsockdev *d, unsigned int slot, uint32_t events)
{
	struct vsockdev_conn *c;

	if (slot >= d->cfg.max_conns || !d->conns[slot].open)
		return;
	c = &d->conns[slot];
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = true;
	if ((events & (EPOLLOUT | EPOLLERR)) && c->buf_len && conn_flush(d, c))
		conn_settle(d, c);
}
