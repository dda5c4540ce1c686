/*
 * verify.c - recomputing the audit log's hash chain and naming the first
 * row that does not hold.
 *
 * A row is intact when its columns have the types the writer gives them,
 * its id follows the previous row's, its hash is the hash of its contents,
 * and its prev_hash is the previous row's hash (32 zero bytes for the
 * first). The whole walk is one SELECT, so it reads one snapshot while a
 * writer keeps appending.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "store/store_int.h"

/* The text columns of AUDIT_CHAIN_COLUMNS: their index, name, and whether
 * NULL is allowed. */
static const struct {
    int col;
    const char *name;
    bool nullable;
} verify_text_cols[] = {
    {2, "policy_rev", false}, {3, "server", false},   {4, "tool", false},
    {5, "user", true},        {6, "agent", true},     {7, "chain", true},
    {8, "session", true},     {9, "decision", false}, {10, "reason", false},
    {11, "arguments", true},  {12, "detail", false},
};

/* Checks that every column has the type and size the writer gives it:
 * otherwise a value could change type (text to blob, "1" to 1) and still
 * hash the same, or hide bytes after a NUL. Writes why and returns false
 * when one does not. */
static bool verify_types(sqlite3_stmt *st, char *why, size_t whylen)
{
    if (sqlite3_column_type(st, 1) != SQLITE_INTEGER) {
        snprintf(why, whylen, "ts_ms is not an integer");
        return false;
    }
    for (size_t i = 0; i < sizeof verify_text_cols / sizeof verify_text_cols[0];
         i++) {
        int col = verify_text_cols[i].col;
        int type = sqlite3_column_type(st, col);
        if (type == SQLITE_NULL && verify_text_cols[i].nullable)
            continue;
        if (type != SQLITE_TEXT) {
            snprintf(why, whylen, "%s is not text", verify_text_cols[i].name);
            return false;
        }
        const unsigned char *t = sqlite3_column_text(st, col);
        int n = sqlite3_column_bytes(st, col);
        if (t == NULL || strlen((const char *)t) != (size_t)n) {
            snprintf(why, whylen, "%s holds a NUL byte",
                     verify_text_cols[i].name);
            return false;
        }
    }
    static const char *const blobs[2] = {"prev_hash", "hash"};
    for (int i = 0; i < 2; i++) {
        if (sqlite3_column_type(st, 14 + i) != SQLITE_BLOB ||
            sqlite3_column_bytes(st, 14 + i) != 32) {
            snprintf(why, whylen, "%s is not 32 bytes", blobs[i]);
            return false;
        }
    }
    return true;
}

int audit_verify(store *s, int64_t *rows, int64_t *bad_id, char *why,
                 size_t whylen)
{
    static const unsigned char zero[32];
    char scratch[160];
    if (why == NULL || whylen == 0) {
        why = scratch;
        whylen = sizeof scratch;
    }
    why[0] = '\0';
    *rows = 0;
    *bad_id = -1;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        s->db, "SELECT " AUDIT_CHAIN_COLUMNS " FROM decisions ORDER BY id", -1,
        &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    unsigned char prev[32];
    memcpy(prev, zero, sizeof prev);
    int64_t prev_id = 0;
    int ret = 0;
    for (;;) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            ret = store_fail(s, rc);
            break;
        }
        int64_t id = sqlite3_column_int64(st, 0);
        ++*rows;
        *bad_id = id;
        ret = 1;
        if (id < 1) {
            snprintf(why, whylen, "id is not a positive integer");
            break;
        }
        if (id != prev_id + 1) {
            snprintf(why, whylen, "row %" PRId64 " is missing", prev_id + 1);
            break;
        }
        /* Types first: reading a column as text converts it, after which
         * SQLite no longer reports its stored type. */
        if (!verify_types(st, why, whylen))
            break;
        audit_row row;
        audit_row_from_stmt(st, &row);
        unsigned char hash[32];
        int err = audit_hash_with(s, &row, hash);
        if (err < 0) {
            ret = err;
            break;
        }
        if (memcmp(hash, row.hash, 32) != 0) {
            snprintf(why, whylen, "hash does not match its contents");
            break;
        }
        if (memcmp(prev, row.prev_hash, 32) != 0) {
            if (prev_id == 0)
                snprintf(why, whylen,
                         "prev_hash of the first row is not"
                         " 32 zero bytes");
            else
                snprintf(why, whylen,
                         "prev_hash does not match row %" PRId64 "'s hash",
                         prev_id);
            break;
        }
        memcpy(prev, row.hash, 32);
        prev_id = row.id;
        ret = 0;
    }
    sqlite3_finalize(st);
    if (ret <= 0)
        *bad_id = -1;
    return ret;
}
