/* Escaping untrusted text for logs, JSON and terminals.  See text.h. */
#include "common/text.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at s (at most len bytes), or 0
 * when it is not one (overlong forms, surrogates and values past U+10FFFF
 * are invalid).  Sets *cp to its code point. */
static size_t text_utf8_seq(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t n, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		n = 2, c &= 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, c &= 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

static bool text_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp < 0xa0);
}

char *text_escape(const char *s, size_t len, size_t max, unsigned flags)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = len < max ? len : max, i = 0, k;
	char *out = malloc(n * 4 + 4), *o = out;
	uint32_t cp;

	if (!out)
		return NULL;
	if (flags & TEXT_UTF8)
		n = text_utf8_cut(s, n);
	while (i < n) {
		k = (flags & TEXT_UTF8) ? text_utf8_seq(u + i, n - i, &cp) : 1;
		if (k > 1 && !text_control(cp)) {
			memcpy(o, u + i, k);
			o += k;
			i += k;
			continue;
		}
		if (u[i] == '\\' || u[i] == '"') {
			*o++ = '\\';
			*o++ = (char)u[i];
		} else if (u[i] == '\n') {
			o = stpcpy(o, "\\n");
		} else if (u[i] == '\t') {
			o = stpcpy(o, "\\t");
		} else if (u[i] < 0x20 || u[i] >= 0x7f) {
			o += sprintf(o, "\\x%02x", u[i]);
		} else {
			*o++ = (char)u[i];
		}
		i++;
	}
	if (len > n)
		o = stpcpy(o, "...");
	*o = '\0';
	return out;
}

size_t text_utf8_cut(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t start = len, need;

	/* Back up over continuation bytes to the last lead byte. */
	while (start > 0 && len - start < 4 && (u[start - 1] & 0xc0) == 0x80)
		start--;
	if (start == 0)
		return len && (u[0] & 0xc0) == 0x80 ? len : 0;
	start--;
	if (u[start] < 0x80)
		return len;
	need = (u[start] & 0xe0) == 0xc0 ? 2 : (u[start] & 0xf0) == 0xe0 ? 3 :
	       (u[start] & 0xf8) == 0xf0 ? 4 : 1;
	/* A complete (or invalid, so unsplittable) last sequence stays. */
	return len - start >= need ? len : start;
}

bool text_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k;
	uint32_t cp;

	while (i < len) {
		k = text_utf8_seq(u + i, len - i, &cp);
		if (!k || !cp)
			return false;
		i += k;
	}
	return true;
}

bool text_printable(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k;
	uint32_t cp;

	while (i < len) {
		k = text_utf8_seq(u + i, len - i, &cp);
		if (!k || (text_control(cp) && cp != '\t'))
			return false;
		i += k;
	}
	return true;
}
