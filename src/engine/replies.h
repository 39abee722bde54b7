/* The answers that show a VM rather than change it: list, info, log and
 * console. */
#ifndef VMHOSTD_ENGINE_REPLIES_H
#define VMHOSTD_ENGINE_REPLIES_H

#include <stdbool.h>

#include "engine/control.h"

struct engine;
struct vm;

void replies_list(struct engine *e, struct client *c);
/* Detail for one VM: its configuration (gathered anew by the monitor
 * when it is not running), devices, links. */
void replies_info(struct engine *e, struct vm *vm, struct client *c);
/* Stream the serial log to c; with follow, keep sending new output. */
void replies_log(struct engine *e, struct vm *vm, struct client *c,
		 bool follow);
void replies_console(struct engine *e, struct vm *vm, struct client *c);

#endif
