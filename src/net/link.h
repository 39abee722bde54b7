/* Host network interfaces by name, over rtnetlink (libmnl).
 *
 * Every call returns -1 with errno set on failure: EINVAL for a name that
 * cannot be an interface name (empty, IFNAMSIZ or longer, '/', ':' or
 * whitespace), ENODEV for a link that does not exist, and otherwise the
 * kernel's own answer (EEXIST, EPERM, EBUSY...).
 */
#ifndef VMHOST_NET_LINK_H
#define VMHOST_NET_LINK_H

#include <stdbool.h>
#include <stddef.h>

/* 0 if name can be an interface name, else -1 with errno EINVAL. */
int link_name_check(const char *name);

/* The ifindex of name (> 0), or -1. */
int link_index(const char *name);

/* 1 if the link exists, 0 if not, -1 with errno on other failures. */
int link_exists(const char *name);

int link_set_up(const char *name);
int link_delete(const char *name);

/* Keep the host silent on the link: no IPv6 link-local address, hence no
 * router solicitations, DAD or MLD from the host (addr_gen_mode none).
 * Set it before the link goes up.  A kernel without IPv6 has nothing to
 * silence, so EAFNOSUPPORT counts as success. */
int link_set_quiet(const char *name);

/* The name of name's master (its bridge) in master (IFNAMSIZ bytes), or
 * "" when it has none. */
int link_master(const char *name, char *master, size_t len);

/* Call cb for every link whose name starts with prefix, after the dump
 * has finished (so cb may delete links).  A non-zero return from cb stops
 * the walk and is returned.  -1 with errno on failure. */
int link_list_prefix(const char *prefix,
		     int (*cb)(const char *name, void *arg), void *arg);

#endif
