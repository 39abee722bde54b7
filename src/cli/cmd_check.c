/* vm check: validate VM directories with the loader, without a daemon.
 * Problems go to stderr, one per line, "NAME: PATH: problem"; the verdict
 * per VM goes to stdout ("NAME: ok" / "NAME: invalid"), or with --json a
 * machine-readable report. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/vmconfig.h"

struct check_opts {
	const char *config_root;
	const char *data_root;
	bool json;
};

/* A JSON string even for bytes that are not UTF-8. */
static json_t *check_jstr(const char *s)
{
	json_t *j = json_string(s);
	char *esc;

	if (j)
		return j;
	esc = vmconfig_escape(s, strlen(s), 4096);
	j = esc ? json_string(esc) : NULL;
	free(esc);
	return j;
}

static json_t *check_json_config(const struct vm_config *c)
{
	json_t *disks = json_array(), *shares = json_array();
	json_t *providers = json_array();

	for (size_t i = 0; i < c->disk_count; i++)
		json_array_append_new(disks, json_pack("{s:o,s:o}",
			"path", check_jstr(c->disks[i].path),
			"relpath", check_jstr(c->disks[i].relpath)));
	for (size_t i = 0; i < c->share_count; i++)
		json_array_append_new(shares, json_pack("{s:s,s:o}",
			"tag", c->shares[i].tag,
			"host_dir", check_jstr(c->shares[i].host_dir)));
	for (size_t i = 0; i < c->provider_count; i++)
		json_array_append_new(providers, json_string(c->providers[i]));
	return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:b,s:b,s:b,s:I,s:i,s:o}",
			 "name", c->name,
			 "dir", check_jstr(c->dir),
			 "kernel", check_jstr(c->kernel),
			 "disks", disks,
			 "shares", shares,
			 "providers", providers,
			 "wayland", c->wayland,
			 "uplink", c->uplink,
			 "uplink_host_loopback", c->uplink_host_loopback,
			 "memory", (json_int_t)c->memory,
			 "cpus", (int)c->cpus,
			 "cmdline", check_jstr(c->cmdline));
}

static json_t *check_json_diags(const struct diags *d)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < d->count; i++)
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s}",
			"level", diag_level_name(d->items[i].level),
			"path", d->items[i].path,
			"message", d->items[i].message));
	return arr;
}

static void check_print_diags(const struct diags *d)
{
	for (size_t i = 0; i < d->count; i++) {
		char *line = diag_format(&d->items[i]);

		if (line)
			fprintf(stderr, "%s\n", line);
		free(line);
	}
}

/* Check one VM; returns 1 if valid, 0 if not, -1 on a system error. */
static int check_one(const struct check_opts *o, const char *name,
		     json_t *report)
{
	struct vmconfig_roots roots = { o->config_root, o->data_root };
	struct vm_config *cfg = NULL;
	struct diags d;
	char *shown;
	int r;

	diags_init(&d);
	r = vmconfig_load(&roots, name, &cfg, &d);
	if (r < 0 && errno != EINVAL && d.count == 0) {
		fprintf(stderr, "vm check: %s: %s\n", name, strerror(errno));
		diags_free(&d);
		return -1;
	}
	check_print_diags(&d);
	shown = vmconfig_escape(name, strlen(name), 256);
	if (report && shown) {
		json_t *vm = json_pack("{s:b,s:o}", "valid", r == 0,
				       "diagnostics", check_json_diags(&d));

		if (cfg)
			json_object_set_new(vm, "config", check_json_config(cfg));
		json_object_set_new(report, shown, vm);
	} else if (shown) {
		printf("%s: %s\n", shown, r == 0 ? "ok" : "invalid");
	}
	free(shown);
	vmconfig_free(cfg);
	diags_free(&d);
	return r == 0;
}

static int check_usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "vm check: %s%s\n", what, arg);
	cli_print_usage(stderr, "check");
	return CLI_EXIT_USAGE;
}

static int check_parse(int argc, char **argv, struct check_opts *o)
{
	static const struct option longopts[] = {
		{ "config-root", required_argument, NULL, 'c' },
		{ "data-root", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config_root = optarg;
			break;
		case 'd':
			o->data_root = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 'h':
			cli_print_usage(stdout, "check");
			return CLI_EXIT_OK;
		case ':':
			return check_usage_error("option needs an argument: ", argv[optind - 1]);
		default:
			return check_usage_error("unknown option: ", argv[optind - 1]);
		}
	}
	if ((o->config_root && !*o->config_root) || (o->data_root && !*o->data_root))
		return check_usage_error("empty directory argument", "");
	return -1;
}

int cmd_check(int argc, char **argv)
{
	struct check_opts o = { 0 };
	json_t *out = NULL, *report = NULL;
	char **names = NULL, *data_root = NULL;
	size_t count = 0;
	int r, status = CLI_EXIT_OK;

	r = check_parse(argc, argv, &o);
	if (r >= 0)
		return r;
	o.config_root = cli_config_root(o.config_root);
	if (optind < argc) {
		names = argv + optind;
		count = (size_t)(argc - optind);
	} else if (vmconfig_list(o.config_root, &names, &count) < 0) {
		fprintf(stderr, "vm check: config root %s: %s\n", o.config_root,
			strerror(errno));
		return CLI_EXIT_FAIL;
	} else if (count == 0) {
		fprintf(stderr, "vm check: no VMs in config root %s\n", o.config_root);
	}
	if (o.json) {
		data_root = o.data_root ? strdup(o.data_root) :
			    vmconfig_default_data_root(o.config_root);
		report = json_object();
		out = json_pack("{s:o,s:o,s:b,s:O}",
				"config_root", check_jstr(o.config_root),
				"data_root", check_jstr(data_root ? data_root : ""),
				"valid", true, "vms", report);
	}
	for (size_t i = 0; i < count; i++) {
		bool dup = false;

		/* The same name twice is checked once. */
		for (size_t j = 0; j < i; j++)
			dup = dup || !strcmp(names[i], names[j]);
		if (dup)
			continue;
		r = check_one(&o, names[i], report);
		if (r <= 0)
			status = CLI_EXIT_FAIL;
	}
	if (out) {
		json_object_set_new(out, "valid", json_boolean(status == CLI_EXIT_OK));
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	}
	if (fflush(stdout) != 0)
		status = CLI_EXIT_FAIL;
	json_decref(report);
	json_decref(out);
	free(data_root);
	if (optind >= argc)
		vmconfig_list_free(names, count);
	return status;
}
