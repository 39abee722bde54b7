/* Unit tests for vmwire: round trips, every validation rule on a hand-
 * broken encoding, truncation at every byte, the diagnostics budget. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/vmwire.h"

static char *xstrdup(const char *s)
{
	char *r = strdup(s);

	assert_non_null(r);
	return r;
}

/* A config as the loader makes it: rootfs.ext4 and two blk images, two
 * shares, two providers. */
static struct vm_config *sample(void)
{
	struct vm_config *c = calloc(1, sizeof(*c));
	static const char *const rel[] = { "rootfs.ext4", "blk/a.img", "blk/b\x01.img" };
	char path[256];

	assert_non_null(c);
	strcpy(c->name, "appvm");
	c->dir = xstrdup("/ext/svc/data/appvm");
	c->kernel = xstrdup("/ext/svc/data/appvm/vmlinux");
	c->disks = calloc(3, sizeof(*c->disks));
	for (size_t i = 0; i < 3; i++) {
		c->disks[i].relpath = xstrdup(rel[i]);
		snprintf(path, sizeof(path), "%s/%s", c->dir, rel[i]);
		c->disks[i].path = xstrdup(path);
	}
	c->disk_count = 3;
	c->shares = calloc(2, sizeof(*c->shares));
	strcpy(c->shares[0].tag, "home");
	c->shares[0].host_dir = xstrdup("/ext/home/\xff");
	strcpy(c->shares[1].tag, "media");
	c->shares[1].host_dir = xstrdup("/ext/media");
	c->share_count = 2;
	c->providers = calloc(2, sizeof(*c->providers));
	c->providers[0] = xstrdup("netvm");
	c->providers[1] = xstrdup("vpn");
	c->provider_count = 2;
	c->wayland = true;
	c->uplink = true;
	c->uplink_host_loopback = true;
	c->memory = 512ull << 20;
	c->cpus = 2;
	c->cmdline = xstrdup("console=ttyS0 root=PARTLABEL=root");
	return c;
}

static void pack(const struct vm_config *c, struct vmwire_out *o)
{
	vmwire_out_init(o);
	vmwire_put_config(o, c);
	assert_int_equal(o->err, 0);
}

/* -1/EBADMSG, or the config. */
static struct vm_config *unpack(const void *p, size_t len)
{
	struct vmwire_in in;
	struct vm_config *c = NULL;

	vmwire_in_init(&in, p, len);
	if (vmwire_get_config(&in, &c) < 0) {
		assert_int_equal(errno, EBADMSG);
		assert_null(c);
		return NULL;
	}
	if (vmwire_get_end(&in) < 0) {
		vmconfig_free(c);
		return NULL;
	}
	return c;
}

static void assert_same(const struct vm_config *a, const struct vm_config *b)
{
	assert_string_equal(a->name, b->name);
	assert_string_equal(a->dir, b->dir);
	assert_string_equal(a->kernel, b->kernel);
	assert_int_equal(a->disk_count, b->disk_count);
	for (size_t i = 0; i < a->disk_count; i++) {
		assert_string_equal(a->disks[i].relpath, b->disks[i].relpath);
		assert_string_equal(a->disks[i].path, b->disks[i].path);
	}
	assert_int_equal(a->share_count, b->share_count);
	for (size_t i = 0; i < a->share_count; i++) {
		assert_string_equal(a->shares[i].tag, b->shares[i].tag);
		assert_string_equal(a->shares[i].host_dir, b->shares[i].host_dir);
	}
	assert_int_equal(a->provider_count, b->provider_count);
	for (size_t i = 0; i < a->provider_count; i++)
		assert_string_equal(a->providers[i], b->providers[i]);
	assert_int_equal(a->wayland, b->wayland);
	assert_int_equal(a->uplink, b->uplink);
	assert_int_equal(a->uplink_host_loopback, b->uplink_host_loopback);
	assert_int_equal(a->memory, b->memory);
	assert_int_equal(a->cpus, b->cpus);
	assert_string_equal(a->cmdline, b->cmdline);
}

static void test_round_trip(void **state)
{
	struct vm_config *c = sample(), *back;
	struct vmwire_out o;

	pack(c, &o);
	back = unpack(o.buf, o.len);
	assert_non_null(back);
	assert_same(c, back);
	vmconfig_free(back);
	vmwire_out_free(&o);

	/* The smallest valid config: one disk, nothing else. */
	for (size_t i = 1; i < c->disk_count; i++) {
		free(c->disks[i].path);
		free(c->disks[i].relpath);
	}
	c->disk_count = 1;
	for (size_t i = 0; i < c->share_count; i++)
		free(c->shares[i].host_dir);
	c->share_count = 0;
	for (size_t i = 0; i < c->provider_count; i++)
		free(c->providers[i]);
	c->provider_count = 0;
	pack(c, &o);
	back = unpack(o.buf, o.len);
	assert_non_null(back);
	assert_same(c, back);
	vmconfig_free(back);
	vmwire_out_free(&o);
	vmconfig_free(c);
}

/* Every proper prefix is refused, and so is one byte too many. */
static void test_truncated(void **state)
{
	struct vm_config *c = sample();
	struct vmwire_out o;
	unsigned char *longer;

	pack(c, &o);
	for (size_t n = 0; n < o.len; n++)
		assert_null(unpack(o.buf, n));
	longer = malloc(o.len + 1);
	memcpy(longer, o.buf, o.len);
	longer[o.len] = 0;
	assert_null(unpack(longer, o.len + 1));
	free(longer);
	vmwire_out_free(&o);
	vmconfig_free(c);
}

/* Change one field of the sample, pack it (the writer does not judge),
 * and expect the reader to refuse it. */
typedef void (*breaker)(struct vm_config *c);

static void refused(breaker f)
{
	struct vm_config *c = sample();
	struct vmwire_out o;

	f(c);
	vmwire_out_init(&o);
	vmwire_put_config(&o, c);
	assert_int_equal(o.err, 0);
	assert_null(unpack(o.buf, o.len));
	vmwire_out_free(&o);
	vmconfig_free(c);
}

static void replace(char **field, const char *value)
{
	free(*field);
	*field = xstrdup(value);
}

static void bad_name(struct vm_config *c) { strcpy(c->name, "-x"); }
static void bad_dir(struct vm_config *c) { replace(&c->dir, "/ext/svc/data/other"); }
static void relative_dir(struct vm_config *c) { replace(&c->dir, "appvm"); }
static void bad_kernel(struct vm_config *c) { replace(&c->kernel, "/etc/shadow"); }
static void bad_disk_path(struct vm_config *c) { replace(&c->disks[1].path, "/dev/sda"); }
static void bad_relpath(struct vm_config *c)
{
	replace(&c->disks[1].relpath, "blk/../x.img");
	replace(&c->disks[1].path, "/ext/svc/data/appvm/blk/../x.img");
}
static void not_img(struct vm_config *c)
{
	replace(&c->disks[1].relpath, "blk/a.raw");
	replace(&c->disks[1].path, "/ext/svc/data/appvm/blk/a.raw");
}
static void rootfs_second(struct vm_config *c)
{
	replace(&c->disks[1].relpath, "rootfs.ext4");
	replace(&c->disks[1].path, "/ext/svc/data/appvm/rootfs.ext4");
}
static void disks_unsorted(struct vm_config *c)
{
	struct vm_disk t = c->disks[1];

	c->disks[1] = c->disks[2];
	c->disks[2] = t;
}
static void disks_duplicate(struct vm_config *c)
{
	replace(&c->disks[2].relpath, c->disks[1].relpath);
	replace(&c->disks[2].path, c->disks[1].path);
}
static void no_disk(struct vm_config *c)
{
	for (size_t i = 0; i < c->disk_count; i++) {
		free(c->disks[i].path);
		free(c->disks[i].relpath);
	}
	c->disk_count = 0;
}
static void too_many_disks(struct vm_config *c)
{
	char rel[32], path[64];

	c->disks = realloc(c->disks, 20 * sizeof(*c->disks));
	for (size_t i = c->disk_count; i < 20; i++) {
		snprintf(rel, sizeof(rel), "blk/z%02zu.img", i);
		snprintf(path, sizeof(path), "%s/%s", c->dir, rel);
		c->disks[i].relpath = xstrdup(rel);
		c->disks[i].path = xstrdup(path);
	}
	c->disk_count = 20;
}
static void bad_tag(struct vm_config *c) { strcpy(c->shares[0].tag, "a b"); }
static void relative_share(struct vm_config *c) { replace(&c->shares[0].host_dir, "home"); }
static void shares_unsorted(struct vm_config *c) { strcpy(c->shares[1].tag, "aaa"); }
static void self_provider(struct vm_config *c) { replace(&c->providers[0], "appvm"); }
static void bad_provider(struct vm_config *c) { replace(&c->providers[0], "n,et"); }
static void providers_duplicate(struct vm_config *c) { replace(&c->providers[1], "netvm"); }
static void small_memory(struct vm_config *c) { c->memory = 1 << 20; }
static void big_memory(struct vm_config *c) { c->memory = VMCONFIG_MEMORY_MAX + (1 << 20); }
static void odd_memory(struct vm_config *c) { c->memory = (256u << 20) + 1; }
static void no_cpus(struct vm_config *c) { c->cpus = 0; }
static void many_cpus(struct vm_config *c) { c->cpus = VMCONFIG_CPUS_MAX + 1; }
static void bad_cmdline(struct vm_config *c) { replace(&c->cmdline, "a\nb"); }
static void empty_cmdline(struct vm_config *c) { replace(&c->cmdline, ""); }

static void test_validation(void **state)
{
	static const breaker all[] = {
		bad_name, bad_dir, relative_dir, bad_kernel, bad_disk_path,
		bad_relpath, not_img, rootfs_second, disks_unsorted,
		disks_duplicate, no_disk, too_many_disks, bad_tag,
		relative_share, shares_unsorted, self_provider, bad_provider,
		providers_duplicate, small_memory, big_memory, odd_memory,
		no_cpus, many_cpus, bad_cmdline, empty_cmdline,
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		refused(all[i]);
}

/* Bytes the writer never makes: a flag of 2, a NUL inside a string, a
 * wrong magic. */
static void test_raw_bytes(void **state)
{
	struct vm_config *c = sample();
	struct vmwire_out o;
	size_t at;

	pack(c, &o);
	/* wayland is 14 bytes from the end: u8 wayland, u8 uplink, u64
	 * memory, u32 cpus, then the cmdline string. */
	at = o.len - (4 + strlen(c->cmdline)) - 4 - 8 - 1 - 1;
	assert_int_equal(o.buf[at], 1);
	o.buf[at] = 2;
	assert_null(unpack(o.buf, o.len));
	o.buf[at] = 1;
	/* uplink: 2 is "host-loopback", 3 is nothing. */
	assert_int_equal(o.buf[at + 1], 2);
	o.buf[at + 1] = 3;
	assert_null(unpack(o.buf, o.len));
	o.buf[at + 1] = 2;
	o.buf[o.len - 3] = '\0'; /* inside the cmdline */
	assert_null(unpack(o.buf, o.len));
	o.buf[o.len - 3] = 'o';
	o.buf[0] ^= 1;
	assert_null(unpack(o.buf, o.len));
	o.buf[0] ^= 1;
	vmconfig_free(c);
	c = unpack(o.buf, o.len);
	assert_non_null(c);
	vmconfig_free(c);
	vmwire_out_free(&o);
}

static int diags_round_trip(const struct diags *d, struct diags *back)
{
	struct vmwire_out o;
	struct vmwire_in in;
	int r;

	vmwire_out_init(&o);
	vmwire_put_diags(&o, d);
	assert_int_equal(o.err, 0);
	diags_init(back);
	vmwire_in_init(&in, o.buf, o.len);
	r = vmwire_get_diags(&in, back);
	if (r == 0)
		r = vmwire_get_end(&in);
	vmwire_out_free(&o);
	return r;
}

static void test_diags(void **state)
{
	struct diags d, back;
	char path[32];

	diags_init(&d);
	diags_add(&d, DIAG_ERROR, "bad\nname", "blk/x\".img", "is a FIFO");
	diags_add(&d, DIAG_WARNING, "bad\nname", "wayland", "not empty");
	diags_add(&d, DIAG_NOTE, "bad\nname", "", "raw \x01 byte");
	assert_int_equal(diags_round_trip(&d, &back), 0);
	assert_int_equal(back.count, 3);
	assert_int_equal(back.errors, 1);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(back.items[i].level, d.items[i].level);
		assert_string_equal(back.items[i].vm, d.items[i].vm);
		assert_string_equal(back.items[i].path, d.items[i].path);
	}
	assert_string_equal(back.items[0].vm, "bad\\nname");
	assert_string_equal(back.items[0].path, "blk/x\\\".img");
	/* Not printable: sent with '?'. */
	assert_string_equal(back.items[2].message, "raw ? byte");
	diags_free(&back);
	diags_free(&d);

	/* Too many: the rest summarised, as severe as the worst left out. */
	diags_init(&d);
	for (int i = 0; i < 3000; i++) {
		snprintf(path, sizeof(path), "blk/%04d.img", i);
		diags_add(&d, i == 2999 ? DIAG_ERROR : DIAG_NOTE, "vm", path,
			  "ignored");
	}
	assert_int_equal(diags_round_trip(&d, &back), 0);
	assert_int_equal(back.count, VMWIRE_DIAGS_MAX);
	assert_int_equal(back.errors, 1);
	assert_string_equal(back.items[back.count - 1].message,
			    "1977 more problems not shown");
	assert_int_equal(back.items[back.count - 1].level, DIAG_ERROR);
	diags_free(&back);
	diags_free(&d);
}

static void test_diags_refused(void **state)
{
	static const unsigned char bad_level[] = {
		'V', 'M', 'D', '1', 1, 0, 0, 0, 3, 0, 0, 0, 0,
		1, 0, 0, 0, '.', 0, 0, 0, 0 };
	static const unsigned char control[] = {
		'V', 'M', 'D', '1', 1, 0, 0, 0, 2, 0, 0, 0, 0,
		1, 0, 0, 0, '.', 1, 0, 0, 0, '\n' };
	static const unsigned char empty_path[] = {
		'V', 'M', 'D', '1', 1, 0, 0, 0, 2, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0 };
	static const unsigned char too_many[] = {
		'V', 'M', 'D', '1', 0xff, 0xff, 0, 0 };
	static const unsigned char ok[] = {
		'V', 'M', 'D', '1', 1, 0, 0, 0, 2, 0, 0, 0, 0,
		1, 0, 0, 0, '.', 1, 0, 0, 0, 'x' };
	const struct { const unsigned char *p; size_t n; } bad[] = {
		{ bad_level, sizeof(bad_level) }, { control, sizeof(control) },
		{ empty_path, sizeof(empty_path) }, { too_many, sizeof(too_many) },
	};
	struct vmwire_in in;
	struct diags d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		diags_init(&d);
		vmwire_in_init(&in, bad[i].p, bad[i].n);
		assert_int_equal(vmwire_get_diags(&in, &d), -1);
		assert_int_equal(errno, EBADMSG);
		diags_free(&d);
	}
	diags_init(&d);
	vmwire_in_init(&in, ok, sizeof(ok));
	assert_int_equal(vmwire_get_diags(&in, &d), 0);
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.items[0].message, "x");
	diags_free(&d);
}

/* The writer refuses to grow past VMWIRE_MAX. */
static void test_out_cap(void **state)
{
	struct vmwire_out o;
	char *big = malloc(VMWIRE_MAX);

	memset(big, 'a', VMWIRE_MAX - 1);
	big[VMWIRE_MAX - 1] = '\0';
	vmwire_out_init(&o);
	vmwire_put_str(&o, big);
	assert_int_equal(o.err, EMSGSIZE);
	vmwire_out_free(&o);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_raw_bytes),
		cmocka_unit_test(test_diags),
		cmocka_unit_test(test_diags_refused),
		cmocka_unit_test(test_out_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
