/* Diagnostics collected by the loader, and the escaping that keeps
 * untrusted names and values printable in them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"
#include "config/vmconfig.h"

void diags_init(struct diags *d)
{
	memset(d, 0, sizeof(*d));
}

void diags_free(struct diags *d)
{
	for (size_t i = 0; i < d->count; i++) {
		free(d->items[i].vm);
		free(d->items[i].path);
		free(d->items[i].message);
	}
	free(d->items);
	diags_init(d);
}

char *vmconfig_escape(const char *s, size_t len, size_t max)
{
	return text_escape(s, len, max, TEXT_ASCII);
}

int diags_vadd(struct diags *d, enum diag_level level, const char *vm,
	       const char *path, const char *fmt, va_list ap)
{
	struct diag item = { .level = level };

	if (!vm)
		vm = "";
	if (!path || !*path)
		path = ".";
	if (d->count == d->capacity) {
		size_t cap = d->capacity ? d->capacity * 2 : 16;
		struct diag *items = realloc(d->items, cap * sizeof(*items));

		if (!items)
			return -1;
		d->items = items;
		d->capacity = cap;
	}
	item.vm = vmconfig_escape(vm, strlen(vm), 256);
	item.path = vmconfig_escape(path, strlen(path), 1024);
	if (vasprintf(&item.message, fmt, ap) < 0)
		item.message = NULL;
	if (!item.vm || !item.path || !item.message)
		goto fail;
	d->items[d->count++] = item;
	if (level == DIAG_ERROR)
		d->errors++;
	return 0;
fail:
	free(item.vm);
	free(item.path);
	free(item.message);
	errno = ENOMEM;
	return -1;
}

int diags_add(struct diags *d, enum diag_level level, const char *vm,
	      const char *path, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = diags_vadd(d, level, vm, path, fmt, ap);
	va_end(ap);
	return r;
}

int diags_append(struct diags *d, struct diags *from)
{
	for (size_t i = 0; i < from->count; i++) {
		struct diag *it = &from->items[i];

		if (diags_add(d, it->level, "", "", "%s", it->message) < 0)
			return -1;
		/* Already escaped: move them over as they are. */
		free(d->items[d->count - 1].vm);
		free(d->items[d->count - 1].path);
		d->items[d->count - 1].vm = it->vm;
		d->items[d->count - 1].path = it->path;
		it->vm = it->path = NULL;
	}
	diags_free(from);
	return 0;
}

const char *diag_level_name(enum diag_level level)
{
	switch (level) {
	case DIAG_NOTE:
		return "note";
	case DIAG_WARNING:
		return "warning";
	case DIAG_ERROR:
		break;
	}
	return "error";
}

char *diag_format(const struct diag *item)
{
	const char *prefix = item->level == DIAG_WARNING ? "warning: " :
			     item->level == DIAG_NOTE ? "note: " : "";
	char *s;

	if (asprintf(&s, "%s: %s: %s%s", item->vm, item->path, prefix,
		     item->message) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	return s;
}
