/* The virtio-vsock device behind vhost-user, hybrid style (as Firecracker's
 * unix-socket side): a guest connect() to the host (CID 2) port P becomes a
 * connection to the host unix socket "BASE_P", for the ports allowed on the
 * command line.  Host-initiated connections are not offered.
 *
 * Stream semantics with credit-based flow control (virtio 1.2, 5.10.6.3):
 * - guest to host: each connection buffers at most buf_size bytes, the
 *   buf_alloc it advertises; a packet beyond the guest's credit resets that
 *   connection.  fwd_cnt grows as bytes reach the host socket.
 * - host to guest: bytes are read from the host socket straight into a
 *   guest rx buffer, never more than the guest's credit, so nothing is
 *   buffered on the host for that direction; a guest that stops reading
 *   stalls only its own connection (its host socket is no longer read).
 * - at most max_conns connections per device.
 * So the host memory a guest can pin is max_conns * buf_size, plus a
 * bounded queue of RST replies.
 *
 * The device never blocks: host sockets are non-blocking and watched
 * edge-triggered through the ops->watch callback (epoll in the program,
 * nothing in the fuzzer); a connection remembers it is readable until a
 * read says EAGAIN, so a host end that hangs up while the guest is not
 * reading costs no busy loop.
 */
#ifndef VMHOST_VSOCK_VSOCKDEV_H
#define VMHOST_VSOCK_VSOCKDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsock/guestmem.h"
#include "vsock/vring.h"

#define VSOCKDEV_MAX_PORTS 16

struct vsockdev_config {
	uint64_t guest_cid;
	const char *base;            /* host socket for port P: BASE_P */
	uint32_t ports[VSOCKDEV_MAX_PORTS];
	size_t port_count;
	unsigned int max_conns;
	uint32_t buf_size;           /* per connection, guest to host */
};

struct vsockdev_ops {
	/* Watch a new host socket, edge-triggered, for input, output and
	 * hang-up, calling vsockdev_conn_ready(slot, ...) on each edge
	 * (closing the fd ends the watch).  -1/errno on failure. */
	int (*watch)(void *ctx, int fd, unsigned int slot);
	/* A line for the log (no newline), rate-limited by the device. */
	void (*log)(void *ctx, const char *msg);
};

struct vsockdev_stats {
	uint64_t conns_opened, conns_refused, resets_sent, packets_dropped;
	uint64_t bytes_to_host, bytes_to_guest;
	unsigned int conns;          /* open now */
	size_t buffered;             /* guest-to-host bytes held now */
	size_t buffer_bytes;         /* allocated for connection buffers */
};

struct vsockdev;

/* -1/errno: EINVAL for a config out of range (no ports, a base that makes
 * socket paths too long, sizes of 0), ENOMEM. */
struct vsockdev *vsockdev_new(const struct vsockdev_config *cfg,
			      const struct vsockdev_ops *ops, void *ctx);
void vsockdev_free(struct vsockdev *d);

/* The rings and memory to use (owned by the vhost-user layer), or NULL to
 * detach; detaching closes every connection (the driver went away). */
void vsockdev_attach(struct vsockdev *d, struct vring *rx, struct vring *tx,
		     const struct guestmem *mem);

/* Work the queues: packets the guest sent (at most a batch; *more says
 * whether more are waiting), then what can go to the guest.  Returns which
 * rings the guest should be interrupted for: bit 0 rx, bit 1 tx. */
#define VSOCKDEV_NOTIFY_RX 1u
#define VSOCKDEV_NOTIFY_TX 2u
unsigned int vsockdev_run(struct vsockdev *d, bool *more);

/* A watched host socket is ready (EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits);
 * call vsockdev_run after. */
void vsockdev_conn_ready(struct vsockdev *d, unsigned int slot, uint32_t events);

void vsockdev_get_stats(const struct vsockdev *d, struct vsockdev_stats *s);

#endif
