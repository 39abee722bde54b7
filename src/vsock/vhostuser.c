/* vhost-user backend protocol for the vsock device.  See vhostuser.h. */
#include "vsock/vhostuser.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_SET_VRING_ENABLE = 18,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
};

#define VU_HDR_LEN 12
#define VU_VERSION 1u
#define VU_FLAG_VERSION_MASK 3u
#define VU_FLAG_REPLY (1u << 2)
#define VU_VRING_IDX_MASK 0xffu
#define VU_VRING_NOFD (1u << 8)

#define VIRTIO_F_VERSION_1 (1ull << 32)
#define VU_F_PROTOCOL_FEATURES (1ull << 30)
#define VU_FEATURES (VIRTIO_F_VERSION_1 | VU_F_PROTOCOL_FEATURES)
#define VU_PROTOCOL_F_CONFIG (1ull << 9)
#define VU_PROTOCOL_FEATURES VU_PROTOCOL_F_CONFIG

/* struct virtio_vsock_config: le64 guest_cid. */
#define VU_CONFIG_SIZE 8
#define VU_CONFIG_HDR 12

void vu_init(struct vu_dev *d, int sock, uint64_t guest_cid)
{
	memset(d, 0, sizeof(*d));
	d->sock = sock;
	d->guest_cid = guest_cid;
	for (unsigned int i = 0; i < VU_RINGS; i++)
		d->ring[i].kick_fd = d->ring[i].call_fd = -1;
}

static void vu_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void vu_reset(struct vu_dev *d)
{
	for (unsigned int i = 0; i < VU_RINGS; i++) {
		vu_close(&d->ring[i].kick_fd);
		vu_close(&d->ring[i].call_fd);
	}
	guestmem_unmap(&d->mem);
	vu_init(d, d->sock, d->guest_cid);
}

static void vu_close_fds(struct vu_msg *m)
{
	for (unsigned int i = 0; i < m->nfds; i++)
		vu_close(&m->fds[i]);
	m->nfds = 0;
}

int vu_recv(int sock, struct vu_msg *m)
{
	union {
		char buf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	uint8_t hdr[VU_HDR_LEN];
	struct iovec iov = { hdr, sizeof(hdr) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	size_t got;
	ssize_t n;

	m->nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return (int)n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (m->nfds < VU_MAX_FDS)
				m->fds[m->nfds++] = fd;
			else
				close(fd);
		}
	}
	if ((size_t)n < sizeof(hdr) || (mh.msg_flags & MSG_CTRUNC))
		goto bad;
	memcpy(&m->request, hdr, 4);
	memcpy(&m->flags, hdr + 4, 4);
	memcpy(&m->size, hdr + 8, 4);
	if ((m->flags & VU_FLAG_VERSION_MASK) != VU_VERSION ||
	    m->size > sizeof(m->payload))
		goto bad;
	for (got = 0; got < m->size; got += (size_t)n) {
		n = read(sock, m->payload + got, m->size - got);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			goto bad;
	}
	return 1;
bad:
	vu_close_fds(m);
	errno = EBADMSG;
	return -1;
}

static int vu_reply(struct vu_dev *d, const struct vu_msg *m,
		    const void *payload, uint32_t size)
{
	uint8_t buf[VU_HDR_LEN + VU_MAX_PAYLOAD];
	uint32_t flags = VU_VERSION | VU_FLAG_REPLY;
	size_t off = 0;

	memcpy(buf, &m->request, 4);
	memcpy(buf + 4, &flags, 4);
	memcpy(buf + 8, &size, 4);
	memcpy(buf + VU_HDR_LEN, payload, size);
	while (off < VU_HDR_LEN + size) {
		ssize_t n = send(d->sock, buf + off, VU_HDR_LEN + size - off,
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static int vu_reply_u64(struct vu_dev *d, const struct vu_msg *m, uint64_t v)
{
	return vu_reply(d, m, &v, sizeof(v));
}

static int vu_u64(const struct vu_msg *m, uint64_t *v)
{
	if (m->size < sizeof(*v)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(v, m->payload, sizeof(*v));
	return 0;
}

/* The ring a message names. */
static struct vu_ring *vu_msg_ring(struct vu_dev *d, uint32_t index)
{
	if (index >= VU_RINGS) {
		errno = EINVAL;
		return NULL;
	}
	return &d->ring[index];
}

/* (Re)translate a started ring after its addresses or the memory table
 * changed. */
static int vu_ring_map(struct vu_dev *d, struct vu_ring *r)
{
	if (!r->started)
		return 0;
	if (vring_map(&r->ring, &d->mem) < 0)
		return -1;
	/* In-flight chains were the previous session's: carry on from
	 * what the guest last saw. */
	r->ring.used_idx = (uint16_t)(r->ring.used[2] | r->ring.used[3] << 8);
	return 0;
}

static int vu_set_mem_table(struct vu_dev *d, struct vu_msg *m)
{
	struct guestmem_desc desc[GUESTMEM_MAX_REGIONS];
	uint32_t count;

	/* The old table goes first: a refused one leaves none mapped. */
	for (unsigned int i = 0; i < VU_RINGS; i++)
		vring_unmap(&d->ring[i].ring);
	guestmem_unmap(&d->mem);
	if (m->size < 8) {
		errno = EINVAL;
		return -1;
	}
	memcpy(&count, m->payload, 4);
	if (!count || count > GUESTMEM_MAX_REGIONS || count != m->nfds ||
	    m->size < 8 + count * sizeof(desc[0])) {
		errno = EINVAL;
		return -1;
	}
	/* Layout per region: gpa, size, uva, mmap_offset, all u64. */
	memcpy(desc, m->payload + 8, count * sizeof(desc[0]));
	if (guestmem_map(&d->mem, desc, m->fds, count) < 0)
		return -1;
	for (unsigned int i = 0; i < VU_RINGS; i++)
		if (vu_ring_map(d, &d->ring[i]) < 0)
			return -1;
	return 0;
}

static int vu_set_ring_fd(struct vu_dev *d, struct vu_msg *m, bool kick)
{
	struct vu_ring *r;
	uint64_t v;
	int fd = -1;

	if (vu_u64(m, &v) < 0)
		return -1;
	r = vu_msg_ring(d, (uint32_t)(v & VU_VRING_IDX_MASK));
	if (!r || (v & ~(uint64_t)(VU_VRING_IDX_MASK | VU_VRING_NOFD))) {
		errno = EINVAL;
		return -1;
	}
	if (!(v & VU_VRING_NOFD)) {
		if (m->nfds != 1) {
			errno = EINVAL;
			return -1;
		}
		fd = m->fds[0];
		m->fds[0] = -1;
	}
	if (!kick) {
		vu_close(&r->call_fd);
		r->call_fd = fd;
		return 0;
	}
	/* We wait for kicks; a polling frontend is not supported. */
	if (fd < 0) {
		errno = EINVAL;
		return -1;
	}
	vu_close(&r->kick_fd);
	r->kick_fd = fd;
	r->started = true;
	if (!(d->features & VU_F_PROTOCOL_FEATURES))
		r->enabled = true;
	return vu_ring_map(d, r);
}

static int vu_get_config(struct vu_dev *d, const struct vu_msg *m)
{
	uint8_t out[VU_CONFIG_HDR + VU_CONFIG_SIZE];
	uint8_t space[VU_CONFIG_SIZE];
	uint32_t offset, size;

	if (m->size < VU_CONFIG_HDR) {
		errno = EINVAL;
		return -1;
	}
	memcpy(&offset, m->payload, 4);
	memcpy(&size, m->payload + 4, 4);
	if (offset > VU_CONFIG_SIZE || size > VU_CONFIG_SIZE - offset) {
		errno = EINVAL;
		return -1;
	}
	for (int i = 0; i < VU_CONFIG_SIZE; i++)
		space[i] = (uint8_t)(d->guest_cid >> (8 * i)); /* le64 */
	memcpy(out, m->payload, VU_CONFIG_HDR);
	memcpy(out + VU_CONFIG_HDR, space + offset, size);
	return vu_reply(d, m, out, VU_CONFIG_HDR + size);
}

static int vu_dispatch(struct vu_dev *d, struct vu_msg *m, const char **what)
{
	struct vu_ring *r;
	uint32_t state[2];
	uint64_t v;

	switch (m->request) {
	case VU_GET_FEATURES:
		*what = "GET_FEATURES";
		return vu_reply_u64(d, m, VU_FEATURES);
	case VU_SET_FEATURES:
		*what = "SET_FEATURES";
		if (vu_u64(m, &v) < 0)
			return -1;
		if (v & ~VU_FEATURES) {
			errno = EINVAL;
			return -1;
		}
		d->features = v;
		return 0;
	case VU_GET_PROTOCOL_FEATURES:
		*what = "GET_PROTOCOL_FEATURES";
		return vu_reply_u64(d, m, VU_PROTOCOL_FEATURES);
	case VU_SET_PROTOCOL_FEATURES:
		*what = "SET_PROTOCOL_FEATURES";
		if (vu_u64(m, &v) < 0)
			return -1;
		if (v & ~VU_PROTOCOL_FEATURES) {
			errno = EINVAL;
			return -1;
		}
		d->protocol_features = v;
		return 0;
	case VU_SET_OWNER:
		*what = "SET_OWNER";
		return 0;
	case VU_RESET_OWNER:
		*what = "RESET_OWNER";
		vu_reset(d);
		return 0;
	case VU_SET_MEM_TABLE:
		*what = "SET_MEM_TABLE";
		return vu_set_mem_table(d, m);
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
	case VU_GET_VRING_BASE:
		*what = m->request == VU_SET_VRING_NUM ? "SET_VRING_NUM" :
			m->request == VU_SET_VRING_BASE ? "SET_VRING_BASE" :
			m->request == VU_SET_VRING_ENABLE ? "SET_VRING_ENABLE" :
			"GET_VRING_BASE";
		if (m->size < sizeof(state)) {
			errno = EINVAL;
			return -1;
		}
		memcpy(state, m->payload, sizeof(state));
		r = vu_msg_ring(d, state[0]);
		if (!r)
			return -1;
		if (m->request == VU_SET_VRING_NUM) {
			if (r->started || !vring_size_ok(state[1])) {
				errno = EINVAL;
				return -1;
			}
			r->ring.num = (uint16_t)state[1];
			return 0;
		}
		if (m->request == VU_SET_VRING_BASE) {
			if (r->started || state[1] > UINT16_MAX) {
				errno = EINVAL;
				return -1;
			}
			r->ring.last_avail = (uint16_t)state[1];
			return 0;
		}
		if (m->request == VU_SET_VRING_ENABLE) {
			if (state[1] > 1) {
				errno = EINVAL;
				return -1;
			}
			r->enabled = state[1];
			return 0;
		}
		/* GET_VRING_BASE stops the ring. */
		r->started = r->enabled = false;
		vring_unmap(&r->ring);
		vu_close(&r->kick_fd);
		state[1] = r->ring.last_avail;
		return vu_reply(d, m, state, sizeof(state));
	case VU_SET_VRING_ADDR: {
		/* index, flags (u32); desc, used, avail, log (u64). */
		uint64_t addr[3];
		uint32_t index;

		*what = "SET_VRING_ADDR";
		if (m->size < 40) {
			errno = EINVAL;
			return -1;
		}
		memcpy(&index, m->payload, 4);
		memcpy(addr, m->payload + 8, sizeof(addr));
		r = vu_msg_ring(d, index);
		if (!r)
			return -1;
		r->ring.desc_uva = addr[0];
		r->ring.used_uva = addr[1];
		r->ring.avail_uva = addr[2];
		return vu_ring_map(d, r);
	}
	case VU_SET_VRING_KICK:
		*what = "SET_VRING_KICK";
		return vu_set_ring_fd(d, m, true);
	case VU_SET_VRING_CALL:
		*what = "SET_VRING_CALL";
		return vu_set_ring_fd(d, m, false);
	case VU_SET_VRING_ERR:
		*what = "SET_VRING_ERR";
		/* We report no ring errors this way; the fd is closed. */
		return 0;
	case VU_GET_CONFIG:
		*what = "GET_CONFIG";
		return vu_get_config(d, m);
	case VU_SET_CONFIG:
		/* The guest CID is ours to give, not QEMU's to change. */
		*what = "SET_CONFIG";
		return 0;
	default:
		*what = "unknown request";
		errno = EPROTO;
		return -1;
	}
}

int vu_handle(struct vu_dev *d, struct vu_msg *m, const char **what)
{
	int rc = vu_dispatch(d, m, what);
	int saved = errno;

	vu_close_fds(m);
	errno = saved;
	return rc;
}

bool vu_ring_running(const struct vu_dev *d, unsigned int i)
{
	const struct vu_ring *r = &d->ring[i];

	return r->started && r->enabled && r->ring.desc && !r->ring.broken;
}

void vu_ring_notify(struct vu_dev *d, unsigned int i)
{
	struct vu_ring *r = &d->ring[i];
	uint64_t one = 1;

	if (r->call_fd >= 0 && vring_need_notify(&r->ring))
		(void)!write(r->call_fd, &one, sizeof(one));
}
