/* libFuzzer target: the VM directory loader on a tree built from the input.
 *
 * The input is a sequence of entries, each
 *   type (1 byte) | path length (1) | path | data length (2, LE) | data
 * with type % 5: 0 file (data = contents), 1 directory, 2 symbolic link
 * (data = target, anything), 3 FIFO, 4 sparse file (size = data's first
 * 8 bytes LE).  Paths are relative to the data root D; the config root is
 * D/c.  Components "", "." and ".." are skipped and parents are walked
 * with O_NOFOLLOW, so the tree never leaves its private directory however
 * the links point.  Then every name vmconfig_list finds is loaded, its
 * diagnostics formatted, and everything freed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/vmconfig.h"

static char fuzz_dir[64];
static char fuzz_data[96];
static char fuzz_config[112];

static int fuzz_rm(const char *path, const struct stat *st, int flag,
		   struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void fuzz_clean(void)
{
	nftw(fuzz_data, fuzz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* The fd of the directory that will hold the last component, creating the
 * ones before it; -1 when a component is a link or not a directory. */
static int fuzz_parent(char *path, char **leaf)
{
	char *p = path, *slash;
	int dfd = open(fuzz_data, O_DIRECTORY | O_RDONLY | O_CLOEXEC), next;

	for (;;) {
		while (*p == '/')
			p++;
		slash = strchr(p, '/');
		if (!slash)
			break;
		*slash = '\0';
		if (*p && strcmp(p, ".") && strcmp(p, "..")) {
			mkdirat(dfd, p, 0755);
			next = openat(dfd, p, O_DIRECTORY | O_NOFOLLOW |
				      O_RDONLY | O_CLOEXEC);
			close(dfd);
			if (next < 0)
				return -1;
			dfd = next;
		}
		p = slash + 1;
	}
	if (!*p || !strcmp(p, ".") || !strcmp(p, "..")) {
		close(dfd);
		return -1;
	}
	*leaf = p;
	return dfd;
}

static void fuzz_entry(unsigned type, char *path, const uint8_t *data,
		       size_t n)
{
	char target[4096];
	uint64_t size = 0;
	char *leaf;
	int dfd = fuzz_parent(path, &leaf), fd;

	if (dfd < 0)
		return;
	switch (type % 5) {
	case 0:
	case 4:
		fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL |
			    O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0)
			break;
		if (type % 5 == 0) {
			if (write(fd, data, n) < 0) {
				/* A short tree is still a tree. */
			}
		} else {
			memcpy(&size, data, n < 8 ? n : 8);
			/* Up to 1 TiB, never written. */
			if (ftruncate(fd, (off_t)(size & ((1ull << 40) - 1))) < 0) {
				/* Same. */
			}
		}
		close(fd);
		break;
	case 1:
		mkdirat(dfd, leaf, 0755);
		break;
	case 2:
		memcpy(target, data, n);
		target[n] = '\0';
		symlinkat(n ? target : ".", dfd, leaf);
		break;
	case 3:
		mkfifoat(dfd, leaf, 0644);
		break;
	}
	close(dfd);
}

static void fuzz_build(const uint8_t *in, size_t len)
{
	char path[256];
	size_t pl, dl;
	unsigned type;

	mkdir(fuzz_data, 0755);
	mkdir(fuzz_config, 0755);
	while (len >= 2) {
		type = in[0];
		pl = in[1];
		if (len < 2 + pl + 2)
			break;
		memcpy(path, in + 2, pl);
		path[pl] = '\0';
		dl = (size_t)in[2 + pl] | (size_t)in[3 + pl] << 8;
		in += 4 + pl;
		len -= 4 + pl;
		if (dl > len)
			dl = len;
		if (dl > 4095)
			dl = 4095;
		/* A NUL ends the name, as it would for any program. */
		if (strlen(path) == pl)
			fuzz_entry(type, path, in, dl);
		in += dl;
		len -= dl;
	}
}

static void fuzz_exit(void)
{
	fuzz_clean();
	rmdir(fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("FUZZ_TMPDIR");

	snprintf(fuzz_dir, sizeof fuzz_dir, "%s/vmhost-fuzz-XXXXXX",
		 tmp ? tmp : "/dev/shm");
	if (!mkdtemp(fuzz_dir)) {
		perror(fuzz_dir);
		exit(1);
	}
	snprintf(fuzz_data, sizeof fuzz_data, "%s/d", fuzz_dir);
	snprintf(fuzz_config, sizeof fuzz_config, "%s/c", fuzz_data);
	atexit(fuzz_exit);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len)
{
	struct vmconfig_roots roots = { fuzz_config, fuzz_data };
	struct vm_config *cfg;
	struct diags diags;
	char **names = NULL;
	size_t count = 0, i, j;
	char *line;

	fuzz_clean();
	fuzz_build(in, len);
	if (vmconfig_list(fuzz_config, &names, &count) == 0) {
		for (i = 0; i < count; i++) {
			diags_init(&diags);
			cfg = NULL;
			if (vmconfig_load(&roots, names[i], &cfg, &diags) == 0)
				vmconfig_free(cfg);
			for (j = 0; j < diags.count; j++) {
				line = diag_format(&diags.items[j]);
				free(line);
			}
			diags_free(&diags);
		}
		vmconfig_list_free(names, count);
	}
	fuzz_clean();
	return 0;
}
