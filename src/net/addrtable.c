#include "net/addrtable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomicfile.h"
#include "common/linkaddr.h"

#define ADDRTABLE_NAME_MAX 64
#define ADDRTABLE_IDS 65536u
/* "ffff " + two names + ' ' + '\n', with room to say "too long". */
#define ADDRTABLE_LINE_MAX (5 + 2 * ADDRTABLE_NAME_MAX + 2)

struct addrtable_link {
	uint16_t id;
	uint32_t hash;
	char *client;   /* one allocation: "client\0provider\0" */
	char *provider;
};

struct addrtable {
	char *path;
	struct addrtable_link *links;
	size_t count;
	size_t capacity;
	uint32_t *by_id;    /* ADDRTABLE_IDS slots: index + 1, 0 if free */
	uint32_t *by_pair;  /* open addressing on hash: index + 1, 0 if empty */
	size_t pair_slots;  /* power of two, at least twice count */
};

bool addrtable_name_valid(const char *name)
{
	size_t len = strnlen(name, ADDRTABLE_NAME_MAX + 1);

	if (len == 0 || len > ADDRTABLE_NAME_MAX || name[0] == '.' ||
	    name[0] == '-')
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

/* FNV-1a over "client\0provider": part of the id scheme, keep it fixed. */
static uint32_t addrtable_hash(const char *client, const char *provider)
{
	uint32_t h = 2166136261u;

	for (const char *p = client;; p++) {
		h = (h ^ (uint8_t)*p) * 16777619u;
		if (!*p)
			break;
	}
	for (const char *p = provider; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h;
}

static int addrtable_check_pair(const char *client, const char *provider)
{
	if (!addrtable_name_valid(client) || !addrtable_name_valid(provider) ||
	    !strcmp(client, provider)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* The index of (client, provider) in links, or -1. */
static long addrtable_find(const struct addrtable *t, const char *client,
			   const char *provider, uint32_t hash)
{
	size_t mask = t->pair_slots - 1;

	if (!t->pair_slots)
		return -1;
	for (size_t s = hash & mask;; s = (s + 1) & mask) {
		uint32_t slot = t->by_pair[s];
		const struct addrtable_link *l;

		if (!slot)
			return -1;
		l = &t->links[slot - 1];
		if (l->hash == hash && !strcmp(l->client, client) &&
		    !strcmp(l->provider, provider))
			return (long)slot - 1;
	}
}

static void addrtable_pair_put(struct addrtable *t, size_t index)
{
	size_t mask = t->pair_slots - 1;
	size_t s = t->links[index].hash & mask;

	while (t->by_pair[s])
		s = (s + 1) & mask;
	t->by_pair[s] = (uint32_t)index + 1;
}

/* Rebuild the pair index with room for want links. */
static int addrtable_reindex(struct addrtable *t, size_t want)
{
	size_t slots = t->pair_slots ? t->pair_slots : 64;
	uint32_t *by_pair;

	while (slots < 2 * want)
		slots *= 2;
	by_pair = calloc(slots, sizeof(*by_pair));
	if (!by_pair)
		return -1;
	free(t->by_pair);
	t->by_pair = by_pair;
	t->pair_slots = slots;
	for (size_t i = 0; i < t->count; i++)
		addrtable_pair_put(t, i);
	return 0;
}

/* Add a link known to be new, with a free, valid id. */
static int addrtable_insert(struct addrtable *t, const char *client,
			    const char *provider, uint32_t hash, uint16_t id)
{
	size_t clen = strlen(client), plen = strlen(provider);
	struct addrtable_link *l;
	char *names;

	if (t->count == t->capacity) {
		size_t cap = t->capacity ? 2 * t->capacity : 16;
		void *p = reallocarray(t->links, cap, sizeof(*t->links));

		if (!p)
			return -1;
		t->links = p;
		t->capacity = cap;
	}
	if (2 * (t->count + 1) > t->pair_slots &&
	    addrtable_reindex(t, t->count + 1) == -1)
		return -1;
	names = malloc(clen + plen + 2);
	if (!names)
		return -1;
	memcpy(names, client, clen + 1);
	memcpy(names + clen + 1, provider, plen + 1);

	l = &t->links[t->count];
	l->id = id;
	l->hash = hash;
	l->client = names;
	l->provider = names + clen + 1;
	t->by_id[id] = (uint32_t)t->count + 1;
	addrtable_pair_put(t, t->count);
	t->count++;
	return 0;
}

static struct addrtable *addrtable_new(const char *path)
{
	struct addrtable *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->path = strdup(path);
	t->by_id = calloc(ADDRTABLE_IDS, sizeof(*t->by_id));
	if (!t->path || !t->by_id) {
		addrtable_free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

void addrtable_free(struct addrtable *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->count; i++)
		free(t->links[i].client);
	free(t->links);
	free(t->by_id);
	free(t->by_pair);
	free(t->path);
	free(t);
}

static int addrtable_damaged(struct addrtable_error *err, unsigned long line,
			     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int addrtable_damaged(struct addrtable_error *err, unsigned long line,
			     const char *fmt, ...)
{
	va_list ap;

	if (err) {
		err->line = line;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	errno = EBADMSG;
	return -1;
}

static int addrtable_hex4(const char *s, uint16_t *id)
{
	unsigned int v = 0;

	for (int i = 0; i < 4; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			v = v << 4 | (unsigned int)(s[i] - '0');
		else if (s[i] >= 'a' && s[i] <= 'f')
			v = v << 4 | (unsigned int)(s[i] - 'a' + 10);
		else
			return -1;
	}
	*id = (uint16_t)v;
	return 0;
}

/* One line, without its '\n'. */
static int addrtable_parse_line(struct addrtable *t, char *line,
				unsigned long lineno,
				struct addrtable_error *err)
{
	char *client, *provider;
	uint16_t id;
	uint32_t hash;

	if (addrtable_hex4(line, &id) == -1 || line[4] != ' ')
		return addrtable_damaged(err, lineno,
			"expected \"ID CLIENT PROVIDER\" with ID four lowercase hex digits");
	if (!linkaddr_id_valid(id))
		return addrtable_damaged(err, lineno,
					 "id %04x is never assigned", id);
	client = line + 5;
	provider = strchr(client, ' ');
	if (!provider)
		return addrtable_damaged(err, lineno, "missing provider name");
	*provider++ = '\0';
	if (!addrtable_name_valid(client))
		return addrtable_damaged(err, lineno,
					 "invalid client VM name");
	if (!addrtable_name_valid(provider))
		return addrtable_damaged(err, lineno,
					 "invalid provider VM name");
	if (!strcmp(client, provider))
		return addrtable_damaged(err, lineno,
					 "VM %s cannot provide for itself", client);
	if (t->by_id[id])
		return addrtable_damaged(err, lineno, "id %04x is used twice", id);
	hash = addrtable_hash(client, provider);
	if (addrtable_find(t, client, provider, hash) != -1)
		return addrtable_damaged(err, lineno,
					 "link %s -> %s is listed twice",
					 client, provider);
	return addrtable_insert(t, client, provider, hash, id);
}

int addrtable_load(const char *path, struct addrtable **out,
		   struct addrtable_error *err)
{
	struct addrtable *t;
	unsigned long lineno = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int saved;

	if (err) {
		err->line = 0;
		err->message[0] = '\0';
	}
	t = addrtable_new(path);
	if (!t)
		return -1;
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT) {
			*out = t;
			return 0;
		}
		goto fail;
	}
	errno = 0;
	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		if ((size_t)len != strlen(line)) {
			addrtable_damaged(err, lineno, "NUL byte");
			goto fail;
		}
		/* rename() is atomic, so a short last line is damage. */
		if (line[len - 1] != '\n') {
			addrtable_damaged(err, lineno, "truncated last line");
			goto fail;
		}
		line[--len] = '\0';
		if (len > ADDRTABLE_LINE_MAX) {
			addrtable_damaged(err, lineno, "line too long");
			goto fail;
		}
		if (len == 0 || line[0] == '#')
			continue;
		if (addrtable_parse_line(t, line, lineno, err) == -1)
			goto fail;
	}
	if (ferror(f)) {
		if (!errno)
			errno = EIO;
		goto fail;
	}
	fclose(f);
	free(line);
	*out = t;
	return 0;
fail:
	saved = errno;
	if (f)
		fclose(f);
	free(line);
	addrtable_free(t);
	errno = saved;
	return -1;
}

static int addrtable_write(FILE *f, void *arg)
{
	const struct addrtable *t = arg;

	fputs("# vmhost link ids: ID CLIENT PROVIDER (docs/networking.md)\n", f);
	for (uint32_t id = 1; id < ADDRTABLE_IDS - 1; id++) {
		const struct addrtable_link *l;

		if (!t->by_id[id])
			continue;
		l = &t->links[t->by_id[id] - 1];
		fprintf(f, "%04x %s %s\n", l->id, l->client, l->provider);
	}
	return ferror(f) ? -1 : 0;
}

int addrtable_save(const struct addrtable *t)
{
	/* Durable: a link's address must not change after a power loss. */
	return atomicfile_write(t->path, true, addrtable_write, (void *)t);
}

/* The pair's index in t->links; -1 with errno EINVAL (bad names) or
 * ENOENT. */
static long addrtable_index(const struct addrtable *t, const char *client,
			    const char *provider)
{
	long i;

	if (addrtable_check_pair(client, provider) == -1)
		return -1;
	i = addrtable_find(t, client, provider, addrtable_hash(client, provider));
	if (i == -1)
		errno = ENOENT;
	return i;
}

int addrtable_lookup(const struct addrtable *t, const char *client,
		     const char *provider, uint16_t *id)
{
	long i;

	i = addrtable_index(t, client, provider);
	if (i == -1)
		return -1;
	*id = t->links[i].id;
	return 0;
}

int addrtable_find_id(const struct addrtable *t, uint16_t id,
		      const char **client, const char **provider)
{
	const struct addrtable_link *l;

	if (!t->by_id[id]) {
		errno = ENOENT;
		return -1;
	}
	l = &t->links[t->by_id[id] - 1];
	*client = l->client;
	*provider = l->provider;
	return 0;
}

int addrtable_assign(struct addrtable *t, const char *client,
		     const char *provider, uint16_t *id, bool *created)
{
	uint32_t hash;
	uint16_t next;
	long i;

	if (addrtable_check_pair(client, provider) == -1)
		return -1;
	hash = addrtable_hash(client, provider);
	i = addrtable_find(t, client, provider, hash);
	if (i != -1) {
		*id = t->links[i].id;
		*created = false;
		return 0;
	}
	if (t->count >= ADDRTABLE_MAX_LINKS) {
		errno = ENOSPC;
		return -1;
	}
	/* Fold the hash to 16 bits and probe up to the first free id; one
	 * exists, since count < 65,534. */
	next = (uint16_t)(hash ^ hash >> 16);
	while (!linkaddr_id_valid(next) || t->by_id[next])
		next++;
	if (addrtable_insert(t, client, provider, hash, next) == -1)
		return -1;
	*id = next;
	*created = true;
	return 0;
}

int addrtable_remove(struct addrtable *t, const char *client,
		     const char *provider)
{
	long i;

	i = addrtable_index(t, client, provider);
	if (i == -1)
		return -1;
	t->by_id[t->links[i].id] = 0;
	free(t->links[i].client);
	/* Move the last link into the hole, then rebuild the pair index
	 * (open addressing has no cheap delete; removals are rare). */
	if ((size_t)i != t->count - 1) {
		t->links[i] = t->links[t->count - 1];
		t->by_id[t->links[i].id] = (uint32_t)i + 1;
	}
	t->count--;
	memset(t->by_pair, 0, t->pair_slots * sizeof(*t->by_pair));
	for (size_t j = 0; j < t->count; j++)
		addrtable_pair_put(t, j);
	return 0;
}

int addrtable_acquire(struct addrtable *t, const char *client,
		      const char *provider, uint16_t *id)
{
	bool created;
	int saved;

	if (addrtable_assign(t, client, provider, id, &created) == -1)
		return -1;
	if (!created || addrtable_save(t) == 0)
		return 0;
	saved = errno;
	addrtable_remove(t, client, provider);
	errno = saved;
	return -1;
}

int addrtable_release(struct addrtable *t, const char *client,
		      const char *provider)
{
	uint16_t id;
	int saved;

	if (addrtable_lookup(t, client, provider, &id) == -1 ||
	    addrtable_remove(t, client, provider) == -1)
		return -1;
	if (addrtable_save(t) == 0)
		return 0;
	saved = errno;
	/* Cannot fail for want of room: the slot was just freed. */
	addrtable_insert(t, client, provider,
			 addrtable_hash(client, provider), id);
	errno = saved;
	return -1;
}

size_t addrtable_count(const struct addrtable *t)
{
	return t->count;
}

void addrtable_entry(const struct addrtable *t, size_t i, uint16_t *id,
		     const char **client, const char **provider)
{
	*id = t->links[i].id;
	*client = t->links[i].client;
	*provider = t->links[i].provider;
}
