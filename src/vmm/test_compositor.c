/* Unit tests of compositor.c with real sockets and real ACLs: what it
 * opens and refuses, which entries it adds and takes back (and which it
 * leaves), and whether it sees a listener.  Run as root or not: the
 * socket is the test's own, so the owner's child is the test's uid. */
#include <acl/libacl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/acl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/compositor.h"

#define FIRST 1900000u
#define COUNT 100u

struct fixture {
	char dir[64];
	char path[96];   /* fits a sockaddr_un */
	int listener;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	strcpy(f->dir, "/tmp/vmh-compositor-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof f->path, "%s/wayland-0", f->dir);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	f->listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->listener < 0 || bind(f->listener, (void *)&sa, sizeof sa) < 0 ||
	    listen(f->listener, 4) < 0 || chmod(f->path, 0755) < 0)
		return -1;
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	close(f->listener);
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* The named-user entries of path's ACL, as "uid:perms" in order, and
 * whether it has a mask. */
static void acl_users(const char *path, char *out, size_t len, bool *mask)
{
	acl_t acl = acl_get_file(path, ACL_TYPE_ACCESS);
	acl_entry_t e;
	acl_tag_t tag;
	acl_permset_t ps;
	size_t used = 0;

	assert_non_null(acl);
	out[0] = '\0';
	*mask = false;
	for (int w = ACL_FIRST_ENTRY; acl_get_entry(acl, w, &e) == 1;
	     w = ACL_NEXT_ENTRY) {
		assert_int_equal(acl_get_tag_type(e, &tag), 0);
		if (tag == ACL_MASK)
			*mask = true;
		if (tag != ACL_USER)
			continue;
		uid_t *q = acl_get_qualifier(e);

		assert_int_equal(acl_get_permset(e, &ps), 0);
		used += (size_t)snprintf(out + used, len - used, "%s%u:%c%c%c",
					 used ? " " : "", *q,
					 acl_get_perm(ps, ACL_READ) ? 'r' : '-',
					 acl_get_perm(ps, ACL_WRITE) ? 'w' : '-',
					 acl_get_perm(ps, ACL_EXECUTE) ? 'x' : '-');
		acl_free(q);
	}
	acl_free(acl);
}

/* Add (read only) or remove user 4242's entry, as a desktop user might. */
static void other_entry(const char *path, bool add)
{
	acl_t acl = acl_get_file(path, ACL_TYPE_ACCESS);
	acl_entry_t e;
	acl_tag_t tag;
	acl_permset_t ps;
	uid_t other = 4242;

	assert_non_null(acl);
	if (add) {
		assert_int_equal(acl_create_entry(&acl, &e), 0);
		assert_int_equal(acl_set_tag_type(e, ACL_USER), 0);
		assert_int_equal(acl_set_qualifier(e, &other), 0);
		assert_int_equal(acl_get_permset(e, &ps), 0);
		assert_int_equal(acl_clear_perms(ps), 0);
		assert_int_equal(acl_add_perm(ps, ACL_READ), 0);
		assert_int_equal(acl_set_permset(e, ps), 0);
	} else {
		for (int w = ACL_FIRST_ENTRY; acl_get_entry(acl, w, &e) == 1;
		     w = ACL_NEXT_ENTRY) {
			uid_t *q;

			assert_int_equal(acl_get_tag_type(e, &tag), 0);
			if (tag != ACL_USER)
				continue;
			q = acl_get_qualifier(e);
			if (*q == other) {
				acl_free(q);
				assert_int_equal(acl_delete_entry(acl, e), 0);
				break;
			}
			acl_free(q);
		}
	}
	assert_int_equal(acl_calc_mask(&acl), 0);
	assert_int_equal(acl_set_file(path, ACL_TYPE_ACCESS, acl), 0);
	acl_free(acl);
}

static void test_open(void **state)
{
	struct fixture *f = *state;
	char why[512], link[PATH_MAX], file[PATH_MAX];
	int fd;
	struct stat st;

	fd = compositor_open(f->path, why, sizeof why);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(compositor_listening(fd), 0);
	close(fd);

	/* A link to it, a file, nothing, a relative path: refused, and
	 * the message names the path and the problem. */
	snprintf(link, sizeof link, "%s/link", f->dir);
	assert_int_equal(symlink(f->path, link), 0);
	assert_int_equal(compositor_open(link, why, sizeof why), -1);
	assert_non_null(strstr(why, "a symbolic link on the way"));
	assert_int_equal(strncmp(why, link, strlen(link)), 0);
	snprintf(file, sizeof file, "%s/file", f->dir);
	close(open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	assert_int_equal(compositor_open(file, why, sizeof why), -1);
	assert_int_equal(errno, ENOTSOCK);
	assert_non_null(strstr(why, "file: not a socket"));
	snprintf(file, sizeof file, "%s/none", f->dir);
	assert_int_equal(compositor_open(file, why, sizeof why), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(why, "none: no such file (is the compositor running?)"));
	assert_int_equal(compositor_open("wayland-0", why, sizeof why), -1);
	assert_string_equal(why, "wayland-0: not an absolute path");
}

static void test_grant(void **state)
{
	struct fixture *f = *state;
	const uid_t two[] = { FIRST + 5, FIRST + 7 }, one[] = { FIRST + 7 };
	char why[512], users[256];
	struct stat before, st;
	bool mask;
	int fd;

	assert_int_equal(stat(f->path, &before), 0);
	fd = compositor_open(f->path, why, sizeof why);
	assert_true(fd >= 0);
	assert_int_equal(compositor_grant(fd, f->path, FIRST, COUNT, two, 2,
					  true, why, sizeof why), 0);
	acl_users(f->path, users, sizeof users, &mask);
	assert_string_equal(users, "1900005:rw- 1900007:rw-");
	assert_true(mask);
	/* An entry outside the range is not ours to touch. */
	other_entry(f->path, true);
	assert_int_equal(compositor_grant(fd, f->path, FIRST, COUNT, one, 1,
					  false, why, sizeof why), 0);
	acl_users(f->path, users, sizeof users, &mask);
	assert_string_equal(users, "4242:r-- 1900007:rw-");
	other_entry(f->path, false);
	/* None left: no mask either, and the mode is what it was. */
	assert_int_equal(compositor_grant(fd, f->path, FIRST, COUNT, NULL, 0,
					  false, why, sizeof why), 0);
	acl_users(f->path, users, sizeof users, &mask);
	assert_string_equal(users, "");
	assert_false(mask);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode, before.st_mode);
	assert_int_equal(acl_extended_file(f->path), 0);
	close(fd);
}

static void test_not_listening(void **state)
{
	struct fixture *f = *state;
	const uid_t one[] = { FIRST };
	char why[512], users[256];
	bool mask;
	int fd = compositor_open(f->path, why, sizeof why);

	assert_true(fd >= 0);
	/* The compositor gone, its socket left behind. */
	close(f->listener);
	f->listener = -1;
	assert_int_equal(compositor_listening(fd), -1);
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(compositor_grant(fd, f->path, FIRST, COUNT, one, 1,
					  true, why, sizeof why), -1);
	assert_non_null(strstr(why, "wayland-0: nothing listens there (connection refused)"));
	/* The grant was made before the probe: taking it back works. */
	assert_int_equal(compositor_grant(fd, f->path, FIRST, COUNT, NULL, 0,
					  false, why, sizeof why), 0);
	acl_users(f->path, users, sizeof users, &mask);
	assert_string_equal(users, "");
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_grant, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_not_listening, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
