/* Starting, watching and serving the engine.  See enginep.h. */
#include "monitor/enginep.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/privdrop.h"
#include "monitor/channel.h"
#include "monitor/mvm.h"
#include "monitor/namepush.h"
#include "monitor/netlinks.h"
#include "monitor/record.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* An engine that dies this soon after its start crashed at start-up:
 * wait before the next try, doubling up to ENGINE_BACKOFF_MAX_MS. */
#define ENGINE_STABLE_S 10
#define ENGINE_BACKOFF_MAX_MS 30000

extern char **environ;

static void enginep_channel(struct loop_source *src, uint32_t events);
static void enginep_exited(struct loop_source *src, uint32_t events);

/* --- the jail --- */

static int enginep_mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(path, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static int enginep_bind(const char *root, const char *src, bool dir,
			unsigned long flags)
{
	char *at;
	int r, fd;

	if (asprintf(&at, "%s%s", root, src) < 0)
		return -1;
	if (dir) {
		r = enginep_mkdirs(at);
	} else {
		char *slash = strrchr(at, '/');

		*slash = '\0';
		r = enginep_mkdirs(at);
		*slash = '/';
		fd = r < 0 ? -1 : open(at, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		r = fd < 0 ? -1 : close(fd);
	}
	if (r == 0)
		r = mount(src, at, NULL, MS_BIND | MS_REC, NULL);
	if (r == 0 && (flags & MS_RDONLY))
		r = mount(NULL, at, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
			  MS_NOSUID | MS_NODEV, NULL);
	free(at);
	return r;
}

/* In the forked child, as root: a mount namespace whose root is an empty
 * tmpfs holding /usr (read-only: the binary's libraries), /dev/null,
 * /dev/log (syslog), a /proc that shows only its own processes, and
 * STATE/vms at its own path; no network, no System V IPC. */
static int enginep_jail(struct monitor *m)
{
	static const char *const links[][2] = {
		{ "usr/bin", "bin" }, { "usr/lib", "lib" },
		{ "usr/lib64", "lib64" }, { "usr/sbin", "sbin" },
	};
	char root[] = "/tmp/vmhostd-engine-XXXXXX", *p;
	struct stat st;

	if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    !mkdtemp(root) ||
	    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m") < 0)
		return -1;
	/* The directory itself lives in the host's /tmp only until the
	 * namespace's root moves onto the tmpfs mounted on it. */
	if (enginep_bind(root, "/usr", true, MS_RDONLY) < 0 ||
	    enginep_bind(root, "/dev/null", false, 0) < 0)
		return -1;
	if (stat("/dev/log", &st) == 0 && S_ISSOCK(st.st_mode) &&
	    enginep_bind(root, "/dev/log", false, 0) < 0)
		return -1;
	if (asprintf(&p, "%s/vms", m->state_dir) < 0 ||
	    enginep_bind(root, p, true, MS_NOSUID | MS_NODEV) < 0)
		return -1;
	free(p);
	for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
		if (asprintf(&p, "%s/%s", root, links[i][1]) < 0 ||
		    symlink(links[i][0], p) < 0)
			return -1;
		free(p);
	}
	if (asprintf(&p, "%s/proc", root) < 0 || mkdir(p, 0555) < 0 ||
	    mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "hidepid=2") < 0)
		return -1;
	free(p);
	if (asprintf(&p, "%s/.old", root) < 0 || mkdir(p, 0700) < 0 ||
	    syscall(SYS_pivot_root, root, p) < 0 || chdir("/") < 0 ||
	    umount2("/.old", MNT_DETACH) < 0 || rmdir("/.old") < 0)
		return -1;
	free(p);
	rmdir(root); /* in the host's /tmp, out of reach now: ignore */
	return mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY |
		     MS_NOSUID | MS_NODEV, NULL);
}

static void enginep_child(struct monitor *m, int chan, const char *const *argv,
			  pid_t monitor)
{
	struct privdrop drop = { .uid = m->engine_uid, .gid = m->engine_uid };
	int nul, hi_chan, hi_ctl, hi_exe;

	/* Above 5 first, so that no dup2 closes another's source.  fd 5 is
	 * the binary, exec'd (close-on-exec) once the jail is up. */
	hi_chan = fcntl(chan, F_DUPFD, 10);
	hi_ctl = fcntl(m->control_fd, F_DUPFD, 10);
	hi_exe = fcntl(m->exe_fd, F_DUPFD, 10);
	nul = open("/dev/null", O_RDONLY);
	if (hi_chan < 0 || hi_ctl < 0 || hi_exe < 0 || nul < 0 ||
	    dup2(nul, 0) < 0 || dup2(hi_chan, 3) < 0 || dup2(hi_ctl, 4) < 0 ||
	    dup3(hi_exe, 5, O_CLOEXEC) < 0)
		_exit(126);
	if (syscall(SYS_close_range, 6u, ~0u, 0u) < 0)
		_exit(126);
	if (geteuid() == 0) {
		if (enginep_jail(m) < 0) {
			daemon_log("engine jail: %s", strerror(errno));
			_exit(126);
		}
		if (privdrop_apply(&drop) < 0) {
			daemon_log("engine privileges: %s", strerror(errno));
			_exit(126);
		}
	} else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		_exit(126);
	}
	/* After the uid change, which clears it: an engine never outlives
	 * its monitor (a new monitor starts its own). */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != monitor)
		_exit(126);
	syscall(SYS_execveat, 5, "", argv, environ, AT_EMPTY_PATH);
	daemon_log("engine exec: %s", strerror(errno));
	_exit(127);
}

int enginep_start(struct monitor *m)
{
	char uid[24];
	const char *argv[24];
	int sv[2], pidfd, n = 0;
	pid_t pid, self = getpid();

	snprintf(uid, sizeof uid, "%u", (unsigned int)getuid());
	argv[n++] = "vmhostd: engine";
	argv[n++] = "--engine";
	argv[n++] = "--state-dir";
	argv[n++] = m->state_dir;
	argv[n++] = "--config-root";
	argv[n++] = m->roots.config_root;
	argv[n++] = "--accel";
	argv[n++] = vmm_accel_name(m->accel);
	argv[n++] = "--accel-why";
	argv[n++] = m->accel_why;
	argv[n++] = "--link-prefix";
	argv[n++] = m->link_prefix;
	argv[n++] = "--client-uid";
	argv[n++] = uid;
	if (m->use_syslog)
		argv[n++] = "--syslog";
	/* Said of a VM with wayland that does not run; a run has its own
	 * notes (monitor/wayland.h). */
	if (!m->wayland_display) {
		argv[n++] = "--wayland-why";
		argv[n++] = "wayland: vmhostd has no compositor (it runs without --wayland-display); the VM runs without Wayland";
	}
	argv[n] = NULL;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0)
		enginep_child(m, sv[1], argv, self);
	close(sv[1]);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 || fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(sv[0]);
		if (pidfd >= 0)
			close(pidfd);
		return -1;
	}
	m->engine_pid = pid;
	m->engine_started = time(NULL);
	m->engine = (struct loop_source){ sv[0], enginep_channel, m };
	m->engine_exit = (struct loop_source){ pidfd, enginep_exited, m };
	m->engine_ready = false;
	if (loop_add(&m->loop, &m->engine, EPOLLIN) < 0 ||
	    loop_add(&m->loop, &m->engine_exit, EPOLLIN) < 0)
		return -1;
	daemon_log("engine started: pid %ld, uid %u", (long)pid,
		   geteuid() == 0 ? (unsigned int)m->engine_uid :
		   (unsigned int)getuid());
	return 0;
}

/* --- the engine's death, and its restart --- */

static void enginep_close(struct monitor *m)
{
	namepush_engine_gone(m);
	if (m->engine.fd >= 0) {
		loop_del(&m->loop, &m->engine);
		close(m->engine.fd);
	}
	m->engine.fd = -1;
	if (m->engine_exit.fd >= 0) {
		loop_del(&m->loop, &m->engine_exit);
		close(m->engine_exit.fd);
	}
	m->engine_exit.fd = -1;
}

void enginep_stop(struct monitor *m)
{
	if (m->engine_pid > 0) {
		kill(m->engine_pid, SIGKILL);
		waitpid(m->engine_pid, NULL, 0);
	}
	m->engine_pid = 0;
	enginep_close(m);
}

static void enginep_restart(struct loop_source *src, uint32_t events)
{
	struct monitor *m = src->arg;

	loop_timer_ack(src->fd);
	if (enginep_start(m) < 0) {
		daemon_log("engine restart: %s; trying again", strerror(errno));
		enginep_close(m);
		loop_timer_arm(m->restart.fd, 1000);
	}
}

static void enginep_exited(struct loop_source *src, uint32_t events)
{
	struct monitor *m = src->arg;
	unsigned long delay = 0;
	siginfo_t si;

	memset(&si, 0, sizeof si);
	if (waitid(P_PID, m->engine_pid, &si, WEXITED | WNOHANG) < 0 ||
	    si.si_pid == 0)
		return;
	enginep_close(m);
	m->engine_pid = 0;
	if (m->engine_bye) {
		daemon_log("engine exited after shutting every VM down");
		monitor_quit_if_done(m);
		return;
	}
	if (si.si_code == CLD_EXITED)
		daemon_log("engine exited with status %d; starting a new one",
			   si.si_status);
	else
		daemon_log("engine killed by signal %d%s; starting a new one",
			   si.si_status,
			   si.si_status == SIGSYS ? " (a system call outside its seccomp allow-list)" : "");
	if (time(NULL) - m->engine_started < ENGINE_STABLE_S) {
		m->engine_crashes++;
		delay = 250ul << (m->engine_crashes < 8 ? m->engine_crashes : 8);
		if (delay > ENGINE_BACKOFF_MAX_MS)
			delay = ENGINE_BACKOFF_MAX_MS;
	} else {
		m->engine_crashes = 0;
	}
	if (m->restart.fd < 0) {
		m->restart = (struct loop_source){ loop_timer_new(),
						   enginep_restart, m };
		if (m->restart.fd < 0 ||
		    loop_add(&m->loop, &m->restart, EPOLLIN) < 0) {
			daemon_log("engine restart timer: %s", strerror(errno));
			return;
		}
	}
	loop_timer_arm(m->restart.fd, delay ? delay : 1);
}

/* --- requests --- */

static void enginep_plug(struct monitor *m, uint32_t seq,
			 const struct ps_pair *p)
{
	char err[256];
	int fd = netlinks_plug(m, p->client, p->provider, err, sizeof err);

	if (fd < 0) {
		engine_send(m, PS_TAP, seq, json_pack("{s:b,s:s}", "ok", 0,
						       "error", err), NULL, 0);
		return;
	}
	engine_send(m, PS_TAP, seq, json_pack("{s:b}", "ok", 1), &fd, 1);
	close(fd);
}

static void enginep_bad(struct monitor *m, const char *why)
{
	daemon_log("engine sent a bad message (%s): killing it", why);
	if (m->engine_pid > 0)
		kill(m->engine_pid, SIGKILL);
}

void enginep_request(struct monitor *m, const struct ps_hdr *hdr,
		     const void *payload, size_t len)
{
	const struct ps_load *load = payload;
	const struct ps_name *n = payload;
	const struct ps_pair *pair = payload;
	const struct ps_linknote *ln = payload;
	const char *why;
	struct mvm *vm;

	if (ps_check_request(hdr, payload, len, &why) < 0) {
		enginep_bad(m, why);
		return;
	}
	switch (hdr->type) {
	case PS_HELLO:
		m->engine_ready = true;
		mvm_adopt_all(m);
		engine_send(m, PS_READY, hdr->seq, NULL, NULL, 0);
		namepush_whole(m);
		if (m->shutting_down)
			enginep_shutdown(m, m->force);
		break;
	case PS_LIST:
		namepush_whole(m);
		break;
	case PS_SYNC:
		namepush_sync(m);
		break;
	case PS_LOOKUP:
		engine_send(m, PS_FOUND, hdr->seq, json_pack("{s:b}", "exists",
			mvm_dir_exists(m, n->name)), NULL, 0);
		break;
	case PS_LOAD:
		mvm_load(m, hdr->seq, load->name, load->keep);
		break;
	case PS_RELEASE:
		mvm_release(m, n->name);
		break;
	case PS_LAUNCH:
		mvm_launch(m, hdr->seq, n->name);
		break;
	case PS_KILL:
		mvm_kill(m, n->name);
		break;
	case PS_PLUG:
		enginep_plug(m, hdr->seq, pair);
		break;
	case PS_UNPLUGGED:
		netlinks_unplugged(m, pair->client, pair->provider);
		break;
	case PS_NOTE:
		mvm_note(m, payload);
		break;
	case PS_LINKNOTE:
		netlinks_note(m, ln);
		if ((vm = mvm_find(m, ln->pair.provider, false)) && vm->launched)
			record_write(m, vm);
		break;
	case PS_BYE:
		m->engine_bye = true;
		monitor_quit_if_done(m);
		break;
	}
}

static void enginep_channel(struct loop_source *src, uint32_t events)
{
	static char buf[PS_PAYLOAD_MAX + 1];
	struct monitor *m = src->arg;
	int fds[PS_FDS_MAX];
	struct ps_hdr hdr;
	ssize_t n;

	if (events & EPOLLOUT)
		namepush_writable(m);
	/* A bounded number per wake-up: the engine cannot starve the rest. */
	for (int i = 0; i < 64 && m->engine.fd >= 0; i++) {
		n = ps_recv(m->engine.fd, &hdr, buf, PS_PAYLOAD_MAX, fds);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			enginep_bad(m, strerror(errno));
			return;
		}
		if (n == 0 && hdr.type == 0) {
			/* It is going; its pidfd says how. */
			loop_del(&m->loop, &m->engine);
			close(m->engine.fd);
			m->engine.fd = -1;
			return;
		}
		for (int k = 0; k < hdr.nfds; k++)
			close(fds[k]);
		enginep_request(m, &hdr, buf, (size_t)n);
	}
}

void enginep_shutdown(struct monitor *m, bool force)
{
	m->shutting_down = true;
	m->force = m->force || force;
	if (m->engine.fd >= 0 && m->engine_ready)
		engine_send(m, PS_SHUTDOWN, 0, json_pack("{s:b}", "force",
							  m->force), NULL, 0);
}
