/* Capped byte buffers for per-client queues.  See buf.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

void buf_init(struct buf *b, size_t limit)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->limit = limit;
}

void buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b, b->limit);
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	size_t want;
	char *d;

	if (n > b->limit - b->len) {
		errno = ENOBUFS;
		return -1;
	}
	if (b->len + n > b->cap) {
		want = b->cap ? b->cap : 4096;
		while (want < b->len + n)
			want *= 2;
		if (want > b->limit)
			want = b->limit;
		d = realloc(b->data, want);
		if (!d)
			return -1;
		b->data = d;
		b->cap = want;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}
