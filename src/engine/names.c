/* The engine's copy of the config root's VM names.  See names.h. */
#include "engine/names.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/vmconfig.h"

void names_init(struct names *ns)
{
	memset(ns, 0, sizeof *ns);
	ns->watch_fd = -1;
}

void names_clear(struct names *ns)
{
	for (size_t i = 0; i < ns->count; i++)
		free(ns->v[i]);
	free(ns->v);
	if (ns->watch_fd >= 0)
		close(ns->watch_fd);
	names_init(ns);
}

bool names_stale(struct names *ns)
{
	char buf[4096];
	bool any = false;
	ssize_t n;

	if (ns->watch_fd < 0)
		return true;
	/* Read to the end: these events are all answered by one sync. */
	while ((n = read(ns->watch_fd, buf, sizeof buf)) > 0)
		any = true;
	return any || (n < 0 && errno != EAGAIN && errno != EINTR);
}

bool names_current(const struct names *ns)
{
	return ns->complete && ns->watching;
}

/* The names of arr (NULL: none), copied.  -1 with errno EPROTO if arr
 * is not an array of valid VM names in strictly ascending order (strcmp:
 * the monitor sends them sorted, so the engine need not sort, and qsort
 * would ask for sysinfo, outside its seccomp allow-list), or ENOMEM. */
static int names_take(json_t *arr, char ***out, size_t *count)
{
	size_t n = 0, i;
	char **list;
	json_t *v;

	*out = NULL;
	*count = 0;
	if (!arr || !json_array_size(arr)) {
		errno = arr && !json_is_array(arr) ? EPROTO : 0;
		return errno ? -1 : 0;
	}
	list = calloc(json_array_size(arr), sizeof *list);
	if (!list)
		return -1;
	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);

		if (!s || !vmconfig_name_valid(s) ||
		    (n && strcmp(list[n - 1], s) >= 0)) {
			errno = EPROTO;
			goto fail;
		}
		if (!(list[n] = strdup(s)))
			goto fail;
		n++;
	}
	*out = list;
	*count = n;
	return 0;
fail:
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return -1;
}

/* The copy becomes (copy - del) + add, in one walk of the three sorted
 * lists.  add's strings move into the copy (or are freed); del is kept. */
static int names_merge(struct names *ns, char **add, size_t nadd,
		       char **del, size_t ndel)
{
	size_t i = 0, a = 0, d = 0, n = 0;
	char **out;
	int c;

	if (!nadd && !ndel)
		return 0;
	out = malloc((ns->count + nadd + 1) * sizeof *out);
	if (!out)
		return -1;
	while (i < ns->count || a < nadd) {
		c = a == nadd ? -1 : i == ns->count ? 1 : strcmp(ns->v[i], add[a]);
		if (c > 0) {
			out[n++] = add[a++];
			continue;
		}
		while (d < ndel && strcmp(del[d], ns->v[i]) < 0)
			d++;
		if (c == 0)
			free(add[a++]);        /* there already: kept */
		else if (d < ndel && !strcmp(del[d], ns->v[i])) {
			free(ns->v[i++]);
			continue;
		}
		out[n++] = ns->v[i++];
	}
	free(ns->v);
	ns->v = out;
	ns->count = n;
	return 0;
}

static void names_free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

int names_apply(struct names *ns, json_t *msg, int fd)
{
	json_t *reset = json_object_get(msg, "reset");
	json_t *more = json_object_get(msg, "more");
	json_t *watching = json_object_get(msg, "watching");
	json_t *synced = json_object_get(msg, "synced");
	char **add = NULL, **del = NULL;
	size_t nadd = 0, ndel = 0;

	/* A watch comes only with the first part of a whole list. */
	if (!json_is_object(msg) || (reset && !json_is_boolean(reset)) ||
	    (more && !json_is_boolean(more)) ||
	    (watching && !json_is_boolean(watching)) ||
	    (synced && !json_is_true(synced)) ||
	    (fd >= 0 && !json_is_true(reset))) {
		errno = EPROTO;
		goto fail;
	}
	if (names_take(json_object_get(msg, "add"), &add, &nadd) < 0 ||
	    names_take(json_object_get(msg, "del"), &del, &ndel) < 0)
		goto fail;
	if (json_is_true(reset)) {
		names_clear(ns);
		ns->listed = true;
		ns->watch_fd = fd;
		fd = -1;
	}
	if (names_merge(ns, add, nadd, del, ndel) < 0)
		goto fail;
	free(add);
	names_free_list(del, ndel);
	/* The parts of a whole list say whether more follow; changes
	 * do not. */
	if (more && ns->listed)
		ns->complete = !json_is_true(more);
	if (watching)
		ns->watching = json_is_true(watching);
	if (synced)
		ns->synced = true;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	names_free_list(add, nadd);
	names_free_list(del, ndel);
	names_clear(ns);
	return -1;
}
