/* A process's one event loop: epoll over fds, each with a callback.
 * Signals arrive through a signalfd, child exits through pidfds and
 * deadlines through timerfds, so nothing here ever sleeps on a timeout.
 * Work that must not run inside the callback that causes it (answering a
 * client's next request, a VM event caused by another VM's) is deferred:
 * it runs after that callback returns, before the next wait. */
#ifndef VMHOST_LOOP_H
#define VMHOST_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop_source;
typedef void loop_fn(struct loop_source *src, uint32_t events);

struct loop_source {
	int fd;
	loop_fn *ready;
	void *arg;
};

struct loop_deferred;
typedef void loop_deferred_fn(struct loop_deferred *d);

struct loop_deferred {
	loop_deferred_fn *run;
	void *arg;
	struct loop_deferred *next;
	bool queued;
};

struct loop {
	int epfd;
	bool quit;
	struct loop_deferred *deferred, **deferred_tail;
};

int loop_init(struct loop *l);
void loop_fini(struct loop *l);
/* Watch src->fd for events; src must outlive the watch. */
int loop_add(struct loop *l, struct loop_source *src, uint32_t events);
int loop_mod(struct loop *l, struct loop_source *src, uint32_t events);
void loop_del(struct loop *l, struct loop_source *src);
/* Dispatch until loop_quit; returns -1 with errno on an epoll failure. */
int loop_run(struct loop *l);
void loop_quit(struct loop *l);
/* Run d->run(d) once, after the current callback (FIFO; queuing a queued
 * d again does nothing). */
void loop_defer(struct loop *l, struct loop_deferred *d);
/* Take d off the queue (before freeing what it points to). */
void loop_undefer(struct loop *l, struct loop_deferred *d);
/* Run what is deferred now (also done by loop_run after each event). */
void loop_run_deferred(struct loop *l);

/* A CLOCK_MONOTONIC timerfd, O_CLOEXEC|O_NONBLOCK. */
int loop_timer_new(void);
/* Arm fd to fire once after ms milliseconds (0 disarms). */
int loop_timer_arm(int fd, unsigned long ms);
/* Read and discard the expiry count. */
void loop_timer_ack(int fd);

#endif
