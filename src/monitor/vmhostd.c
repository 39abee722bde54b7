/* vmhostd: runs the VMs of a config root, driven over STATE/control.
 *
 * This process is the monitor (monitor.h); it starts the engine as
 * `vmhostd --engine ...` (engine/engine.c), the same binary.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "common/log.h"
#include "common/version.h"
#include "engine/main.h"
#include "monitor/adopt.h"
#include "monitor/denylist.h"
#include "monitor/enginep.h"
#include "monitor/handover.h"
#include "monitor/monitor.h"
#include "monitor/mvm.h"
#include "monitor/namepush.h"
#include "monitor/netlinks.h"
#include "monitor/privileges.h"
#include "monitor/statedir.h"
#include "monitor/vmuid.h"
#include "monitor/wayland.h"
#include "net/ifname.h"
#include "vmm/cgroup.h"

static const char usage[] =
	"usage: vmhostd --config-root DIR --state-dir DIR [--data-root DIR]\n"
	"               [--accel auto|kvm|tcg] [--uid-base N] [--engine-uid N]\n"
	"               [--foreground] [--link-prefix PREFIX]\n"
	"               [--allow-block-device PATH]... [--max-memory SIZE]\n"
	"               [--max-cpus N] [--cgroup-parent NAME] [--cgroup-mount DIR]\n"
	"               [--qemu PATH] [--wayland-display PATH]\n"
	"               [--vsock-backend PATH]\n"
	"       vmhostd --version\n";

/* SIGTERM/SIGINT: every VM powered off, then exit; a second one forces.
 * SIGHUP: re-execute the binary on disk, keeping every VM. */
static void monitor_signal(struct loop_source *src, uint32_t events)
{
	struct monitor *m = src->arg;
	struct signalfd_siginfo si;

	while (read(src->fd, &si, sizeof si) == sizeof si) {
		if (si.ssi_signo == SIGHUP) {
			if (m->shutting_down)
				continue;
			enginep_stop(m);
			if (handover_exec(m, m->exe_path) < 0) {
				daemon_log("SIGHUP: re-executing %s: %s; going on as before",
					   m->exe_path, strerror(errno));
				if (enginep_start(m) < 0)
					daemon_log("starting the engine: %s",
						   strerror(errno));
			}
			continue;
		}
		daemon_log("signal %u: %s", si.ssi_signo,
			   m->shutting_down ? "forcing every VM off" :
			   "powering every VM off, then exiting");
		enginep_shutdown(m, m->shutting_down);
		if (m->engine_pid <= 0 || m->force)
			for (struct mvm *vm = m->vms; vm; vm = vm->next)
				mvm_kill(m, vm->name);
		monitor_quit_if_done(m);
	}
}

static int monitor_signals(struct monitor *m)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	m->signals.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	m->signals.ready = monitor_signal;
	m->signals.arg = m;
	if (m->signals.fd < 0)
		return -1;
	return loop_add(&m->loop, &m->signals, EPOLLIN);
}

/* Where per-VM uids start (vmuid.h).  Only root can switch uids: anyone
 * else runs QEMU as itself, and an explicit --uid-base is refused. */
static int monitor_uid_base(struct monitor *m, const char *arg)
{
	unsigned long v = VMUID_BASE_DEFAULT;
	char *end;

	m->uid_base = 0;
	if (arg) {
		errno = 0;
		v = strtoul(arg, &end, 10);
		if (errno || end == arg || *end || v < 1000 ||
		    v > 0xfffffff0ul - VMUID_SLOTS || geteuid() != 0)
			return -1;
	}
	if (geteuid() == 0)
		m->uid_base = (uid_t)v;
	return 0;
}

/* The engine's uid: its own, outside the VMs' range. */
static int monitor_engine_uid(struct monitor *m, const char *arg)
{
	unsigned long v;
	char *end;

	m->engine_uid = geteuid();
	if (geteuid() != 0)
		return arg ? -1 : 0;
	if (!arg) {
		m->engine_uid = m->uid_base - 1;
		return 0;
	}
	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || v < 1 || v > 0xfffffff0ul ||
	    (v >= m->uid_base && v - m->uid_base < VMUID_SLOTS))
		return -1;
	m->engine_uid = (uid_t)v;
	return 0;
}

/* --allow-block-device, --max-memory, --max-cpus; 2 on a bad value. */
static int monitor_gather_option(struct monitor *m, int opt, const char *arg)
{
	const char *why = NULL;
	int r;

	switch (opt) {
	case 'b':
		r = gather_allow_block_device(&m->gather, arg);
		why = r < 0 && errno == ENOTBLK ? "not a block device" :
		      strerror(errno);
		break;
	case 'm':
		r = hostlimits_set_memory(&m->gather.limits, arg, &why);
		break;
	default:
		r = hostlimits_set_cpus(&m->gather.limits, arg, &why);
		break;
	}
	if (r < 0) {
		fprintf(stderr, "vmhostd: --%s %s: %s\n", opt == 'b' ?
			"allow-block-device" : opt == 'm' ? "max-memory" :
			"max-cpus", arg, why);
		return 2;
	}
	return 0;
}

/* What a VM may ask for and use, for the log. */
static void monitor_log_policy(const struct monitor *m)
{
	const struct gather_policy *p = &m->gather;

	daemon_log("a VM may have at most %llu MiB of memory (%s) and %u CPUs (%s)",
		   (unsigned long long)(p->limits.max_memory >> 20),
		   p->limits.memory_set ? "--max-memory" :
		   "host RAM less a reserve", p->limits.max_cpus,
		   p->limits.cpus_set ? "--max-cpus" : "host CPUs");
	daemon_log("block devices allowed as disks: %zu (--allow-block-device)",
		   p->block_device_count);
}

/* --wayland-display: an absolute path (the compositor need not run yet:
 * each start looks); vmhost-vsock opened now, exec'd by fd into jails
 * that do not hold it.  -1 after saying what is wrong. */
static int monitor_wayland(struct monitor *m)
{
	struct stat st;

	if (!m->wayland_display)
		return 0;
	if (m->wayland_display[0] != '/') {
		fprintf(stderr, "vmhostd: --wayland-display %s: give the absolute path of the compositor's socket\n",
			m->wayland_display);
		return -1;
	}
	m->vsock_backend_fd = open(m->vsock_backend, O_PATH | O_CLOEXEC);
	if (m->vsock_backend_fd < 0 || fstat(m->vsock_backend_fd, &st) < 0 ||
	    !S_ISREG(st.st_mode) || !(st.st_mode & S_IXOTH)) {
		fprintf(stderr, "vmhostd: --vsock-backend %s: %s (--wayland-display needs it, executable by all)\n",
			m->vsock_backend, m->vsock_backend_fd < 0 ?
			strerror(errno) : "not an executable file");
		return -1;
	}
	return 0;
}

/* Set up: keep only the capabilities VMs need from now on. */
static int monitor_privileges(void)
{
	uint64_t permitted, bounding;
	char names[512];

	if (privileges_reduce(&permitted, &bounding) < 0) {
		daemon_log("dropping capabilities: %s", strerror(errno));
		return -1;
	}
	privileges_names(permitted, names, sizeof names);
	daemon_log("capabilities kept: %s", names);
	if (bounding & ~permitted) {
		privileges_names(bounding & ~permitted, names, sizeof names);
		daemon_log("bounding set: those and %s", names);
	}
	return 0;
}

/* Fork; the parent waits until the child says the socket listens. */
static int monitor_detach(int *ready_fd)
{
	int p[2];
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &c, 1) == 1)
			_exit(0);
		_exit(1);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

static int monitor_redirect(const char *state)
{
	char *path;
	int fd, nul;

	if (asprintf(&path, "%s/vmhostd.log", state) < 0)
		return -1;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0 || nul < 0)
		return -1;
	dup2(nul, 0);
	dup2(nul, 1);
	dup2(fd, 2);
	close(fd);
	close(nul);
	return 0;
}

/* fds 0-2 exist before anything is opened: a lock file on fd 0 would
 * otherwise be closed by the redirection to /dev/null, and lost. */
static int monitor_std_fds(void)
{
	int fd;

	do {
		fd = open("/dev/null", O_RDWR);
		if (fd < 0)
			return -1;
	} while (fd < 3);
	close(fd);
	return 0;
}

/* "vmhostd: monitor" in ps: written over argv's own strings (copied
 * first: options point into them). */
static void monitor_title(int argc, char **argv, const char *title)
{
	char *end = argv[argc - 1] + strlen(argv[argc - 1]);
	size_t room = (size_t)(end - argv[0]);

	prctl(PR_SET_NAME, "vmhostd");
	if (room < strlen(title))
		return;
	memset(argv[0], 0, room);
	memcpy(argv[0], title, strlen(title));
}

static char **monitor_copy_argv(int argc, char **argv)
{
	char **v = calloc((size_t)argc + 1, sizeof *v);

	for (int i = 0; v && i < argc; i++)
		if (!(v[i] = strdup(argv[i])))
			return NULL;
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config-root", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "data-root", required_argument, NULL, 'd' },
		{ "accel", required_argument, NULL, 'a' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "uid-base", required_argument, NULL, 'u' },
		{ "engine-uid", required_argument, NULL, 'e' },
		{ "link-prefix", required_argument, NULL, 'l' },
		{ "handover", required_argument, NULL, 'H' },
		{ "allow-block-device", required_argument, NULL, 'b' },
		{ "max-memory", required_argument, NULL, 'm' },
		{ "max-cpus", required_argument, NULL, 'p' },
		{ "cgroup-parent", required_argument, NULL, 'g' },
		{ "cgroup-mount", required_argument, NULL, 'M' },
		{ "qemu", required_argument, NULL, 'q' },
		{ "wayland-display", required_argument, NULL, 'W' },
		{ "vsock-backend", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	static struct monitor m = {
		.link_prefix = IFNAME_DEFAULT_PREFIX,
		.engine = { .fd = -1 }, .engine_exit = { .fd = -1 },
		.restart = { .fd = -1 }, .control_fd = -1, .exe_fd = -1,
		.vsock_backend = VMHOST_VSOCK_BACKEND, .vsock_backend_fd = -1,
	};
	const char *accel = "auto", *uid_base = NULL, *engine_uid = NULL;
	const char *cgroup_parent = CGROUP_PARENT_DEFAULT, *cgroup_mount = NULL;
	static struct cgroup_root cgroups;
	char **orig_argv = argv;
	bool foreground = false;
	int opt, ready_fd = -1, status = 1, handover = -1;
	char errbuf[512];

	if (monitor_std_fds() < 0)
		return 1;
	if (argc > 1 && !strcmp(argv[1], "--engine"))
		return engine_main(argc, argv);
	log_role("monitor");
	/* Options point into argv, which the process title overwrites. */
	m.argv = monitor_copy_argv(argc, argv);
	if (!m.argv)
		return 1;
	argv = m.argv;
	if (gather_policy_init(&m.gather) < 0) {
		fprintf(stderr, "vmhostd: /proc/meminfo: %s\n", strerror(errno));
		return 1;
	}
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': m.roots.config_root = optarg; break;
		case 's': m.state_dir = optarg; break;
		case 'd': m.roots.data_root = optarg; break;
		case 'a': accel = optarg; break;
		case 'f': foreground = true; break;
		case 'u': uid_base = optarg; break;
		case 'e': engine_uid = optarg; break;
		case 'l': m.link_prefix = optarg; break;
		case 'H': handover = atoi(optarg); break;
		case 'g': cgroup_parent = optarg; break;
		case 'M': cgroup_mount = optarg; break;
		case 'q': m.qemu = optarg; break;
		case 'W': m.wayland_display = optarg; break;
		case 'B': m.vsock_backend = optarg; break;
		case 'b': case 'm': case 'p':
			if (monitor_gather_option(&m, opt, optarg))
				return 2;
			break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': printf("vmhostd (vmhost) %s\n", VMHOST_VERSION); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind != argc || !m.roots.config_root || !m.state_dir) {
		fputs(usage, stderr);
		return 2;
	}
	m.gather.roots = m.roots;
	m.gather.state_dir = m.state_dir;
	if (vmm_accel_resolve(accel, &m.accel, &m.accel_why) < 0) {
		fprintf(stderr, "vmhostd: --accel %s: use auto, kvm or tcg\n", accel);
		return 2;
	}
	/* TCG guests are told their TSC rate; leaf VMs need it for microvm
	 * (vmm.h).  Once, here: it takes 50 ms. */
	if (m.accel == VMM_ACCEL_TCG && vmm_host_tsc_khz(&m.tsc_khz) < 0)
		m.tsc_khz = 0;
	if (monitor_uid_base(&m, uid_base) < 0) {
		fprintf(stderr, "vmhostd: --uid-base %s: use a number from 1000 to %u\n",
			uid_base, 0xfffffff0u - VMUID_SLOTS);
		return 2;
	}
	if (monitor_engine_uid(&m, engine_uid) < 0) {
		fprintf(stderr, "vmhostd: --engine-uid %s: use a uid other than root's and outside the VMs' range (as root only)\n",
			engine_uid);
		return 2;
	}
	if (ifname_prefix_check(m.link_prefix) < 0) {
		fprintf(stderr, "vmhostd: --link-prefix %s: use 1 to %d of a-z 0-9 -\n",
			m.link_prefix, IFNAME_PREFIX_MAX);
		return 2;
	}
	/* QEMU runs it in its jail, where only /usr is: an absolute path
	 * there. */
	if (m.qemu && strncmp(m.qemu, "/usr/", 5)) {
		fprintf(stderr, "vmhostd: --qemu %s: give an absolute path under /usr (the jail holds /usr only)\n",
			m.qemu);
		return 2;
	}
	if (monitor_wayland(&m) < 0)
		return 2;
	if (!cgroup_parent_valid(cgroup_parent)) {
		fprintf(stderr, "vmhostd: --cgroup-parent %s: use 1 to 64 of A-Z a-z 0-9 _ -\n",
			cgroup_parent);
		return 2;
	}
	m.exe_path = realpath("/proc/self/exe", NULL);
	/* A re-executed image keeps the lock, the socket and every VM. */
	if (handover >= 0 && handover_read(&m, handover) < 0) {
		fprintf(stderr, "vmhostd: --handover: %s\n", strerror(errno));
		return 1;
	}
	if (handover < 0)
		m.lock_fd = statedir_lock(m.state_dir);
	if (m.lock_fd < 0) {
		if (errno == EWOULDBLOCK)
			fprintf(stderr, "vmhostd: %s: another vmhostd uses this state directory\n",
				m.state_dir);
		else
			fprintf(stderr, "vmhostd: %s: %s\n", m.state_dir, strerror(errno));
		return 1;
	}
	/* Refuse a damaged link table rather than renumber running links. */
	if (netlinks_init(&m, errbuf, sizeof errbuf) < 0) {
		fprintf(stderr, "vmhostd: %s\n", errbuf);
		return 1;
	}
	/* As root every VM runs in a cgroup of its own, or none runs. */
	if (geteuid() == 0) {
		if (cgroup_root_init(&cgroups, cgroup_parent, cgroup_mount,
				     errbuf, sizeof errbuf) < 0) {
			fprintf(stderr, "vmhostd: cgroups: %s\n", errbuf);
			return 1;
		}
		m.cgroups = &cgroups;
	}
	m.exe_fd = open("/proc/self/exe", O_PATH | O_CLOEXEC);
	if (m.exe_fd < 0 ||
	    asprintf(&m.control_path, "%s/control", m.state_dir) < 0) {
		perror("vmhostd: /proc/self/exe");
		return 1;
	}
	if (!foreground && handover < 0 && monitor_detach(&ready_fd) < 0) {
		perror("vmhostd: fork");
		return 1;
	}
	monitor_title(argc, orig_argv, "vmhostd: monitor");
	statedir_write_pid(m.lock_fd);
	m.use_syslog = access("/dev/log", W_OK) == 0;
	if (m.use_syslog)
		openlog("vmhostd", LOG_PID, LOG_DAEMON);
	if (loop_init(&m.loop) < 0 || monitor_signals(&m) < 0) {
		perror("vmhostd: event loop");
		goto out;
	}
	if (handover < 0)
		m.control_fd = statedir_control(m.control_path);
	if (m.control_fd < 0) {
		fprintf(stderr, "vmhostd: %s: %s\n", m.control_path, strerror(errno));
		goto out_loop;
	}
	if (!foreground && handover < 0 && monitor_redirect(m.state_dir) < 0) {
		perror("vmhostd: log");
		goto out_control;
	}
	daemon_log("listening on %s; config root %s; accel %s: %s",
		   m.control_path, m.roots.config_root, vmm_accel_name(m.accel),
		   m.accel_why);
	if (m.accel == VMM_ACCEL_TCG)
		daemon_log(m.tsc_khz ? "TCG: host TSC at %lu kHz: leaf VMs boot on microvm" :
			   "TCG: the host does not keep time with its TSC: every VM boots on q35",
			   m.tsc_khz);
	if (m.uid_base)
		daemon_log("QEMU runs as uid and gid %u + slot, one per running VM; the engine as %u",
			   (unsigned int)m.uid_base, (unsigned int)m.engine_uid);
	else
		daemon_log("not root: QEMU and the engine run as the daemon's own user");
	monitor_log_policy(&m);
	if (m.cgroups)
		daemon_log("VM cgroups: cgroup v%d, %s/NAME%s", (int)m.cgroups->version,
			   m.cgroups->base[0], m.cgroups->memory && m.cgroups->pids ?
			   ", memory and pids capped" :
			   "; this hierarchy cannot cap memory and pids here");
	if (m.wayland_display)
		daemon_log("wayland: the compositor at %s (looked at on each start); vsock backend %s",
			   m.wayland_display, m.vsock_backend);
	else
		daemon_log("wayland: no compositor (--wayland-display): VMs with wayland run without it");
	/* Before any request is served: a VM must never run twice. */
	if (handover >= 0)
		handover_adopt(&m);
	adopt_all(&m);
	/* A dead monitor's runs may have left grants on the compositor. */
	mwl_sync(&m);
	if (netlinks_reconcile(&m, errbuf, sizeof errbuf) < 0)
		daemon_log("%s", errbuf);
	if (geteuid() == 0)
		statedir_chown_vms(m.state_dir, m.engine_uid);
	if (geteuid() == 0 && monitor_privileges() < 0)
		goto out_control;
	/* A filter outlives execve: a re-executed image has it already. */
	if (geteuid() == 0 && handover < 0) {
		if (denylist_install() < 0) {
			daemon_log("seccomp deny-list: %s", strerror(errno));
			goto out_control;
		}
		daemon_log("seccomp: %zu system calls denied", denylist_count());
	}
	/* Made anew after a re-exec or a crash: the new engine's list is
	 * taken after it. */
	if (namepush_init(&m) < 0) {
		daemon_log("watching the config root: %s", strerror(errno));
		goto out_control;
	}
	if (enginep_start(&m) < 0) {
		daemon_log("starting the engine: %s", strerror(errno));
		goto out_control;
	}
	if (ready_fd >= 0) {
		if (write(ready_fd, "1", 1) != 1)
			goto out_engine;
		close(ready_fd);
		ready_fd = -1;
	}
	if (loop_run(&m.loop) < 0)
		daemon_log("event loop: %s", strerror(errno));
	else
		status = 0;
out_engine:
	enginep_stop(&m);
	mvm_free_all(&m, true);
	netlinks_fini(&m);
	daemon_log("exiting");
out_control:
	namepush_fini(&m);
	close(m.control_fd);
	unlink(m.control_path);
out_loop:
	if (m.signals.fd > 0)
		close(m.signals.fd);
	loop_fini(&m.loop);
out:
	if (m.cgroups) {
		/* Ours only if empty: rmdir refuses otherwise. */
		for (size_t i = 0; i < m.cgroups->count; i++)
			rmdir(m.cgroups->base[i]);
		cgroup_root_fini(m.cgroups);
	}
	close(m.lock_fd);
	gather_policy_free(&m.gather);
	return status;
}
