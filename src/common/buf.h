/* A growable byte buffer with a hard cap, for per-client queues. */
#ifndef VMHOST_BUF_H
#define VMHOST_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;   /* allocated */
	size_t limit; /* never grow past this */
};

void buf_init(struct buf *b, size_t limit);
void buf_free(struct buf *b);
/* Append n bytes; -1 with errno ENOBUFS past the limit, ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
/* Drop the first n bytes. */
void buf_consume(struct buf *b, size_t n);

#endif
