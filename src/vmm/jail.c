/* The jail of QEMU and its helpers: mount namespace, fresh root, rlimits,
 * user namespace for virtiofsd.  See jail.h. */
#include "vmm/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/kfile.h"
#include "common/privdrop.h"

/* The merged-/usr links (or, on a host without them, directories bound
 * read-only like /usr). */
static const char *const jail_usr_links[] = {
	"bin", "sbin", "lib", "lib32", "lib64", "libx32",
};

uint64_t jail_clone_flags(const struct jail *j, bool net)
{
	uint64_t f = CLONE_NEWPID | CLONE_NEWIPC;

	if (!net)
		f |= CLONE_NEWNET;
	if (j->userns)
		f |= CLONE_NEWUSER;
	return f;
}

int jail_tree(int dirfd)
{
	return open_tree(dirfd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
			 AT_EMPTY_PATH | AT_RECURSIVE);
}

static int jail_write(pid_t pid, const char *file, const char *text)
{
	char path[64];

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	return kfile_write(path, text);
}

int jail_map_ids(pid_t pid, const struct jail *j)
{
	char map[32];

	snprintf(map, sizeof map, "0 %u 1\n", (unsigned int)j->ns_uid);
	if (jail_write(pid, "uid_map", map) < 0)
		return -1;
	snprintf(map, sizeof map, "0 %u 1\n", (unsigned int)j->ns_gid);
	return jail_write(pid, "gid_map", map);
}

/* Inside the user namespace: become its root, which is the owner on the
 * host, without the daemon's groups (unmapped, they would still open
 * files on the host). */
static int jail_ns_root(void)
{
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 ||
	    setresuid(0, 0, 0) < 0)
		return -1;
	return 0;
}

static int jail_set_attr(const char *path, unsigned int flags, uint64_t set)
{
	struct mount_attr a = { .attr_set = set };

	return mount_setattr(AT_FDCWD, path, flags, &a, sizeof a);
}

/* Bind host path at name (relative to the new root, our cwd), read-only
 * and nosuid; dir says whether it is a directory or a file. */
static int jail_bind(const char *host, const char *name, bool dir,
		     uint64_t attrs)
{
	int fd;

	if (dir) {
		if (mkdirat(AT_FDCWD, name, 0755) < 0)
			return -1;
	} else {
		fd = openat(AT_FDCWD, name, O_WRONLY | O_CREAT | O_EXCL |
			    O_CLOEXEC, 0644);
		if (fd < 0)
			return -1;
		close(fd);
	}
	if (mount(host, name, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -1;
	return attrs ? jail_set_attr(name, AT_RECURSIVE, attrs) : 0;
}

static int jail_usr(void)
{
	const uint64_t ro = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
			    MOUNT_ATTR_NODEV;
	char host[16], target[256];
	struct stat st;
	ssize_t n;

	if (jail_bind("/usr", "usr", true, ro) < 0)
		return -1;
	for (size_t i = 0; i < sizeof jail_usr_links / sizeof *jail_usr_links;
	     i++) {
		const char *name = jail_usr_links[i];
		size_t len = strlen(name);

		host[0] = '/';
		memcpy(host + 1, name, len + 1);
		n = readlink(host, target, sizeof target - 1);
		if (n >= 0) {
			target[n] = '\0';
			if (symlinkat(target, AT_FDCWD, name) < 0)
				return -1;
			continue;
		}
		if (lstat(host, &st) < 0 || !S_ISDIR(st.st_mode))
			continue; /* this host has none */
		if (jail_bind(host, name, true, ro) < 0)
			return -1;
	}
	return 0;
}

static int jail_dev(const struct jail *j)
{
	const uint64_t dev = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;

	if (mkdirat(AT_FDCWD, "dev", 0755) < 0 ||
	    jail_bind("/dev/null", "dev/null", false, dev) < 0 ||
	    jail_bind("/dev/urandom", "dev/urandom", false, dev) < 0)
		return -1;
	return j->kvm ? jail_bind("/dev/kvm", "dev/kvm", false, dev) : 0;
}

static int jail_extras(const struct jail *j)
{
	if (j->resolv_conf && access("/etc/resolv.conf", R_OK) == 0 &&
	    (mkdirat(AT_FDCWD, "etc", 0755) < 0 ||
	     jail_bind("/etc/resolv.conf", "etc/resolv.conf", false,
		       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
		       MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC) < 0))
		return -1;
	if (j->tree_fd < 0)
		return 0;
	if (mkdirat(AT_FDCWD, &JAIL_SHARE[1], 0755) < 0 ||
	    move_mount(j->tree_fd, "", AT_FDCWD, &JAIL_SHARE[1],
		       MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return -1;
	return jail_set_attr(&JAIL_SHARE[1], AT_RECURSIVE,
			     MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
}

static int jail_limits(const struct jail *j)
{
	struct rlimit none = { 0, 0 }, files;

	if (setrlimit(RLIMIT_CORE, &none) < 0 ||
	    getrlimit(RLIMIT_NOFILE, &files) < 0)
		return -1;
	/* Lower only: raising the hard limit is not ours to do. */
	if (j->nofile && j->nofile < files.rlim_max)
		files.rlim_max = j->nofile;
	files.rlim_cur = files.rlim_max;
	return setrlimit(RLIMIT_NOFILE, &files);
}

int jail_enter(const struct jail *j)
{
	int fs = -1, root = -1;

	/* What we create is for other uids to read (QEMU drops to its own). */
	umask(022);
	if (j->userns && jail_ns_root() < 0)
		return -1;
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "size", "256k", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "nr_inodes", "64", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return -1;
	root = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID |
		       MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
	close(fs);
	if (root < 0 ||
	    move_mount(root, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) < 0 ||
	    fchdir(root) < 0)
		return -1;
	close(root);
	/* An empty /tmp, read-only like all of the root: only a mount point
	 * (passt's own sandbox mounts a tmpfs there and pivots into it). */
	if (jail_usr() < 0 || jail_dev(j) < 0 || jail_extras(j) < 0 ||
	    mkdirat(AT_FDCWD, "tmp", 0755) < 0 ||
	    mkdirat(AT_FDCWD, "proc", 0555) < 0 ||
	    mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  j->full_proc ? NULL : "subset=pid") < 0 ||
	    jail_set_attr(".", 0, MOUNT_ATTR_RDONLY) < 0)
		return -1;
	/* The tmpfs, stacked on the old root, becomes "/"; the old root
	 * goes with everything mounted on it. */
	if (syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		return -1;
	if (jail_limits(j) < 0)
		return -1;
	if (!j->userns)
		return 0;
	if (privdrop_bounding(j->ns_caps) < 0)
		return -1;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}
