/* Re-executing the monitor without stopping a VM.  See handover.h. */
#include "monitor/handover.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "monitor/mvm.h"
#include "monitor/netlinks.h"
#include "monitor/record.h"

#define HANDOVER_MAX (4 << 20)

static int handover_keep(int fd, bool keep)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFD, keep ? fl & ~FD_CLOEXEC : fl | FD_CLOEXEC);
}

static json_t *handover_proc(const struct launch_proc *p)
{
	return json_pack("{s:s,s:i,s:i}", "what", p->label, "pid", (int)p->pid,
			 "pidfd", p->pidfd);
}

/* Every fd the new image needs, kept (or, with keep false, not). */
static void handover_fds(struct monitor *m, bool keep)
{
	handover_keep(m->lock_fd, keep);
	handover_keep(m->control_fd, keep);
	for (struct mvm *vm = m->vms; vm; vm = vm->next) {
		if (!vm->launched)
			continue;
		for (int i = 0; i < RUN_FDS; i++)
			if (vm->fds[i] >= 0)
				handover_keep(vm->fds[i], keep);
		if (vm->run.qemu.pid)
			handover_keep(vm->run.qemu.pidfd, keep);
		if (vm->run.passt.pid)
			handover_keep(vm->run.passt.pidfd, keep);
		for (size_t i = 0; i < vm->run.fsd_count; i++)
			if (vm->run.fsd[i].pid)
				handover_keep(vm->run.fsd[i].pidfd, keep);
	}
}

static json_t *handover_json(struct monitor *m)
{
	json_t *vms = json_array(), *fds, *helpers;
	struct vm_run *run;

	for (struct mvm *vm = m->vms; vms && vm; vm = vm->next) {
		if (!vm->launched)
			continue;
		run = &vm->run;
		fds = json_array();
		helpers = json_array();
		for (int i = 0; i < RUN_FDS; i++)
			json_array_append_new(fds, json_integer(vm->fds[i]));
		for (size_t i = 0; i < run->fsd_count; i++)
			if (run->fsd[i].pid)
				json_array_append_new(helpers, handover_proc(&run->fsd[i]));
		if (run->passt.pid)
			json_array_append_new(helpers, handover_proc(&run->passt));
		json_array_append_new(vms, json_pack("{s:s,s:o,s:o,s:o,s:b}",
			"name", vm->name, "fds", fds,
			"qemu", run->qemu.pid ? handover_proc(&run->qemu) : json_null(),
			"helpers", helpers, "killing", vm->killing));
	}
	return json_pack("{s:i,s:i,s:o}", "lock", m->lock_fd, "control",
			 m->control_fd, "vms", vms);
}

int handover_exec(struct monitor *m, const char *path)
{
	char arg[32], **argv;
	json_t *o = handover_json(m);
	int fd, n = 0, saved;

	for (struct mvm *vm = m->vms; vm; vm = vm->next)
		if (vm->launched)
			record_write(m, vm);
	fd = memfd_create("vmhostd-handover", 0);
	if (!o || fd < 0 || json_dumpfd(o, fd, JSON_COMPACT) < 0 ||
	    lseek(fd, 0, SEEK_SET) < 0)
		goto fail;
	while (m->argv[n])
		n++;
	argv = calloc((size_t)n + 2, sizeof *argv);
	if (!argv)
		goto fail;
	memcpy(argv, m->argv, (size_t)n * sizeof *argv);
	snprintf(arg, sizeof arg, "--handover=%d", fd);
	argv[n] = arg;
	handover_fds(m, true);
	daemon_log("SIGHUP: re-executing %s with %s", path, arg);
	execv(path, argv);
	saved = errno;
	handover_fds(m, false);
	free(argv);
	errno = saved;
fail:
	saved = errno;
	json_decref(o);
	if (fd >= 0)
		close(fd);
	errno = saved;
	return -1;
}

static json_t *handover_data;

static int handover_fd_ok(json_t *v)
{
	json_int_t fd = json_integer_value(v);

	return json_is_integer(v) && fd > 2 && fd < 65536 &&
	       fcntl((int)fd, F_GETFD) >= 0 ? (int)fd : -1;
}

int handover_read(struct monitor *m, int fd)
{
	json_error_t jerr;

	handover_data = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
	close(fd);
	if (!json_is_object(handover_data)) {
		errno = EBADMSG;
		return -1;
	}
	m->lock_fd = handover_fd_ok(json_object_get(handover_data, "lock"));
	m->control_fd = handover_fd_ok(json_object_get(handover_data, "control"));
	if (m->lock_fd < 0 || m->control_fd < 0) {
		errno = EBADF;
		return -1;
	}
	handover_keep(m->lock_fd, false);
	handover_keep(m->control_fd, false);
	return 0;
}

/* One process of the run back: still our child, its pidfd kept. */
static bool handover_proc_back(json_t *o, struct launch_proc *p)
{
	int fd = handover_fd_ok(json_object_get(o, "pidfd"));
	json_int_t pid = json_integer_value(json_object_get(o, "pid"));

	if (fd < 0 || pid <= 1)
		return false;
	handover_keep(fd, false);
	*p = (struct launch_proc){ .pid = (pid_t)pid, .pidfd = fd };
	snprintf(p->label, sizeof p->label, "%s",
		 json_string_value(json_object_get(o, "what")) ?: "helper");
	return true;
}

/* One VM back: its fds, its processes (still our children, so their
 * exit statuses are not lost), its cgroup; the rest from its record. */
static void handover_vm(struct monitor *m, json_t *o)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	json_t *fds = json_object_get(o, "fds"), *h, *rec;
	json_t *helpers = json_object_get(o, "helpers");
	struct launch_proc *p, q;
	struct vm_run *run;
	struct mvm *vm;
	size_t i;
	int fd;

	if (!name || !vmconfig_name_valid(name) || !(vm = mvm_find(m, name, true)))
		return;
	rec = record_read(vm->run_dir);
	if (!rec) {
		daemon_log("vm %s: no record in %s; its processes are left unwatched",
			   name, vm->run_dir);
		return;
	}
	record_fill(m, vm, rec);
	json_decref(rec);
	for (int k = 0; k < RUN_FDS; k++) {
		fd = handover_fd_ok(json_array_get(fds, (size_t)k));
		if (fd >= 0)
			handover_keep(fd, false);
		vm->fds[k] = fd;
	}
	run = &vm->run;
	run->run_dir = strdup(vm->run_dir);
	run->fsd = calloc(json_array_size(helpers) + 1, sizeof *run->fsd);
	handover_proc_back(json_object_get(o, "qemu"), &run->qemu);
	json_array_foreach(helpers, i, h) {
		if (!run->fsd || !handover_proc_back(h, &q))
			continue;
		p = !strcmp(q.label, "passt") ? &run->passt :
		    &run->fsd[run->fsd_count++];
		*p = q;
	}
	if (m->cgroups && cgroup_open(m->cgroups, name, &run->cgroup) == 0)
		run->has_cgroup = true;
	mvm_watch_run(vm, true);
	vm->killing = json_is_true(json_object_get(o, "killing"));
	netlinks_adopt(m, vm);
	daemon_log("vm %s: taken over from the previous image: QEMU pid %d",
		   name, (int)run->qemu.pid);
}

void handover_adopt(struct monitor *m)
{
	json_t *vms = json_object_get(handover_data, "vms"), *o;
	size_t i;

	json_array_foreach(vms, i, o)
		handover_vm(m, o);
	json_decref(handover_data);
	handover_data = NULL;
}
