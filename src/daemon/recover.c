/* Stopping VMs a dead daemon left running.  See recover.h. */
#include "daemon/recover.h"

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
#include <time.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "vmm/cgroup.h"

#define RECOVER_FILE "pids"
#define RECOVER_RECORD_MAX 65536 /* a VM with hundreds of shares */
#define RECOVER_TERM_MS 10000
#define RECOVER_KILL_MS 5000
#define RECOVER_HANGUP_MS 2000

struct recover_proc {
	char what[16];
	pid_t pid;
	int pidfd;
};

/* This boot's id: pids and start times mean nothing across a reboot. */
static int recover_boot_id(char *buf, size_t len)
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
static int recover_start_time(pid_t pid, unsigned long long *start)
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

static int recover_line(FILE *f, const char *what, pid_t pid)
{
	unsigned long long start;

	if (recover_start_time(pid, &start) < 0)
		return -1;
	return fprintf(f, "%s %d %llu\n", what, (int)pid, start) < 0 ? -1 : 0;
}

static int recover_write(FILE *f, void *arg)
{
	struct vm *vm = arg;
	char boot[64];
	size_t i;

	if (recover_boot_id(boot, sizeof boot) < 0 ||
	    fprintf(f, "boot %s\n", boot) < 0 ||
	    recover_line(f, "qemu", vm->qemu.pid) < 0)
		return -1;
	for (i = 0; i < vm->fsd_count; i++)
		if (vm->fsd[i].pid && recover_line(f, "virtiofsd", vm->fsd[i].pid) < 0)
			return -1;
	if (vm->passt.pid && recover_line(f, "passt", vm->passt.pid) < 0)
		return -1;
	return 0;
}

int recover_record(struct vm *vm)
{
	char *path;
	int r, saved;

	if (asprintf(&path, "%s/%s", vm->dir, RECOVER_FILE) < 0)
		return -1;
	/* Not durable: the processes named do not survive a reboot either. */
	r = atomicfile_write(path, false, recover_write, vm);
	saved = errno;
	free(path);
	errno = saved;
	return r;
}

void recover_forget(struct vm *vm)
{
	char *path;

	if (!vm->dir || asprintf(&path, "%s/%s", vm->dir, RECOVER_FILE) < 0)
		return;
	unlink(path);
	free(path);
}

/* A pidfd for pid if it is still the process the record names: checked
 * again after pidfd_open, so the fd cannot point at a newcomer. */
static int recover_open(pid_t pid, unsigned long long start)
{
	unsigned long long now;
	int fd;

	if (pid <= 1 || recover_start_time(pid, &now) < 0 || now != start)
		return -1;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -1;
	if (recover_start_time(pid, &now) < 0 || now != start) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool recover_wait(int pidfd, int ms)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r > 0;
}

static int recover_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* SIGTERM (unless grace_ms says to wait for it to leave by itself first),
 * then SIGKILL.  Returns what it took. */
static const char *recover_stop(struct recover_proc *p, int grace_ms)
{
	if (grace_ms && recover_wait(p->pidfd, grace_ms))
		return "exited";
	recover_signal(p->pidfd, SIGTERM);
	if (recover_wait(p->pidfd, RECOVER_TERM_MS))
		return "SIGTERM";
	recover_signal(p->pidfd, SIGKILL);
	if (recover_wait(p->pidfd, RECOVER_KILL_MS))
		return "SIGKILL";
	return "SIGKILL, still not gone";
}

/* Read the record at dirfd/pids: a pidfd for each process it names that
 * still runs, in *procs (malloc'd, *n of them). */
static int recover_read(int dirfd, struct recover_proc **procs, size_t *n)
{
	char buf[RECOVER_RECORD_MAX + 1], boot[64], what[16], *line, *save;
	unsigned long long start;
	bool same_boot = false;
	struct recover_proc *v;
	size_t lines = 1, len = 0;
	ssize_t r;
	int fd, pid;

	*n = 0;
	*procs = NULL;
	fd = openat(dirfd, RECOVER_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	while (len < RECOVER_RECORD_MAX &&
	       (r = read(fd, buf + len, RECOVER_RECORD_MAX - len)) > 0)
		len += (size_t)r;
	close(fd);
	buf[len] = '\0';
	for (line = buf; (line = strchr(line, '\n')); line++)
		lines++;
	v = calloc(lines, sizeof *v);
	if (!v || recover_boot_id(boot, sizeof boot) < 0) {
		free(v);
		return -1;
	}
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "boot ", 5)) {
			same_boot = !strcmp(line + 5, boot);
			continue;
		}
		if (!same_boot ||
		    sscanf(line, "%15s %d %llu", what, &pid, &start) != 3 ||
		    (strcmp(what, "qemu") && strcmp(what, "virtiofsd") &&
		     strcmp(what, "passt")))
			continue;
		v[*n].pidfd = recover_open(pid, start);
		if (v[*n].pidfd < 0)
			continue;
		v[*n].pid = pid;
		snprintf(v[*n].what, sizeof v[*n].what, "%s", what);
		(*n)++;
	}
	*procs = v;
	return 0;
}

/* Sockets in a VM's state dir belong to processes now gone. */
static void recover_sockets(int dirfd)
{
	struct dirent *e;
	struct stat st;
	DIR *dir;
	int fd = dup(dirfd);

	if (fd < 0 || !(dir = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(dir)))
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISSOCK(st.st_mode))
			unlinkat(dirfd, e->d_name, 0);
	closedir(dir);
}

/* The run's cgroup (vmm/cgroup.h): whatever the record did not name
 * (virtiofsd's worker, say) goes with it. */
static void recover_cgroup(struct daemon *d, const char *name)
{
	struct cgroup cg;

	if (!d->cgroups || cgroup_open(d->cgroups, name, &cg) < 0)
		return;
	if (cgroup_destroy(&cg, RECOVER_KILL_MS) < 0) {
		daemon_log("vm %s: cgroup %s: %s", name, cgroup_dir(&cg, 0),
			   strerror(errno));
		cgroup_free(&cg);
		return;
	}
	daemon_log("vm %s: its cgroup is emptied and removed", name);
}

static void recover_vm(struct daemon *d, int vmsfd, const char *name)
{
	struct recover_proc *procs;
	char reason[512];
	size_t n = 0, i;
	pid_t qemu = 0;
	struct vm *vm;
	int dirfd;

	dirfd = openat(vmsfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
		       O_NOFOLLOW);
	if (dirfd < 0)
		return;
	if (recover_read(dirfd, &procs, &n) < 0) {
		close(dirfd);
		/* No record: stopped properly, or a crash before it was
		 * written, which may have left a cgroup. */
		recover_cgroup(d, name);
		return;
	}
	/* QEMU first: its virtiofsds leave by themselves once it is gone. */
	for (i = 0; i < n; i++) {
		if (strcmp(procs[i].what, "qemu"))
			continue;
		qemu = procs[i].pid;
		daemon_log("vm %s: QEMU pid %d outlived the previous vmhostd; stopping it",
			   name, (int)qemu);
		snprintf(reason, sizeof reason,
			 "stopped at vmhostd start-up: the previous vmhostd died and left QEMU pid %d running, unreachable (%s)",
			 (int)qemu, recover_stop(&procs[i], 0));
	}
	for (i = 0; i < n; i++) {
		if (!strcmp(procs[i].what, "qemu"))
			continue;
		daemon_log("vm %s: %s pid %d left over: %s", name,
			   procs[i].what, (int)procs[i].pid,
			   recover_stop(&procs[i], RECOVER_HANGUP_MS));
	}
	for (i = 0; i < n; i++)
		close(procs[i].pidfd);
	free(procs);
	if (!qemu)
		snprintf(reason, sizeof reason, "%s",
			 "the previous vmhostd died while this VM ran; its QEMU was gone by vmhostd start-up");
	recover_cgroup(d, name);
	recover_sockets(dirfd);
	unlinkat(dirfd, RECOVER_FILE, 0);
	close(dirfd);
	daemon_log("vm %s: %s", name, reason);
	vm = vmstate_find(d, name, true);
	if (!vm)
		return;
	vm->state = VM_STOPPED;
	vm->since = time(NULL);
	snprintf(vm->reason, sizeof vm->reason, "%s", reason);
}

void recover_orphans(struct daemon *d)
{
	struct dirent *e;
	char *path;
	DIR *dir;

	if (asprintf(&path, "%s/vms", d->state_dir) < 0)
		return;
	dir = opendir(path);
	free(path);
	if (!dir)
		return;
	while ((e = readdir(dir)))
		if (e->d_name[0] != '.' && strlen(e->d_name) <= VMCONFIG_NAME_MAX)
			recover_vm(d, dirfd(dir), e->d_name);
	closedir(dir);
}
