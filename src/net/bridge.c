#include "net/bridge.h"

#include <errno.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include "net/link.h"
#include "net/nl.h"

int bridge_create(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	struct nlattr *info, *data;
	struct nl nl;

	if (link_name_check(name) == -1)
		return -1;
	if (nl_open(&nl) == -1)
		return -1;
	/* NLM_F_EXCL: never adopt an interface someone else made. */
	nlh = nl_request(&nl, buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
	mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
	data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
	/* Snooping makes the bridge itself join the multicast router
	 * discovery groups and send IGMP/MLD reports onto the link; with
	 * two ports, flooding multicast is what we want anyway. */
	mnl_attr_put_u8(nlh, IFLA_BR_MCAST_SNOOPING, 0);
	mnl_attr_nest_end(nlh, data);
	mnl_attr_nest_end(nlh, info);
	if (nl_once(nlh, &nl, NULL, NULL) == -1)
		return -1;
	/* The kernel takes no IFLA_AF_SPEC at creation (EAFNOSUPPORT), so
	 * quieten it now, while it is still down and silent. */
	if (link_set_quiet(name) == -1)
		goto fail;
	return 0;
fail:;
	int saved = errno;
	link_delete(name);
	errno = saved;
	return -1;
}

int bridge_add_if(const char *bridge, const char *ifname)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	struct nl nl;
	int master;

	if (link_name_check(ifname) == -1)
		return -1;
	master = link_index(bridge);
	if (master == -1)
		return -1;
	if (nl_open(&nl) == -1)
		return -1;
	nlh = nl_request(&nl, buf, RTM_NEWLINK, 0);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	mnl_attr_put_u32(nlh, IFLA_MASTER, (uint32_t)master);
	return nl_once(nlh, &nl, NULL, NULL);
}
