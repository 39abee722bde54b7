/* The daemon's one event loop: epoll over fds, each with a callback.
 * Signals arrive through a signalfd, child exits through pidfds and
 * deadlines through timerfds, so nothing here ever sleeps on a timeout. */
#ifndef VMHOSTD_LOOP_H
#define VMHOSTD_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop_source;
typedef void loop_fn(struct loop_source *src, uint32_t events);

struct loop_source {
	int fd;
	loop_fn *ready;
	void *arg;
};

struct loop {
	int epfd;
	bool quit;
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

/* A CLOCK_MONOTONIC timerfd, O_CLOEXEC|O_NONBLOCK. */
int loop_timer_new(void);
/* Arm fd to fire once after ms milliseconds (0 disarms). */
int loop_timer_arm(int fd, unsigned long ms);
/* Read and discard the expiry count. */
void loop_timer_ack(int fd);

#endif
