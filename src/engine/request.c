/* The control protocol's operations, turned into VM events and replies.
 * See request.h. */
#include "engine/request.h"

#include <errno.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/proto.h"
#include "engine/replies.h"

static void request_unknown(struct engine *e, struct client *c,
			    const char *name)
{
	control_error(c, "unknown VM %s: %s/%s: no such VM directory", name,
		      e->config_root, name);
}

void request_handle(void *arg, struct client *c, json_t *req)
{
	struct engine *e = arg;
	struct proto_req r;
	struct vm_ev ev = { .c = c, .fds = { -1, -1, -1, -1, -1 } };
	char err[256];
	struct vm *vm;
	int found;

	if (proto_parse(req, &r, err, sizeof err) < 0) {
		control_error(c, "%s", err);
		return;
	}
	if (e->shutting_down && r.op != PROTO_LIST && r.op != PROTO_INFO) {
		control_error(c, "vmhostd is shutting down");
		return;
	}
	if (r.op == PROTO_LIST) {
		replies_list(e, c);
		return;
	}
	/* A record is made only for a VM that exists (or still runs), so
	 * requests for made-up names neither grow the table nor answer. */
	vm = vm_find(&e->vms, r.name, false);
	if (!vm) {
		found = mon_lookup(&e->mon, r.name);
		if (found < 0) {
			control_error(c, "%s: asking the monitor: %s", r.name,
				      strerror(errno));
			return;
		}
		if (!found) {
			request_unknown(e, c, r.name);
			return;
		}
		vm = vm_find(&e->vms, r.name, true);
	}
	if (!vm) {
		control_error(c, "%s: %s", r.name, strerror(ENOMEM));
		return;
	}
	switch (r.op) {
	case PROTO_START:
		ev.type = EV_START;
		vm_event(vm, &ev);
		break;
	case PROTO_STOP:
		ev.type = r.force ? EV_FORCE : EV_STOP;
		ev.timeout_s = r.has_timeout ? r.timeout : VM_STOP_TIMEOUT_S;
		vm_event(vm, &ev);
		break;
	case PROTO_CONSOLE:
		replies_console(e, vm, c);
		break;
	case PROTO_LOG:
		replies_log(e, vm, c, r.follow);
		break;
	default:
		replies_info(e, vm, c);
		break;
	}
}
