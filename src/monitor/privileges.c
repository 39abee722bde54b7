/* Dropping the capabilities vmhostd does not need.  See privileges.h. */
#include "monitor/privileges.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/privdrop.h"

static const char *const privileges_cap_names[] = {
	[CAP_CHOWN] = "cap_chown",
	[CAP_DAC_OVERRIDE] = "cap_dac_override",
	[CAP_DAC_READ_SEARCH] = "cap_dac_read_search",
	[CAP_FOWNER] = "cap_fowner",
	[CAP_FSETID] = "cap_fsetid",
	[CAP_KILL] = "cap_kill",
	[CAP_SETGID] = "cap_setgid",
	[CAP_SETUID] = "cap_setuid",
	[CAP_SETPCAP] = "cap_setpcap",
	[CAP_NET_ADMIN] = "cap_net_admin",
	[CAP_SYS_ADMIN] = "cap_sys_admin",
	[CAP_SYS_RESOURCE] = "cap_sys_resource",
	[CAP_SETFCAP] = "cap_setfcap",
};

void privileges_names(uint64_t mask, char *buf, size_t len)
{
	size_t used = 0, n = sizeof privileges_cap_names /
			    sizeof *privileges_cap_names;
	int r;

	if (len)
		buf[0] = '\0';
	for (size_t cap = 0; cap < 64 && used < len; cap++) {
		if (!(mask & PRIVILEGES_BIT(cap)))
			continue;
		if (cap < n && privileges_cap_names[cap])
			r = snprintf(buf + used, len - used, "%s%s",
				     used ? "," : "", privileges_cap_names[cap]);
		else
			r = snprintf(buf + used, len - used, "%scap_%zu",
				     used ? "," : "", cap);
		if (r < 0)
			return;
		used += (size_t)r;
	}
}

static int privileges_read(struct __user_cap_header_struct *hdr,
			   struct __user_cap_data_struct *data,
			   uint64_t *permitted, uint64_t *bounding)
{
	int r;

	if (syscall(SYS_capget, hdr, data) < 0)
		return -1;
	*permitted = (uint64_t)data[1].permitted << 32 | data[0].permitted;
	*bounding = 0;
	for (int cap = 0; cap < 64; cap++) {
		r = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
		if (r < 0 && errno == EINVAL)
			break;
		if (r < 0)
			return -1;
		if (r)
			*bounding |= PRIVILEGES_BIT(cap);
	}
	return 0;
}

int privileges_reduce(uint64_t *permitted, uint64_t *bounding)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	uint64_t prm;

	if (geteuid() != 0) {
		errno = EPERM;
		return -1;
	}
	/* While CAP_SETPCAP is still effective. */
	if (privdrop_bounding(PRIVILEGES_BOUNDING) < 0)
		return -1;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL)
		return -1;
	if (privileges_read(&hdr, data, &prm, bounding) < 0)
		return -1;
	/* Never more than we have: capset refuses to add to permitted. */
	prm &= PRIVILEGES_DAEMON;
	memset(data, 0, sizeof data);
	data[0].permitted = data[0].effective = (uint32_t)prm;
	data[1].permitted = data[1].effective = (uint32_t)(prm >> 32);
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -1;
	return privileges_read(&hdr, data, permitted, bounding);
}
