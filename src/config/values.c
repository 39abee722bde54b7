/* Names, tags and the values of vmhost's extension files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config/vmconfig.h"

static bool values_charset_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char c = s[n];

		if (n >= max)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

bool vmconfig_name_valid(const char *name)
{
	/* Names end up in paths, QEMU option strings, interface names and
	 * logs: a leading '.' or '-' would read as hidden or as an option. */
	return values_charset_ok(name, VMCONFIG_NAME_MAX) && name[0] != '.' &&
	       name[0] != '-';
}

bool vmconfig_tag_valid(const char *tag)
{
	return values_charset_ok(tag, VMCONFIG_TAG_MAX);
}

int vmconfig_parse_memory(const char *s, uint64_t *bytes, const char **why)
{
	uint64_t n = 0, mult = 1;
	const char *p = s;

	if (*p < '0' || *p > '9') {
		*why = "expected a number of bytes with an optional K, M, G or T suffix, e.g. 256M";
		goto invalid;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > (UINT64_MAX - 9) / 10) {
			*why = "number too large";
			goto invalid;
		}
		n = n * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case 'K': case 'k':
		mult = 1ull << 10;
		break;
	case 'M': case 'm':
		mult = 1ull << 20;
		break;
	case 'G': case 'g':
		mult = 1ull << 30;
		break;
	case 'T': case 't':
		mult = 1ull << 40;
		break;
	case '\0':
		break;
	default:
		*why = "expected a number of bytes with an optional K, M, G or T suffix, e.g. 256M";
		goto invalid;
	}
	if (*p && p[1]) {
		*why = "unexpected characters after the size suffix (write e.g. 256M, not 256MB)";
		goto invalid;
	}
	if (n > VMCONFIG_MEMORY_MAX / mult) {
		*why = "more than the maximum of 256G";
		goto invalid;
	}
	n *= mult;
	if (n < VMCONFIG_MEMORY_MIN) {
		*why = "less than the minimum of 16M (a number without suffix is bytes)";
		goto invalid;
	}
	if (n % (1ull << 20)) {
		*why = "not a whole number of mebibytes";
		goto invalid;
	}
	*bytes = n;
	return 0;
invalid:
	errno = EINVAL;
	return -1;
}

int vmconfig_parse_cpus(const char *s, unsigned int *cpus, const char **why)
{
	unsigned int n = 0;
	const char *p = s;

	*why = "expected a whole number from 1 to 64";
	if (*p < '1' || *p > '9')
		goto invalid;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (unsigned int)(*p - '0');
		if (n > VMCONFIG_CPUS_MAX)
			goto invalid;
	}
	if (*p)
		goto invalid;
	*cpus = n;
	return 0;
invalid:
	errno = EINVAL;
	return -1;
}

int vmconfig_check_cmdline(const char *s, size_t len, const char **why)
{
	if (len == 0) {
		*why = "empty; remove the file to use the default command line";
		goto invalid;
	}
	if (len > VMCONFIG_SETTING_MAX) {
		*why = "longer than 4096 bytes";
		goto invalid;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0') {
			*why = "contains a NUL byte";
			goto invalid;
		}
		if (c == '\n' || c == '\r') {
			*why = "must be a single line";
			goto invalid;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*why = "contains a control character";
			goto invalid;
		}
	}
	return 0;
invalid:
	errno = EINVAL;
	return -1;
}

size_t vmconfig_edit_distance(const char *a, const char *b, size_t cap)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[65], best;

	/* Only short names are worth a hint; long ones are never close. */
	if (la > 64 || lb > 64)
		return cap + 1;
	if ((la > lb ? la - lb : lb - la) > cap)
		return cap + 1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		best = row[0];
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t v = diag + (a[i - 1] != b[j - 1]);

			if (up + 1 < v)
				v = up + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			row[j] = v;
			diag = up;
			if (v < best)
				best = v;
		}
		if (best > cap)
			return cap + 1;
	}
	return row[lb] > cap ? cap + 1 : row[lb];
}
