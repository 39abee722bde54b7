/* list, info, log and console.  See replies.h. */
#include "engine/replies.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"

/* One walk of the sorted names beside the records, sorted too: each
 * name with its record, or as a stopped VM without one; a record without
 * a name (its directory gone) only while it runs. */
static int replies_list_write(struct engine *e, const struct names *ns,
			      struct buf *out)
{
	static const char head[] = "{\"ok\":true,\"vms\":[";
	struct vm *vm = e->vms.list;
	size_t i = 0;
	bool first = true;
	int c;

	if (buf_append(out, head, sizeof head - 1) < 0)
		return -1;
	while (i < ns->count || vm) {
		c = !vm ? 1 : i == ns->count ? -1 : strcmp(vm->name, ns->v[i]);
		if (c < 0 && !vm_active(vm)) {
			vm = vm->next;
			continue;
		}
		if (!first && buf_append(out, ",", 1) < 0)
			return -1;
		first = false;
		if (vm_brief_text(out, c <= 0 ? vm->name : ns->v[i],
				  c <= 0 ? vm : NULL) < 0)
			return -1;
		if (c <= 0)
			vm = vm->next;
		if (c >= 0)
			i++;
	}
	return buf_append(out, "]}", 2);
}

void replies_list(struct engine *e, struct client *c)
{
	struct buf out;

	if (mon_names(&e->mon) < 0) {
		control_error(c, "%s: asking the monitor: %s", e->config_root,
			      strerror(errno));
		return;
	}
	buf_init(&out, CONTROL_OUT_MAX);
	if (replies_list_write(e, &e->mon.names, &out) < 0)
		control_error(c, "%s: listing: %s", e->config_root,
			      strerror(errno));
	else
		control_reply_text(c, out.data, out.len);
	buf_free(&out);
}

/* The detail of vm, with cfg (the monitor's configuration JSON, or NULL
 * and diagnostics) and the ids of its client links. */
static json_t *replies_detail(struct engine *e, struct vm *vm, json_t *cfg,
			      json_t *diagnostics, json_t *link_ids)
{
	json_t *o = vm_brief(vm), *notes = vm_notes(vm);

	if (!o)
		return NULL;
	json_object_set(o, "config", cfg ? cfg : json_null());
	if (!cfg)
		json_object_set(o, "diagnostics", diagnostics ? diagnostics :
				json_array());
	/* Not running: what a start would say for certain. */
	if (!vm->run && json_is_true(json_object_get(cfg, "wayland")) &&
	    e->wayland_why)
		json_array_append_new(notes, json_string(e->wayland_why));
	json_object_set_new(o, "accel", json_string(
		vm->run ? vm->run->accel : e->accel));
	json_object_set_new(o, "accel_reason", json_string(e->accel_why));
	json_object_set_new(o, "state_dir", json_string(vm->dir));
	json_object_set_new(o, "uid", vm->run && vm->run->uid ?
			    json_integer(vm->run->uid) : json_null());
	/* The run's cgroup, as the monitor made it. */
	json_object_set(o, "cgroup", vm->run ?
			json_object_get(vm->run->launched, "cgroup") ?: json_null() :
			json_null());
	json_object_set_new(o, "notes", notes);
	json_object_set_new(o, "links", links_json(&e->links, vm->name,
						   link_ids));
	json_object_set_new(o, "start_trace", start_trace_json(&vm->trace));
	return o;
}

/* An info request waiting for the monitor to gather a stopped VM. */
struct info_wait {
	struct client *c;
	struct vm *vm;
};

static void replies_info_gone(void *owner, struct client *c)
{
	struct info_wait *w = owner;

	w->c = NULL;
}

static void replies_info_loaded(void *owner, struct mon_reply *r, void *arg)
{
	struct engine *e = owner;
	struct info_wait *w = arg;
	bool ok = json_is_true(json_object_get(r->json, "ok"));

	if (w->c) {
		control_disown(w->c);
		control_reply(w->c, json_pack("{s:b,s:o}", "ok", 1, "vm",
			replies_detail(e, w->vm,
				       ok ? json_object_get(r->json, "config") : NULL,
				       json_object_get(r->json, "diagnostics"),
				       json_object_get(r->json, "links"))));
	}
	free(w);
}

void replies_info(struct engine *e, struct vm *vm, struct client *c)
{
	struct ps_load l = { .keep = 0 };
	struct info_wait *w;

	if (vm->config) {
		control_reply(c, json_pack("{s:b,s:o}", "ok", 1, "vm",
			replies_detail(e, vm, vm->config, NULL, vm->link_ids)));
		return;
	}
	w = calloc(1, sizeof *w);
	if (!w || ps_set_name(l.name, vm->name) < 0 ||
	    mon_request(&e->mon, PS_LOAD, &l, sizeof l, replies_info_loaded,
			w) < 0) {
		control_error(c, "%s: asking the monitor: %s", vm->name,
			      strerror(errno));
		free(w);
		return;
	}
	w->c = c;
	w->vm = vm;
	control_own(c, w, replies_info_gone);
}

/* Append the file at dir/name to c, up to twice the serial cap. */
static int replies_send_file(struct client *c, const char *dir,
			     const char *name)
{
	char chunk[8192], *path;
	size_t total = 0;
	ssize_t n;
	int fd;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	free(path);
	if (fd < 0)
		return -1;
	while (total < 2 * SERIAL_LOG_CAP &&
	       (n = read(fd, chunk, sizeof chunk)) > 0) {
		control_send(c, chunk, (size_t)n);
		total += (size_t)n;
	}
	close(fd);
	return 0;
}

void replies_log(struct engine *e, struct vm *vm, struct client *c,
		 bool follow)
{
	char *path;
	int have;

	if (asprintf(&path, "%s/serial.log", vm->dir) < 0) {
		control_error(c, "%s: %s", vm->name, strerror(errno));
		return;
	}
	have = access(path, R_OK) == 0;
	if (!have && !follow) {
		control_error(c, "%s: %s: no serial log yet", vm->name, path);
		free(path);
		return;
	}
	free(path);
	if (follow)
		vm_follow(vm, c);
	else
		control_stream(c, NULL, NULL, NULL);
	if (c->dead || !c->streaming)
		return;
	replies_send_file(c, vm->dir, "serial.log.1");
	replies_send_file(c, vm->dir, "serial.log");
	if (!follow)
		control_finish(c);
}

void replies_console(struct engine *e, struct vm *vm, struct client *c)
{
	if (!vm->run || !vm->run->console_open ||
	    (vm->state != VM_RUNNING && vm->state != VM_BOOTING)) {
		control_error(c, "%s is not running (%s)", vm->name,
			      vm_state_public(vm->state));
		return;
	}
	if (console_attach(&vm->run->console, c) < 0)
		control_error(c, "%s: too many console viewers", vm->name);
}
