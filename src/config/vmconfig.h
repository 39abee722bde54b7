/* The VM directory loader: turns CONFIG_ROOT/NAME/ into a validated
 * struct vm_config, collecting every problem found as a diagnostic.
 *
 * No global state.  Nothing is opened in a way that can block (FIFOs,
 * devices) or follow a link where none is allowed.  The result names
 * files by path; a start opens them through the gatherer (gather.h), as
 * the directory's owner, and uses only those fds (docs/vm-directory.md,
 * "Time of check and use").
 */
#ifndef VMHOST_VMCONFIG_H
#define VMHOST_VMCONFIG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VMCONFIG_NAME_MAX 64
#define VMCONFIG_TAG_MAX 36 /* virtio-fs tag limit */
#define VMCONFIG_DISKS_MAX 16 /* rootfs.ext4 and blk images together */
#define VMCONFIG_SHARES_MAX 16 /* each a PCI device and a virtiofsd */
#define VMCONFIG_PROVIDERS_MAX 16 /* each a NIC in a PCI slot */
#define VMCONFIG_DEFAULT_MEMORY (1ull << 30)
#define VMCONFIG_DEFAULT_CPUS 1u
#define VMCONFIG_DEFAULT_CONFIG_ROOT "/ext/svc/data"
/* vmhost's own extensions (see docs/vm-directory.md). */
#define VMCONFIG_MEMORY_MIN (16ull << 20)
#define VMCONFIG_MEMORY_MAX (256ull << 30)
#define VMCONFIG_CPUS_MAX 64u
#define VMCONFIG_SETTING_MAX 4096 /* bytes in memory, cpus, cmdline */
#define VMCONFIG_CMDLINE_ROOTFS "console=ttyS0 root=/dev/vda"
#define VMCONFIG_CMDLINE_BLK "console=ttyS0 root=PARTLABEL=root"
#define VMCONFIG_UPLINK_HOST_LOOPBACK "host-loopback"

enum diag_level { DIAG_NOTE, DIAG_WARNING, DIAG_ERROR };

/* One problem: "NAME: PATH: message". path is relative to the VM's
 * directory ("." for the directory itself).  vm and path are stored
 * escaped (vmconfig_escape) so that they are printable and valid UTF-8;
 * messages quote untrusted values escaped too. */
struct diag {
	enum diag_level level;
	char *vm;
	char *path;
	char *message;
};

struct diags {
	struct diag *items;
	size_t count;
	size_t capacity;
	size_t errors; /* how many items are DIAG_ERROR */
};

struct vm_disk {
	char *path;     /* absolute path as found (links not resolved) */
	char *relpath;  /* "rootfs.ext4" or "blk/NAME.img" */
};

struct vm_share {
	char tag[VMCONFIG_TAG_MAX + 1];
	char *host_dir; /* the link's fully resolved target, inside the data root */
};

struct vm_config {
	char name[VMCONFIG_NAME_MAX + 1];
	char *dir;            /* CONFIG_ROOT/NAME */
	char *kernel;         /* CONFIG_ROOT/NAME/vmlinux */
	struct vm_disk *disks;      /* rootfs.ext4 first, then blk/ sorted */
	size_t disk_count;
	struct vm_share *shares;    /* sorted by tag */
	size_t share_count;
	char **providers;           /* providers/net entries, sorted */
	size_t provider_count;
	bool wayland;
	bool uplink;
	bool uplink_host_loopback;  /* uplink says "host-loopback" */
	uint64_t memory;            /* bytes */
	unsigned int cpus;
	char *cmdline;              /* kernel command line (default or file) */
};

/* Where a load looks. data_root NULL means two levels above config_root. */
struct vmconfig_roots {
	const char *config_root;
	const char *data_root;
};

void diags_init(struct diags *d);
void diags_free(struct diags *d);
/* Append a diagnostic; returns -1 with errno ENOMEM on failure. */
int diags_add(struct diags *d, enum diag_level level, const char *vm,
	      const char *path, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

int diags_vadd(struct diags *d, enum diag_level level, const char *vm,
	       const char *path, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));
/* "NAME: PATH: message", with "warning: " or "note: " before the message
 * for those levels.  Caller frees; NULL with errno ENOMEM. */
char *diag_format(const struct diag *item);
/* "error", "warning" or "note". */
const char *diag_level_name(enum diag_level level);

/* A printable, valid-UTF-8 copy of len bytes of s: printable ASCII kept,
 * '\' and '"' backslashed, anything else as \n, \t or \xNN; inputs
 * longer than max bytes are cut and end in "...".  Caller frees; NULL with
 * errno ENOMEM. */
char *vmconfig_escape(const char *s, size_t len, size_t max);

/* Parsers for the extension files, given the contents with the trailing
 * newline removed.  Return 0, or -1 with errno EINVAL and *why set to a
 * static explanation. */
int vmconfig_parse_memory(const char *s, uint64_t *bytes, const char **why);
int vmconfig_parse_cpus(const char *s, unsigned int *cpus, const char **why);
int vmconfig_check_cmdline(const char *s, size_t len, const char **why);

/* Edit distance between a and b, capped at cap+1 (for typo hints). */
size_t vmconfig_edit_distance(const char *a, const char *b, size_t cap);

/* "a regular file", "a FIFO", "a block device"... for messages. */
const char *vmconfig_ftype(mode_t mode);

/* Whether tag is a valid virtio-fs tag: 1..36 of [A-Za-z0-9._-]. */
bool vmconfig_tag_valid(const char *tag);

/* Whether name is a valid VM name: 1..64 of [A-Za-z0-9._-], not starting
 * with '.' or '-'. */
bool vmconfig_name_valid(const char *name);

/* Append every item of from to d (moved: from is empty afterwards).
 * -1 with errno ENOMEM. */
int diags_append(struct diags *d, struct diags *from);

/* Load and validate one VM.  Every problem goes to diags.  Returns 0 and
 * sets *out when the VM is valid (warnings and notes allowed); returns -1
 * when it is invalid (errno EINVAL, details in diags) or on a system error
 * (errno set, also reported in diags).  Provider cycles are checked across
 * the config root. */
int vmconfig_load(const struct vmconfig_roots *roots, const char *name,
		  struct vm_config **out, struct diags *diags);

/* vmconfig_load_at flags. */
enum {
	/* providers/net: check each name (valid, not the VM itself, a
	 * directory in the config root) but neither cycles nor whether the
	 * providers are valid VMs: the caller does (gather.h, which checks
	 * each provider as its own owner). */
	VMCONFIG_LOAD_PROVIDER_NAMES = 1,
	/* Permission errors say "(as the VM directory's owner)". */
	VMCONFIG_LOAD_AS_OWNER = 2,
};

/* vmconfig_load for an open config root: roots->config_root is rootfd's
 * resolved path (for messages and the paths in the result).  vmfd >= 0 is
 * the VM's directory, already open (used as is, not closed); -1 opens
 * NAME from rootfd. */
int vmconfig_load_at(const struct vmconfig_roots *roots, int rootfd, int vmfd,
		     const char *name, unsigned int flags,
		     struct vm_config **out, struct diags *diags);

/* Open CONFIG_ROOT/name as a load does (O_RDONLY|O_DIRECTORY|O_CLOEXEC,
 * links followed); root is rootfd's path, for messages.  On failure
 * reports what a load would (an invalid name, no such VM, not a
 * directory, ...) and returns -1 with errno EINVAL (or ENOMEM). */
int vmconfig_open_vm(int rootfd, const char *root, const char *name,
		     struct diags *diags);

/* The provider names of VM vm, sorted and malloc'd (vmconfig_list_free),
 * for the cycle search; none (NULL, 0) when it has none or they cannot be
 * read.  -1 with errno on a system error. */
typedef int vmconfig_providers_fn(void *arg, const char *vm, char ***names,
				  size_t *count);

/* Search breadth-first along the provider edges for the shortest cycle
 * back to name and report it on name ("providers/net/HOP: provider cycle:
 * a -> b -> a").  At most VMCONFIG_GRAPH_MAX VMs are walked.  Returns 1
 * if a cycle was reported, 0 if none, -1 with errno ENOMEM. */
int vmconfig_find_cycle(const char *name, vmconfig_providers_fn *providers,
			void *arg, struct diags *diags);
#define VMCONFIG_GRAPH_MAX 1024

/* Report on vm that its provider prov is not a valid VM (it has errors
 * errors).  -1 with errno ENOMEM. */
int vmconfig_diag_bad_provider(struct diags *diags, const char *vm,
			       const char *prov, size_t errors);

void vmconfig_free(struct vm_config *cfg);

/* The names of every directory entry in the config root that could be a
 * VM (directories, links to directories), sorted; invalid names included so
 * that `vm check` can report them.  Returns -1 with errno set on failure. */
int vmconfig_list(const char *config_root, char ***names, size_t *count);
/* Whether the entry name of the config root dirfd is one vmconfig_list
 * lists: a directory, or a link to one or to nothing.  d_type as readdir
 * gives it; DT_UNKNOWN looks (one or two fstatat). */
bool vmconfig_root_entry(int dirfd, const char *name, unsigned char d_type);
void vmconfig_list_free(char **names, size_t count);
/* qsort's comparison of two names (char *), the order of vmconfig_list. */
int vmconfig_names_cmp(const void *a, const void *b);

/* The data root used when none is given: two levels above config_root
 * (Spectrum's /ext for /ext/svc/data).  Caller frees. */
char *vmconfig_default_data_root(const char *config_root);

#endif
