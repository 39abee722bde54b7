/* The host compositor's socket: opening it without following links,
 * granting VM uids connect permission as its owner, checking it listens.
 * See compositor.h. */
#include "vmm/compositor.h"

#include <acl/libacl.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/acl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/privdrop.h"

int compositor_open(const char *path, char *why, size_t len)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	struct stat st;
	int fd, saved;

	if (!path || path[0] != '/') {
		snprintf(why, len, "%s: not an absolute path", path ? path : "");
		errno = EINVAL;
		return -1;
	}
	fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
	if (fd < 0) {
		saved = errno;
		snprintf(why, len, "%s: %s", path, saved == ENOENT ?
			 "no such file (is the compositor running?)" :
			 saved == ELOOP || saved == EXDEV ?
			 "a symbolic link on the way (give the real path)" :
			 strerror(saved));
		errno = saved;
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		saved = S_ISSOCK(st.st_mode) ? errno : ENOTSOCK;
		snprintf(why, len, "%s: %s", path, saved == ENOTSOCK ?
			 "not a socket" : strerror(saved));
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* "/proc/self/fd/N": the inode of fd, for calls that take a path. */
static void compositor_fd_path(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

static bool compositor_granted(uid_t uid, const uid_t *grant, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (grant[i] == uid)
			return true;
	return false;
}

/* The first entry of acl with tag (and for ACL_USER, a uid in
 * [first, first + count) not in grant), or NULL. */
static acl_entry_t compositor_find(acl_t acl, acl_tag_t want, uid_t first,
				   unsigned int count, const uid_t *grant,
				   size_t n)
{
	acl_entry_t e;
	acl_tag_t tag;
	uid_t *q;
	bool match;

	for (int w = ACL_FIRST_ENTRY; acl_get_entry(acl, w, &e) == 1;
	     w = ACL_NEXT_ENTRY) {
		if (acl_get_tag_type(e, &tag) < 0 || tag != want)
			continue;
		if (want != ACL_USER)
			return e;
		q = acl_get_qualifier(e);
		if (!q)
			continue;
		match = *q >= first && *q - first < count &&
			!compositor_granted(*q, grant, n);
		acl_free(q);
		if (match)
			return e;
	}
	return NULL;
}

static bool compositor_has_user(acl_t acl, uid_t uid)
{
	return compositor_find(acl, ACL_USER, uid, 1, NULL, 0) != NULL;
}

/* Whether acl has a named entry (user or group) besides the base ones. */
static bool compositor_named(acl_t acl)
{
	return compositor_find(acl, ACL_USER, 0, ~0u, NULL, 0) ||
	       compositor_find(acl, ACL_GROUP, 0, 0, NULL, 0);
}

static int compositor_add(acl_t *acl, uid_t uid)
{
	acl_entry_t e;
	acl_permset_t ps;

	if (acl_create_entry(acl, &e) < 0 ||
	    acl_set_tag_type(e, ACL_USER) < 0 ||
	    acl_set_qualifier(e, &uid) < 0 || acl_get_permset(e, &ps) < 0 ||
	    acl_clear_perms(ps) < 0 || acl_add_perm(ps, ACL_READ) < 0 ||
	    acl_add_perm(ps, ACL_WRITE) < 0)
		return -1;
	return acl_set_permset(e, ps);
}

/* The ACL part of compositor_grant, in the owner's child. */
static int compositor_acl(const char *fdpath, uid_t first, unsigned int count,
			  const uid_t *grant, size_t n)
{
	acl_t acl = acl_get_file(fdpath, ACL_TYPE_ACCESS);
	acl_entry_t e;
	bool changed = false;
	int rc = -1;

	if (!acl)
		return -1;
	/* Deleting moves the iteration: find from the start each time. */
	while ((e = compositor_find(acl, ACL_USER, first, count, grant, n))) {
		if (acl_delete_entry(acl, e) < 0)
			goto out;
		changed = true;
	}
	for (size_t i = 0; i < n; i++) {
		if (compositor_has_user(acl, grant[i]))
			continue;
		if (compositor_add(&acl, grant[i]) < 0)
			goto out;
		changed = true;
	}
	if (!changed) {
		rc = 0;
		goto out;
	}
	/* With named entries the mask covers them; without, it goes, and
	 * the group bits of the mode are the owning group's again. */
	if (compositor_named(acl)) {
		if (acl_calc_mask(&acl) < 0)
			goto out;
	} else if ((e = compositor_find(acl, ACL_MASK, 0, 0, NULL, 0)) &&
		   acl_delete_entry(acl, e) < 0) {
		goto out;
	}
	if (acl_valid(acl) < 0) {
		errno = EINVAL;
		goto out;
	}
	rc = acl_set_file(fdpath, ACL_TYPE_ACCESS, acl);
out:
	acl_free(acl);
	return rc;
}

int compositor_listening(int sockfd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc, saved;

	compositor_fd_path(sockfd, sa.sun_path, sizeof sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
	saved = errno;
	close(fd);
	/* A full backlog: something listens, and is busy. */
	if (rc < 0 && saved == EAGAIN)
		rc = 0;
	errno = saved;
	return rc;
}

/* The child: become the owner, set the ACL, probe; report on out. */
static void compositor_child(int fd, uid_t first, unsigned int count,
			     const uid_t *grant, size_t n, bool probe, int out)
{
	char fdpath[64], msg[256];
	struct stat st;
	const char *stage = "";

	compositor_fd_path(fd, fdpath, sizeof fdpath);
	if (fstat(fd, &st) < 0) {
		stage = "fstat";
		goto fail;
	}
	/* Only root changes identity; a daemon run as a user acts as
	 * itself (and then has no uids to grant). */
	if (geteuid() == 0 && st.st_uid != 0 &&
	    privdrop_identity(st.st_uid, st.st_gid, NULL, 0) < 0) {
		stage = "becoming its owner";
		goto fail;
	}
	if (geteuid() == 0 || geteuid() == st.st_uid) {
		if (compositor_acl(fdpath, first, count, grant, n) < 0) {
			stage = "setting its ACL";
			goto fail;
		}
	} else if (n) {
		errno = EPERM;
		stage = "setting its ACL";
		goto fail;
	}
	if (probe && compositor_listening(fd) < 0) {
		stage = errno == ECONNREFUSED ? "nothing listens there" :
			"connecting to it";
		goto fail;
	}
	_exit(0);
fail:
	snprintf(msg, sizeof msg, "%s%s%s", stage,
		 errno == ECONNREFUSED ? "" : ": ",
		 errno == ECONNREFUSED ? " (connection refused)" :
		 strerror(errno));
	(void)!write(out, msg, strlen(msg));
	_exit(1);
}

int compositor_grant(int fd, const char *path, uid_t first,
		     unsigned int count, const uid_t *grant, size_t n,
		     bool probe, char *why, size_t len)
{
	char msg[256];
	struct pollfd pfd;
	int p[2], status, r = 0, saved;
	ssize_t got = 0, k;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		goto fail_errno;
	pid = fork();
	if (pid < 0) {
		saved = errno;
		close(p[0]);
		close(p[1]);
		errno = saved;
		goto fail_errno;
	}
	if (pid == 0) {
		close(p[0]);
		compositor_child(fd, first, count, grant, n, probe, p[1]);
	}
	close(p[1]);
	/* Its message, then EOF as it exits; a child stuck in the file
	 * system (a compositor socket on a hung mount) is killed. */
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	for (;;) {
		r = poll(&pfd, 1, COMPOSITOR_TIMEOUT_MS);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		k = read(p[0], msg + got, sizeof msg - 1 - (size_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0 || (got += k) == (ssize_t)sizeof msg - 1)
			break;
	}
	msg[got] = '\0';
	close(p[0]);
	if (r <= 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r <= 0) {
		snprintf(why, len, "%s: no answer within %d ms", path,
			 COMPOSITOR_TIMEOUT_MS);
		errno = ETIMEDOUT;
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	snprintf(why, len, "%s: %s", path, got ? msg : "its owner's helper failed");
	errno = EACCES;
	return -1;

fail_errno:
	snprintf(why, len, "%s: %s", path, strerror(errno));
	return -1;
}
