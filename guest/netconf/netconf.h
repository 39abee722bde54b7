/* vm-netconf's decisions, kept apart from netlink so they can be unit
 * tested: what to do with an interface given its MAC and flags, and which
 * interfaces were already handled. */
#ifndef VMHOST_NETCONF_H
#define VMHOST_NETCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/linkaddr.h"

enum netconf_action {
	NETCONF_SKIP,       /* loopback, not Ethernet, or no MAC */
	NETCONF_INVALID,    /* our OUI but an id or role we never assign */
	NETCONF_CLIENT,     /* 100.64.X.Y/32, route to 169.254.0.1 */
	NETCONF_PROVIDER,   /* 169.254.0.1/32, route to 100.64.X.Y */
	NETCONF_DHCP,       /* foreign NIC, DHCP enabled */
	NETCONF_FOREIGN,    /* foreign NIC, left alone */
};

struct netconf_plan {
	enum netconf_action action;
	uint16_t id;          /* link id for CLIENT and PROVIDER */
	uint32_t local;       /* our address (host order), /32 */
	uint32_t peer;        /* the other end, routed on this link, /32 */
	bool set_default;     /* CLIENT: default route via peer, onlink */
};

struct netconf_link {
	int ifindex;
	uint8_t mac[LINKADDR_MAC_LEN];
	bool has_default;
};

/* Bounded: a guest with more links than this is not one of ours. */
#define NETCONF_MAX_LINKS 256

struct netconf_table {
	struct netconf_link links[NETCONF_MAX_LINKS];
	size_t count;
};

/* Decide what to do with an interface.  mac may be NULL (no address);
 * is_ether and is_loopback come from ifi_type and ifi_flags.
 * default_taken says another client link already holds the default. */
void netconf_plan(const uint8_t *mac, bool is_ether, bool is_loopback,
		  bool default_taken, bool dhcp_foreign,
		  struct netconf_plan *plan);

/* One log line for a plan, without a trailing newline. */
void netconf_describe(const struct netconf_plan *plan, const char *ifname,
		      const uint8_t *mac, char *buf, size_t len);

/* Record ifindex with mac.  Returns 1 if it is new (or its MAC changed, so
 * it is a different device to us), 0 if already handled, -1 with ENOSPC if
 * the table is full. */
int netconf_table_add(struct netconf_table *t, int ifindex,
		      const uint8_t mac[LINKADDR_MAC_LEN]);

/* Forget ifindex (RTM_DELLINK); returns whether it held the default. */
bool netconf_table_remove(struct netconf_table *t, int ifindex);

/* Mark ifindex as holding the default route. */
void netconf_table_set_default(struct netconf_table *t, int ifindex);

/* Whether any link holds the default route. */
bool netconf_table_default_taken(const struct netconf_table *t);

/* "100.64.165.70"; buf holds 16 bytes. */
void netconf_format_ipv4(uint32_t addr, char *buf);

#endif
