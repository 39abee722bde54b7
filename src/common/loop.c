/* The event loop.  See loop.h. */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/loop.h"

int loop_init(struct loop *l)
{
	l->quit = false;
	l->deferred = NULL;
	l->deferred_tail = &l->deferred;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	return l->epfd < 0 ? -1 : 0;
}

void loop_fini(struct loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}

static int loop_ctl(struct loop *l, int op, struct loop_source *src,
		    uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	return epoll_ctl(l->epfd, op, src->fd, &ev);
}

int loop_add(struct loop *l, struct loop_source *src, uint32_t events)
{
	return loop_ctl(l, EPOLL_CTL_ADD, src, events);
}

int loop_mod(struct loop *l, struct loop_source *src, uint32_t events)
{
	return loop_ctl(l, EPOLL_CTL_MOD, src, events);
}

void loop_del(struct loop *l, struct loop_source *src)
{
	if (src->fd >= 0)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, src->fd, NULL);
}

/* One event per wait: a callback may free any other source, and a batch
 * would then hold a dangling pointer. */
int loop_run(struct loop *l)
{
	struct epoll_event ev;
	struct loop_source *src;
	int n;

	while (!l->quit) {
		n = epoll_wait(l->epfd, &ev, 1, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			continue;
		src = ev.data.ptr;
		src->ready(src, ev.events);
		loop_run_deferred(l);
	}
	return 0;
}

void loop_defer(struct loop *l, struct loop_deferred *d)
{
	if (d->queued)
		return;
	d->queued = true;
	d->next = NULL;
	*l->deferred_tail = d;
	l->deferred_tail = &d->next;
}

void loop_undefer(struct loop *l, struct loop_deferred *d)
{
	struct loop_deferred **pp;

	if (!d->queued)
		return;
	for (pp = &l->deferred; *pp; pp = &(*pp)->next) {
		if (*pp != d)
			continue;
		*pp = d->next;
		if (l->deferred_tail == &d->next)
			l->deferred_tail = pp;
		break;
	}
	d->queued = false;
}

void loop_run_deferred(struct loop *l)
{
	struct loop_deferred *d;

	while ((d = l->deferred)) {
		l->deferred = d->next;
		if (!l->deferred)
			l->deferred_tail = &l->deferred;
		d->queued = false;
		d->run(d);
	}
}

void loop_quit(struct loop *l)
{
	l->quit = true;
}

int loop_timer_new(void)
{
	return timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
}

int loop_timer_arm(int fd, unsigned long ms)
{
	struct itimerspec its = {
		.it_value.tv_sec = ms / 1000,
		.it_value.tv_nsec = (long)(ms % 1000) * 1000000L,
	};

	return timerfd_settime(fd, 0, &its, NULL);
}

void loop_timer_ack(int fd)
{
	uint64_t n;

	if (read(fd, &n, sizeof n) < 0) {
		/* EAGAIN: raced with a re-arm; nothing to do. */
	}
}
