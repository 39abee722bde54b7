/* Per-VM cgroups, v1 and v2.  See cgroup.h. */
#include "vmm/cgroup.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "common/kfile.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CGROUP_FILE_MAX 65536  /* cgroup.procs of a VM: a few hundred pids */
#define CGROUP_DAEMON_LEAF ".vmhostd" /* never a VM name: those cannot
				       * start with a dot */

static const char *const cgroup_v1_kinds[] = { "memory", "pids", "freezer" };
#define CGROUP_V1_KINDS (sizeof cgroup_v1_kinds / sizeof *cgroup_v1_kinds)
#define CGROUP_HYBRID_UNIFIED "/sys/fs/cgroup/unified"

bool cgroup_parent_valid(const char *p)
{
	size_t n = strlen(p);

	if (!n || n > 64)
		return false;
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
			return false;
	return true;
}

/* dir/name, or ENAMETOOLONG. */
static int cgroup_path(char *path, size_t len, const char *dir,
		       const char *name)
{
	if ((size_t)snprintf(path, len, "%s/%s", dir, name) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static ssize_t cgroup_read(const char *dir, const char *name, char *buf,
			   size_t len)
{
	char path[PATH_MAX];

	return cgroup_path(path, sizeof path, dir, name) < 0 ? -1 :
	       kfile_read(path, buf, len);
}

static int cgroup_write(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];

	return cgroup_path(path, sizeof path, dir, name) < 0 ? -1 :
	       kfile_write(path, text);
}

static int cgroup_write_u64(const char *dir, const char *name, uint64_t v)
{
	char text[32];

	snprintf(text, sizeof text, "%llu", (unsigned long long)v);
	return cgroup_write(dir, name, text);
}

/* Whether word is one of the comma- or space-separated words of list. */
static bool cgroup_has_word(const char *list, const char *word, const char *seps)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n) {
		bool start = p == list || strchr(seps, p[-1]);
		bool end = !p[n] || strchr(seps, p[n]);

		if (start && end)
			return true;
	}
	return false;
}

/* Our cgroup in the hierarchy of kind (v1 controller name, or NULL for
 * the v2 line "0::PATH"), from /proc/self/cgroup. */
static int cgroup_self(const char *kind, char *out, size_t len)
{
	char buf[8192], *line, *save, *ctl, *path;

	if (cgroup_read("/proc/self", "cgroup", buf, sizeof buf) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		ctl = strchr(line, ':');
		path = ctl ? strchr(ctl + 1, ':') : NULL;
		if (!path)
			continue;
		*path++ = '\0';
		*ctl++ = '\0';
		if (kind ? !cgroup_has_word(ctl, kind, ",") :
		    strcmp(line, "0") || *ctl)
			continue;
		if ((size_t)snprintf(out, len, "%s", path) >= len) {
			errno = ENAMETOOLONG;
			return -1;
		}
		return 0;
	}
	errno = ENOENT;
	return -1;
}

/* Where the v1 hierarchy with controller kind is mounted. */
static int cgroup_v1_mount(const char *kind, char *out, size_t len)
{
	char buf[65536], *line, *save;

	if (cgroup_read("/proc/self", "mountinfo", buf, sizeof buf) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char mnt[1024], fstype[32], opts[1024];
		char *dash = strstr(line, " - ");

		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FSTYPE SOURCE OPTS */
		if (!dash || sscanf(line, "%*s %*s %*s %*s %1023s", mnt) != 1 ||
		    sscanf(dash + 3, "%31s %*s %1023s", fstype, opts) != 2 ||
		    strcmp(fstype, "cgroup") || !cgroup_has_word(opts, kind, ","))
			continue;
		if ((size_t)snprintf(out, len, "%s", mnt) >= len) {
			errno = ENAMETOOLONG;
			return -1;
		}
		return 0;
	}
	errno = ENOENT;
	return -1;
}

static int cgroup_mkdir(const char *dir)
{
	return mkdir(dir, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

/* v2: enable memory and pids for the VMs below base, if the hierarchy
 * has them, moving the daemon into a leaf first if its cgroup must be
 * emptied for that. */
static void cgroup_v2_controllers(struct cgroup_root *r, const char *daemon)
{
	char ctl[256], leaf[PATH_MAX], want[32] = "";

	if (cgroup_read(daemon, "cgroup.controllers", ctl, sizeof ctl) < 0)
		return;
	r->memory = cgroup_has_word(ctl, "memory", " \n");
	r->pids = cgroup_has_word(ctl, "pids", " \n");
	snprintf(want, sizeof want, "%s%s%s", r->memory ? "+memory" : "",
		 r->memory && r->pids ? " " : "", r->pids ? "+pids" : "");
	if (!want[0])
		return;
	if (cgroup_write(daemon, "cgroup.subtree_control", want) < 0 &&
	    errno == EBUSY) {
		/* "No internal processes": we are in the way. */
		snprintf(leaf, sizeof leaf, "%s/%s", r->base[0],
			 CGROUP_DAEMON_LEAF);
		if (cgroup_mkdir(leaf) < 0 ||
		    cgroup_write(leaf, "cgroup.procs", "0") < 0 ||
		    cgroup_write(daemon, "cgroup.subtree_control", want) < 0)
			goto none;
	}
	if (cgroup_write(r->base[0], "cgroup.subtree_control", want) == 0)
		return;
none:
	r->memory = r->pids = false;
}

static int cgroup_root_v2(struct cgroup_root *r, const char *mnt,
			  const char *parent, char *why, size_t len)
{
	char self[PATH_MAX], daemon[PATH_MAX];

	if (cgroup_self(NULL, self, sizeof self) < 0) {
		snprintf(why, len, "/proc/self/cgroup: no cgroup v2 line");
		return -1;
	}
	snprintf(daemon, sizeof daemon, "%s%s", mnt, strcmp(self, "/") ? self : "");
	r->version = CGROUP_V2;
	r->kind[0] = "unified";
	r->v2 = 0;
	if (asprintf(&r->base[0], "%s/%s", daemon, parent) < 0) {
		r->base[0] = NULL;
		return -1;
	}
	r->count = 1;
	if (cgroup_mkdir(r->base[0]) < 0) {
		snprintf(why, len, "%s: %s", r->base[0], strerror(errno));
		return -1;
	}
	cgroup_v2_controllers(r, daemon);
	return 0;
}

/* A hybrid host's unified hierarchy, if there is one: a directory there
 * too, for cgroup BPF. */
static int cgroup_hybrid_unified(struct cgroup_root *r, const char *parent,
				 char *why, size_t len)
{
	char self[PATH_MAX];
	struct statfs fs;
	size_t i = r->count;

	if (statfs(CGROUP_HYBRID_UNIFIED, &fs) < 0 ||
	    fs.f_type != CGROUP2_SUPER_MAGIC ||
	    cgroup_self(NULL, self, sizeof self) < 0)
		return 0;
	if (asprintf(&r->base[i], "%s%s/%s", CGROUP_HYBRID_UNIFIED,
		     strcmp(self, "/") ? self : "", parent) < 0) {
		r->base[i] = NULL;
		return -1;
	}
	r->kind[i] = "unified";
	r->count = i + 1;
	if (cgroup_mkdir(r->base[i]) < 0) {
		snprintf(why, len, "%s: %s", r->base[i], strerror(errno));
		return -1;
	}
	r->v2 = (int)i;
	return 0;
}

static int cgroup_root_v1(struct cgroup_root *r, const char *parent,
			  char *why, size_t len)
{
	char mnt[PATH_MAX], self[PATH_MAX];

	r->version = CGROUP_V1;
	for (size_t i = 0; i < CGROUP_V1_KINDS; i++) {
		const char *kind = cgroup_v1_kinds[i];

		if (cgroup_v1_mount(kind, mnt, sizeof mnt) < 0 ||
		    cgroup_self(kind, self, sizeof self) < 0) {
			snprintf(why, len, "no cgroup v1 %s hierarchy", kind);
			errno = ENOENT;
			return -1;
		}
		r->kind[i] = kind;
		if (asprintf(&r->base[i], "%s%s/%s", mnt,
			     strcmp(self, "/") ? self : "", parent) < 0) {
			r->base[i] = NULL;
			return -1;
		}
		r->count = i + 1;
		if (cgroup_mkdir(r->base[i]) < 0) {
			snprintf(why, len, "%s: %s", r->base[i], strerror(errno));
			return -1;
		}
	}
	r->memory = r->pids = true;
	return cgroup_hybrid_unified(r, parent, why, len);
}

int cgroup_root_init(struct cgroup_root *r, const char *parent,
		     const char *v2_mount, char *why, size_t len)
{
	const char *mnt = v2_mount ? v2_mount : "/sys/fs/cgroup";
	struct statfs fs;
	int rc, saved;

	memset(r, 0, sizeof *r);
	r->v2 = -1;
	snprintf(why, len, "%s", "");
	if (!cgroup_parent_valid(parent)) {
		snprintf(why, len, "invalid cgroup parent name");
		errno = EINVAL;
		return -1;
	}
	if (statfs(mnt, &fs) < 0) {
		snprintf(why, len, "%s: %s", mnt, strerror(errno));
		return -1;
	}
	if (fs.f_type == CGROUP2_SUPER_MAGIC)
		rc = cgroup_root_v2(r, mnt, parent, why, len);
	else if (v2_mount) {
		snprintf(why, len, "%s: not a cgroup2 mount", mnt);
		errno = EINVAL;
		rc = -1;
	} else
		rc = cgroup_root_v1(r, parent, why, len);
	if (rc < 0) {
		saved = errno;
		if (!why[0])
			snprintf(why, len, "%s", strerror(errno));
		cgroup_root_fini(r);
		errno = saved;
	}
	return rc;
}

void cgroup_root_fini(struct cgroup_root *r)
{
	for (size_t i = 0; i < CGROUP_DIRS_MAX; i++) {
		free(r->base[i]);
		r->base[i] = NULL;
	}
	r->count = 0;
}

void cgroup_free(struct cgroup *cg)
{
	for (size_t i = 0; i < CGROUP_DIRS_MAX; i++) {
		free(cg->dir[i]);
		cg->dir[i] = NULL;
	}
	cg->root = NULL;
}

const char *cgroup_dir(const struct cgroup *cg, size_t i)
{
	return cg->root && i < cg->root->count ? cg->dir[i] : NULL;
}

const char *cgroup_v2_dir(const struct cgroup *cg)
{
	return cg->root && cg->root->v2 >= 0 ? cg->dir[cg->root->v2] : NULL;
}

static int cgroup_paths(const struct cgroup_root *r, const char *name,
			struct cgroup *cg)
{
	memset(cg, 0, sizeof *cg);
	if (!r->count || !name[0] || strchr(name, '/') || name[0] == '.') {
		errno = EINVAL;
		return -1;
	}
	cg->root = r;
	for (size_t i = 0; i < r->count; i++)
		if (asprintf(&cg->dir[i], "%s/%s", r->base[i], name) < 0) {
			cg->dir[i] = NULL;
			cgroup_free(cg);
			errno = ENOMEM;
			return -1;
		}
	return 0;
}

static int cgroup_limits(const struct cgroup *cg, uint64_t memory,
			 uint64_t pids)
{
	const struct cgroup_root *r = cg->root;

	if (r->version == CGROUP_V2) {
		if (memory && r->memory &&
		    (cgroup_write_u64(cg->dir[0], "memory.max", memory) < 0 ||
		     /* No swap: the cap is on what the VM really holds. */
		     (cgroup_write(cg->dir[0], "memory.swap.max", "0") < 0 &&
		      errno != ENOENT)))
			return -1;
		return pids && r->pids ?
		       cgroup_write_u64(cg->dir[0], "pids.max", pids) : 0;
	}
	/* memsw (memory + swap) must stay >= the memory limit: set after. */
	if (memory &&
	    (cgroup_write_u64(cg->dir[0], "memory.limit_in_bytes", memory) < 0 ||
	     (cgroup_write_u64(cg->dir[0], "memory.memsw.limit_in_bytes",
			       memory) < 0 && errno != ENOENT)))
		return -1;
	return pids ? cgroup_write_u64(cg->dir[1], "pids.max", pids) : 0;
}

int cgroup_create(const struct cgroup_root *r, const char *name,
		  uint64_t memory_max, uint64_t pids_max, struct cgroup *cg)
{
	int busy, saved;

	if (cgroup_paths(r, name, cg) < 0)
		return -1;
	for (size_t i = 0; i < r->count; i++)
		if (cgroup_mkdir(cg->dir[i]) < 0)
			goto fail;
	busy = cgroup_populated(cg);
	if (busy) {
		if (busy > 0)
			errno = EBUSY;
		goto fail;
	}
	if (cgroup_limits(cg, memory_max, pids_max) < 0)
		goto fail;
	return 0;
fail:
	saved = errno;
	cgroup_free(cg);
	errno = saved;
	return -1;
}

int cgroup_open(const struct cgroup_root *r, const char *name,
		struct cgroup *cg)
{
	struct stat st;

	if (cgroup_paths(r, name, cg) < 0)
		return -1;
	for (size_t i = 0; i < r->count; i++)
		if (stat(cg->dir[i], &st) < 0) {
			int saved = errno;

			cgroup_free(cg);
			errno = saved;
			return -1;
		}
	return 0;
}

int cgroup_attach(const struct cgroup *cg, pid_t pid)
{
	char text[16];

	snprintf(text, sizeof text, "%d", (int)pid);
	for (size_t i = 0; i < cg->root->count; i++)
		if (cgroup_write(cg->dir[i], "cgroup.procs", text) < 0)
			return -1;
	return 0;
}

int cgroup_populated(const struct cgroup *cg)
{
	char buf[CGROUP_FILE_MAX];

	if (cg->root->version == CGROUP_V2) {
		if (cgroup_read(cg->dir[0], "cgroup.events", buf, sizeof buf) < 0)
			return -1;
		return cgroup_has_word(buf, "populated 1", "\n") ? 1 : 0;
	}
	for (size_t i = 0; i < cg->root->count; i++) {
		if (cgroup_read(cg->dir[i], "cgroup.procs", buf, sizeof buf) < 0)
			return -1;
		if (buf[0])
			return 1;
	}
	return 0;
}

static void cgroup_nap(void)
{
	struct timespec ts = { 0, 5 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

/* v1: the freezer stops every process where it is, so none can fork or
 * exit (and no pid be reused: only we reap them) between reading the
 * list and signalling it; SIGKILL takes effect at the thaw. */
static int cgroup_v1_kill(const struct cgroup *cg)
{
	const char *freezer = cg->dir[2];
	char buf[CGROUP_FILE_MAX], state[32], *p, *end;
	int rc = 0;

	if (cgroup_write(freezer, "freezer.state", "FROZEN") < 0)
		return -1;
	/* At most about 1 s: a task in uninterruptible sleep may not
	 * freeze, and is then signalled anyway. */
	for (int i = 0; i < 200; i++) {
		if (cgroup_read(freezer, "freezer.state", state, sizeof state) < 0 ||
		    !strncmp(state, "FROZEN", 6))
			break;
		cgroup_nap();
	}
	if (cgroup_read(freezer, "cgroup.procs", buf, sizeof buf) < 0)
		rc = -1;
	for (p = buf; rc == 0 && *p; p = end) {
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		if (pid > 1)
			kill((pid_t)pid, SIGKILL);
		while (*end == '\n')
			end++;
	}
	if (cgroup_write(freezer, "freezer.state", "THAWED") < 0)
		rc = -1;
	return rc;
}

int cgroup_kill(const struct cgroup *cg)
{
	if (cg->root->version == CGROUP_V2)
		return cgroup_write(cg->dir[0], "cgroup.kill", "1");
	return cgroup_v1_kill(cg);
}

int cgroup_destroy(struct cgroup *cg, int timeout_ms)
{
	int left = timeout_ms, busy;

	if (!cg->root)
		return 0;
	while ((busy = cgroup_populated(cg)) != 0) {
		if (busy < 0 && errno != ENOENT)
			return -1;
		if (busy < 0)
			break; /* already gone */
		if (left <= 0) {
			errno = EBUSY;
			return -1;
		}
		if (cgroup_kill(cg) < 0)
			return -1;
		/* Killed processes need a moment to leave. */
		for (int i = 0; i < 20 && cgroup_populated(cg) > 0; i++) {
			cgroup_nap();
			left -= 5;
		}
	}
	for (size_t i = 0; i < cg->root->count; i++)
		if (rmdir(cg->dir[i]) < 0 && errno != ENOENT)
			return -1;
	cgroup_free(cg);
	return 0;
}
