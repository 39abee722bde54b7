/* Host interface names of inter-VM links.
 *
 * PREFIX + 4 lowercase hex digits of the link id + a role suffix:
 *   vmh-a546-br  the link's bridge
 *   vmh-a546-c   the client VM's tap
 *   vmh-a546-p   the provider VM's tap
 * The id is unique on the host (net/addrtable.h), so names cannot collide,
 * and a name parses back to exactly one (role, id): the daemon deletes
 * only names that parse, under its own prefix.  The prefix is a parameter
 * so that two daemons on one host (tests) keep apart; it is 1 to 8 of
 * [a-z0-9-], which keeps the longest name at 15 bytes, IFNAMSIZ less NUL.
 */
#ifndef VMHOST_NET_IFNAME_H
#define VMHOST_NET_IFNAME_H

#include <net/if.h>
#include <stdint.h>

#define IFNAME_DEFAULT_PREFIX "vmh-"
#define IFNAME_PREFIX_MAX 8

enum ifname_role {
	IFNAME_BRIDGE,
	IFNAME_CLIENT,
	IFNAME_PROVIDER,
};

/* 0 if prefix is usable, else -1 with errno EINVAL. */
int ifname_prefix_check(const char *prefix);

/* Write the name of role's interface of link id into buf (IFNAMSIZ bytes).
 * -1 with errno EINVAL for a bad prefix, role or id (0000, ffff). */
int ifname_format(const char *prefix, enum ifname_role role, uint16_t id,
		  char buf[IFNAMSIZ]);

/* The reverse: 0 with *role and *id if name is one that ifname_format
 * produces for prefix, else -1 with errno EINVAL. */
int ifname_parse(const char *prefix, const char *name,
		 enum ifname_role *role, uint16_t *id);

#endif
