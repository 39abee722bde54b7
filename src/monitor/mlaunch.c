/* Launching a gathered VM.  See mlaunch.h. */
#include "monitor/mlaunch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sealcopy.h"
#include "common/spawn.h"
#include "config/vmjson.h"
#include "monitor/mvm.h"
#include "monitor/netlinks.h"
#include "monitor/record.h"
#include "monitor/statedir.h"
#include "monitor/vmuid.h"
#include "vmm/virtiofsd.h"

static const char *const mlaunch_sockets[3] = {
	[RUN_QMP] = "qmp.sock",
	[RUN_SERIAL] = "serial.sock",
	[RUN_CONSOLE] = "console.sock",
};

static int mlaunch_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int mlaunch_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof sa.sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Completes at once: the connection waits in the backlog until
	 * QEMU accepts it. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    mlaunch_nonblock(fd) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* A listening socket for QEMU at run_dir/name, and our connection to it. */
static int mlaunch_listen(const char *run_dir, const char *name, int *listen_fd,
			  int *ours)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *path = statedir_socket(run_dir, name);
	int fd = -1, e;

	if (!path)
		return -1;
	strcpy(sa.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(fd, 4) < 0)
		goto fail;
	*ours = mlaunch_connect(path);
	if (*ours < 0)
		goto fail;
	*listen_fd = fd;
	free(path);
	return 0;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(path);
	errno = e;
	return -1;
}

int mlaunch_reconnect(struct mvm *vm)
{
	char *path;

	for (int i = RUN_QMP; i <= RUN_CONSOLE; i++) {
		path = statedir_socket(vm->run_dir, mlaunch_sockets[i]);
		if (!path)
			return -1;
		vm->fds[i] = mlaunch_connect(path);
		free(path);
		if (vm->fds[i] < 0)
			return -1;
	}
	return 0;
}

/* A pipe for a child's stdout and stderr: the read end (non-blocking) for
 * the engine, which keeps it in a capped log, the write end returned. */
static int mlaunch_log_pipe(int *read_end)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if (mlaunch_nonblock(p[0]) < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	*read_end = p[0];
	return p[1];
}

/* One virtiofsd per share, serving the directory the gatherer opened. */
static int mlaunch_fsds(struct monitor *m, struct mvm *vm, int *qemu_fds,
			int log_fd, char *err, size_t len)
{
	const struct vm_config *cfg = vm->files.cfg;
	char name[VMCONFIG_TAG_MAX + 16], *tmp, *pin_at = NULL;
	struct virtiofsd_opts o = { 0 };
	int listen_fd, pidfd, r;
	pid_t pid;

	vm->helpers = calloc(cfg->share_count + 1, sizeof *vm->helpers);
	if (!vm->helpers)
		return -1;
	for (size_t i = 0; i < cfg->share_count; i++) {
		const struct vm_share *sh = &cfg->shares[i];

		vm->helpers[i].src.fd = -1;
		snprintf(vm->helpers[i].what, sizeof vm->helpers[i].what,
			 "virtiofsd for share %s", sh->tag);
		snprintf(name, sizeof name, "fs-%s.sock", sh->tag);
		tmp = statedir_socket(vm->run_dir, name);
		if (!tmp || virtiofsd_sockets(tmp, &listen_fd, &qemu_fds[i]) < 0) {
			snprintf(err, len, "start failed: shared-dirs/%s: socket %s: %s",
				 sh->tag, tmp ? tmp : name, strerror(errno));
			free(tmp);
			return -1;
		}
		free(tmp);
		o = (struct virtiofsd_opts){ .source = sh->host_dir,
					     .listen_fd = listen_fd };
		o.sandbox = getuid() == 0 ? VIRTIOFSD_SANDBOX_NAMESPACE :
			    VIRTIOFSD_SANDBOX_CHROOT;
		if (o.sandbox == VIRTIOFSD_SANDBOX_NAMESPACE) {
			if (asprintf(&pin_at, "%s/fs-%s", vm->run_dir, sh->tag) < 0 ||
			    (mkdir(pin_at, 0700) < 0 && errno != EEXIST)) {
				snprintf(err, len, "start failed: shared-dirs/%s: %s",
					 sh->tag, strerror(errno));
				close(listen_fd);
				free(pin_at);
				return -1;
			}
			o.pin_at = pin_at;
			o.source_fd = vm->files.share_fds[i];
		}
		r = virtiofsd_spawn(&o, log_fd, &pid, &pidfd);
		if (r < 0)
			snprintf(err, len, "start failed: shared-dirs/%s: virtiofsd for %s: %s",
				 sh->tag, sh->host_dir,
				 errno == ESTALE ? "changed since it was checked" :
				 strerror(errno));
		free(pin_at);
		pin_at = NULL;
		close(listen_fd);
		if (r < 0)
			return -1;
		vm->helper_count = i + 1;
		mvm_watch(vm, &vm->helpers[i], pid, pidfd, true);
	}
	return 0;
}

static int mlaunch_qemu(struct monitor *m, struct mvm *vm, const int *listen,
			const int *fs_fds, const struct vmm_nic *nics,
			int log_fd, char *err, size_t len)
{
	struct vmm_launch launch = {
		.cfg = vm->files.cfg,
		.accel = vm->accel,
		.qmp_fd = listen[RUN_QMP],
		.serial_fd = listen[RUN_SERIAL],
		.console_fd = listen[RUN_CONSOLE],
		.chardev_server = true,
		.disk_fds = vm->files.disk_fds,
		.virtiofs_fds = fs_fds,
		.nics = nics,
		.nic_count = vm->files.cfg->provider_count,
		.hotplug_ports = vm->hotplug_ports,
	};
	struct spawn_opts so = { 0 };
	struct privdrop drop;
	bool dropping;
	int *keep = NULL, pidfd, r = -1;
	char **argv = NULL;
	size_t nkeep = 0;
	pid_t pid;

	/* QEMU reopens /proc/self/fd/N as its own uid, which a root-only
	 * vmlinux would refuse; a sealed copy is readable and cannot change
	 * while it boots (common/sealcopy.h).  The gatherer made it, as the
	 * directory's owner: this only shares it. */
	launch.kernel_fd = sealcopy(vm->files.kernel_fd, "vmlinux",
				    VMFILES_KERNEL_MAX);
	if (launch.kernel_fd < 0) {
		snprintf(err, len, "start failed: vmlinux: copying it: %s",
			 strerror(errno));
		return -1;
	}
	if (vmuid_pick(m, vm, &drop, &dropping) < 0) {
		snprintf(err, len, "start failed: no uid for QEMU: %s",
			 strerror(errno));
		goto out;
	}
	if (vmm_argv(&launch, &argv) < 0 ||
	    vmm_launch_fds(&launch, &keep, &nkeep) < 0) {
		snprintf(err, len, "start failed: QEMU command line: %s",
			 strerror(errno));
		goto out;
	}
	so.path = argv[0];
	so.argv = argv;
	so.keep_fds = keep;
	so.keep_count = nkeep;
	so.log_fd = log_fd;
	so.drop = dropping ? &drop : NULL;
	r = spawn(&so, &pid, &pidfd);
	if (r < 0) {
		snprintf(err, len, "start failed: %s: %s", argv[0], strerror(errno));
		goto out;
	}
	snprintf(vm->qemu.what, sizeof vm->qemu.what, "QEMU");
	mvm_watch(vm, &vm->qemu, pid, pidfd, true);
	if (!vm->qemu.pid) {
		snprintf(err, len, "start failed: watching QEMU: %s", strerror(errno));
		r = -1;
	}
out:
	close(launch.kernel_fd);
	vmm_argv_free(argv);
	free(keep);
	return r;
}

static void mlaunch_close(int *fds, size_t n)
{
	for (size_t i = 0; fds && i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* Undo a launch that got part way: no process of it stays. */
static void mlaunch_undo(struct monitor *m, struct mvm *vm)
{
	struct mchild *all[1 + vm->helper_count];
	size_t n = 0;

	all[n++] = &vm->qemu;
	for (size_t i = 0; i < vm->helper_count; i++)
		all[n++] = &vm->helpers[i];
	for (size_t i = 0; i < n; i++) {
		if (!all[i]->pid)
			continue;
		kill(all[i]->pid, SIGKILL);
		waitpid(all[i]->pid, NULL, 0);
		loop_del(&m->loop, &all[i]->src);
		close(all[i]->src.fd);
		all[i]->src.fd = -1;
		all[i]->pid = 0;
	}
	free(vm->helpers);
	vm->helpers = NULL;
	vm->helper_count = 0;
	mlaunch_close(vm->fds, RUN_FDS);
	netlinks_vm_gone(m, vm->name);
	statedir_clean_run(vm->run_dir);
	json_decref(vm->config);
	vm->config = NULL;
	json_decref(vm->links);
	vm->links = NULL;
	json_decref(vm->notes);
	vm->notes = NULL;
	vm->uid = 0;
}

int mlaunch(struct monitor *m, struct mvm *vm, char *err, size_t len)
{
	const struct vm_config *cfg = vm->files.cfg;
	int listen[3] = { -1, -1, -1 }, qemu_log = -1, helper_log = -1;
	struct vmm_nic *nics;
	int *fs_fds;
	size_t i;

	nics = calloc(cfg->provider_count + 1, sizeof *nics);
	fs_fds = calloc(cfg->share_count + 1, sizeof *fs_fds);
	if (!nics || !fs_fds)
		goto fail_errno;
	for (i = 0; i < cfg->provider_count; i++)
		nics[i].tap_fd = -1;
	for (i = 0; i < cfg->share_count; i++)
		fs_fds[i] = -1;
	/* The engine's directory for its logs. */
	free(statedir_vm(m->state_dir, vm->name, m->engine_uid));
	vm->accel = m->accel;
	vm->hotplug_ports = netlinks_ports(m, vm->name);
	vm->config = vmjson_config(cfg);
	vm->notes = json_array();
	if (cfg->wayland)
		json_array_append_new(vm->notes, json_string(
			"wayland requested, but this QEMU cannot provide virtio-gpu cross-domain; started without it"));
	if (netlinks_client(m, vm, nics, &vm->links, err, len) < 0)
		goto fail;
	for (i = RUN_QMP; i <= RUN_CONSOLE; i++)
		if (mlaunch_listen(vm->run_dir, mlaunch_sockets[i], &listen[i],
				   &vm->fds[i]) < 0)
			goto fail_errno;
	qemu_log = mlaunch_log_pipe(&vm->fds[RUN_QEMU_LOG]);
	helper_log = mlaunch_log_pipe(&vm->fds[RUN_HELPER_LOG]);
	if (qemu_log < 0 || helper_log < 0)
		goto fail_errno;
	if (mlaunch_fsds(m, vm, fs_fds, helper_log, err, len) < 0)
		goto fail;
	if (mlaunch_qemu(m, vm, listen, fs_fds, nics, qemu_log, err, len) < 0)
		goto fail;
	vm->launched = true;
	/* Without it a restarted monitor could not find this VM's
	 * processes, so it may not run. */
	if (record_write(m, vm) < 0) {
		snprintf(err, len, "start failed: %s/record: %s", vm->run_dir,
			 strerror(errno));
		vm->launched = false;
		goto fail;
	}
	mlaunch_close(listen, 3);
	mlaunch_close(fs_fds, cfg->share_count);
	for (i = 0; i < cfg->provider_count; i++)
		if (nics[i].tap_fd >= 0)
			close(nics[i].tap_fd);
	close(qemu_log);
	close(helper_log);
	free(nics);
	free(fs_fds);
	vm_files_release(&vm->files);
	vm->held = false;
	return 0;

fail_errno:
	snprintf(err, len, "start failed: %s", strerror(errno));
fail:
	mlaunch_close(listen, 3);
	if (fs_fds)
		mlaunch_close(fs_fds, cfg->share_count);
	for (i = 0; nics && i < cfg->provider_count; i++)
		if (nics[i].tap_fd >= 0)
			close(nics[i].tap_fd);
	if (qemu_log >= 0)
		close(qemu_log);
	if (helper_log >= 0)
		close(helper_log);
	free(nics);
	free(fs_fds);
	mlaunch_undo(m, vm);
	vm_files_release(&vm->files);
	vm->held = false;
	return -1;
}
