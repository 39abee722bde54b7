/* The control protocol's operations:
 *
 *   {"op":"list"}                        -> {"ok":true,"vms":[VM...]}
 *   {"op":"info","name":N}               -> {"ok":true,"vm":VM+details}
 *   {"op":"start","name":N}              -> when running: {"ok":true,"vm":VM}
 *   {"op":"stop","name":N,"force":B,"timeout":S}
 *                                        -> when stopped: {"ok":true,"vm":VM}
 *   {"op":"console","name":N}            -> {"ok":true}, then raw bytes
 *   {"op":"log","name":N,"follow":B}     -> {"ok":true}, then the log
 *
 * VM = {"name","state","pid"|null,"since"|null,"reason"|null}.
 * Errors: {"ok":false,"error":MSG[,"diagnostics":["NAME: PATH: ..."]]}.
 */
#ifndef VMHOSTD_REQUEST_H
#define VMHOSTD_REQUEST_H

#include <jansson.h>

#include "engine/control.h"

/* control_request_fn for the engine (arg is the struct engine). */
void request_handle(void *arg, struct client *c, json_t *req);

#endif
