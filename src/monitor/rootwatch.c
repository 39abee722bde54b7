/* The config root watched with inotify.  See rootwatch.h. */
#include "monitor/rootwatch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "config/vmconfig.h"

#define ROOTWATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
			IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
/* The watch is over: the root went, or the kernel dropped the watch. */
#define ROOTWATCH_GONE (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED)

static void rootwatch_forget(struct rootwatch *w)
{
	for (size_t i = 0; i < w->touched_count; i++)
		free(w->touched[i]);
	w->touched_count = 0;
	w->overflow = false;
}

void rootwatch_init(struct rootwatch *w)
{
	memset(w, 0, sizeof *w);
	w->fd = -1;
}

int rootwatch_instance(const char *root)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC), saved;

	if (fd < 0)
		return -1;
	if (inotify_add_watch(fd, root, ROOTWATCH_MASK) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

int rootwatch_open(struct rootwatch *w, const char *root)
{
	rootwatch_close(w);
	w->root = strdup(root);
	if (!w->root)
		return -1;
	/* The watch first: a listing after it misses nothing. */
	w->fd = rootwatch_instance(root);
	if (w->fd < 0) {
		int saved = errno;

		rootwatch_close(w);
		errno = saved;
		return -1;
	}
	return 0;
}

void rootwatch_close(struct rootwatch *w)
{
	rootwatch_forget(w);
	free(w->touched);
	if (w->fd >= 0)
		close(w->fd);
	free(w->root);
	rootwatch_init(w);
}

static void rootwatch_touch(struct rootwatch *w, const char *name)
{
	char **grown;
	size_t cap;

	if (w->overflow || !vmconfig_name_valid(name))
		return;
	if (w->touched_count == ROOTWATCH_TOUCHED_MAX)
		goto overflow;
	if (w->touched_count == w->touched_cap) {
		cap = w->touched_cap ? 2 * w->touched_cap : 64;
		grown = realloc(w->touched, cap * sizeof *grown);
		if (!grown)
			goto overflow;
		w->touched = grown;
		w->touched_cap = cap;
	}
	w->touched[w->touched_count] = strdup(name);
	if (!w->touched[w->touched_count])
		goto overflow;
	w->touched_count++;
	return;
overflow:
	/* Whatever the names were, a whole listing covers them. */
	rootwatch_forget(w);
	w->overflow = true;
}

int rootwatch_read(struct rootwatch *w)
{
	alignas(struct inotify_event) char buf[16384];
	const struct inotify_event *ev;
	ssize_t n;

	if (w->fd < 0 || w->lost)
		return 0;
	for (;;) {
		n = read(w->fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			w->lost = true;
			return -1;
		}
		for (char *p = buf; p < buf + n;
		     p += sizeof *ev + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW) {
				rootwatch_forget(w);
				w->overflow = true;
			}
			if (ev->mask & ROOTWATCH_GONE)
				w->lost = true;
			else if (ev->len)
				rootwatch_touch(w, ev->name);
		}
	}
}

bool rootwatch_pending(const struct rootwatch *w)
{
	return w->touched_count || w->overflow;
}

int rootwatch_take(struct rootwatch *w, struct rootwatch_change **changes,
		   size_t *count)
{
	struct rootwatch_change *out;
	size_t n = 0;
	int dirfd;

	*changes = NULL;
	*count = 0;
	if (!w->touched_count)
		return 0;
	out = calloc(w->touched_count, sizeof *out);
	if (!out)
		return -1;
	/* A root that went has none of them (its event follows). */
	dirfd = open(w->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	qsort(w->touched, w->touched_count, sizeof *w->touched, vmconfig_names_cmp);
	for (size_t i = 0; i < w->touched_count; i++) {
		if (n && !strcmp(out[n - 1].name, w->touched[i])) {
			free(w->touched[i]);
			continue;
		}
		out[n].name = w->touched[i];
		out[n].present = dirfd >= 0 &&
			vmconfig_root_entry(dirfd, w->touched[i], DT_UNKNOWN);
		n++;
	}
	if (dirfd >= 0)
		close(dirfd);
	w->touched_count = 0;
	*changes = out;
	*count = n;
	return 0;
}

void rootwatch_changes_free(struct rootwatch_change *changes, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(changes[i].name);
	free(changes);
}

int rootwatch_names(const char *root, char ***names, size_t *count)
{
	size_t n = 0;

	if (vmconfig_list(root, names, count) < 0)
		return -1;
	/* Only what the engine may show: `vm check` reports the rest. */
	for (size_t i = 0; i < *count; i++) {
		if (vmconfig_name_valid((*names)[i]))
			(*names)[n++] = (*names)[i];
		else
			free((*names)[i]);
	}
	*count = n;
	return 0;
}

int rootwatch_list(struct rootwatch *w, char ***names, size_t *count)
{
	rootwatch_forget(w);
	if (!w->root) {
		errno = EBADF;
		return -1;
	}
	return rootwatch_names(w->root, names, count);
}
