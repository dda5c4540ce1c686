/*
 * load.c - loading a policy (a directory of *.trine files, or sources in
 * memory), the policy's reference count, and what it reports about itself
 * (revision, status, the tools of a server).
 */
#include "lib/compile.h"
#include "lib/diag.h"
#include "lib/parser.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A policy file larger than this is refused rather than read into memory. */
#define LOAD_MAX_FILE (64u * 1024 * 1024)

/* Returns the part of a path after its last '/'. */
static const char *load_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

int trine_policy_load_sources(const trine_source *src, size_t n,
                              trine_diag *diag, trine_policy **out)
{
    if (out == NULL)
        return TRINE_EINVAL;
    *out = NULL;
    if (src == NULL && n > 0)
        return TRINE_EINVAL;
    if (n == 0) {
        diag_add(diag, TRINE_DIAG_ERROR, "", 0, 0, "no policy source given");
        return TRINE_EPOLICY;
    }
    if (n > SIZE_MAX / sizeof(ast_file *))
        return TRINE_ENOMEM;
    trine_source *named = calloc(n, sizeof *named);
    ast_file **asts = calloc(n, sizeof *asts);
    int rc = named != NULL && asts != NULL ? 0 : TRINE_ENOMEM;
    bool syntax = false;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        /* Files are named by their base name, in errors, rules and the
         * revision alike, wherever the policy was loaded from. */
        named[i] = src[i];
        named[i].name = load_basename(src[i].name ? src[i].name : "");
        if (src[i].data == NULL && src[i].len > 0) {
            rc = TRINE_EINVAL;
            break;
        }
        if (src[i].data == NULL)
            named[i].data = "";
        int prc = parse_source(&named[i], diag, &asts[i]);
        if (prc == TRINE_ENOMEM)
            rc = prc;
        else if (prc != 0)
            syntax = true;
    }
    if (rc == 0 && syntax)
        rc = TRINE_EPOLICY;
    if (rc == 0)
        rc = compile_policy(asts, named, n, diag, out);
    for (size_t i = 0; asts != NULL && i < n; i++)
        ast_free(asts[i]);
    free(asts);
    free(named);
    return rc;
}

/* True for the names a policy directory loads: "*.trine", as a shell glob
 * would see it (so hidden files, editor locks among them, are skipped). */
static bool load_wanted(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 6 && strcmp(name + n - 6, ".trine") == 0;
}

static int load_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the regular file name in the directory dfd into *buf and *len. */
static int load_read(int dfd, const char *name, trine_diag *diag, char **buf,
                     size_t *len)
{
    *buf = NULL;
    *len = 0;
    /* O_NONBLOCK: a FIFO swapped in after the directory scan must not hang
     * the load. Symbolic links are followed (mounted configuration is often
     * made of them). */
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        diag_add(diag, TRINE_DIAG_ERROR, name, 0, 0, "cannot open: %s",
                 strerror(errno));
        return TRINE_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        diag_add(diag, TRINE_DIAG_ERROR, name, 0, 0,
                 "cannot read: not a regular file");
        close(fd);
        return TRINE_EIO;
    }
    strbuf b;
    sb_init(&b);
    char chunk[65536];
    int rc = 0;
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            diag_add(diag, TRINE_DIAG_ERROR, name, 0, 0, "cannot read: %s",
                     strerror(errno));
            rc = TRINE_EIO;
            break;
        }
        if (r == 0)
            break;
        if (b.len + (size_t)r > LOAD_MAX_FILE) {
            diag_add(diag, TRINE_DIAG_ERROR, name, 0, 0,
                     "cannot read: larger than %u bytes", LOAD_MAX_FILE);
            rc = TRINE_EIO;
            break;
        }
        sb_putn(&b, chunk, (size_t)r);
        if (b.oom) {
            rc = TRINE_ENOMEM;
            break;
        }
    }
    close(fd);
    if (rc != 0) {
        sb_free(&b);
        return rc;
    }
    *len = b.len;
    *buf = sb_take(&b);
    return *buf != NULL ? 0 : TRINE_ENOMEM;
}

/* Lists the *.trine regular files of the open directory d, sorted. */
static int load_list(DIR *d, const char *dir, trine_diag *diag, ptrvec *names)
{
    int dfd = dirfd(d);
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno != 0) {
                diag_add(diag, TRINE_DIAG_ERROR, dir, 0, 0,
                         "cannot read the policy directory: %s",
                         strerror(errno));
                return TRINE_EIO;
            }
            break;
        }
        if (!load_wanted(e->d_name))
            continue;
        size_t nlen = strlen(e->d_name);
        if (utf8_check(e->d_name, nlen) != nlen) {
            /* Names reach JSON (status, decisions): they must be text. */
            diag_add(diag, TRINE_DIAG_ERROR, e->d_name, 0, 0,
                     "the file name is not valid UTF-8; rename the file");
            return TRINE_EIO;
        }
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, 0) != 0) {
            diag_add(diag, TRINE_DIAG_ERROR, e->d_name, 0, 0, "cannot read: %s",
                     strerror(errno));
            return TRINE_EIO;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        char *name = xstrdup(e->d_name);
        if (name == NULL || pv_push(names, name) != 0) {
            free(name);
            return TRINE_ENOMEM;
        }
    }
    if (names->len > 0)
        qsort(names->items, names->len, sizeof *names->items, load_cmp);
    return 0;
}

int trine_policy_load_dir(const char *dir, trine_diag *diag, trine_policy **out)
{
    if (out == NULL)
        return TRINE_EINVAL;
    *out = NULL;
    if (dir == NULL)
        return TRINE_EINVAL;
    DIR *d = opendir(dir);
    if (d == NULL) {
        diag_add(diag, TRINE_DIAG_ERROR, dir, 0, 0,
                 "cannot open the policy directory: %s", strerror(errno));
        return TRINE_EIO;
    }
    ptrvec names = {0};
    int rc = load_list(d, dir, diag, &names);
    if (rc == 0 && names.len == 0) {
        diag_add(diag, TRINE_DIAG_ERROR, dir, 0, 0, "no *.trine file in %s",
                 dir);
        rc = TRINE_EPOLICY;
    }
    trine_source *src = NULL;
    if (rc == 0) {
        src = calloc(names.len, sizeof *src);
        if (src == NULL)
            rc = TRINE_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < names.len; i++) {
        char *buf;
        rc = load_read(dirfd(d), names.items[i], diag, &buf, &src[i].len);
        src[i].name = names.items[i];
        src[i].data = buf;
    }
    closedir(d);
    if (rc == 0)
        rc = trine_policy_load_sources(src, names.len, diag, out);
    for (size_t i = 0; src != NULL && i < names.len; i++)
        free((char *)src[i].data);
    free(src);
    for (size_t i = 0; i < names.len; i++)
        free(names.items[i]);
    pv_free(&names);
    return rc;
}

trine_policy *trine_policy_retain(trine_policy *p)
{
    if (p != NULL)
        atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void trine_policy_release(trine_policy *p)
{
    if (p == NULL)
        return;
    /* Release ordering makes every use of the policy by other threads
     * happen before the free below. */
    if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
        compile_policy_free(p);
}

const char *trine_policy_revision(const trine_policy *p)
{
    return p != NULL ? p->revision : "";
}

bool trine_policy_same_sources(const trine_policy *a, const trine_policy *b)
{
    return a != NULL && b != NULL &&
           memcmp(a->sources_digest, b->sources_digest,
                  sizeof a->sources_digest) == 0;
}

/* Sets key of obj to a new value; false when either is NULL or on OOM. */
static bool load_set(json_t *obj, const char *key, json_t *v)
{
    return v != NULL && json_object_set_new(obj, key, v) == 0;
}

json_t *trine_policy_status(const trine_policy *p)
{
    if (p == NULL)
        return NULL;
    json_t *st = json_object();
    json_t *files = json_array();
    json_t *counts = json_object();
    bool ok = st != NULL && files != NULL && counts != NULL;
    for (size_t i = 0; ok && i < p->nfiles; i++)
        ok = json_array_append_new(files, json_string(p->files[i])) == 0;
    const policy_counts *n = &p->counts;
    struct {
        const char *key;
        unsigned v;
    } cs[] = {{"scope", n->scope}, {"role", n->role},     {"user", n->user},
              {"group", n->group}, {"agent", n->agent},   {"server", n->server},
              {"tool", n->tool},   {"forbid", n->forbid}, {"rules", n->rules}};
    for (size_t i = 0; ok && i < sizeof cs / sizeof cs[0]; i++)
        ok = load_set(counts, cs[i].key, json_integer(cs[i].v));
    ok = ok && load_set(st, "revision", json_string(p->revision));
    ok = ok && load_set(st, "files", json_incref(files));
    ok = ok && load_set(st, "loaded_at", json_integer(p->loaded_at_ms));
    ok = ok && load_set(st, "counts", json_incref(counts));
    json_decref(files);
    json_decref(counts);
    if (!ok) {
        json_decref(st);
        return NULL;
    }
    return st;
}

json_t *trine_policy_tools(const trine_policy *p, const char *server)
{
    json_t *res = json_object();
    json_t *tools = json_array();
    bool ok = res != NULL && tools != NULL;
    const cpl_server *s =
        p != NULL && server != NULL ? strmap_get(&p->servers, server) : NULL;
    for (size_t i = 0; ok && s != NULL && i < s->ntools; i++)
        ok = json_array_append_new(tools, json_string(s->tool_list[i]->name)) ==
             0;
    ok = ok && load_set(res, "tools", json_incref(tools));
    ok = ok && load_set(res, "wildcard",
                        json_boolean(s != NULL && s->wildcard != NULL));
    json_decref(tools);
    if (!ok) {
        json_decref(res);
        return NULL;
    }
    return res;
}
