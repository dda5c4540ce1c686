/*
 * main.c - the `trine` command: dispatches to its subcommands.
 */
#include "cli/cli.h"
#include "cli/util.h"

#include <stdio.h>
#include <string.h>

/* Kept equal to the project VERSION in CMakeLists.txt. */
#define TRINE_CLI_VERSION "0.1.0"

static const char usage_text[] =
    "usage: trine <command> [options]\n"
    "\n"
    "commands:\n"
    "  check    --policy DIR (--request FILE|-) [--now UNIX] [--json]\n"
    "           [--consents FILE]\n"
    "                          evaluate one request's params, no daemon\n"
    "  validate DIR            load and lint a policy directory\n"
    "  test     DIR            run the policy's *.tests.json cases\n"
    "  fmt      FILE... [--write|--check]\n"
    "                          print (or rewrite, or check) canonical "
    "formatting\n"
    "  audit    [--db FILE] [filters] | verify | stats\n"
    "                          read and verify the audit log\n"
    "  consent  list|grant|revoke ...\n"
    "                          manage consent grants through the daemon\n"
    "  proxy    --socket PATH --server NAME [--claims FILE] -- CMD [ARGS...]\n"
    "                          run an MCP stdio server behind trine\n"
    "\n"
    "  trine --help            this text\n"
    "  trine --version         the version\n"
    "\n"
    "exit status: 0 allow or success, 1 deny or failure, 2 consent "
    "required,\n"
    "3 usage or load error\n";

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"check", cmd_check}, {"validate", cmd_validate}, {"test", cmd_test},
    {"fmt", cmd_fmt},     {"audit", cmd_audit},       {"consent", cmd_consent},
    {"proxy", cmd_proxy},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0) {
        fputs(usage_text, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("trine %s\n", TRINE_CLI_VERSION);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    }
    fputs("trine: unknown command \"", stderr);
    cli_put_safe(stderr, name);
    fputs("\"\n\n", stderr);
    fputs(usage_text, stderr);
    return CLI_EXIT_USAGE;
}
