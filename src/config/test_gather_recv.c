/* Unit tests for the gatherer's privileged side facing a hostile child:
 * the test plays the child on a socketpair and sends frames and fds that
 * the real child never would, and the parent must refuse each: a frame
 * for another VM, a diagnostic about another VM, missing or extra fds, an
 * fd open for writing or O_PATH, a kernel that is no sealed copy, a
 * directory as a disk, a share of the config root, an oversized frame. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/sealcopy.h"
#include "config/gather_int.h"

struct t {
	char top[64];
	char config[96];
	struct gather_policy p;
	struct gather_run *run;
	struct gather_item item;
	struct vm_config *cfg;  /* "a" as the loader sees it */
	int child;              /* the test's end */
};

static void t_write(const char *path, const char *data)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));
	struct vmconfig_roots roots;
	char path[PATH_MAX], target[PATH_MAX];
	struct diags d;
	int sv[2];

	strcpy(t->top, "/tmp/test-gather-recv-XXXXXX");
	assert_non_null(mkdtemp(t->top));
	snprintf(t->config, sizeof(t->config), "%s/ext/svc/data", t->top);
	snprintf(path, sizeof(path), "mkdir -p %s/a/blk %s/a/shared-dirs/home %s/ext/home",
		 t->config, t->config, t->top);
	assert_int_equal(system(path), 0);
	snprintf(path, sizeof(path), "%s/a/vmlinux", t->config);
	t_write(path, "\177ELF kernel");
	snprintf(path, sizeof(path), "%s/a/blk/root.img", t->config);
	t_write(path, "disk");
	snprintf(path, sizeof(path), "%s/a/memory", t->config);
	t_write(path, "64M");
	snprintf(path, sizeof(path), "%s/a/shared-dirs/home/dir", t->config);
	snprintf(target, sizeof(target), "%s/ext/home", t->top);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(gather_policy_init(&t->p), 0);
	t->p.roots.config_root = t->config;
	diags_init(&d);
	roots = t->p.roots;
	assert_int_equal(vmconfig_load(&roots, "a", &t->cfg, &d), 0);
	diags_free(&d);

	t->run = gather_run_new(&t->p);
	assert_non_null(t->run);
	diags_init(&d);
	assert_int_equal(gather_roots_open(&t->p, "a", &t->run->roots, &d), 0);
	diags_free(&d);
	assert_int_equal(gather_run_add(t->run, "a"), 0);
	t->run->owner.uid = geteuid();
	t->run->owner.gid = getegid();
	t->run->copy_kernel = true;
	t->run->keep_fds = true;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	t->run->sock = sv[0];
	t->child = sv[1];
	vm_files_init(&t->item.files);
	diags_init(&t->item.diags);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;
	char cmd[128];

	vm_files_release(&t->item.files);
	diags_free(&t->item.diags);
	gather_run_free(t->run);
	close(t->child);
	vmconfig_free(t->cfg);
	gather_policy_free(&t->p);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->top);
	assert_int_equal(system(cmd), 0);
	free(t);
	return 0;
}

/* The fds a good child sends for "a": a sealed kernel copy, the disk and
 * the share, all read-only. */
static void good_fds(struct t *t, int fds[3])
{
	char path[PATH_MAX], proc[32];
	int file, copy;

	snprintf(path, sizeof(path), "%s/a/vmlinux", t->config);
	file = open(path, O_RDONLY | O_CLOEXEC);
	copy = sealcopy(file, "vmlinux", 1 << 20);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", copy);
	fds[0] = open(proc, O_RDONLY | O_CLOEXEC);
	close(file);
	close(copy);
	snprintf(path, sizeof(path), "%s/a/blk/root.img", t->config);
	fds[1] = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/ext/home", t->top);
	fds[2] = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (int i = 0; i < 3; i++)
		assert_true(fds[i] >= 0);
}

/* A frame as gather_child_vm builds it, sent with nfds of fds. */
static void send_frame(struct t *t, const char *name, bool config,
		       uint64_t mask, const struct diags *d, const int *fds,
		       size_t nfds)
{
	struct vmwire_out o;

	vmwire_out_init(&o);
	vmwire_put_u32(&o, GATHER_MAGIC);
	vmwire_put_str(&o, name);
	vmwire_put_u8(&o, config);
	if (config) {
		vmwire_put_config(&o, t->cfg);
		vmwire_put_u64(&o, mask);
	}
	vmwire_put_diags(&o, d);
	assert_int_equal(o.err, 0);
	assert_int_equal(gather_send(t->child, &o, fds, nfds), 0);
	vmwire_out_free(&o);
	for (size_t i = 0; i < nfds; i++)
		close(fds[i]);
}

/* What the parent makes of it once the child has hung up. */
static int outcome(struct t *t)
{
	shutdown(t->child, SHUT_WR);
	return gather_run_step(t->run, &t->item);
}

static bool has_diag(const struct diags *d, const char *path, const char *text)
{
	for (size_t i = 0; i < d->count; i++)
		if (!strcmp(d->items[i].path, path) &&
		    strstr(d->items[i].message, text))
			return true;
	return false;
}

static void test_good_frame(void **state)
{
	struct t *t = *state;
	struct diags d;
	int fds[3];

	diags_init(&d);
	good_fds(t, fds);
	send_frame(t, "a", true, 7, &d, fds, 3);
	assert_int_equal(outcome(t), 1);
	assert_true(t->item.valid);
	assert_true(sealcopy_sealed(t->item.files.kernel_fd));
	assert_true(t->item.files.disk_fds[0] > 2);
	assert_true(t->item.files.share_fds[0] > 2);
}

static void test_frame_for_another_vm(void **state)
{
	struct t *t = *state;
	struct diags d;
	int fds[3];

	diags_init(&d);
	good_fds(t, fds);
	send_frame(t, "b", true, 7, &d, fds, 3);
	assert_int_equal(outcome(t), -1);
	assert_int_equal(errno, EBADMSG);
}

static void test_diagnostic_about_another_vm(void **state)
{
	struct t *t = *state;
	struct diags d;

	diags_init(&d);
	diags_add(&d, DIAG_ERROR, "b", "vmlinux", "blame someone else");
	send_frame(t, "a", false, 0, &d, NULL, 0);
	diags_free(&d);
	assert_int_equal(outcome(t), -1);
	assert_int_equal(errno, EBADMSG);
}

static void test_invalid_without_a_reason(void **state)
{
	struct t *t = *state;
	struct diags d;
	int fds[3];

	diags_init(&d);
	send_frame(t, "a", false, 0, &d, NULL, 0);
	assert_int_equal(outcome(t), -1);
	assert_int_equal(errno, EBADMSG);
	/* A missing file needs a reason too. */
	teardown(state);
	setup(state);
	t = *state;
	good_fds(t, fds);
	close(fds[2]);
	send_frame(t, "a", true, 3, &d, fds, 2);
	assert_int_equal(outcome(t), -1);
	assert_int_equal(errno, EBADMSG);
}

static void test_fds_missing_or_extra(void **state)
{
	struct t *t = *state;
	struct diags d;
	int fds[4];

	diags_init(&d);
	good_fds(t, fds);
	close(fds[2]);
	send_frame(t, "a", true, 7, &d, fds, 2); /* the mask says 3 */
	assert_int_equal(outcome(t), -1);
	assert_int_equal(errno, EBADMSG);
	teardown(state);
	setup(state);
	t = *state;
	good_fds(t, fds);
	fds[3] = dup(fds[1]);
	send_frame(t, "a", true, 7, &d, fds, 4);
	assert_int_equal(outcome(t), -1);
	assert_int_equal(errno, EBADMSG);
}

/* Each bad fd in place of the disk: (re)opened as given. */
static void bad_disk(void **state, int fd, const char *why)
{
	struct t *t = *state;
	struct diags d;
	int fds[3];

	diags_init(&d);
	good_fds(t, fds);
	close(fds[1]);
	fds[1] = fd;
	send_frame(t, "a", true, 7, &d, fds, 3);
	assert_int_equal(outcome(t), 1);
	assert_false(t->item.valid);
	assert_true(has_diag(&t->item.diags, "blk/root.img", why));
	assert_int_equal(t->item.files.kernel_fd, -1);
	assert_null(t->item.files.cfg);
}

static void test_disk_open_for_writing(void **state)
{
	struct t *t = *state;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/a/blk/root.img", t->config);
	bad_disk(state, open(path, O_RDWR | O_CLOEXEC), "not open for reading");
}

static void test_disk_o_path(void **state)
{
	struct t *t = *state;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/a/blk/root.img", t->config);
	bad_disk(state, open(path, O_PATH | O_CLOEXEC), "not open for reading");
}

static void test_disk_is_a_directory(void **state)
{
	bad_disk(state, open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC),
		 "is a directory; a disk image must be a regular file or a block device");
}

static void test_kernel_not_sealed(void **state)
{
	struct t *t = *state;
	char path[PATH_MAX];
	struct diags d;
	int fds[3];

	diags_init(&d);
	good_fds(t, fds);
	close(fds[0]);
	snprintf(path, sizeof(path), "%s/a/vmlinux", t->config);
	fds[0] = open(path, O_RDONLY | O_CLOEXEC);
	send_frame(t, "a", true, 7, &d, fds, 3);
	assert_int_equal(outcome(t), 1);
	assert_false(t->item.valid);
	assert_true(has_diag(&t->item.diags, "vmlinux", "not a sealed copy"));
}

static void test_share_of_the_config_root(void **state)
{
	struct t *t = *state;
	struct diags d;
	int fds[3];

	diags_init(&d);
	good_fds(t, fds);
	close(fds[2]);
	fds[2] = open(t->config, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	send_frame(t, "a", true, 7, &d, fds, 3);
	assert_int_equal(outcome(t), 1);
	assert_false(t->item.valid);
	assert_true(has_diag(&t->item.diags, "shared-dirs/home/dir", "is the config root"));
}

static void test_oversized_frame(void **state)
{
	struct t *t = *state;
	unsigned char head[4] = { 0xff, 0xff, 0xff, 0x7f };

	assert_int_equal(write(t->child, head, 4), 4);
	assert_int_equal(outcome(t), -1);
	assert_int_equal(errno, EBADMSG);
}

static void test_child_gone_early(void **state)
{
	struct t *t = *state;

	assert_int_equal(write(t->child, "\x10\0", 2), 2);
	assert_int_equal(outcome(t), -1);
	assert_int_equal(errno, EPIPE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frame_for_another_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_diagnostic_about_another_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_without_a_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_missing_or_extra, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_open_for_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_o_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disk_is_a_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kernel_not_sealed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_share_of_the_config_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_child_gone_early, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
