/* libFuzzer target: the vmwire reader (src/config/vmwire.c), on what a
 * gatherer child running as a VM directory's owner sends the privileged
 * side.  Input: byte 0 even, a config follows; odd, a diagnostics list.
 * Whatever the reader accepts must be a config the rest of vmhost can use
 * (checked again here on the result) and must encode back to exactly the
 * same bytes; a refusal must say EBADMSG (or ENOMEM).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "config/vmwire.h"

static void fuzz_same(const struct vmwire_out *o, const uint8_t *data,
		      size_t len)
{
	if (o->err || o->len != len || memcmp(o->buf, data, len))
		__builtin_trap();
}

static void fuzz_config(const uint8_t *data, size_t len)
{
	struct vm_config *c = NULL;
	struct vmwire_out o;
	struct vmwire_in in;

	vmwire_in_init(&in, data, len);
	if (vmwire_get_config(&in, &c) < 0 || vmwire_get_end(&in) < 0) {
		if (errno != EBADMSG && errno != ENOMEM)
			__builtin_trap();
		vmconfig_free(c);
		return;
	}
	if (!vmconfig_name_valid(c->name) || c->disk_count == 0 ||
	    c->disk_count > VMCONFIG_DISKS_MAX ||
	    c->share_count > VMCONFIG_SHARES_MAX || c->cpus == 0 ||
	    c->memory < VMCONFIG_MEMORY_MIN || !c->cmdline[0])
		__builtin_trap();
	for (size_t i = 0; i < c->share_count; i++)
		if (!vmconfig_tag_valid(c->shares[i].tag) ||
		    c->shares[i].host_dir[0] != '/')
			__builtin_trap();
	vmwire_out_init(&o);
	vmwire_put_config(&o, c);
	fuzz_same(&o, data, len);
	vmwire_out_free(&o);
	vmconfig_free(c);
}

static void fuzz_diags(const uint8_t *data, size_t len)
{
	struct vmwire_out o;
	struct vmwire_in in;
	struct diags d;
	size_t errors = 0;

	diags_init(&d);
	vmwire_in_init(&in, data, len);
	if (vmwire_get_diags(&in, &d) < 0 || vmwire_get_end(&in) < 0) {
		if (errno != EBADMSG && errno != ENOMEM)
			__builtin_trap();
		diags_free(&d);
		return;
	}
	for (size_t i = 0; i < d.count; i++)
		errors += d.items[i].level == DIAG_ERROR;
	if (errors != d.errors || d.count > VMWIRE_DIAGS_MAX)
		__builtin_trap();
	vmwire_out_init(&o);
	vmwire_put_diags(&o, &d);
	fuzz_same(&o, data, len);
	vmwire_out_free(&o);
	diags_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len == 0)
		return 0;
	if (data[0] % 2 == 0)
		fuzz_config(data + 1, len - 1);
	else
		fuzz_diags(data + 1, len - 1);
	return 0;
}
