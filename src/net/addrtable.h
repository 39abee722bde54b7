/* The host's table of inter-VM links: (client VM, provider VM) -> link id.
 *
 * The id X:Y (16 bits) gives the client's MAC 0A:B3:EC:00:X:Y, the
 * provider's 0A:B3:EC:80:X:Y and the client's address 100.64.X.Y
 * (common/linkaddr.h).  Ids are unique on the host, never 0000 or ffff,
 * and stable: a pair keeps its id for as long as it stays in the table,
 * across restarts of either VM and of the daemon, because the table is
 * saved (atomically) before an id is handed out.
 *
 * A new pair's id starts at a hash of the two names and probes upwards to
 * the first free id, so that a pair mostly gets the same id back even if
 * the table is lost, and adding one VM never renumbers another.
 *
 * File (STATE/links): one link a line, "ID CLIENT PROVIDER\n", ID four
 * lowercase hex digits, names as for VM directories; '#' comments and
 * blank lines are ignored.  Sorted by id when written.
 *
 * One writer: the daemon.  Not thread-safe.
 */
#ifndef VMHOST_NET_ADDRTABLE_H
#define VMHOST_NET_ADDRTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADDRTABLE_MAX_LINKS 65534u /* every id but 0000 and ffff */

struct addrtable;

/* Why a load failed: line is the 1-based line of a damaged file (0 for a
 * system error) and message says what is wrong with it. */
struct addrtable_error {
	unsigned long line;
	char message[160];
};

/* Whether name can be a VM name: 1 to 64 of [A-Za-z0-9._-], not starting
 * with '.' or '-' (the rule of config/vmconfig.h). */
bool addrtable_name_valid(const char *name);

/* Load the table saved at path; a missing file is an empty table.  A
 * damaged file is refused, never repaired: -1 with errno EBADMSG and
 * err->line, err->message set.  Other failures: -1 with errno (ENOMEM,
 * EACCES...).  err may be NULL. */
int addrtable_load(const char *path, struct addrtable **out,
		   struct addrtable_error *err);
void addrtable_free(struct addrtable *t);

/* Write the table to its path: temp file, fsync, rename, fsync of the
 * directory.  On failure the old file is intact and no temp file stays. */
int addrtable_save(const struct addrtable *t);

/* The id of (client, provider); -1 with errno ENOENT if none, EINVAL for
 * a bad name. */
int addrtable_lookup(const struct addrtable *t, const char *client,
		     const char *provider, uint16_t *id);

/* The pair that has id; the strings live as long as the entry. */
int addrtable_find_id(const struct addrtable *t, uint16_t id,
		      const char **client, const char **provider);

/* In memory only: the id of (client, provider), allocated if new
 * (*created true).  -1 with errno EINVAL (bad name, client == provider),
 * ENOSPC (all 65,534 ids in use) or ENOMEM. */
int addrtable_assign(struct addrtable *t, const char *client,
		     const char *provider, uint16_t *id, bool *created);

/* In memory only: forget (client, provider).  ENOENT if absent. */
int addrtable_remove(struct addrtable *t, const char *client,
		     const char *provider);

/* What the daemon calls: addrtable_assign, then addrtable_save if the
 * id is new, undone in memory if the save fails (so an id is never used
 * before it is on disk). */
int addrtable_acquire(struct addrtable *t, const char *client,
		      const char *provider, uint16_t *id);

/* addrtable_remove, then addrtable_save, undone if the save fails. */
int addrtable_release(struct addrtable *t, const char *client,
		      const char *provider);

/* Walk: entries 0..count-1 in no particular order.  Removing invalidates
 * the order. */
size_t addrtable_count(const struct addrtable *t);
void addrtable_entry(const struct addrtable *t, size_t i, uint16_t *id,
		     const char **client, const char **provider);

#endif
