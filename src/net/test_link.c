/* Real rtnetlink and /dev/net/tun, in a network namespace of our own:
 * tests run in parallel and as root, and the namespace dies with the
 * process, taking every link made here with it, even after a failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>

#include "net/bridge.h"
#include "net/ifname.h"
#include "net/link.h"
#include "net/tap.h"

/* addr_gen_mode of link name: 1 is "none". */
static int addr_gen_mode(const char *name)
{
	char path[128], buf[16] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/addr_gen_mode",
		 name);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return atoi(buf);
}

static void test_tap(void **state)
{
	struct ifreq ifr = { 0 };
	int fd = -1, fd2 = -1;

	(void)state;
	assert_int_equal(tap_open("vmh-0001-c", &fd), 0);
	assert_true(fd >= 0);
	assert_int_equal(link_exists("vmh-0001-c"), 1);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(ioctl(fd, TUNGETIFF, &ifr), 0);
	assert_string_equal(ifr.ifr_name, "vmh-0001-c");
	assert_int_equal(ifr.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR),
			 IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	assert_false(ifr.ifr_flags & IFF_TUN);

	/* Attached already: nobody else gets it. */
	errno = 0;
	assert_int_equal(tap_open("vmh-0001-c", &fd2), -1);
	assert_int_equal(errno, EBUSY);

	/* Not persistent: the last close removes it. */
	close(fd);
	assert_int_equal(link_exists("vmh-0001-c"), 0);
}

static void test_bad_names(void **state)
{
	int fd = -1;
	char master[IFNAMSIZ];

	(void)state;
	static const char *const bad[] = {
		"", "0123456789abcdef", "vmh-a546-br-long", "a/b", "a b", "a:b",
		".", "..",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		errno = 0;
		assert_int_equal(tap_open(bad[i], &fd), -1);
		assert_int_equal(errno, EINVAL);
		errno = 0;
		assert_int_equal(bridge_create(bad[i]), -1);
		assert_int_equal(errno, EINVAL);
		errno = 0;
		assert_int_equal(link_delete(bad[i]), -1);
		assert_int_equal(errno, EINVAL);
		errno = 0;
		assert_int_equal(link_set_up(bad[i]), -1);
		assert_int_equal(errno, EINVAL);
		errno = 0;
		assert_int_equal(link_exists(bad[i]), -1);
		assert_int_equal(errno, EINVAL);
	}
	errno = 0;
	assert_int_equal(tap_open("vmh-%d", &fd), -1);
	assert_int_equal(errno, EINVAL);
	/* 15 characters is the most that fits. */
	assert_int_equal(bridge_create("abcdefghfffe-br"), 0);
	assert_int_equal(link_delete("abcdefghfffe-br"), 0);
	assert_int_equal(link_master("lo", master, sizeof(master)), 0);
	assert_string_equal(master, "");
}

static void test_missing(void **state)
{
	char master[IFNAMSIZ];

	(void)state;
	assert_int_equal(link_exists("vmh-dead-br"), 0);
	errno = 0;
	assert_int_equal(link_delete("vmh-dead-br"), -1);
	assert_int_equal(errno, ENODEV);
	errno = 0;
	assert_int_equal(link_set_up("vmh-dead-br"), -1);
	assert_int_equal(errno, ENODEV);
	errno = 0;
	assert_int_equal(link_set_quiet("vmh-dead-br"), -1);
	assert_int_equal(errno, ENODEV);
	errno = 0;
	assert_int_equal(link_index("vmh-dead-br"), -1);
	assert_int_equal(errno, ENODEV);
	errno = 0;
	assert_int_equal(link_master("vmh-dead-br", master, sizeof(master)), -1);
	assert_int_equal(errno, ENODEV);
	errno = 0;
	assert_int_equal(bridge_add_if("vmh-dead-br", "lo"), -1);
	assert_int_equal(errno, ENODEV);
	assert_int_equal(bridge_create("vmh-0002-br"), 0);
	errno = 0;
	assert_int_equal(bridge_add_if("vmh-0002-br", "vmh-dead-c"), -1);
	assert_int_equal(errno, ENODEV);
	errno = 0;
	assert_int_equal(bridge_create("vmh-0002-br"), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(link_delete("vmh-0002-br"), 0);
	assert_int_equal(link_exists("vmh-0002-br"), 0);
}

/* A broadcast frame, behind the virtio-net header IFF_VNET_HDR adds. */
#define VNET_HDR_LEN 10
static const uint8_t frame[VNET_HDR_LEN + 60] = {
	[VNET_HDR_LEN + 0] = 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0x0a, 0xb3, 0xec, 0x00, 0xa5, 0x46,
	0x88, 0xb5, /* local experimental ethertype */
	'v', 'm', 'h', 'o', 's', 't',
};

struct collect {
	char names[8][IFNAMSIZ];
	size_t count;
	bool delete;
};

static int collect_cb(const char *name, void *arg)
{
	struct collect *c = arg;

	if (c->count == 8)
		return 1;
	strcpy(c->names[c->count++], name);
	if (c->delete && link_delete(name) == -1)
		return -1;
	return 0;
}

static bool collected(const struct collect *c, const char *name)
{
	for (size_t i = 0; i < c->count; i++)
		if (!strcmp(c->names[i], name))
			return true;
	return false;
}

/* The whole link as the daemon builds it, and a frame across it. */
static void test_link_path(void **state)
{
	char br[IFNAMSIZ], cl[IFNAMSIZ], pr[IFNAMSIZ], master[IFNAMSIZ];
	uint8_t got[2048];
	struct collect c = { 0 };
	int cfd = -1, pfd = -1;
	struct pollfd pfds;
	ssize_t n;

	(void)state;
	assert_int_equal(ifname_format("vmh-", IFNAME_BRIDGE, 0xa546, br), 0);
	assert_int_equal(ifname_format("vmh-", IFNAME_CLIENT, 0xa546, cl), 0);
	assert_int_equal(ifname_format("vmh-", IFNAME_PROVIDER, 0xa546, pr), 0);

	assert_int_equal(bridge_create(br), 0);
	/* Quiet from creation: addr_gen_mode 1 is "none". */
	assert_int_equal(addr_gen_mode(br), 1);
	assert_int_equal(link_set_up(br), 0);
	assert_int_equal(tap_open(cl, &cfd), 0);
	assert_int_equal(tap_open(pr, &pfd), 0);
	const char *taps[] = { cl, pr };
	for (int i = 0; i < 2; i++) {
		assert_int_equal(link_set_quiet(taps[i]), 0);
		assert_int_equal(addr_gen_mode(taps[i]), 1);
		assert_int_equal(bridge_add_if(br, taps[i]), 0);
		assert_int_equal(link_set_up(taps[i]), 0);
		assert_int_equal(link_master(taps[i], master, sizeof(master)), 0);
		assert_string_equal(master, br);
	}
	assert_int_equal(link_master(br, master, sizeof(master)), 0);
	assert_string_equal(master, "");

	/* Client to provider, through the bridge. */
	assert_int_equal(write(cfd, frame, sizeof(frame)), sizeof(frame));
	pfds = (struct pollfd){ .fd = pfd, .events = POLLIN };
	assert_int_equal(poll(&pfds, 1, 5000), 1);
	n = read(pfd, got, sizeof(got));
	assert_int_equal(n, sizeof(frame));
	assert_memory_equal(got + VNET_HDR_LEN, frame + VNET_HDR_LEN,
			    sizeof(frame) - VNET_HDR_LEN);

	/* And nothing from the host: no IPv6 autoconf, DAD or MLD.  The
	 * kernel's first router solicitation would come within a second. */
	if (poll(&pfds, 1, 1500) != 0) {
		n = read(pfd, got, sizeof(got));
		fail_msg("unexpected %zd-byte frame, ethertype %02x%02x, "
			 "from %02x:%02x:%02x:%02x:%02x:%02x", n,
			 got[VNET_HDR_LEN + 12], got[VNET_HDR_LEN + 13],
			 got[VNET_HDR_LEN + 6], got[VNET_HDR_LEN + 7],
			 got[VNET_HDR_LEN + 8], got[VNET_HDR_LEN + 9],
			 got[VNET_HDR_LEN + 10], got[VNET_HDR_LEN + 11]);
	}
	FILE *f = fopen("/proc/net/if_inet6", "re");
	if (f) {
		char line[256];

		while (fgets(line, sizeof(line), f))
			assert_null(strstr(line, "vmh-"));
		fclose(f);
	}

	assert_int_equal(link_list_prefix("vmh-", collect_cb, &c), 0);
	assert_int_equal(c.count, 3);
	assert_true(collected(&c, br) && collected(&c, cl) && collected(&c, pr));
	c.count = 0;
	assert_int_equal(link_list_prefix("vmh-a546-b", collect_cb, &c), 0);
	assert_int_equal(c.count, 1);
	assert_string_equal(c.names[0], br);

	/* Deleting the bridge frees its ports. */
	assert_int_equal(link_delete(br), 0);
	assert_int_equal(link_master(cl, master, sizeof(master)), 0);
	assert_string_equal(master, "");

	/* Reconciliation: delete everything under the prefix while the taps
	 * are still held open. */
	c = (struct collect){ .delete = true };
	assert_int_equal(link_list_prefix("vmh-", collect_cb, &c), 0);
	assert_int_equal(c.count, 2);
	assert_int_equal(link_exists(cl), 0);
	assert_int_equal(link_exists(pr), 0);
	c = (struct collect){ 0 };
	assert_int_equal(link_list_prefix("vmh-", collect_cb, &c), 0);
	assert_int_equal(c.count, 0);
	close(cfd);
	close(pfd);
	/* lo is always there; a prefix that matches it proves the walk. */
	assert_int_equal(link_list_prefix("lo", collect_cb, &c), 0);
	assert_int_equal(c.count, 1);
}

static void test_list_stops(void **state)
{
	struct collect c = { 0 };

	(void)state;
	assert_int_equal(bridge_create("vmh-0003-br"), 0);
	assert_int_equal(bridge_create("vmh-0004-br"), 0);
	c.count = 8; /* full: the callback returns 1 at once */
	assert_int_equal(link_list_prefix("vmh-", collect_cb, &c), 1);
	assert_int_equal(link_delete("vmh-0003-br"), 0);
	assert_int_equal(link_delete("vmh-0004-br"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tap),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_link_path),
		cmocka_unit_test(test_list_stops),
	};

	if (unshare(CLONE_NEWNET) == -1) {
		perror("unshare(CLONE_NEWNET) (these tests need root)");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
