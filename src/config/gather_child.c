/* The gatherer's child: everything that runs with the identity of a VM
 * directory's owner (gather.h, gather_int.h). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/privdrop.h"
#include "common/sealcopy.h"
#include "config/gather_int.h"

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
	char *target;
	int pfd, fd = -1, err;

	pfd = openat(c->vmfd, rel, O_PATH | O_CLOEXEC | dir);
	if (pfd < 0) {
		diags_add(c->d, DIAG_ERROR, c->name, rel, "cannot open: %s%s",
			  strerror(errno), gather_as_owner(c, errno));
		return -1;
	}
	if (gather_statx(pfd, &st) < 0) {
		c->err = errno;
		goto out;
	}
	if (!gather_type_ok(c->run->policy, use, &st, c->name, rel, pfd, c->d))
		goto out;
	fd = gather_reopen(pfd, O_RDONLY | O_NONBLOCK | O_NOCTTY | dir);
	if (fd < 0) {
		err = errno;
		target = gather_fd_path(pfd);
		diags_add(c->d, DIAG_ERROR, c->name, rel, "cannot open %s\"%s\": %s%s",
			  use == GATHER_SHARE ? "the shared directory " : "",
			  target ? target : "?", strerror(err),
			  gather_as_owner(c, err));
		free(target);
		goto out;
	}
	if (gather_statx(fd, &again) < 0 || again.dev != st.dev ||
	    again.ino != st.ino) {
		diags_add(c->d, DIAG_ERROR, c->name, rel, "changed while being checked");
		gather_close(&fd);
	}
out:
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

/* Whoever may write a directory of the VM chooses, with links, what the
 * VM opens with the owner's permissions: only the owner (or root) may.
 * rel is "." or a directory below the VM's (links followed, as a load
 * does).  false when reported. */
static bool gather_dir_guarded(struct gather_ctx *c, const char *rel)
{
	uid_t owner = c->run->owner.dir_uid;
	struct stat st;

	if (fstatat(c->vmfd, rel, &st, 0) < 0) {
		c->err = errno;
		return false;
	}
	if (st.st_uid != owner && st.st_uid != 0) {
		diags_add(c->d, DIAG_ERROR, c->name, rel, "owned by uid %u, not by the VM directory's owner (uid %u) or root: its owner would choose what the VM opens",
			  (unsigned int)st.st_uid, (unsigned int)owner);
		return false;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		diags_add(c->d, DIAG_ERROR, c->name, rel, "writable by others than its owner (mode %04o): whoever may write it would choose what the VM opens with the owner's permissions (chmod go-w)",
			  (unsigned int)(st.st_mode & 07777));
		return false;
	}
	return true;
}

/* Every file of a loaded VM into slots (kernel, disks, shares; -1 for one
 * that did not open, reported), each from a directory only the owner may
 * change.  Returns the slot count. */
static size_t gather_open_all(struct gather_ctx *c, const struct vm_config *cfg,
			      int *slots)
{
	char rel[VMCONFIG_TAG_MAX + 32];
	bool top = gather_dir_guarded(c, "."), blk = true, shares = true;
	size_t n = 0;

	for (size_t i = 0; i < cfg->disk_count; i++)
		if (!strncmp(cfg->disks[i].relpath, "blk/", 4)) {
			blk = top && gather_dir_guarded(c, "blk");
			break;
		}
	if (cfg->share_count)
		shares = top && gather_dir_guarded(c, "shared-dirs");
	slots[n++] = top ? gather_kernel(c) : -1;
	for (size_t i = 0; i < cfg->disk_count; i++)
		slots[n++] = top && (blk || !strcmp(cfg->disks[i].relpath, "rootfs.ext4")) ?
			     gather_open(c, GATHER_DISK, cfg->disks[i].relpath) : -1;
	for (size_t i = 0; i < cfg->share_count; i++) {
		snprintf(rel, sizeof(rel), "shared-dirs/%s", cfg->shares[i].tag);
		if (!shares || !gather_dir_guarded(c, rel)) {
			slots[n++] = -1;
			continue;
		}
		strcat(rel, "/dir");
		slots[n++] = gather_open(c, GATHER_SHARE, rel);
	}
	return n;
}

int gather_send(int sock, const struct vmwire_out *o, const int *fds,
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
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
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

void gather_child(const struct gather_run *run, int sock)
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

