/* fork+exec with an explicit fd list.  See spawn.h. */
#include "common/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

static char *const spawn_default_env[] = {
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	NULL,
};

static int spawn_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Runs in the child: only async-signal-safe calls.  Reports errno on
 * errfd and exits on failure. */
static void spawn_child(const struct spawn_opts *o, int errfd)
{
	sigset_t none;
	int err, nullfd, i;
	int out = o->log_fd;

	/* The parent may block signals for a signalfd; do not pass that on. */
	for (i = 1; i < NSIG; i++)
		signal(i, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

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
	if (!o || !o->path || !o->argv || !o->argv[0] || o->path[0] != '/')
		return -1;
	for (size_t k = 0; k < o->keep_count; k++)
		if (o->keep_fds[k] < 3 || o->keep_fds[k] == o->log_fd)
			return -1;
	return 0;
}

int spawn(const struct spawn_opts *opts, pid_t *pid_out, int *pidfd_out)
{
	int pipefd[2], child_err = 0, pidfd = -1, saved;
	ssize_t n;
	pid_t pid;

	if (spawn_check(opts) < 0) {
		errno = EINVAL;
		return -1;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		goto err_pipe;
	if (pid == 0) {
		close(pipefd[0]);
		spawn_child(opts, pipefd[1]);
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	/* EOF means exec succeeded (the pipe was close-on-exec). */
	do
		n = read(pipefd[0], &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n > 0) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		errno = n == sizeof(child_err) && child_err ? child_err : EIO;
		return -1;
	}
	if (pidfd_out) {
		/* Not yet reaped (only we can), so the pid still names it. */
		pidfd = spawn_pidfd_open(pid);
		if (pidfd < 0)
			goto err_child;
		*pidfd_out = pidfd;
	}
	*pid_out = pid;
	return 0;

err_child:
	saved = errno;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	errno = saved;
	return -1;
err_pipe:
	saved = errno;
	close(pipefd[0]);
	close(pipefd[1]);
	errno = saved;
	return -1;
}
