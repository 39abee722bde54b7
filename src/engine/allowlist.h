/* The engine's seccomp allow-list: what its event loop needs (sockets it
 * was given, its log files, timers, memory) and nothing that opens new
 * reach (no socket, connect, exec, ptrace, mount, setuid...).  Anything
 * else kills the engine, and the monitor starts a new one. */
#ifndef VMHOSTD_ENGINE_ALLOWLIST_H
#define VMHOSTD_ENGINE_ALLOWLIST_H

/* Load the filter for this process (no_new_privs must be set, as the
 * monitor does before exec).  -1 with errno. */
int engine_seccomp(void);

#endif
