/* Keeping a VM's uplink off the host's loopback.
 *
 * passt runs in the host's network namespace and opens, for the guest,
 * ordinary sockets to whatever address the guest's packets name.  Telling
 * it not to map the gateway to the host (--no-map-gw) is not enough: a
 * guest that routes 127.0.0.1 (or ::1, or 0.0.0.0) out of its uplink has
 * passt connect to the host's loopback all the same.  So the VM's cgroup
 * gets cgroup BPF programs on connect (TCP, and UDP's connect) and on UDP
 * sendmsg, IPv4 and IPv6, that refuse (EPERM) loopback, unspecified and
 * IPv4-mapped loopback destinations for every socket its processes make.
 * The kernel enforces them; they go away with the cgroup.
 *
 * Needs a cgroup2 directory for the VM (cgroup.h: the VM's own on a
 * cgroup v2 host, its twin in the unified hierarchy on a hybrid one).
 */
#ifndef VMHOST_LOOPFILTER_H
#define VMHOST_LOOPFILTER_H

/* Attach the four programs to the cgroup2 directory open at dirfd.
 * -1 with errno (and nothing attached). */
int loopfilter_attach(int dirfd);

#endif
