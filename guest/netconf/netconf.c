#include "netconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void netconf_plan(const uint8_t *mac, bool is_ether, bool is_loopback,
		  bool default_taken, bool dhcp_foreign,
		  struct netconf_plan *plan)
{
	uint16_t id = 0;

	memset(plan, 0, sizeof(*plan));
	if (is_loopback || !is_ether || !mac) {
		plan->action = NETCONF_SKIP;
		return;
	}

	switch (linkaddr_classify(mac, &id)) {
	case LINKADDR_CLIENT:
		plan->action = NETCONF_CLIENT;
		plan->id = id;
		plan->local = linkaddr_client_ipv4(id);
		plan->peer = LINKADDR_PROVIDER_IPV4;
		plan->set_default = !default_taken;
		break;
	case LINKADDR_PROVIDER:
		plan->action = NETCONF_PROVIDER;
		plan->id = id;
		plan->local = LINKADDR_PROVIDER_IPV4;
		plan->peer = linkaddr_client_ipv4(id);
		break;
	case LINKADDR_FOREIGN:
		plan->action = dhcp_foreign ? NETCONF_DHCP : NETCONF_FOREIGN;
		break;
	case LINKADDR_INVALID:
	default:
		plan->action = NETCONF_INVALID;
		break;
	}
}

void netconf_format_ipv4(uint32_t addr, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff,
		 (addr >> 8) & 0xff, addr & 0xff);
}

void netconf_describe(const struct netconf_plan *plan, const char *ifname,
		      const uint8_t *mac, char *buf, size_t len)
{
	char m[LINKADDR_MAC_STRLEN] = "-";
	char local[16], peer[16];

	if (mac)
		linkaddr_format_mac(mac, m);
	netconf_format_ipv4(plan->local, local);
	netconf_format_ipv4(plan->peer, peer);

	switch (plan->action) {
	case NETCONF_CLIENT:
		snprintf(buf, len, "%s %s: client of link %04x: %s/32, route %s%s",
			 ifname, m, plan->id, local, peer,
			 plan->set_default ? ", default via it" : "");
		break;
	case NETCONF_PROVIDER:
		snprintf(buf, len, "%s %s: provider of link %04x: %s/32, route %s/32",
			 ifname, m, plan->id, local, peer);
		break;
	case NETCONF_DHCP:
		snprintf(buf, len, "%s %s: foreign NIC: up, DHCP", ifname, m);
		break;
	case NETCONF_FOREIGN:
		snprintf(buf, len, "%s %s: foreign NIC: left alone", ifname, m);
		break;
	case NETCONF_INVALID:
		snprintf(buf, len, "%s %s: vmhost OUI with an invalid role or id: left alone",
			 ifname, m);
		break;
	case NETCONF_SKIP:
	default:
		snprintf(buf, len, "%s: skipped", ifname);
		break;
	}
}

static struct netconf_link *netconf_table_find(struct netconf_table *t,
					       int ifindex)
{
	for (size_t i = 0; i < t->count; i++)
		if (t->links[i].ifindex == ifindex)
			return &t->links[i];
	return NULL;
}

int netconf_table_add(struct netconf_table *t, int ifindex,
		      const uint8_t mac[LINKADDR_MAC_LEN])
{
	struct netconf_link *l = netconf_table_find(t, ifindex);

	if (l) {
		if (memcmp(l->mac, mac, LINKADDR_MAC_LEN) == 0)
			return 0;
		/* Same index, new MAC: configure it again as a new device. */
		memcpy(l->mac, mac, LINKADDR_MAC_LEN);
		l->has_default = false;
		return 1;
	}
	if (t->count == NETCONF_MAX_LINKS) {
		errno = ENOSPC;
		return -1;
	}
	l = &t->links[t->count++];
	l->ifindex = ifindex;
	memcpy(l->mac, mac, LINKADDR_MAC_LEN);
	l->has_default = false;
	return 1;
}

bool netconf_table_remove(struct netconf_table *t, int ifindex)
{
	struct netconf_link *l = netconf_table_find(t, ifindex);
	bool had_default;

	if (!l)
		return false;
	had_default = l->has_default;
	*l = t->links[--t->count];
	return had_default;
}

void netconf_table_set_default(struct netconf_table *t, int ifindex)
{
	struct netconf_link *l = netconf_table_find(t, ifindex);

	if (l)
		l->has_default = true;
}

bool netconf_table_default_taken(const struct netconf_table *t)
{
	for (size_t i = 0; i < t->count; i++)
		if (t->links[i].has_default)
			return true;
	return false;
}
