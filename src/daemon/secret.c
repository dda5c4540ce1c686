/*
 * secret.c - reading a client secret from a file (never from the command
 * line, where every user of the machine could read it in the process list).
 */
#include "daemon/secret.h"

#include "lib/util.h"
#include "trine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest client secret file read. */
#define SECRET_MAX 4096

int secret_read_file(const char *path, char **out, bool *world_readable,
                     char *err, size_t errlen)
{
    *out = NULL;
    *world_readable = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return TRINE_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return TRINE_EINVAL;
    }
    *world_readable = (st.st_mode & S_IROTH) != 0;
    char buf[SECRET_MAX + 3];
    size_t len = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            rc = TRINE_EIO;
            break;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf)
            break;
    }
    close(fd);
    if (rc == 0 && len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r')
            len--;
    }
    if (rc == 0 && len > SECRET_MAX) {
        snprintf(err, errlen, "%s: longer than %d bytes", path, SECRET_MAX);
        rc = TRINE_EINVAL;
    } else if (rc == 0 && len == 0) {
        snprintf(err, errlen, "%s: the client secret is empty", path);
        rc = TRINE_EINVAL;
    } else if (rc == 0 && memchr(buf, '\0', len) != NULL) {
        snprintf(err, errlen, "%s: the client secret holds a NUL byte", path);
        rc = TRINE_EINVAL;
    }
    if (rc == 0) {
        *out = xstrndup(buf, len);
        if (*out == NULL)
            rc = TRINE_ENOMEM;
    }
    explicit_bzero(buf, sizeof buf);
    return rc;
}
