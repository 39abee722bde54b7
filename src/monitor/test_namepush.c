/* Unit tests of the names the monitor pushes to the engine
 * (namepush.h), both ends real: a monitor with its loop, watching a real
 * config root, and the engine's copy (engine/names.h) fed from the other
 * end of a real SOCK_SEQPACKET socketpair.  A root larger than the
 * socket's buffer goes out in parts, never more than a quarter of the
 * buffer unread plus one part, the rest when the engine reads (EPOLLOUT);
 * a burst of changes likewise; a sync brings a change before the push
 * does; the root moved away makes the copy unwatched, and an ask after
 * it is back watches it again. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/names.h"
#include "monitor/monitor.h"
#include "monitor/namepush.h"
#include "monitor/rootwatch.h"

static struct monitor M;
static struct names N;
static int engine_end;
static char base[64], root[96];
static size_t parts, resets, worst_queued;
static int sndbuf;

/* The monitor's side of the channel, as enginep.c has it for EPOLLOUT. */
static void channel_ready(struct loop_source *src, uint32_t events)
{
	if (events & EPOLLOUT)
		namepush_writable(&M);
}

static int setup(void **state)
{
	int sv[2];
	socklen_t len = sizeof sndbuf;

	/* tmpfs: thousands of mkdirs, quick whatever the disk does */
	strcpy(base, "/dev/shm/test-namepush-XXXXXX");
	assert_non_null(mkdtemp(base));
	snprintf(root, sizeof root, "%s/root", base);
	assert_int_equal(mkdir(root, 0755), 0);
	memset(&M, 0, sizeof M);
	assert_int_equal(loop_init(&M.loop), 0);
	M.roots.config_root = root;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC |
				    SOCK_NONBLOCK, 0, sv), 0);
	M.engine = (struct loop_source){ sv[0], channel_ready, &M };
	M.engine_exit.fd = M.restart.fd = -1;
	assert_int_equal(loop_add(&M.loop, &M.engine, EPOLLIN), 0);
	assert_int_equal(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, &len), 0);
	engine_end = sv[1];
	M.engine_ready = true;
	names_init(&N);
	parts = resets = worst_queued = 0;
	assert_int_equal(namepush_init(&M), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	namepush_fini(&M);
	names_clear(&N);
	close(engine_end);
	close(M.engine.fd);
	loop_fini(&M.loop);
	snprintf(cmd, sizeof cmd, "rm -rf %s", base);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void note_queued(void)
{
	int queued;

	assert_int_equal(ioctl(M.engine.fd, SIOCOUTQ, &queued), 0);
	if ((size_t)queued > worst_queued)
		worst_queued = (size_t)queued;
}

/* The engine reads one message, if one waits: 1, or 0. */
static int engine_reads(void)
{
	static char buf[PS_PAYLOAD_MAX + 1];
	int fds[PS_FDS_MAX];
	struct ps_hdr hdr;
	json_t *o;
	ssize_t n;

	note_queued();
	n = ps_recv(engine_end, &hdr, buf, PS_PAYLOAD_MAX, fds);
	if (n < 0 && errno == EAGAIN)
		return 0;
	assert_true(n > 0);
	assert_int_equal(hdr.type, PS_NAMES);
	assert_true((size_t)n < NAMEPUSH_PART_BYTES + 1024);
	o = json_loadb(buf, (size_t)n, 0, NULL);
	assert_non_null(o);
	/* The engine's watch comes with a watched list's first part. */
	assert_int_equal(hdr.nfds, json_is_true(json_object_get(o, "reset")) &&
			 json_is_true(json_object_get(o, "watching")));
	assert_int_equal(names_apply(&N, o, hdr.nfds ? fds[0] : -1), 0);
	resets += json_is_true(json_object_get(o, "reset"));
	json_decref(o);
	parts++;
	return 1;
}

/* One turn of the monitor's loop (one event, then what it deferred):
 * whether there was an event. */
static bool monitor_turn(int timeout_ms)
{
	struct epoll_event ev;
	struct loop_source *src;
	bool any = epoll_wait(M.loop.epfd, &ev, 1, timeout_ms) == 1;

	if (any) {
		src = ev.data.ptr;
		src->ready(src, ev.events);
	}
	loop_run_deferred(&M.loop);
	return any;
}

/* Until the engine's copy is complete and holds exactly the root's
 * names (as rootwatch_names lists them): the engine reads a message at a
 * time, the monitor turns in between. */
static void converge(void)
{
	struct timespec t0, t;
	char **want;
	size_t n;
	bool same;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		bool busy = false;

		while (engine_reads()) {
			monitor_turn(0);
			busy = true;
		}
		/* Compare only when both sides are idle. */
		if (busy || monitor_turn(0))
			continue;
		assert_int_equal(rootwatch_names(root, &want, &n), 0);
		same = N.complete && N.count == n;
		for (size_t i = 0; same && i < n; i++)
			same = !strcmp(N.v[i], want[i]);
		vmconfig_list_free(want, n);
		if (same)
			return;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 60)
			fail_msg("the engine's copy (%zu names) never matched the root", N.count);
		monitor_turn(100);
	}
}

/* n directories of long names (64 bytes each) from first on. */
static void make_dirs(int first, int n)
{
	char p[256];

	for (int i = first; i < first + n; i++) {
		snprintf(p, sizeof p, "%s/%06d%058d", root, i, 0);
		assert_int_equal(mkdir(p, 0755), 0);
	}
}

static void remove_dirs(int first, int n)
{
	char p[256];

	for (int i = first; i < first + n; i++) {
		snprintf(p, sizeof p, "%s/%06d%058d", root, i, 0);
		assert_int_equal(rmdir(p), 0);
	}
}

static void assert_bounded(void)
{
	/* A quarter of the buffer, one part and its packet's overhead. */
	size_t bound = (size_t)sndbuf / 4 + 2 * NAMEPUSH_PART_BYTES + 4096;

	if (worst_queued > bound)
		fail_msg("%zu bytes unread in the channel (bound %zu)",
			 worst_queued, bound);
}

static void test_large_root_in_parts(void **state)
{
	/* 4000 names of 64 bytes: 264 KB of JSON, more than the buffer. */
	make_dirs(0, 4000);
	namepush_whole(&M);
	note_queued();
	assert_bounded();
	assert_true(worst_queued > 0);
	converge();
	assert_true(names_current(&N));
	assert_int_equal(N.count, 4000);
	assert_true(parts >= 264000 / NAMEPUSH_PART_BYTES);
	assert_int_equal(resets, 1);
	assert_bounded();
}

static void test_burst_of_changes(void **state)
{
	size_t before;

	make_dirs(0, 100);
	namepush_whole(&M);
	converge();
	before = parts;
	/* While the engine does not read: 6000 made, 50 gone. */
	make_dirs(100, 6000);
	remove_dirs(0, 50);
	for (int i = 0; i < 50; i++)
		monitor_turn(0);
	note_queued();
	assert_bounded();
	converge();
	assert_int_equal(N.count, 6050);
	assert_true(names_current(&N));
	/* Changes in parts, not a whole list again. */
	assert_true(parts - before >= 6000 * 67 / NAMEPUSH_PART_BYTES);
	assert_int_equal(resets, 1);
	assert_bounded();
	remove_dirs(100, 6000);
	converge();
	assert_int_equal(N.count, 50);
}

/* A change the push has not brought yet: the engine's watch says so,
 * and a sync brings it before anything else is done. */
static void test_sync(void **state)
{
	char p[256];

	make_dirs(0, 2);
	namepush_whole(&M);
	converge();
	assert_true(N.watch_fd >= 0);
	assert_false(names_stale(&N));
	snprintf(p, sizeof p, "%s/fresh", root);
	assert_int_equal(mkdir(p, 0755), 0);
	remove_dirs(1, 1);
	assert_true(names_stale(&N));
	assert_false(names_stale(&N));      /* drained */
	/* PS_SYNC, with no turn of the monitor's loop before it. */
	N.synced = false;
	namepush_sync(&M);
	while (!N.synced)
		assert_int_equal(engine_reads(), 1);
	assert_int_equal(N.count, 2);
	assert_string_equal(N.v[1], "fresh");
	assert_true(names_current(&N));
	assert_int_equal(resets, 1);
	/* Nothing changed since: a sync is only "synced". */
	N.synced = false;
	namepush_sync(&M);
	assert_int_equal(engine_reads(), 1);
	assert_true(N.synced);
	assert_int_equal(engine_reads(), 0);
	/* A sync that crosses a whole list: "synced" after the list and
	 * after the changes made before the sync. */
	namepush_whole(&M);
	remove_dirs(0, 1);
	N.synced = false;
	namepush_sync(&M);
	while (!N.synced)
		assert_int_equal(engine_reads(), 1);
	assert_int_equal(resets, 2);
	assert_true(names_current(&N));
	assert_int_equal(N.count, 1);
	assert_string_equal(N.v[0], "fresh");
}

static void test_root_moved_and_back(void **state)
{
	char away[128];

	make_dirs(0, 3);
	namepush_whole(&M);
	converge();
	snprintf(away, sizeof away, "%s/away", base);
	assert_int_equal(rename(root, away), 0);
	/* The watch ends; the copy becomes an empty, unwatched list. */
	while (!(N.complete && !N.watching)) {
		monitor_turn(1000);
		engine_reads();
	}
	assert_int_equal(N.count, 0);
	assert_false(names_current(&N));
	/* Back, and the engine asks: watched again, the whole list. */
	assert_int_equal(rename(away, root), 0);
	namepush_whole(&M);
	converge();
	assert_true(names_current(&N));
	assert_int_equal(N.count, 3);
	make_dirs(3, 1);
	converge();
	assert_int_equal(N.count, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_large_root_in_parts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst_of_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_root_moved_and_back, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
