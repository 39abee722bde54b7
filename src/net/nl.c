#include "net/nl.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

int nl_open(struct nl *nl)
{
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock)
		return -1;
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) == -1) {
		int saved = errno;

		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		errno = saved;
		return -1;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (unsigned int)time(NULL);
	return 0;
}

void nl_close(struct nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
}

struct nlmsghdr *nl_request(struct nl *nl, void *buf, uint16_t type,
			    uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++nl->seq;
	return nlh;
}

int nl_talk(struct nl *nl, struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	char *buf;
	ssize_t n;
	int ret;

	if (mnl_socket_sendto(nl->sock, req, req->nlmsg_len) < 0)
		return -1;

	/* Heap, not stack: a dump reply is up to 32 KiB. */
	buf = malloc(NL_RECV_SIZE);
	if (!buf)
		return -1;
	do {
		n = mnl_socket_recvfrom(nl->sock, buf, NL_RECV_SIZE);
		if (n < 0) {
			ret = -1;
			break;
		}
		/* mnl_cb_run turns an NLMSG_ERROR into -1 with errno set. */
		ret = mnl_cb_run(buf, (size_t)n, req->nlmsg_seq, nl->portid,
				 cb, data);
	} while (ret > MNL_CB_STOP);

	int saved = errno;
	free(buf);
	errno = saved;
	return ret < 0 ? -1 : 0;
}

int nl_once(struct nlmsghdr *req, struct nl *nl, mnl_cb_t cb, void *data)
{
	int ret = nl_talk(nl, req, cb, data);
	int saved = errno;

	nl_close(nl);
	errno = saved;
	return ret;
}

void nl_put_quiet(struct nlmsghdr *nlh)
{
	struct nlattr *spec = mnl_attr_nest_start(nlh, IFLA_AF_SPEC);
	struct nlattr *inet6 = mnl_attr_nest_start(nlh, AF_INET6);

	mnl_attr_put_u8(nlh, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
	mnl_attr_nest_end(nlh, inet6);
	mnl_attr_nest_end(nlh, spec);
}
