/* Unit tests for the gatherer on a real tree, as whoever runs them (the
 * owner-identity switch itself is tested with real users in
 * tests/test_gather.py): the fds it hands over, the asynchronous pair,
 * cancel, provider cycles and validity, vm check's batch. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/sealcopy.h"
#include "config/gather.h"

struct t {
	char top[64];
	char config[96];
	struct gather_policy p;
	struct vm_files f;
	struct diags d;
};

static void t_write(struct t *t, const char *rel, const char *data)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t->top, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

static void t_mkdir(struct t *t, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", t->top, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

/* A valid VM: fake ELF kernel, one disk. */
static void t_vm(struct t *t, const char *name)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "ext/svc/data/%s", name);
	t_mkdir(t, rel);
	snprintf(rel, sizeof(rel), "ext/svc/data/%s/blk", name);
	t_mkdir(t, rel);
	snprintf(rel, sizeof(rel), "ext/svc/data/%s/vmlinux", name);
	t_write(t, rel, "\177ELF fake kernel");
	snprintf(rel, sizeof(rel), "ext/svc/data/%s/blk/root.img", name);
	t_write(t, rel, "disk");
	snprintf(rel, sizeof(rel), "ext/svc/data/%s/memory", name);
	t_write(t, rel, "64M");
}

static void t_provider(struct t *t, const char *vm, const char *prov)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/ext/svc/data/%s/providers", t->top, vm);
	mkdir(path, 0755);
	strcat(path, "/net");
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "ext/svc/data/%s/providers/net/%s", vm, prov);
	t_write(t, path, "");
}

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	strcpy(t->top, "/tmp/test-gather-XXXXXX");
	assert_non_null(mkdtemp(t->top));
	t_mkdir(t, "ext");
	t_mkdir(t, "ext/svc");
	t_mkdir(t, "ext/svc/data");
	snprintf(t->config, sizeof(t->config), "%s/ext/svc/data", t->top);
	assert_int_equal(gather_policy_init(&t->p), 0);
	t->p.roots.config_root = t->config;
	vm_files_init(&t->f);
	diags_init(&t->d);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;
	char cmd[128];

	vm_files_release(&t->f);
	diags_free(&t->d);
	gather_policy_free(&t->p);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->top);
	assert_int_equal(system(cmd), 0);
	free(t);
	return 0;
}

static bool has_diag(const struct diags *d, const char *path, const char *text)
{
	for (size_t i = 0; i < d->count; i++)
		if (!strcmp(d->items[i].path, path) &&
		    strstr(d->items[i].message, text))
			return true;
	return false;
}

static void assert_readonly(int fd, mode_t type)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	assert_true(fd > 2);
	assert_int_equal(fl & O_ACCMODE, O_RDONLY);
	assert_false(fl & O_PATH);
	assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & S_IFMT, type);
}

static void test_load_hands_over_checked_fds(void **state)
{
	struct t *t = *state;
	char buf[32] = { 0 };

	t_vm(t, "a");
	assert_int_equal(gather_load(&t->p, "a", &t->f, &t->d), 0);
	assert_int_equal(t->d.count, 0);
	assert_string_equal(t->f.cfg->name, "a");
	assert_int_equal(t->f.owner, geteuid());
	/* The kernel is a sealed copy, read-only. */
	assert_readonly(t->f.kernel_fd, S_IFREG);
	assert_true(sealcopy_sealed(t->f.kernel_fd));
	assert_int_equal(pread(t->f.kernel_fd, buf, 4, 0), 4);
	assert_memory_equal(buf, "\177ELF", 4);
	assert_readonly(t->f.disk_fds[0], S_IFREG);
	assert_int_equal(pread(t->f.disk_fds[0], buf, 4, 0), 4);
	assert_memory_equal(buf, "disk", 4);
	/* Rewriting the file changes nothing for the VM. */
	t_write(t, "ext/svc/data/a/vmlinux", "\177ELF changed");
	assert_int_equal(pread(t->f.kernel_fd, buf, 12, 4), 12);
	assert_memory_equal(buf, " fake kernel", 12);
}

static void test_check_only_keeps_the_file(void **state)
{
	struct t *t = *state;

	t_vm(t, "a");
	t->p.check_only = true;
	assert_int_equal(gather_load(&t->p, "a", &t->f, &t->d), 0);
	assert_readonly(t->f.kernel_fd, S_IFREG);
	assert_false(sealcopy_sealed(t->f.kernel_fd));
}

static void test_spawn_and_collect(void **state)
{
	struct t *t = *state;
	struct gather_child ch;
	struct pollfd pfd;
	int r;

	t_vm(t, "a");
	assert_int_equal(gather_spawn(&t->p, "a", &ch, &t->d), GATHER_PENDING);
	assert_true(ch.pid > 0 && ch.pidfd >= 0 && ch.sock >= 0);
	pfd = (struct pollfd){ .fd = ch.sock, .events = POLLIN };
	do {
		assert_true(poll(&pfd, 1, 10000) > 0);
		r = gather_collect(&ch, &t->f, &t->d);
	} while (r == GATHER_PENDING);
	assert_int_equal(r, GATHER_VALID);
	assert_null(ch.run);
	assert_readonly(t->f.disk_fds[0], S_IFREG);
	/* Reaped: the pid is no child of ours any more. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);

	/* No such VM: answered at once, no child. */
	vm_files_release(&t->f);
	assert_int_equal(gather_spawn(&t->p, "nosuch", &ch, &t->d), GATHER_INVALID);
	assert_true(has_diag(&t->d, ".", "no such VM"));
}

static void test_cancel_kills_and_reaps(void **state)
{
	struct t *t = *state;
	struct gather_child ch;
	pid_t pid;

	t_vm(t, "a");
	assert_int_equal(gather_spawn(&t->p, "a", &ch, &t->d), GATHER_PENDING);
	pid = ch.pid;
	gather_cancel(&ch);
	assert_int_equal(ch.sock, -1);
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
}

static void test_invalid_reports_everything(void **state)
{
	struct t *t = *state;

	t_vm(t, "a");
	/* A share of the config root, and more CPUs than any host has. */
	t_mkdir(t, "ext/svc/data/a/shared-dirs");
	t_mkdir(t, "ext/svc/data/a/shared-dirs/t");
	{
		char link[PATH_MAX];

		snprintf(link, sizeof(link), "%s/ext/svc/data/a/shared-dirs/t/dir", t->top);
		assert_int_equal(symlink(t->config, link), 0);
	}
	t_write(t, "ext/svc/data/a/cpus", "64");
	t->p.limits.max_cpus = 2;
	errno = 0;
	assert_int_equal(gather_load(&t->p, "a", &t->f, &t->d), -1);
	assert_int_equal(errno, EINVAL);
	assert_null(t->f.cfg);
	assert_int_equal(t->f.kernel_fd, -1);
	assert_true(has_diag(&t->d, "shared-dirs/t/dir", "is the config root"));
	assert_true(has_diag(&t->d, "cpus", "64 CPUs is more than this host has (2;"));
}

static void test_providers(void **state)
{
	struct t *t = *state;

	t_vm(t, "a");
	t_vm(t, "b");
	t_vm(t, "c");
	t_vm(t, "net");
	t_provider(t, "a", "b");
	t_provider(t, "b", "a");
	t_provider(t, "c", "a");
	assert_int_equal(gather_load(&t->p, "a", &t->f, &t->d), -1);
	assert_int_equal(t->d.count, 1);
	assert_string_equal(t->d.items[0].path, "providers/net/b");
	assert_string_equal(t->d.items[0].message, "provider cycle: a -> b -> a");
	diags_free(&t->d);
	/* c is on no cycle, but its provider is. */
	assert_int_equal(gather_load(&t->p, "c", &t->f, &t->d), -1);
	assert_int_equal(t->d.count, 1);
	assert_string_equal(t->d.items[0].message,
			    "provider \"a\" is not a valid VM (1 error; see vm check a)");
	diags_free(&t->d);
	/* A valid provider: the client gets its own files only. */
	t_provider(t, "net", "zzz-missing");
	t_vm(t, "app");
	t_provider(t, "app", "net");
	assert_int_equal(gather_load(&t->p, "app", &t->f, &t->d), -1);
	assert_true(has_diag(&t->d, "providers/net/net", "provider \"net\" is not a valid VM"));
}

static void test_check_batch(void **state)
{
	struct t *t = *state;
	char *names[] = { "a", "b", "nosuch", "ok" };
	struct gather_result res[4];

	memset(res, 0, sizeof(res));
	t_vm(t, "a");
	t_vm(t, "b");
	t_vm(t, "ok");
	t_provider(t, "a", "b");
	t_provider(t, "b", "a");
	t->p.check_only = true;
	assert_int_equal(gather_check(&t->p, names, 4, res), 0);
	assert_false(res[0].valid);
	assert_string_equal(res[0].diags.items[0].message, "provider cycle: a -> b -> a");
	assert_false(res[1].valid);
	assert_string_equal(res[1].diags.items[0].message, "provider cycle: b -> a -> b");
	assert_false(res[2].valid);
	assert_true(has_diag(&res[2].diags, ".", "no such VM"));
	assert_true(res[3].valid);
	assert_non_null(res[3].cfg);
	assert_int_equal(res[3].diags.count, 0);
	for (int i = 0; i < 4; i++)
		gather_result_free(&res[i]);
}

/* Only the owner (or root) may change a directory the VM's files are
 * chosen in. */
static void test_directories_only_the_owner_may_change(void **state)
{
	struct t *t = *state;
	char path[PATH_MAX];

	t_vm(t, "a");
	snprintf(path, sizeof(path), "%s/ext/svc/data/a", t->top);
	assert_int_equal(chmod(path, 0777), 0);
	assert_int_equal(gather_load(&t->p, "a", &t->f, &t->d), -1);
	assert_true(has_diag(&t->d, ".", "writable by others than its owner (mode 0777)"));
	assert_int_equal(chmod(path, 0755), 0);
	diags_free(&t->d);
	strcat(path, "/blk");
	assert_int_equal(chmod(path, 0775), 0);
	assert_int_equal(gather_load(&t->p, "a", &t->f, &t->d), -1);
	assert_true(has_diag(&t->d, "blk", "writable by others than its owner (mode 0775)"));
	assert_int_equal(chmod(path, 0755), 0);
	diags_free(&t->d);
	if (geteuid() == 0) {
		assert_int_equal(chown(path, 12345, 12345), 0);
		assert_int_equal(gather_load(&t->p, "a", &t->f, &t->d), -1);
		assert_true(has_diag(&t->d, "blk", "owned by uid 12345, not by the VM directory's owner (uid 0) or root"));
		assert_int_equal(chown(path, 0, 0), 0);
		diags_free(&t->d);
	}
	assert_int_equal(gather_load(&t->p, "a", &t->f, &t->d), 0);
}

static void test_block_device_flag(void **state)
{
	struct t *t = *state;
	char path[PATH_MAX];

	t_write(t, "plain", "x");
	snprintf(path, sizeof(path), "%s/plain", t->top);
	errno = 0;
	assert_int_equal(gather_allow_block_device(&t->p, path), -1);
	assert_int_equal(errno, ENOTBLK);
	assert_int_equal(t->p.block_device_count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_hands_over_checked_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_only_keeps_the_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spawn_and_collect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_kills_and_reaps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_reports_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_providers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directories_only_the_owner_may_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_device_flag, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
