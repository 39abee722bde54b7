/* The virtio-console (hvc0) of one VM, shared by any number of viewers.
 * Every viewer gets all output, and input from any viewer goes to the
 * guest.  The last CONSOLE_SCROLLBACK bytes are replayed on attach, so a
 * viewer that attaches after boot still sees the prompt. */
#ifndef VMHOSTD_CONSOLE_H
#define VMHOSTD_CONSOLE_H

#include <stddef.h>

#include "common/buf.h"
#include "engine/control.h"
#include "common/loop.h"

#define CONSOLE_SCROLLBACK (16 * 1024)
#define CONSOLE_INPUT_MAX (64 * 1024)
#define CONSOLE_VIEWERS_MAX 32
#define CONSOLE_READ_BUDGET (64 * 1024) /* guest bytes per wake-up */

struct console {
	struct loop *loop;
	struct loop_source src;
	char ring[CONSOLE_SCROLLBACK];
	size_t ring_start, ring_len;
	struct buf tx; /* input not yet taken by the guest */
	struct client *viewers[CONSOLE_VIEWERS_MAX];
	size_t viewer_count;
};

/* Watch fd (taking it). */
int console_open(struct console *con, struct loop *loop, int fd);
/* Attach c as a viewer: answers its request and replays the scrollback.
 * Returns -1 with errno EBUSY when there are too many viewers. */
int console_attach(struct console *con, struct client *c);
/* Detach every viewer (they see end of stream) and close the fd. */
void console_close(struct console *con);

#endif
