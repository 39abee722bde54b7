/* Unit tests of the VM state machine (vm.h) with a fake backend: no
 * monitor, no QEMU.  Every cell of the table is driven from a VM brought
 * into its state; real clients on a real control socket check that an
 * answer never runs the next pipelined request from inside a transition
 * (a stop and a start in one write while the VM goes down, with a start
 * that fails at once). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/control.h"
#include "engine/proto.h"
#include "engine/vm.h"

/* --- the fake backend --- */

struct fake {
	struct vms vms;
	struct loop loop;
	int loads, releases, launches, kills, powerdowns, notes, runnings,
	    downs, settles;
	bool fail_load, fail_launch, fail_powerdown;
	char state_dir[64];
};

static struct fake F;

static int fake_load(void *arg, struct vm *vm)
{
	F.loads++;
	if (F.fail_load) {
		errno = EPIPE;
		return -1;
	}
	return 0;
}

static void fake_release(void *arg, struct vm *vm) { F.releases++; }

static int fake_launch(void *arg, struct vm *vm)
{
	F.launches++;
	if (F.fail_launch) {
		errno = EPIPE;
		return -1;
	}
	return 0;
}

static int fake_kill(void *arg, struct vm *vm) { F.kills++; return 0; }

static int fake_powerdown(void *arg, struct vm *vm)
{
	F.powerdowns++;
	if (F.fail_powerdown) {
		errno = EPIPE;
		return -1;
	}
	return 0;
}

static void fake_note(void *arg, struct vm *vm) { F.notes++; }
static void fake_running(void *arg, struct vm *vm) { F.runnings++; }
static void fake_down(void *arg, struct vm *vm) { F.downs++; }
static void fake_qmp_event(void *arg, struct vm *vm,
			   const struct qmp_msg *msg) { }
static void fake_settled(void *arg) { F.settles++; }

static const struct vm_backend fake_backend = {
	.load = fake_load, .release = fake_release, .launch = fake_launch,
	.kill = fake_kill, .powerdown = fake_powerdown, .note = fake_note,
	.running = fake_running, .down = fake_down,
	.qmp_event = fake_qmp_event, .settled = fake_settled,
};

static int setup(void **state)
{
	memset(&F, 0, sizeof F);
	strcpy(F.state_dir, "/tmp/test-vm-XXXXXX");
	assert_non_null(mkdtemp(F.state_dir));
	assert_int_equal(loop_init(&F.loop), 0);
	vms_init(&F.vms, &F.loop, &fake_backend, &F, F.state_dir, false);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	vms_free(&F.vms);
	loop_fini(&F.loop);
	snprintf(cmd, sizeof cmd, "rm -rf %s", F.state_dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* --- driving a VM --- */

static struct vm *new_vm(const char *name)
{
	char dir[128];
	struct vm *vm = vm_find(&F.vms, name, true);

	assert_non_null(vm);
	snprintf(dir, sizeof dir, "%s/vms", F.state_dir);
	mkdir(dir, 0700);
	snprintf(dir, sizeof dir, "%s/vms/%s", F.state_dir, name);
	mkdir(dir, 0700);
	return vm;
}

static void event(struct vm *vm, enum vm_event type)
{
	vm_event_simple(vm, type, "why");
}

static void loaded(struct vm *vm, const char *providers_json)
{
	struct vm_ev ev = { .type = EV_LOADED, .fds = { -1, -1, -1, -1, -1 } };
	char text[256];

	snprintf(text, sizeof text,
		 "{\"ok\":true,\"config\":{\"providers\":%s},\"links\":[]}",
		 providers_json);
	ev.data = json_loads(text, 0, NULL);
	assert_non_null(ev.data);
	vm_event(vm, &ev);
}

/* LAUNCHED with five real fds and the monitor's message data (NULL: a
 * plain one); the test keeps the other ends.  adopted: a run handed over
 * by the monitor to a new engine. */
static void launched_with(struct vm *vm, int peers[5], bool adopted,
			  json_t *data)
{
	struct vm_ev ev = { .type = EV_LAUNCHED, .adopted = adopted };
	int sv[2];

	for (int i = 0; i < 5; i++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
					    SOCK_CLOEXEC, 0, sv), 0);
		ev.fds[i] = sv[0];
		peers[i] = sv[1];
	}
	ev.data = data ? data :
		json_loads("{\"ok\":true,\"pid\":4242,\"uid\":0,\"accel\":\"tcg\","
			   "\"hotplug_ports\":0,\"links\":[]}", 0, NULL);
	vm_event(vm, &ev);
}

static void launched_as(struct vm *vm, int peers[5], bool adopted)
{
	launched_with(vm, peers, adopted, NULL);
}

static void launched(struct vm *vm, int peers[5])
{
	launched_as(vm, peers, false);
}

static void close_peers(int peers[5])
{
	for (int i = 0; i < 5; i++)
		if (peers[i] >= 0)
			close(peers[i]);
}

/* Bring vm from stopped into s along the usual path. */
static void drive_to(struct vm *vm, enum vm_state s, int peers[5])
{
	for (int i = 0; i < 5; i++)
		peers[i] = -1;
	if (s == VM_STOPPED)
		return;
	if (s == VM_FAILED) {
		F.fail_load = true;
		event(vm, EV_START);
		F.fail_load = false;
		assert_int_equal(vm->state, VM_FAILED);
		return;
	}
	event(vm, EV_START);
	assert_int_equal(vm->state, VM_LOADING);
	if (s == VM_LOADING)
		return;
	if (s == VM_WAITING) {
		struct vm *p = new_vm("prov");

		loaded(vm, "[\"prov\"]");
		assert_int_equal(p->state, VM_LOADING); /* started first */
		assert_int_equal(vm->state, VM_WAITING);
		assert_int_equal(vm->providers_left, 1);
		return;
	}
	loaded(vm, "[]");
	assert_int_equal(vm->state, VM_LAUNCHING);
	if (s == VM_LAUNCHING)
		return;
	launched(vm, peers);
	assert_int_equal(vm->state, VM_BOOTING);
	if (s == VM_BOOTING)
		return;
	event(vm, EV_QMP_UP);
	assert_int_equal(vm->state, VM_RUNNING);
	if (s == VM_RUNNING)
		return;
	if (s == VM_STOPPING) {
		struct vm_ev ev = { .type = EV_STOP, .timeout_s = 30,
				    .fds = { -1, -1, -1, -1, -1 } };

		vm_event(vm, &ev);
		assert_int_equal(vm->state, VM_STOPPING);
		return;
	}
	event(vm, EV_FORCE);
	assert_int_equal(vm->state, VM_DOWN);
}

/* Every (state, event) cell: the state that follows is the table's. */
static void test_every_transition(void **state)
{
	char name[16];

	for (int s = 0; s < VM_STATE_COUNT; s++) {
		for (int e = 0; e < EV_COUNT; e++) {
			int next = vm_next_state(s, e), peers[5];
			struct vm *vm;

			snprintf(name, sizeof name, "v%d-%d", s, e);
			vm = new_vm(name);
			drive_to(vm, s, peers);
			if (e == EV_LOADED)
				loaded(vm, "[]");
			else if (e == EV_LAUNCHED) {
				int more[5];

				/* In a settled state only a handed-over run. */
				launched_as(vm, more, s == VM_STOPPED || s == VM_FAILED);
				close_peers(more);
			} else {
				/* A helper that leaves cleanly is QEMU going
				 * (test_start_stop_cycle); here, one that died. */
				struct vm_ev ev = { .type = e, .timeout_s = 30,
						    .clean = e != EV_HELPER_EXITED,
						    .fds = { -1, -1, -1, -1, -1 } };

				snprintf(ev.reason, sizeof ev.reason, "why");
				vm_event(vm, &ev);
			}
			if (next < 0) {
				/* Ignored: nothing changes. */
				assert_int_equal(vm->state, s);
			} else if (s == VM_LOADING && e == EV_LOAD_FAILED) {
				/* Bad input changes nothing. */
				assert_int_equal(vm->state, VM_STOPPED);
			} else if (s == VM_LOADING && e == EV_LOADED) {
				/* No provider to wait for: straight on. */
				assert_int_equal(vm->state, VM_LAUNCHING);
			} else {
				assert_int_equal(vm->state, next);
			}
			close_peers(peers);
		}
	}
}

static void test_start_stop_cycle(void **state)
{
	struct vm *vm = new_vm("a");
	int peers[5];

	drive_to(vm, VM_RUNNING, peers);
	assert_int_equal(F.loads, 1);
	assert_int_equal(F.launches, 1);
	assert_int_equal(F.runnings, 1);
	event(vm, EV_STOP);
	assert_int_equal(vm->state, VM_STOPPING);
	assert_int_equal(F.powerdowns, 1);
	/* The guest powers off: down until the monitor says all is gone. */
	{
		struct vm_ev ev = { .type = EV_QEMU_EXITED, .clean = true,
				    .fds = { -1, -1, -1, -1, -1 } };

		vm_event(vm, &ev);
	}
	assert_int_equal(vm->state, VM_DOWN);
	assert_int_equal(F.kills, 0);       /* it left by itself */
	event(vm, EV_START);                /* refused while down */
	assert_int_equal(vm->state, VM_DOWN);
	event(vm, EV_GONE);
	assert_int_equal(vm->state, VM_STOPPED);
	assert_string_equal(vm->reason, "powered off by vm stop");
	assert_null(vm->run);
	assert_null(vm->config);
	assert_int_equal(F.downs, 1);
	close_peers(peers);
}

/* vm_brief_text, which `list` writes, says what vm_brief says: in every
 * state, with a reason to escape, and for a name without a record. */
static void assert_brief_text(const struct vm *vm, const char *name)
{
	json_t *got, *want;
	struct buf b;

	buf_init(&b, 1 << 20);
	assert_int_equal(vm_brief_text(&b, name, vm), 0);
	assert_int_equal(buf_append(&b, "", 1), 0);
	got = json_loads(b.data, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(got);
	want = vm ? vm_brief(vm) :
	       json_pack("{s:s,s:s,s:n,s:n,s:n}", "name", name, "state",
			 "stopped", "pid", "since", "reason");
	assert_non_null(want);
	if (!json_equal(got, want))
		fail_msg("brief text %s", b.data);
	json_decref(got);
	json_decref(want);
	buf_free(&b);
}

static void test_brief_text(void **state)
{
	char name[16];
	struct vm *vm;
	int peers[5];

	for (int s = 0; s < VM_STATE_COUNT; s++) {
		snprintf(name, sizeof name, "b%d", s);
		vm = new_vm(name);
		drive_to(vm, s, peers);
		assert_brief_text(vm, NULL);
		if (vm->run)
			assert_int_equal(vm->run->pid, 4242);
		close_peers(peers);
	}
	vm = new_vm("esc");
	snprintf(vm->reason, sizeof vm->reason,
		 "\"quoted\" \\ \x1b[31mred\x1b[0m\ttab \xc3\xa9 \xe2\x80\xa8");
	vm->since = 1234567890;
	assert_brief_text(vm, NULL);
	assert_brief_text(NULL, "no-record_1.x");
}

/* Records are kept sorted by name, whatever order they come in. */
static void test_records_sorted(void **state)
{
	static const char *const order[] = { "m", "a", "z", "b", "y", "a", "c" };
	const char *last = "";
	size_t n = 0;

	for (size_t i = 0; i < sizeof order / sizeof *order; i++)
		assert_non_null(vm_find(&F.vms, order[i], true));
	for (struct vm *vm = F.vms.list; vm; vm = vm->next, n++) {
		assert_true(strcmp(last, vm->name) < 0);
		last = vm->name;
	}
	assert_int_equal(n, 6);
	assert_ptr_equal(vm_find(&F.vms, "c", false), F.vms.list->next->next);
	assert_null(vm_find(&F.vms, "d", false));
}

/* A provider that fails makes its waiting client fail, naming it. */
static void test_provider_failure(void **state)
{
	struct vm *c = new_vm("client"), *p;
	int peers[5];

	drive_to(c, VM_WAITING, peers);
	p = vm_find(&F.vms, "prov", false);
	assert_non_null(p);
	assert_int_equal(p->dependent_count, 1);
	/* The provider loads, launches, and its QEMU dies while booting. */
	loaded(p, "[]");
	assert_int_equal(p->state, VM_LAUNCHING);
	event(p, EV_LAUNCH_FAILED);
	assert_int_equal(p->state, VM_FAILED);
	assert_int_equal(c->state, VM_FAILED);
	assert_non_null(strstr(c->reason, "provider prov did not start"));
	assert_int_equal(p->dependent_count, 0);
}

/* A provider that runs launches its client: dependencies are counts. */
static void test_provider_counts(void **state)
{
	struct vm *c = new_vm("client"), *p1 = new_vm("p1"), *p2 = new_vm("p2");
	int pa[5], pb[5];

	event(c, EV_START);
	loaded(c, "[\"p1\",\"p2\"]");
	assert_int_equal(c->state, VM_WAITING);
	assert_int_equal(c->providers_left, 2);
	loaded(p1, "[]");
	launched(p1, pa);
	event(p1, EV_QMP_UP);
	assert_int_equal(c->providers_left, 1);
	assert_int_equal(c->state, VM_WAITING);
	loaded(p2, "[]");
	launched(p2, pb);
	event(p2, EV_QMP_UP);
	assert_int_equal(c->providers_left, 0);
	assert_int_equal(c->state, VM_LAUNCHING);
	close_peers(pa);
	close_peers(pb);
}

/* A start whose request to the monitor fails at once settles failed. */
static void test_failing_synchronous_start(void **state)
{
	struct vm *vm = new_vm("s");

	F.fail_load = true;
	event(vm, EV_START);
	assert_int_equal(vm->state, VM_FAILED);
	assert_non_null(strstr(vm->reason, "asking the monitor"));
	F.fail_load = false;
	F.fail_launch = true;
	event(vm, EV_START);
	loaded(vm, "[]");
	assert_int_equal(vm->state, VM_FAILED);
	assert_int_equal(F.releases, 1);
}

/* --- real clients: a pipelined stop and start during the teardown --- */

static void handle(void *arg, struct client *c, json_t *req)
{
	struct proto_req r;
	char err[256];
	struct vm_ev ev = { .c = c, .fds = { -1, -1, -1, -1, -1 } };
	struct vm *vm;

	if (proto_parse(req, &r, err, sizeof err) < 0) {
		control_error(c, "%s", err);
		return;
	}
	vm = vm_find(&F.vms, r.name, false);
	if (!vm) {
		control_error(c, "unknown");
		return;
	}
	ev.type = r.op == PROTO_START ? EV_START : r.force ? EV_FORCE : EV_STOP;
	ev.timeout_s = 30;
	vm_event(vm, &ev);
}

/* One turn of the loop: an event, then what it deferred.  0 on timeout. */
static int loop_once(struct loop *l, int ms)
{
	struct epoll_event ev;
	struct loop_source *src;
	int n = epoll_wait(l->epfd, &ev, 1, ms);

	if (n <= 0)
		return 0;
	src = ev.data.ptr;
	src->ready(src, ev.events);
	loop_run_deferred(l);
	return 1;
}

/* Turn the loop until sock has had replies lines (or a second passes
 * with nothing to do): the number of lines read into buf. */
static int run_until_reply(int sock, char *buf, size_t len, int replies)
{
	size_t got = 0;
	int lines = 0;
	ssize_t n;

	loop_run_deferred(&F.loop);
	while (lines < replies) {
		n = recv(sock, buf + got, len - got - 1, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			buf[got] = '\0';
			lines = 0;
			for (char *p = buf; (p = strchr(p, '\n')); p++)
				lines++;
			continue;
		}
		if (!loop_once(&F.loop, 1000))
			break;
	}
	return lines;
}

static void test_pipelined_stop_start(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control ctl;
	struct vm *vm = new_vm("p");
	char buf[8192];
	int lfd, cfd, peers[5];

	drive_to(vm, VM_RUNNING, peers);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/control", F.state_dir);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(control_init(&ctl, &F.loop, lfd, getuid(), handle, NULL), 0);
	assert_int_equal(control_start(&ctl), 0);
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sa, sizeof sa), 0);
	/* Force it off, then start again at once, with the start's load
	 * failing synchronously: the stop is answered when the VM settles,
	 * and only then is the start read (and fails on its own). */
	F.fail_load = true;
	const char reqs[] = "{\"op\":\"stop\",\"name\":\"p\",\"force\":true}\n"
			    "{\"op\":\"start\",\"name\":\"p\"}\n";
	assert_int_equal(send(cfd, reqs, sizeof reqs - 1, 0), (ssize_t)(sizeof reqs - 1));
	/* Accept, read both lines: the stop waits, the start waits behind. */
	for (int i = 0; i < 4; i++)
		loop_once(&F.loop, 200);
	assert_int_equal(vm->state, VM_DOWN);
	assert_int_equal(vm->waiter_count, 1);
	/* The monitor reports the run gone: the stop is answered, and the
	 * start runs from the loop afterwards, not inside the answer. */
	event(vm, EV_GONE);
	assert_int_equal(vm->state, VM_STOPPED);
	assert_int_equal(run_until_reply(cfd, buf, sizeof buf, 2), 2);
	assert_non_null(strstr(buf, "\"ok\":true"));
	assert_non_null(strstr(buf, "asking the monitor"));
	assert_int_equal(vm->state, VM_FAILED);
	assert_int_equal(vm->waiter_count, 0);
	close(cfd);
	control_fini(&ctl);
	close_peers(peers);
}

/* The start trace: the engine's own marks where its events happen, the
 * monitor's taken from PS_LAUNCHED, the serial ones from what the guest
 * writes, and `vm info`'s JSON of them. */
static void test_start_trace(void **state)
{
	struct vm *vm = new_vm("t");
	const char out[] = "[    0.1] Linux\r\nvmhost-guest: rea";
	uint64_t t0;
	json_t *j;
	int peers[5];

	event(vm, EV_START);
	t0 = vm->trace.ns[START_ACCEPTED];
	assert_int_not_equal(t0, 0);
	loaded(vm, "[]");
	assert_true(vm->trace.ns[START_CONFIG_LOADED] >= t0);
	launched_with(vm, peers, false, json_pack(
		"{s:b,s:i,s:i,s:s,s:i,s:[],s:{s:I,s:I,s:I}}", "ok", 1,
		"pid", 4242, "uid", 0, "accel", "tcg", "hotplug_ports", 0,
		"links", "start_trace", "files_opened", (json_int_t)t0 + 1,
		"helpers_spawned", (json_int_t)t0 + 2, "qemu_exec",
		(json_int_t)t0 + 3));
	assert_int_equal(vm->state, VM_BOOTING);
	assert_int_equal(vm->trace.ns[START_FILES_OPENED], t0 + 1);
	assert_int_equal(vm->trace.ns[START_HELPERS_SPAWNED], t0 + 2);
	assert_int_equal(vm->trace.ns[START_QEMU_EXEC], t0 + 3);
	event(vm, EV_QMP_UP);
	assert_int_not_equal(vm->trace.ns[START_QMP_READY], 0);
	/* The ready line in two writes of the guest. */
	assert_int_equal(write(peers[1], out, sizeof out - 1), (ssize_t)sizeof out - 1);
	while (!vm->trace.ns[START_FIRST_SERIAL])
		assert_int_equal(loop_once(&F.loop, 5000), 1);
	assert_int_equal(vm->trace.ns[START_READY_LINE], 0);
	assert_int_equal(write(peers[1], "dy\r\n", 4), 4);
	while (!vm->trace.ns[START_READY_LINE])
		assert_int_equal(loop_once(&F.loop, 5000), 1);
	j = start_trace_json(&vm->trace);
	assert_true(json_is_null(json_object_get(json_object_get(j, "ms"),
						 "qmp_greeting")));
	assert_true(json_real_value(json_object_get(json_object_get(j, "ms"),
						    "ready_line")) > 0);
	json_decref(j);
	/* Kept once it settles, for vm info; a new start begins afresh. */
	event(vm, EV_FORCE);
	event(vm, EV_GONE);
	assert_int_equal(vm->state, VM_STOPPED);
	assert_int_not_equal(vm->trace.ns[START_READY_LINE], 0);
	event(vm, EV_START);
	assert_true(vm->trace.ns[START_ACCEPTED] >= t0);
	assert_int_equal(vm->trace.ns[START_READY_LINE], 0);
	close_peers(peers);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_transition, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_stop_cycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_provider_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_provider_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failing_synchronous_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_stop_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_trace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_brief_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_records_sorted, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
