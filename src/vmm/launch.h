/* The one launch path: everything that starts a VM's processes, used by
 * vmhostd and by vmm-try.
 *
 * Given what a VM's start opened from its directory (struct vm_files:
 * config, kernel, disk and share fds, owner) and what the host prepared
 * (uid, taps, run dir, cgroup root, log pipes), launch_start spawns, each
 * in its jail (jail.h) and in the VM's own cgroup (cgroup.h):
 *   - one virtiofsd per share, in a user namespace mapped to the VM
 *     directory's owner, serving the share's fd (never its path);
 *   - passt for the uplink, in the host's network namespace but its own
 *     mount, pid and IPC ones, as the VM's uid;
 *   - with `wayland` and a compositor (struct launch_wayland): the
 *     vsock backend vmhost-vsock and the Wayland host end (a waypipe
 *     client), as the VM's uid, jailed with no network, reaching only
 *     the run's transport directory (and the host end the compositor's
 *     socket, compositor.h); docs/wayland.md;
 *   - QEMU, as the VM's uid, with no network namespace of the host's.
 * It returns one struct vm_run holding all the run owns, kept apart from
 * the daemon's record of the VM (as OpenBSD vmd keeps a VM's run apart
 * from its config): pids and pidfds, our connected ends of QMP, serial
 * and console, and the cgroup.  launch_kill and launch_release are its
 * only way out.
 *
 * QMP, serial and console are unix sockets LISTENING in the run dir
 * (STATE/vms/NAME/{qmp,serial,console}.sock), handed to QEMU as
 * "-chardev socket,fd=N,server=on,wait=off", and launch connects to each
 * once.  A restarted daemon connects again with launch_reconnect: QEMU
 * serves one client per socket, takes the next after a hang-up (QMP
 * greets again), and drops serial and console output while nobody is
 * connected (vmm-try --reconnect, tests/test_vmm.py, shows both).  QEMU starts paused (-S):
 * the caller's QMP "cont" runs the guest once every end is connected, so
 * no serial byte is written before there is a reader.
 */
#ifndef VMHOST_LAUNCH_H
#define VMHOST_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/privdrop.h"
#include "common/trace.h"
#include "config/vmfiles.h"
#include "vmm/cgroup.h"
#include "vmm/vmm.h"

/* Memory a run may hold beyond guest RAM: QEMU itself (TCG's code cache,
 * device state, I/O buffers), each virtiofsd and passt.  Measured in
 * docs/security.md ("cgroup"). */
#define LAUNCH_MEMORY_OVERHEAD ((uint64_t)256 << 20)
#define LAUNCH_MEMORY_PER_SHARE ((uint64_t)32 << 20)
/* Tasks (threads count): QEMU's main, RCU and vCPU threads and its I/O
 * thread pool (at most 64), 4 per virtiofsd, 1 for passt, and room. */
#define LAUNCH_PIDS_BASE 128
#define LAUNCH_PIDS_PER_SHARE 8
/* With `wayland`: the host end mirrors the buffers each application
 * shares (a 4K window double-buffered is 64 MiB) and forks a process per
 * application (at most vmhost-vsock's 32 connections, each with
 * LAUNCH_WAYPIPE_THREADS threads); vmhost-vsock holds at most 8 MiB. */
#define LAUNCH_MEMORY_WAYLAND ((uint64_t)256 << 20)
#define LAUNCH_PIDS_WAYLAND 128
#define LAUNCH_WAYPIPE_THREADS "2"
/* RLIMIT_NOFILE: QEMU holds a few fds per device; virtiofsd one per
 * inode the guest has looked up. */
#define LAUNCH_QEMU_NOFILE 4096
#define LAUNCH_VIRTIOFSD_NOFILE 65536
#define LAUNCH_PASST_NOFILE 4096
#define LAUNCH_VSOCK_NOFILE 256
#define LAUNCH_HOST_END_NOFILE 4096
#define LAUNCH_KERNEL_MAX ((off_t)1 << 30)

#define LAUNCH_PASST_PATH "/usr/bin/passt"
#define LAUNCH_WAYPIPE_PATH "/usr/bin/waypipe"

/* The run dir's directory of transport sockets (BASE_PORT, vmhost-vsock
 * --base): a small tmpfs of root and the VM's group, 0770, the one place
 * the two Wayland helpers share; in their jails it is LAUNCH_JAIL_TRANSPORT, and the compositor's
 * socket LAUNCH_JAIL_COMPOSITOR. */
#define LAUNCH_TRANSPORT_DIR "wayland"
#define LAUNCH_JAIL_TRANSPORT "/run/vmhost"
#define LAUNCH_JAIL_COMPOSITOR "/run/wayland/compositor"
#define LAUNCH_LABEL_VSOCK "vmhost-vsock"
#define LAUNCH_LABEL_HOST_END "Wayland host end"

/* What a run with Wayland needs beyond the VM's files. */
struct launch_wayland {
	const char *display;       /* the compositor's socket (--wayland-display) */
	int compositor_fd;         /* it, O_PATH (compositor_open) */
	int backend_fd;            /* vmhost-vsock, O_PATH: exec'd by fd */
	int log_fd;                /* their stdout and stderr; -1: /dev/null */
};

struct launch_req {
	const struct vm_files *files;
	const char *qemu;            /* NULL: VMM_QEMU_PATH (vmhostd --qemu) */
	enum vmm_accel accel;
	/* QEMU's and passt's ids; NULL: the caller is not root, and nothing
	 * is jailed, confined or switched (a development setup). */
	const struct privdrop *drop;
	const struct vmm_nic *nics;  /* taps of the links, ours to keep */
	size_t nic_count;
	unsigned int hotplug_ports;  /* 0: a leaf VM, on microvm (qemu.c) */
	unsigned long tsc_khz;       /* TCG: the host's TSC rate (vmm.h) */
	struct start_trace *trace;   /* NULL, or where the launch marks files
				      * opened, helpers spawned, QEMU exec */
	const char *run_dir;         /* STATE/vms/NAME, root's, 0700 */
	const struct cgroup_root *cgroups; /* NULL: no cgroup */
	int qemu_log_fd;             /* QEMU's and passt's stdout and stderr */
	int fsd_log_fd;              /* the virtiofsds'; -1: /dev/null */
	/* NULL: no vsock device, no Wayland helpers (no `wayland`, or no
	 * compositor: the caller says why). */
	const struct launch_wayland *wayland;
};

/* A process of the run.  pid 0: none (or reaped); the pidfd stays open
 * until launch_release. */
struct launch_proc {
	pid_t pid;
	int pidfd;
	char label[64];      /* "QEMU", "virtiofsd for share TAG", "passt" */
};

struct vm_run {
	struct launch_proc qemu;
	struct launch_proc *fsd;     /* one per share */
	size_t fsd_count;
	struct launch_proc passt;    /* pid 0 without uplink */
	struct launch_proc vsock;    /* pid 0 without Wayland */
	struct launch_proc host_end; /* pid 0 without Wayland, or between
				      * two host ends */
	int qmp_fd, serial_fd, console_fd; /* ours: connected, non-blocking */
	bool has_cgroup;
	struct cgroup cgroup;
	char *run_dir;
};

/* Start everything; on failure nothing is left (processes killed and
 * reaped, cgroup removed, sockets gone), err says what failed as
 * "start failed: ..." and -1 is returned with errno. */
int launch_start(const struct launch_req *req, struct vm_run *run,
		 char *err, size_t len);

/* Start a Wayland host end for run (whose vmhost-vsock runs), as drop's
 * uid (NULL: ours) in its jail and the run's cgroup: at launch, and again
 * when one has ended.  -1 with errno, err saying what failed. */
int launch_host_end(struct vm_run *run, const struct privdrop *drop,
		    const struct launch_wayland *wl, char *err, size_t len);

/* The i-th process of the run, QEMU first, NULL past the last (pid 0:
 * none, or reaped). */
struct launch_proc *launch_proc_at(struct vm_run *run, size_t i);

/* Where a process named label goes in a run being rebuilt (adoption,
 * re-exec): passt, a Wayland helper, else the next virtiofsd (run->fsd
 * has room for every helper). */
struct launch_proc *launch_proc_slot(struct vm_run *run, const char *label);

/* SIGKILL every process of the run (the whole cgroup, and each process
 * known by its pidfd). */
void launch_kill(struct vm_run *run);

/* launch_kill, then reap every process still known (pid > 0, i.e. the
 * caller did not): blocks until they are gone, which takes milliseconds. */
void launch_kill_wait(struct vm_run *run);

/* Once the caller has reaped every process it watches (pid 0): kill
 * whatever is left in the cgroup, remove it, close every fd, remove the
 * sockets.  -1 with errno if the cgroup could not be emptied (EBUSY; it
 * is left, named in the run dir's log by the caller). */
int launch_release(struct vm_run *run);

/* Remove run_dir's transport directory (LAUNCH_TRANSPORT_DIR): its
 * tmpfs, or its sockets.  For launch_release, and for the run of a dead
 * monitor found without its QEMU. */
void launch_transport_remove(const char *run_dir);

/* Connect again to a running QEMU's QMP, serial and console sockets in
 * run_dir (after a daemon restart), once the previous client of each has
 * hung up.  Fills each fd whose pointer is not NULL (non-blocking,
 * O_CLOEXEC).  -1 with errno; none is left open then. */
int launch_reconnect(const char *run_dir, int *qmp_fd, int *serial_fd,
		     int *console_fd);

/* The memory and task caps of a run of cfg (for tests and docs). */
uint64_t launch_memory_max(const struct vm_config *cfg);
uint64_t launch_pids_max(const struct vm_config *cfg);

#endif
