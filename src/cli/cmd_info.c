/* vm info NAME [--json]: configuration, state, process, devices. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/client.h"
#include "cli/cli.h"

static const char *info_str(json_t *o, const char *key)
{
	return cli_str(o, key);
}

/* One inter-VM link: the peer, addresses, host interfaces, state. */
static void info_link(json_t *l)
{
	json_t *ifs = json_object_get(l, "interfaces");
	bool client = !strcmp(info_str(l, "role"), "client");

	printf("%s %s %s: %s", client ? "link:     " : "serves:   ",
	       client ? "to" : "client", info_str(l, client ? "provider" : "client"),
	       info_str(l, "state"));
	if (json_is_string(json_object_get(l, "ipv4")))
		printf(", %s, client MAC %s, provider MAC %s, host %s %s %s",
		       info_str(l, "ipv4"), info_str(l, "client_mac"),
		       info_str(l, "provider_mac"), info_str(ifs, "bridge"),
		       info_str(ifs, "client_tap"), info_str(ifs, "provider_tap"));
	else
		printf(", no address yet (assigned at first start)");
	if (json_is_string(json_object_get(l, "reason")))
		printf(" (%s)", info_str(l, "reason"));
	putchar('\n');
}

/* The last start's phases, in ms after the request (trace.h). */
static void info_trace(json_t *trace)
{
	json_t *ms = json_object_get(trace, "ms"), *v;
	const char *phase;
	bool first = true;

	if (!json_is_object(ms))
		return;
	printf("start:     ");
	json_object_foreach(ms, phase, v) {
		if (!json_is_number(v) || !strcmp(phase, "accepted"))
			continue;
		printf("%s%s +%.1f ms", first ? "" : ", ", phase,
		       json_number_value(v));
		first = false;
	}
	printf("%s\n", first ? "request accepted, no phase since" : "");
}

static void info_print(json_t *vm)
{
	json_t *cfg = json_object_get(vm, "config"), *a, *x;
	char since[32] = "-";
	struct tm tm;
	time_t t;
	size_t i;

	printf("name:      %s\n", info_str(vm, "name"));
	if (json_is_integer(json_object_get(vm, "since"))) {
		t = (time_t)json_integer_value(json_object_get(vm, "since"));
		localtime_r(&t, &tm);
		strftime(since, sizeof since, "%Y-%m-%d %H:%M:%S", &tm);
	}
	printf("state:     %s since %s\n", info_str(vm, "state"), since);
	if (json_is_string(json_object_get(vm, "reason")))
		printf("reason:    %s\n", info_str(vm, "reason"));
	if (json_is_integer(json_object_get(vm, "pid")))
		printf("pid:       %lld\n",
		       (long long)json_integer_value(json_object_get(vm, "pid")));
	if (json_is_integer(json_object_get(vm, "uid")))
		printf("uid:       %lld (QEMU's own, docs/security.md)\n",
		       (long long)json_integer_value(json_object_get(vm, "uid")));
	printf("accel:     %s (%s)\n", info_str(vm, "accel"),
	       info_str(vm, "accel_reason"));
	if (json_is_string(json_object_get(vm, "state_dir")))
		printf("logs:      %s/serial.log, qemu.log\n",
		       info_str(vm, "state_dir"));
	json_array_foreach(json_object_get(vm, "diagnostics"), i, x)
		printf("config:    %s\n", cli_text(json_string_value(x)));
	if (json_is_object(cfg)) {
		printf("directory: %s\n", info_str(cfg, "dir"));
		printf("kernel:    %s\n", info_str(cfg, "kernel"));
		printf("cmdline:   %s\n", info_str(cfg, "cmdline"));
		printf("memory:    %lld MiB\n",
		       (long long)json_integer_value(json_object_get(cfg, "memory")) >> 20);
		printf("cpus:      %lld\n",
		       (long long)json_integer_value(json_object_get(cfg, "cpus")));
		printf("serial:    write-only, logged\n");
		printf("console:   hvc0 (virtio-console): vm console %s\n",
		       info_str(vm, "name"));
		a = json_object_get(cfg, "disks");
		json_array_foreach(a, i, x)
			printf("disk:      %s  %s (read-only)\n", info_str(x, "guest"),
			       info_str(x, "path"));
		a = json_object_get(cfg, "shares");
		json_array_foreach(a, i, x)
			printf("share:     %s  %s -> %s (virtio-fs)\n",
			       info_str(x, "tag"), info_str(x, "host_dir"),
			       info_str(x, "guest"));
		a = json_object_get(cfg, "providers");
		json_array_foreach(a, i, x)
			printf("net:       provided by %s\n", cli_text(json_string_value(x)));
		if (json_is_true(json_object_get(cfg, "uplink")))
			printf("net:       uplink (passt)%s\n",
			       json_is_true(json_object_get(cfg, "uplink_host_loopback")) ?
			       ", may reach the host's loopback" : "");
		printf("wayland:   %s\n", json_is_true(json_object_get(cfg, "wayland")) ?
		       "requested" : "no");
	}
	json_array_foreach(json_object_get(vm, "links"), i, x)
		info_link(x);
	info_trace(json_object_get(vm, "start_trace"));
	json_array_foreach(json_object_get(vm, "notes"), i, x)
		printf("note:      %s\n", cli_text(json_string_value(x)));
}

int cmd_info(int argc, char **argv)
{
	return client_show(argc, argv, "info", true, "vm", info_print);
}
