/* Starting a VM's processes, each jailed and in the VM's cgroup: the one
 * launch path.  See launch.h. */
#include "vmm/launch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sealcopy.h"
#include "common/spawn.h"
#include "vmm/jail.h"
#include "vmm/loopfilter.h"
#include "vmm/virtiofsd.h"

#define LAUNCH_BIT(cap) ((uint64_t)1 << (cap))
/* What virtiofsd does inside its user namespace (where these reach only
 * the owner's files): serve files as the guest's ids (chown, dac_override,
 * fowner, fsetid, setgid, setuid), drop its own bounding set (setpcap),
 * and build its sandbox (sys_admin: unshare, mount, pivot_root). */
#define LAUNCH_VIRTIOFSD_CAPS                                               \
	(LAUNCH_BIT(CAP_CHOWN) | LAUNCH_BIT(CAP_DAC_OVERRIDE) |             \
	 LAUNCH_BIT(CAP_FOWNER) | LAUNCH_BIT(CAP_FSETID) |                  \
	 LAUNCH_BIT(CAP_SETGID) | LAUNCH_BIT(CAP_SETUID) |                  \
	 LAUNCH_BIT(CAP_SETPCAP) | LAUNCH_BIT(CAP_SYS_ADMIN))

/* The address plan passt gives the uplink: QEMU's user-mode network's,
 * which guests and docs knew before. */
#define LAUNCH_UPLINK_ADDR "10.0.2.15"
#define LAUNCH_UPLINK_PREFIX "24"
#define LAUNCH_UPLINK_GATEWAY "10.0.2.2"

static const char *const launch_sockets[] = {
	"qmp.sock", "serial.sock", "console.sock",
};

uint64_t launch_memory_max(const struct vm_config *cfg)
{
	return cfg->memory + LAUNCH_MEMORY_OVERHEAD +
	       cfg->share_count * LAUNCH_MEMORY_PER_SHARE +
	       (cfg->wayland ? LAUNCH_MEMORY_WAYLAND : 0);
}

uint64_t launch_pids_max(const struct vm_config *cfg)
{
	return LAUNCH_PIDS_BASE + cfg->cpus +
	       cfg->share_count * LAUNCH_PIDS_PER_SHARE +
	       (cfg->wayland ? LAUNCH_PIDS_WAYLAND : 0);
}

static void launch_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* "/proc/self/fd/DIR/name": short whatever the run dir's length, and
 * never looked up through a path someone else could change. */
static int launch_sockaddr(int dirfd, const char *name,
			   struct sockaddr_un *sa)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if ((size_t)snprintf(sa->sun_path, sizeof sa->sun_path,
			     "/proc/self/fd/%d/%s", dirfd, name) >=
	    sizeof sa->sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int launch_listen(int dirfd, const char *name)
{
	struct sockaddr_un sa;
	int fd, saved;

	if (launch_sockaddr(dirfd, name, &sa) < 0)
		return -1;
	/* A stale one from a crashed run: nothing listens there. */
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(fd, 1) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static int launch_connect(int dirfd, const char *name)
{
	struct sockaddr_un sa;
	int fd, fl, saved;

	if (launch_sockaddr(dirfd, name, &sa) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Completes at once: QEMU's listening socket queues it. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    (fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Connect to each socket whose fd pointer is not NULL. */
static int launch_connect_all(int dirfd, int *qmp, int *serial, int *console)
{
	int *fds[] = { qmp, serial, console };

	for (size_t i = 0; i < 3; i++) {
		if (!fds[i])
			continue;
		*fds[i] = launch_connect(dirfd, launch_sockets[i]);
		if (*fds[i] < 0) {
			int saved = errno;

			while (i--)
				if (fds[i])
					launch_close(fds[i]);
			errno = saved;
			return -1;
		}
	}
	return 0;
}

int launch_reconnect(const char *run_dir, int *qmp, int *serial, int *console)
{
	int dirfd = open(run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC), rc, saved;

	if (dirfd < 0)
		return -1;
	rc = launch_connect_all(dirfd, qmp, serial, console);
	saved = errno;
	close(dirfd);
	errno = saved;
	return rc;
}

/* What a jailed child needs from us once it exists: its cgroup, and for
 * a user namespace its id maps. */
struct launch_child {
	const struct vm_run *run;
	const struct jail *jail;
};

static int launch_parent_setup(pid_t pid, void *arg)
{
	const struct launch_child *c = arg;

	if (c->run->has_cgroup && cgroup_attach(&c->run->cgroup, pid) < 0)
		return -1;
	return c->jail && c->jail->userns ? jail_map_ids(pid, c->jail) : 0;
}

static int launch_child_setup(void *arg)
{
	return jail_enter(arg);
}

/* Spawn argv jailed in j (NULL: not jailed) into proc. */
static int launch_spawn_env(struct vm_run *run, struct launch_proc *proc,
			    char **argv, char **envp, int exec_fd,
			    const int *keep, size_t nkeep, int log_fd,
			    const struct jail *j, bool host_net,
			    const struct privdrop *drop)
{
	struct launch_child child = { run, j };
	struct spawn_opts so = {
		.path = argv[0],
		.exec_fd = exec_fd,
		.argv = argv,
		.envp = envp,
		.keep_fds = keep,
		.keep_count = nkeep,
		.log_fd = log_fd,
		.drop = drop,
		.clone_flags = j ? jail_clone_flags(j, host_net) : 0,
		.parent_setup = launch_parent_setup,
		.parent_arg = &child,
		.child_setup = j ? launch_child_setup : NULL,
		.child_arg = (void *)j,
	};

	return spawn(&so, &proc->pid, &proc->pidfd);
}

static int launch_spawn(struct vm_run *run, struct launch_proc *proc,
			char **argv, const int *keep, size_t nkeep, int log_fd,
			const struct jail *j, bool host_net,
			const struct privdrop *drop)
{
	return launch_spawn_env(run, proc, argv, NULL, -1, keep, nkeep, log_fd,
				j, host_net, drop);
}

static void launch_jail_base(struct jail *j, rlim_t nofile)
{
	*j = (struct jail){ .tree_fd = -1, .nofile = nofile };
}

static int launch_fsd(const struct launch_req *q, struct vm_run *run,
		      int dirfd, size_t i, int *qemu_fd, char *err, size_t len)
{
	const struct vm_files *f = q->files;
	const struct vm_share *sh = &f->cfg->shares[i];
	struct virtiofsd_opts o = { .listen_fd = -1 };
	struct launch_proc *p = &run->fsd[i];
	struct jail j;
	char name[VMCONFIG_TAG_MAX + 16], path[64 + sizeof name];
	char source[32];
	char **argv = NULL;
	int rc = -1, keep[2];

	snprintf(p->label, sizeof p->label, "virtiofsd for share %s", sh->tag);
	snprintf(name, sizeof name, "fs-%s.sock", sh->tag);
	snprintf(path, sizeof path, "/proc/self/fd/%d/%s", dirfd, name);
	if (virtiofsd_sockets(path, &o.listen_fd, qemu_fd) < 0) {
		snprintf(err, len, "start failed: shared-dirs/%s: socket %s: %s",
			 sh->tag, name, strerror(errno));
		return -1;
	}
	launch_jail_base(&j, LAUNCH_VIRTIOFSD_NOFILE);
	if (q->drop) {
		/* Root in its user namespace is the owner on the host. */
		j.full_proc = true; /* its own sandbox mounts /proc again */
		j.userns = true;
		j.ns_uid = f->owner;
		j.ns_gid = f->group;
		j.ns_caps = LAUNCH_VIRTIOFSD_CAPS;
		j.tree_fd = jail_tree(f->share_fds[i]);
		if (j.tree_fd < 0) {
			snprintf(err, len, "start failed: shared-dirs/%s: %s",
				 sh->tag, strerror(errno));
			goto out;
		}
		o.source = JAIL_SHARE;
		o.sandbox = VIRTIOFSD_SANDBOX_NAMESPACE;
	} else {
		/* Not root: no jail; the fd, never the path, all the same. */
		snprintf(source, sizeof source, "/proc/self/fd/%d",
			 f->share_fds[i]);
		o.source = source;
		o.sandbox = VIRTIOFSD_SANDBOX_CHROOT;
	}
	if (virtiofsd_argv(&o, &argv) < 0) {
		snprintf(err, len, "start failed: shared-dirs/%s: virtiofsd: %s",
			 sh->tag, strerror(errno));
		goto out;
	}
	keep[0] = o.listen_fd;
	keep[1] = f->share_fds[i];
	if (launch_spawn(run, p, argv, keep, q->drop ? 1 : 2, q->fsd_log_fd,
			 q->drop ? &j : NULL, false, NULL) < 0) {
		snprintf(err, len, "start failed: shared-dirs/%s: virtiofsd: %s",
			 sh->tag, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	launch_close(&j.tree_fd);
	launch_close(&o.listen_fd);
	virtiofsd_argv_free(argv);
	return rc;
}

/* Unless the directory says host-loopback, nothing in the run's cgroup
 * (passt) may reach the host's loopback (loopfilter.h); a host where that
 * cannot be enforced does not run the VM. */
static int launch_loopfilter(const struct vm_run *run, char *err, size_t len)
{
	const char *dir = run->has_cgroup ? cgroup_v2_dir(&run->cgroup) : NULL;
	int fd, rc, saved;

	if (!dir) {
		snprintf(err, len, "start failed: uplink: the host's loopback cannot be kept from this VM here (no cgroup2 hierarchy for its filter); write \"%s\" in uplink to allow it",
			 VMCONFIG_UPLINK_HOST_LOOPBACK);
		errno = ENOTSUP;
		return -1;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd < 0 ? -1 : loopfilter_attach(fd);
	saved = errno;
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		snprintf(err, len, "start failed: uplink: loopback filter on %s: %s",
			 dir, strerror(saved));
	errno = saved;
	return rc;
}

static int launch_passt(const struct launch_req *q, struct vm_run *run,
			int *qemu_fd, char *err, size_t len)
{
	const struct vm_config *cfg = q->files->cfg;
	char fdarg[16];
	char *argv[] = {
		LAUNCH_PASST_PATH, "--foreground", "--stderr", "--quiet",
		"--fd", fdarg,
		"--address", LAUNCH_UPLINK_ADDR, "--netmask", LAUNCH_UPLINK_PREFIX,
		"--gateway", LAUNCH_UPLINK_GATEWAY,
		/* Without host-loopback the gateway is just an address: the
		 * host's loopback services are out of reach. */
		cfg->uplink_host_loopback ? NULL : "--no-map-gw",
		NULL,
	};
	struct jail j;
	int sv[2], rc;

	snprintf(run->passt.label, sizeof run->passt.label, "passt");
	if (!cfg->uplink_host_loopback && launch_loopfilter(run, err, len) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, len, "start failed: uplink: %s", strerror(errno));
		return -1;
	}
	snprintf(fdarg, sizeof fdarg, "%d", sv[1]);
	launch_jail_base(&j, LAUNCH_PASST_NOFILE);
	j.resolv_conf = true;
	/* The host's network: passt's sockets are the uplink. */
	rc = launch_spawn(run, &run->passt, argv, &sv[1], 1, q->qemu_log_fd,
			  q->drop ? &j : NULL, true, q->drop);
	close(sv[1]);
	if (rc < 0) {
		snprintf(err, len, "start failed: uplink: %s: %s",
			 LAUNCH_PASST_PATH, strerror(errno));
		close(sv[0]);
		return -1;
	}
	*qemu_fd = sv[0];
	return 0;
}

/* --- Wayland: the transport directory, vmhost-vsock, the host end --- */

/* Bytes and inodes of a run's transport tmpfs: two sockets and room. */
#define LAUNCH_TRANSPORT_SIZE "64k"
#define LAUNCH_TRANSPORT_INODES "16"

/* RUN_DIR/name into buf. */
static int launch_dir_path(const char *run_dir, const char *name, char *buf,
			   size_t len)
{
	if ((size_t)snprintf(buf, len, "%s/%s", run_dir, name) >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int launch_run_path(const struct vm_run *run, const char *name,
			   char *buf, size_t len)
{
	return launch_dir_path(run->run_dir, name, buf, len);
}

void launch_transport_remove(const char *run_dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if (!run_dir || launch_dir_path(run_dir, LAUNCH_TRANSPORT_DIR, path,
					sizeof path) < 0)
		return;
	if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && (d = opendir(path))) {
		/* Not a mount (no jails): only sockets of ours are in it. */
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(path);
}

/* A tmpfs of its own for the transport sockets, root's and the VM's
 * group's (0770): the helpers can write there, and nowhere on the host's
 * file systems, so a guest that took them over cannot fill the state
 * directory; the monitor, which keeps no CAP_DAC_OVERRIDE, can remove a
 * dead host end's socket. */
static int launch_transport_mount(int dirfd, const struct privdrop *drop)
{
	char gid[16];
	int fs, mnt, rc, saved;

	snprintf(gid, sizeof gid, "%u", (unsigned int)drop->gid);
	fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -1;
	if (fsconfig(fs, FSCONFIG_SET_STRING, "size", LAUNCH_TRANSPORT_SIZE, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "nr_inodes", LAUNCH_TRANSPORT_INODES, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0770", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "uid", "0", 0) < 0 ||
	    fsconfig(fs, FSCONFIG_SET_STRING, "gid", gid, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		saved = errno;
		close(fs);
		errno = saved;
		return -1;
	}
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
		      MOUNT_ATTR_NOEXEC);
	saved = errno;
	close(fs);
	if (mnt < 0) {
		errno = saved;
		return -1;
	}
	rc = move_mount(mnt, "", dirfd, LAUNCH_TRANSPORT_DIR,
			MOVE_MOUNT_F_EMPTY_PATH);
	saved = errno;
	close(mnt);
	errno = saved;
	return rc;
}

static int launch_transport(const struct launch_req *q, struct vm_run *run,
			    int dirfd)
{
	launch_transport_remove(run->run_dir); /* a crashed run's */
	if (mkdirat(dirfd, LAUNCH_TRANSPORT_DIR, 0700) < 0)
		return -1;
	return q->drop ? launch_transport_mount(dirfd, q->drop) : 0;
}

/* The transport directory as the helpers see it: their jail's path, or
 * (not jailed) the run dir's. */
static int launch_transport_base(const struct vm_run *run, bool jailed,
				 char *buf, size_t len)
{
	if (jailed) {
		snprintf(buf, len, "%s", LAUNCH_JAIL_TRANSPORT);
		return 0;
	}
	return launch_run_path(run, LAUNCH_TRANSPORT_DIR, buf, len);
}

/* A jail bind of the run's transport directory (a copy of its mount). */
static int launch_bind_transport(const struct vm_run *run, struct jail *j)
{
	char path[PATH_MAX];
	int fd, tree;

	if (launch_run_path(run, LAUNCH_TRANSPORT_DIR, path, sizeof path) < 0)
		return -1;
	fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	tree = jail_tree(fd);
	close(fd);
	if (tree < 0)
		return -1;
	j->binds[j->bind_count++] = (struct jail_bind){
		.tree_fd = tree, .at = LAUNCH_JAIL_TRANSPORT, .writable = true,
	};
	return 0;
}

static void launch_jail_close(struct jail *j)
{
	for (size_t i = 0; i < j->bind_count; i++)
		launch_close(&j->binds[i].tree_fd);
	j->bind_count = 0;
}

/* vmhost-vsock on one end of a socketpair, QEMU's vhost-user-vsock on
 * the other (*qemu_fd). */
static int launch_vsock(const struct launch_req *q, struct vm_run *run,
			int *qemu_fd, char *err, size_t len)
{
	const struct launch_wayland *wl = q->wayland;
	char fdarg[16], port[16], base[PATH_MAX + 8];
	char *argv[] = {
		LAUNCH_LABEL_VSOCK, "--fd", fdarg, "--base", base,
		"--port", port, "--name", (char *)q->files->cfg->name, NULL,
	};
	struct jail j;
	int sv[2] = { -1, -1 }, rc = -1;

	snprintf(run->vsock.label, sizeof run->vsock.label, LAUNCH_LABEL_VSOCK);
	launch_jail_base(&j, LAUNCH_VSOCK_NOFILE);
	if (launch_transport_base(run, q->drop, base, PATH_MAX) < 0 ||
	    (q->drop && launch_bind_transport(run, &j) < 0) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, len, "start failed: wayland: %s/%s: %s",
			 run->run_dir, LAUNCH_TRANSPORT_DIR, strerror(errno));
		goto out;
	}
	strcat(base, "/vsock");
	snprintf(fdarg, sizeof fdarg, "%d", sv[1]);
	snprintf(port, sizeof port, "%u", VMM_WAYLAND_VSOCK_PORT);
	if (launch_spawn_env(run, &run->vsock, argv, NULL, wl->backend_fd,
			     &sv[1], 1, wl->log_fd, q->drop ? &j : NULL, false,
			     q->drop) < 0) {
		snprintf(err, len, "start failed: wayland: %s: %s",
			 LAUNCH_LABEL_VSOCK, strerror(errno));
		goto out;
	}
	*qemu_fd = sv[0];
	sv[0] = -1;
	rc = 0;
out:
	launch_close(&sv[0]);
	launch_close(&sv[1]);
	launch_jail_close(&j);
	return rc;
}

int launch_host_end(struct vm_run *run, const struct privdrop *drop,
		    const struct launch_wayland *wl, char *err, size_t len)
{
	char sock[PATH_MAX + 16], stale[PATH_MAX + 16];
	char runtime[PATH_MAX + 32], display[PATH_MAX + 32];
	char *argv[] = {
		LAUNCH_WAYPIPE_PATH, "--no-gpu", "--threads",
		LAUNCH_WAYPIPE_THREADS, "--socket", sock, "client", NULL,
	};
	char *envp[] = { "PATH=/usr/bin", runtime, display, NULL };
	const char *compositor = drop ? LAUNCH_JAIL_COMPOSITOR : wl->display;
	const char *slash = strrchr(compositor, '/');
	struct jail j;
	int tree, rc = -1;

	snprintf(run->host_end.label, sizeof run->host_end.label,
		 LAUNCH_LABEL_HOST_END);
	launch_jail_base(&j, LAUNCH_HOST_END_NOFILE);
	if (launch_transport_base(run, drop, sock, PATH_MAX) < 0 ||
	    launch_transport_base(run, false, stale, PATH_MAX) < 0)
		goto fail_errno;
	snprintf(sock + strlen(sock), 16, "/vsock_%u", VMM_WAYLAND_VSOCK_PORT);
	snprintf(stale + strlen(stale), 16, "/vsock_%u", VMM_WAYLAND_VSOCK_PORT);
	/* waypipe finds the compositor as XDG_RUNTIME_DIR/WAYLAND_DISPLAY. */
	snprintf(runtime, sizeof runtime, "XDG_RUNTIME_DIR=%.*s",
		 (int)(slash - compositor), compositor);
	snprintf(display, sizeof display, "WAYLAND_DISPLAY=%s", slash + 1);
	if (drop) {
		/* The very socket the monitor checked, and nothing around it. */
		tree = jail_tree(wl->compositor_fd);
		if (tree < 0)
			goto fail_errno;
		j.binds[j.bind_count++] = (struct jail_bind){
			.tree_fd = tree, .at = LAUNCH_JAIL_COMPOSITOR,
			.file = true,
		};
		if (launch_bind_transport(run, &j) < 0)
			goto fail_errno;
	}
	/* A dead host end's socket is in the way of the new one's. */
	if (unlink(stale) < 0 && errno != ENOENT)
		goto fail_errno;
	if (launch_spawn_env(run, &run->host_end, argv, envp, -1, NULL, 0,
			     wl->log_fd, drop ? &j : NULL, false, drop) < 0)
		goto fail_errno;
	rc = 0;
	goto out;
fail_errno:
	snprintf(err, len, "wayland: %s: %s", LAUNCH_LABEL_HOST_END,
		 strerror(errno));
out:
	launch_jail_close(&j);
	return rc;
}

static int launch_qemu(const struct launch_req *q, struct vm_run *run,
		       const int *chardevs, const int *vfs, int uplink_fd,
		       int vsock_fd, char *err, size_t len)
{
	const struct vm_files *f = q->files;
	struct vmm_launch l = {
		.cfg = f->cfg,
		.qemu = q->qemu,
		.accel = q->accel,
		.qmp_fd = chardevs[0],
		.serial_fd = chardevs[1],
		.console_fd = chardevs[2],
		.disk_fds = f->disk_fds,
		.virtiofs_fds = vfs,
		.nics = q->nics,
		.nic_count = q->nic_count,
		.hotplug_ports = q->hotplug_ports,
		.tsc_khz = q->tsc_khz,
		.uplink_fd = uplink_fd,
		.vsock = vsock_fd >= 0,
		.vsock_fd = vsock_fd,
	};
	char **argv = NULL;
	int *keep = NULL, rc = -1;
	size_t nkeep = 0;
	struct jail j;

	snprintf(run->qemu.label, sizeof run->qemu.label, "QEMU");
	/* QEMU reopens /proc/self/fd/N as its own uid, which a root-only
	 * vmlinux would refuse; a sealed copy is readable and cannot change
	 * while it boots (common/sealcopy.h). */
	l.kernel_fd = sealcopy(f->kernel_fd, "vmlinux", LAUNCH_KERNEL_MAX);
	if (l.kernel_fd < 0) {
		snprintf(err, len, "start failed: vmlinux: copying it: %s",
			 strerror(errno));
		return -1;
	}
	if (vmm_argv(&l, &argv) < 0 || vmm_launch_fds(&l, &keep, &nkeep) < 0) {
		snprintf(err, len, "start failed: QEMU command line: %s",
			 strerror(errno));
		goto out;
	}
	launch_jail_base(&j, LAUNCH_QEMU_NOFILE);
	j.kvm = q->accel == VMM_ACCEL_KVM;
	if (launch_spawn(run, &run->qemu, argv, keep, nkeep, q->qemu_log_fd,
			 q->drop ? &j : NULL, false, q->drop) < 0) {
		snprintf(err, len, "start failed: %s: %s", argv[0],
			 strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(l.kernel_fd);
	vmm_argv_free(argv);
	free(keep);
	return rc;
}

/* The start trace's mark for phase, if the caller keeps one. */
static void launch_mark(const struct launch_req *q, enum start_phase phase)
{
	if (q->trace)
		start_trace_mark(q->trace, phase);
}

static void launch_run_init(struct vm_run *run)
{
	*run = (struct vm_run){
		.qemu = { .pidfd = -1 }, .passt = { .pidfd = -1 },
		.vsock = { .pidfd = -1 }, .host_end = { .pidfd = -1 },
		.qmp_fd = -1, .serial_fd = -1, .console_fd = -1,
	};
}

struct launch_proc *launch_proc_at(struct vm_run *run, size_t i)
{
	struct launch_proc *fixed[] = {
		&run->qemu, &run->passt, &run->vsock, &run->host_end,
	};
	size_t n = sizeof fixed / sizeof *fixed;

	if (i < n)
		return fixed[i];
	return i - n < run->fsd_count ? &run->fsd[i - n] : NULL;
}

struct launch_proc *launch_proc_slot(struct vm_run *run, const char *label)
{
	if (!strcmp(label, "passt"))
		return &run->passt;
	if (!strcmp(label, LAUNCH_LABEL_VSOCK))
		return &run->vsock;
	if (!strcmp(label, LAUNCH_LABEL_HOST_END))
		return &run->host_end;
	return &run->fsd[run->fsd_count++];
}

void launch_kill_wait(struct vm_run *run)
{
	struct launch_proc *p;

	launch_kill(run);
	for (size_t i = 0; (p = launch_proc_at(run, i)); i++) {
		if (p->pid <= 0)
			continue;
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
			;
		p->pid = 0;
	}
}

int launch_start(const struct launch_req *q, struct vm_run *run,
		 char *err, size_t len)
{
	const struct vm_config *cfg = q->files->cfg;
	int dirfd, chardevs[3] = { -1, -1, -1 }, uplink = -1, vsock = -1, saved;
	int *vfs = NULL;
	char why[256];

	launch_run_init(run);
	run->run_dir = strdup(q->run_dir);
	run->fsd = calloc(cfg->share_count + 1, sizeof *run->fsd);
	vfs = calloc(cfg->share_count + 1, sizeof *vfs);
	if (!run->run_dir || !run->fsd || !vfs) {
		snprintf(err, len, "start failed: %s", strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < cfg->share_count; i++) {
		run->fsd[i].pidfd = -1;
		vfs[i] = -1;
	}
	dirfd = open(q->run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		snprintf(err, len, "start failed: %s: %s", q->run_dir,
			 strerror(errno));
		goto fail;
	}
	if (q->cgroups) {
		if (cgroup_create(q->cgroups, cfg->name, launch_memory_max(cfg),
				  launch_pids_max(cfg), &run->cgroup) < 0) {
			snprintf(err, len, "start failed: cgroup %s/%s: %s",
				 q->cgroups->base[0], cfg->name,
				 errno == EBUSY ?
				 "processes of an earlier run are still in it" :
				 strerror(errno));
			goto fail_dir;
		}
		run->has_cgroup = true;
	}
	for (size_t i = 0; i < 3; i++) {
		chardevs[i] = launch_listen(dirfd, launch_sockets[i]);
		if (chardevs[i] < 0) {
			snprintf(err, len, "start failed: %s/%s: %s", q->run_dir,
				 launch_sockets[i], strerror(errno));
			goto fail_dir;
		}
	}
	launch_mark(q, START_FILES_OPENED);
	for (size_t i = 0; i < cfg->share_count; i++) {
		if (launch_fsd(q, run, dirfd, i, &vfs[i], err, len) < 0)
			goto fail_dir;
		run->fsd_count = i + 1;
	}
	if (cfg->uplink && launch_passt(q, run, &uplink, err, len) < 0)
		goto fail_dir;
	if (q->wayland) {
		if (launch_transport(q, run, dirfd) < 0) {
			snprintf(err, len, "start failed: wayland: %s/%s: %s",
				 q->run_dir, LAUNCH_TRANSPORT_DIR, strerror(errno));
			goto fail_dir;
		}
		if (launch_vsock(q, run, &vsock, err, len) < 0)
			goto fail_dir;
		/* Listening before the guest boots: its first application
		 * finds it. */
		if (launch_host_end(run, q->drop, q->wayland, why,
				    sizeof why) < 0) {
			snprintf(err, len, "start failed: %s", why);
			goto fail_dir;
		}
	}
	launch_mark(q, START_HELPERS_SPAWNED);
	if (launch_qemu(q, run, chardevs, vfs, uplink, vsock, err, len) < 0)
		goto fail_dir;
	launch_mark(q, START_QEMU_EXEC);
	if (launch_connect_all(dirfd, &run->qmp_fd, &run->serial_fd,
			       &run->console_fd) < 0) {
		snprintf(err, len, "start failed: connecting to QEMU: %s",
			 strerror(errno));
		goto fail_dir;
	}
	close(dirfd);
	/* QEMU holds its ends now; one that dies takes them along. */
	for (size_t i = 0; i < 3; i++)
		launch_close(&chardevs[i]);
	for (size_t i = 0; i < cfg->share_count; i++)
		launch_close(&vfs[i]);
	launch_close(&uplink);
	launch_close(&vsock);
	free(vfs);
	return 0;

fail_dir:
	saved = errno;
	close(dirfd);
	errno = saved;
fail:
	saved = errno;
	for (size_t i = 0; i < 3; i++)
		launch_close(&chardevs[i]);
	for (size_t i = 0; vfs && i < cfg->share_count; i++)
		launch_close(&vfs[i]);
	launch_close(&uplink);
	launch_close(&vsock);
	free(vfs);
	launch_kill_wait(run);
	launch_release(run);
	errno = saved;
	return -1;
}

static void launch_proc_kill(struct launch_proc *p)
{
	if (p->pid > 0 && p->pidfd >= 0)
		syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
}

void launch_kill(struct vm_run *run)
{
	struct launch_proc *p;

	if (run->has_cgroup)
		cgroup_kill(&run->cgroup);
	for (size_t i = 0; (p = launch_proc_at(run, i)); i++)
		launch_proc_kill(p);
}

int launch_release(struct vm_run *run)
{
	struct launch_proc *p;
	int rc = 0, dirfd;

	launch_close(&run->qmp_fd);
	launch_close(&run->serial_fd);
	launch_close(&run->console_fd);
	for (size_t i = 0; (p = launch_proc_at(run, i)); i++)
		launch_close(&p->pidfd);
	free(run->fsd);
	run->fsd = NULL;
	run->fsd_count = 0;
	if (run->has_cgroup) {
		/* Processes we never knew (virtiofsd's worker, a thread's
		 * child) die here too. */
		if (cgroup_destroy(&run->cgroup, 2000) < 0)
			rc = -1;
		else
			run->has_cgroup = false;
	}
	if (run->run_dir &&
	    (dirfd = open(run->run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		for (size_t i = 0; i < 3; i++)
			unlinkat(dirfd, launch_sockets[i], 0);
		close(dirfd);
	}
	launch_transport_remove(run->run_dir);
	free(run->run_dir);
	run->run_dir = NULL;
	return rc;
}
