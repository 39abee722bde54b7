/* The daemon's log lines and their rate limit.  See log.h. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static const char *log_who = "vmhostd";

void log_role(const char *role)
{
	log_who = role;
}

void daemon_log(const char *fmt, ...)
{
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	va_list ap;

	localtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(stderr, "%s vmhostd[%s]: ", stamp, log_who);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

bool lograte_allow(struct lograte *r, unsigned int burst,
		   unsigned int window_s, unsigned long *dropped)
{
	struct timespec ts;

	*dropped = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec >= r->window + window_s) {
		*dropped = r->dropped;
		r->window = ts.tv_sec;
		r->lines = 0;
		r->dropped = 0;
	}
	if (r->lines >= burst) {
		r->dropped++;
		return false;
	}
	r->lines++;
	return true;
}
