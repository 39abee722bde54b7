/* virtiofsd per share.  See virtiofsd.h. */
#include "vmm/virtiofsd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int virtiofsd_sockets(const char *tmp_path, int *listen_fd, int *qemu_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd, cfd, saved;

	if (strlen(tmp_path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, tmp_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -1;
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto err_lfd;
	if (listen(lfd, 1) < 0)
		goto err_unlink;
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cfd < 0)
		goto err_unlink;
	/* Completes at once: the connection waits in the backlog until
	 * virtiofsd accepts it. */
	if (connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto err_cfd;
	/* Nobody else may connect later: the name goes now. */
	if (unlink(tmp_path) < 0)
		goto err_cfd_nounlink;
	*listen_fd = lfd;
	*qemu_fd = cfd;
	return 0;

err_cfd:
	saved = errno;
	close(cfd);
	unlink(tmp_path);
	close(lfd);
	errno = saved;
	return -1;
err_cfd_nounlink:
	saved = errno;
	close(cfd);
	close(lfd);
	errno = saved;
	return -1;
err_unlink:
	saved = errno;
	unlink(tmp_path);
	close(lfd);
	errno = saved;
	return -1;
err_lfd:
	saved = errno;
	close(lfd);
	errno = saved;
	return -1;
}

void virtiofsd_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

#define VIRTIOFSD_ARGV_MAX 16

static int virtiofsd_push(char **argv, int *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int virtiofsd_push(char **argv, int *n, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (*n >= VIRTIOFSD_ARGV_MAX - 1) {
		errno = E2BIG;
		return -1;
	}
	va_start(ap, fmt);
	rc = vasprintf(&argv[*n], fmt, ap);
	va_end(ap);
	if (rc < 0) {
		argv[*n] = NULL;
		errno = ENOMEM;
		return -1;
	}
	(*n)++;
	return 0;
}

int virtiofsd_argv(const struct virtiofsd_opts *o, char ***out)
{
	const char *bin = o->binary ? o->binary : VIRTIOFSD_PATH;
	const char *sandbox = o->sandbox == VIRTIOFSD_SANDBOX_CHROOT ?
		"chroot" : "namespace";
	const char *source = o->source;
	char **argv;
	int n = 0;

	/* -o values are split on commas; a source with one cannot be said. */
	if (!source || source[0] != '/' || strchr(source, ',') ||
	    o->listen_fd < 3) {
		errno = EINVAL;
		return -1;
	}
	argv = calloc(VIRTIOFSD_ARGV_MAX, sizeof(*argv));
	if (!argv)
		return -1;
	if (virtiofsd_push(argv, &n, "%s", bin) < 0 ||
	    virtiofsd_push(argv, &n, "--fd=%d", o->listen_fd) < 0 ||
	    virtiofsd_push(argv, &n, "-o") < 0 ||
	    virtiofsd_push(argv, &n, "source=%s", source) < 0 ||
	    virtiofsd_push(argv, &n, "-o") < 0 ||
	    virtiofsd_push(argv, &n, "sandbox=%s", sandbox) < 0 ||
	    /* Coherent with host-side writers, and quiet in the log. */
	    virtiofsd_push(argv, &n, "-o") < 0 ||
	    virtiofsd_push(argv, &n, "cache=auto") < 0 ||
	    virtiofsd_push(argv, &n, "-o") < 0 ||
	    virtiofsd_push(argv, &n, "log_level=warn") < 0 ||
	    /* Its jail set the limit; raising it is not its to do. */
	    virtiofsd_push(argv, &n, "--rlimit-nofile=0") < 0)
		goto err;
	/* Of the capabilities its namespace sandbox keeps, a guest needs
	 * neither making device nodes nor setting file capabilities on the
	 * host (docs/security.md). */
	if (o->sandbox == VIRTIOFSD_SANDBOX_NAMESPACE &&
	    (virtiofsd_push(argv, &n, "-o") < 0 ||
	     virtiofsd_push(argv, &n, "modcaps=-mknod:-setfcap") < 0))
		goto err;
	*out = argv;
	return 0;
err:
	virtiofsd_argv_free(argv);
	return -1;
}
