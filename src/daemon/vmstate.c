#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sealcopy.h"
#include "common/spawn.h"
#include "daemon/links.h"
#include "daemon/recover.h"
#include "daemon/statedir.h"
#include "daemon/vmstate.h"
#include "daemon/vmuid.h"
#include "vmm/virtiofsd.h"

static const char *const state_names[] = {
	[VM_STOPPED] = "stopped",
	[VM_STARTING] = "starting",
	[VM_RUNNING] = "running",
	[VM_STOPPING] = "stopping",
	[VM_FAILED] = "failed",
};

const char *vmstate_name(enum vm_state s)
{
	return state_names[s];
}

bool vmstate_active(const struct vm *vm)
{
	return vm->state == VM_STARTING || vm->state == VM_RUNNING ||
	       vm->state == VM_STOPPING || vm->tearing_down;
}

bool vmstate_any_active(struct daemon *d)
{
	struct vm *vm;

	for (vm = d->vms; vm; vm = vm->next)
		if (vmstate_active(vm))
			return true;
	return false;
}

bool vmstate_dir_exists(const struct daemon *d, const char *name)
{
	struct stat st;
	char *dir;
	bool found;

	if (asprintf(&dir, "%s/%s", d->roots.config_root, name) < 0)
		return true; /* the loader then reports the error */
	found = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
	free(dir);
	return found;
}

void vmstate_unknown(const struct daemon *d, struct client *c,
		     const char *name)
{
	control_error(c, "unknown VM %s: %s/%s: no such VM directory", name,
		      d->roots.config_root, name);
}

struct vm *vmstate_find(struct daemon *d, const char *name, bool create)
{
	struct vm *vm;

	for (vm = d->vms; vm; vm = vm->next)
		if (!strcmp(vm->name, name))
			return vm;
	if (!create || strlen(name) > VMCONFIG_NAME_MAX)
		return NULL;
	vm = calloc(1, sizeof *vm);
	if (!vm)
		return NULL;
	vm->d = d;
	strcpy(vm->name, name);
	vm->state = VM_STOPPED;
	vm->qmp.fd = vm->timer.fd = vm->qemu.src.fd = -1;
	vm->serial.src.fd = -1;
	vm->next = d->vms;
	d->vms = vm;
	return vm;
}

static void vm_set_state(struct vm *vm, enum vm_state s, const char *reason)
{
	vm->state = s;
	vm->since = time(NULL);
	snprintf(vm->reason, sizeof vm->reason, "%s", reason ? reason : "");
	daemon_log("vm %s: %s%s%s", vm->name, vmstate_name(s),
		   vm->reason[0] ? ": " : "", vm->reason);
}

/* --- clients waiting for a transition --- */

static void vm_waiter_gone(void *owner, struct client *c)
{
	struct vm *vm = owner;
	size_t i;

	for (i = 0; i < vm->waiter_count; i++) {
		if (vm->waiters[i].c != c)
			continue;
		vm->waiters[i] = vm->waiters[--vm->waiter_count];
		return;
	}
}

static void vm_wait(struct vm *vm, struct client *c, enum vm_wait kind)
{
	if (!c)
		return;
	if (vm->waiter_count == VMSTATE_WAITERS_MAX) {
		control_error(c, "%s: too many clients waiting", vm->name);
		return;
	}
	vm->waiters[vm->waiter_count].c = c;
	vm->waiters[vm->waiter_count].kind = kind;
	vm->waiter_count++;
	control_own(c, vm, vm_waiter_gone);
}

/* Answer every waiter of kind: ok with the VM's record, or msg. */
static void vm_answer(struct vm *vm, enum vm_wait kind, bool ok,
		      const char *msg)
{
	struct client *c;
	size_t i = vm->waiter_count;

	while (i--) {
		if (vm->waiters[i].kind != kind)
			continue;
		c = vm->waiters[i].c;
		vm->waiters[i] = vm->waiters[--vm->waiter_count];
		control_disown(c);
		if (ok)
			control_reply(c, json_pack("{s:b,s:o}", "ok", 1, "vm",
						   vmstate_json(vm, false)));
		else
			control_error(c, "%s", msg);
	}
}

/* --- teardown: QEMU first, then its virtiofsds, then settle --- */

static void vm_child_close(struct vm *vm, struct vm_child *ch)
{
	if (ch->src.fd >= 0) {
		loop_del(&vm->d->loop, &ch->src);
		close(ch->src.fd);
	}
	ch->src.fd = -1;
	ch->pid = 0;
}

/* A command sent with vmstate_qmp_call, awaiting its answer. */
struct vm_qmp_call {
	struct vm_qmp_call *next;
	uint64_t id;
	vmstate_qmp_fn *fn;
	void *arg;
};

static void vm_qmp_close(struct vm *vm)
{
	struct vm_qmp_call *call;

	while ((call = vm->calls)) {
		vm->calls = call->next;
		free(call);
	}
	if (vm->qmp.fd >= 0) {
		loop_del(&vm->d->loop, &vm->qmp);
		close(vm->qmp.fd);
	}
	vm->qmp.fd = -1;
	qmp_codec_free(vm->codec);
	vm->codec = NULL;
}

static void vm_timer_close(struct vm *vm)
{
	if (vm->timer.fd >= 0) {
		loop_del(&vm->d->loop, &vm->timer);
		close(vm->timer.fd);
	}
	vm->timer.fd = -1;
}

static void vm_clients_check(struct daemon *d);

static void vm_log_close(struct serial *log, bool *open)
{
	if (*open)
		serial_close(log);
	*open = false;
}

static void vm_finish(struct vm *vm)
{
	char *msg = NULL;
	size_t i;

	vm_qmp_close(vm);
	vm_timer_close(vm);
	links_vm_down(vm);
	vm->awaiting_providers = false;
	if (vm->serial_open)
		serial_close(&vm->serial);
	vm->serial_open = false;
	vm_log_close(&vm->qemu_log, &vm->qemu_log_open);
	vm_log_close(&vm->fsd_log, &vm->fsd_log_open);
	if (vm->console_open)
		console_close(&vm->console);
	vm->console_open = false;
	for (i = 0; i < vm->nic_count; i++)
		if (vm->nics[i].tap_fd >= 0)
			close(vm->nics[i].tap_fd);
	free(vm->nics);
	vm->nics = NULL;
	vm->nic_count = 0;
	free(vm->fsd);
	vm->fsd = NULL;
	vm->fsd_count = 0;
	vmconfig_free(vm->cfg);
	vm->cfg = NULL;
	vm->wayland_dropped = false;
	recover_forget(vm);
	vm->tearing_down = false;
	vm_set_state(vm, vm->end_state, vm->end_reason);
	if (asprintf(&msg, "%s: %s", vm->name, vm->end_reason) < 0)
		msg = NULL;
	vm_answer(vm, VM_WAIT_START, false, msg ? msg : vm->end_reason);
	vm_answer(vm, VM_WAIT_STOP, true, NULL);
	free(msg);
	vm_clients_check(vm->d);
	daemon_vm_settled(vm->d);
}

/* Drive the teardown one step; called again as each child is reaped. */
static void vm_teardown_step(struct vm *vm)
{
	bool waiting = false;
	size_t i;

	vm_qmp_close(vm);
	vm_timer_close(vm);
	if (vm->qemu.pid) {
		kill(vm->qemu.pid, SIGKILL);
		return;
	}
	for (i = 0; i < vm->fsd_count; i++) {
		if (!vm->fsd[i].pid)
			continue;
		/* Usually gone already: it exits when QEMU hangs up. */
		kill(vm->fsd[i].pid, SIGTERM);
		waiting = true;
	}
	if (!waiting)
		vm_finish(vm);
}

/* End the VM: kill what runs, then settle as end with reason.  The first
 * reason given wins. */
static void vm_teardown(struct vm *vm, enum vm_state end, const char *reason)
{
	if (!vm->tearing_down) {
		vm->tearing_down = true;
		vm->end_state = end;
		snprintf(vm->end_reason, sizeof vm->end_reason, "%s", reason);
	}
	vm_teardown_step(vm);
}

/* The last line QEMU wrote to qemu.log, for start errors. */
static void vm_qemu_last_words(struct vm *vm, char *out, size_t len)
{
	char buf[1024], *p, *end;
	char *path;
	ssize_t n;
	off_t size;
	int fd;

	out[0] = '\0';
	if (asprintf(&path, "%s/qemu.log", vm->dir) < 0)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof buf - 1)
		lseek(fd, size - (off_t)sizeof buf + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	end = buf + n;
	while (end > buf && (end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	p = strrchr(buf, '\n');
	p = p ? p + 1 : buf;
	snprintf(out, len, ": %.200s", p);
	for (p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
}

static void vm_qemu_exited(struct vm *vm, const siginfo_t *si)
{
	char how[64], last[300], reason[512];
	bool clean = si->si_code == CLD_EXITED && si->si_status == 0;

	if (si->si_code == CLD_EXITED)
		snprintf(how, sizeof how, "QEMU exited with status %d",
			 si->si_status);
	else
		snprintf(how, sizeof how, "QEMU killed by signal %d",
			 si->si_status);
	daemon_log("vm %s: %s", vm->name, how);
	/* All it wrote is in the pipe now: into qemu.log, for its last words. */
	vm_log_close(&vm->qemu_log, &vm->qemu_log_open);
	if (vm->tearing_down) {
		vm_teardown_step(vm);
		return;
	}
	switch (vm->state) {
	case VM_STARTING:
		vm_qemu_last_words(vm, last, sizeof last);
		snprintf(reason, sizeof reason, "start failed: %s%s", how, last);
		vm_teardown(vm, VM_FAILED, reason);
		break;
	case VM_STOPPING:
		vm_teardown(vm, VM_STOPPED, clean ? "powered off by vm stop" : how);
		break;
	default:
		if (clean)
			vm_teardown(vm, VM_STOPPED, "guest powered off");
		else
			vm_teardown(vm, VM_FAILED, how);
		break;
	}
}

static void vm_fsd_exited(struct vm *vm, struct vm_child *ch,
			  const siginfo_t *si)
{
	char reason[512];

	if (vm->tearing_down) {
		vm_teardown_step(vm);
		return;
	}
	/* A clean exit means QEMU hung up: it is on its way out, and its
	 * pidfd tells why. */
	if (vm->state == VM_STOPPING ||
	    (si->si_code == CLD_EXITED && si->si_status == 0)) {
		daemon_log("vm %s: %s exited", vm->name, ch->label);
		return;
	}
	/* The guest would see its share hang: fail the VM rather than run
	 * it half-working (documented in vmhostd(8)). */
	snprintf(reason, sizeof reason, "%s %s %d", ch->label,
		 si->si_code == CLD_EXITED ? "exited with status" :
		 "killed by signal", si->si_status);
	vm_teardown(vm, VM_FAILED, reason);
}

static void vm_child_ready(struct loop_source *src, uint32_t events)
{
	struct vm_child *ch = src->arg;
	struct vm *vm = ch->vm;
	siginfo_t si;
	int r;

	memset(&si, 0, sizeof si);
	r = waitid(P_PID, ch->pid, &si, WEXITED | WNOHANG);
	if (r == 0 && si.si_pid == 0)
		return; /* not exited after all */
	if (r < 0) {
		/* Reaped elsewhere: report it as killed. */
		si.si_code = CLD_KILLED;
		si.si_status = SIGKILL;
	}
	vm_child_close(vm, ch);
	if (ch == &vm->qemu)
		vm_qemu_exited(vm, &si);
	else
		vm_fsd_exited(vm, ch, &si);
}

static int vm_child_watch(struct vm *vm, struct vm_child *ch, pid_t pid,
			  int pidfd)
{
	ch->vm = vm;
	ch->pid = pid;
	ch->src = (struct loop_source){ pidfd, vm_child_ready, ch };
	return loop_add(&vm->d->loop, &ch->src, EPOLLIN);
}

/* --- QMP --- */

int vmstate_qmp_call(struct vm *vm, const char *execute, json_t *args, int fd,
		     vmstate_qmp_fn *fn, void *arg)
{
	struct vm_qmp_call *call = NULL;
	char *line;
	size_t len;
	int r;

	if (vm->qmp.fd < 0) {
		errno = EPIPE;
		return -1;
	}
	if (fn && !(call = calloc(1, sizeof(*call))))
		return -1;
	line = qmp_command(execute, args, ++vm->qmp_id, &len);
	r = line ? qmp_send(vm->qmp.fd, line, len, fd) : -1;
	free(line);
	if (r < 0) {
		free(call);
		return -1;
	}
	if (call) {
		*call = (struct vm_qmp_call){ vm->calls, vm->qmp_id, fn, arg };
		vm->calls = call;
	}
	return 0;
}

void vmstate_qmp_forget(struct vm *vm, void *arg)
{
	struct vm_qmp_call **pp = &vm->calls, *call;

	while ((call = *pp)) {
		if (call->arg == arg) {
			*pp = call->next;
			free(call);
		} else {
			pp = &call->next;
		}
	}
}

/* Hand an answer to the vmstate_qmp_call that asked; false if none did. */
static bool vm_qmp_answer(struct vm *vm, const struct qmp_msg *msg)
{
	struct vm_qmp_call **pp, *call;

	if (!msg->has_id)
		return false;
	for (pp = &vm->calls; (call = *pp); pp = &call->next) {
		if (call->id != msg->id)
			continue;
		*pp = call->next;
		call->fn(vm, msg, call->arg);
		free(call);
		return true;
	}
	return false;
}

static int vm_qmp_send(struct vm *vm, const char *execute, json_t *args)
{
	return vmstate_qmp_call(vm, execute, args, -1, NULL, NULL);
}

bool vmstate_running(const struct vm *vm)
{
	return vm->state == VM_RUNNING && !vm->tearing_down;
}

static void vm_running(struct vm *vm)
{
	vm_timer_close(vm);
	start_trace_mark(&vm->trace, START_QMP_READY);
	vm_set_state(vm, VM_RUNNING, NULL);
	vm_answer(vm, VM_WAIT_START, true, NULL);
	links_vm_running(vm);
	vm_clients_check(vm->d);
}

/* Starting: greeting -> qmp_capabilities -> query-status [-> cont]. */
enum { QMP_STEP_GREETING, QMP_STEP_CAPS, QMP_STEP_STATUS, QMP_STEP_CONT,
       QMP_STEP_DONE };

static void vm_qmp_fail(struct vm *vm, const char *what, const char *desc)
{
	char reason[512];

	snprintf(reason, sizeof reason, "start failed: QMP %s: %s", what, desc);
	vm_teardown(vm, VM_FAILED, reason);
}

static void vm_qmp_step(struct vm *vm, const struct qmp_msg *msg)
{
	const char *status;
	int r = 0;

	switch (vm->qmp_step) {
	case QMP_STEP_GREETING:
		if (msg->kind != QMP_GREETING)
			return;
		start_trace_mark(&vm->trace, START_QMP_GREETING);
		r = vm_qmp_send(vm, "qmp_capabilities", NULL);
		vm->qmp_step = QMP_STEP_CAPS;
		break;
	case QMP_STEP_CAPS:
	case QMP_STEP_CONT:
		r = vm_qmp_send(vm, "query-status", NULL);
		vm->qmp_step = QMP_STEP_STATUS;
		break;
	case QMP_STEP_STATUS:
		status = json_string_value(json_object_get(msg->value, "status"));
		if (status && !strcmp(status, "running")) {
			vm->qmp_step = QMP_STEP_DONE;
			vm_running(vm);
			return;
		}
		r = vm_qmp_send(vm, "cont", NULL);
		vm->qmp_step = QMP_STEP_CONT;
		break;
	}
	if (r < 0)
		vm_qmp_fail(vm, "send", strerror(errno));
}

static void vm_qmp_msg(struct vm *vm, const struct qmp_msg *msg)
{
	if ((msg->kind == QMP_RETURN || msg->kind == QMP_ERROR) &&
	    vm_qmp_answer(vm, msg))
		return;
	switch (msg->kind) {
	case QMP_EVENT:
		daemon_log("vm %s: QMP event %s", vm->name, msg->event);
		links_event(vm, msg);
		return;
	case QMP_ERROR:
		daemon_log("vm %s: QMP error %s: %s", vm->name,
			   msg->error_class ? msg->error_class : "?",
			   msg->error_desc ? msg->error_desc : "?");
		if (vm->state == VM_STARTING && !vm->tearing_down)
			vm_qmp_fail(vm, msg->error_class ? msg->error_class : "error",
				    msg->error_desc ? msg->error_desc : "?");
		return;
	case QMP_GREETING:
	case QMP_RETURN:
		if (vm->state != VM_STARTING || vm->tearing_down)
			return;
		if (msg->kind == QMP_RETURN &&
		    (!msg->has_id || msg->id != vm->qmp_id))
			return;
		vm_qmp_step(vm, msg);
		return;
	}
}

static void vm_qmp_ready(struct loop_source *src, uint32_t events)
{
	struct vm *vm = src->arg;
	struct qmp_msg msg;
	char chunk[4096];
	ssize_t n;
	int r;

	for (;;) {
		n = recv(src->fd, chunk, sizeof chunk, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			/* QEMU is exiting; the pidfd tells how. */
			loop_del(&vm->d->loop, src);
			close(src->fd);
			src->fd = -1;
			break;
		}
		if (qmp_feed(vm->codec, chunk, (size_t)n) < 0)
			break;
	}
	while (vm->codec && (r = qmp_pop(vm->codec, &msg)) != 0) {
		if (r < 0) {
			daemon_log("vm %s: bad QMP message dropped: %s",
				   vm->name, strerror(errno));
			continue;
		}
		vm_qmp_msg(vm, &msg);
		qmp_msg_clear(&msg);
	}
}

/* --- timers: start timeout, stop timeout --- */

static void vm_timer_ready(struct loop_source *src, uint32_t events)
{
	struct vm *vm = src->arg;
	char reason[128];

	loop_timer_ack(src->fd);
	if (vm->tearing_down)
		return;
	if (vm->state == VM_STARTING) {
		vm_teardown(vm, VM_FAILED, "start failed: QEMU did not report running in time");
	} else if (vm->state == VM_STOPPING) {
		snprintf(reason, sizeof reason,
			 "forced off: the guest did not power off within %u s",
			 vm->stop_timeout);
		vm_teardown(vm, VM_STOPPED, reason);
	}
}

static int vm_timer_arm(struct vm *vm, unsigned long ms)
{
	if (vm->timer.fd < 0) {
		vm->timer = (struct loop_source){ loop_timer_new(), vm_timer_ready, vm };
		if (vm->timer.fd < 0)
			return -1;
		if (loop_add(&vm->d->loop, &vm->timer, EPOLLIN) < 0) {
			close(vm->timer.fd);
			vm->timer.fd = -1;
			return -1;
		}
	}
	return loop_timer_arm(vm->timer.fd, ms);
}

/* --- serial followers (vm log -f) --- */

static void vm_serial_tap(void *arg, const char *data, size_t n)
{
	struct vm *vm = arg;
	size_t i;

	start_trace_serial(&vm->trace, data, n);
	for (i = 0; i < vm->follower_count; i++)
		control_send(vm->followers[i], data, n);
}

static void vm_follower_gone(void *owner, struct client *c)
{
	struct vm *vm = owner;
	size_t i;

	for (i = 0; i < vm->follower_count; i++) {
		if (vm->followers[i] != c)
			continue;
		vm->followers[i] = vm->followers[--vm->follower_count];
		return;
	}
}

/* --- start --- */

static json_t *vm_diags_json(const struct diags *diags)
{
	json_t *a = json_array();
	const struct diag *dg;
	char *line;
	size_t i;

	for (i = 0; a && i < diags->count; i++) {
		dg = &diags->items[i];
		if (asprintf(&line, "%s: %s%s%s%s", dg->vm,
			     dg->path && *dg->path ? dg->path : "",
			     dg->path && *dg->path ? ": " : "",
			     dg->level == DIAG_WARNING ? "warning: " :
			     dg->level == DIAG_NOTE ? "note: " : "",
			     dg->message) < 0)
			continue;
		json_array_append_new(a, json_string(line));
		free(line);
	}
	return a;
}

/* Load the config fresh from the VM's directory.  Answers c and returns
 * NULL when the VM is unknown or invalid. */
static struct vm_config *vm_load(struct vm *vm, struct client *c)
{
	struct daemon *d = vm->d;
	struct vm_config *cfg = NULL;
	struct diags diags;

	/* c is NULL when a client starts its provider: the reason then
	 * goes to the record, for the client's error.  A request's failure
	 * leaves the record alone. */
	if (!c)
		snprintf(vm->reason, sizeof vm->reason,
			 "invalid configuration (see vm check %s)", vm->name);
	if (!vmstate_dir_exists(d, vm->name)) {
		if (c)
			vmstate_unknown(d, c, vm->name);
		else
			snprintf(vm->reason, sizeof vm->reason,
				 "no such VM directory");
		return NULL;
	}
	diags_init(&diags);
	if (vmconfig_load(&d->roots, vm->name, &cfg, &diags) < 0) {
		if (c)
			control_reply(c, json_pack("{s:b,s:s+,s:o}", "ok", 0,
				"error", vm->name, ": invalid configuration",
				"diagnostics", vm_diags_json(&diags)));
		diags_free(&diags);
		return NULL;
	}
	diags_free(&diags);
	return cfg;
}

/* Open a file the loader just checked (relpath in the VM's directory).
 * It may have been swapped since (for a FIFO, which would block the whole
 * daemon, or a device), so the open never blocks and the fd must still be
 * a regular file (or a block device, for disks).  -1 with err set. */
static int vm_open_checked(const char *path, const char *relpath,
			   bool blk_ok, char *err, size_t len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, len, "start failed: %s: %s", relpath,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 ||
	    !(S_ISREG(st.st_mode) || (blk_ok && S_ISBLK(st.st_mode)))) {
		snprintf(err, len, "start failed: %s: changed since it was checked: no longer a regular file%s",
			 relpath, blk_ok ? " or block device" : "");
		close(fd);
		return -1;
	}
	return fd;
}

static int vm_socketpair(int sv[2])
{
	int fl;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	/* Only the daemon's end is non-blocking; QEMU sets its own. */
	fl = fcntl(sv[0], F_GETFL);
	if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	return 0;
}

static void vm_close_fds(int *fds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* A child's stdout and stderr: a pipe the loop drains into STATE/vms/
 * NAME/name, capped like the serial log, as a guest that took over QEMU
 * or virtiofsd could write there without end.  Returns the write end
 * (close-on-exec, blocking: a child outrunning the daemon waits rather
 * than loses lines); -1 (the child gets /dev/null) if it cannot be made,
 * which does not stop the VM, as the log is only for diagnosis. */
static int vm_log_pipe(struct vm *vm, struct serial *log, bool *open,
		       const char *name)
{
	int p[2], fl;

	if (pipe2(p, O_CLOEXEC) < 0)
		goto fail;
	fl = fcntl(p[0], F_GETFL);
	if (fl < 0 || fcntl(p[0], F_SETFL, fl | O_NONBLOCK) < 0 ||
	    serial_open(log, &vm->d->loop, p[0], vm->dir, name, vm->name,
			SERIAL_LOG_CAP, false) < 0) {
		close(p[0]);
		close(p[1]);
		goto fail;
	}
	*open = true;
	return p[1];

fail:
	daemon_log("vm %s: %s/%s: %s; output goes to /dev/null", vm->name,
		   vm->dir, name, strerror(errno));
	return -1;
}

/* Pin share i for virtiofsd (virtiofsd.h): its checked directory as an
 * fd, served at STATE/vms/NAME/fs-TAG.  Without the namespace sandbox
 * (not root) virtiofsd gets the path.  Fills o; the caller closes
 * o->source_fd and frees *pin_at. */
static int vm_fsd_pin(struct vm *vm, size_t i, struct virtiofsd_opts *o,
		      char **pin_at, char *err, size_t len)
{
	const struct vm_share *sh = &vm->cfg->shares[i];

	o->source_fd = 0;
	*pin_at = NULL;
	if (o->sandbox != VIRTIOFSD_SANDBOX_NAMESPACE)
		return 0;
	if (asprintf(pin_at, "%s/fs-%s", vm->dir, sh->tag) < 0) {
		*pin_at = NULL;
		goto fail_errno;
	}
	if (mkdir(*pin_at, 0700) < 0 && errno != EEXIST)
		goto fail_errno;
	o->pin_at = *pin_at;
	o->source_fd = virtiofsd_open_source(sh->host_dir);
	if (o->source_fd >= 0)
		return 0;
	if (errno == ESTALE) {
		snprintf(err, len, "start failed: shared-dirs/%s: %s changed since it was checked",
			 sh->tag, sh->host_dir);
		goto fail;
	}
fail_errno:
	snprintf(err, len, "start failed: shared-dirs/%s: %s: %s", sh->tag,
		 *pin_at ? *pin_at : sh->host_dir, strerror(errno));
fail:
	o->source_fd = 0;
	free(*pin_at);
	*pin_at = NULL;
	return -1;
}

/* Spawn one virtiofsd per share; fills qemu_fds (one per share). */
static int vm_spawn_fsds(struct vm *vm, int *qemu_fds, char *err, size_t len)
{
	struct virtiofsd_opts o = { 0 };
	struct vm_config *cfg = vm->cfg;
	char name[VMCONFIG_TAG_MAX + 16];
	int listen_fd, pidfd, log_fd, r;
	char *tmp, *pin_at;
	pid_t pid;
	size_t i;

	vm->fsd = calloc(cfg->share_count ? cfg->share_count : 1, sizeof *vm->fsd);
	if (!vm->fsd)
		return -1;
	for (i = 0; i < cfg->share_count; i++)
		vm->fsd[i].src.fd = -1;
	log_fd = vm_log_pipe(vm, &vm->fsd_log, &vm->fsd_log_open,
			     "virtiofsd.log");
	for (i = 0; i < cfg->share_count; i++) {
		snprintf(vm->fsd[i].label, sizeof vm->fsd[i].label,
			 "virtiofsd for share %s", cfg->shares[i].tag);
		snprintf(name, sizeof name, "fs-%s.sock", cfg->shares[i].tag);
		tmp = statedir_socket(vm->dir, name);
		if (!tmp || virtiofsd_sockets(tmp, &listen_fd, &qemu_fds[i]) < 0) {
			snprintf(err, len, "start failed: shared-dirs/%s: socket %s: %s",
				 cfg->shares[i].tag, tmp ? tmp : name, strerror(errno));
			free(tmp);
			goto fail;
		}
		free(tmp);
		o.source = cfg->shares[i].host_dir;
		o.listen_fd = listen_fd;
		o.sandbox = getuid() == 0 ? VIRTIOFSD_SANDBOX_NAMESPACE :
			    VIRTIOFSD_SANDBOX_CHROOT;
		if (vm_fsd_pin(vm, i, &o, &pin_at, err, len) < 0) {
			close(listen_fd);
			goto fail;
		}
		r = virtiofsd_spawn(&o, log_fd, &pid, &pidfd);
		if (r < 0)
			snprintf(err, len, "start failed: shared-dirs/%s: virtiofsd for %s: %s",
				 cfg->shares[i].tag, o.source, strerror(errno));
		if (o.source_fd > 2)
			close(o.source_fd);
		free(pin_at);
		close(listen_fd);
		if (r < 0)
			goto fail;
		vm->fsd_count = i + 1;
		if (vm_child_watch(vm, &vm->fsd[i], pid, pidfd) < 0) {
			snprintf(err, len, "start failed: watching virtiofsd: %s",
				 strerror(errno));
			close(pidfd);
			vm->fsd[i].src.fd = -1;
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			vm->fsd[i].pid = 0;
			goto fail;
		}
	}
	if (log_fd >= 0)
		close(log_fd);
	return 0;

fail:
	if (log_fd >= 0)
		close(log_fd);
	return -1;
}

/* Larger is no kernel (a debug vmlinux is a few hundred MiB). */
#define VM_KERNEL_MAX ((off_t)1 << 30)

static int vm_spawn_qemu(struct vm *vm, const int *child, const int *disk_fds,
			 const int *fs_fds, char *err, size_t len)
{
	struct vmm_launch launch = {
		.cfg = vm->cfg,
		.accel = vm->accel,
		.kernel_fd = -1,
		.qmp_fd = child[0],
		.serial_fd = child[1],
		.console_fd = child[2],
		.disk_fds = disk_fds,
		.virtiofs_fds = fs_fds,
		.nics = vm->nics,
		.nic_count = vm->nic_count,
		.hotplug_ports = vm->hotplug_ports,
		.tsc_khz = vm->d->tsc_khz,
	};
	struct spawn_opts so = { 0 };
	struct privdrop drop;
	bool dropping;
	int *keep = NULL, log_fd, pidfd, sealed, r = -1;
	char **argv = NULL;
	size_t nkeep = 0;
	pid_t pid;

	/* Opened now, so QEMU boots what the loader just checked. */
	launch.kernel_fd = vm_open_checked(vm->cfg->kernel, "vmlinux", false,
					   err, len);
	if (launch.kernel_fd < 0)
		return -1;
	/* QEMU reopens /proc/self/fd/N as its own uid, which a root-only
	 * vmlinux would refuse; a sealed copy is readable and cannot change
	 * while it boots (common/sealcopy.h). */
	sealed = sealcopy(launch.kernel_fd, "vmlinux", VM_KERNEL_MAX);
	close(launch.kernel_fd);
	launch.kernel_fd = sealed;
	if (launch.kernel_fd < 0) {
		snprintf(err, len, "start failed: vmlinux: copying it: %s",
			 strerror(errno));
		return -1;
	}
	if (vmuid_pick(vm, &drop, &dropping) < 0) {
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
	log_fd = vm_log_pipe(vm, &vm->qemu_log, &vm->qemu_log_open, "qemu.log");
	so.path = argv[0];
	so.argv = argv;
	so.keep_fds = keep;
	so.keep_count = nkeep;
	so.log_fd = log_fd;
	so.drop = dropping ? &drop : NULL;
	r = spawn(&so, &pid, &pidfd);
	if (log_fd >= 0)
		close(log_fd);
	if (r < 0) {
		snprintf(err, len, "start failed: %s: %s", argv[0], strerror(errno));
		goto out;
	}
	if (vm_child_watch(vm, &vm->qemu, pid, pidfd) < 0) {
		snprintf(err, len, "start failed: watching QEMU: %s", strerror(errno));
		close(pidfd);
		vm->qemu.src.fd = -1;
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		vm->qemu.pid = 0;
		r = -1;
	}
out:
	close(launch.kernel_fd);
	vmm_argv_free(argv);
	free(keep);
	return r;
}

/* The daemon's ends: QMP, serial log, console, start timeout. */
static int vm_watch_ends(struct vm *vm, const int *ours, char *err, size_t len)
{
	struct loop *l = &vm->d->loop;

	vm->codec = qmp_codec_new(0);
	vm->qmp = (struct loop_source){ ours[0], vm_qmp_ready, vm };
	vm->qmp_step = QMP_STEP_GREETING;
	vm->qmp_id = 0;
	if (!vm->codec || loop_add(l, &vm->qmp, EPOLLIN) < 0) {
		close(ours[1]);
		close(ours[2]);
		goto fail_errno;
	}
	if (serial_open(&vm->serial, l, ours[1], vm->dir, "serial.log",
			vm->name, SERIAL_LOG_CAP, vm->d->use_syslog) < 0) {
		close(ours[1]);
		close(ours[2]);
		snprintf(err, len, "start failed: %s/serial.log: %s", vm->dir,
			 strerror(errno));
		return -1;
	}
	vm->serial_open = true;
	vm->serial.tap = vm_serial_tap;
	vm->serial.tap_arg = vm;
	if (console_open(&vm->console, l, ours[2]) < 0) {
		close(ours[2]);
		goto fail_errno;
	}
	vm->console_open = true;
	if (vm_timer_arm(vm, VMSTATE_START_TIMEOUT_MS) < 0)
		goto fail_errno;
	return 0;

fail_errno:
	snprintf(err, len, "start failed: %s", strerror(errno));
	return -1;
}

static void vm_log_choices(struct vm *vm)
{
	struct vmm_caps caps;

	daemon_log("vm %s: accel %s: %s", vm->name, vmm_accel_name(vm->accel),
		   vm->d->accel_why);
	vmm_caps_get(&caps);
	vm->wayland_dropped = vm->cfg->wayland && !caps.wayland;
	if (vm->wayland_dropped)
		daemon_log("vm %s: wayland: this QEMU has no virtio-gpu cross-domain support; starting without it",
			   vm->name);
}

static void vm_start_providers(struct vm *vm);

void vmstate_start(struct vm *vm, struct client *c)
{
	struct vm_config *cfg;

	switch (vm->state) {
	case VM_STARTING:
		vm_wait(vm, c, VM_WAIT_START);
		return;
	case VM_RUNNING:
		control_error(c, "%s is already running", vm->name);
		return;
	case VM_STOPPING:
		control_error(c, "%s is stopping; start it again once stopped",
			      vm->name);
		return;
	default:
		break;
	}
	if (vm->tearing_down) {
		control_error(c, "%s is still being cleaned up", vm->name);
		return;
	}
	start_trace_begin(&vm->trace);
	cfg = vm_load(vm, c);
	if (!cfg)
		return;
	start_trace_mark(&vm->trace, START_CONFIG_LOADED);
	if (!vm->dir && !(vm->dir = statedir_vm(vm->d->state_dir, vm->name))) {
		if (c)
			control_error(c, "%s: %s/vms/%s: %s", vm->name,
				      vm->d->state_dir, vm->name, strerror(errno));
		vmconfig_free(cfg);
		return;
	}
	/* From here on every failure unwinds through vm_teardown. */
	vm->cfg = cfg;
	vm->accel = vm->d->accel;
	vm->qemu.src.fd = -1;
	vm->qemu.pid = 0;
	vm->fsd_count = 0;
	vm_set_state(vm, VM_STARTING, NULL);
	vm_wait(vm, c, VM_WAIT_START);
	vm_log_choices(vm);
	vm_start_providers(vm);
}

/* Every provider runs: open what QEMU needs and spawn it. */
static void vm_launch(struct vm *vm)
{
	struct vm_config *cfg = vm->cfg;
	int qemu_end[3] = { -1, -1, -1 }, ours[3] = { -1, -1, -1 }, sv[2];
	int *disk_fds = NULL, *fs_fds = NULL;
	char err[512] = "start failed";
	size_t i;

	disk_fds = calloc(cfg->disk_count + 1, sizeof *disk_fds);
	fs_fds = calloc(cfg->share_count + 1, sizeof *fs_fds);
	if (!disk_fds || !fs_fds)
		goto fail_errno;
	for (i = 0; i < cfg->disk_count; i++)
		disk_fds[i] = -1;
	for (i = 0; i < cfg->share_count; i++)
		fs_fds[i] = -1;
	for (i = 0; i < cfg->disk_count; i++) {
		disk_fds[i] = vm_open_checked(cfg->disks[i].path,
					      cfg->disks[i].relpath, true,
					      err, sizeof err);
		if (disk_fds[i] < 0)
			goto fail;
	}
	for (i = 0; i < 3; i++) {
		if (vm_socketpair(sv) < 0)
			goto fail_errno;
		ours[i] = sv[0];
		qemu_end[i] = sv[1];
	}
	if (links_prepare(vm, err, sizeof err) < 0)
		goto fail;
	start_trace_mark(&vm->trace, START_FILES_OPENED);
	if (vm_spawn_fsds(vm, fs_fds, err, sizeof err) < 0)
		goto fail;
	start_trace_mark(&vm->trace, START_HELPERS_SPAWNED);
	if (vm_spawn_qemu(vm, qemu_end, disk_fds, fs_fds, err, sizeof err) < 0)
		goto fail;
	start_trace_mark(&vm->trace, START_QEMU_EXEC);
	/* Without it a restarted daemon could not find this VM's processes
	 * (recover.h), so it may not run. */
	if (recover_record(vm) < 0) {
		snprintf(err, sizeof err, "start failed: %s/pids: %s", vm->dir,
			 strerror(errno));
		goto fail;
	}
	vm_close_fds(qemu_end, 3);
	vm_close_fds(disk_fds, cfg->disk_count);
	vm_close_fds(fs_fds, cfg->share_count);
	free(disk_fds);
	free(fs_fds);
	/* QEMU holds the taps now: one that dies takes them along. */
	for (i = 0; i < vm->nic_count; i++) {
		close(vm->nics[i].tap_fd);
		vm->nics[i].tap_fd = -1;
	}
	if (vm_watch_ends(vm, ours, err, sizeof err) < 0) {
		vm_teardown(vm, VM_FAILED, err);
		return;
	}
	if (vm->wayland_dropped) {
		static const char note[] =
			"vmhostd: wayland requested, but this QEMU cannot provide virtio-gpu cross-domain; started without it\n";
		serial_feed(&vm->serial, note, sizeof note - 1);
	}
	return;

fail_errno:
	snprintf(err, sizeof err, "start failed: %s", strerror(errno));
fail:
	vm_close_fds(qemu_end, 3);
	vm_close_fds(ours, 3);
	if (disk_fds)
		vm_close_fds(disk_fds, cfg->disk_count);
	if (fs_fds)
		vm_close_fds(fs_fds, cfg->share_count);
	free(disk_fds);
	free(fs_fds);
	daemon_log("vm %s: %s", vm->name, err);
	vm_teardown(vm, VM_FAILED, err);
}

/* Launch vm once every provider runs; fail it, naming the provider, once
 * one cannot. */
static void vm_providers_check(struct vm *vm)
{
	char reason[512];
	bool waiting = false;
	const char *name;
	struct vm *p;
	size_t i;

	if (!vm->awaiting_providers || vm->tearing_down ||
	    vm->state != VM_STARTING)
		return;
	for (i = 0; i < vm->cfg->provider_count; i++) {
		name = vm->cfg->providers[i];
		p = vmstate_find(vm->d, name, false);
		if (p && vmstate_running(p))
			continue;
		if (p && p->state == VM_STARTING && !p->tearing_down) {
			waiting = true;
			continue;
		}
		snprintf(reason, sizeof reason,
			 "start failed: provider %s did not start: %s%s%.300s",
			 name, p ? vmstate_name(p->state) : "unknown",
			 p && p->reason[0] ? ": " : "", p ? p->reason : "");
		vm->awaiting_providers = false;
		vm_teardown(vm, VM_FAILED, reason);
		return;
	}
	if (waiting)
		return;
	vm->awaiting_providers = false;
	vm_launch(vm);
}

/* A VM settled or runs: clients waiting for it move on. */
static void vm_clients_check(struct daemon *d)
{
	struct vm *vm;

	/* Records are never freed while the loop runs, so the walk stays
	 * valid even as the checks start and fail VMs. */
	for (vm = d->vms; vm; vm = vm->next)
		if (vm->awaiting_providers)
			vm_providers_check(vm);
}

/* Providers first (issue 5): start every provider not yet active (each
 * starts its own providers the same way, independent ones in parallel),
 * then launch vm when all run. */
static void vm_start_providers(struct vm *vm)
{
	struct vm_config *cfg = vm->cfg;
	struct vm *p;
	size_t i;

	/* vm is not awaiting yet, so a provider failing right away does not
	 * tear vm down (and free cfg) under this loop. */
	for (i = 0; i < cfg->provider_count; i++) {
		p = vmstate_find(vm->d, cfg->providers[i], true);
		if (p && !vmstate_active(p)) {
			daemon_log("vm %s: starting its provider %s first",
				   vm->name, p->name);
			vmstate_start(p, NULL);
		}
	}
	vm->awaiting_providers = true;
	vm_providers_check(vm);
}

/* --- stop --- */

void vmstate_stop(struct vm *vm, struct client *c, bool force,
		  unsigned int timeout_s)
{
	if (!vmstate_active(vm)) {
		if (c)
			control_error(c, "%s is not running (%s%s%s)", vm->name,
				      vmstate_name(vm->state),
				      vm->reason[0] ? ": " : "", vm->reason);
		return;
	}
	vm_wait(vm, c, VM_WAIT_STOP);
	if (vm->tearing_down)
		return;
	switch (vm->state) {
	case VM_STARTING:
		vm_teardown(vm, VM_STOPPED, "start cancelled by vm stop");
		return;
	case VM_RUNNING:
		vm_set_state(vm, VM_STOPPING, force ? "forced off" :
			     "powering off (ACPI power button)");
		break;
	default:
		break;
	}
	if (force) {
		vm_teardown(vm, VM_STOPPED, "forced off by vm stop --force");
		return;
	}
	if (vm->stop_timeout && vm->state == VM_STOPPING && vm->timer.fd >= 0)
		return; /* already counting down */
	vm->stop_timeout = timeout_s;
	if (vm_qmp_send(vm, "system_powerdown", NULL) < 0) {
		vm_teardown(vm, VM_STOPPED, "forced off: the monitor is gone");
		return;
	}
	if (vm_timer_arm(vm, (unsigned long)timeout_s * 1000) < 0)
		vm_teardown(vm, VM_STOPPED, "forced off: no timer for the stop timeout");
}

void vmstate_stop_all(struct daemon *d, bool force)
{
	struct vm *vm;

	for (vm = d->vms; vm; vm = vm->next)
		if (vmstate_active(vm))
			vmstate_stop(vm, NULL, force, VMSTATE_STOP_TIMEOUT_S);
}

/* --- console and log --- */

void vmstate_console(struct vm *vm, struct client *c)
{
	if (!vm->console_open || vm->tearing_down ||
	    (vm->state != VM_RUNNING && vm->state != VM_STARTING)) {
		control_error(c, "%s is not running (%s)", vm->name,
			      vmstate_name(vm->state));
		return;
	}
	if (console_attach(&vm->console, c) < 0)
		control_error(c, "%s: too many console viewers", vm->name);
}

/* Append the file at dir/name to c, up to the serial cap. */
static int vm_send_file(struct client *c, const char *dir, const char *name)
{
	char chunk[8192], *path;
	size_t total = 0;
	ssize_t n;
	int fd;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(path);
	if (fd < 0)
		return -1;
	while (total < 2 * SERIAL_LOG_CAP &&
	       (n = read(fd, chunk, sizeof chunk)) > 0) {
		control_send(c, chunk, (size_t)n);
		total += (size_t)n;
	}
	close(fd);
	return 0;
}

void vmstate_log(struct vm *vm, struct client *c, bool follow)
{
	char *path;
	int have;

	if (!vm->dir && !(vm->dir = statedir_vm(vm->d->state_dir, vm->name))) {
		control_error(c, "%s: %s/vms/%s: %s", vm->name, vm->d->state_dir,
			      vm->name, strerror(errno));
		return;
	}
	if (asprintf(&path, "%s/serial.log", vm->dir) < 0) {
		control_error(c, "%s: %s", vm->name, strerror(errno));
		return;
	}
	have = access(path, R_OK) == 0;
	if (!have && !follow) {
		control_error(c, "%s: %s: no serial log yet", vm->name, path);
		free(path);
		return;
	}
	free(path);
	if (follow && vm->follower_count == VMSTATE_FOLLOWERS_MAX) {
		control_error(c, "%s: too many log followers", vm->name);
		return;
	}
	if (follow) {
		vm->followers[vm->follower_count++] = c;
		control_stream(c, vm, NULL, vm_follower_gone);
	} else {
		control_stream(c, NULL, NULL, NULL);
	}
	vm_send_file(c, vm->dir, "serial.log.1");
	vm_send_file(c, vm->dir, "serial.log");
	if (!follow)
		control_finish(c);
}

/* --- records --- */

static json_t *vm_config_json(const struct vm_config *cfg)
{
	json_t *disks = json_array(), *shares = json_array();
	json_t *providers = json_array();
	char guest[16];
	size_t i;

	for (i = 0; i < cfg->disk_count; i++) {
		snprintf(guest, sizeof guest, "/dev/vd%c",
			 (char)('a' + (i < 26 ? i : 25)));
		json_array_append_new(disks, json_pack("{s:s,s:s,s:s}",
			"path", cfg->disks[i].relpath,
			"host_path", cfg->disks[i].path, "guest", guest));
	}
	for (i = 0; i < cfg->share_count; i++)
		json_array_append_new(shares, json_pack("{s:s,s:s,s:s+}",
			"tag", cfg->shares[i].tag,
			"host_dir", cfg->shares[i].host_dir,
			"guest", "/run/virtiofs/", cfg->shares[i].tag));
	for (i = 0; i < cfg->provider_count; i++)
		json_array_append_new(providers, json_string(cfg->providers[i]));
	return json_pack("{s:s,s:s,s:o,s:o,s:o,s:b,s:b,s:I,s:i,s:s}",
		"dir", cfg->dir, "kernel", cfg->kernel,
		"disks", disks, "shares", shares, "providers", providers,
		"wayland", cfg->wayland, "uplink", cfg->uplink,
		"memory", (json_int_t)cfg->memory, "cpus", (int)cfg->cpus,
		"cmdline", cfg->cmdline ? cfg->cmdline : "");
}

json_t *vmstate_json(struct vm *vm, bool detail)
{
	struct daemon *d = vm->d;
	struct vm_config *cfg = vm->cfg;
	struct diags diags;
	struct vmm_caps caps;
	json_t *o, *notes;

	o = json_pack("{s:s,s:s}", "name", vm->name,
		      "state", vmstate_name(vm->state));
	if (!o)
		return NULL;
	json_object_set_new(o, "pid", vm->qemu.pid ? json_integer(vm->qemu.pid) :
			    json_null());
	json_object_set_new(o, "since", vm->since ? json_integer(vm->since) :
			    json_null());
	json_object_set_new(o, "reason", vm->reason[0] ?
			    json_string(vm->reason) : json_null());
	if (!detail)
		return o;

	notes = json_array();
	diags_init(&diags);
	if (!cfg && vmconfig_load(&d->roots, vm->name, &cfg, &diags) < 0) {
		json_object_set_new(o, "config", json_null());
		json_object_set_new(o, "diagnostics", vm_diags_json(&diags));
		cfg = NULL;
	} else {
		json_object_set_new(o, "config", vm_config_json(cfg));
	}
	vmm_caps_get(&caps);
	if (cfg && cfg->wayland && !caps.wayland)
		json_array_append_new(notes, json_string(
			"wayland requested, but this QEMU has no virtio-gpu cross-domain support: the VM runs without it"));
	json_object_set_new(o, "accel", json_string(vmm_accel_name(
		vmstate_active(vm) ? vm->accel : d->accel)));
	json_object_set_new(o, "accel_reason", json_string(d->accel_why));
	json_object_set_new(o, "state_dir", vm->dir ? json_string(vm->dir) :
			    json_null());
	json_object_set_new(o, "uid", vmstate_active(vm) && vm->uid ?
			    json_integer(vm->uid) : json_null());
	json_object_set_new(o, "notes", notes);
	json_object_set_new(o, "links", links_json(vm, cfg));
	json_object_set_new(o, "start_trace", start_trace_json(&vm->trace));
	if (cfg != vm->cfg)
		vmconfig_free(cfg);
	diags_free(&diags);
	return o;
}

void vmstate_free_all(struct daemon *d)
{
	struct vm *vm;
	size_t i;

	while ((vm = d->vms)) {
		d->vms = vm->next;
		if (vm->qemu.pid) {
			kill(vm->qemu.pid, SIGKILL);
			waitpid(vm->qemu.pid, NULL, 0);
			vm_child_close(vm, &vm->qemu);
		}
		for (i = 0; i < vm->fsd_count; i++) {
			if (!vm->fsd[i].pid)
				continue;
			kill(vm->fsd[i].pid, SIGKILL);
			waitpid(vm->fsd[i].pid, NULL, 0);
			vm_child_close(vm, &vm->fsd[i]);
		}
		if (vmstate_active(vm)) {
			vm->tearing_down = true;
			vm->end_state = VM_STOPPED;
			snprintf(vm->end_reason, sizeof vm->end_reason,
				 "vmhostd exited");
			vm_finish(vm);
		}
		free(vm->dir);
		free(vm);
	}
}
