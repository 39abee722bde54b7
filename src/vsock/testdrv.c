/* Fake guest driver for tests and fuzzing.  See testdrv.h. */
#include "vsock/testdrv.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DESC_LEN 16
#define SLOT_BUF (VSOCK_HDR_LEN + TESTDRV_PAYLOAD)

static uint64_t part_desc(uint16_t num) { (void)num; return 0; }
static uint64_t part_avail(uint16_t num) { return (uint64_t)DESC_LEN * num; }
static uint64_t part_used(uint16_t num)
{
	return (part_avail(num) + 6 + 2ull * num + 3) & ~3ull;
}
static uint64_t ring_bytes(uint16_t num)
{
	return (part_used(num) + 6 + 8ull * num + 15) & ~15ull;
}

uint64_t testdrv_desc_off(const struct testdrv *t, int r)
{
	return (uint64_t)(t->ring_base[r] - t->mem) + part_desc(t->num);
}

uint64_t testdrv_avail_off(const struct testdrv *t, int r)
{
	return (uint64_t)(t->ring_base[r] - t->mem) + part_avail(t->num);
}

int testdrv_init(struct testdrv *t, uint16_t num, uint64_t guest_cid)
{
	uint64_t rb = ring_bytes(num);

	memset(t, 0, sizeof(*t));
	if (!vring_size_ok(num) || num < 4) {
		errno = EINVAL;
		return -1;
	}
	t->num = num;
	t->guest_cid = guest_cid;
	/* Slots of two descriptors each: num / 2 buffers per ring. */
	t->size = 2 * rb + 2ull * (num / 2) * SLOT_BUF;
	t->mem = calloc(1, t->size);
	if (!t->mem)
		return -1;
	t->ring_base[0] = t->mem;
	t->ring_base[1] = t->mem + rb;
	t->bufs = t->mem + 2 * rb;
	if (guestmem_add(&t->gm, TESTDRV_GPA, TESTDRV_UVA, t->mem, t->size) < 0)
		goto fail;
	for (int r = 0; r < 2; r++) {
		struct vring *v = r ? &t->tx : &t->rx;
		uint64_t base = TESTDRV_UVA + (uint64_t)(t->ring_base[r] - t->mem);

		*v = (struct vring){
			.num = num, .desc_uva = base + part_desc(num),
			.avail_uva = base + part_avail(num),
			.used_uva = base + part_used(num),
		};
		if (vring_map(v, &t->gm) < 0)
			goto fail;
	}
	return 0;
fail:
	free(t->mem);
	t->mem = NULL;
	return -1;
}

void testdrv_fini(struct testdrv *t)
{
	free(t->mem);
	t->mem = NULL;
}

static uint8_t *slot_buf(struct testdrv *t, int r, uint16_t slot)
{
	return t->bufs + ((size_t)r * (t->num / 2) + slot) * SLOT_BUF;
}

static uint64_t gpa_of(const struct testdrv *t, const uint8_t *p)
{
	return TESTDRV_GPA + (uint64_t)(p - t->mem);
}

static void put_desc(struct testdrv *t, int r, uint16_t i, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = t->ring_base[r] + part_desc(t->num) + (size_t)i * DESC_LEN;
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t f = htole16(flags), n = htole16(next);

	memcpy(d, &a, 8);
	memcpy(d + 8, &l, 4);
	memcpy(d + 12, &f, 2);
	memcpy(d + 14, &n, 2);
}

static void publish(struct testdrv *t, int r, uint16_t head)
{
	uint8_t *avail = t->ring_base[r] + part_avail(t->num);
	uint16_t v = htole16(head);

	memcpy(avail + 4 + 2 * (size_t)(t->avail[r] % t->num), &v, 2);
	t->avail[r]++;
	__atomic_store_n((uint16_t *)(void *)(avail + 2), htole16(t->avail[r]),
			 __ATOMIC_RELEASE);
}

static uint16_t used_idx(const struct testdrv *t, int r)
{
	const uint8_t *used = t->ring_base[r] + part_used(t->num);

	return le16toh(__atomic_load_n((const uint16_t *)(const void *)(used + 2),
				       __ATOMIC_ACQUIRE));
}

static void used_elem(const struct testdrv *t, int r, uint16_t k,
		      uint32_t *id, uint32_t *len)
{
	const uint8_t *e = t->ring_base[r] + part_used(t->num) + 4 +
			   8 * (size_t)(k % t->num);

	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
	*id = le32toh(*id);
	*len = le32toh(*len);
}

unsigned int testdrv_reap_tx(struct testdrv *t)
{
	unsigned int n = 0;

	while (t->used_seen[1] != used_idx(t, 1)) {
		t->used_seen[1]++;
		n++;
	}
	return n;
}

bool testdrv_send(struct testdrv *t, const struct vsock_hdr *h,
		  const void *payload, uint32_t len)
{
	uint16_t slot;
	uint8_t *buf;

	testdrv_reap_tx(t);
	if ((uint16_t)(t->avail[1] - t->used_seen[1]) >= t->num / 2 ||
	    len > TESTDRV_PAYLOAD)
		return false;
	slot = t->avail[1] % (t->num / 2);
	buf = slot_buf(t, 1, slot);
	vsock_hdr_encode(h, buf);
	if (len)
		memcpy(buf + VSOCK_HDR_LEN, payload, len);
	put_desc(t, 1, 2 * slot, gpa_of(t, buf), VSOCK_HDR_LEN, len ? 1 : 0,
		 2 * slot + 1);
	put_desc(t, 1, 2 * slot + 1, gpa_of(t, buf + VSOCK_HDR_LEN), len, 0, 0);
	publish(t, 1, 2 * slot);
	return true;
}

bool testdrv_send_op(struct testdrv *t, uint32_t gport, uint32_t hport,
		     uint16_t op, uint32_t flags, const void *payload,
		     uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	struct vsock_hdr h = {
		.src_cid = t->guest_cid, .dst_cid = VSOCK_CID_HOST,
		.src_port = gport, .dst_port = hport, .len = len,
		.type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
		.buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt,
	};

	return testdrv_send(t, &h, payload, len);
}

unsigned int testdrv_post_rx(struct testdrv *t, unsigned int count)
{
	unsigned int n = 0;

	while (n < count &&
	       (uint16_t)(t->avail[0] - t->used_seen[0]) < t->num / 2) {
		uint16_t slot = t->avail[0] % (t->num / 2);
		uint8_t *buf = slot_buf(t, 0, slot);

		put_desc(t, 0, 2 * slot, gpa_of(t, buf), VSOCK_HDR_LEN, 1 | 2,
			 2 * slot + 1);
		put_desc(t, 0, 2 * slot + 1, gpa_of(t, buf + VSOCK_HDR_LEN),
			 TESTDRV_PAYLOAD, 2, 0);
		publish(t, 0, 2 * slot);
		n++;
	}
	return n;
}

bool testdrv_recv(struct testdrv *t, struct vsock_hdr *h, uint8_t *payload,
		  uint32_t *len)
{
	uint32_t id, used_len;
	uint8_t *buf;

	if (t->used_seen[0] == used_idx(t, 0))
		return false;
	used_elem(t, 0, t->used_seen[0]++, &id, &used_len);
	buf = slot_buf(t, 0, (uint16_t)(id / 2));
	memset(h, 0, sizeof(*h));
	*len = 0;
	if (used_len < VSOCK_HDR_LEN)
		return true;
	vsock_hdr_decode(buf, h);
	*len = used_len - VSOCK_HDR_LEN;
	if (*len > TESTDRV_PAYLOAD)
		*len = TESTDRV_PAYLOAD;
	if (payload)
		memcpy(payload, buf + VSOCK_HDR_LEN, *len);
	return true;
}
