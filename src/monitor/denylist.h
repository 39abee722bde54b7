/* The monitor's seccomp deny-list: system calls that neither the monitor
 * nor anything it runs (the engine, gatherers, QEMU, virtiofsd, passt,
 * vmhost-vsock, waypipe) ever makes, and that would give a compromised
 * monitor, or a child that escaped its own sandbox, reach it has no
 * other way to get: the kernel itself (modules, kexec, reboot, I/O
 * ports, swap, the clock, the kernel log), other processes' memory
 * (ptrace, process_vm_*), any host file by handle (open_by_handle_at,
 * which with dac_read_search opens any inode: the monitor keeps that
 * capability), keyrings, perf events and userfaultfd.  They fail with
 * EPERM; a system call of another ABI (i386, x32) kills the process.
 * Everything else stays allowed: the monitor builds jails, taps, cgroups
 * and BPF filters, and each child adds its own filter on top. */
#ifndef VMHOSTD_MONITOR_DENYLIST_H
#define VMHOSTD_MONITOR_DENYLIST_H

#include <stddef.h>

/* Load the filter for this process and all it forks from now on (needs
 * CAP_SYS_ADMIN: no_new_privs is not set, so that nothing else changes
 * for the children).  -1 with errno. */
int denylist_install(void);

/* How many system calls the filter denies. */
size_t denylist_count(void);

#endif
