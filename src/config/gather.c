/* The gatherer: a child with the VM directory owner's identity opens what
 * a VM uses; the parent checks the result as hostile input.  See gather.h.
 *
 * Child -> parent, over a SOCK_STREAM socketpair, one frame per VM:
 *   u32 length, then: u32 GATHER_MAGIC, str name, u8 has_config,
 *   [config, u64 mask], diags               (vmwire.h encodings)
 * When the loader accepted the directory the config comes with the fds
 * that opened: bit k of mask says slot k (kernel, then the disks, then the
 * shares) is there, and those fds go in slot order as SCM_RIGHTS on the
 * frame's first bytes.  The parent checks what came even when the child
 * found problems, so that every problem is reported at once.  The parent answers each frame
 * with one byte, and the child never has more than GATHER_WINDOW frames
 * unanswered: fds in flight stay few.
 */
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/privdrop.h"
#include "common/sealcopy.h"
#include "config/confine.h"
#include "config/vmwire.h"

#define GATHER_MAGIC 0x31544147u  /* "GAT1" */
#define GATHER_WINDOW 16          /* frames the child may send unanswered */
#define GATHER_FDS_MAX (1 + VMCONFIG_DISKS_MAX + VMCONFIG_SHARES_MAX)
#define GATHER_FRAME_MAX (VMWIRE_MAX + 4)


/* What a file is for: which types it may be. */
enum gather_use { GATHER_KERNEL, GATHER_DISK, GATHER_SHARE };

/* The parent's own view of the roots, opened as the caller. */
struct gather_roots {
	int rootfd;         /* the config root (the child uses it too) */
	char *root;         /* its resolved path */
	int datafd;         /* the data root, O_PATH; -1: data_err */
	char *data;         /* its resolved path (as given if it has none) */
	int data_err;
	int statefd;        /* vmhostd's state dir, O_PATH; -1: none */
	char *state;
};

/* The identity a child takes. */
struct gather_owner {
	uid_t dir_uid;      /* the VM directory's owner, as found */
	bool switch_ids;    /* root, gathering for someone else */
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t group_count;
};

/* One child: a run of VMs of one owner. */
struct gather_run {
	const struct gather_policy *policy;
	struct gather_roots roots;
	struct gather_owner owner;
	bool copy_kernel;
	bool keep_fds;        /* false: check, then close (vm check) */
	char **names;
	size_t count;
	size_t next;          /* the frame expected next is names[next] */
	unsigned char *buf;   /* bytes received, not yet a whole frame */
	size_t len;
	int fds[GATHER_WINDOW * GATHER_FDS_MAX]; /* received, not yet used */
	size_t nfds;
	bool eof;
	pid_t pid;
	int pidfd;
	int sock;
};

/* One VM's outcome in the parent. */
struct gather_item {
	struct vm_files files;
	struct diags diags;
	bool done;
	bool valid;
};

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

static unsigned int gather_timeout(const struct gather_policy *p)
{
	return p->timeout_ms ? p->timeout_ms : GATHER_TIMEOUT_MS;
}

/* --- small helpers --- */

static void gather_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Report a system error (ENOMEM...) on name's directory. */
static void gather_fail_diag(struct diags *d, const char *name, int err,
			     const char *what)
{
	diags_add(d, DIAG_ERROR, name, ".", "%s: %s", what, strerror(err));
}

/* Where the magic link of fd points, escaped for a message. */
static char *gather_fd_path(int fd)
{
	char link[32], target[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target));
	if (n < 0)
		return strdup("?");
	return vmconfig_escape(target, (size_t)n, 1024);
}

struct gather_stat {
	mode_t mode;
	dev_t rdev;
	dev_t dev;
	ino_t ino;
	off_t size;
};

/* statx without asking the filesystem again: type, ids and size of an open
 * file are what they are (a FUSE server cannot stall us here). */
static int gather_statx(int fd, struct gather_stat *st)
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

/* Whether a file of this type may serve as use; if not, say why on rel.
 * One rule for the child (which skips such a file before opening it) and
 * the parent (which refuses an fd the child should not have sent). */
static bool gather_type_ok(const struct gather_policy *p, enum gather_use use,
			   const struct gather_stat *st, const char *name,
			   const char *rel, const char *target,
			   struct diags *d)
{
	switch (use) {
	case GATHER_KERNEL:
		if (!S_ISREG(st->mode)) {
			diags_add(d, DIAG_ERROR, name, rel, "\"%s\" is %s; must be a regular file holding an uncompressed Linux kernel (ELF)",
				  target, vmconfig_ftype(st->mode));
			return false;
		}
		if (st->size > VMFILES_KERNEL_MAX) {
			diags_add(d, DIAG_ERROR, name, rel, "\"%s\" is %lld bytes; a kernel is at most %lld bytes",
				  target, (long long)st->size,
				  (long long)VMFILES_KERNEL_MAX);
			return false;
		}
		return true;
	case GATHER_DISK:
		if (S_ISREG(st->mode))
			return true;
		if (S_ISBLK(st->mode)) {
			if (gather_block_allowed(p, st->rdev))
				return true;
			diags_add(d, DIAG_ERROR, name, rel, "\"%s\" is a block device (%u:%u); block devices are refused unless the administrator allows each one: vmhostd --allow-block-device %s (vm check takes the same option)",
				  target, major(st->rdev), minor(st->rdev),
				  target);
			return false;
		}
		diags_add(d, DIAG_ERROR, name, rel, "\"%s\" is %s; a disk image must be a regular file or a block device",
			  target, vmconfig_ftype(st->mode));
		return false;
	case GATHER_SHARE:
		if (S_ISDIR(st->mode))
			return true;
		diags_add(d, DIAG_ERROR, name, rel, "target \"%s\" is %s, not a directory",
			  target, vmconfig_ftype(st->mode));
		return false;
	}
	return false;
}

/* --- the child --- */

/* The child's view while it runs. */
struct gather_ctx {
	const struct gather_run *run;
	const char *name;
	struct diags *d;
	int vmfd;
	int err;     /* a system error (ENOMEM): the VM cannot be judged */
};

/* EACCES and EPERM are about whose reach this is: say whose. */
static const char *gather_as_owner(const struct gather_ctx *c, int err)
{
	return c->run->owner.switch_ids && (err == EACCES || err == EPERM) ?
	       " (as the VM directory's owner)" : "";
}

/* Open what fd refers to again, through its magic link: the permission
 * check is the caller's, as for a path. */
static int gather_reopen(int fd, int flags)
{
	char proc[32];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return open(proc, flags | O_CLOEXEC);
}

/* Open rel below the VM directory as the owner: O_PATH with links
 * followed, the type checked on that, then the real open through
 * /proc/self/fd (the owner's permissions) and a check that it is the same
 * file.  -1 when reported. */
static int gather_open(struct gather_ctx *c, enum gather_use use,
		       const char *rel)
{
	int dir = use == GATHER_SHARE ? O_DIRECTORY : 0;
	struct gather_stat st, again;
	char *target = NULL;
	int pfd, fd = -1;

	pfd = openat(c->vmfd, rel, O_PATH | O_CLOEXEC | dir);
	if (pfd < 0) {
		diags_add(c->d, DIAG_ERROR, c->name, rel, "cannot open: %s%s",
			  strerror(errno), gather_as_owner(c, errno));
		return -1;
	}
	target = gather_fd_path(pfd);
	if (!target || gather_statx(pfd, &st) < 0) {
		c->err = target ? errno : ENOMEM;
		goto out;
	}
	if (!gather_type_ok(c->run->policy, use, &st, c->name, rel, target,
			    c->d))
		goto out;
	fd = gather_reopen(pfd, O_RDONLY | O_NONBLOCK | O_NOCTTY | dir);
	if (fd < 0) {
		diags_add(c->d, DIAG_ERROR, c->name, rel, "cannot open %s\"%s\": %s%s",
			  use == GATHER_SHARE ? "the shared directory " : "",
			  target, strerror(errno), gather_as_owner(c, errno));
		goto out;
	}
	if (gather_statx(fd, &again) < 0 || again.dev != st.dev ||
	    again.ino != st.ino) {
		diags_add(c->d, DIAG_ERROR, c->name, rel, "changed while being checked");
		gather_close(&fd);
	}
out:
	free(target);
	close(pfd);
	return fd;
}

/* The kernel: opened as above, its magic checked again on this very fd
 * (the loader read it through another open), and copied into a sealed
 * memfd unless only checking. */
static int gather_kernel(struct gather_ctx *c)
{
	unsigned char magic[4];
	int fd = gather_open(c, GATHER_KERNEL, "vmlinux"), copy;

	if (fd < 0)
		return -1;
	if (pread(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
	    memcmp(magic, "\177ELF", 4)) {
		diags_add(c->d, DIAG_ERROR, c->name, "vmlinux",
			  "changed while being checked: no longer an ELF image");
		close(fd);
		return -1;
	}
	if (!c->run->copy_kernel)
		return fd;
	copy = sealcopy(fd, "vmlinux", VMFILES_KERNEL_MAX);
	close(fd);
	/* Read-only from here on, like every other fd handed over. */
	fd = copy < 0 ? -1 : gather_reopen(copy, O_RDONLY);
	if (fd < 0)
		diags_add(c->d, DIAG_ERROR, c->name, "vmlinux", "copying it: %s",
			  strerror(errno));
	if (copy >= 0)
		close(copy);
	return fd;
}

/* Every file of a loaded VM into slots (kernel, disks, shares; -1 for one
 * that did not open, reported).  Returns the slot count. */
static size_t gather_open_all(struct gather_ctx *c, const struct vm_config *cfg,
			      int *slots)
{
	char rel[VMCONFIG_TAG_MAX + 32];
	size_t n = 0;

	slots[n++] = gather_kernel(c);
	for (size_t i = 0; i < cfg->disk_count; i++)
		slots[n++] = gather_open(c, GATHER_DISK, cfg->disks[i].relpath);
	for (size_t i = 0; i < cfg->share_count; i++) {
		snprintf(rel, sizeof(rel), "shared-dirs/%s/dir", cfg->shares[i].tag);
		slots[n++] = gather_open(c, GATHER_SHARE, rel);
	}
	return n;
}

/* One frame, blocking; -1 when the parent is gone. */
static int gather_send(int sock, const struct vmwire_out *o, const int *fds,
		       size_t nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * GATHER_FDS_MAX)];
	} ctl;
	unsigned char head[4];
	struct iovec iov[2] = {
		{ head, sizeof(head) }, { o->buf, o->len },
	};
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	size_t total = sizeof(head) + o->len, sent = 0;
	ssize_t n;

	for (int i = 0; i < 4; i++)
		head[i] = (unsigned char)(o->len >> (8 * i));
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		ctl.h.cmsg_level = SOL_SOCKET;
		ctl.h.cmsg_type = SCM_RIGHTS;
		ctl.h.cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(&ctl.h), fds, sizeof(int) * nfds);
	}
	while (sent < total) {
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		sent += (size_t)n;
		/* The fds went with the first bytes; the rest goes plain. */
		msg.msg_control = NULL;
		msg.msg_controllen = 0;
		while (n > 0 && msg.msg_iovlen) {
			size_t step = (size_t)n < msg.msg_iov->iov_len ?
				      (size_t)n : msg.msg_iov->iov_len;

			msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + step;
			msg.msg_iov->iov_len -= step;
			n -= (ssize_t)step;
			if (!msg.msg_iov->iov_len) {
				msg.msg_iov++;
				msg.msg_iovlen--;
			}
		}
	}
	return 0;
}

/* Gather one VM in the child and send its frame. */
static int gather_child_vm(const struct gather_run *run, const char *name,
			   int sock)
{
	struct vmconfig_roots roots = { run->roots.root, run->roots.data };
	struct gather_ctx c = { .run = run, .name = name, .vmfd = -1 };
	int slots[GATHER_FDS_MAX], fds[GATHER_FDS_MAX], r;
	size_t nslots = 0, nfds = 0;
	struct vm_config *cfg = NULL;
	struct vmwire_out o;
	uint64_t mask = 0;
	struct stat st;
	struct diags d;

	diags_init(&d);
	c.d = &d;
	c.vmfd = vmconfig_open_vm(run->roots.rootfd, run->roots.root, name, &d);
	if (c.vmfd < 0)
		;	/* reported */
	else if (fstat(c.vmfd, &st) < 0)
		c.err = errno;
	else if (st.st_uid != run->owner.dir_uid)
		/* The parent chose whose identity by the owner it saw. */
		diags_add(&d, DIAG_ERROR, name, ".", "changed while being checked (now owned by uid %u, not %u)",
			  (unsigned int)st.st_uid, (unsigned int)run->owner.dir_uid);
	else if (vmconfig_load_at(&roots, run->roots.rootfd, c.vmfd, name,
				  VMCONFIG_LOAD_PROVIDER_NAMES |
				  (run->owner.switch_ids ? VMCONFIG_LOAD_AS_OWNER : 0),
				  &cfg, &d) == 0)
		nslots = gather_open_all(&c, cfg, slots);
	if (c.err) {
		gather_fail_diag(&d, name, c.err, "gathering");
		vmconfig_free(cfg);
		cfg = NULL;
	}
	for (size_t k = 0; cfg && k < nslots; k++)
		if (slots[k] >= 0) {
			mask |= (uint64_t)1 << k;
			fds[nfds++] = slots[k];
		}
	vmwire_out_init(&o);
	vmwire_put_u32(&o, GATHER_MAGIC);
	vmwire_put_str(&o, name);
	vmwire_put_u8(&o, cfg != NULL);
	if (cfg) {
		vmwire_put_config(&o, cfg);
		vmwire_put_u64(&o, mask);
	}
	vmwire_put_diags(&o, &d);
	r = o.err ? -1 : gather_send(sock, &o, fds, nfds);
	for (size_t k = 0; k < nslots; k++)
		if (slots[k] >= 0)
			close(slots[k]);
	vmwire_out_free(&o);
	vmconfig_free(cfg);
	diags_free(&d);
	if (c.vmfd >= 0)
		close(c.vmfd);
	return r;
}

/* Nothing of the parent's but these two fds stays open here; 0-2 are
 * /dev/null. */
static int gather_child_fds(int a, int b)
{
	int lo = a < b ? a : b, hi = a < b ? b : a, null;

	if (lo < 3) {
		errno = EBADF;
		return -1;
	}
	null = open("/dev/null", O_RDWR);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
	    dup2(null, 2) < 0)
		return -1;
	if (null > 2)
		close(null);
	if ((lo > 3 && syscall(SYS_close_range, 3u, (unsigned int)lo - 1, 0u) < 0) ||
	    (hi > lo + 1 && syscall(SYS_close_range, (unsigned int)lo + 1,
				    (unsigned int)hi - 1, 0u) < 0) ||
	    syscall(SYS_close_range, (unsigned int)hi + 1, ~0u, 0u) < 0)
		return -1;
	return 0;
}

static int gather_become(const struct gather_owner *o)
{
	if (o->switch_ids &&
	    privdrop_identity(o->uid, o->gid, o->groups, o->group_count) < 0)
		return -1;
	/* The owner may signal this process (same uid) but not look inside
	 * it: it still holds the config root opened by root. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return 0;
}

static __attribute__((noreturn)) void gather_child(const struct gather_run *run,
						   int sock)
{
	size_t unanswered = 0;
	struct diags d;
	char ack;
	int err = 0;

	if (gather_child_fds(sock, run->roots.rootfd) < 0 ||
	    gather_become(&run->owner) < 0)
		err = errno;
	for (size_t i = 0; i < run->count; i++) {
		if (unanswered == GATHER_WINDOW) {
			if (read(sock, &ack, 1) != 1)
				_exit(1);
			unanswered--;
		}
		if (err) {
			/* Say so for every VM: each gets its verdict. */
			struct vmwire_out o;

			diags_init(&d);
			diags_add(&d, DIAG_ERROR, run->names[i], ".",
				  "cannot take the identity of the VM directory's owner (uid %u): %s",
				  (unsigned int)run->owner.uid, strerror(err));
			vmwire_out_init(&o);
			vmwire_put_u32(&o, GATHER_MAGIC);
			vmwire_put_str(&o, run->names[i]);
			vmwire_put_u8(&o, 0);
			vmwire_put_diags(&o, &d);
			if (o.err || gather_send(sock, &o, NULL, 0) < 0)
				_exit(1);
			vmwire_out_free(&o);
			diags_free(&d);
		} else if (gather_child_vm(run, run->names[i], sock) < 0) {
			_exit(1);
		}
		unanswered++;
	}
	_exit(0);
}

/* --- the parent: roots, owner --- */

static void gather_roots_close(struct gather_roots *r)
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

/* The roots as the caller sees them; a problem is reported on name. */
static int gather_roots_open(const struct gather_policy *p, const char *name,
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

static void gather_run_free(struct gather_run *run)
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

static struct gather_run *gather_run_new(const struct gather_policy *p)
{
	struct gather_run *run = calloc(1, sizeof(*run));

	if (!run)
		return NULL;
	run->policy = p;
	run->sock = run->pidfd = -1;
	run->roots.rootfd = run->roots.datafd = run->roots.statefd = -1;
	return run;
}

static int gather_run_add(struct gather_run *run, const char *name)
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
	run->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (run->pidfd < 0 || fcntl(run->sock, F_SETFL, O_NONBLOCK) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		run->pid = 0;
		return -1;
	}
	return 0;
}

/* Kill (a no-op once it exited) and reap. */
static void gather_run_reap(struct gather_run *run)
{
	if (run->pid <= 0)
		return;
	kill(run->pid, SIGKILL);
	while (waitpid(run->pid, NULL, 0) < 0 && errno == EINTR)
		;
	run->pid = 0;
}

/* Read what the socket has, with its fds.  0, or -1 with errno (EAGAIN:
 * nothing now; EBADMSG: too much, or fds that do not fit). */
static int gather_rx(struct gather_run *run)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * GATHER_FDS_MAX)];
	} ctl;
	struct msghdr msg = { 0 };
	struct iovec iov;
	struct cmsghdr *cm;
	size_t got;
	ssize_t n;
	int bad = 0;

	if (!run->buf && !(run->buf = malloc(GATHER_FRAME_MAX)))
		return -1;
	if (run->len == GATHER_FRAME_MAX) {
		errno = EBADMSG;
		return -1;
	}
	iov.iov_base = run->buf + run->len;
	iov.iov_len = GATHER_FRAME_MAX - run->len;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	n = recvmsg(run->sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	/* A child that exits with answers unread resets the connection:
	 * an end like any other. */
	if (n < 0 && errno == ECONNRESET)
		n = 0;
	if (n < 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
			bad = 1;
			continue;
		}
		got = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < got; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (run->nfds < sizeof(run->fds) / sizeof(run->fds[0]))
				run->fds[run->nfds++] = fd;
			else {
				close(fd);
				bad = 1;
			}
		}
	}
	if (msg.msg_flags & MSG_CTRUNC)
		bad = 1;
	if (n == 0)
		run->eof = true;
	run->len += (size_t)n;
	if (bad) {
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

/* Take the first n received fds. */
static int gather_take_fds(struct gather_run *run, int *out, size_t n)
{
	if (n > run->nfds) {
		errno = EBADMSG;
		return -1;
	}
	memcpy(out, run->fds, n * sizeof(int));
	memmove(run->fds, run->fds + n, (run->nfds - n) * sizeof(int));
	run->nfds -= n;
	return 0;
}

/* The access mode of an fd from the child must be a plain read. */
static bool gather_readonly(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_ACCMODE) == O_RDONLY && !(fl & O_PATH);
}

/* Check one received fd for use; the kernel must also be a sealed copy
 * unless only checking.  false when reported. */
static bool gather_verify_fd(const struct gather_run *run, enum gather_use use,
			     int fd, const char *name, const char *rel,
			     struct diags *d)
{
	struct gather_stat st;
	char *target = gather_fd_path(fd);
	bool ok = false;

	if (!target || gather_statx(fd, &st) < 0 || !gather_readonly(fd)) {
		diags_add(d, DIAG_ERROR, name, rel, "refused: the gatherer handed over an fd that is not open for reading");
		goto out;
	}
	if (!gather_type_ok(run->policy, use, &st, name, rel, target, d))
		goto out;
	if (use == GATHER_KERNEL && run->copy_kernel && !sealcopy_sealed(fd)) {
		diags_add(d, DIAG_ERROR, name, rel, "refused: the gatherer handed over a kernel that is not a sealed copy");
		goto out;
	}
	ok = true;
out:
	free(target);
	return ok;
}

static const char *const gather_protected_names[] = {
	"the config root", "vmhostd's state directory",
};

/* A share must stay inside the data root and clear of the config root and
 * the state directory. */
static bool gather_verify_share(const struct gather_run *run, int fd,
				const struct vm_share *sh, const char *name,
				struct diags *d)
{
	const int protect[2] = { run->roots.rootfd, run->roots.statefd };
	const char *paths[2] = { run->roots.root, run->roots.state };
	enum confine_verdict v;
	char rel[VMCONFIG_TAG_MAX + 32], *q, *qp = NULL;
	size_t which;
	bool ok = false;

	snprintf(rel, sizeof(rel), "shared-dirs/%s/dir", sh->tag);
	q = gather_fd_path(fd);
	if (!q)
		return false;
	if (run->roots.datafd < 0) {
		qp = vmconfig_escape(run->roots.data, strlen(run->roots.data), 1024);
		diags_add(d, DIAG_ERROR, name, rel, "data root \"%s\" cannot be opened: %s",
			  qp ? qp : "?", strerror(run->roots.data_err));
		goto out;
	}
	if (confine_share(fd, run->roots.datafd, protect, 2, &v, &which) < 0) {
		diags_add(d, DIAG_ERROR, name, rel, "cannot tell where \"%s\" lies: %s",
			  q, strerror(errno));
		goto out;
	}
	if (v != CONFINE_OK && v != CONFINE_OUTSIDE)
		qp = vmconfig_escape(paths[which], strlen(paths[which]), 1024);
	switch (v) {
	case CONFINE_OK:
		ok = true;
		break;
	case CONFINE_OUTSIDE:
		qp = vmconfig_escape(run->roots.data, strlen(run->roots.data), 1024);
		diags_add(d, DIAG_ERROR, name, rel, "target \"%s\" is outside the data root \"%s\"",
			  q, qp ? qp : "?");
		break;
	case CONFINE_IS:
		diags_add(d, DIAG_ERROR, name, rel, "target \"%s\" is %s; a guest must not reach it",
			  q, gather_protected_names[which]);
		break;
	case CONFINE_INSIDE:
		diags_add(d, DIAG_ERROR, name, rel, "target \"%s\" is inside %s \"%s\"; a guest must not reach it",
			  q, gather_protected_names[which], qp ? qp : "?");
		break;
	case CONFINE_CONTAINS:
		diags_add(d, DIAG_ERROR, name, rel, "target \"%s\" contains %s \"%s\"; a guest must not reach it",
			  q, gather_protected_names[which], qp ? qp : "?");
		break;
	}
out:
	free(qp);
	free(q);
	return ok;
}

/* Every diagnostic of a frame must be about the VM it is for. */
static bool gather_diags_about(const struct diags *d, const char *name)
{
	char *want = vmconfig_escape(name, strlen(name), 256);
	bool ok = want != NULL;

	for (size_t i = 0; ok && i < d->count; i++)
		ok = !strcmp(d->items[i].vm, want);
	free(want);
	return ok;
}

/* Turn a frame's config and slots (fds, or -1) into item->files, checking
 * what is there; the VM is valid only with every slot and no error at
 * all.  The fds are item's from here on. */
static void gather_accept(struct gather_run *run, struct vm_config *cfg,
			  const int *slots, struct gather_item *it)
{
	const char *name = run->names[run->next];
	struct vm_files *f = &it->files;
	size_t nslots = 1 + cfg->disk_count + cfg->share_count, i;
	bool whole = true;

	vm_files_init(f);
	f->disk_fds = malloc((cfg->disk_count + 1) * sizeof(int));
	f->share_fds = malloc((cfg->share_count + 1) * sizeof(int));
	f->groups = malloc((run->owner.group_count + 1) * sizeof(gid_t));
	if (!f->disk_fds || !f->share_fds || !f->groups) {
		for (i = 0; i < nslots; i++)
			if (slots[i] >= 0)
				close(slots[i]);
		vm_files_release(f);
		vmconfig_free(cfg);
		gather_fail_diag(&it->diags, name, ENOMEM, "gathering");
		return;
	}
	f->cfg = cfg;
	f->owner = run->owner.uid;
	f->group = run->owner.gid;
	if (run->owner.group_count)
		memcpy(f->groups, run->owner.groups,
		       run->owner.group_count * sizeof(gid_t));
	f->group_count = run->owner.group_count;
	f->kernel_fd = slots[0];
	memcpy(f->disk_fds, slots + 1, cfg->disk_count * sizeof(int));
	memcpy(f->share_fds, slots + 1 + cfg->disk_count,
	       cfg->share_count * sizeof(int));
	for (i = 0; i < nslots; i++)
		whole = whole && slots[i] >= 0;
	if (f->kernel_fd >= 0)
		gather_verify_fd(run, GATHER_KERNEL, f->kernel_fd, name,
				 "vmlinux", &it->diags);
	for (i = 0; i < cfg->disk_count; i++)
		if (f->disk_fds[i] >= 0)
			gather_verify_fd(run, GATHER_DISK, f->disk_fds[i], name,
					 cfg->disks[i].relpath, &it->diags);
	for (i = 0; i < cfg->share_count; i++) {
		char rel[VMCONFIG_TAG_MAX + 32];

		snprintf(rel, sizeof(rel), "shared-dirs/%s/dir", cfg->shares[i].tag);
		if (f->share_fds[i] >= 0 &&
		    gather_verify_fd(run, GATHER_SHARE, f->share_fds[i], name,
				     rel, &it->diags))
			gather_verify_share(run, f->share_fds[i], &cfg->shares[i],
					    name, &it->diags);
	}
	if (hostlimits_check(&run->policy->limits, cfg, &it->diags) < 0)
		gather_fail_diag(&it->diags, name, ENOMEM, "gathering");
	it->valid = whole && !it->diags.errors;
	if (!it->valid) {
		vm_files_release(f);
	} else if (!run->keep_fds) {
		/* Only the verdict and the config are wanted: 10,000 VMs
		 * must not hold 20,000 fds. */
		struct vm_config *keep = f->cfg;

		f->cfg = NULL;
		for (i = 0; i < cfg->disk_count; i++)
			gather_close(&f->disk_fds[i]);
		for (i = 0; i < cfg->share_count; i++)
			gather_close(&f->share_fds[i]);
		vm_files_release(f);
		f->cfg = keep;
	}
}

/* Decode and check one whole frame for names[next]. */
static int gather_frame(struct gather_run *run, const unsigned char *p,
			size_t len, struct gather_item *it)
{
	const char *name = run->names[run->next];
	char want_dir[PATH_MAX + VMCONFIG_NAME_MAX + 2];
	int fds[GATHER_FDS_MAX], slots[GATHER_FDS_MAX];
	struct vm_config *cfg = NULL;
	size_t nslots = 0, nfds = 0;
	struct vmwire_in in;
	uint64_t mask = 0;
	uint32_t magic;
	uint8_t has_config;
	char *got = NULL;

	vmwire_in_init(&in, p, len);
	if (vmwire_get_u32(&in, &magic) < 0 || magic != GATHER_MAGIC ||
	    vmwire_get_str(&in, NAME_MAX, &got) < 0 || strcmp(got, name) ||
	    vmwire_get_u8(&in, &has_config) < 0 || has_config > 1)
		goto bad;
	if (has_config) {
		if (vmwire_get_config(&in, &cfg) < 0 ||
		    vmwire_get_u64(&in, &mask) < 0)
			goto bad;
		snprintf(want_dir, sizeof(want_dir), "%s/%s", run->roots.root, name);
		nslots = 1 + cfg->disk_count + cfg->share_count;
		if (strcmp(cfg->name, name) || strcmp(cfg->dir, want_dir) ||
		    (mask >> nslots))
			goto bad;
		for (size_t k = 0; k < nslots; k++)
			nfds += (mask >> k) & 1;
	}
	/* No config means the loader found errors; every missing file was
	 * reported. */
	if (vmwire_get_diags(&in, &it->diags) < 0 || vmwire_get_end(&in) < 0 ||
	    !gather_diags_about(&it->diags, name) ||
	    ((!cfg || nfds < nslots) && !it->diags.errors) ||
	    gather_take_fds(run, fds, nfds) < 0)
		goto bad;
	free(got);
	it->done = true;
	if (cfg) {
		for (size_t k = 0, used = 0; k < nslots; k++)
			slots[k] = (mask >> k) & 1 ? fds[used++] : -1;
		gather_accept(run, cfg, slots, it);
	}
	return 0;
bad:
	free(got);
	vmconfig_free(cfg);
	errno = EBADMSG;
	return -1;
}

/* Handle every whole frame received; each gets an answer byte. */
static int gather_frames(struct gather_run *run, struct gather_item *items)
{
	uint32_t flen;
	size_t used = 0;
	const char ack = 'k';

	while (run->next < run->count && run->len - used >= 4) {
		flen = (uint32_t)run->buf[used] | (uint32_t)run->buf[used + 1] << 8 |
		       (uint32_t)run->buf[used + 2] << 16 |
		       (uint32_t)run->buf[used + 3] << 24;
		if (flen > VMWIRE_MAX) {
			errno = EBADMSG;
			return -1;
		}
		if (run->len - used - 4 < flen)
			break;
		if (gather_frame(run, run->buf + used + 4, flen,
				 &items[run->next]) < 0)
			return -1;
		used += 4 + flen;
		if (++run->next < run->count)
			(void)send(run->sock, &ack, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	memmove(run->buf, run->buf + used, run->len - used);
	run->len -= used;
	/* Bytes or fds past the last frame: not ours to take. */
	if (run->next == run->count && (run->len || run->nfds)) {
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

/* Read and handle what is there.  1 when every frame is in (child reaped),
 * 0 to wait for more, -1 with errno (EBADMSG, EPIPE: the child ended
 * early). */
static int gather_run_step(struct gather_run *run, struct gather_item *items)
{
	for (;;) {
		if (gather_rx(run) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -1;
		}
		if (gather_frames(run, items) < 0)
			return -1;
		if (run->eof)
			break;
	}
	if (run->next == run->count) {
		gather_run_reap(run);
		return 1;
	}
	if (run->eof) {
		errno = EPIPE;
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
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -1;
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

void gather_cancel(struct gather_child *child)
{
	if (!child->run)
		return;
	gather_run_reap(child->run);
	gather_run_free(child->run);
	memset(child, 0, sizeof(*child));
	child->pidfd = child->sock = -1;
}
