/* A fake virtio-vsock guest driver over memory we allocate: the rings and
 * buffers a guest would set up, for the unit tests and the fuzzer to drive
 * vsockdev without QEMU.  Like Linux 6.1, it splits each packet into a
 * header descriptor and a payload descriptor. */
#ifndef VMHOST_VSOCK_TESTDRV_H
#define VMHOST_VSOCK_TESTDRV_H

#include <stdbool.h>
#include <stdint.h>

#include "vsock/guestmem.h"
#include "vsock/vring.h"
#include "vsock/vsockpkt.h"

#define TESTDRV_GPA 0x100000ull
#define TESTDRV_UVA 0x7f0000000000ull
#define TESTDRV_PAYLOAD 4096u

struct testdrv {
	uint8_t *mem;
	uint64_t size;
	struct guestmem gm;
	struct vring rx, tx;       /* the device's view (vring_map'd) */
	uint16_t num;
	uint8_t *ring_base[2];     /* 0 rx, 1 tx: desc, then avail, then used */
	uint8_t *bufs;
	uint16_t avail[2];         /* the driver's avail index per ring */
	uint16_t used_seen[2];
	uint64_t guest_cid;
};

/* num: ring size (a power of two, at least 4).  -1/errno. */
int testdrv_init(struct testdrv *t, uint16_t num, uint64_t guest_cid);
void testdrv_fini(struct testdrv *t);

/* Byte offsets of ring r's parts from t->mem, for tests that corrupt them. */
uint64_t testdrv_desc_off(const struct testdrv *t, int r);
uint64_t testdrv_avail_off(const struct testdrv *t, int r);

/* Queue a packet on tx (header + payload); false when tx is full. */
bool testdrv_send(struct testdrv *t, const struct vsock_hdr *h,
		  const void *payload, uint32_t len);
/* A stream packet from the guest's port gport to host port hport. */
bool testdrv_send_op(struct testdrv *t, uint32_t gport, uint32_t hport,
		     uint16_t op, uint32_t flags, const void *payload,
		     uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt);
/* Post up to count rx buffers (header + TESTDRV_PAYLOAD); returns how many. */
unsigned int testdrv_post_rx(struct testdrv *t, unsigned int count);
/* Take the next packet the device put on rx: true and *h, payload (up to
 * TESTDRV_PAYLOAD bytes, *len) if there is one. */
bool testdrv_recv(struct testdrv *t, struct vsock_hdr *h, uint8_t *payload,
		  uint32_t *len);
/* Reclaim tx buffers the device has used; returns how many. */
unsigned int testdrv_reap_tx(struct testdrv *t);

#endif
