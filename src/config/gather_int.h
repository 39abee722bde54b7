/* The gatherer's insides, shared by its three files: gather.c (the API,
 * roots, owners, children, the provider graph), gather_child.c (what runs
 * as the VM directory's owner) and gather_recv.c (the privileged side's
 * reading of what a child sends).  Not for use outside src/config/ but by
 * the unit tests.
 *
 * Child -> parent, over a SOCK_STREAM socketpair, one frame per VM:
 *   u32 length, then: u32 GATHER_MAGIC, str name, u8 has_config,
 *   [config, u64 mask], diags               (vmwire.h encodings)
 * When the loader accepted the directory the config comes with the fds
 * that opened: bit k of mask says slot k (kernel, then the disks, then the
 * shares) is there, and those fds go in slot order as SCM_RIGHTS on the
 * frame's first bytes.  The parent checks what came even when the child
 * found problems, so that every problem is reported at once.  The parent
 * answers each frame but the last with one byte, and the child never has
 * more than GATHER_WINDOW frames unanswered: fds in flight stay few.
 */
#ifndef VMHOST_GATHER_INT_H
#define VMHOST_GATHER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/gather.h"
#include "config/vmwire.h"

#define GATHER_MAGIC 0x31544147u  /* "GAT1" */
#define GATHER_WINDOW 16          /* frames the child may send unanswered */
#define GATHER_FDS_MAX (1 + VMCONFIG_DISKS_MAX + VMCONFIG_SHARES_MAX)
#define GATHER_FRAME_MAX (VMWIRE_MAX + 4)

/* What a file is for: which types it may be. */
enum gather_use { GATHER_KERNEL, GATHER_DISK, GATHER_SHARE };

/* The parent's own view of the roots, opened as the caller. */
struct gather_roots {
	int rootfd;         /* the config root (the child uses it too) */
	char *root;         /* its resolved path */
	int datafd;         /* the data root, O_PATH; -1: data_err */
	char *data;         /* its resolved path (as given if it has none) */
	int data_err;
	int statefd;        /* vmhostd's state dir, O_PATH; -1: none */
	char *state;
};

/* The identity a child takes. */
struct gather_owner {
	uid_t dir_uid;      /* the VM directory's owner, as found */
	bool switch_ids;    /* root, gathering for someone else */
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t group_count;
};

/* One child: a run of VMs of one owner. */
struct gather_run {
	const struct gather_policy *policy;
	struct gather_roots roots;
	struct gather_owner owner;
	bool copy_kernel;
	bool keep_fds;        /* false: check, then close (vm check) */
	char **names;
	size_t count;
	size_t next;          /* the frame expected next is names[next] */
	unsigned char *buf;   /* bytes received, not yet a whole frame */
	size_t len;
	int fds[GATHER_WINDOW * GATHER_FDS_MAX]; /* received, not yet used */
	size_t nfds;
	bool eof;
	pid_t pid;
	int pidfd;
	int sock;
};

/* One VM's outcome in the parent. */
struct gather_item {
	struct vm_files files;
	struct diags diags;
	bool done;
	bool valid;
};

struct gather_stat {
	mode_t mode;
	dev_t rdev;
	dev_t dev;
	ino_t ino;
	off_t size;
};

/* gather.c: the rules both sides apply, and the parent's set-up. */
void gather_close(int *fd);
void gather_fail_diag(struct diags *d, const char *name, int err,
		      const char *what);
/* Where the magic link of fd points, escaped for a message; NULL: ENOMEM. */
char *gather_fd_path(int fd);
/* statx without asking the filesystem again: type, ids and size of an open
 * file are what they are (a FUSE server cannot stall us here). */
int gather_statx(int fd, struct gather_stat *st);
/* Whether the file open at fd, of type st, may serve as use; if not, say
 * why on rel.
 * One rule for the child (which skips such a file before opening it) and
 * the parent (which refuses an fd the child should not have sent). */
bool gather_type_ok(const struct gather_policy *p, enum gather_use use,
		    const struct gather_stat *st, const char *name,
		    const char *rel, int fd, struct diags *d);
unsigned int gather_timeout(const struct gather_policy *p);
/* The roots as the caller sees them; a problem is reported on name. */
int gather_roots_open(const struct gather_policy *p, const char *name,
		      struct gather_roots *r, struct diags *d);
void gather_roots_close(struct gather_roots *r);
struct gather_run *gather_run_new(const struct gather_policy *p);
int gather_run_add(struct gather_run *run, const char *name);
void gather_run_free(struct gather_run *run);

/* gather_child.c: one frame (o's bytes, with their length in front, and
 * nfds fds on its first bytes), blocking; -1 when the parent is gone. */
int gather_send(int sock, const struct vmwire_out *o, const int *fds,
		size_t nfds);
/* gather_child.c: the child's whole life (run's roots and owner set, sock
 * its end of the socketpair). */
__attribute__((noreturn)) void gather_child(const struct gather_run *run,
					    int sock);

/* gather_recv.c: read what run->sock has and handle every whole frame,
 * items[k] getting names[k]'s verdict.  1 when every frame is in (the
 * child is then reaped), 0 to wait for more, -1 with errno (EBADMSG: the
 * child broke the protocol; EPIPE: it ended early). */
int gather_run_step(struct gather_run *run, struct gather_item *items);
/* Kill the child (a no-op once it exited) and reap it. */
void gather_run_reap(struct gather_run *run);

#endif
