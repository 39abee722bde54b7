/* A VM's configuration and diagnostics as JSON, as `vm info` and the
 * engine see them.  Every string that came from the VM directory (disk
 * names, link targets, the command line) is made valid UTF-8 without
 * control characters first, so that no entry is ever dropped for an odd
 * byte and nothing that reaches a terminal can drive it. */
#ifndef VMHOST_VMJSON_H
#define VMHOST_VMJSON_H

#include <jansson.h>

#include "config/vmconfig.h"

/* {"dir", "kernel", "disks": [{"path", "host_path", "guest"}], "shares":
 * [{"tag", "host_dir", "guest"}], "providers", "wayland", "uplink",
 * "memory", "cpus", "cmdline"}; NULL on ENOMEM. */
json_t *vmjson_config(const struct vm_config *cfg);
/* ["NAME: PATH: message", ...] */
json_t *vmjson_diags(const struct diags *diags);
/* A JSON string of s, escaped (text.h) unless it is printable already. */
json_t *vmjson_string(const char *s);

#endif
