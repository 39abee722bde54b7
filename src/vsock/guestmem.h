/* Guest memory as the vhost-user frontend (QEMU) shares it: up to
 * GUESTMEM_MAX_REGIONS regions, each an fd we map, known by its guest
 * physical address (what descriptors hold) and by QEMU's virtual address
 * (what VHOST_USER_SET_VRING_ADDR holds).
 *
 * Every translation checks that the whole range [addr, addr + len) lies in
 * one region, with no arithmetic overflow; a range that crosses regions is
 * refused like one outside them (QEMU never places a ring or a vsock buffer
 * across its RAM blocks, and a guest that does is not served).
 */
#ifndef VMHOST_VSOCK_GUESTMEM_H
#define VMHOST_VSOCK_GUESTMEM_H

#include <stddef.h>
#include <stdint.h>

#define GUESTMEM_MAX_REGIONS 8

struct guestmem_region {
	uint64_t gpa;     /* guest physical address of the first byte */
	uint64_t size;
	uint64_t uva;     /* QEMU's virtual address of the first byte */
	uint8_t *host;    /* our mapping of the first byte */
	void *map;        /* what munmap gets (NULL: not ours to unmap) */
	size_t map_len;
};

struct guestmem {
	struct guestmem_region region[GUESTMEM_MAX_REGIONS];
	unsigned int count;
};

/* One region as VHOST_USER_SET_MEM_TABLE describes it. */
struct guestmem_desc {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint64_t mmap_offset;
};

/* Map count regions (fds[i] for desc[i]; the fds stay the caller's).
 * Replaces nothing: call on an empty (zeroed or unmapped) table.  -1 with
 * errno EINVAL (too many regions, zero or overflowing sizes, overlapping
 * guest ranges) or mmap's errno; nothing stays mapped on failure. */
int guestmem_map(struct guestmem *m, const struct guestmem_desc *desc,
		 const int *fds, unsigned int count);

/* Add a region already in our address space (tests, fuzzing). */
int guestmem_add(struct guestmem *m, uint64_t gpa, uint64_t uva, void *host,
		 uint64_t size);

/* Unmap every region; the table is empty after. */
void guestmem_unmap(struct guestmem *m);

/* Our pointer to [gpa, gpa + len), or NULL if that range is not entirely
 * inside one region (len 0 is refused too). */
void *guestmem_gpa(const struct guestmem *m, uint64_t gpa, uint64_t len);
/* The same for a range given by QEMU's virtual address. */
void *guestmem_uva(const struct guestmem *m, uint64_t uva, uint64_t len);

#endif
