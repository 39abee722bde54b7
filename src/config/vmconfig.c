/* The VM directory loader: CONFIG_ROOT/NAME/ -> struct vm_config.
 *
 * Everything is looked up relative to a directory fd of the config root or
 * the VM directory (fstatat/openat), so the checks see one directory even
 * if the path is renamed meanwhile.  Files are stat'ed before they are
 * opened, and opened with O_NONBLOCK so that a FIFO or a device in place
 * of a regular file can neither hang nor be read; reads are bounded.
 *
 * Time of check and time of use: the result holds paths, not open files.
 * A start never uses those paths: the gatherer (gather.h) runs this loader
 * as the VM directory's owner and opens every file it names once, and the
 * VM gets those fds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/vmconfig.h"

#define VMCONFIG_NOTES_MAX 20     /* per kind, then one summary line */

static const char *const vmconfig_known[] = {
	"vmlinux", "rootfs.ext4", "blk", "shared-dirs", "providers",
	"wayland", "memory", "cpus", "cmdline", "uplink",
};

struct load {
	const char *name;
	struct diags *d;
	const char *root;      /* resolved config root */
	const char *data_root; /* as given, or the default */
	char *data_real;       /* resolved data root, on first use */
	int rootfd;
	int vmfd;
	int err;               /* first system error, e.g. ENOMEM */
	int depth;             /* 0 for the VM asked for, 1 for its providers */
	unsigned int flags;    /* VMCONFIG_LOAD_* */
	bool has_rootfs;
	struct vm_config *cfg;
};

static void load_diag(struct load *l, enum diag_level level, const char *path,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void load_diag(struct load *l, enum diag_level level, const char *path,
		      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (diags_vadd(l->d, level, l->name, path, fmt, ap) < 0 && !l->err)
		l->err = errno;
	va_end(ap);
}

#define load_error(l, path, ...) load_diag(l, DIAG_ERROR, path, __VA_ARGS__)
#define load_warning(l, path, ...) load_diag(l, DIAG_WARNING, path, __VA_ARGS__)
#define load_note(l, path, ...) load_diag(l, DIAG_NOTE, path, __VA_ARGS__)

static void load_oom(struct load *l)
{
	if (!l->err)
		l->err = ENOMEM;
}

static char *load_strdup(struct load *l, const char *s)
{
	char *r = strdup(s);

	if (!r)
		load_oom(l);
	return r;
}

static char *load_join(struct load *l, const char *a, const char *b)
{
	char *r;

	if (asprintf(&r, "%s/%s", a, b) < 0) {
		load_oom(l);
		return NULL;
	}
	return r;
}

/* An escaped copy for quoting in a message; never NULL. */
static char *load_quote(struct load *l, const char *s, size_t len)
{
	char *r = vmconfig_escape(s, len, 128);

	if (!r) {
		load_oom(l);
		r = strdup("?");
	}
	return r;
}

/* strerror(err), and whose permissions those were when the caller says
 * so: the gatherer loads as the VM directory's owner. */
static const char *load_why(const struct load *l, int err)
{
	static char buf[128];

	if ((err != EACCES && err != EPERM) || !(l->flags & VMCONFIG_LOAD_AS_OWNER))
		return strerror(err);
	snprintf(buf, sizeof(buf), "%s (as the VM directory's owner)",
		 strerror(err));
	return buf;
}

const char *vmconfig_ftype(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "a regular file";
	case S_IFDIR: return "a directory";
	case S_IFIFO: return "a FIFO";
	case S_IFSOCK: return "a socket";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFLNK: return "a symbolic link";
	}
	return "an unknown file type";
}

/* fstatat following links.  Returns 0 with *st filled, 1 if nothing is
 * there, -1 after reporting why it could not be looked at (a dangling link
 * or a link loop included). */
static int load_stat(struct load *l, int dirfd, const char *name,
		     const char *path, struct stat *st)
{
	struct stat lst;

	if (fstatat(dirfd, name, st, 0) == 0)
		return 0;
	if (errno == ENOENT) {
		if (fstatat(dirfd, name, &lst, AT_SYMLINK_NOFOLLOW) < 0)
			return 1;
		load_error(l, path, "dangling symbolic link");
	} else if (errno == ELOOP) {
		load_error(l, path, "symbolic link loop (ELOOP)");
	} else {
		load_error(l, path, "cannot stat: %s", load_why(l, errno));
	}
	return -1;
}

/* Open a directory below dirfd (links followed) as a DIR stream. */
static DIR *load_opendir(struct load *l, int dirfd, const char *name,
			 const char *path)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NONBLOCK |
			O_CLOEXEC);
	DIR *dir;

	if (fd < 0) {
		load_error(l, path, "cannot open directory: %s", load_why(l, errno));
		return NULL;
	}
	dir = fdopendir(fd);
	if (!dir) {
		load_error(l, path, "cannot read directory: %s", load_why(l, errno));
		close(fd);
	}
	return dir;
}

static bool vmconfig_dot(const char *name)
{
	return !strcmp(name, ".") || !strcmp(name, "..");
}

int vmconfig_names_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every name in dir but . and .. that keep() accepts (NULL: all), sorted:
 * readdir order is arbitrary, and both what we build and what we report
 * must not depend on it.  Closes dir.  -1 with errno ENOMEM. */
static int vmconfig_read_names(DIR *dir,
			       bool (*keep)(int dirfd, const struct dirent *de),
			       char ***names, size_t *count)
{
	char **list = NULL, **grown;
	struct dirent *de;
	size_t n = 0, cap = 0;

	while ((de = readdir(dir))) {
		if (vmconfig_dot(de->d_name) || (keep && !keep(dirfd(dir), de)))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			grown = realloc(list, cap * sizeof(*list));
			if (!grown)
				goto oom;
			list = grown;
		}
		list[n] = strdup(de->d_name);
		if (!list[n])
			goto oom;
		n++;
	}
	closedir(dir);
	if (n)
		qsort(list, n, sizeof(*list), vmconfig_names_cmp);
	*names = list;
	*count = n;
	return 0;
oom:
	closedir(dir);
	vmconfig_list_free(list, n);
	errno = ENOMEM;
	return -1;
}

/* load_opendir, then its sorted names; false (reported) on failure. */
static bool load_names(struct load *l, int dirfd, const char *name,
		       const char *path, char ***names, size_t *count)
{
	DIR *dir = load_opendir(l, dirfd, name, path);

	if (!dir)
		return false;
	if (vmconfig_read_names(dir, NULL, names, count) < 0) {
		load_oom(l);
		return false;
	}
	return true;
}

/* Open a file that must be regular, without blocking on anything else;
 * checked again on the fd in case it was swapped after the stat. */
static int load_open_regular(struct load *l, int dirfd, const char *name,
			     const char *path, struct stat *st)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY |
			O_CLOEXEC);

	if (fd < 0) {
		load_error(l, path, "cannot open: %s", load_why(l, errno));
		return -1;
	}
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		load_error(l, path, "changed while being checked; not a regular file");
		close(fd);
		return -1;
	}
	return fd;
}

/* Read at most cap bytes from offset 0. */
static ssize_t vmconfig_pread_all(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	while (got < cap) {
		ssize_t n = pread(fd, buf + got, cap - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Read a small setting file.  Returns 1 with buf (NUL-terminated) and *len
 * set, 0 if the file is absent, -1 after reporting a problem. */
static int load_setting(struct load *l, const char *name, char *buf,
			size_t *len)
{
	struct stat st;
	ssize_t n;
	int fd, r;

	r = load_stat(l, l->vmfd, name, name, &st);
	if (r)
		return r > 0 ? 0 : -1;
	if (!S_ISREG(st.st_mode)) {
		load_error(l, name, "is %s, not a regular file",
			   vmconfig_ftype(st.st_mode));
		return -1;
	}
	if (st.st_size > VMCONFIG_SETTING_MAX + 1) {
		load_error(l, name, "too large (%lld bytes; at most %d)",
			   (long long)st.st_size, VMCONFIG_SETTING_MAX);
		return -1;
	}
	fd = load_open_regular(l, l->vmfd, name, name, &st);
	if (fd < 0)
		return -1;
	n = vmconfig_pread_all(fd, buf, VMCONFIG_SETTING_MAX + 2);
	close(fd);
	if (n < 0) {
		load_error(l, name, "cannot read: %s", load_why(l, errno));
		return -1;
	}
	/* One trailing newline is how editors end a line, not content. */
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > VMCONFIG_SETTING_MAX) {
		load_error(l, name, "too large (more than %d bytes)",
			   VMCONFIG_SETTING_MAX);
		return -1;
	}
	buf[n] = '\0';
	*len = (size_t)n;
	return 1;
}

static void load_kernel(struct load *l)
{
	unsigned char buf[0x206];
	struct stat st;
	ssize_t n;
	char *q;
	int fd, r;

	l->cfg->kernel = load_join(l, l->cfg->dir, "vmlinux");
	r = load_stat(l, l->vmfd, "vmlinux", "vmlinux", &st);
	if (r > 0)
		load_error(l, "vmlinux", "missing; an uncompressed Linux kernel (ELF) is required");
	if (r)
		return;
	if (!S_ISREG(st.st_mode)) {
		load_error(l, "vmlinux", "is %s; must be a regular file holding an uncompressed Linux kernel (ELF)",
			   vmconfig_ftype(st.st_mode));
		return;
	}
	fd = load_open_regular(l, l->vmfd, "vmlinux", "vmlinux", &st);
	if (fd < 0)
		return;
	n = vmconfig_pread_all(fd, (char *)buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		load_error(l, "vmlinux", "cannot read: %s", load_why(l, errno));
	} else if (n == 0) {
		load_error(l, "vmlinux", "empty file; must be an uncompressed Linux kernel (ELF)");
	} else if (n >= 4 && !memcmp(buf, "\177ELF", 4)) {
		return;
	} else if (n >= 0x206 && !memcmp(buf + 0x202, "HdrS", 4)) {
		load_error(l, "vmlinux", "compressed kernel (bzImage); vmlinux must be the uncompressed ELF (build target vmlinux, not bzImage)");
	} else {
		q = load_quote(l, (const char *)buf, n < 4 ? (size_t)n : 4);
		load_error(l, "vmlinux", "not an ELF image (starts with \"%s\"); must be an uncompressed Linux kernel",
			   q ? q : "?");
		free(q);
	}
}

static int load_add_disk(struct load *l, const char *relpath)
{
	struct vm_config *c = l->cfg;
	struct vm_disk *disks;

	if (c->disk_count % 16 == 0) {
		disks = realloc(c->disks, (c->disk_count + 16) * sizeof(*disks));
		if (!disks) {
			load_oom(l);
			return -1;
		}
		c->disks = disks;
	}
	disks = &c->disks[c->disk_count];
	disks->relpath = load_strdup(l, relpath);
	disks->path = load_join(l, c->dir, relpath);
	if (!disks->relpath || !disks->path) {
		free(disks->relpath);
		free(disks->path);
		return -1;
	}
	c->disk_count++;
	return 0;
}

/* A disk image must be a regular file or a block device; anything else
 * (a directory, FIFO, socket) would hang or make no sense to QEMU. */
static void load_disk(struct load *l, int dirfd, const char *name,
		      const char *relpath)
{
	struct stat st;

	if (load_stat(l, dirfd, name, relpath, &st))
		return;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		load_error(l, relpath, "is %s; a disk image must be a regular file or a block device",
			   vmconfig_ftype(st.st_mode));
		return;
	}
	load_add_disk(l, relpath);
}

static bool vmconfig_is_img(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && !strcmp(name + n - 4, ".img");
}

static void load_blk(struct load *l)
{
	size_t ignored = 0, n, i;
	struct stat st;
	char **names, *rel;
	int fd;

	if (load_stat(l, l->vmfd, "blk", "blk", &st))
		return;
	if (!S_ISDIR(st.st_mode)) {
		load_error(l, "blk", "is %s, not a directory of *.img disk images",
			   vmconfig_ftype(st.st_mode));
		return;
	}
	fd = openat(l->vmfd, "blk", O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		load_error(l, "blk", "cannot open directory: %s", load_why(l, errno));
		return;
	}
	if (!load_names(l, fd, ".", "blk", &names, &n)) {
		close(fd);
		return;
	}
	for (i = 0; i < n && !l->err; i++) {
		rel = load_join(l, "blk", names[i]);
		if (!rel)
			break;
		if (vmconfig_is_img(names[i]))
			load_disk(l, fd, names[i], rel);
		else if (++ignored <= VMCONFIG_NOTES_MAX)
			load_note(l, rel, "ignored: not named *.img");
		free(rel);
	}
	vmconfig_list_free(names, n);
	close(fd);
	if (ignored > VMCONFIG_NOTES_MAX)
		load_note(l, "blk", "%zu more entries not named *.img ignored",
			  ignored - VMCONFIG_NOTES_MAX);
}

static void load_disks(struct load *l)
{
	struct stat st;

	/* The older format's bare filesystem, first so that it is vda. */
	if (fstatat(l->vmfd, "rootfs.ext4", &st, AT_SYMLINK_NOFOLLOW) == 0) {
		l->has_rootfs = true;
		load_disk(l, l->vmfd, "rootfs.ext4", "rootfs.ext4");
	}
	load_blk(l);
	if (l->cfg->disk_count > VMCONFIG_DISKS_MAX && !l->err)
		load_error(l, "blk", "%zu disk images; at most %d are supported (each takes a PCI slot)",
			   l->cfg->disk_count, VMCONFIG_DISKS_MAX);
	if (l->cfg->disk_count == 0 && !l->err)
		load_error(l, l->has_rootfs ? "rootfs.ext4" : "blk",
			   "no usable disk; put disk images in blk/*.img (or a single rootfs.ext4)");
}

/* Whether path equals root or lies below it, comparing whole components of
 * two resolved paths: /ext2 is not inside /ext. */
static bool vmconfig_path_inside(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (!strcmp(root, "/"))
		return path[0] == '/';
	return !strncmp(path, root, n) && (path[n] == '\0' || path[n] == '/');
}

static void load_share_target(struct load *l, const char *tag,
			      const char *rel)
{
	struct vm_config *c = l->cfg;
	char *abs = NULL, *real = NULL, *q = NULL, *qd = NULL;
	struct vm_share *shares;
	struct stat st;

	if (asprintf(&abs, "%s/shared-dirs/%s/dir", c->dir, tag) < 0) {
		abs = NULL;
		load_oom(l);
		goto out;
	}
	real = realpath(abs, NULL);
	if (!real) {
		if (errno == ELOOP)
			load_error(l, rel, "symbolic link loop (ELOOP)");
		else if (errno == ENOENT || errno == ENOTDIR)
			load_error(l, rel, "target does not exist");
		else
			load_error(l, rel, "cannot resolve: %s", load_why(l, errno));
		goto out;
	}
	q = load_quote(l, real, strlen(real));
	if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
		load_error(l, rel, "target \"%s\" is not a directory", q);
		goto out;
	}
	if (!l->data_real) {
		l->data_real = realpath(l->data_root, NULL);
		if (!l->data_real) {
			qd = load_quote(l, l->data_root, strlen(l->data_root));
			load_error(l, rel, "data root \"%s\" cannot be resolved: %s",
				   qd, load_why(l, errno));
			goto out;
		}
	}
	if (!vmconfig_path_inside(real, l->data_real)) {
		qd = load_quote(l, l->data_real, strlen(l->data_real));
		load_error(l, rel, "target \"%s\" is outside the data root \"%s\"",
			   q, qd);
		goto out;
	}
	if (c->share_count % 8 == 0) {
		shares = realloc(c->shares, (c->share_count + 8) * sizeof(*shares));
		if (!shares) {
			load_oom(l);
			goto out;
		}
		c->shares = shares;
	}
	shares = &c->shares[c->share_count++];
	/* The tag was checked: at most VMCONFIG_TAG_MAX bytes. */
	memcpy(shares->tag, tag, strnlen(tag, VMCONFIG_TAG_MAX));
	shares->tag[strnlen(tag, VMCONFIG_TAG_MAX)] = '\0';
	shares->host_dir = real;
	real = NULL;
out:
	free(qd);
	free(q);
	free(real);
	free(abs);
}

static void load_share(struct load *l, int sharesfd, const char *tag)
{
	char *rel = NULL, *reldir = NULL, *q = NULL;
	struct stat st;
	int tagfd = -1;

	rel = load_join(l, "shared-dirs", tag);
	reldir = rel ? load_join(l, rel, "dir") : NULL;
	if (!reldir)
		goto out;
	if (!vmconfig_tag_valid(tag)) {
		q = load_quote(l, tag, strlen(tag));
		load_error(l, rel, "invalid tag \"%s\": use 1 to %d characters from A-Z a-z 0-9 . _ -",
			   q, VMCONFIG_TAG_MAX);
		goto out;
	}
	if (load_stat(l, sharesfd, tag, rel, &st))
		goto out;
	if (!S_ISDIR(st.st_mode)) {
		load_error(l, rel, "is %s; must be a directory holding a \"dir\" link",
			   vmconfig_ftype(st.st_mode));
		goto out;
	}
	tagfd = openat(sharesfd, tag, O_RDONLY | O_DIRECTORY | O_NONBLOCK |
		       O_CLOEXEC);
	if (tagfd < 0) {
		load_error(l, rel, "cannot open directory: %s", load_why(l, errno));
		goto out;
	}
	/* The link itself, not its target: it must be a link. */
	if (fstatat(tagfd, "dir", &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			load_error(l, reldir, "missing; must be a symbolic link to the directory to share");
		else
			load_error(l, reldir, "cannot stat: %s", load_why(l, errno));
		goto out;
	}
	if (!S_ISLNK(st.st_mode)) {
		load_error(l, reldir, "is %s; must be a symbolic link to a directory inside the data root",
			   vmconfig_ftype(st.st_mode));
		goto out;
	}
	load_share_target(l, tag, reldir);
out:
	if (tagfd >= 0)
		close(tagfd);
	free(q);
	free(reldir);
	free(rel);
}

static void load_shares(struct load *l)
{
	struct stat st;
	char **tags;
	size_t n, i;
	int fd;

	if (load_stat(l, l->vmfd, "shared-dirs", "shared-dirs", &st))
		return;
	if (!S_ISDIR(st.st_mode)) {
		load_error(l, "shared-dirs", "is %s, not a directory",
			   vmconfig_ftype(st.st_mode));
		return;
	}
	fd = openat(l->vmfd, "shared-dirs", O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		load_error(l, "shared-dirs", "cannot open directory: %s", load_why(l, errno));
		return;
	}
	if (load_names(l, fd, ".", "shared-dirs", &tags, &n)) {
		for (i = 0; i < n && !l->err; i++)
			load_share(l, fd, tags[i]);
		vmconfig_list_free(tags, n);
	}
	close(fd);
	if (l->cfg->share_count > VMCONFIG_SHARES_MAX && !l->err)
		load_error(l, "shared-dirs", "%zu shares; at most %d are supported (each takes a PCI slot and a virtiofsd)",
			   l->cfg->share_count, VMCONFIG_SHARES_MAX);
}

static bool vmconfig_keep_name(int dirfd, const struct dirent *de)
{
	return vmconfig_name_valid(de->d_name);
}

/* The valid names in VM/providers/net, sorted; for walking the provider
 * graph, where the other VMs' own problems are theirs to report. */
static int vmconfig_read_providers(int rootfd, const char *vm, char ***out,
				   size_t *count)
{
	char path[VMCONFIG_NAME_MAX + 32];
	DIR *dir;
	int fd;

	*out = NULL;
	*count = 0;
	snprintf(path, sizeof(path), "%s/providers/net", vm);
	fd = openat(rootfd, path, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -1;
	}
	return vmconfig_read_names(dir, vmconfig_keep_name, out, count);
}

struct graph_node {
	char *name;
	size_t parent; /* index of the node that has this one as provider */
};

/* "name -> ... -> nodes[head] -> name", walking parents back to node 0. */
static char *vmconfig_cycle_text(const struct graph_node *nodes, size_t head,
				 const char *name)
{
	size_t len = 2 * strlen(name) + 5, k;
	char *msg, *p;

	for (k = head; k; k = nodes[k].parent)
		len += strlen(nodes[k].name) + 4;
	msg = malloc(len);
	if (!msg)
		return NULL;
	/* Write the path backwards from the end. */
	p = msg + len - 1;
	*p = '\0';
	p -= strlen(name);
	memcpy(p, name, strlen(name));
	for (k = head; ; k = nodes[k].parent) {
		p -= 4;
		memcpy(p, " -> ", 4);
		p -= strlen(nodes[k].name);
		memcpy(p, nodes[k].name, strlen(nodes[k].name));
		if (k == 0)
			break;
	}
	memmove(msg, p, strlen(p) + 1);
	return msg;
}

/* Breadth-first from name along the provider edges: the first path back to
 * it is the shortest cycle through it.  Cycles not through this VM belong
 * to the VMs on them (and make the provider invalid, reported there). */
int vmconfig_find_cycle(const char *name, vmconfig_providers_fn *providers,
			void *arg, struct diags *diags)
{
	struct graph_node *nodes;
	size_t count = 1, head = 0, nnext = 0, hop;
	char **next = NULL, *msg, *rel;
	int r = 0;

	nodes = calloc(VMCONFIG_GRAPH_MAX, sizeof(*nodes));
	if (!nodes)
		return -1;
	nodes[0].name = (char *)name;
	for (; head < count; head++) {
		if (providers(arg, nodes[head].name, &next, &nnext) < 0) {
			r = -1;
			break;
		}
		for (size_t i = 0; i < nnext; i++) {
			bool seen = false;

			if (!strcmp(next[i], name) && head > 0) {
				/* Found: name -> ... -> nodes[head] -> name. */
				for (hop = head; nodes[hop].parent; hop = nodes[hop].parent)
					;
				msg = vmconfig_cycle_text(nodes, head, name);
				if (!msg || asprintf(&rel, "providers/net/%s",
						     nodes[hop].name) < 0) {
					free(msg);
					r = -1;
					goto done;
				}
				r = diags_add(diags, DIAG_ERROR, name, rel,
					      "provider cycle: %s", msg) < 0 ? -1 : 1;
				free(rel);
				free(msg);
				goto done;
			}
			for (size_t k = 0; k < count; k++)
				if (!strcmp(nodes[k].name, next[i]))
					seen = true;
			if (seen || count == VMCONFIG_GRAPH_MAX)
				continue;
			nodes[count].name = next[i];
			nodes[count].parent = head;
			next[i] = NULL;
			count++;
		}
		vmconfig_list_free(next, nnext);
		next = NULL;
		nnext = 0;
	}
done:
	vmconfig_list_free(next, nnext);
	for (size_t k = 1; k < count; k++)
		free(nodes[k].name);
	free(nodes);
	if (r < 0)
		errno = ENOMEM;
	return r;
}

static int load_read_providers(void *arg, const char *vm, char ***names,
			       size_t *count)
{
	const struct load *l = arg;

	return vmconfig_read_providers(l->rootfd, vm, names, count);
}

static void load_cycle(struct load *l)
{
	if (vmconfig_find_cycle(l->name, load_read_providers, l, l->d) < 0)
		load_oom(l);
}

int vmconfig_diag_bad_provider(struct diags *diags, const char *vm,
			       const char *prov, size_t errors)
{
	char *rel;
	int r;

	if (asprintf(&rel, "providers/net/%s", prov) < 0) {
		errno = ENOMEM;
		return -1;
	}
	r = diags_add(diags, DIAG_ERROR, vm, rel,
		      "provider \"%s\" is not a valid VM (%zu error%s; see vm check %s)",
		      prov, errors, errors == 1 ? "" : "s", prov);
	free(rel);
	return r;
}

static int load_vm(const struct vmconfig_roots *roots, int rootfd,
		   const char *root, const char *name, int depth,
		   unsigned int flags, int vmfd, struct vm_config **out,
		   struct diags *diags);

/* A provider must name another VM of the config root. */
static bool load_provider_name(struct load *l, const char *prov,
			       const char *rel)
{
	struct stat st;
	char *q = load_quote(l, prov, strlen(prov));
	bool ok = false;

	if (!vmconfig_name_valid(prov))
		load_error(l, rel, "\"%s\" is not a valid VM name", q);
	else if (!strcmp(prov, l->name))
		load_error(l, rel, "a VM cannot be its own network provider");
	else if (fstatat(l->rootfd, prov, &st, 0) < 0 || !S_ISDIR(st.st_mode))
		load_error(l, rel, "no VM named \"%s\" in the config root", q);
	else
		ok = true;
	free(q);
	return ok;
}

/* ... and that VM must itself load without errors.  Only one level deep:
 * the provider's own load checks its providers' names and cycles. */
static void load_provider_valid(struct load *l, const char *prov)
{
	struct vmconfig_roots roots = { l->root, l->data_root };
	struct vm_config *pc = NULL;
	struct diags pd;

	diags_init(&pd);
	if (load_vm(&roots, l->rootfd, l->root, prov, l->depth + 1, l->flags,
		    -1, &pc, &pd) < 0) {
		if (errno != EINVAL)
			l->err = l->err ? l->err : errno;
		else if (vmconfig_diag_bad_provider(l->d, l->name, prov,
						    pd.errors) < 0)
			load_oom(l);
	}
	vmconfig_free(pc);
	diags_free(&pd);
}

static void load_providers(struct load *l)
{
	struct vm_config *c = l->cfg;
	size_t errors, n, i;
	struct stat st;
	char *rel, **names;

	if (load_stat(l, l->vmfd, "providers", "providers", &st))
		return;
	if (!S_ISDIR(st.st_mode)) {
		load_error(l, "providers", "is %s, not a directory",
			   vmconfig_ftype(st.st_mode));
		return;
	}
	if (!load_names(l, l->vmfd, "providers", "providers", &names, &n))
		return;
	for (i = 0; i < n && !l->err; i++) {
		if (!strcmp(names[i], "net"))
			continue;
		rel = load_join(l, "providers", names[i]);
		load_warning(l, rel, "unknown kind of provider, ignored (known: net)");
		free(rel);
	}
	vmconfig_list_free(names, n);
	if (load_stat(l, l->vmfd, "providers/net", "providers/net", &st))
		return;
	if (!S_ISDIR(st.st_mode)) {
		load_error(l, "providers/net", "is %s; must be a directory with one file per provider VM",
			   vmconfig_ftype(st.st_mode));
		return;
	}
	if (!load_names(l, l->vmfd, "providers/net", "providers/net", &names, &n))
		return;
	/* File contents are ignored, as in Spectrum.  Sorted names in, so
	 * the kept ones are sorted too. */
	c->providers = calloc(n ? n : 1, sizeof(*c->providers));
	if (!c->providers) {
		load_oom(l);
		vmconfig_list_free(names, n);
		return;
	}
	for (i = 0; i < n && !l->err; i++) {
		rel = load_join(l, "providers/net", names[i]);
		if (!rel)
			break;
		if (load_provider_name(l, names[i], rel)) {
			c->providers[c->provider_count++] = names[i];
			names[i] = NULL;
		}
		free(rel);
	}
	vmconfig_list_free(names, n);
	if (c->provider_count > VMCONFIG_PROVIDERS_MAX && !l->err)
		load_error(l, "providers/net", "%zu providers; at most %d are supported (each link takes a PCI slot)",
			   c->provider_count, VMCONFIG_PROVIDERS_MAX);
	if (l->err || (l->flags & VMCONFIG_LOAD_PROVIDER_NAMES))
		return;
	errors = l->d->errors;
	load_cycle(l);
	/* In a cycle every VM on it is invalid; saying so again per
	 * provider would only repeat the cycle. */
	if (l->d->errors != errors || l->depth > 0)
		return;
	for (i = 0; i < c->provider_count && !l->err; i++)
		load_provider_valid(l, c->providers[i]);
}

/* wayland: present or not; contents ignored. */
static bool load_flag(struct load *l, const char *name)
{
	struct stat st;

	if (load_stat(l, l->vmfd, name, name, &st))
		return false;
	if (!S_ISREG(st.st_mode)) {
		load_error(l, name, "is %s; must be an empty file (its presence is the setting)",
			   vmconfig_ftype(st.st_mode));
		return false;
	}
	if (st.st_size > 0)
		load_warning(l, name, "not empty (%lld bytes); the contents are ignored",
			     (long long)st.st_size);
	return true;
}

static void vmconfig_rstrip(char *s, size_t *len)
{
	while (*len && (s[*len - 1] == ' ' || s[*len - 1] == '\t' ||
			s[*len - 1] == '\n' || s[*len - 1] == '\r'))
		s[--*len] = '\0';
}

/* uplink: empty, or "host-loopback" to let the guest reach the host's
 * loopback services through the uplink's gateway address. */
static void load_uplink(struct load *l)
{
	char buf[VMCONFIG_SETTING_MAX + 2], *q;
	size_t len;

	if (load_setting(l, "uplink", buf, &len) <= 0)
		return;
	vmconfig_rstrip(buf, &len);
	l->cfg->uplink = true;
	if (!len)
		return;
	if (strlen(buf) == len && !strcmp(buf, VMCONFIG_UPLINK_HOST_LOOPBACK)) {
		l->cfg->uplink_host_loopback = true;
		return;
	}
	q = load_quote(l, buf, len);
	load_error(l, "uplink", "invalid uplink setting \"%s\": expected an empty file or \"%s\"",
		   q, VMCONFIG_UPLINK_HOST_LOOPBACK);
	free(q);
}

static void load_settings(struct load *l)
{
	char buf[VMCONFIG_SETTING_MAX + 2];
	const char *why;
	size_t len;
	char *q;

	if (load_setting(l, "memory", buf, &len) > 0) {
		vmconfig_rstrip(buf, &len);
		if (strlen(buf) != len ||
		    vmconfig_parse_memory(buf, &l->cfg->memory, &why) < 0) {
			if (strlen(buf) != len)
				why = "contains a NUL byte";
			q = load_quote(l, buf, len);
			load_error(l, "memory", "invalid memory size \"%s\": %s", q, why);
			free(q);
		}
	}
	if (load_setting(l, "cpus", buf, &len) > 0) {
		vmconfig_rstrip(buf, &len);
		if (strlen(buf) != len ||
		    vmconfig_parse_cpus(buf, &l->cfg->cpus, &why) < 0) {
			q = load_quote(l, buf, len);
			load_error(l, "cpus", "invalid number of CPUs \"%s\": expected a whole number from 1 to %u",
				   q, VMCONFIG_CPUS_MAX);
			free(q);
		}
	}
	if (load_setting(l, "cmdline", buf, &len) > 0) {
		if (vmconfig_check_cmdline(buf, len, &why) < 0) {
			q = load_quote(l, buf, len);
			load_error(l, "cmdline", "invalid kernel command line \"%s\": %s", q, why);
			free(q);
		} else {
			l->cfg->cmdline = load_strdup(l, buf);
		}
	}
	if (!l->cfg->cmdline)
		l->cfg->cmdline = load_strdup(l, l->has_rootfs ?
					      VMCONFIG_CMDLINE_ROOTFS :
					      VMCONFIG_CMDLINE_BLK);
	l->cfg->wayland = load_flag(l, "wayland");
	load_uplink(l);
}

static void load_unknown(struct load *l)
{
	size_t unknown = 0, n = sizeof(vmconfig_known) / sizeof(vmconfig_known[0]);
	size_t count, e;
	char **names;

	if (!load_names(l, l->vmfd, ".", ".", &names, &count))
		return;
	for (e = 0; e < count && !l->err; e++) {
		const char *best = NULL, *name = names[e];
		size_t best_d = 3, i;
		char *q;

		for (i = 0; i < n; i++)
			if (!strcmp(name, vmconfig_known[i]))
				break;
		if (i < n || ++unknown > VMCONFIG_NOTES_MAX)
			continue;
		for (i = 0; i < n; i++) {
			size_t dist = vmconfig_edit_distance(name, vmconfig_known[i], 2);

			if (dist < best_d) {
				best_d = dist;
				best = vmconfig_known[i];
			}
		}
		q = load_quote(l, name, strlen(name));
		if (best)
			load_warning(l, q, "unknown entry, ignored; did you mean \"%s\"?", best);
		else if (vmconfig_is_img(name))
			load_warning(l, q, "unknown entry, ignored; disk images go in blk/");
		else
			load_warning(l, q, "unknown entry, ignored");
		free(q);
	}
	vmconfig_list_free(names, count);
	if (unknown > VMCONFIG_NOTES_MAX)
		load_warning(l, ".", "%zu more unknown entries ignored",
			     unknown - VMCONFIG_NOTES_MAX);
}

/* Open the VM's directory; a name with '/' or a dot name never reaches
 * openat, so a bad name cannot walk out of the config root. */
static int load_open_vm(struct load *l)
{
	struct stat st;
	char *q;

	if (!*l->name || strchr(l->name, '/') || vmconfig_dot(l->name) ||
	    strlen(l->name) > NAME_MAX)
		return -1;
	if (fstatat(l->rootfd, l->name, &st, 0) < 0) {
		q = load_quote(l, l->root, strlen(l->root));
		if (errno == ENOENT)
			load_error(l, ".", "no such VM: no directory with this name in the config root \"%s\"", q);
		else
			load_error(l, ".", "cannot stat: %s", load_why(l, errno));
		free(q);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		load_error(l, ".", "is %s, not a VM directory", vmconfig_ftype(st.st_mode));
		return -1;
	}
	l->vmfd = openat(l->rootfd, l->name, O_RDONLY | O_DIRECTORY |
			 O_NONBLOCK | O_CLOEXEC);
	if (l->vmfd < 0) {
		load_error(l, ".", "cannot open directory: %s", load_why(l, errno));
		return -1;
	}
	return 0;
}

static void load_check_name(struct load *l)
{
	char *q;

	if (vmconfig_name_valid(l->name))
		return;
	q = load_quote(l, l->name, strlen(l->name));
	load_error(l, ".", "invalid VM name \"%s\": use 1 to %d characters from A-Z a-z 0-9 . _ -, not starting with . or -",
		   q, VMCONFIG_NAME_MAX);
	free(q);
}

int vmconfig_open_vm(int rootfd, const char *root, const char *name,
		     struct diags *diags)
{
	struct load l = {
		.name = name, .d = diags, .root = root, .rootfd = rootfd,
		.vmfd = -1,
	};
	struct diags why;

	diags_init(&why);
	l.d = &why;
	if (load_open_vm(&l) == 0) {
		diags_free(&why);
		return l.vmfd;
	}
	/* In the order a load reports them: the name, then the directory. */
	l.d = diags;
	load_check_name(&l);
	if (diags_append(diags, &why) < 0)
		load_oom(&l);
	diags_free(&why);
	errno = l.err ? l.err : EINVAL;
	return -1;
}

static int load_vm(const struct vmconfig_roots *roots, int rootfd,
		   const char *root, const char *name, int depth,
		   unsigned int flags, int vmfd, struct vm_config **out,
		   struct diags *diags)
{
	struct load l = {
		.name = name, .d = diags, .root = root, .rootfd = rootfd,
		.vmfd = -1, .depth = depth, .flags = flags,
	};
	size_t errors = diags->errors;
	char *data_default = NULL;

	*out = NULL;
	l.data_root = roots->data_root;
	if (!l.data_root) {
		data_default = vmconfig_default_data_root(root);
		if (!data_default) {
			l.err = errno;
			goto out;
		}
		l.data_root = data_default;
	}
	l.cfg = calloc(1, sizeof(*l.cfg));
	if (!l.cfg) {
		l.err = ENOMEM;
		goto out;
	}
	l.cfg->memory = VMCONFIG_DEFAULT_MEMORY;
	l.cfg->cpus = VMCONFIG_DEFAULT_CPUS;
	memcpy(l.cfg->name, name, strnlen(name, VMCONFIG_NAME_MAX));
	load_check_name(&l);
	if (vmfd >= 0) {
		l.vmfd = fcntl(vmfd, F_DUPFD_CLOEXEC, 3);
		if (l.vmfd < 0) {
			l.err = errno;
			goto out;
		}
	} else if (load_open_vm(&l) < 0) {
		goto out;
	}
	l.cfg->dir = load_join(&l, root, name);
	if (!l.cfg->dir)
		goto out;
	load_kernel(&l);
	load_disks(&l);
	load_shares(&l);
	load_providers(&l);
	load_settings(&l);
	load_unknown(&l);
out:
	if (l.vmfd >= 0)
		close(l.vmfd);
	free(l.data_real);
	free(data_default);
	if (!l.err && diags->errors == errors && l.cfg && l.cfg->dir) {
		*out = l.cfg;
		return 0;
	}
	vmconfig_free(l.cfg);
	errno = l.err ? l.err : EINVAL;
	return -1;
}

int vmconfig_load_at(const struct vmconfig_roots *roots, int rootfd, int vmfd,
		     const char *name, unsigned int flags,
		     struct vm_config **out, struct diags *diags)
{
	return load_vm(roots, rootfd, roots->config_root, name, 0, flags, vmfd,
		       out, diags);
}

int vmconfig_load(const struct vmconfig_roots *roots, const char *name,
		  struct vm_config **out, struct diags *diags)
{
	struct vmconfig_roots resolved = *roots;
	char *root;
	int rootfd, r, saved;

	*out = NULL;
	root = realpath(roots->config_root, NULL);
	if (!root) {
		saved = errno;
		diags_add(diags, DIAG_ERROR, name, ".", "config root \"%s\": %s",
			  roots->config_root, strerror(saved));
		errno = saved;
		return -1;
	}
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
	if (rootfd < 0) {
		saved = errno;
		diags_add(diags, DIAG_ERROR, name, ".", "config root \"%s\": %s",
			  root, strerror(saved));
		free(root);
		errno = saved;
		return -1;
	}
	resolved.config_root = root;
	r = vmconfig_load_at(&resolved, rootfd, -1, name, 0, out, diags);
	saved = errno;
	close(rootfd);
	free(root);
	errno = saved;
	return r;
}

void vmconfig_free(struct vm_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->disk_count; i++) {
		free(cfg->disks[i].path);
		free(cfg->disks[i].relpath);
	}
	for (size_t i = 0; i < cfg->share_count; i++)
		free(cfg->shares[i].host_dir);
	for (size_t i = 0; i < cfg->provider_count; i++)
		free(cfg->providers[i]);
	free(cfg->disks);
	free(cfg->shares);
	free(cfg->providers);
	free(cfg->dir);
	free(cfg->kernel);
	free(cfg->cmdline);
	free(cfg);
}

/* Directories and links to them; a broken link is listed too, so that
 * `vm check` reports it.  The entry's type saves a stat for each VM (the
 * daemon lists the root at every `vm list`); only links, and file systems
 * that do not say (DT_UNKNOWN), are looked at. */
bool vmconfig_root_entry(int dirfd, const char *name, unsigned char d_type)
{
	struct stat st;

	switch (d_type) {
	case DT_DIR:
		return true;
	case DT_LNK:
		return fstatat(dirfd, name, &st, 0) < 0 || S_ISDIR(st.st_mode);
	case DT_UNKNOWN:
		break;
	default:
		return false;
	}
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	if (S_ISLNK(st.st_mode))
		return fstatat(dirfd, name, &st, 0) < 0 || S_ISDIR(st.st_mode);
	return S_ISDIR(st.st_mode);
}

static bool vmconfig_keep_vm_dir(int dirfd, const struct dirent *de)
{
	return vmconfig_root_entry(dirfd, de->d_name, de->d_type);
}

int vmconfig_list(const char *config_root, char ***names, size_t *count)
{
	DIR *dir;
	int fd, saved;

	*names = NULL;
	*count = 0;
	fd = open(config_root, O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	dir = fdopendir(fd);
	if (!dir) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return vmconfig_read_names(dir, vmconfig_keep_vm_dir, names, count);
}

void vmconfig_list_free(char **names, size_t count)
{
	if (!names)
		return;
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

char *vmconfig_default_data_root(const char *config_root)
{
	char *p = realpath(config_root, NULL), *slash;

	if (!p)
		p = strdup(config_root);
	if (!p)
		return NULL;
	for (int up = 0; up < 2; up++) {
		/* Drop trailing slashes, then the last component. */
		size_t n = strlen(p);

		while (n > 1 && p[n - 1] == '/')
			p[--n] = '\0';
		slash = strrchr(p, '/');
		if (!slash) {
			strcpy(p, ".");
			/* A relative single component: its parent is ".". */
			if (up == 0)
				continue;
			break;
		}
		if (slash == p)
			p[1] = '\0';
		else
			*slash = '\0';
	}
	return p;
}
