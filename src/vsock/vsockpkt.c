/* virtio-vsock header codec: fixed little-endian offsets, no struct
 * punning of guest bytes.  See vsockpkt.h. */
#include "vsock/vsockpkt.h"

#include <endian.h>
#include <string.h>

static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static void put64(uint8_t *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }
static void put32(uint8_t *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put16(uint8_t *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }

void vsock_hdr_decode(const uint8_t raw[VSOCK_HDR_LEN], struct vsock_hdr *h)
{
	h->src_cid = get64(raw);
	h->dst_cid = get64(raw + 8);
	h->src_port = get32(raw + 16);
	h->dst_port = get32(raw + 20);
	h->len = get32(raw + 24);
	h->type = get16(raw + 28);
	h->op = get16(raw + 30);
	h->flags = get32(raw + 32);
	h->buf_alloc = get32(raw + 36);
	h->fwd_cnt = get32(raw + 40);
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_LEN])
{
	put64(raw, h->src_cid);
	put64(raw + 8, h->dst_cid);
	put32(raw + 16, h->src_port);
	put32(raw + 20, h->dst_port);
	put32(raw + 24, h->len);
	put16(raw + 28, h->type);
	put16(raw + 30, h->op);
	put32(raw + 32, h->flags);
	put32(raw + 36, h->buf_alloc);
	put32(raw + 40, h->fwd_cnt);
}
