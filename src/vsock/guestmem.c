/* Guest memory regions and checked address translation.  See guestmem.h. */
#include "vsock/guestmem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

/* Whether [a, a + alen) and [b, b + blen) share a byte; neither wraps. */
static int guestmem_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int guestmem_check_new(const struct guestmem *m, uint64_t gpa,
			      uint64_t uva, uint64_t size)
{
	if (m->count >= GUESTMEM_MAX_REGIONS || !size ||
	    gpa + size < gpa || uva + size < uva) {
		errno = EINVAL;
		return -1;
	}
	for (unsigned int i = 0; i < m->count; i++) {
		const struct guestmem_region *r = &m->region[i];

		if (guestmem_overlap(gpa, size, r->gpa, r->size)) {
			errno = EINVAL;
			return -1;
		}
	}
	return 0;
}

int guestmem_add(struct guestmem *m, uint64_t gpa, uint64_t uva, void *host,
		 uint64_t size)
{
	struct guestmem_region *r;

	if (guestmem_check_new(m, gpa, uva, size) < 0)
		return -1;
	r = &m->region[m->count++];
	*r = (struct guestmem_region){ .gpa = gpa, .size = size, .uva = uva,
				       .host = host };
	return 0;
}

int guestmem_map(struct guestmem *m, const struct guestmem_desc *desc,
		 const int *fds, unsigned int count)
{
	int saved;

	if (count > GUESTMEM_MAX_REGIONS) {
		errno = EINVAL;
		return -1;
	}
	for (unsigned int i = 0; i < count; i++) {
		const struct guestmem_desc *d = &desc[i];
		uint64_t len = d->size + d->mmap_offset;
		void *p;

		if (len < d->size || len > SIZE_MAX ||
		    guestmem_check_new(m, d->gpa, d->uva, d->size) < 0) {
			errno = EINVAL;
			goto fail;
		}
		p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fds[i], 0);
		if (p == MAP_FAILED)
			goto fail;
		m->region[m->count++] = (struct guestmem_region){
			.gpa = d->gpa, .size = d->size, .uva = d->uva,
			.host = (uint8_t *)p + d->mmap_offset,
			.map = p, .map_len = (size_t)len,
		};
	}
	return 0;
fail:
	saved = errno;
	guestmem_unmap(m);
	errno = saved;
	return -1;
}

void guestmem_unmap(struct guestmem *m)
{
	for (unsigned int i = 0; i < m->count; i++)
		if (m->region[i].map)
			munmap(m->region[i].map, m->region[i].map_len);
	memset(m, 0, sizeof(*m));
}

/* by_uva: match QEMU's virtual addresses instead of guest physical ones. */
static void *guestmem_find(const struct guestmem *m, uint64_t addr,
			   uint64_t len, int by_uva)
{
	if (!len)
		return NULL;
	for (unsigned int i = 0; i < m->count; i++) {
		const struct guestmem_region *r = &m->region[i];
		uint64_t base = by_uva ? r->uva : r->gpa;
		uint64_t off;

		if (addr < base)
			continue;
		off = addr - base;
		/* off < size and len <= size - off: no overflow possible. */
		if (off < r->size && len <= r->size - off)
			return r->host + off;
	}
	return NULL;
}

void *guestmem_gpa(const struct guestmem *m, uint64_t gpa, uint64_t len)
{
	return guestmem_find(m, gpa, len, 0);
}

void *guestmem_uva(const struct guestmem *m, uint64_t uva, uint64_t len)
{
	return guestmem_find(m, uva, len, 1);
}
