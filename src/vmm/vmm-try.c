/* vmm-try: boot one VM with the backend alone, no daemon.
 *
 *   vmm-try --config-root DIR [--data-root DIR] [--accel auto|kvm|tcg]
 *           [--until STRING] [--timeout S] [--hotplug N]
 *           [--console-cmd CMD --console-expect STR --console-out FILE]
 *           [--print-argv] NAME
 *
 * Loads the VM, opens its kernel and disks, starts one virtiofsd per share
 * and QEMU on socketpairs, does the QMP handshake, streams the serial
 * console to stdout until a line contains STRING, optionally runs one
 * command on the virtio-console shell, lists QEMU's fds on stderr, then
 * powers the guest down (ACPI) and waits, killing after a timeout.  Exit 0
 * only when every step worked and QEMU exited by itself.
 *
 * Run as root, it drops QEMU's privileges as vmhostd does (privdrop.h):
 * QEMU runs as uid and gid 1965535 with no capabilities, and boots a
 * sealed copy of the kernel (sealcopy.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "common/privdrop.h"
#include "common/sealcopy.h"
#include "common/spawn.h"
#include "config/vmconfig.h"
#include "vmm/qmp.h"
#include "vmm/virtiofsd.h"
#include "vmm/vmm.h"

#define TRY_LINE_MAX 4096
/* The last uid of vmhostd's default range (vmuid.h, 1900000 + 65535): a
 * daemon takes the lowest free slot and skips uids in use, so it reaches
 * this one only with 65535 VMs running. */
#define TRY_UID_BASE 1900000u
#define TRY_UID_SLOT 65535u
#define TRY_KERNEL_MAX ((off_t)1 << 30)

struct try_opts {
	const char *config_root, *data_root, *accel, *until, *name;
	const char *console_cmd, *console_expect, *console_out;
	int timeout_s;
	unsigned int hotplug;
	bool print_argv;
};

struct try_vm {
	struct vm_config *cfg;
	int kernel_fd;
	int *disk_fds;
	int *vfs_fds;         /* QEMU's ends */
	pid_t *vfs_pids;
	int qmp[2], serial[2], console[2]; /* [0] ours, [1] QEMU's */
	pid_t qemu_pid;
	int qemu_pidfd;
	int console_out;
	char tmpdir[64];
};

static long long try_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void try_usage(void)
{
	fprintf(stderr, "usage: vmm-try --config-root DIR [--data-root DIR] "
		"[--accel MODE] [--until STR] [--timeout S] [--hotplug N] "
		"[--console-cmd CMD --console-expect STR --console-out FILE] "
		"[--print-argv] NAME\n");
}

static int try_parse(int argc, char **argv, struct try_opts *o)
{
	static const struct option longopts[] = {
		{ "config-root", required_argument, NULL, 'c' },
		{ "data-root", required_argument, NULL, 'd' },
		{ "accel", required_argument, NULL, 'a' },
		{ "until", required_argument, NULL, 'u' },
		{ "timeout", required_argument, NULL, 't' },
		{ "hotplug", required_argument, NULL, 'h' },
		{ "console-cmd", required_argument, NULL, 'C' },
		{ "console-expect", required_argument, NULL, 'E' },
		{ "console-out", required_argument, NULL, 'O' },
		{ "print-argv", no_argument, NULL, 'p' },
		{ 0 },
	};
	int c;

	*o = (struct try_opts){ .accel = "auto", .timeout_s = 60,
				.until = "vmhost-guest: ready" };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config_root = optarg; break;
		case 'd': o->data_root = optarg; break;
		case 'a': o->accel = optarg; break;
		case 'u': o->until = optarg; break;
		case 't': o->timeout_s = atoi(optarg); break;
		case 'h': o->hotplug = (unsigned int)atoi(optarg); break;
		case 'C': o->console_cmd = optarg; break;
		case 'E': o->console_expect = optarg; break;
		case 'O': o->console_out = optarg; break;
		case 'p': o->print_argv = true; break;
		default: return -1;
		}
	}
	if (!o->config_root || optind != argc - 1 || o->timeout_s <= 0)
		return -1;
	o->name = argv[optind];
	return 0;
}

static void try_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void try_vm_init(struct try_vm *vm)
{
	*vm = (struct try_vm){ .kernel_fd = -1, .qemu_pid = -1,
			       .qemu_pidfd = -1, .console_out = -1,
			       .qmp = { -1, -1 }, .serial = { -1, -1 },
			       .console = { -1, -1 } };
}

/* Wait for pid up to ms, then SIGKILL; returns the wait status. */
static int try_reap(pid_t pid, int ms)
{
	long long end = try_now_ms() + ms;
	int status = 0;

	while (try_now_ms() < end) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return status;
		usleep(20000);
	}
	fprintf(stderr, "vmm-try: pid %d did not exit, killing it\n", pid);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

static void try_vm_cleanup(struct try_vm *vm)
{
	size_t shares = vm->cfg ? vm->cfg->share_count : 0;
	size_t disks = vm->cfg ? vm->cfg->disk_count : 0;

	if (vm->qemu_pid > 0) {
		kill(vm->qemu_pid, SIGKILL);
		try_reap(vm->qemu_pid, 5000);
	}
	try_close(&vm->qemu_pidfd);
	for (int i = 0; i < 2; i++) {
		try_close(&vm->qmp[i]);
		try_close(&vm->serial[i]);
		try_close(&vm->console[i]);
	}
	for (size_t i = 0; vm->vfs_fds && i < shares; i++)
		try_close(&vm->vfs_fds[i]);
	/* virtiofsd leaves by itself once QEMU's end is closed. */
	for (size_t i = 0; vm->vfs_pids && i < shares; i++)
		if (vm->vfs_pids[i] > 0)
			try_reap(vm->vfs_pids[i], 3000);
	for (size_t i = 0; vm->disk_fds && i < disks; i++)
		try_close(&vm->disk_fds[i]);
	try_close(&vm->kernel_fd);
	try_close(&vm->console_out);
	if (vm->tmpdir[0])
		rmdir(vm->tmpdir);
	free(vm->vfs_fds);
	free(vm->vfs_pids);
	free(vm->disk_fds);
	vmconfig_free(vm->cfg);
}

static int try_load(const struct try_opts *o, struct try_vm *vm)
{
	struct vmconfig_roots roots = { o->config_root, o->data_root };
	struct diags d;
	int rc;

	diags_init(&d);
	rc = vmconfig_load(&roots, o->name, &vm->cfg, &d);
	for (size_t i = 0; i < d.count; i++)
		fprintf(stderr, "vmm-try: %s: %s: %s\n", d.items[i].vm,
			d.items[i].path, d.items[i].message);
	diags_free(&d);
	if (rc < 0)
		fprintf(stderr, "vmm-try: %s: cannot load: %s\n", o->name,
			strerror(errno));
	return rc;
}

static int try_open_files(struct try_vm *vm)
{
	const struct vm_config *c = vm->cfg;
	int fd = open(c->kernel, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	/* QEMU reopens it as its own uid: a copy any uid can read. */
	vm->kernel_fd = fd < 0 ? -1 : sealcopy(fd, "vmlinux", TRY_KERNEL_MAX);
	if (fd >= 0)
		close(fd);
	if (vm->kernel_fd < 0) {
		fprintf(stderr, "vmm-try: %s: %s\n", c->kernel, strerror(errno));
		return -1;
	}
	vm->disk_fds = calloc(c->disk_count ? c->disk_count : 1, sizeof(int));
	if (!vm->disk_fds)
		return -1;
	for (size_t i = 0; i < c->disk_count; i++)
		vm->disk_fds[i] = -1;
	for (size_t i = 0; i < c->disk_count; i++) {
		vm->disk_fds[i] = open(c->disks[i].path,
				       O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (vm->disk_fds[i] < 0) {
			fprintf(stderr, "vmm-try: %s: %s\n", c->disks[i].path,
				strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int try_start_virtiofsd(struct try_vm *vm)
{
	const struct vm_config *c = vm->cfg;
	size_t n = c->share_count;
	char path[128];

	vm->vfs_fds = calloc(n ? n : 1, sizeof(int));
	vm->vfs_pids = calloc(n ? n : 1, sizeof(pid_t));
	if (!vm->vfs_fds || !vm->vfs_pids)
		return -1;
	for (size_t i = 0; i < n; i++)
		vm->vfs_fds[i] = -1;
	if (!n)
		return 0;
	strcpy(vm->tmpdir, "/tmp/vmm-try.XXXXXX");
	if (!mkdtemp(vm->tmpdir)) {
		vm->tmpdir[0] = '\0';
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		int lfd;

		snprintf(path, sizeof(path), "%s/vfs%zu.sock", vm->tmpdir, i);
		if (virtiofsd_sockets(path, &lfd, &vm->vfs_fds[i]) < 0) {
			perror("vmm-try: virtiofsd socket");
			return -1;
		}
		struct virtiofsd_opts vo = {
			.source = c->shares[i].host_dir,
			.listen_fd = lfd,
			.sandbox = geteuid() == 0 ? VIRTIOFSD_SANDBOX_NAMESPACE
						  : VIRTIOFSD_SANDBOX_CHROOT,
		};
		int rc = virtiofsd_spawn(&vo, STDERR_FILENO, &vm->vfs_pids[i],
					 NULL);
		close(lfd);
		if (rc < 0) {
			perror("vmm-try: virtiofsd");
			return -1;
		}
		fprintf(stderr, "vmm-try: virtiofsd pid %d for %s\n",
			vm->vfs_pids[i], c->shares[i].tag);
	}
	return 0;
}

static int try_start_qemu(const struct try_opts *o, struct try_vm *vm)
{
	struct vmm_launch l = { .cfg = vm->cfg };
	bool dropping = geteuid() == 0;
	struct privdrop drop;
	const char *why;
	char **argv = NULL;
	int *fds = NULL;
	size_t nfds;
	int rc = -1;

	if (vmm_accel_resolve(o->accel, &l.accel, &why) < 0) {
		fprintf(stderr, "vmm-try: bad --accel %s\n", o->accel);
		return -1;
	}
	fprintf(stderr, "vmm-try: accel %s (%s)\n", vmm_accel_name(l.accel), why);
	/* As vmhostd: a TCG guest is told its TSC rate (vmm.h). */
	if (l.accel == VMM_ACCEL_TCG && vmm_host_tsc_khz(&l.tsc_khz) < 0)
		l.tsc_khz = 0;
	if (dropping && privdrop_for_slot(TRY_UID_BASE, TRY_UID_SLOT,
					  l.accel == VMM_ACCEL_KVM, &drop) < 0) {
		perror("vmm-try: uid for qemu");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, vm->qmp) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, vm->serial) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, vm->console) < 0)
		return -1;
	l.kernel_fd = vm->kernel_fd;
	l.qmp_fd = vm->qmp[1];
	l.serial_fd = vm->serial[1];
	l.console_fd = vm->console[1];
	l.disk_fds = vm->disk_fds;
	l.virtiofs_fds = vm->vfs_fds;
	l.hotplug_ports = o->hotplug;
	if (vmm_argv(&l, &argv) < 0) {
		perror("vmm-try: vmm_argv");
		return -1;
	}
	if (o->print_argv)
		for (char **p = argv; *p; p++)
			fprintf(stderr, "vmm-try: argv: %s\n", *p);
	if (vmm_launch_fds(&l, &fds, &nfds) < 0)
		goto out;
	struct spawn_opts so = { .path = argv[0], .argv = argv,
				 .keep_fds = fds, .keep_count = nfds,
				 .log_fd = STDERR_FILENO,
				 .drop = dropping ? &drop : NULL };
	if (spawn(&so, &vm->qemu_pid, &vm->qemu_pidfd) < 0) {
		perror("vmm-try: spawn qemu");
		goto out;
	}
	fprintf(stderr, "vmm-try: qemu pid %d\n", vm->qemu_pid);
	if (dropping)
		fprintf(stderr, "vmm-try: qemu runs as uid and gid %u\n",
			(unsigned int)drop.uid);
	/* QEMU has its ends now. */
	try_close(&vm->qmp[1]);
	try_close(&vm->serial[1]);
	try_close(&vm->console[1]);
	for (size_t i = 0; i < vm->cfg->share_count; i++)
		try_close(&vm->vfs_fds[i]);
	rc = 0;
out:
	free(fds);
	vmm_argv_free(argv);
	return rc;
}

static void try_list_fds(const char *what, pid_t pid)
{
	char dir[64], path[320], target[256];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		fprintf(stderr, "vmm-try: %s fd %s -> %s\n", what, e->d_name,
			target);
	}
	closedir(d);
}

/* Serial and console I/O until `until` is seen (and the console command
 * answered), the deadline passes, or QEMU exits.  Returns 1 when done, 0
 * on timeout or exit. */
struct try_io {
	char line[TRY_LINE_MAX];
	size_t linelen;
	char con[TRY_LINE_MAX];
	size_t conlen;
	bool ready, cmd_sent, answered;
};

static void try_serial_bytes(struct try_io *io, const char *until,
			     const char *buf, size_t n)
{
	fwrite(buf, 1, n, stdout);
	fflush(stdout);
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n' || io->linelen == TRY_LINE_MAX - 1) {
			io->line[io->linelen] = '\0';
			if (strstr(io->line, until))
				io->ready = true;
			io->linelen = 0;
			continue;
		}
		io->line[io->linelen++] = buf[i];
	}
}

static void try_console_bytes(struct try_io *io, struct try_vm *vm,
			      const char *expect, const char *buf, size_t n)
{
	if (vm->console_out >= 0)
		(void)!write(vm->console_out, buf, n);
	if (!expect || !io->cmd_sent)
		return;
	/* Keep a sliding window, enough to find expect across reads. */
	for (size_t i = 0; i < n; i++) {
		if (io->conlen == TRY_LINE_MAX - 1) {
			memmove(io->con, io->con + TRY_LINE_MAX / 2,
				io->conlen - TRY_LINE_MAX / 2);
			io->conlen -= TRY_LINE_MAX / 2;
		}
		io->con[io->conlen++] = buf[i];
	}
	io->con[io->conlen] = '\0';
	if (strstr(io->con, expect))
		io->answered = true;
}

static bool try_io_done(const struct try_opts *o, const struct try_io *io)
{
	if (!io->ready)
		return false;
	return !o->console_cmd || !o->console_expect || io->answered;
}

static int try_run_io(const struct try_opts *o, struct try_vm *vm,
		      struct try_io *io, long long deadline, bool drain_only)
{
	char buf[4096];

	for (;;) {
		struct pollfd p[3] = {
			{ .fd = vm->serial[0], .events = POLLIN },
			{ .fd = vm->console[0], .events = POLLIN },
			{ .fd = vm->qemu_pidfd, .events = POLLIN },
		};
		long long left = deadline - try_now_ms();

		if (!drain_only && try_io_done(o, io))
			return 1;
		if (left <= 0)
			return 0;
		if (poll(p, 3, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0) {
				/* Closed: stop polling it. */
				try_close(i ? &vm->console[0] : &vm->serial[0]);
				continue;
			}
			if (i == 0)
				try_serial_bytes(io, o->until, buf, (size_t)n);
			else
				try_console_bytes(io, vm, o->console_expect, buf,
						  (size_t)n);
		}
		if (io->ready && o->console_cmd && !io->cmd_sent &&
		    vm->console[0] >= 0) {
			size_t len = strlen(o->console_cmd);
			if (write(vm->console[0], o->console_cmd, len) < 0 ||
			    write(vm->console[0], "\n", 1) < 0)
				return 0;
			io->cmd_sent = true;
		}
		if (p[2].revents & POLLIN)
			return drain_only ? 1 : 0; /* QEMU exited */
	}
}

static int try_boot(const struct try_opts *o, struct try_vm *vm)
{
	long long start = try_now_ms(), deadline = start + o->timeout_s * 1000LL;
	struct qmp_codec *qc = qmp_codec_new(0);
	struct try_io io = { 0 };
	char err[256] = "";
	json_t *ret = NULL;
	int status, rc = -1;

	if (!qc)
		return -1;
	if (qmp_sync_handshake(vm->qmp[0], qc, 10000) < 0) {
		perror("vmm-try: QMP handshake");
		goto out;
	}
	if (qmp_sync_command(vm->qmp[0], qc, "query-status", NULL, 1, 5000,
			     &ret, err, sizeof(err)) < 0) {
		fprintf(stderr, "vmm-try: query-status: %s\n", err);
		goto out;
	}
	fprintf(stderr, "vmm-try: status %s\n",
		json_string_value(json_object_get(ret, "status")) ?: "?");
	json_decref(ret);
	if (!try_run_io(o, vm, &io, deadline, false)) {
		fprintf(stderr, "vmm-try: \"%s\"%s not seen\n", o->until,
			io.ready ? " seen, console answer" : "");
		goto out;
	}
	fprintf(stderr, "vmm-try: ready after %lld ms\n", try_now_ms() - start);
	try_list_fds("qemu", vm->qemu_pid);
	for (size_t i = 0; i < vm->cfg->share_count; i++)
		try_list_fds("virtiofsd", vm->vfs_pids[i]);
	if (qmp_sync_command(vm->qmp[0], qc, "system_powerdown", NULL, 2, 5000,
			     NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "vmm-try: system_powerdown: %s\n", err);
		goto out;
	}
	long long t0 = try_now_ms();
	if (!try_run_io(o, vm, &io, t0 + 20000, true)) {
		fprintf(stderr, "vmm-try: no exit after powerdown\n");
		goto out;
	}
	while (waitpid(vm->qemu_pid, &status, 0) < 0 && errno == EINTR)
		;
	vm->qemu_pid = -1;
	fprintf(stderr, "vmm-try: qemu exited (status %d) %lld ms after "
		"powerdown\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
		try_now_ms() - t0);
	rc = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
out:
	qmp_codec_free(qc);
	return rc;
}

int main(int argc, char **argv)
{
	struct try_opts o;
	struct try_vm vm;
	int rc = 1;

	if (try_parse(argc, argv, &o) < 0) {
		try_usage();
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	try_vm_init(&vm);
	if (o.console_out) {
		vm.console_out = open(o.console_out, O_WRONLY | O_CREAT |
				      O_TRUNC | O_CLOEXEC, 0600);
		if (vm.console_out < 0) {
			perror(o.console_out);
			return 1;
		}
	}
	if (try_load(&o, &vm) < 0 || try_open_files(&vm) < 0 ||
	    try_start_virtiofsd(&vm) < 0 || try_start_qemu(&o, &vm) < 0)
		goto out;
	if (try_boot(&o, &vm) == 0)
		rc = 0;
out:
	try_vm_cleanup(&vm);
	if (rc == 0)
		fprintf(stderr, "vmm-try: ok\n");
	return rc;
}
