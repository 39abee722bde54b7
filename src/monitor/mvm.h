/* The monitor's VMs: gathering a directory, launching, watching and
 * killing a run, handing runs to an engine.  Each operation is a request
 * of the engine (enginep.c), checked there; the answers and every exit go
 * back as messages.
 *
 * A run ends in one place (mvm_gone): once QEMU and every helper are
 * reaped, its links' client taps, sockets and record go, and the engine
 * hears PS_GONE.  When QEMU exits, whatever else of the VM still runs is
 * killed first.
 */
#ifndef VMHOSTD_MONITOR_MVM_H
#define VMHOSTD_MONITOR_MVM_H

#include <stdint.h>

#include "monitor/monitor.h"

struct mvm *mvm_find(struct monitor *m, const char *name, bool create);
/* An empty run: no process, every fd -1. */
void mvm_run_clear(struct vm_run *run);

/* PS_LOAD: gather name's directory, answer PS_LOADED; keep: hold the
 * files for a launch. */
void mvm_load(struct monitor *m, uint32_t seq, const char *name, bool keep);
void mvm_release(struct monitor *m, const char *name);
/* PS_LAUNCH: start what was gathered; answer PS_LAUNCHED. */
void mvm_launch(struct monitor *m, uint32_t seq, const char *name);
/* PS_KILL: kill every process of the run. */
void mvm_kill(struct monitor *m, const char *name);
void mvm_note(struct monitor *m, const struct ps_note *note);
/* PS_LOOKUP */
bool mvm_dir_exists(struct monitor *m, const char *name);

/* A new engine said hello: hand it every run. */
void mvm_adopt_all(struct monitor *m);
/* Watch proc (a process of vm's run) through a dup of its pidfd; ours:
 * our child, reaped with its status. */
void mvm_watch(struct mvm *vm, struct mchild *ch, struct launch_proc *proc,
	       bool ours);
/* Watch every process of vm->run (a launch, or one taken over). */
int mvm_watch_run(struct mvm *vm, bool ours);
/* Forget everything; kill: every run too (exit), else the runs are left
 * as they are (re-exec). */
void mvm_free_all(struct monitor *m, bool kill);

#endif
