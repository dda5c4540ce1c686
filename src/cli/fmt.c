/*
 * fmt.c - `trine fmt FILE...`: canonical formatting of policy sources
 * (DESIGN §6).
 *
 *   trine fmt [--write | --check] FILE...
 *
 * Without a flag, prints each file's canonical form to standard output ("-"
 * reads standard input). --write rewrites, in place, each file whose form
 * changes (through a temporary file in the same directory, renamed over the
 * original, so a reader never sees half a file). --check prints the name of
 * each file that is not canonical and changes nothing.
 *
 * Exit status: 0 success (and, with --check, every file canonical), 1 a file
 * that cannot be read or does not parse (its errors on standard error; the
 * other files are still processed) or, with --check, a file that is not
 * canonical, 3 usage error.
 */
#include "cli/cli.h"
#include "cli/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char fmt_usage[] =
    "usage: trine fmt [--write | --check] FILE...\n"
    "\n"
    "Prints the canonical formatting of each policy file (\"-\": standard\n"
    "input).\n"
    "  --write   rewrite the files in place (only those that change)\n"
    "  --check   list the files that are not canonical; exit 1 if any\n"
    "exit status: 0 success, 1 a file does not parse (or is not canonical\n"
    "with --check), 3 usage\n";

typedef enum fmt_mode { FMT_PRINT, FMT_WRITE, FMT_CHECK } fmt_mode;

/* Writes all of n bytes to fd. Returns 0 or -1 with errno set. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Replaces the file at path (a symbolic link is followed: its target is
 * replaced) with n bytes of text, keeping its permission bits. Returns 0 or
 * -1 with errno set; on failure the original is untouched. */
static int replace_file(const char *path, const char *text, size_t n)
{
    char *target = realpath(path, NULL);
    if (target == NULL)
        return -1;
    struct stat st;
    if (stat(target, &st) != 0) {
        int saved = errno;
        free(target);
        errno = saved;
        return -1;
    }
    const char *base = cli_basename(target);
    size_t dlen = (size_t)(base - target);
    size_t tlen = dlen + 1 + strlen(base) + 16;
    char *tmp = malloc(tlen);
    if (tmp == NULL) {
        free(target);
        errno = ENOMEM;
        return -1;
    }
    snprintf(tmp, tlen, "%.*s.%s.XXXXXX", (int)dlen, target, base);
    int fd = mkstemp(tmp);
    int rc = -1;
    if (fd >= 0) {
        if (fchmod(fd, st.st_mode & 07777) == 0 &&
            write_all(fd, text, n) == 0 && fsync(fd) == 0) {
            rc = 0;
        }
        int saved = errno;
        if (close(fd) != 0 && rc == 0) {
            saved = errno;
            rc = -1;
        }
        if (rc == 0 && rename(tmp, target) != 0) {
            saved = errno;
            rc = -1;
        }
        if (rc != 0)
            unlink(tmp);
        errno = saved;
    }
    int saved = errno;
    free(tmp);
    free(target);
    errno = saved;
    return rc;
}

/* Formats one file in the given mode. Returns 0 when it is fine, 1 when it
 * fails (or is not canonical under --check). */
static int fmt_one(const char *path, fmt_mode mode)
{
    char *buf = NULL;
    size_t len = 0;
    if (cli_read_file(path, &buf, &len) != 0) {
        fputs("trine fmt: cannot read ", stderr);
        cli_put_safe(stderr, path);
        fprintf(stderr, ": %s\n", strerror(errno));
        return 1;
    }
    trine_diag *diag = trine_diag_new();
    if (diag == NULL) {
        free(buf);
        fputs("trine fmt: out of memory\n", stderr);
        return 1;
    }
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    trine_source src = {name, buf, len};
    char *out = NULL;
    size_t outlen = 0;
    int status = 0;
    int rc = trine_format(&src, diag, &out, &outlen);
    if (rc != 0) {
        trine_diag_print(diag, stderr);
        if (rc != TRINE_ESYNTAX || trine_diag_count(diag) == 0) {
            fputs("trine fmt: ", stderr);
            cli_put_safe(stderr, name);
            fprintf(stderr, ": %s\n", trine_strerror(rc));
        }
        status = 1;
    } else {
        bool same = outlen == len && memcmp(out, buf, len) == 0;
        if (mode == FMT_PRINT) {
            fwrite(out, 1, outlen, stdout);
        } else if (mode == FMT_CHECK && !same) {
            cli_put_safe(stdout, path);
            fputc('\n', stdout);
            status = 1;
        } else if (mode == FMT_WRITE && !same &&
                   replace_file(path, out, outlen) != 0) {
            fputs("trine fmt: cannot write ", stderr);
            cli_put_safe(stderr, path);
            fprintf(stderr, ": %s\n", strerror(errno));
            status = 1;
        }
    }
    trine_free(out);
    trine_diag_free(diag);
    free(buf);
    return status;
}

/* Prints a usage error and returns the usage exit status. */
static int fmt_usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "trine fmt: %s", what);
    if (arg != NULL) {
        fputs(" \"", stderr);
        cli_put_safe(stderr, arg);
        fputc('"', stderr);
    }
    fputc('\n', stderr);
    fputs(fmt_usage, stderr);
    return CLI_EXIT_USAGE;
}

int cmd_fmt(int argc, char **argv)
{
    bool do_write = false, check = false, opts_done = false;
    int nfiles = 0;
    bool reads_stdin = false;
    /* First pass: flags may come before or after the files. */
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!opts_done && cli_flag(arg, "--")) {
            opts_done = true;
        } else if (!opts_done &&
                   (cli_flag(arg, "--help") || cli_flag(arg, "-h"))) {
            fputs(fmt_usage, stdout);
            return CLI_EXIT_OK;
        } else if (!opts_done &&
                   (cli_flag(arg, "--write") || cli_flag(arg, "-w"))) {
            do_write = true;
        } else if (!opts_done && cli_flag(arg, "--check")) {
            check = true;
        } else if (!opts_done && arg[0] == '-' && arg[1] != '\0') {
            return fmt_usage_error("unknown option", arg);
        } else {
            nfiles++;
            if (strcmp(arg, "-") == 0)
                reads_stdin = true;
        }
    }
    if (nfiles == 0)
        return fmt_usage_error("no file given", NULL);
    if (do_write && check)
        return fmt_usage_error("--write and --check exclude each other", NULL);
    if (do_write && reads_stdin)
        return fmt_usage_error("--write cannot rewrite standard input", NULL);
    fmt_mode mode = do_write ? FMT_WRITE : check ? FMT_CHECK : FMT_PRINT;
    int status = CLI_EXIT_OK;
    opts_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!opts_done && cli_flag(arg, "--")) {
            opts_done = true;
            continue;
        }
        if (!opts_done && arg[0] == '-' && arg[1] != '\0')
            continue;
        if (fmt_one(arg, mode) != 0)
            status = CLI_EXIT_FAIL;
    }
    fflush(stdout);
    return status;
}
