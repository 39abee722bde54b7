#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/proto.h"
#include "daemon/request.h"
#include "daemon/vmstate.h"

static void request_list(struct daemon *d, struct client *c)
{
	json_t *vms = json_array();
	char **names = NULL;
	size_t count = 0, i;
	struct vm *vm;

	if (vmconfig_list(d->roots.config_root, &names, &count) < 0) {
		control_error(c, "%s: %s", d->roots.config_root, strerror(errno));
		json_decref(vms);
		return;
	}
	for (i = 0; i < count; i++) {
		if (!vmconfig_name_valid(names[i]))
			continue;
		vm = vmstate_find(d, names[i], true);
		if (vm)
			json_array_append_new(vms, vmstate_json(vm, false));
	}
	/* Still running, though its directory is gone. */
	for (vm = d->vms; vm; vm = vm->next) {
		for (i = 0; i < count && strcmp(names[i], vm->name); i++)
			;
		if (i == count && vmstate_active(vm))
			json_array_append_new(vms, vmstate_json(vm, false));
	}
	vmconfig_list_free(names, count);
	control_reply(c, json_pack("{s:b,s:o}", "ok", 1, "vms", vms));
}

void request_handle(void *arg, struct client *c, json_t *req)
{
	struct daemon *d = arg;
	struct proto_req r;
	char err[256];
	struct vm *vm;

	if (proto_parse(req, &r, err, sizeof err) < 0) {
		control_error(c, "%s", err);
		return;
	}
	if (d->shutting_down && r.op != PROTO_LIST && r.op != PROTO_INFO) {
		control_error(c, "vmhostd is shutting down");
		return;
	}
	if (r.op == PROTO_LIST) {
		request_list(d, c);
		return;
	}
	/* A record is made only for a VM that exists (or still runs), so
	 * requests for made-up names neither grow the table nor answer. */
	vm = vmstate_find(d, r.name, false);
	if (!vm && !vmstate_dir_exists(d, r.name)) {
		vmstate_unknown(d, c, r.name);
		return;
	}
	if (!vm)
		vm = vmstate_find(d, r.name, true);
	if (!vm) {
		control_error(c, "%s: %s", r.name, strerror(ENOMEM));
		return;
	}
	switch (r.op) {
	case PROTO_START:
		vmstate_start(vm, c);
		break;
	case PROTO_STOP:
		vmstate_stop(vm, c, r.force,
			     r.has_timeout ? r.timeout : VMSTATE_STOP_TIMEOUT_S);
		break;
	case PROTO_CONSOLE:
		vmstate_console(vm, c);
		break;
	case PROTO_LOG:
		vmstate_log(vm, c, r.follow);
		break;
	default:
		control_reply(c, json_pack("{s:b,s:o}", "ok", 1, "vm",
					   vmstate_json(vm, true)));
		break;
	}
}
