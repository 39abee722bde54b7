/* The start-path trace: CLOCK_MONOTONIC timestamps of each phase of one VM
 * start, from the request to the guest's ready line, so that `vm info
 * --json` (start_trace) and the bench can say where a start's time went.
 * Each phase is marked where it happens: the engine marks the request,
 * the loaded configuration, QMP and the serial console; the monitor's
 * launch (vmm/launch.c) marks files, helpers and QEMU's exec in a trace of
 * its own and sends those marks with PS_LAUNCHED (CLOCK_MONOTONIC is the
 * same clock in both processes).  A phase marked twice keeps its first
 * time, one never reached stays unset (null in JSON). */
#ifndef VMHOST_TRACE_H
#define VMHOST_TRACE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* What the guest kit's init prints on the serial console once the user's
 * shell on hvc0 exists (guest/rootfs/common/etc/init.d/console). */
#define START_TRACE_READY_LINE "vmhost-guest: ready"

enum start_phase {
	START_ACCEPTED,       /* the start request reached the VM's record */
	START_CONFIG_LOADED,  /* VM directory loaded and checked */
	START_FILES_OPENED,   /* the monitor has what the run needs: the
			       * gathered files, taps, cgroup, sockets */
	START_HELPERS_SPAWNED, /* every virtiofsd and passt exec'd (each
				* serves QEMU's already-connected socket: no
				* wait here) */
	START_QEMU_EXEC,      /* QEMU exec'd */
	START_QMP_GREETING,   /* QEMU finished its set-up: QMP greets */
	START_QMP_READY,      /* QMP reports the guest running (after "cont":
			       * QEMU starts paused): vm start returns */
	START_FIRST_SERIAL,   /* first byte on the serial console */
	START_READY_LINE,     /* START_TRACE_READY_LINE seen on the serial console */
	START_PHASES
};

struct start_trace {
	uint64_t ns[START_PHASES]; /* 0: not reached */
	size_t ready_matched;      /* bytes of the ready line matched so far */
};

/* A new start: forget the last one, mark START_ACCEPTED now. */
void start_trace_begin(struct start_trace *t);
/* Mark phase now, unless it is marked already or no start has begun. */
void start_trace_mark(struct start_trace *t, enum start_phase phase);
/* The marks of t but START_ACCEPTED, to send to another process:
 * {phase: ns}, unmarked phases left out.  NULL on allocation failure. */
json_t *start_trace_marks(const struct start_trace *t);
/* Take marks made in another process ({phase: ns} as start_trace_marks
 * gives; CLOCK_MONOTONIC is one clock for every process): each as
 * start_trace_mark would, and only if it lies between the start and now.
 * Anything else in marks is ignored (it comes from another process). */
void start_trace_take(struct start_trace *t, const json_t *marks);
/* Serial bytes from the guest: marks START_FIRST_SERIAL and, once the
 * ready line went by (in any number of pieces), START_READY_LINE. */
void start_trace_serial(struct start_trace *t, const char *data, size_t n);
/* The phase's name in JSON ("config_loaded"). */
const char *start_trace_name(enum start_phase phase);
/* {"monotonic_ns": {phase: ns|null}, "ms": {phase: ms after accepted|null}};
 * JSON null if no start has begun.  NULL on allocation failure. */
json_t *start_trace_json(const struct start_trace *t);

#endif
