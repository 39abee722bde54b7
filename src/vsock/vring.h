/* The device side of a split virtqueue (virtio 1.x, 2.7) living in guest
 * memory that the guest may change at any moment.
 *
 * Everything read from the ring is read once into a local copy and checked
 * before use: the avail index may run at most num entries ahead, heads and
 * next links must be below num, a chain may have at most VRING_CHAIN_MAX
 * descriptors (so a loop ends), readable descriptors come before writable
 * ones, indirect descriptors are refused (the feature is not offered), and
 * every buffer must lie inside one guest memory region.  A bad chain is
 * handed back to the guest as used with length 0; a ring whose indices make
 * no sense is marked broken and not touched again until it is set up anew.
 */
#ifndef VMHOST_VSOCK_VRING_H
#define VMHOST_VSOCK_VRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vsock/guestmem.h"

#define VRING_MAX_SIZE 32768
/* Linux's vsock driver uses 1 or 2 descriptors per packet. */
#define VRING_CHAIN_MAX 16

struct vring_seg {
	uint8_t *p;
	uint32_t len;
};

/* A popped descriptor chain: seg[0..nread) are device-readable,
 * seg[nread..nseg) device-writable. */
struct vring_chain {
	uint16_t head;
	unsigned int nseg;
	unsigned int nread;
	uint32_t read_len;
	uint32_t write_len;
	struct vring_seg seg[VRING_CHAIN_MAX];
};

struct vring {
	uint16_t num;          /* 0: not configured */
	uint64_t desc_uva, avail_uva, used_uva;
	uint8_t *desc, *avail, *used; /* NULL until vring_map */
	uint16_t last_avail;   /* next avail entry to read */
	uint16_t used_idx;     /* next used entry to write */
	bool broken;
};

/* Whether num is a valid ring size (a power of two, 1..VRING_MAX_SIZE). */
bool vring_size_ok(uint32_t num);

/* Translate the ring's three parts (num and the *_uva fields set) through
 * m and check their alignment.  -1 with errno EINVAL (no size) or EFAULT
 * (outside guest memory, misaligned). */
int vring_map(struct vring *vr, const struct guestmem *m);

/* Forget the mapping (the indices stay, for VHOST_USER_GET_VRING_BASE). */
void vring_unmap(struct vring *vr);

/* Take the next available chain.  1: c is filled; 0: nothing available;
 * -1 with errno EBADMSG: the chain at c->head is malformed (give it back
 * with vring_push(vr, c->head, 0)); -1 with EPROTO: the ring is broken. */
int vring_pop(struct vring *vr, const struct guestmem *m, struct vring_chain *c);

/* Put the last popped chain back unread (it is read again, and checked
 * again, by the next vring_pop). */
void vring_unpop(struct vring *vr);

/* Whether the guest has made a chain available that was not popped. */
bool vring_has_avail(const struct vring *vr);

/* Return chain head to the guest with len bytes written into it. */
void vring_push(struct vring *vr, uint16_t head, uint32_t len);

/* After pushes: whether the guest wants an interrupt. */
bool vring_need_notify(const struct vring *vr);

/* Copy len bytes at offset off of the chain's readable part into dst;
 * returns how many were there (less than len at the end). */
size_t vring_chain_read(const struct vring_chain *c, size_t off, void *dst,
			size_t len);
/* Copy len bytes into the chain's writable part at offset off; returns how
 * many fitted. */
size_t vring_chain_write(const struct vring_chain *c, size_t off,
			 const void *src, size_t len);
/* iovecs for at most len bytes of the writable part from offset off; returns
 * the number of iovecs (at most max) and sets *total. */
int vring_chain_write_iov(const struct vring_chain *c, size_t off, size_t len,
			  struct iovec *iov, int max, size_t *total);

#endif
