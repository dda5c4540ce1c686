/*
 * validate.c - `trine validate DIR`: load a policy directory and lint it
 * (DESIGN §6).
 *
 * Errors and warnings go to standard error, one per line, as
 * "file:line:col: message" and "file:line:col: warning: message". On success
 * standard output gets "ok: N file(s), revision sha256:..., W warnings".
 * Exit status: 0 loaded (warnings alone do not fail), 1 the policy has
 * errors or cannot be read, 3 usage error.
 */
#include "cli/cli.h"
#include "cli/util.h"

#include <string.h>

static const char validate_usage[] =
    "usage: trine validate DIR\n"
    "\n"
    "Loads every *.trine file in DIR as one policy and lints it.\n"
    "exit status: 0 valid (warnings allowed), 1 errors, 3 usage\n";

/* Prints the success line. Returns 0, or -1 on allocation failure. */
static int validate_print_ok(const trine_policy *p, int warnings)
{
    json_t *status = trine_policy_status(p);
    if (status == NULL)
        return -1;
    size_t files = json_array_size(json_object_get(status, "files"));
    printf("ok: %zu file%s, revision ", files, files == 1 ? "" : "s");
    cli_put_safe(stdout, trine_policy_revision(p));
    printf(", %d warning%s\n", warnings, warnings == 1 ? "" : "s");
    json_decref(status);
    return 0;
}

int cmd_validate(int argc, char **argv)
{
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_flag(argv[i], "--help") || cli_flag(argv[i], "-h")) {
            fputs(validate_usage, stdout);
            return CLI_EXIT_OK;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fputs("trine validate: unknown option \"", stderr);
            cli_put_safe(stderr, argv[i]);
            fputs("\"\n", stderr);
            fputs(validate_usage, stderr);
            return CLI_EXIT_USAGE;
        }
        if (dir != NULL) {
            fputs("trine validate: expected one directory\n", stderr);
            fputs(validate_usage, stderr);
            return CLI_EXIT_USAGE;
        }
        dir = argv[i];
    }
    if (dir == NULL) {
        fputs("trine validate: a policy directory is required\n", stderr);
        fputs(validate_usage, stderr);
        return CLI_EXIT_USAGE;
    }

    trine_diag *diag = trine_diag_new();
    if (diag == NULL) {
        fputs("trine validate: out of memory\n", stderr);
        return CLI_EXIT_FAIL;
    }
    trine_policy *p = NULL;
    int status = CLI_EXIT_FAIL;
    if (cli_load_policy("validate", dir, diag, &p) != 0)
        goto out;
    int warnings = trine_policy_lint(p, diag);
    trine_diag_print(diag, stderr);
    if (warnings < 0 || validate_print_ok(p, warnings) != 0) {
        fputs("trine validate: out of memory\n", stderr);
        goto out;
    }
    status = CLI_EXIT_OK;
out:
    trine_policy_release(p);
    trine_diag_free(diag);
    return status;
}
