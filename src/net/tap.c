#include "net/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>

#include "net/link.h"

int tap_open(const char *name, int *fd)
{
	struct ifreq ifr = { 0 };
	int tun, saved;

	/* '%' would ask the kernel to pick a number: we want this name. */
	if (link_name_check(name) == -1 || strchr(name, '%')) {
		errno = EINVAL;
		return -1;
	}
	tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (tun == -1)
		return -1;
	strcpy(ifr.ifr_name, name);
	/* VNET_HDR lets QEMU pass checksum and GSO offloads through. */
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(tun, TUNSETIFF, &ifr) == -1)
		goto fail;
	*fd = tun;
	return 0;
fail:
	saved = errno;
	close(tun);
	errno = saved;
	return -1;
}
