/*
 * cli.h - the subcommands of the `trine` command. Each takes the arguments
 * after its own name (argv[0] is the subcommand) and returns the process exit
 * status. The CLI uses only the public API (trine.h) and the store.
 */
#ifndef TRINE_CLI_H
#define TRINE_CLI_H

int cmd_check(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_fmt(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_consent(int argc, char **argv);
int cmd_proxy(int argc, char **argv);

#endif /* TRINE_CLI_H */
