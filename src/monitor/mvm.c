/* The monitor's VMs: load, launch, watch, kill, hand over.  See mvm.h. */
#include "monitor/mvm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/trace.h"
#include "config/vmjson.h"
#include "monitor/channel.h"
#include "monitor/netlinks.h"
#include "monitor/record.h"
#include "monitor/statedir.h"
#include "monitor/vmuid.h"
#include "monitor/wayland.h"

void mvm_run_clear(struct vm_run *run)
{
	*run = (struct vm_run){ .qmp_fd = -1, .serial_fd = -1,
				.console_fd = -1, .qemu.pidfd = -1,
				.passt.pidfd = -1, .vsock.pidfd = -1,
				.host_end.pidfd = -1 };
}

/* Shutting down: quit once the engine said bye and nothing runs. */
void monitor_quit_if_done(struct monitor *m)
{
	if (!m->shutting_down)
		return;
	for (struct mvm *vm = m->vms; vm; vm = vm->next)
		if (vm->launched)
			return;
	if (m->engine_pid > 0 && !m->engine_bye)
		return;
	loop_quit(&m->loop);
}

struct mvm *mvm_find(struct monitor *m, const char *name, bool create)
{
	struct mvm *vm;

	for (vm = m->vms; vm; vm = vm->next)
		if (!strcmp(vm->name, name))
			return vm;
	if (!create || !vmconfig_name_valid(name))
		return NULL;
	vm = calloc(1, sizeof *vm);
	if (!vm)
		return NULL;
	vm->run_dir = statedir_run(m->state_dir, name);
	if (!vm->run_dir) {
		free(vm);
		return NULL;
	}
	vm->m = m;
	snprintf(vm->name, sizeof vm->name, "%s", name);
	vm_files_init(&vm->files);
	vm->qemu.src.fd = -1;
	vm->wl_log_fd = -1;
	vm->wl_timer.fd = -1;
	mvm_run_clear(&vm->run);
	for (int i = 0; i < RUN_FDS; i++)
		vm->fds[i] = -1;
	vm->next = m->vms;
	m->vms = vm;
	return vm;
}

bool mvm_dir_exists(struct monitor *m, const char *name)
{
	struct stat st;
	char *dir;
	bool found;

	if (asprintf(&dir, "%s/%s", m->roots.config_root, name) < 0)
		return true; /* the load then reports the error */
	found = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
	free(dir);
	return found;
}

/* --- load: a gathering in a child, as the directory's owner --- */

/* One gathering in progress: the child's socket and its deadline. */
struct mload {
	struct mload *next;
	struct monitor *m;
	uint32_t seq;
	char name[VMCONFIG_NAME_MAX + 1];
	bool keep;
	struct gather_child child;
	struct loop_source sock;
	struct loop_source deadline;
	struct diags diags;
};

static void mvm_load_free(struct mload *l)
{
	struct mload **pp;

	for (pp = &l->m->loads; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	if (l->sock.fd >= 0) {
		loop_del(&l->m->loop, &l->sock);
		close(l->sock.fd);
	}
	if (l->deadline.fd >= 0) {
		loop_del(&l->m->loop, &l->deadline);
		close(l->deadline.fd);
	}
	diags_free(&l->diags);
	free(l);
}

static void mvm_load_invalid(struct monitor *m, uint32_t seq, const char *name,
			     const struct diags *diags)
{
	engine_send(m, PS_LOADED, seq, json_pack("{s:s,s:b,s:s,s:o}",
		"name", name, "ok", 0, "error", "invalid configuration",
		"diagnostics", vmjson_diags(diags)), NULL, 0);
}

/* The gathering is over: answer, and hold the files for a launch. */
static void mvm_load_done(struct mload *l, int status, struct vm_files *files)
{
	struct monitor *m = l->m;
	struct mvm *vm;
	json_t *o;

	if (status != GATHER_VALID) {
		mvm_load_invalid(m, l->seq, l->name, &l->diags);
		return;
	}
	o = json_pack("{s:s,s:b,s:o,s:o}", "name", l->name, "ok", 1,
		      "config", vmjson_config(files->cfg),
		      "links", netlinks_ids(m, files->cfg));
	vm = l->keep ? mvm_find(m, l->name, true) : NULL;
	if (vm && !vm->launched) {
		/* A newer gathering replaces an older one. */
		vm_files_release(&vm->files);
		vm->files = *files;
		vm->held = true;
	} else {
		vm_files_release(files);
	}
	engine_send(m, PS_LOADED, l->seq, o, NULL, 0);
}

static void mvm_load_ready(struct loop_source *src, uint32_t events)
{
	struct mload *l = src->arg;
	struct vm_files files;
	int r;

	vm_files_init(&files);
	r = gather_collect(&l->child, &files, &l->diags);
	if (r == GATHER_PENDING)
		return;
	mvm_load_done(l, r < 0 ? GATHER_INVALID : r, &files);
	mvm_load_free(l);
}

static void mvm_load_deadline(struct loop_source *src, uint32_t events)
{
	struct mload *l = src->arg;

	gather_timed_out(&l->child, &l->diags);
	mvm_load_invalid(l->m, l->seq, l->name, &l->diags);
	mvm_load_free(l);
}

void mvm_load(struct monitor *m, uint32_t seq, const char *name, bool keep)
{
	struct mload *l;
	char *err = NULL;
	int r;

	if (!mvm_dir_exists(m, name)) {
		if (asprintf(&err, "unknown VM %s: %s/%s: no such VM directory",
			     name, m->roots.config_root, name) < 0)
			err = NULL;
		engine_send(m, PS_LOADED, seq, json_pack("{s:s,s:b,s:s,s:[]}",
			"name", name, "ok", 0, "error",
			err ? err : "no such VM directory", "diagnostics"),
			NULL, 0);
		free(err);
		return;
	}
	l = calloc(1, sizeof *l);
	if (!l) {
		engine_send(m, PS_LOADED, seq, json_pack("{s:s,s:b,s:s,s:[]}",
			"name", name, "ok", 0, "error", strerror(errno),
			"diagnostics"), NULL, 0);
		return;
	}
	l->m = m;
	l->seq = seq;
	l->keep = keep;
	snprintf(l->name, sizeof l->name, "%s", name);
	l->sock.fd = l->deadline.fd = -1;
	diags_init(&l->diags);
	l->next = m->loads;
	m->loads = l;
	r = gather_spawn(&m->gather, name, &l->child, &l->diags);
	if (r != GATHER_PENDING) {
		if (r < 0)
			diags_add(&l->diags, DIAG_ERROR, name, ".",
				  "gathering it: %s", strerror(errno));
		mvm_load_invalid(m, seq, name, &l->diags);
		mvm_load_free(l);
		return;
	}
	/* The loop watches a copy of the socket, closed only after its
	 * epoll entry is gone: gather_collect closes the child's own once
	 * it is done, and an entry whose fd is closed stays in the epoll set
	 * while a forked child still holds the socket (a launch's fork),
	 * firing for a freed mload. */
	l->sock = (struct loop_source){
		fcntl(l->child.sock, F_DUPFD_CLOEXEC, 3), mvm_load_ready, l };
	l->deadline = (struct loop_source){ loop_timer_new(), mvm_load_deadline, l };
	if (l->sock.fd < 0 || loop_add(&m->loop, &l->sock, EPOLLIN) < 0 ||
	    l->deadline.fd < 0 ||
	    loop_add(&m->loop, &l->deadline, EPOLLIN) < 0 ||
	    loop_timer_arm(l->deadline.fd, GATHER_TIMEOUT_MS) < 0) {
		gather_cancel(&l->child);
		diags_add(&l->diags, DIAG_ERROR, name, ".", "gathering it: %s",
			  strerror(errno));
		mvm_load_invalid(m, seq, name, &l->diags);
		mvm_load_free(l);
	}
}

/* Exit: stop every gathering. */
static void mvm_loads_free(struct monitor *m)
{
	while (m->loads) {
		struct mload *l = m->loads;

		gather_cancel(&l->child);
		mvm_load_free(l);
	}
}

void mvm_release(struct monitor *m, const char *name)
{
	struct mvm *vm = mvm_find(m, name, false);

	if (!vm || !vm->held)
		return;
	vm_files_release(&vm->files);
	vm->held = false;
}

/* --- the Wayland helpers of a run (monitor/wayland.h) --- */

static void mvm_wayland_again(struct loop_source *src, uint32_t events);

/* A line for the daemon's log and the VM's helper log. */
static void mvm_wayland_log(struct mvm *vm, const char *msg)
{
	daemon_log("vm %s: %s", vm->name, msg);
	/* Our own non-blocking handle: a full pipe loses the line. */
	if (vm->wl_log_fd >= 0)
		dprintf(vm->wl_log_fd, "vmhostd: %s\n", msg);
}

static void mvm_wayland_timer_close(struct mvm *vm)
{
	if (vm->wl_timer.fd < 0)
		return;
	loop_del(&vm->m->loop, &vm->wl_timer);
	close(vm->wl_timer.fd);
	vm->wl_timer.fd = -1;
}

/* A new host end after the back-off (what: why there is none now). */
static void mvm_wayland_later(struct mvm *vm, const char *what)
{
	unsigned int ms = mwl_backoff(vm);
	char msg[1024];

	if (vm->wl_timer.fd < 0) {
		vm->wl_timer = (struct loop_source){ loop_timer_new(),
						     mvm_wayland_again, vm };
		if (vm->wl_timer.fd < 0 ||
		    loop_add(&vm->m->loop, &vm->wl_timer, EPOLLIN) < 0) {
			if (vm->wl_timer.fd >= 0)
				close(vm->wl_timer.fd);
			vm->wl_timer.fd = -1;
			snprintf(msg, sizeof msg, "%s; no new Wayland host end: %s",
				 what, strerror(errno));
			mvm_wayland_log(vm, msg);
			return;
		}
	}
	snprintf(msg, sizeof msg, "%s; a new Wayland host end in %u ms", what, ms);
	mvm_wayland_log(vm, msg);
	loop_timer_arm(vm->wl_timer.fd, ms);
}

/* A Wayland helper of a running VM ended. */
static void mvm_wayland_ended(struct mvm *vm, const char *reason)
{
	char msg[512];

	if (!vm->run.vsock.pid) {
		/* Nothing carries the guest's connections any more. */
		snprintf(msg, sizeof msg,
			 "%s: the VM has no Wayland until it is started again",
			 reason);
		mvm_wayland_log(vm, msg);
		mvm_wayland_timer_close(vm);
		return;
	}
	mvm_wayland_later(vm, reason);
}

static void mvm_wayland_again(struct loop_source *src, uint32_t events)
{
	struct mvm *vm = src->arg;
	struct launch_wayland wl;
	struct mchild *ch = NULL;
	char why[768], msg[1024];
	int r;

	loop_timer_ack(src->fd);
	if (!vm->launched || vm->killing || !vm->wayland ||
	    !vm->run.vsock.pid || vm->run.host_end.pid)
		return;
	if (mwl_reopen(vm->m, vm, &wl, why, sizeof why) < 0) {
		mvm_wayland_later(vm, why);
		return;
	}
	r = launch_host_end(&vm->run, vm->uid ? &vm->drop : NULL, &wl, why,
			    sizeof why);
	close(wl.compositor_fd);
	if (r < 0) {
		mvm_wayland_later(vm, why);
		return;
	}
	for (size_t i = 0; i < vm->helper_count && !ch; i++)
		if (vm->helpers[i].proc == &vm->run.host_end)
			ch = &vm->helpers[i];
	/* mvm_watch_run left room for one. */
	if (!ch)
		ch = &vm->helpers[vm->helper_count++];
	mvm_watch(vm, ch, &vm->run.host_end, true);
	vm->wl_started = time(NULL);
	record_write(vm->m, vm);
	snprintf(msg, sizeof msg, "a new Wayland host end runs: pid %d",
		 (int)vm->run.host_end.pid);
	mvm_wayland_log(vm, msg);
}

void mvm_wayland_resume(struct mvm *vm)
{
	if (vm->wayland && !vm->killing && vm->run.vsock.pid &&
	    !vm->run.host_end.pid)
		mvm_wayland_later(vm, "no Wayland host end runs");
}

/* The run is gone: no more host ends, and its uid's grant goes. */
static void mvm_wayland_end(struct mvm *vm)
{
	mvm_wayland_timer_close(vm);
	if (vm->wl_log_fd >= 0)
		close(vm->wl_log_fd);
	vm->wl_log_fd = -1;
	vm->wl_failures = 0;
	vm->wl_started = 0;
	if (vm->wayland) {
		vm->wayland = false;
		mwl_sync(vm->m);
	}
}

/* --- the run's processes --- */

static void mvm_child_close(struct mchild *ch)
{
	if (ch->src.fd >= 0) {
		loop_del(&ch->vm->m->loop, &ch->src);
		close(ch->src.fd);
	}
	ch->src.fd = -1;
	ch->pid = 0;
	if (ch->proc)
		ch->proc->pid = 0;   /* reaped: launch_release may go on */
}

static bool mvm_all_reaped(const struct mvm *vm)
{
	if (vm->qemu.pid)
		return false;
	for (size_t i = 0; i < vm->helper_count; i++)
		if (vm->helpers[i].pid)
			return false;
	return true;
}

/* The run's traces outside its processes: links, the run directory, the
 * record and what the record held. */
static void mvm_run_forget(struct mvm *vm)
{
	netlinks_vm_gone(vm->m, vm->name);
	statedir_clean_run(vm->run_dir);
	record_remove(vm);
	json_decref(vm->config);
	vm->config = NULL;
	json_decref(vm->links);
	vm->links = NULL;
	json_decref(vm->notes);
	vm->notes = NULL;
}

/* Nothing of the run is left: remove what was its and tell the engine. */
static void mvm_gone(struct mvm *vm)
{
	struct monitor *m = vm->m;

	for (int i = 0; i < RUN_FDS; i++) {
		if (vm->fds[i] >= 0)
			close(vm->fds[i]);
		vm->fds[i] = -1;
	}
	/* Whatever the watched processes left behind in the cgroup (a
	 * virtiofsd's worker) goes now; its sockets too. */
	if (launch_release(&vm->run) < 0)
		daemon_log("vm %s: its cgroup could not be emptied: %s", vm->name,
			   strerror(errno));
	mvm_run_clear(&vm->run);
	free(vm->helpers);
	vm->helpers = NULL;
	vm->helper_count = 0;
	mvm_run_forget(vm);
	vm->launched = false;
	vm->killing = false;
	mvm_wayland_end(vm);
	vm->uid = 0;
	daemon_log("vm %s: every process is gone", vm->name);
	engine_send(m, PS_GONE, 0, json_pack("{s:s}", "name", vm->name), NULL, 0);
	monitor_quit_if_done(m);
}

static void mvm_exit_reason(const struct mchild *ch, const siginfo_t *si,
			    char *buf, size_t len)
{
	if (!ch->ours)
		snprintf(buf, len, "%s exited (adopted: status unknown)", ch->what);
	else if (si->si_code == CLD_EXITED)
		snprintf(buf, len, "%s exited with status %d", ch->what,
			 si->si_status);
	else
		snprintf(buf, len, "%s killed by signal %d", ch->what,
			 si->si_status);
}

static void mvm_child_ready(struct loop_source *src, uint32_t events)
{
	struct mchild *ch = src->arg;
	struct mvm *vm = ch->vm;
	bool main = ch == &vm->qemu, clean;
	char reason[256];
	siginfo_t si;
	int r = 0;

	memset(&si, 0, sizeof si);
	if (ch->ours) {
		r = waitid(P_PID, ch->pid, &si, WEXITED | WNOHANG);
		if (r == 0 && si.si_pid == 0)
			return; /* not exited after all */
		if (r < 0) {
			si.si_code = CLD_KILLED;
			si.si_status = SIGKILL;
		}
	}
	clean = ch->ours && si.si_code == CLD_EXITED && si.si_status == 0;
	mvm_exit_reason(ch, &si, reason, sizeof reason);
	if (ch->proc == &vm->run.host_end || ch->proc == &vm->run.vsock) {
		/* Not the VM's end: it runs on, without Wayland for a while
		 * (a host end) or until it starts again (vmhost-vsock). */
		mvm_child_close(ch);
		if (!vm->killing)
			mvm_wayland_ended(vm, reason);
		else
			daemon_log("vm %s: %s", vm->name, reason);
		if (mvm_all_reaped(vm))
			mvm_gone(vm);
		return;
	}
	daemon_log("vm %s: %s", vm->name, reason);
	mvm_child_close(ch);
	engine_send(vm->m, PS_EXITED, 0, json_pack("{s:s,s:s,s:b,s:b}",
		"name", vm->name, "reason", reason, "main", main, "clean", clean),
		NULL, 0);
	/* Once QEMU is gone its helpers have nothing to serve: the whole
	 * cgroup goes, whatever a process does with SIGTERM. */
	if (main && !vm->killing) {
		vm->killing = true;
		launch_kill(&vm->run);
	}
	if (mvm_all_reaped(vm))
		mvm_gone(vm);
}

void mvm_watch(struct mvm *vm, struct mchild *ch, struct launch_proc *proc,
	       bool ours)
{
	int fd = fcntl(proc->pidfd, F_DUPFD_CLOEXEC, 3);

	ch->vm = vm;
	ch->proc = proc;
	ch->pid = proc->pid;
	ch->ours = ours;
	snprintf(ch->what, sizeof ch->what, "%s", proc->label);
	ch->src = (struct loop_source){ fd, mvm_child_ready, ch };
	if (fd < 0 || loop_add(&vm->m->loop, &ch->src, EPOLLIN) < 0) {
		/* Unwatchable: it may not run. */
		daemon_log("vm %s: watching %s: %s; killing it", vm->name,
			   proc->label, strerror(errno));
		syscall(SYS_pidfd_send_signal, proc->pidfd, SIGKILL, NULL, 0);
		if (ours)
			waitpid(proc->pid, NULL, 0);
		if (fd >= 0)
			close(fd);
		ch->src.fd = -1;
		ch->pid = proc->pid = 0;
	}
}

/* A watcher for every process of the run: QEMU, the virtiofsds, passt,
 * the Wayland helpers (room for a host end even if none runs now). */
int mvm_watch_run(struct mvm *vm, bool ours)
{
	struct vm_run *run = &vm->run;
	struct launch_proc *p;

	vm->helpers = calloc(run->fsd_count + 4, sizeof *vm->helpers);
	if (!vm->helpers)
		return -1;
	vm->helper_count = 0;
	for (size_t i = 1; (p = launch_proc_at(run, i)); i++)
		if (p->pid)
			mvm_watch(vm, &vm->helpers[vm->helper_count++], p, ours);
	vm->qemu.src.fd = -1;
	if (run->qemu.pid)
		mvm_watch(vm, &vm->qemu, &run->qemu, ours);
	return 0;
}

/* --- launch --- */

/* A pipe for children's stdout and stderr: the read end (non-blocking)
 * for the engine, which keeps it in a capped log; the write end returned. */
static int mvm_log_pipe(int *read_end)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	*read_end = p[0];
	return p[1];
}

static void mvm_close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* Everything a gathered VM's run needs, made and started, or on failure
 * nothing of it left (vmd's config_setvm and vm_start: one path out). */
static int mvm_run_start(struct monitor *m, struct mvm *vm,
			 struct start_trace *trace, char *err, size_t len)
{
	const struct vm_config *cfg = vm->files.cfg;
	struct launch_req q = {
		.files = &vm->files,
		.qemu = m->qemu,
		.accel = m->accel,
		.tsc_khz = m->tsc_khz,
		.trace = trace,
		.run_dir = vm->run_dir,
		.cgroups = m->cgroups,
		.qemu_log_fd = -1,
		.fsd_log_fd = -1,
	};
	struct launch_wayland wl = { .compositor_fd = -1 };
	struct vmm_nic *nics;
	struct privdrop drop;
	char fdpath[64];
	bool dropping;
	size_t i;

	nics = calloc(cfg->provider_count + 1, sizeof *nics);
	if (!nics)
		goto fail_errno;
	for (i = 0; i < cfg->provider_count; i++)
		nics[i].tap_fd = -1;
	/* The engine's directory for its logs. */
	free(statedir_vm(m->state_dir, vm->name, m->engine_uid));
	vm->accel = m->accel;
	vm->hotplug_ports = netlinks_ports(m, vm->name);
	vm->config = vmjson_config(cfg);
	vm->notes = json_array();
	if (vmuid_pick(m, vm, &drop, &dropping) < 0) {
		snprintf(err, len, "start failed: no uid for QEMU: %s",
			 strerror(errno));
		goto fail;
	}
	q.drop = dropping ? &drop : NULL;
	if (dropping)
		vm->drop = drop;
	if (netlinks_client(m, vm, nics, &vm->links, err, len) < 0)
		goto fail;
	q.nics = nics;
	q.nic_count = cfg->provider_count;
	q.hotplug_ports = vm->hotplug_ports;
	q.qemu_log_fd = mvm_log_pipe(&vm->fds[RUN_QEMU_LOG]);
	q.fsd_log_fd = mvm_log_pipe(&vm->fds[RUN_HELPER_LOG]);
	if (q.qemu_log_fd < 0 || q.fsd_log_fd < 0)
		goto fail_errno;
	if (mwl_prepare(m, vm, &wl)) {
		/* The helpers write into the helpers' log; so does the
		 * monitor about them, through a handle of its own that
		 * never blocks. */
		snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", q.fsd_log_fd);
		vm->wl_log_fd = open(fdpath, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (vm->wl_log_fd < 0)
			goto fail_errno;
		wl.log_fd = q.fsd_log_fd;
		q.wayland = &wl;
	}
	if (launch_start(&q, &vm->run, err, len) < 0)
		goto fail;
	if (q.wayland) {
		close(wl.compositor_fd);
		wl.compositor_fd = -1;
		vm->wl_started = time(NULL);
	}
	vm->launched = true;
	/* Ours now: the engine gets them (and a new engine, copies). */
	vm->fds[RUN_QMP] = vm->run.qmp_fd;
	vm->fds[RUN_SERIAL] = vm->run.serial_fd;
	vm->fds[RUN_CONSOLE] = vm->run.console_fd;
	vm->run.qmp_fd = vm->run.serial_fd = vm->run.console_fd = -1;
	if (mvm_watch_run(vm, true) < 0)
		goto fail_run;
	/* Without it a restarted monitor could not find this VM's
	 * processes, so it may not run. */
	if (record_write(m, vm) < 0) {
		snprintf(err, len, "start failed: %s/record: %s", vm->run_dir,
			 strerror(errno));
		goto fail_run;
	}
	close(q.qemu_log_fd);
	close(q.fsd_log_fd);
	/* QEMU holds the taps now: one that dies takes them along. */
	for (i = 0; i < cfg->provider_count; i++)
		close(nics[i].tap_fd);
	free(nics);
	return 0;

fail_run:
	/* Every process killed and reaped (pids 0), then released. */
	launch_kill(&vm->run);
	mvm_child_close(&vm->qemu);
	for (i = 0; i < vm->helper_count; i++)
		mvm_child_close(&vm->helpers[i]);
	launch_kill_wait(&vm->run);
	launch_release(&vm->run);
	mvm_run_clear(&vm->run);
	free(vm->helpers);
	vm->helpers = NULL;
	vm->helper_count = 0;
	vm->launched = false;
	goto fail;
fail_errno:
	snprintf(err, len, "start failed: %s", strerror(errno));
fail:
	if (wl.compositor_fd >= 0)
		close(wl.compositor_fd);
	mvm_wayland_end(vm);
	if (q.qemu_log_fd >= 0)
		close(q.qemu_log_fd);
	if (q.fsd_log_fd >= 0)
		close(q.fsd_log_fd);
	for (i = 0; nics && i < cfg->provider_count; i++)
		if (nics[i].tap_fd >= 0)
			close(nics[i].tap_fd);
	free(nics);
	mvm_close_fds(vm->fds, RUN_FDS);
	mvm_run_forget(vm);
	vm->uid = 0;
	return -1;
}

void mvm_launch(struct monitor *m, uint32_t seq, const char *name)
{
	struct mvm *vm = mvm_find(m, name, false);
	struct start_trace trace;
	char err[512];
	json_t *o;
	int r;

	if (!vm || !vm->held || vm->launched) {
		snprintf(err, sizeof err, "start failed: %s: %s", name,
			 vm && vm->launched ? "already launched" :
			 "nothing gathered to launch");
		engine_send(m, PS_LAUNCHED, seq, json_pack("{s:s,s:b,s:s}",
			"name", name, "ok", 0, "error", err), NULL, 0);
		return;
	}
	/* The launch's marks of the start trace (common/trace.h), for the
	 * engine's: this trace begins at the request to launch. */
	start_trace_begin(&trace);
	r = mvm_run_start(m, vm, &trace, err, sizeof err);
	/* The run holds what it needs of the gathered files. */
	vm_files_release(&vm->files);
	vm->held = false;
	if (r < 0) {
		daemon_log("vm %s: %s", name, err);
		engine_send(m, PS_LAUNCHED, seq, json_pack("{s:s,s:b,s:s}",
			"name", name, "ok", 0, "error", err), NULL, 0);
		return;
	}
	o = record_run_json(vm);
	json_object_set_new(o, "ok", json_true());
	json_object_set_new(o, "start_trace", start_trace_marks(&trace));
	engine_send(m, PS_LAUNCHED, seq, o, vm->fds, RUN_FDS);
}

/* --- kill --- */

void mvm_kill(struct monitor *m, const char *name)
{
	struct mvm *vm = mvm_find(m, name, false);

	if (!vm || !vm->launched)
		return;
	daemon_log("vm %s: killing every process%s", name,
		   vm->killing ? " (again)" : "");
	vm->killing = true;
	launch_kill(&vm->run);
}

void mvm_note(struct monitor *m, const struct ps_note *note)
{
	struct mvm *vm = mvm_find(m, note->name, false);

	if (!vm || !vm->launched)
		return;
	vm->note = *note;
	record_write(m, vm);
}

/* --- a new engine --- */

void mvm_adopt_all(struct monitor *m)
{
	int fds[RUN_FDS];
	json_t *o;

	for (struct mvm *vm = m->vms; vm; vm = vm->next) {
		if (!vm->launched)
			continue;
		o = record_run_json(vm);
		json_object_set_new(o, "state", json_string(
			vm->killing ? "down" : "running"));
		json_object_set_new(o, "since", json_integer(vm->note.since));
		json_object_set_new(o, "reason", json_string(vm->note.reason));
		json_object_set_new(o, "provider_links",
				    netlinks_provider_json(m, vm->name));
		/* The engine gets copies: ours stay for the next one. */
		for (int i = 0; i < RUN_FDS; i++)
			fds[i] = vm->fds[i] >= 0 ?
				 fcntl(vm->fds[i], F_DUPFD_CLOEXEC, 3) : -1;
		engine_send(m, PS_ADOPT, 0, o, fds, RUN_FDS);
		for (int i = 0; i < RUN_FDS; i++)
			if (fds[i] >= 0)
				close(fds[i]);
	}
}

void mvm_free_all(struct monitor *m, bool kill)
{
	struct mvm *vm;

	mvm_loads_free(m);
	while ((vm = m->vms)) {
		m->vms = vm->next;
		if (kill)
			mvm_wayland_end(vm);
		else
			mvm_wayland_timer_close(vm);
		if (vm->wl_log_fd >= 0)
			close(vm->wl_log_fd);
		if (vm->launched && kill) {
			mvm_child_close(&vm->qemu);
			for (size_t i = 0; i < vm->helper_count; i++)
				mvm_child_close(&vm->helpers[i]);
			launch_kill_wait(&vm->run);
			launch_release(&vm->run);
			statedir_clean_run(vm->run_dir);
			record_remove(vm);
		} else if (vm->launched) {
			/* Left running (re-exec): only our watchers go. */
			if (vm->qemu.src.fd >= 0)
				close(vm->qemu.src.fd);
			for (size_t i = 0; i < vm->helper_count; i++)
				if (vm->helpers[i].src.fd >= 0)
					close(vm->helpers[i].src.fd);
		}
		for (int i = 0; i < RUN_FDS; i++)
			if (vm->fds[i] >= 0)
				close(vm->fds[i]);
		vm_files_release(&vm->files);
		free(vm->helpers);
		json_decref(vm->config);
		json_decref(vm->links);
		json_decref(vm->notes);
		free(vm->run_dir);
		free(vm);
	}
}
