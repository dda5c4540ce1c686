/*
 * files.c - the files under a writer's connection: which database file,
 * WAL and shared-memory file it opened, whether they are still the ones at
 * its path, whether it may still write there, and removing the WAL files
 * a deleted or replaced database leaves behind.
 *
 * An open SQLite connection writes through its file descriptors. When the
 * database file is deleted (or renamed away, or another file is moved onto
 * its path), the connection goes on committing into a file no reader will
 * ever open; when the operator makes the file read-only, it goes on
 * writing all the same. So the writer asks here, by path, before and after
 * each commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

/* Reads the identity of the file at path into *id (unknown when it does not
 * exist or cannot be looked at). */
static void files_id(const char *path, store_file_id *id)
{
    struct stat st;
    memset(id, 0, sizeof *id);
    if (path == NULL || stat(path, &st) != 0)
        return;
    id->dev = (uint64_t)st.st_dev;
    id->ino = (uint64_t)st.st_ino;
    id->known = true;
}

/* Returns path with suffix appended, in new memory (NULL on OOM). */
static char *files_suffixed(const char *path, const char *suffix)
{
    size_t n = strlen(path);
    size_t m = strlen(suffix);
    char *p = malloc(n + m + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, path, n);
    memcpy(p + n, suffix, m + 1);
    return p;
}

bool store_same_file(const store_file_id *a, const store_file_id *b)
{
    return a->known && b->known && a->dev == b->dev && a->ino == b->ino;
}

void store_files_at(const char *path, store_files *out)
{
    memset(out, 0, sizeof *out);
    files_id(path, &out->db);
    char *wal = files_suffixed(path, "-wal");
    char *shm = files_suffixed(path, "-shm");
    files_id(wal, &out->wal);
    files_id(shm, &out->shm);
    free(wal);
    free(shm);
}

const store_files *store_files_of(const store *s)
{
    return &s->files;
}

/* Asks SQLite whether the database file its connection opened is still
 * the one at its path (it compares the inode it holds with a fresh stat).
 * Returns 1 when it moved, 0 when not. */
static int files_db_moved(store *s)
{
    int moved = 0;
    int rc =
        sqlite3_file_control(s->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved);
    /* A VFS without the request cannot tell: that is not a move. */
    return rc == SQLITE_OK && moved != 0;
}

int store_files_record(store *s, const char *path)
{
    free(s->path);
    free(s->wal_path);
    s->path = xstrdup(path);
    s->wal_path = files_suffixed(path, "-wal");
    if (s->path == NULL || s->wal_path == NULL)
        return store_failf(s, TRINE_ENOMEM, "out of memory");
    store_files_at(path, &s->files);
    /* The file SQLite opened may have been replaced between its open and
     * the stat above; then the identity recorded would be the wrong one. */
    if (!s->files.db.known || files_db_moved(s))
        return 1;
    return 0;
}

int store_moved(store *s)
{
    if (s == NULL || s->db == NULL || s->path == NULL)
        return TRINE_EINVAL;
    if (files_db_moved(s))
        return store_failf(s, 1, "audit log deleted or replaced under trined");
    /* The WAL holds the commits not yet copied into the database: when it
     * is gone from the path, the next connection would never see them. */
    if (s->files.wal.known) {
        store_file_id now;
        files_id(s->wal_path, &now);
        if (!store_same_file(&now, &s->files.wal))
            return store_failf(s, 1,
                               "audit log's WAL file deleted or"
                               " replaced under trined");
    }
    return 0;
}

int store_sync_db(store *s)
{
    sqlite3_file *f = NULL;
    int rc = sqlite3_file_control(s->db, "main", SQLITE_FCNTL_FILE_POINTER, &f);
    if (rc != SQLITE_OK || f == NULL || f->pMethods == NULL)
        return store_failf(s, TRINE_EIO, "no database file to sync");
    rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL | SQLITE_SYNC_DATAONLY);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    return 0;
}

/* Checks that the effective ids of this process may write path. Returns 0,
 * or errno. */
static int files_access(const char *path)
{
    /* AT_EACCESS: the effective ids are the ones open(2) would use. */
    if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) == 0)
        return 0;
    return errno;
}

int store_writable(store *s)
{
    if (s == NULL || s->path == NULL)
        return TRINE_EINVAL;
    int e = files_access(s->path);
    if (e == 0)
        return 0;
    return store_failf(s, TRINE_EIO, "audit log is read-only (%s: %s)", s->path,
                       strerror(e));
}

int store_path_writable(const char *path, char *err, size_t errlen)
{
    int e = files_access(path);
    if (e == 0 || e == ENOENT)
        return 0;
    if (errlen > 0)
        snprintf(err, errlen, "audit log is read-only (%s: %s)", path,
                 strerror(e));
    return TRINE_EIO;
}

/* Unlinks path when it is the file id names. Returns 1 when removed. */
static int files_remove_if(const char *path, const store_file_id *id)
{
    if (path == NULL || !id->known)
        return 0;
    store_file_id now;
    files_id(path, &now);
    if (!store_same_file(&now, id))
        return 0;
    return unlink(path) == 0 ? 1 : 0;
}

int store_remove_stale(const char *path, const store_files *stale)
{
    char *wal = files_suffixed(path, "-wal");
    char *shm = files_suffixed(path, "-shm");
    int n =
        files_remove_if(wal, &stale->wal) + files_remove_if(shm, &stale->shm);
    free(wal);
    free(shm);
    return n;
}
