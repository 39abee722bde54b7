/* VM configurations and diagnostics as JSON.  See vmjson.h. */
#include "config/vmjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/text.h"

#define VMJSON_STRING_MAX 1024

json_t *vmjson_string(const char *s)
{
	size_t len = strlen(s);
	json_t *j;
	char *e;

	if (len <= VMJSON_STRING_MAX && text_printable(s, len))
		return json_stringn(s, len);
	e = text_escape(s, len, VMJSON_STRING_MAX, TEXT_UTF8);
	j = e ? json_string(e) : NULL;
	free(e);
	return j;
}

json_t *vmjson_config(const struct vm_config *cfg)
{
	json_t *disks = json_array(), *shares = json_array();
	json_t *providers = json_array();
	char guest[16];
	size_t i;

	for (i = 0; i < cfg->disk_count; i++) {
		snprintf(guest, sizeof guest, "/dev/vd%c",
			 (char)('a' + (i < 26 ? i : 25)));
		json_array_append_new(disks, json_pack("{s:o,s:o,s:s}",
			"path", vmjson_string(cfg->disks[i].relpath),
			"host_path", vmjson_string(cfg->disks[i].path),
			"guest", guest));
	}
	for (i = 0; i < cfg->share_count; i++)
		json_array_append_new(shares, json_pack("{s:s,s:o,s:s+}",
			"tag", cfg->shares[i].tag,
			"host_dir", vmjson_string(cfg->shares[i].host_dir),
			"guest", "/run/virtiofs/", cfg->shares[i].tag));
	for (i = 0; i < cfg->provider_count; i++)
		json_array_append_new(providers, json_string(cfg->providers[i]));
	return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:b,s:b,s:I,s:i,s:o}",
		"name", cfg->name,
		"dir", vmjson_string(cfg->dir), "kernel", vmjson_string(cfg->kernel),
		"disks", disks, "shares", shares, "providers", providers,
		"wayland", cfg->wayland, "uplink", cfg->uplink,
		"memory", (json_int_t)cfg->memory, "cpus", (int)cfg->cpus,
		"cmdline", vmjson_string(cfg->cmdline ? cfg->cmdline : ""));
}

json_t *vmjson_diags(const struct diags *diags)
{
	json_t *a = json_array();
	char *line;

	for (size_t i = 0; a && i < diags->count; i++) {
		line = diag_format(&diags->items[i]);
		if (!line)
			continue;
		json_array_append_new(a, vmjson_string(line));
		free(line);
	}
	return a;
}
