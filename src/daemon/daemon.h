/* What the whole daemon shares: one instance, owned by main(). */
#ifndef VMHOSTD_DAEMON_H
#define VMHOSTD_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

#include "config/vmconfig.h"
#include "daemon/control.h"
#include "daemon/loop.h"
#include "vmm/vmm.h"

struct vm;
struct vmlink;
struct addrtable;

struct daemon {
	struct loop loop;
	struct control control;
	struct loop_source signals;
	struct vmconfig_roots roots;
	const char *state_dir;
	enum vmm_accel accel;
	const char *accel_why;
	unsigned long tsc_khz; /* TCG: the host's TSC rate (vmm.h); 0: unknown */
	bool use_syslog;   /* /dev/log exists: serial lines go there too */
	uid_t uid_base;    /* QEMU of VM slot N runs as uid/gid base + N;
			    * 0: as the daemon's own user (it is not root) */
	bool shutting_down;
	struct vm *vms;
	/* Inter-VM links (links.h): the id table STATE/links, the prefix of
	 * every host interface this daemon creates, and the live links. */
	struct addrtable *link_table;
	const char *link_prefix;
	struct vmlink *links;
};

/* The daemon's own log: stderr (a file in the state dir once detached). */
void daemon_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A VM left a running state; quit if shutting down and none is left. */
void daemon_vm_settled(struct daemon *d);

#endif
