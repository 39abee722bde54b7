/* vm check: validate VM directories without a daemon, through the same
 * gatherer a start uses (config/gather.h): run as root it opens every
 * file as each directory's owner and applies the same block device
 * policy, share confinement and host limits, so it reports what a start
 * would.  Problems go to stderr, one per line, "NAME: PATH: problem"; the
 * verdict per VM goes to stdout ("NAME: ok" / "NAME: invalid"), or with
 * --json a machine-readable report. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "config/gather.h"

struct check_opts {
	const char *config_root;
	const char *data_root;
	const char *state_dir;
	struct gather_policy policy;
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

/* Report one VM's verdict; returns 1 if valid, 0 if not. */
static int check_report(const char *name, const struct gather_result *res,
			json_t *report)
{
	char *shown;

	check_print_diags(&res->diags);
	shown = vmconfig_escape(name, strlen(name), 256);
	if (report && shown) {
		json_t *vm = json_pack("{s:b,s:o}", "valid", res->valid,
				       "diagnostics", check_json_diags(&res->diags));

		if (res->cfg)
			json_object_set_new(vm, "config", check_json_config(res->cfg));
		json_object_set_new(report, shown, vm);
	} else if (shown) {
		printf("%s: %s\n", shown, res->valid ? "ok" : "invalid");
	}
	free(shown);
	return res->valid;
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
		{ "state-dir", required_argument, NULL, 's' },
		{ "allow-block-device", required_argument, NULL, 'b' },
		{ "max-memory", required_argument, NULL, 'm' },
		{ "max-cpus", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *why;
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
		case 's':
			o->state_dir = optarg;
			break;
		case 'b':
			if (gather_allow_block_device(&o->policy, optarg) < 0) {
				fprintf(stderr, "vm check: --allow-block-device %s: %s\n",
					optarg, errno == ENOTBLK ?
					"not a block device" : strerror(errno));
				return CLI_EXIT_USAGE;
			}
			break;
		case 'm':
			if (hostlimits_set_memory(&o->policy.limits, optarg, &why) < 0) {
				fprintf(stderr, "vm check: --max-memory %s: %s\n",
					optarg, why);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'p':
			if (hostlimits_set_cpus(&o->policy.limits, optarg, &why) < 0) {
				fprintf(stderr, "vm check: --max-cpus %s: %s\n",
					optarg, why);
				return CLI_EXIT_USAGE;
			}
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

/* names without repeats (the same name twice is checked once). */
static char **check_distinct(char **names, size_t count, size_t *out)
{
	char **list = calloc(count ? count : 1, sizeof(*list));
	size_t n = 0;

	if (!list)
		return NULL;
	for (size_t i = 0; i < count; i++) {
		bool dup = false;

		for (size_t j = 0; j < n && !dup; j++)
			dup = !strcmp(names[i], list[j]);
		if (!dup)
			list[n++] = names[i];
	}
	*out = n;
	return list;
}

int cmd_check(int argc, char **argv)
{
	struct check_opts o = { 0 };
	struct gather_result *results = NULL;
	json_t *out = NULL, *report = NULL;
	char **names = NULL, **distinct = NULL, *data_root = NULL;
	size_t count = 0, n = 0;
	int r, status = CLI_EXIT_OK;

	if (gather_policy_init(&o.policy) < 0) {
		fprintf(stderr, "vm check: /proc/meminfo: %s\n", strerror(errno));
		return CLI_EXIT_FAIL;
	}
	r = check_parse(argc, argv, &o);
	if (r >= 0)
		goto out;
	o.config_root = cli_config_root(o.config_root);
	o.policy.roots.config_root = o.config_root;
	o.policy.roots.data_root = o.data_root;
	o.policy.state_dir = client_state_dir(o.state_dir);
	o.policy.check_only = true;
	if (optind < argc) {
		names = argv + optind;
		count = (size_t)(argc - optind);
	} else if (vmconfig_list(o.config_root, &names, &count) < 0) {
		fprintf(stderr, "vm check: config root %s: %s\n", o.config_root,
			strerror(errno));
		r = CLI_EXIT_FAIL;
		goto out;
	} else if (count == 0) {
		fprintf(stderr, "vm check: no VMs in config root %s\n", o.config_root);
	}
	distinct = check_distinct(names, count, &n);
	results = calloc(n ? n : 1, sizeof(*results));
	if (!distinct || !results || gather_check(&o.policy, distinct, n, results) < 0) {
		fprintf(stderr, "vm check: %s\n", strerror(errno));
		r = CLI_EXIT_FAIL;
		goto out;
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
	for (size_t i = 0; i < n; i++)
		if (!check_report(distinct[i], &results[i], report))
			status = CLI_EXIT_FAIL;
	if (out) {
		json_object_set_new(out, "valid", json_boolean(status == CLI_EXIT_OK));
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	}
	if (fflush(stdout) != 0)
		status = CLI_EXIT_FAIL;
	r = status;
out:
	if (results)
		for (size_t i = 0; i < n; i++)
			gather_result_free(&results[i]);
	free(results);
	free(distinct);
	json_decref(report);
	json_decref(out);
	free(data_root);
	if (optind >= argc)
		vmconfig_list_free(names, count);
	gather_policy_free(&o.policy);
	return r;
}
