/* The daemon's own log: one time-stamped line per event on stderr (a file
 * in the state directory once vmhostd detaches), naming the process's role
 * (monitor or engine).  Lines that quote what a guest, QEMU or a VM
 * directory's owner chose go through text_escape first, and sources that
 * can repeat without end (QMP events) through a struct lograte.
 */
#ifndef VMHOST_LOG_H
#define VMHOST_LOG_H

#include <stdbool.h>

/* Name the role in every line ("monitor", "engine"). */
void log_role(const char *role);
void daemon_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* At most burst lines per window_s seconds from one source. */
struct lograte {
	long long window;        /* start of the current window, seconds */
	unsigned int lines;      /* lines let through in it */
	unsigned long dropped;   /* lines held back in it */
};

/* Whether one more line may go now.  When a new window starts after lines
 * were held back, *dropped gets their count (else 0), for one summary
 * line. */
bool lograte_allow(struct lograte *r, unsigned int burst,
		   unsigned int window_s, unsigned long *dropped);

#endif
