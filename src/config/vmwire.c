/* vmwire: struct vm_config and struct diags to and from bytes, with a
 * reader that trusts nothing.  See vmwire.h. */
#include "config/vmwire.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VMWIRE_CONFIG_MAGIC 0x31434d56u /* "VMC1" */
#define VMWIRE_DIAGS_MAGIC 0x31444d56u  /* "VMD1" */
#define VMWIRE_DIAG_VM_MAX (256 * 4 + 3)   /* escaped name (diags.c) */
#define VMWIRE_DIAG_PATH_MAX (1024 * 4 + 3) /* escaped path (diags.c) */
#define VMWIRE_SUMMARY_BYTES 256 /* room kept for the summary item */

/* --- writing --- */

void vmwire_out_init(struct vmwire_out *o)
{
	memset(o, 0, sizeof(*o));
}

void vmwire_out_free(struct vmwire_out *o)
{
	free(o->buf);
	vmwire_out_init(o);
}

static void vmwire_fail(struct vmwire_out *o, int err)
{
	if (!o->err)
		o->err = err;
}

static void vmwire_put_bytes(struct vmwire_out *o, const void *p, size_t n)
{
	size_t cap;
	unsigned char *grown;

	if (o->err)
		return;
	if (n > VMWIRE_MAX - o->len) {
		vmwire_fail(o, EMSGSIZE);
		return;
	}
	if (o->len + n > o->cap) {
		cap = o->cap ? o->cap : 256;
		while (cap < o->len + n)
			cap *= 2;
		grown = realloc(o->buf, cap);
		if (!grown) {
			vmwire_fail(o, ENOMEM);
			return;
		}
		o->buf = grown;
		o->cap = cap;
	}
	if (n)
		memcpy(o->buf + o->len, p, n);
	o->len += n;
}

void vmwire_put_u8(struct vmwire_out *o, uint8_t v)
{
	vmwire_put_bytes(o, &v, 1);
}

void vmwire_put_u32(struct vmwire_out *o, uint32_t v)
{
	unsigned char b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	vmwire_put_bytes(o, b, sizeof(b));
}

void vmwire_put_u64(struct vmwire_out *o, uint64_t v)
{
	unsigned char b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	vmwire_put_bytes(o, b, sizeof(b));
}

static void vmwire_put_mem(struct vmwire_out *o, const char *s, size_t n)
{
	if (n > UINT32_MAX) {
		vmwire_fail(o, EINVAL);
		return;
	}
	vmwire_put_u32(o, (uint32_t)n);
	vmwire_put_bytes(o, s, n);
}

void vmwire_put_str(struct vmwire_out *o, const char *s)
{
	if (!s) {
		vmwire_fail(o, EINVAL);
		return;
	}
	vmwire_put_mem(o, s, strlen(s));
}

void vmwire_put_config(struct vmwire_out *o, const struct vm_config *c)
{
	vmwire_put_u32(o, VMWIRE_CONFIG_MAGIC);
	vmwire_put_str(o, c->name);
	vmwire_put_str(o, c->dir);
	vmwire_put_str(o, c->kernel);
	vmwire_put_u32(o, (uint32_t)c->disk_count);
	for (size_t i = 0; i < c->disk_count; i++) {
		vmwire_put_str(o, c->disks[i].relpath);
		vmwire_put_str(o, c->disks[i].path);
	}
	vmwire_put_u32(o, (uint32_t)c->share_count);
	for (size_t i = 0; i < c->share_count; i++) {
		vmwire_put_str(o, c->shares[i].tag);
		vmwire_put_str(o, c->shares[i].host_dir);
	}
	vmwire_put_u32(o, (uint32_t)c->provider_count);
	for (size_t i = 0; i < c->provider_count; i++)
		vmwire_put_str(o, c->providers[i]);
	vmwire_put_u8(o, c->wayland);
	/* 0: no uplink, 1: an uplink, 2: one that may reach host loopback. */
	vmwire_put_u8(o, c->uplink ? 1 + c->uplink_host_loopback : 0);
	vmwire_put_u64(o, c->memory);
	vmwire_put_u32(o, c->cpus);
	vmwire_put_str(o, c->cmdline);
}

/* Diagnostic text as sent: at most max bytes, printable ASCII. */
static size_t vmwire_text_len(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n < max ? n : max;
}

static void vmwire_put_text(struct vmwire_out *o, const char *s, size_t max)
{
	size_t n = vmwire_text_len(s, max);
	char *copy;

	copy = malloc(n + 1);
	if (!copy) {
		vmwire_fail(o, ENOMEM);
		return;
	}
	for (size_t i = 0; i < n; i++)
		copy[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	vmwire_put_mem(o, copy, n);
	free(copy);
}

static size_t vmwire_diag_size(const struct diag *it)
{
	return 1 + 12 + vmwire_text_len(it->vm, VMWIRE_DIAG_VM_MAX) +
	       vmwire_text_len(it->path, VMWIRE_DIAG_PATH_MAX) +
	       vmwire_text_len(it->message, VMWIRE_MESSAGE_MAX);
}

static void vmwire_put_diag(struct vmwire_out *o, enum diag_level level,
			    const char *vm, const char *path, const char *msg)
{
	vmwire_put_u8(o, (uint8_t)level);
	vmwire_put_text(o, vm, VMWIRE_DIAG_VM_MAX);
	vmwire_put_text(o, path, VMWIRE_DIAG_PATH_MAX);
	vmwire_put_text(o, msg, VMWIRE_MESSAGE_MAX);
}

void vmwire_put_diags(struct vmwire_out *o, const struct diags *d)
{
	size_t keep = 0, bytes = 0, total = 0;
	enum diag_level worst = DIAG_NOTE;
	char summary[64];

	for (size_t i = 0; i < d->count; i++)
		total += vmwire_diag_size(&d->items[i]);
	if (d->count <= VMWIRE_DIAGS_MAX && total <= VMWIRE_DIAGS_BYTES) {
		keep = d->count;
	} else {
		/* As many as fit with the summary after them. */
		while (keep + 1 < VMWIRE_DIAGS_MAX &&
		       bytes + vmwire_diag_size(&d->items[keep]) <=
		       VMWIRE_DIAGS_BYTES - VMWIRE_SUMMARY_BYTES) {
			bytes += vmwire_diag_size(&d->items[keep]);
			keep++;
		}
	}
	vmwire_put_u32(o, VMWIRE_DIAGS_MAGIC);
	vmwire_put_u32(o, (uint32_t)(keep < d->count ? keep + 1 : keep));
	for (size_t i = 0; i < keep; i++)
		vmwire_put_diag(o, d->items[i].level, d->items[i].vm,
				d->items[i].path, d->items[i].message);
	if (keep == d->count)
		return;
	for (size_t i = keep; i < d->count; i++)
		if (d->items[i].level > worst)
			worst = d->items[i].level;
	snprintf(summary, sizeof(summary), "%zu more problems not shown",
		 d->count - keep);
	vmwire_put_diag(o, worst, d->items[keep].vm, ".", summary);
}

/* --- reading --- */

void vmwire_in_init(struct vmwire_in *in, const void *p, size_t len)
{
	in->p = p;
	in->len = len;
	in->off = 0;
}

static int vmwire_bad(void)
{
	errno = EBADMSG;
	return -1;
}

static int vmwire_get_bytes(struct vmwire_in *in, void *out, size_t n)
{
	if (n > in->len - in->off)
		return vmwire_bad();
	memcpy(out, in->p + in->off, n);
	in->off += n;
	return 0;
}

int vmwire_get_u8(struct vmwire_in *in, uint8_t *v)
{
	return vmwire_get_bytes(in, v, 1);
}

int vmwire_get_u32(struct vmwire_in *in, uint32_t *v)
{
	unsigned char b[4];

	if (vmwire_get_bytes(in, b, sizeof(b)) < 0)
		return -1;
	*v = 0;
	for (int i = 0; i < 4; i++)
		*v |= (uint32_t)b[i] << (8 * i);
	return 0;
}

int vmwire_get_u64(struct vmwire_in *in, uint64_t *v)
{
	unsigned char b[8];

	if (vmwire_get_bytes(in, b, sizeof(b)) < 0)
		return -1;
	*v = 0;
	for (int i = 0; i < 8; i++)
		*v |= (uint64_t)b[i] << (8 * i);
	return 0;
}

int vmwire_get_str(struct vmwire_in *in, size_t max, char **s)
{
	uint32_t n;

	*s = NULL;
	if (vmwire_get_u32(in, &n) < 0)
		return -1;
	if (n > max || n > in->len - in->off ||
	    memchr(in->p + in->off, '\0', n))
		return vmwire_bad();
	*s = malloc((size_t)n + 1);
	if (!*s)
		return -1;
	memcpy(*s, in->p + in->off, n);
	(*s)[n] = '\0';
	in->off += n;
	return 0;
}

/* A count for a list of at most max items. */
static int vmwire_get_count(struct vmwire_in *in, size_t max, size_t *n)
{
	uint32_t v;

	if (vmwire_get_u32(in, &v) < 0)
		return -1;
	if (v > max)
		return vmwire_bad();
	*n = v;
	return 0;
}

static bool vmwire_absolute(const char *s)
{
	return s[0] == '/';
}

/* dir + "/" + rel, exactly. */
static bool vmwire_below(const char *path, const char *dir, const char *rel)
{
	size_t n = strlen(dir);

	return !strncmp(path, dir, n) && path[n] == '/' &&
	       !strcmp(path + n + 1, rel);
}

/* "rootfs.ext4" (first disk only) or "blk/NAME.img", NAME.img a single
 * component of at most NAME_MAX bytes. */
static bool vmwire_relpath_valid(const char *rel, size_t index)
{
	const char *name = rel + 4;
	size_t n;

	if (!strcmp(rel, "rootfs.ext4"))
		return index == 0;
	if (strncmp(rel, "blk/", 4))
		return false;
	n = strlen(name);
	return n > 4 && n <= NAME_MAX && !strchr(name, '/') &&
	       !strcmp(name + n - 4, ".img");
}

static int vmwire_get_disks(struct vmwire_in *in, struct vm_config *c)
{
	size_t n;

	if (vmwire_get_count(in, VMCONFIG_DISKS_MAX, &n) < 0)
		return -1;
	if (n == 0)
		return vmwire_bad();
	c->disks = calloc(n, sizeof(*c->disks));
	if (!c->disks)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct vm_disk *d = &c->disks[i];

		c->disk_count = i + 1;
		if (vmwire_get_str(in, NAME_MAX + 4, &d->relpath) < 0 ||
		    vmwire_get_str(in, VMWIRE_PATH_MAX, &d->path) < 0)
			return -1;
		if (!vmwire_relpath_valid(d->relpath, i) ||
		    !vmwire_below(d->path, c->dir, d->relpath))
			return vmwire_bad();
		/* blk/ images sorted and unique, after rootfs.ext4. */
		if (i > 0 && strcmp(c->disks[i - 1].relpath, "rootfs.ext4") &&
		    strcmp(c->disks[i - 1].relpath, d->relpath) >= 0)
			return vmwire_bad();
	}
	return 0;
}

static int vmwire_get_shares(struct vmwire_in *in, struct vm_config *c)
{
	size_t n;
	char *tag;

	if (vmwire_get_count(in, VMCONFIG_SHARES_MAX, &n) < 0)
		return -1;
	c->shares = calloc(n ? n : 1, sizeof(*c->shares));
	if (!c->shares)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct vm_share *s = &c->shares[i];

		c->share_count = i + 1;
		if (vmwire_get_str(in, VMCONFIG_TAG_MAX, &tag) < 0)
			return -1;
		strcpy(s->tag, tag);
		free(tag);
		if (vmwire_get_str(in, VMWIRE_PATH_MAX, &s->host_dir) < 0)
			return -1;
		if (!vmconfig_tag_valid(s->tag) || !vmwire_absolute(s->host_dir) ||
		    (i > 0 && strcmp(c->shares[i - 1].tag, s->tag) >= 0))
			return vmwire_bad();
	}
	return 0;
}

static int vmwire_get_providers(struct vmwire_in *in, struct vm_config *c)
{
	size_t n;

	if (vmwire_get_count(in, VMCONFIG_PROVIDERS_MAX, &n) < 0)
		return -1;
	c->providers = calloc(n ? n : 1, sizeof(*c->providers));
	if (!c->providers)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char **p = &c->providers[i];

		c->provider_count = i + 1;
		if (vmwire_get_str(in, VMCONFIG_NAME_MAX, p) < 0)
			return -1;
		if (!vmconfig_name_valid(*p) || !strcmp(*p, c->name) ||
		    (i > 0 && strcmp(c->providers[i - 1], *p) >= 0))
			return vmwire_bad();
	}
	return 0;
}

static int vmwire_get_flag(struct vmwire_in *in, bool *flag)
{
	uint8_t v;

	if (vmwire_get_u8(in, &v) < 0)
		return -1;
	if (v > 1)
		return vmwire_bad();
	*flag = v;
	return 0;
}

static int vmwire_get_settings(struct vmwire_in *in, struct vm_config *c)
{
	const char *why;
	uint32_t cpus;
	uint8_t uplink;

	if (vmwire_get_flag(in, &c->wayland) < 0 ||
	    vmwire_get_u8(in, &uplink) < 0 ||
	    vmwire_get_u64(in, &c->memory) < 0 ||
	    vmwire_get_u32(in, &cpus) < 0 ||
	    vmwire_get_str(in, VMCONFIG_SETTING_MAX, &c->cmdline) < 0)
		return -1;
	c->cpus = cpus;
	c->uplink = uplink > 0;
	c->uplink_host_loopback = uplink == 2;
	if (uplink > 2 || c->memory < VMCONFIG_MEMORY_MIN || c->memory > VMCONFIG_MEMORY_MAX ||
	    c->memory % (1u << 20) || cpus < 1 || cpus > VMCONFIG_CPUS_MAX ||
	    vmconfig_check_cmdline(c->cmdline, strlen(c->cmdline), &why) < 0)
		return vmwire_bad();
	return 0;
}

int vmwire_get_config(struct vmwire_in *in, struct vm_config **out)
{
	struct vm_config *c;
	uint32_t magic;
	char *name = NULL;
	size_t n;
	int saved;

	*out = NULL;
	if (vmwire_get_u32(in, &magic) < 0)
		return -1;
	if (magic != VMWIRE_CONFIG_MAGIC)
		return vmwire_bad();
	c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	if (vmwire_get_str(in, VMCONFIG_NAME_MAX, &name) < 0)
		goto fail;
	strcpy(c->name, name);
	free(name);
	if (vmwire_get_str(in, VMWIRE_PATH_MAX, &c->dir) < 0 ||
	    vmwire_get_str(in, VMWIRE_PATH_MAX, &c->kernel) < 0)
		goto fail;
	n = strlen(c->dir);
	/* dir is CONFIG_ROOT/NAME: absolute, and ends in "/NAME". */
	if (!vmconfig_name_valid(c->name) || !vmwire_absolute(c->dir) ||
	    n <= strlen(c->name) || c->dir[n - strlen(c->name) - 1] != '/' ||
	    strcmp(c->dir + n - strlen(c->name), c->name) ||
	    !vmwire_below(c->kernel, c->dir, "vmlinux")) {
		vmwire_bad();
		goto fail;
	}
	if (vmwire_get_disks(in, c) < 0 || vmwire_get_shares(in, c) < 0 ||
	    vmwire_get_providers(in, c) < 0 || vmwire_get_settings(in, c) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	saved = errno;
	vmconfig_free(c);
	errno = saved;
	return -1;
}

static bool vmwire_printable(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s >= 0x7f)
			return false;
	return true;
}

int vmwire_get_diags(struct vmwire_in *in, struct diags *d)
{
	char *vm = NULL, *path = NULL, *msg = NULL;
	uint32_t magic;
	uint8_t level;
	size_t n, start;
	int r = -1;

	if (vmwire_get_u32(in, &magic) < 0)
		return -1;
	if (magic != VMWIRE_DIAGS_MAGIC)
		return vmwire_bad();
	if (vmwire_get_count(in, VMWIRE_DIAGS_MAX, &n) < 0)
		return -1;
	start = in->off;
	for (size_t i = 0; i < n; i++) {
		if (vmwire_get_u8(in, &level) < 0 ||
		    vmwire_get_str(in, VMWIRE_DIAG_VM_MAX, &vm) < 0 ||
		    vmwire_get_str(in, VMWIRE_DIAG_PATH_MAX, &path) < 0 ||
		    vmwire_get_str(in, VMWIRE_MESSAGE_MAX, &msg) < 0)
			goto out;
		if (level > DIAG_ERROR || !*path || !vmwire_printable(vm) ||
		    !vmwire_printable(path) || !vmwire_printable(msg) ||
		    in->off - start > VMWIRE_DIAGS_BYTES) {
			vmwire_bad();
			goto out;
		}
		/* vm and path come escaped already: stored as they are. */
		if (diags_add(d, (enum diag_level)level, "", "", "%s", msg) < 0)
			goto out;
		free(d->items[d->count - 1].vm);
		free(d->items[d->count - 1].path);
		d->items[d->count - 1].vm = vm;
		d->items[d->count - 1].path = path;
		vm = path = NULL;
		free(msg);
		msg = NULL;
	}
	r = 0;
out:
	free(vm);
	free(path);
	free(msg);
	return r;
}

int vmwire_get_end(const struct vmwire_in *in)
{
	return in->off == in->len ? 0 : vmwire_bad();
}
