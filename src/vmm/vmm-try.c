/* vmm-try: boot one VM with the backend alone, no daemon.
 *
 *   vmm-try --config-root DIR [--data-root DIR] [--accel auto|kvm|tcg]
 *           [--until STRING] [--timeout S] [--hotplug N]
 *           [--console-cmd CMD --console-expect STR --console-out FILE]
 *           [--reconnect] [--print-argv] NAME
 *
 * Loads the VM, opens its files, launches it through the daemon's own
 * launch path (launch.h: virtiofsds, passt, QEMU, each jailed, in one
 * cgroup), does the QMP handshake and runs the guest, streams the serial
 * console to stdout until a line contains STRING, optionally runs one
 * command on the virtio-console shell, lists QEMU's fds on stderr, then
 * powers the guest down (ACPI) and waits, killing after a timeout.  Exit 0
 * only when every step worked and QEMU exited by itself; nothing of the
 * run is left either way.
 *
 * --reconnect, once the guest is ready: hang up QMP, serial and console
 * while the guest writes to both consoles, connect again with
 * launch_reconnect (as a restarted daemon would), and check that QMP greets
 * again and both consoles work again, and what the guest wrote meanwhile
 * was dropped (QEMU keeps nothing for an absent client).
 *
 * Run as root, QEMU and passt run as uid and gid 1965535 with no
 * capabilities, jailed, in the cgroup vmm-try-PID/NAME (as vmhostd's
 * VMs are); as anyone else, unconfined as that user.
 */
#include <dirent.h>
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

#include "common/privdrop.h"
#include "config/vmconfig.h"
#include "config/gather.h"
#include "vmm/cgroup.h"
#include "vmm/launch.h"
#include "vmm/qmp.h"
#include "vmm/vmm.h"

#define TRY_LINE_MAX 4096
/* The last uid of vmhostd's default range (vmuid.h, 1900000 + 65535): a
 * daemon reaches it only after handing out every other one. */
#define TRY_UID_BASE 1900000u
#define TRY_UID_SLOT 65535u

struct try_opts {
	const char *config_root, *data_root, *accel, *until, *name;
	const char *console_cmd, *console_expect, *console_out;
	int timeout_s;
	unsigned int hotplug;
	bool print_argv, reconnect;
};

struct try_vm {
	struct vm_files files;
	struct vm_run run;
	bool launched;
	struct cgroup_root cgroups;
	bool has_cgroups;
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
		"[--reconnect] [--print-argv] NAME\n");
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
		{ "reconnect", no_argument, NULL, 'r' },
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
		case 'r': o->reconnect = true; break;
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
	*vm = (struct try_vm){ .files = { .kernel_fd = -1 }, .console_out = -1 };
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
	struct vm_run *run = &vm->run;

	if (vm->launched) {
		if (run->qemu.pid > 0)
			launch_kill(run);
		else
			/* QEMU is gone: the helpers leave by themselves. */
			try_close(&run->qmp_fd);
		if (run->qemu.pid > 0)
			try_reap(run->qemu.pid, 5000);
		if (run->passt.pid > 0)
			try_reap(run->passt.pid, 3000);
		for (size_t i = 0; i < run->fsd_count; i++)
			if (run->fsd[i].pid > 0)
				try_reap(run->fsd[i].pid, 3000);
		if (launch_release(run) < 0)
			perror("vmm-try: removing the cgroup");
	}
	if (vm->has_cgroups) {
		for (size_t i = 0; i < vm->cgroups.count; i++)
			rmdir(vm->cgroups.base[i]);
		cgroup_root_fini(&vm->cgroups);
	}
	vm_files_release(&vm->files);
	try_close(&vm->console_out);
	if (vm->tmpdir[0])
		rmdir(vm->tmpdir);
}

/* The VM's directory gathered as a start gathers it (config/gather.h):
 * as its owner, every file opened once and checked. */
static int try_load(const struct try_opts *o, struct try_vm *vm)
{
	struct gather_policy p;
	struct diags d;
	int rc;

	if (gather_policy_init(&p) < 0) {
		perror("vmm-try: host limits");
		return -1;
	}
	p.roots = (struct vmconfig_roots){ o->config_root, o->data_root };
	diags_init(&d);
	rc = gather_load(&p, o->name, &vm->files, &d);
	for (size_t i = 0; i < d.count; i++)
		fprintf(stderr, "vmm-try: %s: %s: %s\n", d.items[i].vm,
			d.items[i].path, d.items[i].message);
	diags_free(&d);
	gather_policy_free(&p);
	if (rc < 0) {
		fprintf(stderr, "vmm-try: %s: cannot load: %s\n", o->name,
			strerror(errno));
		return -1;
	}
	return 0;
}

static void try_print_argv(pid_t pid)
{
	char path[64], buf[65536];
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1) {
		buf[n] = '\0';
		fprintf(stderr, "vmm-try: argv: %s\n", buf + i);
	}
}

static int try_launch(const struct try_opts *o, struct try_vm *vm)
{
	bool root = geteuid() == 0;
	struct launch_req q = { .files = &vm->files, .qemu_log_fd = STDERR_FILENO,
				.fsd_log_fd = STDERR_FILENO,
				.hotplug_ports = o->hotplug };
	struct privdrop drop;
	char parent[32], why[256], err[512];
	const char *accel_why;

	if (vmm_accel_resolve(o->accel, &q.accel, &accel_why) < 0) {
		fprintf(stderr, "vmm-try: bad --accel %s\n", o->accel);
		return -1;
	}
	fprintf(stderr, "vmm-try: accel %s (%s)\n", vmm_accel_name(q.accel),
		accel_why);
	/* As vmhostd: a TCG guest is told its TSC rate (vmm.h). */
	if (q.accel == VMM_ACCEL_TCG && vmm_host_tsc_khz(&q.tsc_khz) < 0)
		q.tsc_khz = 0;
	strcpy(vm->tmpdir, "/tmp/vmm-try.XXXXXX");
	if (!mkdtemp(vm->tmpdir)) {
		vm->tmpdir[0] = '\0';
		perror("vmm-try: run dir");
		return -1;
	}
	q.run_dir = vm->tmpdir;
	if (root) {
		if (privdrop_for_slot(TRY_UID_BASE, TRY_UID_SLOT,
				      q.accel == VMM_ACCEL_KVM, &drop) < 0) {
			perror("vmm-try: uid for qemu");
			return -1;
		}
		q.drop = &drop;
		snprintf(parent, sizeof parent, "vmm-try-%d", (int)getpid());
		if (cgroup_root_init(&vm->cgroups, parent, NULL, why,
				     sizeof why) < 0) {
			fprintf(stderr, "vmm-try: cgroups: %s\n", why);
			return -1;
		}
		vm->has_cgroups = true;
		q.cgroups = &vm->cgroups;
	}
	if (launch_start(&q, &vm->run, err, sizeof err) < 0) {
		fprintf(stderr, "vmm-try: %s\n", err);
		return -1;
	}
	vm->launched = true;
	for (size_t i = 0; i < vm->run.fsd_count; i++)
		fprintf(stderr, "vmm-try: virtiofsd pid %d for %s\n",
			vm->run.fsd[i].pid, vm->files.cfg->shares[i].tag);
	if (vm->run.passt.pid > 0)
		fprintf(stderr, "vmm-try: passt pid %d\n", vm->run.passt.pid);
	fprintf(stderr, "vmm-try: qemu pid %d\n", vm->run.qemu.pid);
	if (root)
		fprintf(stderr, "vmm-try: qemu runs as uid and gid %u in %s\n",
			(unsigned int)drop.uid, cgroup_dir(&vm->run.cgroup, 0));
	if (o->print_argv)
		try_print_argv(vm->run.qemu.pid);
	return 0;
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
			{ .fd = vm->run.serial_fd, .events = POLLIN },
			{ .fd = vm->run.console_fd, .events = POLLIN },
			{ .fd = vm->run.qemu.pidfd, .events = POLLIN },
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
				try_close(i ? &vm->run.console_fd :
					  &vm->run.serial_fd);
				continue;
			}
			if (i == 0)
				try_serial_bytes(io, o->until, buf, (size_t)n);
			else
				try_console_bytes(io, vm, o->console_expect, buf,
						  (size_t)n);
		}
		if (io->ready && o->console_cmd && !io->cmd_sent &&
		    vm->run.console_fd >= 0) {
			size_t len = strlen(o->console_cmd);
			if (write(vm->run.console_fd, o->console_cmd, len) < 0 ||
			    write(vm->run.console_fd, "\n", 1) < 0)
				return 0;
			io->cmd_sent = true;
		}
		if (p[2].revents & POLLIN)
			return drain_only ? 1 : 0; /* QEMU exited */
	}
}

/* Read fd into acc (NUL-terminated, keeping the last cap-1 bytes) until
 * needle is in it; false at the deadline or EOF. */
static bool try_wait_for(int fd, const char *needle, char *acc, size_t cap,
			 long long deadline)
{
	size_t len = strlen(acc);
	char buf[4096];

	while (!strstr(acc, needle)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline - try_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return false;
		n = read(fd, buf, sizeof buf);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			return false;
		for (ssize_t i = 0; i < n; i++) {
			if (len == cap - 1) {
				memmove(acc, acc + cap / 2, len - cap / 2);
				len -= cap / 2;
			}
			acc[len++] = buf[i] ? buf[i] : ' ';
		}
		acc[len] = '\0';
	}
	return true;
}

static int try_type(int fd, const char *line)
{
	size_t len = strlen(line);

	return write(fd, line, len) == (ssize_t)len ? 0 : -1;
}

/* --reconnect: see the top of this file.  Each time something is written
 * while its reader is away, the guest says so on the other console, so
 * the check waits for events, not for time to pass.  Replaces *qc with the
 * codec of the new QMP session. */
static int try_reconnect(struct try_vm *vm, struct qmp_codec **qc)
{
	struct vm_run *run = &vm->run;
	long long deadline = try_now_ms() + 60000;
	char con[TRY_LINE_MAX] = "", ser[TRY_LINE_MAX] = "";
	bool ser_kept, con_kept;

	/* 1. Serial is away while the guest writes to it. */
	try_close(&run->serial_fd);
	if (try_type(run->console_fd, "echo AWAY-ON-SERIAL > /dev/ttyS0; "
		     "echo WROTE-$((1+1))\n") < 0 ||
	    !try_wait_for(run->console_fd, "WROTE-2", con, sizeof con, deadline))
		goto fail;
	/* 2. Everyone hangs up, as a dying daemon would; a new one connects. */
	try_close(&run->qmp_fd);
	try_close(&run->console_fd);
	qmp_codec_free(*qc);
	*qc = qmp_codec_new(0);
	if (!*qc || launch_reconnect(run->run_dir, &run->qmp_fd,
				     &run->serial_fd, &run->console_fd) < 0) {
		perror("vmm-try: launch_reconnect");
		return -1;
	}
	if (qmp_sync_handshake(run->qmp_fd, *qc, 10000) < 0) {
		perror("vmm-try: QMP handshake after reconnecting");
		return -1;
	}
	fprintf(stderr, "vmm-try: reconnected: QMP greeted again\n");
	con[0] = '\0';
	if (try_type(run->console_fd, "echo BACK-ON-SERIAL > /dev/ttyS0\n") < 0 ||
	    !try_wait_for(run->serial_fd, "BACK-ON-SERIAL", ser, sizeof ser,
			  deadline))
		goto fail;
	ser_kept = strstr(ser, "AWAY-ON-SERIAL");
	/* 3. The console is away while the guest writes to it. */
	if (try_type(run->console_fd, "(sleep 1; echo AWAY-ON-CONSOLE; "
		     "echo CONSOLE-WRITTEN > /dev/ttyS0) &\n") < 0)
		goto fail;
	try_close(&run->console_fd);
	if (!try_wait_for(run->serial_fd, "CONSOLE-WRITTEN", ser, sizeof ser,
			  deadline) ||
	    launch_reconnect(run->run_dir, NULL, NULL, &run->console_fd) < 0 ||
	    try_type(run->console_fd, "echo BACK-$((6*7))\n") < 0 ||
	    !try_wait_for(run->console_fd, "BACK-42", con, sizeof con, deadline))
		goto fail;
	con_kept = strstr(con, "AWAY-ON-CONSOLE\r");
	fprintf(stderr, "vmm-try: reconnected: console and serial answer; "
		"written while away: serial %s, console %s\n",
		ser_kept ? "kept" : "dropped", con_kept ? "kept" : "dropped");
	return 0;
fail:
	fprintf(stderr, "vmm-try: reconnect: no answer from the guest\n");
	return -1;
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
	if (qmp_sync_handshake(vm->run.qmp_fd, qc, 10000) < 0) {
		perror("vmm-try: QMP handshake");
		goto out;
	}
	/* It starts paused (vmm.h): every end is connected, so run it. */
	if (qmp_sync_command(vm->run.qmp_fd, qc, "cont", NULL, 1, 5000,
			     NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "vmm-try: cont: %s\n", err);
		goto out;
	}
	if (qmp_sync_command(vm->run.qmp_fd, qc, "query-status", NULL, 2, 5000,
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
	if (o->reconnect && try_reconnect(vm, &qc) < 0)
		goto out;
	try_list_fds("qemu", vm->run.qemu.pid);
	for (size_t i = 0; i < vm->run.fsd_count; i++)
		try_list_fds("virtiofsd", vm->run.fsd[i].pid);
	if (qmp_sync_command(vm->run.qmp_fd, qc, "system_powerdown", NULL, 4, 5000,
			     NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "vmm-try: system_powerdown: %s\n", err);
		goto out;
	}
	long long t0 = try_now_ms();
	if (!try_run_io(o, vm, &io, t0 + 20000, true)) {
		fprintf(stderr, "vmm-try: no exit after powerdown\n");
		goto out;
	}
	while (waitpid(vm->run.qemu.pid, &status, 0) < 0 && errno == EINTR)
		;
	vm->run.qemu.pid = 0;
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
	if (try_load(&o, &vm) < 0 || try_launch(&o, &vm) < 0)
		goto out;
	if (try_boot(&o, &vm) == 0)
		rc = 0;
out:
	try_vm_cleanup(&vm);
	if (rc == 0)
		fprintf(stderr, "vmm-try: ok\n");
	return rc;
}
