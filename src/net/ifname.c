#include "net/ifname.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/linkaddr.h"

static const char *const ifname_suffix[] = {
	[IFNAME_BRIDGE] = "br",
	[IFNAME_CLIENT] = "c",
	[IFNAME_PROVIDER] = "p",
};

int ifname_prefix_check(const char *prefix)
{
	size_t len = strnlen(prefix, IFNAME_PREFIX_MAX + 1);

	if (len == 0 || len > IFNAME_PREFIX_MAX ||
	    strspn(prefix, "abcdefghijklmnopqrstuvwxyz0123456789-") != len) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int ifname_format(const char *prefix, enum ifname_role role, uint16_t id,
		  char buf[IFNAMSIZ])
{
	if (ifname_prefix_check(prefix) == -1 || !linkaddr_id_valid(id) ||
	    (unsigned int)role > IFNAME_PROVIDER) {
		errno = EINVAL;
		return -1;
	}
	/* Cannot truncate: 8 + 4 + 1 + 2 = 15. */
	snprintf(buf, IFNAMSIZ, "%s%04x-%s", prefix, id, ifname_suffix[role]);
	return 0;
}

int ifname_parse(const char *prefix, const char *name,
		 enum ifname_role *role, uint16_t *id)
{
	size_t plen = strlen(prefix);
	unsigned int value = 0;
	const char *p;

	if (ifname_prefix_check(prefix) == -1 || strncmp(name, prefix, plen))
		goto bad;
	p = name + plen;
	/* Exactly four lowercase hex digits: the one spelling we write. */
	for (int i = 0; i < 4; i++, p++) {
		if (*p >= '0' && *p <= '9')
			value = value << 4 | (unsigned int)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			value = value << 4 | (unsigned int)(*p - 'a' + 10);
		else
			goto bad;
	}
	if (*p++ != '-' || !linkaddr_id_valid((uint16_t)value))
		goto bad;
	for (unsigned int r = IFNAME_BRIDGE; r <= IFNAME_PROVIDER; r++) {
		if (!strcmp(p, ifname_suffix[r])) {
			*role = (enum ifname_role)r;
			*id = (uint16_t)value;
			return 0;
		}
	}
bad:
	errno = EINVAL;
	return -1;
}
