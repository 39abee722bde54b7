/* The gatherer: a child with the VM directory owner's identity opens what
 * a VM uses; the parent checks the result as hostile input.  See gather.h;
 * the protocol is in gather_int.h.  This file: the API, the rules both
 * sides apply, roots, owners, children, the provider graph. */
#include "config/gather.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/gather_int.h"

/* --- policy --- */

int gather_policy_init(struct gather_policy *p)
{
	memset(p, 0, sizeof(*p));
	return hostlimits_default(&p->limits);
}

void gather_policy_free(struct gather_policy *p)
{
	free(p->block_devices);
	p->block_devices = NULL;
	p->block_device_count = 0;
}

int gather_allow_block_device(struct gather_policy *p, const char *path)
{
	struct stat st;
	dev_t *grown;

	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISBLK(st.st_mode)) {
		errno = ENOTBLK;
		return -1;
	}
	grown = realloc(p->block_devices,
			(p->block_device_count + 1) * sizeof(*grown));
	if (!grown)
		return -1;
	p->block_devices = grown;
	p->block_devices[p->block_device_count++] = st.st_rdev;
	return 0;
}

static bool gather_block_allowed(const struct gather_policy *p, dev_t rdev)
{
	for (size_t i = 0; i < p->block_device_count; i++)
		if (p->block_devices[i] == rdev)
			return true;
	return false;
}

unsigned int gather_timeout(const struct gather_policy *p)
{
	return p->timeout_ms ? p->timeout_ms : GATHER_TIMEOUT_MS;
}

/* --- small helpers --- */

void gather_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Report a system error (ENOMEM...) on name's directory. */
void gather_fail_diag(struct diags *d, const char *name, int err,
		      const char *what)
{
	diags_add(d, DIAG_ERROR, name, ".", "%s: %s", what, strerror(err));
}

char *gather_fd_path(int fd)
{
	char link[32], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target));
	if (n < 0)
		return strdup("?");
	return vmconfig_escape(target, (size_t)n, 1024);
}

int gather_statx(int fd, struct gather_stat *st)
{
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC,
		  STATX_TYPE | STATX_INO | STATX_SIZE, &stx) < 0)
		return -1;
	st->mode = stx.stx_mode;
	st->rdev = makedev(stx.stx_rdev_major, stx.stx_rdev_minor);
	st->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	st->ino = stx.stx_ino;
	st->size = (off_t)stx.stx_size;
	return 0;
}

bool gather_type_ok(const struct gather_policy *p, enum gather_use use,
		    const struct gather_stat *st, const char *name,
		    const char *rel, int fd, struct diags *d)
{
	const char *why;
	char *target;

	switch (use) {
	case GATHER_KERNEL:
		if (S_ISREG(st->mode) && st->size <= VMFILES_KERNEL_MAX)
			return true;
		break;
	case GATHER_DISK:
		if (S_ISREG(st->mode) ||
		    (S_ISBLK(st->mode) && gather_block_allowed(p, st->rdev)))
			return true;
		break;
	case GATHER_SHARE:
		if (S_ISDIR(st->mode))
			return true;
		break;
	}
	/* Only now the name, for the message: a readlink per file is what a
	 * 10,000-VM check would pay otherwise. */
	target = gather_fd_path(fd);
	why = use == GATHER_DISK ?
	      "a disk image must be a regular file or a block device" :
	      "must be a regular file holding an uncompressed Linux kernel (ELF)";
	if (!target)
		diags_add(d, DIAG_ERROR, name, rel, "%s", strerror(ENOMEM));
	else if (use == GATHER_SHARE)
		diags_add(d, DIAG_ERROR, name, rel, "target \"%s\" is %s, not a directory",
			  target, vmconfig_ftype(st->mode));
	else if (use == GATHER_KERNEL && S_ISREG(st->mode))
		diags_add(d, DIAG_ERROR, name, rel, "\"%s\" is %lld bytes; a kernel is at most %lld bytes",
			  target, (long long)st->size,
			  (long long)VMFILES_KERNEL_MAX);
	else if (S_ISBLK(st->mode) && use == GATHER_DISK)
		diags_add(d, DIAG_ERROR, name, rel, "\"%s\" is a block device (%u:%u); block devices are refused unless the administrator allows each one: vmhostd --allow-block-device %s (vm check takes the same option)",
			  target, major(st->rdev), minor(st->rdev), target);
	else
		diags_add(d, DIAG_ERROR, name, rel, "\"%s\" is %s; %s", target,
			  vmconfig_ftype(st->mode), why);
	free(target);
	return false;
}

/* --- the parent: roots, owner --- */

void gather_roots_close(struct gather_roots *r)
{
	gather_close(&r->rootfd);
	gather_close(&r->datafd);
	gather_close(&r->statefd);
	free(r->root);
	free(r->data);
	free(r->state);
	memset(r, 0, sizeof(*r));
	r->rootfd = r->datafd = r->statefd = -1;
}

/* Open a root by its resolved path; -1 with errno. */
static int gather_open_root(const char *path, int flags, int *fd, char **real)
{
	*real = realpath(path, NULL);
	if (!*real)
		return -1;
	*fd = open(*real, flags | O_DIRECTORY | O_CLOEXEC);
	return *fd < 0 ? -1 : 0;
}

int gather_roots_open(const struct gather_policy *p, const char *name,
		      struct gather_roots *r, struct diags *d)
{
	const char *data = p->roots.data_root;
	char *data_default = NULL;
	int saved;

	memset(r, 0, sizeof(*r));
	r->rootfd = r->datafd = r->statefd = -1;
	if (gather_open_root(p->roots.config_root, O_RDONLY | O_NONBLOCK,
			     &r->rootfd, &r->root) < 0) {
		saved = errno;
		diags_add(d, DIAG_ERROR, name, ".", "config root \"%s\": %s",
			  p->roots.config_root, strerror(saved));
		goto fail;
	}
	if (!data && !(data = data_default = vmconfig_default_data_root(r->root))) {
		saved = errno;
		goto fail;
	}
	/* Only shares need it: without it each share is refused. */
	if (gather_open_root(data, O_PATH, &r->datafd, &r->data) < 0) {
		r->data_err = errno;
		free(r->data);
		r->data = strdup(data);
		if (!r->data) {
			saved = errno;
			goto fail;
		}
	}
	/* No state directory yet: nothing there to protect. */
	if (p->state_dir &&
	    gather_open_root(p->state_dir, O_PATH, &r->statefd, &r->state) < 0 &&
	    errno != ENOENT) {
		saved = errno;
		diags_add(d, DIAG_ERROR, name, ".", "state directory \"%s\": %s",
			  p->state_dir, strerror(saved));
		goto fail;
	}
	free(data_default);
	return 0;
fail:
	free(data_default);
	gather_roots_close(r);
	errno = saved;
	return -1;
}

static void gather_owner_free(struct gather_owner *o)
{
	free(o->groups);
	o->groups = NULL;
	o->group_count = 0;
}

/* Whose identity gathers a directory owned by uid.  NSS is asked here, in
 * the parent: a group list from the child could be a lie. */
static int gather_owner_for(uid_t uid, struct gather_owner *o)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	int n = 32;

	memset(o, 0, sizeof(*o));
	o->dir_uid = uid;
	o->switch_ids = geteuid() == 0 && uid != 0;
	if (!o->switch_ids) {
		o->uid = geteuid();
		o->gid = getegid();
		return 0;
	}
	o->uid = uid;
	o->gid = GATHER_NOGROUP;
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) != 0 || !found)
		return 0; /* no passwd entry: no groups but nogroup */
	o->gid = pw.pw_gid;
	for (;;) {
		gid_t *grown = realloc(o->groups, (size_t)n * sizeof(gid_t));
		int want = n;

		if (!grown) {
			gather_owner_free(o);
			return -1;
		}
		o->groups = grown;
		if (getgrouplist(pw.pw_name, pw.pw_gid, o->groups, &want) >= 0) {
			o->group_count = (size_t)want;
			return 0;
		}
		if (want <= n || want > 65536) {
			gather_owner_free(o);
			errno = E2BIG;
			return -1;
		}
		n = want;
	}
}

/* --- the parent: one child --- */

void gather_run_free(struct gather_run *run)
{
	if (!run)
		return;
	for (size_t i = 0; i < run->nfds; i++)
		close(run->fds[i]);
	for (size_t i = 0; i < run->count; i++)
		free(run->names[i]);
	free(run->names);
	free(run->buf);
	gather_close(&run->sock);
	gather_close(&run->pidfd);
	gather_owner_free(&run->owner);
	gather_roots_close(&run->roots);
	free(run);
}

struct gather_run *gather_run_new(const struct gather_policy *p)
{
	struct gather_run *run = calloc(1, sizeof(*run));

	if (!run)
		return NULL;
	run->policy = p;
	run->sock = run->pidfd = -1;
	run->roots.rootfd = run->roots.datafd = run->roots.statefd = -1;
	return run;
}

int gather_run_add(struct gather_run *run, const char *name)
{
	char **grown = realloc(run->names, (run->count + 1) * sizeof(*grown));

	if (!grown)
		return -1;
	run->names = grown;
	run->names[run->count] = strdup(name);
	if (!run->names[run->count])
		return -1;
	run->count++;
	return 0;
}

/* Fork the child for run (roots and owner set). */
static int gather_run_start(struct gather_run *run)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		gather_child(run, sv[1]);
	}
	close(sv[1]);
	run->pid = pid;
	run->sock = sv[0];
	/* Only for a caller's event loop: where pidfd_open is missing (an
	 * old kernel, valgrind) the sync calls do without. */
	run->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if ((run->pidfd < 0 && errno != ENOSYS) ||
	    fcntl(run->sock, F_SETFL, O_NONBLOCK) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		run->pid = 0;
		return -1;
	}
	return 0;
}

static long long gather_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Report, on every VM of run still without a verdict, why there is none. */
static void gather_run_failed(struct gather_run *run, struct gather_item *items,
			      int err)
{
	for (size_t i = run->next; i < run->count; i++) {
		if (items[i].done)
			continue;
		if (err == ETIMEDOUT)
			diags_add(&items[i].diags, DIAG_ERROR, run->names[i], ".",
				  "gave up after %u ms: reading the VM directory as its owner (uid %u) did not finish (a file on a stalled filesystem, e.g. FUSE or NFS?)",
				  gather_timeout(run->policy),
				  (unsigned int)run->owner.uid);
		else if (err == EBADMSG)
			diags_add(&items[i].diags, DIAG_ERROR, run->names[i], ".",
				  "refused: the gatherer (uid %u) sent a malformed answer",
				  (unsigned int)run->owner.uid);
		else
			diags_add(&items[i].diags, DIAG_ERROR, run->names[i], ".",
				  "the gatherer (uid %u) failed: %s",
				  (unsigned int)run->owner.uid, strerror(err));
		items[i].done = true;
	}
}

/* Run a started child to the end: at most the time-out between two
 * frames.  0 when every item has its verdict from the child, -1 with
 * errno otherwise (every item then has one anyway). */
static int gather_run_wait(struct gather_run *run, struct gather_item *items)
{
	long long deadline = gather_now_ms() + gather_timeout(run->policy);
	size_t seen = run->next;
	struct pollfd pfd = { .fd = run->sock, .events = POLLIN };
	int r, saved;

	for (;;) {
		r = gather_run_step(run, items);
		if (r != 0)
			break;
		if (run->next != seen) {
			seen = run->next;
			deadline = gather_now_ms() + gather_timeout(run->policy);
		}
		long long left = deadline - gather_now_ms();

		if (left <= 0) {
			errno = ETIMEDOUT;
			r = -1;
			break;
		}
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
			r = -1;
			break;
		}
	}
	if (r > 0)
		return 0;
	saved = errno;
	gather_run_reap(run);
	gather_run_failed(run, items, saved);
	errno = saved;
	return -1;
}

/* --- the parent: sets of VMs --- */

/* Open the roots and the VM directory, find its owner, and set up run for
 * it; -1 with diags (EINVAL: the VM is invalid already) or errno. */
static int gather_prepare(const struct gather_policy *p, const char *name,
			  struct gather_roots *roots, uid_t *owner,
			  struct diags *d)
{
	struct stat st;
	int vmfd, saved;

	vmfd = vmconfig_open_vm(roots->rootfd, roots->root, name, d);
	if (vmfd < 0)
		return -1;
	if (fstat(vmfd, &st) < 0) {
		saved = errno;
		close(vmfd);
		gather_fail_diag(d, name, saved, "cannot stat");
		errno = saved;
		return -1;
	}
	close(vmfd);
	*owner = st.st_uid;
	return 0;
}

/* Gather names[i] for every i with items[i] not done, one child per owner,
 * one owner after the other.  copy_kernel: as for a start. */
static int gather_items(const struct gather_policy *p, char *const *names,
			size_t count, struct gather_item *items,
			bool copy_kernel, bool keep_fds)
{
	struct gather_roots roots;
	struct gather_run *run = NULL;
	uid_t *owners = calloc(count ? count : 1, sizeof(uid_t));
	bool *pending = calloc(count ? count : 1, sizeof(bool));
	struct diags rootd;
	int r = -1, saved = 0;

	diags_init(&rootd);
	if (!owners || !pending)
		goto out;
	if (gather_roots_open(p, "", &roots, &rootd) < 0) {
		saved = errno;
		for (size_t i = 0; i < count; i++) {
			if (items[i].done)
				continue;
			if (rootd.count)
				diags_add(&items[i].diags, DIAG_ERROR, names[i], ".",
					  "%s", rootd.items[0].message);
			else
				gather_fail_diag(&items[i].diags, names[i], saved,
						 "cannot gather");
			items[i].done = true;
		}
		errno = saved;
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		if (items[i].done)
			continue;
		if (gather_prepare(p, names[i], &roots, &owners[i],
				   &items[i].diags) < 0)
			items[i].done = true;
		else
			pending[i] = true;
	}
	for (size_t i = 0; i < count; i++) {
		struct gather_item **slot;
		size_t n = 0;

		if (!pending[i])
			continue;
		run = gather_run_new(p);
		if (!run)
			goto out_roots;
		run->copy_kernel = copy_kernel;
		run->keep_fds = keep_fds;
		run->roots.rootfd = fcntl(roots.rootfd, F_DUPFD_CLOEXEC, 3);
		run->roots.datafd = roots.datafd < 0 ? -1 :
				    fcntl(roots.datafd, F_DUPFD_CLOEXEC, 3);
		run->roots.data_err = roots.data_err;
		run->roots.statefd = roots.statefd < 0 ? -1 :
				     fcntl(roots.statefd, F_DUPFD_CLOEXEC, 3);
		run->roots.root = strdup(roots.root);
		run->roots.data = strdup(roots.data);
		run->roots.state = roots.state ? strdup(roots.state) : NULL;
		if (run->roots.rootfd < 0 ||
		    (roots.datafd >= 0 && run->roots.datafd < 0) ||
		    (roots.statefd >= 0 && run->roots.statefd < 0) ||
		    !run->roots.root || !run->roots.data ||
		    (roots.state && !run->roots.state) ||
		    gather_owner_for(owners[i], &run->owner) < 0)
			goto out_roots;
		for (size_t j = i; j < count; j++)
			if (pending[j] && owners[j] == owners[i] &&
			    gather_run_add(run, names[j]) < 0)
				goto out_roots;
		slot = calloc(run->count, sizeof(*slot));
		struct gather_item *these = calloc(run->count, sizeof(*these));

		if (!slot || !these) {
			free(slot);
			free(these);
			goto out_roots;
		}
		for (size_t j = i; j < count; j++)
			if (pending[j] && owners[j] == owners[i]) {
				slot[n] = &items[j];
				vm_files_init(&these[n].files);
				diags_init(&these[n].diags);
				pending[j] = false;
				n++;
			}
		if (gather_run_start(run) < 0) {
			saved = errno;
			for (size_t k = 0; k < n; k++)
				gather_fail_diag(&these[k].diags, run->names[k],
						 saved, "cannot start the gatherer");
		} else {
			gather_run_wait(run, these);
		}
		/* Each VM's own diagnostics after any the parent had. */
		for (size_t k = 0; k < n; k++) {
			if (diags_append(&slot[k]->diags, &these[k].diags) < 0)
				gather_fail_diag(&slot[k]->diags, run->names[k],
						 ENOMEM, "gathering");
			slot[k]->files = these[k].files;
			slot[k]->valid = these[k].valid &&
					 !slot[k]->diags.errors;
			if (!slot[k]->valid)
				vm_files_release(&slot[k]->files);
			slot[k]->done = true;
		}
		free(slot);
		free(these);
		gather_run_free(run);
		run = NULL;
	}
	r = 0;
out_roots:
	saved = errno;
	gather_run_free(run);
	gather_roots_close(&roots);
	errno = saved;
out:
	free(owners);
	free(pending);
	diags_free(&rootd);
	return r;
}

/* VMs gathered so far, by name: the provider graph. */
struct gather_set {
	char **names;
	struct gather_item *items;
	bool *requested;
	int *cycle;          /* -1 not searched, 0 none, 1 found */
	size_t *own_errors;  /* errors before provider validity */
	size_t count;
	size_t cap;
};

static ssize_t gather_set_find(const struct gather_set *s, const char *name)
{
	for (size_t i = 0; i < s->count; i++)
		if (!strcmp(s->names[i], name))
			return (ssize_t)i;
	return -1;
}

static int gather_set_add(struct gather_set *s, const char *name,
			  bool requested)
{
	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		char **names = realloc(s->names, cap * sizeof(*names));

		if (!names)
			return -1;
		s->names = names;
		struct gather_item *items = realloc(s->items, cap * sizeof(*items));

		if (!items)
			return -1;
		s->items = items;
		bool *req = realloc(s->requested, cap * sizeof(*req));

		if (!req)
			return -1;
		s->requested = req;
		int *cyc = realloc(s->cycle, cap * sizeof(*cyc));

		if (!cyc)
			return -1;
		s->cycle = cyc;
		size_t *own = realloc(s->own_errors, cap * sizeof(*own));

		if (!own)
			return -1;
		s->own_errors = own;
		s->cap = cap;
	}
	s->names[s->count] = strdup(name);
	if (!s->names[s->count])
		return -1;
	memset(&s->items[s->count], 0, sizeof(s->items[0]));
	vm_files_init(&s->items[s->count].files);
	diags_init(&s->items[s->count].diags);
	s->requested[s->count] = requested;
	s->cycle[s->count] = -1;
	s->own_errors[s->count] = 0;
	s->count++;
	return 0;
}

static void gather_set_free(struct gather_set *s)
{
	for (size_t i = 0; i < s->count; i++) {
		free(s->names[i]);
		vm_files_release(&s->items[i].files);
		diags_free(&s->items[i].diags);
	}
	free(s->names);
	free(s->items);
	free(s->requested);
	free(s->cycle);
	free(s->own_errors);
	memset(s, 0, sizeof(*s));
}

/* The providers of a valid VM of the set (a copy); none for the others. */
static int gather_set_providers(void *arg, const char *vm, char ***names,
				size_t *count)
{
	const struct gather_set *s = arg;
	ssize_t i = gather_set_find(s, vm);
	const struct vm_config *cfg;

	*names = NULL;
	*count = 0;
	if (i < 0 || !s->items[i].valid)
		return 0;
	cfg = s->items[i].files.cfg;
	*names = calloc(cfg->provider_count + 1, sizeof(char *));
	if (!*names)
		return -1;
	for (size_t k = 0; k < cfg->provider_count; k++) {
		(*names)[k] = strdup(cfg->providers[k]);
		if (!(*names)[k]) {
			vmconfig_list_free(*names, k);
			*names = NULL;
			return -1;
		}
	}
	*count = cfg->provider_count;
	return 0;
}

/* Gather, as their own owners, the providers reachable from the set's
 * valid VMs, until the graph is whole (at most VMCONFIG_GRAPH_MAX VMs).
 * Their kernels are not copied: only their validity counts. */
static int gather_closure(const struct gather_policy *p, struct gather_set *s,
			  size_t from)
{
	while (from < s->count) {
		size_t before = s->count;

		for (size_t i = from; i < before; i++) {
			const struct vm_config *cfg = s->items[i].files.cfg;

			if (!s->items[i].valid)
				continue;
			for (size_t k = 0; k < cfg->provider_count; k++)
				if (gather_set_find(s, cfg->providers[k]) < 0 &&
				    s->count < VMCONFIG_GRAPH_MAX &&
				    gather_set_add(s, cfg->providers[k], false) < 0)
					return -1;
		}
		if (s->count > before &&
		    gather_items(p, s->names + before, s->count - before,
				 s->items + before, false, false) < 0 &&
		    errno == ENOMEM)
			return -1;
		from = before;
	}
	return 0;
}

/* Cycles, then providers' validity, as the loader judges them (one level
 * deep: a provider counts with its own errors and cycle). */
static int gather_graph(struct gather_set *s)
{
	for (size_t i = 0; i < s->count; i++) {
		if (s->items[i].valid) {
			s->cycle[i] = vmconfig_find_cycle(s->names[i],
							  gather_set_providers, s,
							  &s->items[i].diags);
			if (s->cycle[i] < 0)
				return -1;
		}
		s->own_errors[i] = s->items[i].diags.errors;
	}
	for (size_t i = 0; i < s->count; i++) {
		const struct vm_config *cfg = s->items[i].files.cfg;

		if (!s->requested[i] || !s->items[i].valid || s->cycle[i] > 0)
			continue;
		for (size_t k = 0; k < cfg->provider_count; k++) {
			ssize_t j = gather_set_find(s, cfg->providers[k]);

			if (j < 0 || s->own_errors[j] == 0)
				continue;
			if (vmconfig_diag_bad_provider(&s->items[i].diags,
						       s->names[i],
						       cfg->providers[k],
						       s->own_errors[j]) < 0)
				return -1;
		}
	}
	for (size_t i = 0; i < s->count; i++)
		if (s->items[i].valid && s->items[i].diags.errors) {
			s->items[i].valid = false;
			vm_files_release(&s->items[i].files);
		}
	return 0;
}

/* Gather the requested names (first in s) and their providers; only the
 * requested ones keep their fds, and only with keep_fds. */
static int gather_set_run(const struct gather_policy *p, struct gather_set *s,
			  bool copy_kernel, bool keep_fds)
{
	size_t requested = s->count;

	if (gather_items(p, s->names, requested, s->items, copy_kernel,
			 keep_fds) < 0 && errno == ENOMEM)
		return -1;
	if (gather_closure(p, s, 0) < 0 || gather_graph(s) < 0)
		return -1;
	return 0;
}

int gather_load(const struct gather_policy *p, const char *name,
		struct vm_files *files, struct diags *diags)
{
	struct gather_set s = { 0 };
	int r = -1, saved = EINVAL;

	vm_files_init(files);
	if (gather_set_add(&s, name, true) < 0 ||
	    gather_set_run(p, &s, !p->check_only, true) < 0) {
		saved = ENOMEM;
		gather_fail_diag(diags, name, saved, "gathering");
		goto out;
	}
	if (diags_append(diags, &s.items[0].diags) < 0) {
		saved = ENOMEM;
		goto out;
	}
	if (s.items[0].valid) {
		*files = s.items[0].files;
		vm_files_init(&s.items[0].files);
		r = 0;
	}
out:
	gather_set_free(&s);
	errno = saved;
	return r;
}

int gather_check(const struct gather_policy *p, char *const *names,
		 size_t count, struct gather_result *results)
{
	struct gather_set s = { 0 };
	int r = -1;

	for (size_t i = 0; i < count; i++)
		if (gather_set_add(&s, names[i], true) < 0)
			goto out;
	if (gather_set_run(p, &s, false, false) < 0)
		goto out;
	for (size_t i = 0; i < count; i++) {
		results[i].valid = s.items[i].valid;
		results[i].diags = s.items[i].diags;
		diags_init(&s.items[i].diags);
		if (s.items[i].valid) {
			results[i].cfg = s.items[i].files.cfg;
			s.items[i].files.cfg = NULL;
		}
	}
	r = 0;
out:
	gather_set_free(&s);
	if (r < 0)
		errno = ENOMEM;
	return r;
}

void gather_result_free(struct gather_result *r)
{
	vmconfig_free(r->cfg);
	diags_free(&r->diags);
	r->cfg = NULL;
	r->valid = false;
}

/* --- the asynchronous pair --- */

int gather_spawn(const struct gather_policy *p, const char *name,
		 struct gather_child *child, struct diags *diags)
{
	struct gather_run *run;
	uid_t owner;
	int saved;

	memset(child, 0, sizeof(*child));
	child->pidfd = child->sock = -1;
	run = gather_run_new(p);
	if (!run)
		return -1;
	run->copy_kernel = !p->check_only;
	run->keep_fds = true;
	if (gather_roots_open(p, name, &run->roots, diags) < 0) {
		saved = errno;
		gather_run_free(run);
		errno = saved;
		return -1;
	}
	if (gather_prepare(p, name, &run->roots, &owner, diags) < 0) {
		saved = errno;
		gather_run_free(run);
		if (saved == EINVAL)
			return GATHER_INVALID;
		errno = saved;
		return -1;
	}
	if (gather_owner_for(owner, &run->owner) < 0 ||
	    gather_run_add(run, name) < 0 || gather_run_start(run) < 0) {
		saved = errno;
		gather_run_free(run);
		errno = saved;
		return -1;
	}
	child->pid = run->pid;
	child->pidfd = run->pidfd;
	child->sock = run->sock;
	child->run = run;
	return GATHER_PENDING;
}

int gather_collect(struct gather_child *child, struct vm_files *files,
		   struct diags *diags)
{
	struct gather_run *run = child->run;
	struct gather_item it;
	int r, saved;

	memset(&it, 0, sizeof(it));
	vm_files_init(&it.files);
	diags_init(&it.diags);
	vm_files_init(files);
	r = gather_run_step(run, &it);
	if (r == 0)
		return GATHER_PENDING;
	saved = errno;
	if (r < 0) {
		gather_run_reap(run);
		gather_run_failed(run, &it, saved);
	}
	if (diags_append(diags, &it.diags) < 0 && r > 0) {
		r = -1;
		saved = ENOMEM;
	}
	diags_free(&it.diags);
	if (r > 0 && it.valid)
		*files = it.files;
	else
		vm_files_release(&it.files);
	gather_cancel(child);
	if (r < 0) {
		errno = saved;
		return -1;
	}
	return files->cfg ? GATHER_VALID : GATHER_INVALID;
}

void gather_timed_out(struct gather_child *child, struct diags *diags)
{
	struct gather_item it;

	if (!child->run)
		return;
	memset(&it, 0, sizeof(it));
	vm_files_init(&it.files);
	diags_init(&it.diags);
	gather_run_reap(child->run);
	gather_run_failed(child->run, &it, ETIMEDOUT);
	diags_append(diags, &it.diags);
	diags_free(&it.diags);
	gather_cancel(child);
}

void gather_cancel(struct gather_child *child)
{
	if (!child->run)
		return;
	gather_run_reap(child->run);
	gather_run_free(child->run);
	memset(child, 0, sizeof(*child));
	child->pidfd = child->sock = -1;
}
