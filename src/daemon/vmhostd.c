/* vmhostd: runs the VMs of a config root, driven over STATE/control. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/links.h"
#include "daemon/privileges.h"
#include "daemon/recover.h"
#include "daemon/request.h"
#include "daemon/statedir.h"
#include "daemon/vmstate.h"
#include "daemon/vmuid.h"
#include "net/ifname.h"

static const char usage[] =
	"usage: vmhostd --config-root DIR --state-dir DIR [--data-root DIR]\n"
	"               [--accel auto|kvm|tcg] [--uid-base N] [--foreground]\n"
	"               [--link-prefix PREFIX]\n";

void daemon_log(const char *fmt, ...)
{
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	va_list ap;

	localtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(stderr, "%s vmhostd: ", stamp);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

void daemon_vm_settled(struct daemon *d)
{
	if (d->shutting_down && !vmstate_any_active(d))
		loop_quit(&d->loop);
}

/* SIGTERM/SIGINT: power every VM off, then leave; a second one forces. */
static void daemon_signal(struct loop_source *src, uint32_t events)
{
	struct daemon *d = src->arg;
	struct signalfd_siginfo si;

	while (read(src->fd, &si, sizeof si) == sizeof si) {
		if (si.ssi_signo == SIGHUP)
			continue;
		daemon_log("signal %u: %s", si.ssi_signo,
			   d->shutting_down ? "forcing every VM off" :
			   "powering every VM off, then exiting");
		vmstate_stop_all(d, d->shutting_down);
		d->shutting_down = true;
		daemon_vm_settled(d);
	}
}

static int daemon_signals(struct daemon *d)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	d->signals.fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	d->signals.ready = daemon_signal;
	d->signals.arg = d;
	if (d->signals.fd < 0)
		return -1;
	return loop_add(&d->loop, &d->signals, EPOLLIN);
}

/* Where per-VM uids start (vmuid.h).  Only root can switch uids: anyone
 * else runs QEMU as itself, and an explicit --uid-base is refused. */
static int daemon_uid_base(struct daemon *d, const char *arg)
{
	unsigned long v = VMUID_BASE_DEFAULT;
	char *end;

	d->uid_base = 0;
	if (arg) {
		errno = 0;
		v = strtoul(arg, &end, 10);
		if (errno || end == arg || *end || v < 1000 ||
		    v > 0xfffffff0ul - VMUID_SLOTS || geteuid() != 0)
			return -1;
	}
	if (geteuid() == 0)
		d->uid_base = (uid_t)v;
	return 0;
}

/* Set up: keep only the capabilities VMs need from now on. */
static int daemon_privileges(void)
{
	uint64_t permitted, bounding;
	char names[512];

	if (privileges_reduce(&permitted, &bounding) < 0) {
		daemon_log("dropping capabilities: %s", strerror(errno));
		return -1;
	}
	privileges_names(permitted, names, sizeof names);
	daemon_log("capabilities kept: %s", names);
	privileges_names(bounding & ~permitted, names, sizeof names);
	daemon_log("bounding set: those and, for virtiofsd only, %s", names);
	return 0;
}

/* Fork; the parent waits until the child says the socket listens. */
static int daemon_detach(int *ready_fd)
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

static int daemon_redirect(const char *state)
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config-root", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "data-root", required_argument, NULL, 'd' },
		{ "accel", required_argument, NULL, 'a' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "uid-base", required_argument, NULL, 'u' },
		{ "link-prefix", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct daemon d = { .link_prefix = IFNAME_DEFAULT_PREFIX };
	const char *accel = "auto", *uid_base = NULL;
	bool foreground = false;
	char *control = NULL;
	int opt, lock_fd, ready_fd = -1, status = 1;
	char errbuf[512];

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': d.roots.config_root = optarg; break;
		case 's': d.state_dir = optarg; break;
		case 'd': d.roots.data_root = optarg; break;
		case 'a': accel = optarg; break;
		case 'f': foreground = true; break;
		case 'u': uid_base = optarg; break;
		case 'l': d.link_prefix = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (optind != argc || !d.roots.config_root || !d.state_dir) {
		fputs(usage, stderr);
		return 2;
	}
	if (vmm_accel_resolve(accel, &d.accel, &d.accel_why) < 0) {
		fprintf(stderr, "vmhostd: --accel %s: use auto, kvm or tcg\n", accel);
		return 2;
	}
	/* TCG guests are told their TSC rate; leaf VMs need it for microvm. */
	if (d.accel == VMM_ACCEL_TCG && vmm_host_tsc_khz(&d.tsc_khz) < 0)
		d.tsc_khz = 0;
	if (daemon_uid_base(&d, uid_base) < 0) {
		fprintf(stderr, "vmhostd: --uid-base %s: use a number from 1000 to %u\n",
			uid_base, 0xfffffff0u - VMUID_SLOTS);
		return 2;
	}
	if (ifname_prefix_check(d.link_prefix) < 0) {
		fprintf(stderr, "vmhostd: --link-prefix %s: use 1 to %d of a-z 0-9 -\n",
			d.link_prefix, IFNAME_PREFIX_MAX);
		return 2;
	}
	lock_fd = statedir_lock(d.state_dir);
	if (lock_fd < 0) {
		if (errno == EWOULDBLOCK)
			fprintf(stderr, "vmhostd: %s: another vmhostd uses this state directory\n",
				d.state_dir);
		else
			fprintf(stderr, "vmhostd: %s: %s\n", d.state_dir, strerror(errno));
		return 1;
	}
	/* Refuse a damaged link table rather than renumber running links;
	 * and no VM runs yet, so every interface of ours is stale. */
	if (links_init(&d, errbuf, sizeof errbuf) < 0) {
		fprintf(stderr, "vmhostd: %s\n", errbuf);
		close(lock_fd);
		return 1;
	}
	if (!foreground && daemon_detach(&ready_fd) < 0) {
		perror("vmhostd: fork");
		return 1;
	}
	statedir_write_pid(lock_fd);
	if (asprintf(&control, "%s/control", d.state_dir) < 0)
		goto out;
	d.use_syslog = access("/dev/log", W_OK) == 0;
	if (d.use_syslog)
		openlog("vmhostd", LOG_PID, LOG_DAEMON);
	if (loop_init(&d.loop) < 0 || daemon_signals(&d) < 0) {
		perror("vmhostd: event loop");
		goto out;
	}
	if (control_listen(&d.control, &d.loop, control, request_handle, &d) < 0) {
		fprintf(stderr, "vmhostd: %s: %s\n", control, strerror(errno));
		goto out_loop;
	}
	if (!foreground && daemon_redirect(d.state_dir) < 0) {
		perror("vmhostd: log");
		goto out_control;
	}
	daemon_log("listening on %s; config root %s; accel %s: %s", control,
		   d.roots.config_root, vmm_accel_name(d.accel), d.accel_why);
	if (d.accel == VMM_ACCEL_TCG)
		daemon_log(d.tsc_khz ? "TCG: host TSC at %lu kHz: leaf VMs boot on microvm" :
			   "TCG: the host does not keep time with its TSC: every VM boots on q35",
			   d.tsc_khz);
	if (d.uid_base)
		daemon_log("QEMU runs as uid and gid %u + slot, one per running VM",
			   (unsigned int)d.uid_base);
	else
		daemon_log("not root: QEMU runs as the daemon's own user");
	/* Before any request is served: a VM must never run twice. */
	recover_orphans(&d);
	if (geteuid() == 0 && daemon_privileges() < 0)
		goto out_control;
	if (ready_fd >= 0) {
		if (write(ready_fd, "1", 1) != 1)
			goto out_control;
		close(ready_fd);
		ready_fd = -1;
	}
	if (loop_run(&d.loop) < 0)
		daemon_log("event loop: %s", strerror(errno));
	else
		status = 0;
	/* Clients first: their close callbacks point into the VMs. */
	control_fini(&d.control);
	vmstate_free_all(&d);
	links_fini(&d);
	daemon_log("exiting");
	goto out_loop;
out_control:
	control_fini(&d.control);
out_loop:
	if (d.signals.fd > 0)
		close(d.signals.fd);
	loop_fini(&d.loop);
out:
	free(control);
	close(lock_fd);
	return status;
}
