/* vm: the user's command.  `vm VERB [ARGS]`, or run under one of
 * Spectrum's names (lsvm, vm-start, ...) to select the verb by argv[0]. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/version.h"
#include "config/vmconfig.h"

static int vm_help(int argc, char **argv);

/* One row per verb, sorted by name. */
static const struct cli_command cli_commands[] = {
	{ "check", cmd_check,
	  "check [--config-root DIR] [--data-root DIR] [--state-dir DIR]\n"
	  "          [--allow-block-device PATH]... [--max-memory SIZE] [--max-cpus N]\n"
	  "          [--wayland-display PATH] [--json] [NAME...]",
	  "validate VM directories without starting anything" },
	{ "console", cmd_console, "console [--linger S] [--state-dir DIR] NAME",
	  "attach to the VM's console (Ctrl-] detaches)" },
	{ "help", vm_help, "help [VERB]", "show this help, or one verb's usage" },
	{ "info", cmd_info, "info [--json] [--state-dir DIR] NAME",
	  "show a VM's configuration, state and devices" },
	{ "list", cmd_list, "list [--json] [--state-dir DIR]",
	  "list every VM and its state" },
	{ "log", cmd_log, "log [-f] [--state-dir DIR] NAME",
	  "print the VM's serial console log; -f follows it" },
	{ "start", cmd_start, "start [--state-dir DIR] NAME",
	  "start a VM; returns once it runs" },
	{ "stop", cmd_stop, "stop [--force] [--timeout S] [--state-dir DIR] NAME",
	  "power a VM off (ACPI), killing it after S seconds (default 30)" },
};

/* Spectrum's command names, mapped to verbs. */
static const struct {
	const char *alias;
	const char *verb;
} cli_aliases[] = {
	{ "lsvm", "list" },
	{ "vm-console", "console" },
	{ "vm-start", "start" },
	{ "vm-stop", "stop" },
};

#define CLI_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct cli_command *vm_find(const char *verb)
{
	for (size_t i = 0; i < CLI_COUNT(cli_commands); i++)
		if (!strcmp(cli_commands[i].name, verb))
			return &cli_commands[i];
	return NULL;
}

static void vm_print_exit_codes(FILE *f)
{
	fputs("\nexit status: 0 success (warnings allowed), 1 an invalid VM or a failed\n"
	      "operation, 2 usage error, 3 vmhostd not reachable (verbs that need it)\n",
	      f);
}

void cli_print_usage(FILE *f, const char *verb)
{
	const struct cli_command *c = vm_find(verb);

	if (c)
		fprintf(f, "usage: vm %s\n%s\n", c->usage, c->summary);
	vm_print_exit_codes(f);
}

const char *cli_config_root(const char *opt)
{
	const char *env = getenv("VMHOST_CONFIG_ROOT");

	if (opt)
		return opt;
	if (env && *env)
		return env;
	return VMCONFIG_DEFAULT_CONFIG_ROOT;
}

static void vm_print_help(FILE *f)
{
	fputs("usage: vm VERB [OPTIONS] [ARGS]\n       vm --version\n\nverbs:\n", f);
	for (size_t i = 0; i < CLI_COUNT(cli_commands); i++)
		fprintf(f, "  %-10s %s\n             vm %s\n", cli_commands[i].name,
			cli_commands[i].summary, cli_commands[i].usage);
	fputs("\nalso run as:", f);
	for (size_t i = 0; i < CLI_COUNT(cli_aliases); i++)
		fprintf(f, " %s (vm %s)%s", cli_aliases[i].alias,
			cli_aliases[i].verb,
			i + 1 < CLI_COUNT(cli_aliases) ? "," : "\n");
	fputs("\nThe config root is --config-root DIR, else $VMHOST_CONFIG_ROOT, else\n"
	      VMCONFIG_DEFAULT_CONFIG_ROOT ".\n", f);
	vm_print_exit_codes(f);
}

static int vm_help(int argc, char **argv)
{
	if (argc > 2) {
		cli_print_usage(stderr, "help");
		return CLI_EXIT_USAGE;
	}
	if (argc == 2) {
		if (!vm_find(argv[1])) {
			fprintf(stderr, "vm help: unknown verb \"%s\"\n", argv[1]);
			return CLI_EXIT_USAGE;
		}
		cli_print_usage(stdout, argv[1]);
		return CLI_EXIT_OK;
	}
	vm_print_help(stdout);
	return CLI_EXIT_OK;
}

static int vm_run(const char *verb, int argc, char **argv)
{
	const struct cli_command *c = vm_find(verb);

	if (!c) {
		fprintf(stderr, "vm: unknown verb \"%s\" (see vm help)\n", verb);
		return CLI_EXIT_USAGE;
	}
	/* "vm VERB --help" for every verb, before its own options. */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			cli_print_usage(stdout, c->name);
			return CLI_EXIT_OK;
		}
	}
	return c->run(argc, argv);
}

int main(int argc, char **argv)
{
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;

	base = base ? base + 1 : argc > 0 ? argv[0] : "vm";
	/* Under any name, alias or not. */
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("%s (vmhost) %s\n", base, VMHOST_VERSION);
		return CLI_EXIT_OK;
	}
	/* A console or log whose reader went away ends with EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < CLI_COUNT(cli_aliases); i++)
		if (!strcmp(base, cli_aliases[i].alias))
			return vm_run(cli_aliases[i].verb, argc, argv);
	if (argc < 2) {
		vm_print_help(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return vm_help(1, argv);
	return vm_run(argv[1], argc - 1, argv + 1);
}
