/* Split virtqueue, device side, on hostile guest memory.  See vring.h. */
#include "vsock/vring.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#define VRING_DESC_LEN 16
#define VRING_F_NEXT 1
#define VRING_F_WRITE 2
#define VRING_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1

/* Sizes including the event-index words, as the spec lays the rings out. */
static uint64_t vring_desc_size(uint16_t num) { return (uint64_t)VRING_DESC_LEN * num; }
static uint64_t vring_avail_size(uint16_t num) { return 6 + 2ull * num; }
static uint64_t vring_used_size(uint16_t num) { return 6 + 8ull * num; }

bool vring_size_ok(uint32_t num)
{
	return num && num <= VRING_MAX_SIZE && !(num & (num - 1));
}

int vring_map(struct vring *vr, const struct guestmem *m)
{
	if (!vring_size_ok(vr->num)) {
		errno = EINVAL;
		return -1;
	}
	/* Alignment from the spec (2.7.10); it also keeps our 16- and
	 * 32-bit atomic accesses aligned. */
	if (vr->desc_uva % 16 || vr->avail_uva % 2 || vr->used_uva % 4) {
		errno = EFAULT;
		return -1;
	}
	vr->desc = guestmem_uva(m, vr->desc_uva, vring_desc_size(vr->num));
	vr->avail = guestmem_uva(m, vr->avail_uva, vring_avail_size(vr->num));
	vr->used = guestmem_uva(m, vr->used_uva, vring_used_size(vr->num));
	if (!vr->desc || !vr->avail || !vr->used) {
		vring_unmap(vr);
		errno = EFAULT;
		return -1;
	}
	vr->broken = false;
	return 0;
}

void vring_unmap(struct vring *vr)
{
	vr->desc = vr->avail = vr->used = NULL;
}

static uint16_t vring_load16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)p,
				       __ATOMIC_ACQUIRE));
}

static void vring_store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), __ATOMIC_RELEASE);
}

static uint16_t vring_avail_idx(const struct vring *vr)
{
	return vring_load16(vr->avail + 2);
}

bool vring_has_avail(const struct vring *vr)
{
	return vr->avail && !vr->broken && vring_avail_idx(vr) != vr->last_avail;
}

struct vring_desc_copy {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static void vring_read_desc(const struct vring *vr, uint16_t i,
			    struct vring_desc_copy *d)
{
	uint8_t raw[VRING_DESC_LEN];

	/* One copy; the guest may rewrite the entry meanwhile, and we use
	 * only what we copied. */
	memcpy(raw, vr->desc + (size_t)i * VRING_DESC_LEN, sizeof(raw));
	memcpy(&d->addr, raw, 8);
	memcpy(&d->len, raw + 8, 4);
	memcpy(&d->flags, raw + 12, 2);
	memcpy(&d->next, raw + 14, 2);
	d->addr = le64toh(d->addr);
	d->len = le32toh(d->len);
	d->flags = le16toh(d->flags);
	d->next = le16toh(d->next);
}

/* Walk the chain at c->head; 0 or -1/EBADMSG. */
static int vring_walk(const struct vring *vr, const struct guestmem *m,
		      struct vring_chain *c)
{
	struct vring_desc_copy d;
	uint16_t i = c->head;

	c->nseg = c->nread = 0;
	c->read_len = c->write_len = 0;
	for (;;) {
		struct vring_seg *s;
		bool writable;

		if (c->nseg == VRING_CHAIN_MAX || c->nseg == vr->num)
			goto bad;
		vring_read_desc(vr, i, &d);
		writable = d.flags & VRING_F_WRITE;
		if (d.flags & VRING_F_INDIRECT)
			goto bad;
		/* Readable after writable is a driver error (2.7.4.2). */
		if (!writable && c->nseg != c->nread)
			goto bad;
		s = &c->seg[c->nseg];
		s->len = d.len;
		s->p = NULL;
		if (d.len) {
			s->p = guestmem_gpa(m, d.addr, d.len);
			if (!s->p)
				goto bad;
		}
		if (writable) {
			if (c->write_len + d.len < c->write_len)
				goto bad;
			c->write_len += d.len;
		} else {
			if (c->read_len + d.len < c->read_len)
				goto bad;
			c->read_len += d.len;
			c->nread++;
		}
		c->nseg++;
		if (!(d.flags & VRING_F_NEXT))
			return 0;
		if (d.next >= vr->num)
			goto bad;
		i = d.next;
	}
bad:
	errno = EBADMSG;
	return -1;
}

int vring_pop(struct vring *vr, const struct guestmem *m, struct vring_chain *c)
{
	uint16_t avail, head;

	if (!vr->avail || vr->broken)
		return 0;
	avail = vring_avail_idx(vr);
	if (avail == vr->last_avail)
		return 0;
	/* The driver can be at most a ring ahead of us. */
	if ((uint16_t)(avail - vr->last_avail) > vr->num)
		goto broken;
	head = vring_load16(vr->avail + 4 + 2 * (size_t)(vr->last_avail % vr->num));
	if (head >= vr->num)
		goto broken;
	vr->last_avail++;
	c->head = head;
	if (vring_walk(vr, m, c) < 0)
		return -1;
	return 1;
broken:
	vr->broken = true;
	errno = EPROTO;
	return -1;
}

void vring_unpop(struct vring *vr)
{
	vr->last_avail--;
}

void vring_push(struct vring *vr, uint16_t head, uint32_t len)
{
	uint8_t *elem;
	uint32_t v;

	if (!vr->used)
		return;
	elem = vr->used + 4 + 8 * (size_t)(vr->used_idx % vr->num);
	v = htole32(head);
	memcpy(elem, &v, 4);
	v = htole32(len);
	memcpy(elem + 4, &v, 4);
	vr->used_idx++;
	/* The element is visible before the index that publishes it. */
	vring_store16(vr->used + 2, vr->used_idx);
}

bool vring_need_notify(const struct vring *vr)
{
	if (!vr->avail)
		return false;
	/* Our used index store before the flags load (2.7.7.2). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !(vring_load16(vr->avail) & VRING_AVAIL_F_NO_INTERRUPT);
}

size_t vring_chain_read(const struct vring_chain *c, size_t off, void *dst,
			size_t len)
{
	uint8_t *out = dst;
	size_t done = 0;

	for (unsigned int i = 0; i < c->nread && done < len; i++) {
		const struct vring_seg *s = &c->seg[i];
		size_t n;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		n = s->len - off;
		if (n > len - done)
			n = len - done;
		memcpy(out + done, s->p + off, n);
		done += n;
		off = 0;
	}
	return done;
}

int vring_chain_write_iov(const struct vring_chain *c, size_t off, size_t len,
			  struct iovec *iov, int max, size_t *total)
{
	int n = 0;

	*total = 0;
	for (unsigned int i = c->nread; i < c->nseg && *total < len && n < max; i++) {
		const struct vring_seg *s = &c->seg[i];
		size_t k;

		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		k = s->len - off;
		if (k > len - *total)
			k = len - *total;
		iov[n].iov_base = s->p + off;
		iov[n].iov_len = k;
		n++;
		*total += k;
		off = 0;
	}
	return n;
}

size_t vring_chain_write(const struct vring_chain *c, size_t off,
			 const void *src, size_t len)
{
	struct iovec iov[VRING_CHAIN_MAX];
	const uint8_t *in = src;
	size_t total;
	int n = vring_chain_write_iov(c, off, len, iov, VRING_CHAIN_MAX, &total);

	for (int i = 0; i < n; i++) {
		memcpy(iov[i].iov_base, in, iov[i].iov_len);
		in += iov[i].iov_len;
	}
	return total;
}
