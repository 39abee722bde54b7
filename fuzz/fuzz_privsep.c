/* libFuzzer target: what the monitor does with a message from the engine,
 * which it treats as hostile (a compromised engine may send anything).
 *
 * The input is one packet as it arrives on the SOCK_SEQPACKET channel: it
 * goes through a real socketpair and ps_recv, then ps_check_request, and
 * what passes is handled by the monitor's own dispatch (enginep_request)
 * against a monitor with no engine connected and no VM running (its
 * config root watched, so that LIST and SYNC list it).  LOAD and
 * LAUNCH are checked but not dispatched: they fork the gatherer.  The
 * checks: a message that passes holds valid names only; nothing crashes,
 * leaks or runs a VM. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/vmconfig.h"
#include "monitor/enginep.h"
#include "monitor/monitor.h"
#include "monitor/namepush.h"
#include "monitor/netlinks.h"
#include "privsep/privsep.h"

static struct monitor fuzz_m;
static int fuzz_sv[2];

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/dev/shm/vmhost-fuzz-privsep-XXXXXX";
	char err[256];

	if (!mkdtemp(dir) || loop_init(&fuzz_m.loop) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fuzz_sv) < 0)
		abort();
	fuzz_m.state_dir = dir;
	fuzz_m.roots.config_root = dir;
	fuzz_m.link_prefix = "fz-";
	fuzz_m.engine.fd = -1;
	fuzz_m.engine_exit.fd = -1;
	fuzz_m.restart.fd = -1;
	if (netlinks_init(&fuzz_m, err, sizeof err) < 0 ||
	    namepush_init(&fuzz_m) < 0)
		abort();
	return 0;
}

static void fuzz_check_names(const struct ps_hdr *hdr, const void *payload)
{
	const struct ps_pair *p = payload;
	const struct ps_name *n = payload;

	switch (hdr->type) {
	case PS_LOAD:
	case PS_RELEASE:
	case PS_LAUNCH:
	case PS_KILL:
	case PS_LOOKUP:
	case PS_NOTE:
		if (!vmconfig_name_valid(n->name))
			__builtin_trap();
		break;
	case PS_PLUG:
	case PS_UNPLUGGED:
	case PS_LINKNOTE:
		if (!vmconfig_name_valid(p->client) ||
		    !vmconfig_name_valid(p->provider))
			__builtin_trap();
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static char buf[PS_PAYLOAD_MAX + 1];
	int fds[PS_FDS_MAX];
	struct ps_hdr hdr;
	const char *why;
	ssize_t n;

	if (len > PS_PAYLOAD_MAX + sizeof hdr)
		return 0;
	if (send(fuzz_sv[0], data, len, 0) != (ssize_t)len)
		return 0;
	n = ps_recv(fuzz_sv[1], &hdr, buf, PS_PAYLOAD_MAX, fds);
	if (n < 0)
		return 0;   /* short: refused as the monitor refuses it */
	if (ps_check_request(&hdr, buf, (size_t)n, &why) < 0) {
		if (!why || errno != EBADMSG)
			__builtin_trap();
		return 0;
	}
	fuzz_check_names(&hdr, buf);
	if (hdr.type == PS_LOAD || hdr.type == PS_LAUNCH)
		return 0;
	enginep_request(&fuzz_m, &hdr, buf, (size_t)n);
	/* No engine is connected and nothing was gathered: nothing runs. */
	for (struct mvm *vm = fuzz_m.vms; vm; vm = vm->next)
		if (vm->launched)
			__builtin_trap();
	return 0;
}
