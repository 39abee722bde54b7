/* The virtio-vsock packet header (virtio 1.2, 5.10.6): 44 bytes, little
 * endian, in front of every packet on the rx and tx queues. */
#ifndef VMHOST_VSOCK_VSOCKPKT_H
#define VMHOST_VSOCK_VSOCKPKT_H

#include <stdint.h>

#define VSOCK_HDR_LEN 44
#define VSOCK_CID_HOST 2

enum vsock_type { VSOCK_TYPE_STREAM = 1, VSOCK_TYPE_SEQPACKET = 2 };

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

/* SHUTDOWN flags: the sender will receive / send no more. */
#define VSOCK_SHUTDOWN_RCV 1u
#define VSOCK_SHUTDOWN_SEND 2u

struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;        /* payload bytes after the header */
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;  /* sender's receive buffer for this stream */
	uint32_t fwd_cnt;    /* bytes the sender has consumed so far */
};

void vsock_hdr_decode(const uint8_t raw[VSOCK_HDR_LEN], struct vsock_hdr *h);
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t raw[VSOCK_HDR_LEN]);

#endif
