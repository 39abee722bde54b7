/* A seccomp filter built from a list of system calls, loaded in one go:
 * the engine's allow-list, the monitor's deny-list and vmhost-vsock's
 * sandbox differ only in their lists, actions and extra rules. */
#ifndef VMHOST_COMMON_SCFILTER_H
#define VMHOST_COMMON_SCFILTER_H

#include <seccomp.h>
#include <stddef.h>
#include <stdint.h>

/* Build a filter whose default action is dflt, with action act for each
 * of the n system calls in calls; then extra (NULL: none) adds its own
 * rules and attributes, returning 0 or a negative errno as libseccomp
 * does.  Load it for this process.  -1 with errno. */
int scfilter_load(uint32_t dflt, uint32_t act, const int *calls, size_t n,
		  int (*extra)(scmp_filter_ctx ctx));

#endif
