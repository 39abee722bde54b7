#include "net/link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include "net/nl.h"

int link_name_check(const char *name)
{
	size_t len = strnlen(name, IFNAMSIZ);

	/* The kernel's dev_valid_name(), checked here so that a caller gets
	 * EINVAL before any socket is opened. */
	if (len == 0 || len >= IFNAMSIZ || !strcmp(name, ".") ||
	    !strcmp(name, "..") || strpbrk(name, "/: \t\n\v\f\r")) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Begin an RTM_*LINK request addressed by name. */
static struct nlmsghdr *link_request(struct nl *nl, void *buf, uint16_t type,
				     uint16_t flags, const char *name)
{
	struct nlmsghdr *nlh = nl_request(nl, buf, type, flags);
	struct ifinfomsg *ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));

	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	return nlh;
}

/* Send one request about name on a fresh socket. */
static int link_simple(uint16_t type, const char *name,
		       void (*fill)(struct nlmsghdr *, const void *),
		       const void *arg, mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct nl nl;

	if (link_name_check(name) == -1)
		return -1;
	if (nl_open(&nl) == -1)
		return -1;
	nlh = link_request(&nl, buf, type, 0, name);
	if (fill)
		fill(nlh, arg);
	return nl_once(nlh, &nl, cb, data);
}

struct link_info {
	int index;
	unsigned int flags;
	int master;
};

static int link_info_attr(const struct nlattr *attr, void *data)
{
	struct link_info *info = data;

	if (mnl_attr_get_type(attr) == IFLA_MASTER &&
	    mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
		info->master = (int)mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int link_info_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_info *info = data;
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	info->index = ifm->ifi_index;
	info->flags = ifm->ifi_flags;
	return mnl_attr_parse(nlh, sizeof(*ifm), link_info_attr, info);
}

static int link_get(const char *name, struct link_info *info)
{
	memset(info, 0, sizeof(*info));
	if (link_simple(RTM_GETLINK, name, NULL, NULL, link_info_cb,
			info) == -1)
		return -1;
	if (info->index <= 0) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

int link_index(const char *name)
{
	struct link_info info;

	if (link_get(name, &info) == -1)
		return -1;
	return info.index;
}

int link_exists(const char *name)
{
	struct link_info info;

	if (link_get(name, &info) == 0)
		return 1;
	return errno == ENODEV ? 0 : -1;
}

static void link_fill_up(struct nlmsghdr *nlh, const void *arg)
{
	struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);

	ifm->ifi_change = IFF_UP;
	ifm->ifi_flags = IFF_UP;
}

int link_set_up(const char *name)
{
	return link_simple(RTM_NEWLINK, name, link_fill_up, NULL, NULL, NULL);
}

int link_delete(const char *name)
{
	return link_simple(RTM_DELLINK, name, NULL, NULL, NULL, NULL);
}

static void link_fill_quiet(struct nlmsghdr *nlh, const void *arg)
{
	nl_put_quiet(nlh);
}

int link_set_quiet(const char *name)
{
	if (link_simple(RTM_NEWLINK, name, link_fill_quiet, NULL, NULL,
			NULL) == -1)
		return errno == EAFNOSUPPORT ? 0 : -1;
	return 0;
}

int link_master(const char *name, char *master, size_t len)
{
	struct link_info info;
	char buf[IF_NAMESIZE];

	if (link_get(name, &info) == -1)
		return -1;
	if (info.master <= 0) {
		if (len)
			master[0] = '\0';
		return 0;
	}
	/* if_indextoname() asks the kernel by ioctl; that is enough here. */
	if (!if_indextoname((unsigned int)info.master, buf))
		return -1;
	if (strlen(buf) >= len) {
		errno = ERANGE;
		return -1;
	}
	strcpy(master, buf);
	return 0;
}

struct link_names {
	const char *prefix;
	size_t prefix_len;
	char (*names)[IFNAMSIZ];
	size_t count;
	size_t capacity;
	int err;
};

static int link_names_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_names *ln = data;
	struct nlattr *attr;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	mnl_attr_for_each(attr, nlh, sizeof(struct ifinfomsg)) {
		const char *name;

		if (mnl_attr_get_type(attr) != IFLA_IFNAME)
			continue;
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == -1)
			return MNL_CB_ERROR;
		name = mnl_attr_get_str(attr);
		if (strncmp(name, ln->prefix, ln->prefix_len) ||
		    strlen(name) >= IFNAMSIZ)
			break;
		if (ln->count == ln->capacity) {
			size_t cap = ln->capacity ? 2 * ln->capacity : 16;
			void *p = reallocarray(ln->names, cap,
					       sizeof(*ln->names));

			if (!p)
				return MNL_CB_ERROR;
			ln->names = p;
			ln->capacity = cap;
		}
		strcpy(ln->names[ln->count++], name);
		break;
	}
	return MNL_CB_OK;
}

int link_list_prefix(const char *prefix,
		     int (*cb)(const char *name, void *arg), void *arg)
{
	struct link_names ln = { .prefix = prefix,
				 .prefix_len = strlen(prefix) };
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	struct nl nl;
	int ret = -1;

	if (nl_open(&nl) == -1)
		return -1;
	nlh = nl_request(&nl, buf, RTM_GETLINK, NLM_F_DUMP);
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	/* Spare the kernel the statistics we do not read. */
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	if (nl_once(nlh, &nl, link_names_cb, &ln) == -1)
		goto out;

	ret = 0;
	for (size_t i = 0; i < ln.count && ret == 0; i++)
		ret = cb(ln.names[i], arg);
out:;
	int saved = errno;
	free(ln.names);
	errno = saved;
	return ret;
}
