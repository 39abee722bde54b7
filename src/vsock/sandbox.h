/* vmhost-vsock's seccomp allow-list: once its sockets are open, the
 * backend needs only its event loop, reads and writes, unix sockets to
 * BASE_P, and mappings of guest memory.  No files are opened, nothing is
 * executed, no memory becomes executable. */
#ifndef VMHOST_VSOCK_SANDBOX_H
#define VMHOST_VSOCK_SANDBOX_H

/* Load the filter (and no_new_privs); anything else kills the process.
 * -1/errno on failure. */
int vsock_sandbox(void);

#endif
