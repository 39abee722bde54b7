/* Records of running VMs.  See record.h. */
#include "monitor/record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "monitor/netlinks.h"

#define RECORD_FILE "record"
#define RECORD_MAX (1 << 20)

/* This boot's id: pids and start times mean nothing across a reboot. */
static int record_boot_id(char *buf, size_t len)
{
	ssize_t n;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* Field 22 of /proc/PID/stat: start time in clock ticks after boot. */
static int record_start_time(pid_t pid, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: skip past the
	 * last ')'; field 3 follows it. */
	p = strrchr(buf, ')');
	if (!p)
		goto bad;
	for (field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", start) != 1)
		goto bad;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

json_t *record_run_json(const struct mvm *vm)
{
	return json_pack("{s:s,s:I,s:I,s:s,s:i,s:o,s:o,s:o,s:o}",
		"name", vm->name, "pid", (json_int_t)vm->qemu.pid,
		"uid", (json_int_t)vm->uid, "accel", vmm_accel_name(vm->accel),
		"hotplug_ports", (int)vm->hotplug_ports,
		"links", vm->links ? json_incref(vm->links) : json_array(),
		"config", vm->config ? json_incref(vm->config) : json_null(),
		"notes", vm->notes ? json_incref(vm->notes) : json_array(),
		"cgroup", vm->run.has_cgroup ?
			json_string(cgroup_dir(&vm->run.cgroup, 0)) : json_null());
}

static json_t *record_proc(const struct mchild *ch)
{
	unsigned long long start;

	if (!ch->pid || record_start_time(ch->pid, &start) < 0)
		return NULL;
	return json_pack("{s:s,s:i,s:I}", "what", ch->what, "pid", (int)ch->pid,
			 "start", (json_int_t)start);
}

struct record_ctx {
	struct monitor *m;
	struct mvm *vm;
};

static int record_dump(FILE *f, void *arg)
{
	struct record_ctx *c = arg;
	struct mvm *vm = c->vm;
	json_t *o, *helpers = json_array(), *q;
	char boot[64];
	int r;

	q = record_proc(&vm->qemu);
	if (!q || !helpers || record_boot_id(boot, sizeof boot) < 0) {
		json_decref(q);
		json_decref(helpers);
		return -1;
	}
	for (size_t i = 0; i < vm->helper_count; i++) {
		json_t *h = record_proc(&vm->helpers[i]);

		if (h)
			json_array_append_new(helpers, h);
	}
	o = record_run_json(vm);
	json_object_set_new(o, "boot", json_string(boot));
	json_object_set_new(o, "qemu", q);
	json_object_set_new(o, "helpers", helpers);
	json_object_set_new(o, "state", json_integer(vm->note.state));
	json_object_set_new(o, "since", json_integer(vm->note.since));
	json_object_set_new(o, "reason", json_string(vm->note.reason));
	json_object_set_new(o, "provider_links",
			    netlinks_provider_json(c->m, vm->name));
	r = json_dumpf(o, f, JSON_COMPACT);
	json_decref(o);
	return r;
}

int record_write(struct monitor *m, struct mvm *vm)
{
	struct record_ctx c = { m, vm };
	char *path;
	int r, saved;

	if (asprintf(&path, "%s/%s", vm->run_dir, RECORD_FILE) < 0)
		return -1;
	/* Not durable: the processes named do not survive a reboot either. */
	r = atomicfile_write(path, false, record_dump, &c);
	saved = errno;
	free(path);
	errno = saved;
	return r;
}

void record_remove(const struct mvm *vm)
{
	char *path;

	if (asprintf(&path, "%s/%s", vm->run_dir, RECORD_FILE) < 0)
		return;
	unlink(path);
	free(path);
}

json_t *record_read(const char *run_dir)
{
	json_error_t jerr;
	json_t *o;
	char *buf = malloc(RECORD_MAX + 1), *path;
	size_t len = 0;
	ssize_t r;
	int fd = -1;

	if (buf && asprintf(&path, "%s/%s", run_dir, RECORD_FILE) >= 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		free(path);
	}
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	while (len < RECORD_MAX && (r = read(fd, buf + len, RECORD_MAX - len)) > 0)
		len += (size_t)r;
	close(fd);
	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!json_is_object(o) || !json_is_object(json_object_get(o, "qemu"))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

bool record_this_boot(json_t *o)
{
	const char *theirs = json_string_value(json_object_get(o, "boot"));
	char boot[64];

	return theirs && record_boot_id(boot, sizeof boot) == 0 &&
	       !strcmp(theirs, boot);
}

int record_open_proc(json_t *p, pid_t *pid)
{
	json_int_t v = json_integer_value(json_object_get(p, "pid"));
	json_int_t start = json_integer_value(json_object_get(p, "start"));
	unsigned long long now;
	int fd;

	if (v <= 1 || v > 0x7fffffff || start <= 0)
		return -1;
	*pid = (pid_t)v;
	if (record_start_time(*pid, &now) < 0 || now != (unsigned long long)start)
		return -1;
	fd = (int)syscall(SYS_pidfd_open, *pid, 0);
	if (fd < 0)
		return -1;
	if (record_start_time(*pid, &now) < 0 || now != (unsigned long long)start) {
		close(fd);
		return -1;
	}
	return fd;
}

void record_fill(struct monitor *m, struct mvm *vm, json_t *o)
{
	vm->launched = true;
	vm->uid = (uid_t)json_integer_value(json_object_get(o, "uid"));
	vm->accel = !strcmp(json_string_value(json_object_get(o, "accel")) ?: "",
			    "kvm") ? VMM_ACCEL_KVM : VMM_ACCEL_TCG;
	vm->hotplug_ports = (unsigned int)json_integer_value(
		json_object_get(o, "hotplug_ports"));
	vm->config = json_incref(json_object_get(o, "config"));
	vm->links = json_incref(json_object_get(o, "links"));
	vm->notes = json_array();
	vm->note.state = (uint8_t)json_integer_value(json_object_get(o, "state"));
	vm->note.since = json_integer_value(json_object_get(o, "since"));
	snprintf(vm->note.reason, sizeof vm->note.reason, "%s",
		 json_string_value(json_object_get(o, "reason")) ?: "");
	snprintf(vm->note.name, sizeof vm->note.name, "%s", vm->name);
	netlinks_provider_restore(m, vm->name, json_object_get(o, "provider_links"));
}
