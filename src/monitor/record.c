/* Records of running VMs, and adopting them at start-up.  See record.h. */
#include "monitor/record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/log.h"
#include "monitor/mlaunch.h"
#include "monitor/mvm.h"
#include "monitor/netlinks.h"
#include "monitor/statedir.h"

#define RECORD_FILE "record"
#define RECORD_MAX (1 << 20)
#define RECORD_HELPER_GRACE_MS 2000

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

int record_start_time(pid_t pid, unsigned long long *start)
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
	o = mvm_run_json(vm);
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

void record_remove(struct mvm *vm)
{
	char *path;

	if (asprintf(&path, "%s/%s", vm->run_dir, RECORD_FILE) < 0)
		return;
	unlink(path);
	free(path);
}

/* A pidfd for a process the record names, if it is still that one:
 * checked again after pidfd_open, so the fd cannot point at a newcomer. */
static int record_open(json_t *p, pid_t *pid)
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

static bool record_wait(int pidfd, int ms)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

static json_t *record_read(int dirfd)
{
	json_error_t jerr;
	json_t *o;
	char *buf = malloc(RECORD_MAX + 1);
	size_t len = 0;
	ssize_t r;
	int fd;

	if (!buf)
		return NULL;
	fd = openat(dirfd, RECORD_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	while (len < RECORD_MAX && (r = read(fd, buf + len, RECORD_MAX - len)) > 0)
		len += (size_t)r;
	close(fd);
	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* QEMU is gone: its helpers have nothing to serve. */
static void record_stop_helpers(const char *name, json_t *helpers)
{
	json_t *h;
	size_t i;
	pid_t pid;
	int fd;

	json_array_foreach(helpers, i, h) {
		fd = record_open(h, &pid);
		if (fd < 0)
			continue;
		if (!record_wait(fd, RECORD_HELPER_GRACE_MS)) {
			syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
			record_wait(fd, 5000);
		}
		daemon_log("vm %s: helper pid %d left over: stopped", name, (int)pid);
		close(fd);
	}
}

/* A run's fields from its record o: vm is launched, with no process or
 * fd yet. */
static struct mvm *record_fill(struct monitor *m, const char *name, json_t *o)
{
	struct mvm *vm = mvm_adopted(m, name);

	if (!vm)
		return NULL;
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
	snprintf(vm->note.name, sizeof vm->note.name, "%s", name);
	netlinks_provider_restore(m, name, json_object_get(o, "provider_links"));
	return vm;
}

struct mvm *record_load(struct monitor *m, const char *name)
{
	struct mvm *vm = NULL;
	char *run = statedir_run(m->state_dir, name);
	json_t *o = NULL;
	int dirfd;

	if (!run)
		return NULL;
	dirfd = open(run, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	free(run);
	if (dirfd >= 0) {
		o = record_read(dirfd);
		close(dirfd);
	}
	if (o)
		vm = record_fill(m, name, o);
	json_decref(o);
	return vm;
}

/* Take a running VM over from a dead monitor. */
static bool record_adopt(struct monitor *m, const char *name, json_t *o,
			 int qemu_fd, pid_t qemu_pid)
{
	struct mvm *vm = record_fill(m, name, o);
	json_t *helpers = json_object_get(o, "helpers"), *h;
	const char *what;
	size_t i, n = json_array_size(helpers);
	pid_t pid;
	int fd, p[2];

	if (!vm) {
		syscall(SYS_pidfd_send_signal, qemu_fd, SIGKILL, NULL, 0);
		close(qemu_fd);
		return false;
	}
	snprintf(vm->qemu.what, sizeof vm->qemu.what, "QEMU");
	mvm_watch(vm, &vm->qemu, qemu_pid, qemu_fd, false);
	vm->helpers = calloc(n + 1, sizeof *vm->helpers);
	json_array_foreach(helpers, i, h) {
		if (!vm->helpers || (fd = record_open(h, &pid)) < 0)
			continue;
		what = json_string_value(json_object_get(h, "what"));
		snprintf(vm->helpers[vm->helper_count].what,
			 sizeof vm->helpers[0].what, "%s", what ? what : "helper");
		mvm_watch(vm, &vm->helpers[vm->helper_count++], pid, fd, false);
	}
	/* The old log pipes died with their reader: new ones that end at
	 * once stand in, so the engine's view of a run stays the same. */
	for (int k = RUN_QEMU_LOG; k <= RUN_HELPER_LOG; k++) {
		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
			return false;
		close(p[1]);
		vm->fds[k] = p[0];
	}
	if (mlaunch_reconnect(vm) < 0) {
		daemon_log("vm %s: its sockets in %s: %s", name, vm->run_dir,
			   strerror(errno));
		return false;
	}
	netlinks_adopt(m, vm);
	record_write(m, vm);
	daemon_log("vm %s: adopted: QEMU pid %d, %zu helper(s)", name,
		   (int)qemu_pid, vm->helper_count);
	return true;
}

static void record_one(struct monitor *m, int rundirfd, const char *name)
{
	char boot[64];
	const char *their;
	pid_t pid = 0;
	json_t *o;
	int dirfd, qfd = -1;

	dirfd = openat(rundirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
		       O_NOFOLLOW);
	if (dirfd < 0)
		return;
	o = record_read(dirfd);
	close(dirfd);
	if (!o)
		goto clean;
	their = json_string_value(json_object_get(o, "boot"));
	if (their && record_boot_id(boot, sizeof boot) == 0 && !strcmp(their, boot))
		qfd = record_open(json_object_get(o, "qemu"), &pid);
	if (qfd >= 0 && record_adopt(m, name, o, qfd, pid)) {
		json_decref(o);
		return;
	}
	if (qfd >= 0 && mvm_find(m, name, false)) {
		/* Found but not reachable: it cannot be supervised, so it
		 * may not run. */
		daemon_log("vm %s: QEMU pid %d cannot be adopted; killing it",
			   name, (int)pid);
		mvm_kill(m, name);
		json_decref(o);
		return;
	}
	daemon_log("vm %s: its QEMU ended while no vmhostd ran", name);
	record_stop_helpers(name, json_object_get(o, "helpers"));
	json_decref(o);
clean:
	{
		char *run = statedir_run(m->state_dir, name);

		if (run) {
			statedir_clean_run(run);
			dirfd = openat(rundirfd, name, O_RDONLY | O_DIRECTORY |
				       O_CLOEXEC | O_NOFOLLOW);
			if (dirfd >= 0) {
				unlinkat(dirfd, RECORD_FILE, 0);
				close(dirfd);
			}
			unlinkat(rundirfd, name, AT_REMOVEDIR);
			free(run);
		}
	}
}

void record_adopt_all(struct monitor *m)
{
	struct dirent *e;
	char *path;
	DIR *dir;

	if (asprintf(&path, "%s/run", m->state_dir) < 0)
		return;
	dir = opendir(path);
	free(path);
	if (!dir)
		return;
	while ((e = readdir(dir))) {
		struct mvm *vm;

		if (e->d_name[0] == '.' || !vmconfig_name_valid(e->d_name))
			continue;
		/* Handed over by the previous image already. */
		vm = mvm_find(m, e->d_name, false);
		if (vm && vm->launched)
			continue;
		record_one(m, dirfd(dir), e->d_name);
	}
	closedir(dir);
}
