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

static json_t *handover_child(const struct mchild *ch)
{
	return json_pack("{s:s,s:i,s:i}", "what", ch->what, "pid", (int)ch->pid,
			 "pidfd", ch->src.fd);
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
		if (vm->qemu.src.fd >= 0)
			handover_keep(vm->qemu.src.fd, keep);
		for (size_t i = 0; i < vm->helper_count; i++)
			if (vm->helpers[i].src.fd >= 0)
				handover_keep(vm->helpers[i].src.fd, keep);
	}
}

static json_t *handover_json(struct monitor *m)
{
	json_t *vms = json_array(), *fds, *helpers;

	for (struct mvm *vm = m->vms; vms && vm; vm = vm->next) {
		if (!vm->launched)
			continue;
		fds = json_array();
		helpers = json_array();
		for (int i = 0; i < RUN_FDS; i++)
			json_array_append_new(fds, json_integer(vm->fds[i]));
		for (size_t i = 0; i < vm->helper_count; i++)
			if (vm->helpers[i].pid)
				json_array_append_new(helpers,
					handover_child(&vm->helpers[i]));
		json_array_append_new(vms, json_pack("{s:s,s:o,s:o,s:o,s:b}",
			"name", vm->name, "fds", fds,
			"qemu", vm->qemu.pid ? handover_child(&vm->qemu) : json_null(),
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

/* One VM back: its fds, its processes (still our children), the rest
 * from its record. */
static void handover_vm(struct monitor *m, json_t *o)
{
	const char *name = json_string_value(json_object_get(o, "name"));
	json_t *fds = json_object_get(o, "fds"), *q = json_object_get(o, "qemu");
	json_t *helpers = json_object_get(o, "helpers"), *h;
	struct mvm *vm;
	size_t i;
	int fd;

	if (!name || !vmconfig_name_valid(name) || !(vm = record_load(m, name)))
		return;
	for (int k = 0; k < RUN_FDS; k++) {
		fd = handover_fd_ok(json_array_get(fds, (size_t)k));
		if (fd >= 0)
			handover_keep(fd, false);
		vm->fds[k] = fd;
	}
	if ((fd = handover_fd_ok(json_object_get(q, "pidfd"))) >= 0) {
		handover_keep(fd, false);
		snprintf(vm->qemu.what, sizeof vm->qemu.what, "QEMU");
		mvm_watch(vm, &vm->qemu,
			  (pid_t)json_integer_value(json_object_get(q, "pid")), fd,
			  true);
	}
	vm->helpers = calloc(json_array_size(helpers) + 1, sizeof *vm->helpers);
	json_array_foreach(helpers, i, h) {
		fd = handover_fd_ok(json_object_get(h, "pidfd"));
		if (!vm->helpers || fd < 0)
			continue;
		handover_keep(fd, false);
		snprintf(vm->helpers[vm->helper_count].what,
			 sizeof vm->helpers[0].what, "%s",
			 json_string_value(json_object_get(h, "what")) ?: "helper");
		mvm_watch(vm, &vm->helpers[vm->helper_count++],
			  (pid_t)json_integer_value(json_object_get(h, "pid")), fd,
			  true);
	}
	vm->killing = json_is_true(json_object_get(o, "killing"));
	netlinks_adopt(m, vm);
	daemon_log("vm %s: taken over from the previous image: QEMU pid %d",
		   name, (int)vm->qemu.pid);
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
