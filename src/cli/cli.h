/* The `vm` command line: one table of verbs (vm.c), one file per verb
 * (cmd_VERB.c).  Adding a verb = write cmd_VERB.c with its run function,
 * declare it below, add one row to cli_commands[] in vm.c and the file to
 * vm_sources in meson.build. */
#ifndef VMHOST_CLI_CLI_H
#define VMHOST_CLI_CLI_H

#include <stdio.h>

/* Exit codes of every verb (also documented in `vm help`). */
enum {
	CLI_EXIT_OK = 0,    /* success; warnings allowed */
	CLI_EXIT_FAIL = 1,  /* an invalid VM, or the operation failed */
	CLI_EXIT_USAGE = 2, /* bad command line */
	CLI_EXIT_NODAEMON = 3, /* no daemon answers on the control socket */
};

struct cli_command {
	const char *name;
	/* argv[0] is the verb (or the alias it was run as); options follow. */
	int (*run)(int argc, char **argv);
	const char *usage;   /* after "vm ": "check [--json] [NAME...]" */
	const char *summary; /* one line for `vm help` */
};

/* "usage: vm USAGE" for verb, plus the exit codes, on f. */
void cli_print_usage(FILE *f, const char *verb);

/* --config-root DIR, else $VMHOST_CONFIG_ROOT, else /ext/svc/data. */
const char *cli_config_root(const char *opt);

int cmd_check(int argc, char **argv);
/* The verbs that talk to vmhostd (cli/client.h). */
int cmd_console(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);

#endif
