/* vmwire: a VM's config (struct vm_config) and a list of diagnostics
 * (struct diags) as bytes, for one process to hand them to another.
 *
 * The reader is the privileged side and the writer is not trusted (the
 * gatherer's child runs as a VM directory's owner, gather.h), so every
 * get validates everything: lengths and counts within the limits below,
 * no NUL inside a string, names, tags and relative paths as the loader
 * makes them, sorted and unique lists, memory and cpus in range, paths
 * consistent with the VM's directory, diagnostics printable ASCII.
 * Whatever a get accepts, a put writes back byte for byte (the fuzz
 * target checks it), and nothing a valid config can hold is refused.
 *
 * Encoding: little-endian u8/u32/u64; a string is its u32 length and its
 * bytes (no terminator).  A config starts with the magic "VMC1", a diags
 * list with "VMD1".  Primitives are exported so that a message can carry
 * other fields around these (gather.c does).
 */
#ifndef VMHOST_VMWIRE_H
#define VMHOST_VMWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "config/vmconfig.h"

#define VMWIRE_MAX (1u << 20)            /* bytes in one buffer */
#define VMWIRE_PATH_MAX 4096             /* bytes in a path, as PATH_MAX */
#define VMWIRE_DIAGS_MAX 1024            /* items in a diags list */
#define VMWIRE_DIAGS_BYTES (256u << 10)  /* what a diags list may take */
#define VMWIRE_MESSAGE_MAX 8192          /* bytes in one diagnostic's text */

struct vmwire_out {
	unsigned char *buf;
	size_t len;
	size_t cap;
	int err;   /* first failure: ENOMEM, EMSGSIZE (past VMWIRE_MAX) or
		    * EINVAL (a value no reader would accept) */
};

void vmwire_out_init(struct vmwire_out *o);
void vmwire_out_free(struct vmwire_out *o);
/* Each put appends, or latches o->err and does nothing more. */
void vmwire_put_u8(struct vmwire_out *o, uint8_t v);
void vmwire_put_u32(struct vmwire_out *o, uint32_t v);
void vmwire_put_u64(struct vmwire_out *o, uint64_t v);
void vmwire_put_str(struct vmwire_out *o, const char *s);
void vmwire_put_config(struct vmwire_out *o, const struct vm_config *cfg);
/* Items that do not fit VMWIRE_DIAGS_MAX or VMWIRE_DIAGS_BYTES are
 * replaced by one summary ("N more problems not shown") as severe as the
 * worst of them; text that is not printable ASCII is sent with '?'. */
void vmwire_put_diags(struct vmwire_out *o, const struct diags *d);

struct vmwire_in {
	const unsigned char *p;
	size_t len;
	size_t off;
};

void vmwire_in_init(struct vmwire_in *in, const void *p, size_t len);
/* Each get returns 0, or -1 with errno EBADMSG (truncated, out of range,
 * malformed) or ENOMEM; in->off is then meaningless. */
int vmwire_get_u8(struct vmwire_in *in, uint8_t *v);
int vmwire_get_u32(struct vmwire_in *in, uint32_t *v);
int vmwire_get_u64(struct vmwire_in *in, uint64_t *v);
/* A string of at most max bytes without NUL, malloc'd and terminated. */
int vmwire_get_str(struct vmwire_in *in, size_t max, char **s);
/* A fully validated config (see the top of this file); free with
 * vmconfig_free. */
int vmwire_get_config(struct vmwire_in *in, struct vm_config **cfg);
/* Appends the items to d (initialised by the caller). */
int vmwire_get_diags(struct vmwire_in *in, struct diags *d);
/* 0 if every byte was read, else -1 with errno EBADMSG. */
int vmwire_get_end(const struct vmwire_in *in);

#endif
