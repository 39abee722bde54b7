#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/request.h"
#include "daemon/vmstate.h"

#define REQUEST_STOP_TIMEOUT_MAX 3600

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

/* The VM a request names, or NULL after answering with an error. */
static struct vm *request_vm(struct daemon *d, struct client *c, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	struct vm *vm;

	if (!name) {
		control_error(c, "bad request: \"name\" (a string) is missing");
		return NULL;
	}
	if (!vmconfig_name_valid(name)) {
		control_error(c, "invalid VM name \"%.80s\": use 1 to %d of A-Z a-z 0-9 . _ -, not starting with . or -",
			      name, VMCONFIG_NAME_MAX);
		return NULL;
	}
	vm = vmstate_find(d, name, true);
	if (!vm)
		control_error(c, "%s: %s", name, strerror(ENOMEM));
	return vm;
}

static void request_stop(struct daemon *d, struct client *c, json_t *req)
{
	json_t *force = json_object_get(req, "force");
	json_t *timeout = json_object_get(req, "timeout");
	json_int_t t = VMSTATE_STOP_TIMEOUT_S;
	struct vm *vm;

	if ((force && !json_is_boolean(force)) ||
	    (timeout && !json_is_integer(timeout))) {
		control_error(c, "bad request: \"force\" is a boolean, \"timeout\" an integer");
		return;
	}
	if (timeout)
		t = json_integer_value(timeout);
	if (t < 0 || t > REQUEST_STOP_TIMEOUT_MAX) {
		control_error(c, "bad request: timeout must be 0 to %d seconds",
			      REQUEST_STOP_TIMEOUT_MAX);
		return;
	}
	vm = request_vm(d, c, req);
	if (vm)
		vmstate_stop(vm, c, json_is_true(force), (unsigned int)t);
}

void request_handle(void *arg, struct client *c, json_t *req)
{
	struct daemon *d = arg;
	const char *op = json_string_value(json_object_get(req, "op"));
	struct vm *vm;

	if (!op) {
		control_error(c, "bad request: \"op\" (a string) is missing");
		return;
	}
	if (d->shutting_down && strcmp(op, "list") && strcmp(op, "info")) {
		control_error(c, "vmhostd is shutting down");
		return;
	}
	if (!strcmp(op, "list")) {
		request_list(d, c);
		return;
	}
	if (!strcmp(op, "stop")) {
		request_stop(d, c, req);
		return;
	}
	if (strcmp(op, "start") && strcmp(op, "info") &&
	    strcmp(op, "console") && strcmp(op, "log")) {
		control_error(c, "bad request: unknown op \"%.40s\"", op);
		return;
	}
	vm = request_vm(d, c, req);
	if (!vm)
		return;
	if (!strcmp(op, "start"))
		vmstate_start(vm, c);
	else if (!strcmp(op, "console"))
		vmstate_console(vm, c);
	else if (!strcmp(op, "log"))
		vmstate_log(vm, c, json_is_true(json_object_get(req, "follow")));
	else
		control_reply(c, json_pack("{s:b,s:o}", "ok", 1, "vm",
					   vmstate_json(vm, true)));
}
