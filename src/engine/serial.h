/* The serial console log of one VM: STATE/vms/NAME/serial.log, capped,
 * with one older generation in serial.log.1, and one syslog line per
 * guest line when /dev/log exists.  The daemon only ever reads the
 * serial socket: the port is write-only for the guest.
 *
 * The same capped writer, without syslog, keeps QEMU's and virtiofsd's
 * stdout and stderr (qemu.log, virtiofsd.log): they write to a pipe the
 * daemon reads, since a guest that took over either could write to them
 * without end. */
#ifndef VMHOSTD_SERIAL_H
#define VMHOSTD_SERIAL_H

#include <stdbool.h>
#include <stddef.h>

#include "common/loop.h"

#define SERIAL_LOG_CAP (1024 * 1024)
#define SERIAL_LINE_MAX 512 /* longer guest lines are split for syslog */
/* Bytes read per wake-up: a flooding guest must not starve the loop. */
#define SERIAL_READ_BUDGET (64 * 1024)
/* Guest lines sent to syslog per window; the rest are counted, so that a
 * flood cannot fill the host's log partition through syslog either. */
#define SERIAL_SYSLOG_BURST 200
#define SERIAL_SYSLOG_WINDOW_S 10

struct serial {
	struct loop *loop;
	struct loop_source src;
	int log_fd;
	char *path;
	char *path_old;
	size_t size;
	size_t cap;
	bool syslog;
	const char *vm;
	char line[SERIAL_LINE_MAX];
	size_t line_len;
	long long syslog_window; /* start of the rate window, seconds */
	unsigned int syslog_lines;
	unsigned long syslog_dropped;
	/* Every byte also goes here (log followers); may be NULL. */
	void (*tap)(void *arg, const char *data, size_t n);
	void *tap_arg;
};

/* Open dir/name (rotated to dir/name.1) for appending and watch fd
 * (taking it; -1: none) for bytes to log.  vm names the VM in syslog. */
int serial_open(struct serial *s, struct loop *loop, int fd, const char *dir,
		const char *name, const char *vm, size_t cap, bool use_syslog);
/* Append bytes as if the guest sent them (tests, daemon markers). */
void serial_feed(struct serial *s, const char *data, size_t n);
/* Read what is left, then close everything. */
void serial_close(struct serial *s);

#endif
