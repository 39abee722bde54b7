/* Tap devices for VM NICs. */
#ifndef VMHOST_NET_TAP_H
#define VMHOST_NET_TAP_H

/* Create tap name (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR) and store an
 * O_CLOEXEC fd to it in *fd.  The tap is not persistent: it disappears
 * when its last fd closes, so a VMM that dies takes its tap with it.
 * -1 with errno EINVAL for a bad name, EBUSY if a tap of that name is
 * already attached, or the kernel's error (ENOENT without /dev/net/tun). */
int tap_open(const char *name, int *fd);

#endif
