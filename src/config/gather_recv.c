/* The gatherer's privileged side reading a child: frames decoded with
 * full validation, every fd checked again, shares confined, host limits
 * applied (gather.h, gather_int.h).  Whatever the child sends is hostile
 * input. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sealcopy.h"
#include "config/confine.h"
#include "config/gather_int.h"

void gather_run_reap(struct gather_run *run)
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

	if (gather_statx(fd, &st) < 0 || !gather_readonly(fd)) {
		diags_add(d, DIAG_ERROR, name, rel, "refused: the gatherer handed over an fd that is not open for reading");
		return false;
	}
	if (!gather_type_ok(run->policy, use, &st, name, rel, fd, d))
		return false;
	if (use == GATHER_KERNEL && run->copy_kernel && !sealcopy_sealed(fd)) {
		diags_add(d, DIAG_ERROR, name, rel, "refused: the gatherer handed over a kernel that is not a sealed copy");
		return false;
	}
	return true;
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

int gather_run_step(struct gather_run *run, struct gather_item *items)
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

