/*
 * secret.h - reading a client secret from a file.
 */
#ifndef TRINED_SECRET_H
#define TRINED_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* Reads a client secret from path: the whole file minus one trailing
 * newline ("\n" or "\r\n"), at most 4 KiB, not empty, no NUL byte. Sets
 * *world_readable when others may read the file. Returns 0 with *out (the
 * caller frees it, after overwriting it), or TRINE_EIO / TRINE_EINVAL with
 * a message in err, or TRINE_ENOMEM. */
int secret_read_file(const char *path, char **out, bool *world_readable,
                     char *err, size_t errlen);

#endif /* TRINED_SECRET_H */
