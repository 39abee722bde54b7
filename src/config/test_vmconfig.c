/* Unit tests for the VM directory loader: every rule, valid and invalid,
 * both seed formats.  Each test builds a tree under a fresh mkdtemp
 * directory laid out like Spectrum's: TMP/ext/svc/data is the config root,
 * TMP/ext the (default) data root. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/vmconfig.h"

struct t {
	char tmp[64];
	char data[256];
	char root[256];
	struct diags d;
	struct vm_config *cfg;
};

static const char elf[64] = "\177ELF\2\1\1";

/* out holds size bytes: a socket address is much shorter than PATH_MAX. */
static void t_path(struct t *t, const char *rel, char *out, size_t size)
{
	assert_true((size_t)snprintf(out, size, "%s/%s", t->root, rel) < size);
}

static void t_mkdirs(const char *path)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(buf, 0755);
		*p = '/';
	}
	mkdir(buf, 0755);
}

static void t_parent(const char *path)
{
	char buf[PATH_MAX], *slash;

	snprintf(buf, sizeof(buf), "%s", path);
	slash = strrchr(buf, '/');
	*slash = '\0';
	t_mkdirs(buf);
}

/* Write len bytes to ROOT/rel (parents created). */
static void t_put(struct t *t, const char *rel, const void *data, size_t len)
{
	char p[PATH_MAX];
	int fd;

	t_path(t, rel, p, sizeof(p));
	t_parent(p);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void t_puts(struct t *t, const char *rel, const char *s)
{
	t_put(t, rel, s, strlen(s));
}

static void t_dir(struct t *t, const char *rel)
{
	char p[PATH_MAX];

	t_path(t, rel, p, sizeof(p));
	t_mkdirs(p);
}

static void t_link(struct t *t, const char *target, const char *rel)
{
	char p[PATH_MAX];

	t_path(t, rel, p, sizeof(p));
	t_parent(p);
	assert_int_equal(symlink(target, p), 0);
}

static void t_fifo(struct t *t, const char *rel)
{
	char p[PATH_MAX];

	t_path(t, rel, p, sizeof(p));
	t_parent(p);
	assert_int_equal(mkfifo(p, 0644), 0);
}

/* A valid VM of the newer format: vmlinux and blk/root.img. */
static void t_vm(struct t *t, const char *name)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "%s/vmlinux", name);
	t_put(t, rel, elf, sizeof(elf));
	snprintf(rel, sizeof(rel), "%s/blk/root.img", name);
	t_puts(t, rel, "disk");
}

static int t_load_roots(struct t *t, const char *name, const char *data_root)
{
	struct vmconfig_roots roots = { t->root, data_root };

	vmconfig_free(t->cfg);
	t->cfg = NULL;
	diags_free(&t->d);
	return vmconfig_load(&roots, name, &t->cfg, &t->d);
}

static int t_load(struct t *t, const char *name)
{
	return t_load_roots(t, name, NULL);
}

/* Whether a diagnostic with this level and path contains text. */
static bool t_has(struct t *t, enum diag_level level, const char *path,
		  const char *text)
{
	for (size_t i = 0; i < t->d.count; i++) {
		struct diag *g = &t->d.items[i];

		if (g->level == level && !strcmp(g->path, path) &&
		    strstr(g->message, text))
			return true;
	}
	for (size_t i = 0; i < t->d.count; i++) {
		char *s = diag_format(&t->d.items[i]);

		fprintf(stderr, "  have: %s\n", s);
		free(s);
	}
	fprintf(stderr, "  want: %s %s: %s\n", diag_level_name(level), path, text);
	return false;
}

#define assert_error(t, path, text) assert_true(t_has(t, DIAG_ERROR, path, text))
#define assert_warning(t, path, text) assert_true(t_has(t, DIAG_WARNING, path, text))
#define assert_note(t, path, text) assert_true(t_has(t, DIAG_NOTE, path, text))

static void t_valid(struct t *t, const char *name)
{
	int r = t_load(t, name);

	if (r != 0)
		(void)t_has(t, DIAG_ERROR, "-", "(expected valid)");
	assert_int_equal(r, 0);
	assert_non_null(t->cfg);
	assert_int_equal(t->d.errors, 0);
}

static void t_invalid(struct t *t, const char *name)
{
	assert_int_equal(t_load(t, name), -1);
	assert_int_equal(errno, EINVAL);
	assert_null(t->cfg);
	assert_true(t->d.errors > 0);
}

static int t_setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	snprintf(t->tmp, sizeof(t->tmp), "/tmp/vmconfig-test-XXXXXX");
	assert_non_null(mkdtemp(t->tmp));
	snprintf(t->data, sizeof(t->data), "%s/ext", t->tmp);
	snprintf(t->root, sizeof(t->root), "%s/ext/svc/data", t->tmp);
	t_mkdirs(t->root);
	diags_init(&t->d);
	*state = t;
	return 0;
}

static int t_rm(const char *path, const struct stat *st, int flag,
		struct FTW *ftw)
{
	return remove(path);
}

static int t_teardown(void **state)
{
	struct t *t = *state;

	vmconfig_free(t->cfg);
	diags_free(&t->d);
	nftw(t->tmp, t_rm, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

/* ---- name ---- */

static void test_name_rule(void **state)
{
	char long_name[80];

	assert_true(vmconfig_name_valid("appvm-lynx"));
	assert_true(vmconfig_name_valid("a.b_c-D9"));
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	assert_true(vmconfig_name_valid(long_name));
	long_name[64] = 'a';
	long_name[65] = '\0';
	assert_false(vmconfig_name_valid(long_name));
	assert_false(vmconfig_name_valid(""));
	assert_false(vmconfig_name_valid(".hidden"));
	assert_false(vmconfig_name_valid("-opt"));
	assert_false(vmconfig_name_valid("a b"));
	assert_false(vmconfig_name_valid("a/b"));
	assert_false(vmconfig_name_valid("caf\xc3\xa9"));
	assert_false(vmconfig_name_valid("a,b"));
}

static void test_name_invalid_dir(void **state)
{
	struct t *t = *state;

	t_vm(t, "bad name");
	t_puts(t, "bad name/memory", "lots");
	t_invalid(t, "bad name");
	assert_error(t, ".", "invalid VM name \"bad name\"");
	/* The rest is still checked. */
	assert_error(t, "memory", "\"lots\"");
	t_vm(t, "-x");
	t_invalid(t, "-x");
	assert_error(t, ".", "invalid VM name");
	t_vm(t, ".x");
	t_invalid(t, ".x");
	assert_error(t, ".", "invalid VM name");
	/* Escaped in diagnostics. */
	t_vm(t, "nl\nx");
	t_invalid(t, "nl\nx");
	assert_string_equal(t->d.items[0].vm, "nl\\nx");
	/* Never walks out of the config root. */
	t_invalid(t, "../..");
	t_invalid(t, "a/b");
}

static void test_missing_vm_and_root(void **state)
{
	struct t *t = *state;
	struct vmconfig_roots roots = { "/nonexistent/vmhost", NULL };

	t_invalid(t, "nosuch");
	assert_error(t, ".", "no such VM");
	t_puts(t, "afile", "x");
	t_invalid(t, "afile");
	assert_error(t, ".", "is a regular file, not a VM directory");
	diags_free(&t->d);
	assert_int_equal(vmconfig_load(&roots, "x", &t->cfg, &t->d), -1);
	assert_int_equal(errno, ENOENT);
	assert_error(t, ".", "config root");
}

/* ---- formats and defaults ---- */

static void test_blk_format(void **state)
{
	struct t *t = *state;

	t_vm(t, "vm");
	t_puts(t, "vm/blk/b.img", "b");
	t_puts(t, "vm/blk/a.img", "a");
	t_valid(t, "vm");
	assert_string_equal(t->cfg->name, "vm");
	assert_int_equal(t->cfg->disk_count, 3);
	assert_string_equal(t->cfg->disks[0].relpath, "blk/a.img");
	assert_string_equal(t->cfg->disks[1].relpath, "blk/b.img");
	assert_string_equal(t->cfg->disks[2].relpath, "blk/root.img");
	assert_true(strstr(t->cfg->disks[0].path, "/ext/svc/data/vm/blk/a.img"));
	assert_true(strstr(t->cfg->kernel, "/ext/svc/data/vm/vmlinux"));
	assert_string_equal(t->cfg->cmdline, "console=ttyS0 root=PARTLABEL=root");
	assert_int_equal(t->cfg->memory, 1ull << 30);
	assert_int_equal(t->cfg->cpus, 1);
	assert_false(t->cfg->wayland);
	assert_false(t->cfg->uplink);
	assert_int_equal(t->cfg->share_count, 0);
	assert_int_equal(t->cfg->provider_count, 0);
	assert_int_equal(t->d.count, 0);
}

static void test_rootfs_format(void **state)
{
	struct t *t = *state;

	t_put(t, "old/vmlinux", elf, sizeof(elf));
	t_puts(t, "old/rootfs.ext4", "fs");
	t_dir(t, "old/providers/net");
	t_vm(t, "netvm");
	t_puts(t, "old/providers/net/netvm", "ignored contents");
	t_valid(t, "old");
	assert_int_equal(t->cfg->disk_count, 1);
	assert_string_equal(t->cfg->disks[0].relpath, "rootfs.ext4");
	assert_string_equal(t->cfg->cmdline, "console=ttyS0 root=/dev/vda");
	assert_int_equal(t->cfg->provider_count, 1);
	assert_string_equal(t->cfg->providers[0], "netvm");
}

static void test_both_formats(void **state)
{
	struct t *t = *state;

	t_vm(t, "both");
	t_puts(t, "both/rootfs.ext4", "fs");
	t_valid(t, "both");
	assert_int_equal(t->cfg->disk_count, 2);
	assert_string_equal(t->cfg->disks[0].relpath, "rootfs.ext4");
	assert_string_equal(t->cfg->disks[1].relpath, "blk/root.img");
	assert_string_equal(t->cfg->cmdline, "console=ttyS0 root=/dev/vda");
}

/* ---- vmlinux ---- */

static void test_kernel(void **state)
{
	struct t *t = *state;
	char bz[1024] = { 0 };
	char p[PATH_MAX];

	t_vm(t, "vm");
	t_path(t, "vm/vmlinux", p, sizeof(p));
	unlink(p);
	t_invalid(t, "vm");
	assert_error(t, "vmlinux", "missing");

	memcpy(bz + 0x202, "HdrS", 4);
	t_put(t, "vm/vmlinux", bz, sizeof(bz));
	t_invalid(t, "vm");
	assert_error(t, "vmlinux", "compressed kernel (bzImage)");

	t_puts(t, "vm/vmlinux", "#!/bin/sh\n");
	t_invalid(t, "vm");
	assert_error(t, "vmlinux", "not an ELF image (starts with \"#!/b\")");

	t_puts(t, "vm/vmlinux", "");
	t_invalid(t, "vm");
	assert_error(t, "vmlinux", "empty file");

	unlink(p);
	t_dir(t, "vm/vmlinux");
	t_invalid(t, "vm");
	assert_error(t, "vmlinux", "is a directory");
	rmdir(p);

	/* A FIFO must not hang the loader. */
	t_fifo(t, "vm/vmlinux");
	t_invalid(t, "vm");
	assert_error(t, "vmlinux", "is a FIFO");
	unlink(p);

	/* A link to an ELF file is fine. */
	t_put(t, "vm/real-kernel", elf, sizeof(elf));
	t_link(t, "real-kernel", "vm/vmlinux");
	t_load(t, "vm");
	assert_int_equal(t->d.errors, 0);
	unlink(p);

	t_link(t, "nowhere", "vm/vmlinux");
	t_invalid(t, "vm");
	assert_error(t, "vmlinux", "dangling symbolic link");
	unlink(p);

	t_link(t, "vmlinux", "vm/vmlinux");
	t_invalid(t, "vm");
	assert_error(t, "vmlinux", "symbolic link loop");
	unlink(p);

	t_link(t, "/dev/null", "vm/vmlinux");
	t_invalid(t, "vm");
	assert_error(t, "vmlinux", "is a character device");
}

/* ---- disks ---- */

static void test_disks_invalid(void **state)
{
	struct t *t = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s;

	t_put(t, "vm/vmlinux", elf, sizeof(elf));
	t_invalid(t, "vm");
	assert_error(t, "blk", "no usable disk");

	t_dir(t, "vm/blk/dir.img");
	t_fifo(t, "vm/blk/fifo.img");
	t_link(t, "/dev/null", "vm/blk/chr.img");
	t_link(t, "gone", "vm/blk/dangling.img");
	t_link(t, "loop.img", "vm/blk/loop.img");
	t_puts(t, "vm/blk/README", "not a disk");
	t_path(t, "vm/blk/sock.img", sa.sun_path, sizeof(sa.sun_path));
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	t_invalid(t, "vm");
	assert_error(t, "blk/dir.img", "is a directory");
	assert_error(t, "blk/fifo.img", "is a FIFO");
	assert_error(t, "blk/sock.img", "is a socket");
	assert_error(t, "blk/chr.img", "is a character device");
	assert_error(t, "blk/dangling.img", "dangling symbolic link");
	assert_error(t, "blk/loop.img", "symbolic link loop");
	assert_note(t, "blk/README", "ignored");
	assert_error(t, "blk", "no usable disk");

	t_puts(t, "vm2/vmlinux", "");
	t_puts(t, "vm2/blk", "file");
	t_invalid(t, "vm2");
	assert_error(t, "blk", "not a directory");

	t_put(t, "vm3/vmlinux", elf, sizeof(elf));
	t_dir(t, "vm3/rootfs.ext4");
	t_invalid(t, "vm3");
	assert_error(t, "rootfs.ext4", "is a directory");
}

static void test_disks_links_and_notes(void **state)
{
	struct t *t = *state;
	struct stat st;
	char p[PATH_MAX];

	t_vm(t, "vm");
	t_puts(t, "images/x", "disk");
	t_path(t, "images/x", p, sizeof(p));
	t_link(t, p, "vm/blk/linked.img");
	t_puts(t, "vm/blk/notes.txt", "");
	t_valid(t, "vm");
	assert_int_equal(t->cfg->disk_count, 2);
	assert_string_equal(t->cfg->disks[0].relpath, "blk/linked.img");
	assert_note(t, "blk/notes.txt", "not named *.img");
	/* A block device, where the machine has one. */
	if (stat("/dev/loop0", &st) == 0 && S_ISBLK(st.st_mode)) {
		t_link(t, "/dev/loop0", "vm/blk/dev.img");
		t_valid(t, "vm");
		assert_int_equal(t->cfg->disk_count, 3);
	}
}

static void test_blk_many_entries_fast(void **state)
{
	struct t *t = *state;
	char rel[64];
	struct timespec a, b;

	t_vm(t, "vm");
	for (int i = 0; i < 10000; i++) {
		/* Ten images (at most VMCONFIG_DISKS_MAX are allowed), the
		 * rest ignored with capped notes. */
		snprintf(rel, sizeof(rel), "vm/blk/%05d.%s", i,
			 i % 1000 == 1 ? "img" : "txt");
		t_puts(t, rel, "");
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	t_valid(t, "vm");
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(t->cfg->disk_count, 11);
	assert_string_equal(t->cfg->disks[0].relpath, "blk/00001.img");
	assert_string_equal(t->cfg->disks[1].relpath, "blk/01001.img");
	assert_string_equal(t->cfg->disks[10].relpath, "blk/root.img");
	/* Notes are capped: 20, then one summary. */
	assert_true(t->d.count <= 21);
	assert_note(t, "blk", "more entries not named *.img ignored");
	/* Reported in name order, whatever readdir's order. */
	assert_string_equal(t->d.items[0].path, "blk/00000.txt");
	assert_string_equal(t->d.items[1].path, "blk/00002.txt");
	assert_true((b.tv_sec - a.tv_sec) < 3);
}

/* ---- shared-dirs ---- */

static void test_shares_valid(void **state)
{
	struct t *t = *state;
	char target[PATH_MAX];

	t_vm(t, "vm");
	snprintf(target, sizeof(target), "%s/home/user", t->data);
	t_mkdirs(target);
	t_link(t, target, "vm/shared-dirs/home/dir");
	/* Relative link, through .. but staying inside. */
	t_link(t, "../../../../../home", "vm/shared-dirs/a.b_c/dir");
	t_valid(t, "vm");
	assert_int_equal(t->cfg->share_count, 2);
	assert_string_equal(t->cfg->shares[0].tag, "a.b_c");
	assert_string_equal(t->cfg->shares[1].tag, "home");
	assert_string_equal(t->cfg->shares[1].host_dir, target);
	/* The whole data root may be shared. */
	t_link(t, t->data, "vm/shared-dirs/all/dir");
	t_valid(t, "vm");
	/* --data-root narrows what may be shared. */
	t_load_roots(t, "vm", target);
	assert_error(t, "shared-dirs/all/dir", "outside the data root");
}

static void test_shares_invalid(void **state)
{
	struct t *t = *state;
	char p[PATH_MAX], tag[64];

	t_vm(t, "vm");
	/* /ext2 is not inside /ext. */
	snprintf(p, sizeof(p), "%s2/x", t->data);
	t_mkdirs(p);
	t_link(t, p, "vm/shared-dirs/prefix/dir");
	t_link(t, "/tmp", "vm/shared-dirs/outside/dir");
	t_link(t, "../../../../../..", "vm/shared-dirs/dotdot/dir");
	/* A chain: inside link -> link that leads out. */
	snprintf(p, sizeof(p), "%s/escape", t->data);
	assert_int_equal(symlink("/etc", p), 0);
	t_link(t, p, "vm/shared-dirs/chain/dir");
	t_dir(t, "vm/shared-dirs/nodir");
	t_dir(t, "vm/shared-dirs/realdir/dir");
	t_link(t, "nothing-here", "vm/shared-dirs/dangling/dir");
	snprintf(p, sizeof(p), "%s/file", t->data);
	close(open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	t_link(t, p, "vm/shared-dirs/file/dir");
	t_link(t, "dir", "vm/shared-dirs/loop/dir");
	memset(tag, 't', 37);
	tag[37] = '\0';
	snprintf(p, sizeof(p), "vm/shared-dirs/%s/dir", tag);
	t_link(t, t->data, p);
	t_link(t, t->data, "vm/shared-dirs/bad tag/dir");
	t_puts(t, "vm/shared-dirs/plainfile", "");
	t_invalid(t, "vm");
	assert_error(t, "shared-dirs/prefix/dir", "outside the data root");
	assert_error(t, "shared-dirs/outside/dir", "\"/tmp\" is outside the data root");
	assert_error(t, "shared-dirs/dotdot/dir", "outside the data root");
	assert_error(t, "shared-dirs/chain/dir", "\"/etc\" is outside the data root");
	assert_error(t, "shared-dirs/nodir/dir", "missing; must be a symbolic link");
	assert_error(t, "shared-dirs/realdir/dir", "is a directory; must be a symbolic link");
	assert_error(t, "shared-dirs/dangling/dir", "target does not exist");
	assert_error(t, "shared-dirs/file/dir", "is not a directory");
	assert_error(t, "shared-dirs/loop/dir", "symbolic link loop");
	snprintf(p, sizeof(p), "shared-dirs/%s", tag);
	assert_error(t, p, "invalid tag");
	assert_error(t, "shared-dirs/bad tag", "invalid tag \"bad tag\"");
	assert_error(t, "shared-dirs/plainfile", "must be a directory");

	t_vm(t, "vm2");
	t_link(t, t->data, "vm2/shared-dirs/x/dir");
	t_load_roots(t, "vm2", "/nonexistent/data");
	assert_error(t, "shared-dirs/x/dir", "data root \"/nonexistent/data\" cannot be resolved");
}

/* ---- providers ---- */

static void test_providers_valid(void **state)
{
	struct t *t = *state;

	t_vm(t, "app");
	t_vm(t, "netvm");
	t_vm(t, "net2");
	t_puts(t, "app/providers/net/netvm", "");
	t_puts(t, "app/providers/net/net2", "");
	t_puts(t, "netvm/uplink", "");
	/* A chain is fine: net2 gets its network from netvm. */
	t_puts(t, "net2/providers/net/netvm", "");
	t_valid(t, "app");
	assert_int_equal(t->cfg->provider_count, 2);
	assert_string_equal(t->cfg->providers[0], "net2");
	assert_string_equal(t->cfg->providers[1], "netvm");
	t_dir(t, "app/providers/gpu");
	t_valid(t, "app");
	assert_warning(t, "providers/gpu", "unknown kind of provider");
}

static void test_providers_invalid(void **state)
{
	struct t *t = *state;

	t_vm(t, "app");
	t_puts(t, "app/providers/net/nosuch", "");
	t_puts(t, "app/providers/net/app", "");
	t_puts(t, "app/providers/net/bad name", "");
	t_dir(t, "broken");
	t_puts(t, "app/providers/net/broken", "");
	t_invalid(t, "app");
	assert_error(t, "providers/net/nosuch", "no VM named \"nosuch\"");
	assert_error(t, "providers/net/app", "cannot be its own network provider");
	assert_error(t, "providers/net/bad name", "not a valid VM name");
	assert_error(t, "providers/net/broken", "provider \"broken\" is not a valid VM");

	t_vm(t, "b");
	t_puts(t, "b/providers", "");
	t_invalid(t, "b");
	assert_error(t, "providers", "not a directory");
}

static void test_provider_cycles(void **state)
{
	struct t *t = *state;

	t_vm(t, "a");
	t_vm(t, "b");
	t_vm(t, "c");
	t_vm(t, "d");
	t_puts(t, "a/providers/net/b", "");
	t_puts(t, "b/providers/net/a", "");
	t_invalid(t, "a");
	assert_error(t, "providers/net/b", "provider cycle: a -> b -> a");
	assert_int_equal(t->d.errors, 1);
	t_invalid(t, "b");
	assert_error(t, "providers/net/a", "provider cycle: b -> a -> b");

	t_puts(t, "c/providers/net/d", "");
	t_puts(t, "d/providers/net/b", "");
	t_puts(t, "b/providers/net/c", "");
	t_invalid(t, "c");
	assert_error(t, "providers/net/d", "provider cycle: c -> d -> b -> c");

	/* Not on a cycle itself, but its provider is. */
	t_vm(t, "e");
	t_puts(t, "e/providers/net/a", "");
	t_invalid(t, "e");
	assert_error(t, "providers/net/a", "provider \"a\" is not a valid VM");
}

/* ---- flags ---- */

static void test_flags(void **state)
{
	struct t *t = *state;

	t_vm(t, "vm");
	t_puts(t, "vm/wayland", "");
	t_puts(t, "vm/uplink", "");
	t_valid(t, "vm");
	assert_true(t->cfg->wayland);
	assert_true(t->cfg->uplink);
	assert_int_equal(t->d.count, 0);
	assert_false(t->cfg->uplink_host_loopback);
	t_puts(t, "vm/wayland", "yes\n");
	t_puts(t, "vm/uplink", "host-loopback\n");
	t_valid(t, "vm");
	assert_true(t->cfg->wayland);
	assert_true(t->cfg->uplink && t->cfg->uplink_host_loopback);
	assert_warning(t, "wayland", "not empty (4 bytes)");
	t_puts(t, "vm/uplink", "eth0");
	t_invalid(t, "vm");
	assert_error(t, "uplink", "invalid uplink setting \"eth0\": expected an empty file or \"host-loopback\"");

	t_vm(t, "vm2");
	t_dir(t, "vm2/wayland");
	t_fifo(t, "vm2/uplink");
	t_invalid(t, "vm2");
	assert_error(t, "wayland", "is a directory");
	assert_error(t, "uplink", "is a FIFO");
}

/* ---- memory, cpus, cmdline ---- */

static void test_memory_parse(void **state)
{
	static const struct {
		const char *s;
		uint64_t bytes;
	} ok[] = {
		{ "16M", 16ull << 20 }, { "256M", 256ull << 20 },
		{ "1G", 1ull << 30 }, { "1g", 1ull << 30 },
		{ "1048576K", 1ull << 30 }, { "268435456", 256ull << 20 },
		{ "256G", 256ull << 30 },
	};
	static const char *const bad[] = {
		"", "M", "abc", "256MB", "256 M", "-1G", "15M", "1024", "0",
		"257G", "1T", "1P", "1.5G", "99999999999999999999999G",
		"1048577K", "+1G",
	};
	const char *why;
	uint64_t b;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(vmconfig_parse_memory(ok[i].s, &b, &why), 0);
		assert_int_equal(b, ok[i].bytes);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (vmconfig_parse_memory(bad[i], &b, &why) == 0)
			fail_msg("memory \"%s\" accepted", bad[i]);
		assert_non_null(why);
	}
}

static void test_cpus_parse(void **state)
{
	static const char *const bad[] = { "", "0", "65", "-1", "1.5", "01",
					   "two", "4 cpus", "99999999999" };
	const char *why;
	unsigned int n;

	assert_int_equal(vmconfig_parse_cpus("1", &n, &why), 0);
	assert_int_equal(n, 1);
	assert_int_equal(vmconfig_parse_cpus("64", &n, &why), 0);
	assert_int_equal(n, 64);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vmconfig_parse_cpus(bad[i], &n, &why) == 0)
			fail_msg("cpus \"%s\" accepted", bad[i]);
}

static void test_settings_files(void **state)
{
	struct t *t = *state;
	char big[VMCONFIG_SETTING_MAX + 10];

	t_vm(t, "vm");
	t_puts(t, "vm/memory", "512M\n");
	t_puts(t, "vm/cpus", "4\n");
	t_puts(t, "vm/cmdline", "console=ttyS0 root=/dev/vdb quiet\n");
	t_valid(t, "vm");
	assert_int_equal(t->cfg->memory, 512ull << 20);
	assert_int_equal(t->cfg->cpus, 4);
	assert_string_equal(t->cfg->cmdline, "console=ttyS0 root=/dev/vdb quiet");

	t_puts(t, "vm/memory", "lots of\x01");
	t_puts(t, "vm/cpus", "100");
	t_put(t, "vm/cmdline", "a\0b", 3);
	t_invalid(t, "vm");
	assert_error(t, "memory", "invalid memory size \"lots of\\x01\"");
	assert_error(t, "cpus", "invalid number of CPUs \"100\"");
	assert_error(t, "cmdline", "contains a NUL byte");

	t_puts(t, "vm/memory", "8M");
	t_puts(t, "vm/cpus", "0");
	t_puts(t, "vm/cmdline", "one\ntwo\n");
	t_invalid(t, "vm");
	assert_error(t, "memory", "\"8M\": less than the minimum");
	assert_error(t, "cpus", "\"0\"");
	assert_error(t, "cmdline", "must be a single line");

	memset(big, 'x', sizeof(big));
	t_put(t, "vm/cmdline", big, VMCONFIG_SETTING_MAX + 1);
	t_puts(t, "vm/memory", "");
	t_invalid(t, "vm");
	assert_error(t, "cmdline", "too large");
	assert_error(t, "memory", "invalid memory size \"\"");
	/* Exactly 4096 bytes plus a newline is fine. */
	big[VMCONFIG_SETTING_MAX] = '\n';
	t_put(t, "vm/cmdline", big, VMCONFIG_SETTING_MAX + 1);
	t_puts(t, "vm/memory", "1G");
	t_puts(t, "vm/cpus", "2");
	t_valid(t, "vm");
	assert_int_equal(strlen(t->cfg->cmdline), VMCONFIG_SETTING_MAX);

	/* FIFOs and directories in place of settings: errors, no hang. */
	t_vm(t, "vm2");
	t_fifo(t, "vm2/memory");
	t_fifo(t, "vm2/cmdline");
	t_dir(t, "vm2/cpus");
	t_invalid(t, "vm2");
	assert_error(t, "memory", "is a FIFO, not a regular file");
	assert_error(t, "cmdline", "is a FIFO");
	assert_error(t, "cpus", "is a directory");
}

/* ---- unknown entries ---- */

static void test_unknown_entries(void **state)
{
	struct t *t = *state;

	t_vm(t, "vm");
	t_dir(t, "vm/shared-dir");
	t_puts(t, "vm/vmlinuz", "");
	t_puts(t, "vm/root.img", "");
	t_puts(t, "vm/notes", "");
	t_puts(t, "vm/memroy", "1G");
	t_valid(t, "vm");
	assert_warning(t, "shared-dir", "did you mean \"shared-dirs\"?");
	assert_warning(t, "vmlinuz", "did you mean \"vmlinux\"?");
	assert_warning(t, "memroy", "did you mean \"memory\"?");
	assert_warning(t, "root.img", "disk images go in blk/");
	assert_warning(t, "notes", "unknown entry, ignored");
}

/* ---- listing, data root, helpers ---- */

static void test_list(void **state)
{
	struct t *t = *state;
	char **names;
	size_t n;
	char p[PATH_MAX];

	t_vm(t, "b");
	t_vm(t, "a");
	t_dir(t, "bad name");
	t_puts(t, "file", "");
	t_path(t, "b", p, sizeof(p));
	t_link(t, p, "linked");
	t_link(t, "nowhere", "broken");
	/* A link to a file is no VM (the entry type alone does not say). */
	t_path(t, "file", p, sizeof(p));
	t_link(t, p, "tofile");
	assert_int_equal(vmconfig_list(t->root, &names, &n), 0);
	assert_int_equal(n, 5);
	assert_string_equal(names[0], "a");
	assert_string_equal(names[1], "b");
	assert_string_equal(names[2], "bad name");
	assert_string_equal(names[3], "broken");
	assert_string_equal(names[4], "linked");
	vmconfig_list_free(names, n);
	assert_int_equal(vmconfig_list("/nonexistent/x", &names, &n), -1);
	assert_int_equal(errno, ENOENT);
	/* A VM reached through a link to a directory loads. */
	t_valid(t, "linked");
}

static void test_default_data_root(void **state)
{
	struct t *t = *state;
	char *d = vmconfig_default_data_root(t->root);
	char want[PATH_MAX];

	assert_non_null(realpath(t->data, want));
	assert_string_equal(d, want);
	free(d);
	d = vmconfig_default_data_root("/nonexistent/svc/data/");
	assert_string_equal(d, "/nonexistent");
	free(d);
	d = vmconfig_default_data_root("/data");
	assert_string_equal(d, "/");
	free(d);
}

static void test_escape_and_format(void **state)
{
	struct diags d;
	char *s;

	s = vmconfig_escape("a\"b\\c\n\t\x01\xff", 9, 100);
	assert_string_equal(s, "a\\\"b\\\\c\\n\\t\\x01\\xff");
	free(s);
	s = vmconfig_escape("abcdef", 6, 3);
	assert_string_equal(s, "abc...");
	free(s);
	diags_init(&d);
	assert_int_equal(diags_add(&d, DIAG_ERROR, "vm", "", "bad %d", 1), 0);
	assert_int_equal(diags_add(&d, DIAG_WARNING, "vm", "x", "hmm"), 0);
	assert_int_equal(diags_add(&d, DIAG_NOTE, "vm", "y", "fyi"), 0);
	assert_int_equal(d.errors, 1);
	s = diag_format(&d.items[0]);
	assert_string_equal(s, "vm: .: bad 1");
	free(s);
	s = diag_format(&d.items[1]);
	assert_string_equal(s, "vm: x: warning: hmm");
	free(s);
	s = diag_format(&d.items[2]);
	assert_string_equal(s, "vm: y: note: fyi");
	free(s);
	diags_free(&d);
}

static void test_edit_distance_and_tags(void **state)
{
	assert_int_equal(vmconfig_edit_distance("shared-dir", "shared-dirs", 2), 1);
	assert_int_equal(vmconfig_edit_distance("vmlinux", "vmlinux", 2), 0);
	assert_int_equal(vmconfig_edit_distance("abc", "xyz", 2), 3);
	assert_int_equal(vmconfig_edit_distance("memroy", "memory", 2), 2);
	assert_true(vmconfig_tag_valid("home"));
	assert_true(vmconfig_tag_valid(".x"));
	assert_false(vmconfig_tag_valid(""));
	assert_false(vmconfig_tag_valid("a b"));
	assert_true(vmconfig_tag_valid("123456789012345678901234567890123456"));
	assert_false(vmconfig_tag_valid("1234567890123456789012345678901234567"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, t_setup, t_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_name_rule),
		T(test_name_invalid_dir),
		T(test_missing_vm_and_root),
		T(test_blk_format),
		T(test_rootfs_format),
		T(test_both_formats),
		T(test_kernel),
		T(test_disks_invalid),
		T(test_disks_links_and_notes),
		T(test_blk_many_entries_fast),
		T(test_shares_valid),
		T(test_shares_invalid),
		T(test_providers_valid),
		T(test_providers_invalid),
		T(test_provider_cycles),
		T(test_flags),
		T(test_memory_parse),
		T(test_cpus_parse),
		T(test_settings_files),
		T(test_unknown_entries),
		T(test_list),
		T(test_default_data_root),
		T(test_escape_and_format),
		T(test_edit_distance_and_tags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
