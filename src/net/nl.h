/* A short-lived rtnetlink conversation, internal to src/net.
 *
 * Every primitive opens its own socket, sends one request and reads until
 * the kernel's ACK, error or end of dump: no shared state, and a failure
 * in one call cannot desynchronise the next.
 */
#ifndef VMHOST_NET_NL_H
#define VMHOST_NET_NL_H

#include <libmnl/libmnl.h>

/* Big enough for one RTM_NEWLINK of a dump, stats included. */
#define NL_RECV_SIZE 32768

struct nl {
	struct mnl_socket *sock;
	unsigned int portid;
	unsigned int seq;
};

int nl_open(struct nl *nl);
void nl_close(struct nl *nl);

/* Start a request of type with flags (NLM_F_REQUEST|NLM_F_ACK are added)
 * in buf, which holds MNL_SOCKET_BUFFER_SIZE bytes. */
struct nlmsghdr *nl_request(struct nl *nl, void *buf, uint16_t type,
			    uint16_t flags);

/* Send req and run cb (may be NULL) on each reply until the ACK or the
 * end of a dump.  Returns -1 with errno set, an NLMSGERR becoming its
 * errno (ENODEV for a missing link, EEXIST, EPERM...). */
int nl_talk(struct nl *nl, struct nlmsghdr *req, mnl_cb_t cb, void *data);

/* Open, talk, close: one request on a fresh socket. */
int nl_once(struct nlmsghdr *req, struct nl *nl, mnl_cb_t cb, void *data);

/* Append IFLA_AF_SPEC { AF_INET6 { ADDR_GEN_MODE none } }: no IPv6
 * link-local address, so the host sends nothing onto the link. */
void nl_put_quiet(struct nlmsghdr *nlh);

#endif
