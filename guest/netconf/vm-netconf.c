/* vm-netconf: the guest side of vmhost's inter-VM links.
 *
 * Dumps the links at start, then follows RTM_NEWLINK and configures each
 * interface once from its MAC (see common/linkaddr.h): client ends get
 * 100.64.X.Y/32 and a route to the provider, provider ends 169.254.0.1/32
 * and a route to the client.  Talks rtnetlink itself so the static guest
 * binary needs nothing else.  Logs one line per interface to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "netconf.h"

#define NL_BUFSIZE 32768

struct nc {
	int req;                 /* requests and their acks, dumps */
	int events;              /* RTNLGRP_LINK notifications */
	uint32_t seq;
	bool dhcp_foreign;
	const char *dhcp_cmd;
	struct netconf_table table;
};

/* A request under construction: header plus attributes, bounded. */
struct nc_msg {
	struct nlmsghdr *nh;
	size_t cap;
};

static void nc_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void nc_log(const char *fmt, ...)
{
	va_list ap;

	fputs("vm-netconf: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int nc_open(uint32_t groups)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = groups };
	int rcvbuf = 1 << 20;
	int fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -1;
	/* Hot-plug bursts must not overflow the queue; if they do we redump. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void *nc_msg_put(struct nc_msg *m, size_t len)
{
	size_t at = NLMSG_ALIGN(m->nh->nlmsg_len);

	if (at + NLMSG_ALIGN(len) > m->cap)
		abort(); /* our own fixed-size requests: a bug, not input */
	m->nh->nlmsg_len = (uint32_t)(at + len);
	memset((char *)m->nh + at, 0, NLMSG_ALIGN(len));
	return (char *)m->nh + at;
}

static void nc_msg_attr(struct nc_msg *m, uint16_t type, const void *data,
			size_t len)
{
	struct rtattr *rta = nc_msg_put(m, RTA_LENGTH(len));

	rta->rta_type = type;
	rta->rta_len = (uint16_t)RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
}

static void nc_msg_init(struct nc *nc, struct nc_msg *m, void *buf,
			size_t cap, uint16_t type, uint16_t flags)
{
	memset(buf, 0, cap);
	m->nh = buf;
	m->cap = cap;
	m->nh->nlmsg_len = NLMSG_HDRLEN;
	m->nh->nlmsg_type = type;
	m->nh->nlmsg_flags = NLM_F_REQUEST | flags;
	m->nh->nlmsg_seq = ++nc->seq;
}

/* Send a request with NLM_F_ACK and wait for its ack; -1 with the
 * kernel's errno on failure. */
static int nc_transact(struct nc *nc, struct nc_msg *m)
{
	char buf[NL_BUFSIZE];
	uint32_t seq = m->nh->nlmsg_seq;

	m->nh->nlmsg_flags |= NLM_F_ACK;
	if (send(nc->req, m->nh, m->nh->nlmsg_len, 0) < 0)
		return -1;
	for (;;) {
		ssize_t n = recv(nc->req, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		size_t left = (size_t)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf;
		     NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_seq != seq || h->nlmsg_type != NLMSG_ERROR)
				continue;
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
				errno = EPROTO;
				return -1;
			}
			struct nlmsgerr *e = NLMSG_DATA(h);
			if (e->error == 0)
				return 0;
			errno = -e->error;
			return -1;
		}
	}
}

static int nc_link_up(struct nc *nc, int ifindex)
{
	char buf[256];
	struct nc_msg m;
	struct ifinfomsg *ifi;

	nc_msg_init(nc, &m, buf, sizeof(buf), RTM_NEWLINK, 0);
	ifi = nc_msg_put(&m, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return nc_transact(nc, &m);
}

static int nc_addr_add(struct nc *nc, int ifindex, uint32_t addr)
{
	char buf[256];
	struct nc_msg m;
	struct ifaddrmsg *ifa;
	uint32_t be = htonl(addr);

	nc_msg_init(nc, &m, buf, sizeof(buf), RTM_NEWADDR,
		    NLM_F_CREATE | NLM_F_REPLACE);
	ifa = nc_msg_put(&m, sizeof(*ifa));
	ifa->ifa_family = AF_INET;
	ifa->ifa_prefixlen = 32;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (uint32_t)ifindex;
	nc_msg_attr(&m, IFA_LOCAL, &be, sizeof(be));
	nc_msg_attr(&m, IFA_ADDRESS, &be, sizeof(be));
	return nc_transact(nc, &m);
}

/* dst/dst_len via gateway (0: none, a link-scope route) on ifindex. */
static int nc_route_add(struct nc *nc, int ifindex, uint32_t dst,
			uint8_t dst_len, uint32_t gateway)
{
	char buf[256];
	struct nc_msg m;
	struct rtmsg *rt;
	uint32_t oif = (uint32_t)ifindex;

	/* Append, not replace: with two client links, the first keeps the
	 * route to 169.254.0.1 and the later ones queue behind it. */
	nc_msg_init(nc, &m, buf, sizeof(buf), RTM_NEWROUTE,
		    NLM_F_CREATE | NLM_F_APPEND);
	rt = nc_msg_put(&m, sizeof(*rt));
	rt->rtm_family = AF_INET;
	rt->rtm_dst_len = dst_len;
	rt->rtm_table = RT_TABLE_MAIN;
	rt->rtm_protocol = RTPROT_STATIC;
	rt->rtm_type = RTN_UNICAST;
	rt->rtm_scope = gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
	if (gateway)
		rt->rtm_flags = RTNH_F_ONLINK;
	if (dst_len) {
		uint32_t be = htonl(dst);
		nc_msg_attr(&m, RTA_DST, &be, sizeof(be));
	}
	if (gateway) {
		uint32_t be = htonl(gateway);
		nc_msg_attr(&m, RTA_GATEWAY, &be, sizeof(be));
	}
	nc_msg_attr(&m, RTA_OIF, &oif, sizeof(oif));
	if (nc_transact(nc, &m) < 0 && errno != EEXIST)
		return -1; /* EEXIST: already there, from an earlier run */
	return 0;
}

/* Start the DHCP client in the background; it outlives us if it must. */
static int nc_dhcp_start(struct nc *nc, const char *ifname)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* An ignored SIGCHLD survives exec and would break the
		 * client's own waits for its hook script. */
		signal(SIGCHLD, SIG_DFL);
		execlp(nc->dhcp_cmd, nc->dhcp_cmd, "-i", ifname, "-b",
		       (char *)NULL);
		fprintf(stderr, "vm-netconf: %s: exec %s: %s\n", ifname,
			nc->dhcp_cmd, strerror(errno));
		_exit(127);
	}
	return 0;
}

static int nc_apply(struct nc *nc, const struct netconf_plan *p, int ifindex,
		    const char *ifname, const char **step)
{
	switch (p->action) {
	case NETCONF_CLIENT:
	case NETCONF_PROVIDER:
		*step = "link up";
		if (nc_link_up(nc, ifindex) < 0)
			return -1;
		*step = "address";
		if (nc_addr_add(nc, ifindex, p->local) < 0)
			return -1;
		*step = "route to peer";
		if (nc_route_add(nc, ifindex, p->peer, 32, 0) < 0)
			return -1;
		if (p->set_default) {
			*step = "default route";
			if (nc_route_add(nc, ifindex, 0, 0, p->peer) < 0)
				return -1;
			netconf_table_set_default(&nc->table, ifindex);
		}
		return 0;
	case NETCONF_DHCP:
		*step = "link up";
		if (nc_link_up(nc, ifindex) < 0)
			return -1;
		*step = "starting DHCP client";
		return nc_dhcp_start(nc, ifname);
	default:
		return 0;
	}
}

/* One RTM_NEWLINK or RTM_DELLINK, from the dump or an event. */
static void nc_handle_link(struct nc *nc, struct nlmsghdr *h)
{
	struct ifinfomsg *ifi = NLMSG_DATA(h);
	const uint8_t *mac = NULL;
	uint8_t key[LINKADDR_MAC_LEN] = { 0 };
	char ifname[IFNAMSIZ] = "?";
	struct netconf_plan plan;
	char line[160];
	const char *step = "";

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
		return;
	if (h->nlmsg_type == RTM_DELLINK) {
		if (netconf_table_remove(&nc->table, ifi->ifi_index))
			nc_log("link %d with the default route went away",
			       ifi->ifi_index);
		return;
	}

	size_t len = IFLA_PAYLOAD(h);
	for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len);
	     a = RTA_NEXT(a, len)) {
		size_t alen = RTA_PAYLOAD(a);
		if (a->rta_type == IFLA_ADDRESS && alen == LINKADDR_MAC_LEN)
			mac = RTA_DATA(a);
		else if (a->rta_type == IFLA_IFNAME && alen > 0) {
			size_t n = alen < sizeof(ifname) ? alen : sizeof(ifname) - 1;
			memcpy(ifname, RTA_DATA(a), n);
			ifname[n] = '\0';
		}
	}
	if (mac)
		memcpy(key, mac, sizeof(key));

	int fresh = netconf_table_add(&nc->table, ifi->ifi_index, key);
	if (fresh == 0)
		return;
	if (fresh < 0) {
		/* Leave it unconfigured rather than retry on every event. */
		nc_log("%s: too many links (%d), not configured", ifname,
		       NETCONF_MAX_LINKS);
		return;
	}

	netconf_plan(mac, ifi->ifi_type == ARPHRD_ETHER,
		     (ifi->ifi_flags & IFF_LOOPBACK) != 0,
		     netconf_table_default_taken(&nc->table), nc->dhcp_foreign,
		     &plan);
	if (plan.action == NETCONF_SKIP)
		return;
	netconf_describe(&plan, ifname, mac, line, sizeof(line));
	/* Tried once: a failure is logged, never retried in a loop. */
	if (nc_apply(nc, &plan, ifi->ifi_index, ifname, &step) < 0)
		nc_log("%s: FAILED at %s: %s", line, step, strerror(errno));
	else
		nc_log("%s", line);
}

/* Handle every link message in buf; returns whether NLMSG_DONE was seen. */
static bool nc_handle_buf(struct nc *nc, char *buf, size_t len)
{
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len);
	     h = NLMSG_NEXT(h, len)) {
		if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)
			return true;
		if (h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK)
			nc_handle_link(nc, h);
	}
	return false;
}

/* Configure every existing link.  Links are dumped into a private buffer
 * first, since configuring one uses the same socket. */
static int nc_dump(struct nc *nc)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = {
			.nlmsg_len = sizeof(req),
			.nlmsg_type = RTM_GETLINK,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			.nlmsg_seq = ++nc->seq,
		},
		.ifi = { .ifi_family = AF_UNSPEC },
	};
	size_t cap = 1 << 16, used = 0;
	char *all = malloc(cap);
	int ret = -1;

	if (!all)
		return -1;
	if (send(nc->req, &req, sizeof(req), 0) < 0)
		goto out;
	for (bool done = false; !done;) {
		char buf[NL_BUFSIZE];
		ssize_t n = recv(nc->req, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		size_t left = (size_t)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf;
		     NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_seq != req.nh.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE ||
			    h->nlmsg_type == NLMSG_ERROR) {
				done = true;
				break;
			}
			size_t sz = NLMSG_ALIGN(h->nlmsg_len);
			if (used + sz > cap) {
				if (cap >= (1u << 24)) {
					errno = E2BIG;
					goto out;
				}
				char *bigger = realloc(all, cap * 2);
				if (!bigger)
					goto out;
				all = bigger;
				cap *= 2;
			}
			memcpy(all + used, h, h->nlmsg_len);
			used += sz;
		}
	}
	nc_handle_buf(nc, all, used);
	ret = 0;
out:
	free(all);
	return ret;
}

static int nc_follow(struct nc *nc)
{
	char buf[NL_BUFSIZE];

	for (;;) {
		ssize_t n = recv(nc->events, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				/* Events were lost: catch up from a fresh dump. */
				nc_log("event queue overflowed, rescanning links");
				if (nc_dump(nc) < 0)
					return -1;
				continue;
			}
			return -1;
		}
		nc_handle_buf(nc, buf, (size_t)n);
	}
}

static void nc_usage(FILE *f)
{
	fputs("usage: vm-netconf [--once] [--dhcp-foreign] [--dhcp-cmd=PROG]\n"
	      "  --once          configure the existing links and exit\n"
	      "  --dhcp-foreign  run PROG (default udhcpc) -i IF on foreign NICs\n",
	      f);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, 'o' },
		{ "dhcp-foreign", no_argument, NULL, 'd' },
		{ "dhcp-cmd", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static struct nc nc = { .req = -1, .events = -1, .dhcp_cmd = "udhcpc" };
	bool once = false;
	int c;

	while ((c = getopt_long(argc, argv, "odc:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': once = true; break;
		case 'd': nc.dhcp_foreign = true; break;
		case 'c': nc.dhcp_cmd = optarg; break;
		case 'h': nc_usage(stdout); return 0;
		default: nc_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		nc_usage(stderr);
		return 2;
	}
	/* DHCP clients are fire-and-forget: let the kernel reap them. */
	signal(SIGCHLD, SIG_IGN);
	setvbuf(stderr, NULL, _IOLBF, 0);

	nc.req = nc_open(0);
	/* Subscribe before the dump so no link slips in between. */
	nc.events = once ? -1 : nc_open(1u << (RTNLGRP_LINK - 1));
	if (nc.req < 0 || (!once && nc.events < 0)) {
		nc_log("netlink socket: %s", strerror(errno));
		return 1;
	}
	if (nc_dump(&nc) < 0) {
		nc_log("listing links: %s", strerror(errno));
		return 1;
	}
	if (once)
		return 0;
	nc_follow(&nc);
	nc_log("following link events: %s", strerror(errno));
	return 1;
}
