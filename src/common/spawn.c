/* clone3+exec with an explicit fd list and optional namespaces.  See
 * spawn.h. */
#include "common/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

#define SPAWN_NS_FLAGS ((uint64_t)(CLONE_NEWPID | CLONE_NEWNET | \
				   CLONE_NEWIPC | CLONE_NEWUSER))

static char *const spawn_default_env[] = {
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	NULL,
};

/* Runs in the child: only async-signal-safe calls.  Reports errno on
 * errfd and exits on failure. */
static void spawn_child(const struct spawn_opts *o, int gofd, int errfd)
{
	sigset_t none;
	int err, nullfd, i;
	int out = o->log_fd;
	char go;

	/* The parent may block signals for a signalfd; do not pass that on. */
	for (i = 1; i < NSIG; i++)
		signal(i, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	/* Nothing before the parent has put us in place (cgroup, uid maps);
	 * EOF means it gave up on us. */
	if (read(gofd, &go, 1) != 1)
		_exit(127);
	close(gofd);
	if (setsid() < 0)
		goto fail;
	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nullfd < 0)
		goto fail;
	if (out < 0)
		out = nullfd;
	if (dup2(nullfd, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		goto fail;
	/* Every fd above 2 closes at exec, except those we were told to keep. */
	if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
		goto fail;
	for (size_t k = 0; k < o->keep_count; k++)
		if (fcntl(o->keep_fds[k], F_SETFD, 0) < 0)
			goto fail;
	if (o->child_setup && o->child_setup(o->child_arg) < 0)
		goto fail;
	/* Last, so everything above still ran with our powers; the cwd may
	 * be a directory the new uid cannot reach. */
	if (o->drop && (privdrop_apply(o->drop) < 0 || chdir("/") < 0))
		goto fail;
	execve(o->path, o->argv, o->envp ? o->envp : spawn_default_env);
fail:
	err = errno;
	(void)!write(errfd, &err, sizeof(err));
	_exit(127);
}

static int spawn_check(const struct spawn_opts *o)
{
	if (!o || !o->path || !o->argv || !o->argv[0] || o->path[0] != '/' ||
	    (o->clone_flags & ~SPAWN_NS_FLAGS))
		return -1;
	for (size_t k = 0; k < o->keep_count; k++)
		if (o->keep_fds[k] < 3 || o->keep_fds[k] == o->log_fd)
			return -1;
	return 0;
}

static void spawn_reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int spawn(const struct spawn_opts *opts, pid_t *pid_out, int *pidfd_out)
{
	int errp[2] = { -1, -1 }, gop[2] = { -1, -1 };
	int child_err = 0, pidfd = -1, saved;
	struct clone_args ca = { 0 };
	ssize_t n;
	pid_t pid;

	if (spawn_check(opts) < 0) {
		errno = EINVAL;
		return -1;
	}
	if (pipe2(errp, O_CLOEXEC) < 0 || pipe2(gop, O_CLOEXEC) < 0)
		goto fail;
	ca.flags = opts->clone_flags | CLONE_PIDFD;
	ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
	ca.exit_signal = SIGCHLD;
	/* Like fork: the child runs on a copy of our memory and stack. */
	pid = (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
	if (pid < 0)
		goto fail;
	if (pid == 0) {
		close(errp[0]);
		close(gop[1]);
		spawn_child(opts, gop[0], errp[1]);
	}
	close(errp[1]);
	close(gop[0]);
	errp[1] = gop[0] = -1;
	if (opts->parent_setup && opts->parent_setup(pid, opts->parent_arg) < 0)
		goto fail_child;
	if (write(gop[1], "g", 1) != 1)
		goto fail_child;
	close(gop[1]);
	gop[1] = -1;
	/* EOF means exec succeeded (the pipe was close-on-exec). */
	do
		n = read(errp[0], &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	close(errp[0]);
	errp[0] = -1;
	if (n > 0) {
		spawn_reap(pid);
		close(pidfd);
		errno = n == sizeof(child_err) && child_err ? child_err : EIO;
		return -1;
	}
	if (pidfd_out)
		*pidfd_out = pidfd;
	else
		close(pidfd);
	*pid_out = pid;
	return 0;

fail_child:
	saved = errno;
	kill(pid, SIGKILL);
	spawn_reap(pid);
	close(pidfd);
	errno = saved;
fail:
	saved = errno;
	for (int i = 0; i < 2; i++) {
		if (errp[i] >= 0)
			close(errp[i]);
		if (gop[i] >= 0)
			close(gop[i]);
	}
	errno = saved;
	return -1;
}
