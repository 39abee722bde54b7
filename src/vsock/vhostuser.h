/* The backend side of the vhost-user protocol (QEMU docs/interop/
 * vhost-user.rst), the parts QEMU 7.2's vhost-user-vsock device uses:
 * features and protocol features (only CONFIG), the memory table (regions
 * mapped from the fds QEMU sends: the VM's memfd RAM), vring size, base,
 * addresses, kick and call eventfds, vring enable, and GET_CONFIG for the
 * guest CID.  Anything else is refused, which ends the session.
 *
 * The caller owns the socket and the event loop: vu_recv reads one
 * message (with its fds), vu_handle applies it and writes the reply.
 * After a message, vu_ring_running says which rings to serve.
 */
#ifndef VMHOST_VSOCK_VHOSTUSER_H
#define VMHOST_VSOCK_VHOSTUSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsock/guestmem.h"
#include "vsock/vring.h"

#define VU_MAX_FDS 8
#define VU_MAX_PAYLOAD 512
/* Rings of a vhost-user-vsock backend: rx (device to guest), tx.  The
 * event queue stays in QEMU. */
#define VU_RINGS 2
#define VU_RING_RX 0
#define VU_RING_TX 1

struct vu_msg {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
	uint8_t payload[VU_MAX_PAYLOAD];
	int fds[VU_MAX_FDS];
	unsigned int nfds;
};

struct vu_ring {
	struct vring ring;
	int kick_fd;           /* -1: none */
	int call_fd;           /* -1: none (the guest polls) */
	bool started;          /* kick received, not stopped since */
	bool enabled;          /* SET_VRING_ENABLE */
};

struct vu_dev {
	int sock;
	uint64_t features;           /* acked by the frontend */
	uint64_t protocol_features;  /* acked */
	struct guestmem mem;
	struct vu_ring ring[VU_RINGS];
	uint64_t guest_cid;          /* the device config space */
};

void vu_init(struct vu_dev *d, int sock, uint64_t guest_cid);
/* Unmap memory and close every fd we hold (not sock). */
void vu_reset(struct vu_dev *d);

/* Read one message: 1 read, 0 the frontend hung up, -1/errno (EBADMSG:
 * malformed framing; the fds received are closed). */
int vu_recv(int sock, struct vu_msg *m);

/* Apply m, writing any reply to d->sock; the fds in m are taken or
 * closed.  -1/errno on a request that ends the session: EPROTO (unknown or
 * out of order), EINVAL (bad values), or the errno of mmap or the reply
 * write.  *what gets a static description for the log. */
int vu_handle(struct vu_dev *d, struct vu_msg *m, const char **what);

/* Whether ring i is to be served: started, enabled, mapped, not broken. */
bool vu_ring_running(const struct vu_dev *d, unsigned int i);

/* Interrupt the guest for ring i if it asked to be. */
void vu_ring_notify(struct vu_dev *d, unsigned int i);

#endif
