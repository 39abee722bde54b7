/* The messages between vmhostd's two processes (docs/design.md).
 *
 * The monitor is root and does only what needs privilege: it gathers a VM
 * directory with the owner's identity, creates taps and bridges, launches
 * QEMU and its helpers into their jails and kills them, and holds every fd
 * of a running VM.  The engine runs as its own uid with no capabilities
 * under a seccomp allow-list, and does everything else: the control
 * socket, QMP sessions, serial logs, consoles, the state machine.
 *
 * They talk over one SOCK_SEQPACKET socketpair: one message per packet, a
 * header, a payload, and at most PS_FDS_MAX fds as SCM_RIGHTS.
 *
 *  - engine -> monitor: small fixed structs (below).  The monitor treats
 *    them as hostile: ps_check_request() validates every field before
 *    anything acts on it (fuzz/fuzz_privsep.c).
 *  - monitor -> engine: a JSON object (the engine parses it like any other
 *    untrusted input; it is the monitor's, but quotes VM directories).
 *
 * Requests that the monitor answers at once (LIST, PLUG) are synchronous
 * for the engine; LOAD and LAUNCH are answered later, and the monitor
 * reports every exit of a VM's process on its own, and every change of
 * the config root's VM names (PS_NAMES): LIST asks for a whole list only
 * when the engine has none, SYNC for the changes not yet sent, when the
 * engine's own watch says there were some.
 */
#ifndef VMHOST_PRIVSEP_H
#define VMHOST_PRIVSEP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PS_PAYLOAD_MAX (192 * 1024)
#define PS_FDS_MAX 8
#define PS_NAME_SIZE 65     /* VMCONFIG_NAME_MAX + 1 */
#define PS_REASON_SIZE 512

enum ps_type {
	/* engine -> monitor */
	PS_HELLO = 1,   /* no payload: the engine reads; adopt what runs */
	PS_LIST,        /* no payload -> a whole list of PS_NAMES */
	PS_LOAD,        /* struct ps_load -> PS_LOADED, later */
	PS_RELEASE,     /* struct ps_name: drop the files held for a start */
	PS_LAUNCH,      /* struct ps_name -> PS_LAUNCHED, later */
	PS_KILL,        /* struct ps_name: kill every process of the VM */
	PS_PLUG,        /* struct ps_pair -> PS_TAP: the provider's new tap */
	PS_UNPLUGGED,   /* struct ps_pair: the provider's tap may go */
	PS_NOTE,        /* struct ps_note: a VM's state, kept for a restart */
	PS_LINKNOTE,    /* struct ps_linknote: a link's provider end */
	PS_BYE,         /* no payload: shutdown complete, the monitor exits */
	PS_LOOKUP,      /* struct ps_name -> PS_FOUND: is there such a VM
			 * directory? */
	PS_SYNC,        /* no payload -> PS_NAMES of every change the
			 * monitor's watch has seen by now, then
			 * {"synced": true} */
	PS_REQUEST_LAST = PS_SYNC,

	/* monitor -> engine, JSON payloads */
	PS_NAMES = 64,  /* the config root's VM names for the engine's copy
			 * (monitor/namepush.h, engine/names.h), unasked and
			 * in parts: {"reset": bool, "add": [...], "del":
			 * [...], "more": bool, "watching": bool} or
			 * {"synced": true}.  reset: empty the copy first
			 * (a whole list begins), with one fd: the engine's
			 * own inotify watch of the root, which it only
			 * drains (anything there: ask PS_SYNC before
			 * answering from the copy); more: the whole list
			 * goes on in the next part; watching false: changes
			 * will not follow, ask again next time */
	PS_LOADED,      /* {"name", "ok", "config", "links" | "error",
			 *  "diagnostics"}; links: [{"provider", "id"}] as
			 *  the link table has them */
	PS_LAUNCHED,    /* {"name", "ok", "error" | "pid", "uid", "accel",
			 *  "links": [...], "hotplug_ports", "start_trace":
			 *  {phase: CLOCK_MONOTONIC ns} (common/trace.h)}
			 *  + fds: QMP, serial, console, qemu.log pipe,
			 *  helpers' pipe */
	PS_EXITED,      /* {"name", "what", "code", "status", "main"} */
	PS_GONE,        /* {"name"}: nothing of the VM's run is left */
	PS_TAP,         /* {"ok", "error"} + fd: the provider's tap */
	PS_ADOPT,       /* a running VM handed to a new engine: as
			 * PS_LAUNCHED plus "config", "state", "since",
			 * "reason", "links"; fds as PS_LAUNCHED */
	PS_READY,       /* {}: adoption done, serve requests */
	PS_SHUTDOWN,    /* {"force": bool}: stop every VM, then PS_BYE */
	PS_FOUND,       /* {"exists": bool} */
};

struct ps_hdr {
	uint16_t type;
	uint16_t nfds;  /* set by the receiver: fds that came along */
	uint32_t seq;   /* a request's number; its answer echoes it */
};

struct ps_name {
	char name[PS_NAME_SIZE];
};

struct ps_load {
	char name[PS_NAME_SIZE];
	uint8_t keep;   /* 1: hold the opened files for PS_LAUNCH */
};

struct ps_pair {
	char client[PS_NAME_SIZE];
	char provider[PS_NAME_SIZE];
};

/* The engine's view of a VM, which a restarted engine gets back. */
struct ps_note {
	char name[PS_NAME_SIZE];
	uint8_t state;      /* enum vm_state of the engine (vm.h) */
	int64_t since;
	char reason[PS_REASON_SIZE];
};

enum ps_plug { PS_PLUG_NONE, PS_PLUG_ADDING, PS_PLUG_UP, PS_PLUG_REMOVING };

struct ps_linknote {
	struct ps_pair pair;
	uint8_t plug;       /* enum ps_plug */
	int8_t port;        /* hot-plug port in the provider, -1: none */
	uint32_t gen;       /* plug number: QMP ids link-ID-GEN */
};

/* Send one message; fds (nfds <= PS_FDS_MAX) go along and stay the
 * caller's.  -1 with errno (EAGAIN on a full non-blocking socket,
 * EMSGSIZE past PS_PAYLOAD_MAX). */
int ps_send(int sock, uint16_t type, uint32_t seq, const void *payload,
	    size_t len, const int *fds, size_t nfds);

/* Receive one message: header, payload (at most cap bytes, NUL added after
 * it, so buf holds cap + 1), fds (up to PS_FDS_MAX, O_CLOEXEC).  Returns
 * the payload length, 0 with hdr->type 0 at end of stream, or -1 with
 * errno (EAGAIN, EBADMSG for a short or truncated message: its fds are
 * closed). */
ssize_t ps_recv(int sock, struct ps_hdr *hdr, char *buf, size_t cap,
		int *fds);

/* Validate an engine -> monitor message: known type, exact payload size,
 * every name a valid VM name, NUL-terminated and zero-padded, enums in
 * range, no fds.  0, or -1 with errno EBADMSG and why set to a static
 * description. */
int ps_check_request(const struct ps_hdr *hdr, const void *payload,
		     size_t len, const char **why);

/* Copy a name into a fixed field, zero-padded; -1 EINVAL if too long. */
int ps_set_name(char dst[PS_NAME_SIZE], const char *name);

#endif
