/* Adopting the VMs of a dead monitor.  See adopt.h. */
#include "monitor/adopt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "monitor/mvm.h"
#include "monitor/netlinks.h"
#include "monitor/record.h"
#include "monitor/statedir.h"

#define ADOPT_CGROUP_KILL_MS 5000

/* The run's processes from the record: QEMU (its pidfd given) and each
 * helper that still runs. */
static int adopt_run(struct mvm *vm, json_t *o, int qemu_fd, pid_t qemu_pid)
{
	struct vm_run *run = &vm->run;
	json_t *helpers = json_object_get(o, "helpers"), *h;
	const char *what;
	struct launch_proc *p;
	size_t i;
	pid_t pid;
	int fd;

	run->qemu = (struct launch_proc){ .pid = qemu_pid, .pidfd = qemu_fd };
	snprintf(run->qemu.label, sizeof run->qemu.label, "QEMU");
	run->fsd = calloc(json_array_size(helpers) + 1, sizeof *run->fsd);
	run->run_dir = strdup(vm->run_dir);
	if (!run->fsd || !run->run_dir)
		return -1;
	json_array_foreach(helpers, i, h) {
		what = json_string_value(json_object_get(h, "what"));
		if ((fd = record_open_proc(h, &pid)) < 0)
			continue;
		p = what && !strcmp(what, "passt") ? &run->passt :
		    &run->fsd[run->fsd_count++];
		*p = (struct launch_proc){ .pid = pid, .pidfd = fd };
		snprintf(p->label, sizeof p->label, "%s", what ? what : "helper");
	}
	if (vm->m->cgroups &&
	    cgroup_open(vm->m->cgroups, vm->name, &run->cgroup) == 0)
		run->has_cgroup = true;
	return mvm_watch_run(vm, false);
}

/* Take a running VM over; false if it could not be (it is then killed). */
static bool adopt_vm(struct monitor *m, const char *name, json_t *o,
		     int qemu_fd, pid_t qemu_pid)
{
	struct mvm *vm = mvm_find(m, name, true);
	int p[2];

	if (!vm) {
		syscall(SYS_pidfd_send_signal, qemu_fd, SIGKILL, NULL, 0);
		close(qemu_fd);
		return false;
	}
	record_fill(m, vm, o);
	if (adopt_run(vm, o, qemu_fd, qemu_pid) < 0)
		goto fail;
	/* The old log pipes died with their reader: new ones that end at
	 * once stand in, so the engine's view of a run stays the same. */
	for (int k = RUN_QEMU_LOG; k <= RUN_HELPER_LOG; k++) {
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
			goto fail;
		close(p[1]);
		vm->fds[k] = p[0];
	}
	if (launch_reconnect(vm->run_dir, &vm->fds[RUN_QMP],
			     &vm->fds[RUN_SERIAL], &vm->fds[RUN_CONSOLE]) < 0)
		goto fail;
	netlinks_adopt(m, vm);
	record_write(m, vm);
	daemon_log("vm %s: adopted: QEMU pid %d, %zu helper(s)", name,
		   (int)qemu_pid, vm->helper_count);
	return true;
fail:
	daemon_log("vm %s: QEMU pid %d cannot be adopted (%s); killing it",
		   name, (int)qemu_pid, strerror(errno));
	mvm_kill(m, name);
	return false;
}

/* QEMU is gone: what is left of the run goes with its cgroup. */
static void adopt_clean(struct monitor *m, const char *name, json_t *o)
{
	struct cgroup cg;
	json_t *h;
	size_t i;
	pid_t pid;
	int fd;

	daemon_log("vm %s: its QEMU ended while no vmhostd ran; cleaning up", name);
	if (m->cgroups && cgroup_open(m->cgroups, name, &cg) == 0 &&
	    cgroup_destroy(&cg, ADOPT_CGROUP_KILL_MS) < 0) {
		daemon_log("vm %s: cgroup %s: %s", name, cgroup_dir(&cg, 0),
			   strerror(errno));
		cgroup_free(&cg);
	}
	/* Without a cgroup (not root), by pid. */
	json_array_foreach(json_object_get(o, "helpers"), i, h) {
		if ((fd = record_open_proc(h, &pid)) < 0)
			continue;
		syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
		close(fd);
	}
}

static void adopt_one(struct monitor *m, const char *name)
{
	char *run = statedir_run(m->state_dir, name), *path;
	pid_t pid = 0;
	int qfd = -1;
	json_t *o;

	if (!run)
		return;
	o = record_read(run);
	if (o && record_this_boot(o))
		qfd = record_open_proc(json_object_get(o, "qemu"), &pid);
	if (qfd >= 0) {
		adopt_vm(m, name, o, qfd, pid);
	} else {
		if (o)
			adopt_clean(m, name, o);
		statedir_clean_run(run);
		if (asprintf(&path, "%s/record", run) >= 0) {
			unlink(path);
			free(path);
		}
		rmdir(run);
	}
	json_decref(o);
	free(run);
}

void adopt_all(struct monitor *m)
{
	struct dirent *e;
	struct mvm *vm;
	char *path;
	DIR *dir;

	if (asprintf(&path, "%s/run", m->state_dir) < 0)
		return;
	dir = opendir(path);
	free(path);
	if (!dir)
		return;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.' || !vmconfig_name_valid(e->d_name))
			continue;
		/* Handed over by the previous image already. */
		vm = mvm_find(m, e->d_name, false);
		if (vm && vm->launched)
			continue;
		adopt_one(m, e->d_name);
	}
	closedir(dir);
}
