/* Making untrusted text safe to show: in a log line, a JSON string, a
 * terminal.  Guest output, QMP messages and user-chosen file names may
 * hold terminal escapes, invalid UTF-8 or newlines that would forge a log
 * line; these helpers turn any bytes into printable, valid UTF-8.
 */
#ifndef VMHOST_TEXT_H
#define VMHOST_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* text_escape flags */
#define TEXT_ASCII 0u        /* every byte >= 0x7f as \xNN */
#define TEXT_UTF8 1u         /* keep valid UTF-8 characters but C1 controls */

/* A printable copy of len bytes of s: '\' and '"' backslashed, \n and \t
 * spelled so, other control bytes, DEL and (with TEXT_UTF8) invalid UTF-8
 * as \xNN.  Inputs longer than max bytes are cut on a character boundary
 * and end in "...".  Caller frees; NULL with errno ENOMEM. */
char *text_escape(const char *s, size_t len, size_t max, unsigned flags);

/* The length of the longest prefix of s[0..len) that ends on a UTF-8
 * character boundary (never splits a multi-byte sequence). */
size_t text_utf8_cut(const char *s, size_t len);

/* Whether s[0..len) is valid UTF-8 without NUL bytes. */
bool text_utf8_valid(const char *s, size_t len);

/* Whether s[0..len) is safe to print as it is: valid UTF-8, no control
 * characters (C0 but \t, DEL, C1). */
bool text_printable(const char *s, size_t len);

#endif
