/* Unit tests of the monitor's check of the engine's messages
 * (ps_check_request: what a compromised engine may ask) and of the
 * packet framing with fds (ps_send, ps_recv). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "privsep/privsep.h"

static int check(uint16_t type, const void *payload, size_t len)
{
	struct ps_hdr hdr = { .type = type, .nfds = 0, .seq = 7 };
	const char *why = "unset";
	int r = ps_check_request(&hdr, payload, len, &why);

	if (r < 0) {
		assert_int_equal(errno, EBADMSG);
		assert_non_null(why);
	} else {
		assert_null(why);
	}
	return r;
}

static void test_valid_requests_pass(void **state)
{
	struct ps_name n;
	struct ps_load load;
	struct ps_pair pair;
	struct ps_note note;
	struct ps_linknote ln;

	(void)state;
	assert_int_equal(ps_set_name(n.name, "app-1.x_y"), 0);
	memset(&load, 0, sizeof load);
	ps_set_name(load.name, "app");
	load.keep = 1;
	memset(&pair, 0, sizeof pair);
	ps_set_name(pair.client, "app");
	ps_set_name(pair.provider, "netvm");
	memset(&note, 0, sizeof note);
	ps_set_name(note.name, "app");
	note.state = 3;
	strcpy(note.reason, "QEMU exited with status 1");
	memset(&ln, 0, sizeof ln);
	ln.pair = pair;
	ln.plug = PS_PLUG_REMOVING;
	ln.port = 63;

	assert_int_equal(check(PS_HELLO, NULL, 0), 0);
	assert_int_equal(check(PS_LIST, NULL, 0), 0);
	assert_int_equal(check(PS_SYNC, NULL, 0), 0);
	assert_int_equal(check(PS_BYE, NULL, 0), 0);
	assert_int_equal(check(PS_LOAD, &load, sizeof load), 0);
	assert_int_equal(check(PS_RELEASE, &n, sizeof n), 0);
	assert_int_equal(check(PS_LAUNCH, &n, sizeof n), 0);
	assert_int_equal(check(PS_KILL, &n, sizeof n), 0);
	assert_int_equal(check(PS_LOOKUP, &n, sizeof n), 0);
	assert_int_equal(check(PS_PLUG, &pair, sizeof pair), 0);
	assert_int_equal(check(PS_UNPLUGGED, &pair, sizeof pair), 0);
	assert_int_equal(check(PS_NOTE, &note, sizeof note), 0);
	assert_int_equal(check(PS_LINKNOTE, &ln, sizeof ln), 0);
	ln.port = -1;
	assert_int_equal(check(PS_LINKNOTE, &ln, sizeof ln), 0);
}

static void test_types_sizes_and_fds(void **state)
{
	struct ps_hdr hdr = { .type = PS_HELLO, .nfds = 1 };
	char buf[sizeof(struct ps_note) + 1] = { 0 };
	const char *why;

	(void)state;
	/* Unknown types, and the monitor's own answers sent back. */
	assert_int_equal(check(0, NULL, 0), -1);
	assert_int_equal(check(PS_REQUEST_LAST + 1, NULL, 0), -1);
	assert_int_equal(check(PS_LAUNCHED, NULL, 0), -1);
	assert_int_equal(check(0xffff, NULL, 0), -1);
	/* Exact sizes only. */
	assert_int_equal(check(PS_HELLO, buf, 1), -1);
	assert_int_equal(check(PS_SYNC, buf, 1), -1);
	ps_set_name(buf, "app");
	assert_int_equal(check(PS_KILL, buf, sizeof(struct ps_name) - 1), -1);
	assert_int_equal(check(PS_KILL, buf, sizeof(struct ps_name) + 1), -1);
	assert_int_equal(check(PS_NOTE, buf, sizeof(struct ps_note) + 1), -1);
	/* The engine never sends fds. */
	assert_int_equal(ps_check_request(&hdr, NULL, 0, &why), -1);
	assert_string_equal(why, "unexpected fds");
}

static void test_names_are_vm_names(void **state)
{
	static const char *const bad[] = {
		"", ".", "..", "../etc", "a/b", "a b", "a\nb", "-rf",
	};
	struct ps_name n;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		memset(&n, 0, sizeof n);
		memcpy(n.name, bad[i], strlen(bad[i]));
		assert_int_equal(check(PS_LAUNCH, &n, sizeof n), -1);
	}
	/* No NUL in the field at all. */
	memset(n.name, 'a', sizeof n.name);
	assert_int_equal(check(PS_KILL, &n, sizeof n), -1);
	/* Bytes after the NUL: a second name smuggled behind the first. */
	ps_set_name(n.name, "app");
	n.name[10] = 'x';
	assert_int_equal(check(PS_KILL, &n, sizeof n), -1);
	/* ps_set_name refuses what does not fit, and pads with zeros. */
	memset(n.name, 'z', sizeof n.name);
	assert_int_equal(ps_set_name(n.name, "app"), 0);
	for (size_t i = 3; i < sizeof n.name; i++)
		assert_int_equal(n.name[i], 0);
	char longname[PS_NAME_SIZE + 1];
	memset(longname, 'a', PS_NAME_SIZE);
	longname[PS_NAME_SIZE] = '\0';
	assert_int_equal(ps_set_name(n.name, longname), -1);
	assert_int_equal(errno, EINVAL);
}

static void test_fields_in_range(void **state)
{
	struct ps_load load;
	struct ps_pair pair;
	struct ps_note note;
	struct ps_linknote ln;

	(void)state;
	memset(&load, 0, sizeof load);
	ps_set_name(load.name, "app");
	load.keep = 2;
	assert_int_equal(check(PS_LOAD, &load, sizeof load), -1);

	/* A VM is never its own provider. */
	memset(&pair, 0, sizeof pair);
	ps_set_name(pair.client, "app");
	ps_set_name(pair.provider, "app");
	assert_int_equal(check(PS_PLUG, &pair, sizeof pair), -1);
	assert_int_equal(check(PS_UNPLUGGED, &pair, sizeof pair), -1);

	memset(&note, 0, sizeof note);
	ps_set_name(note.name, "app");
	note.state = 16;
	assert_int_equal(check(PS_NOTE, &note, sizeof note), -1);
	note.state = 1;
	memset(note.reason, 'r', sizeof note.reason);
	assert_int_equal(check(PS_NOTE, &note, sizeof note), -1);

	memset(&ln, 0, sizeof ln);
	ps_set_name(ln.pair.client, "app");
	ps_set_name(ln.pair.provider, "netvm");
	ln.plug = PS_PLUG_REMOVING + 1;
	assert_int_equal(check(PS_LINKNOTE, &ln, sizeof ln), -1);
	ln.plug = PS_PLUG_UP;
	ln.port = 64;
	assert_int_equal(check(PS_LINKNOTE, &ln, sizeof ln), -1);
	ln.port = -2;
	assert_int_equal(check(PS_LINKNOTE, &ln, sizeof ln), -1);
}

static void test_send_and_receive_with_fds(void **state)
{
	static char big[PS_PAYLOAD_MAX + 1];
	char buf[64 + 1];
	struct ps_hdr hdr;
	int sv[2], fds[PS_FDS_MAX + 1] = { 0 }, got[PS_FDS_MAX], p[2];
	ssize_t n;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	fds[0] = p[0];
	fds[1] = p[1];
	assert_int_equal(ps_send(sv[0], PS_TAP, 42, "{\"ok\":true}", 11, fds, 2), 0);
	n = ps_recv(sv[1], &hdr, buf, 64, got);
	assert_int_equal(n, 11);
	assert_int_equal(hdr.type, PS_TAP);
	assert_int_equal(hdr.seq, 42);
	assert_int_equal(hdr.nfds, 2);
	assert_string_equal(buf, "{\"ok\":true}");
	/* Received fds are close-on-exec, and they work. */
	assert_true(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(got[1], "x", 1), 1);
	assert_int_equal(read(p[0], buf, 1), 1);
	close(got[0]);
	close(got[1]);

	/* A payload longer than the receiver's cap: refused whole, its fds
	 * closed, the next message intact. */
	memset(big, 'b', 100);
	assert_int_equal(ps_send(sv[0], PS_NAMES, 1, big, 100, fds, 1), 0);
	assert_int_equal(ps_send(sv[0], PS_READY, 2, "{}", 2, NULL, 0), 0);
	errno = 0;
	assert_int_equal(ps_recv(sv[1], &hdr, buf, 64, got), -1);
	assert_int_equal(errno, EBADMSG);
	n = ps_recv(sv[1], &hdr, buf, 64, got);
	assert_int_equal(n, 2);
	assert_int_equal(hdr.type, PS_READY);
	assert_int_equal(hdr.nfds, 0);

	/* Too large to send, and too many fds. */
	assert_int_equal(ps_send(sv[0], PS_NAMES, 3, big, sizeof big, NULL, 0), -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(ps_send(sv[0], PS_NAMES, 3, "{}", 2, fds, PS_FDS_MAX + 1), -1);

	/* End of stream. */
	close(sv[0]);
	assert_int_equal(ps_recv(sv[1], &hdr, buf, 64, got), 0);
	assert_int_equal(hdr.type, 0);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_requests_pass),
		cmocka_unit_test(test_types_sizes_and_fds),
		cmocka_unit_test(test_names_are_vm_names),
		cmocka_unit_test(test_fields_in_range),
		cmocka_unit_test(test_send_and_receive_with_fds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
