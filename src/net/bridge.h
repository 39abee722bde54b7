/* The bridge that carries one (client, provider) link: two taps, no host
 * address.  Errors as in net/link.h. */
#ifndef VMHOST_NET_BRIDGE_H
#define VMHOST_NET_BRIDGE_H

/* Create bridge name, quiet (see link_set_quiet) and down.  EEXIST if a
 * link of that name exists. */
int bridge_create(const char *name);

/* Enslave ifname to bridge. */
int bridge_add_if(const char *bridge, const char *ifname);

#endif
