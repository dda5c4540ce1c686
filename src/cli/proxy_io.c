/*
 * proxy_io.c - the byte plumbing of `trine proxy`: write buffers that never
 * block, newline framing of what is read (with the --max-message limit),
 * and the messages queued for the client and the server.
 */
#include "cli/proxy.h"

#include "trine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The most bytes read from one descriptor per wake-up. */
#define PROXY_READ_BUDGET (4u * 1024u * 1024u)

size_t proxy_buf_pending(const proxy_buf *b)
{
    return b->len - b->off;
}

int proxy_buf_put(proxy_buf *b, const char *s, size_t n)
{
    if (b->off > 0 && (b->off == b->len || b->len + n > b->cap)) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + n > b->cap) {
        size_t ncap = b->cap > 0 ? b->cap : 4096;
        while (ncap < b->len + n) {
            if (ncap > SIZE_MAX / 2)
                return TRINE_ENOMEM;
            ncap *= 2;
        }
        char *p = realloc(b->data, ncap);
        if (p == NULL)
            return TRINE_ENOMEM;
        b->data = p;
        b->cap = ncap;
    }
    if (n > 0)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

void proxy_buf_free(proxy_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int proxy_buf_flush(proxy_buf *b, int fd)
{
    while (proxy_buf_pending(b) > 0) {
        ssize_t n = write(fd, b->data + b->off, proxy_buf_pending(b));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return n < 0 ? errno : EIO;
        b->off += (size_t)n;
    }
    b->off = 0;
    b->len = 0;
    return 0;
}

void proxy_to_client_raw(proxy *px, const char *s, size_t n)
{
    if (px->cout_dead)
        return;
    if (proxy_buf_put(&px->cout, s, n) != 0)
        px->fatal = true;
}

void proxy_to_client(proxy *px, json_t *msg)
{
    size_t len = 0;
    char *text = msg != NULL ? pmsg_dump(msg, &len) : NULL;
    json_decref(msg);
    if (text == NULL) {
        px->fatal = true;
        return;
    }
    proxy_to_client_raw(px, text, len);
    free(text);
}

void proxy_to_server(proxy *px, const char *s, size_t n)
{
    if (px->child_in < 0)
        return;
    if (proxy_buf_put(&px->sin, s, n) != 0)
        px->fatal = true;
}

/* ---- Reading lines ------------------------------------------------------ */

void proxy_reader_free(proxy_reader *r)
{
    free(r->data);
    r->data = NULL;
    r->len = r->cap = r->scan = 0;
}

/* Calls on_line for each complete line held, keeps the partial one. */
static void reader_split(proxy *px, proxy_reader *r,
                         void (*on_line)(proxy *, const char *, size_t),
                         void (*on_oversize)(proxy *))
{
    size_t start = 0;
    for (;;) {
        char *nl = memchr(r->data + r->scan, '\n', r->len - r->scan);
        if (nl == NULL)
            break;
        size_t end = (size_t)(nl - r->data);
        if (r->skipping)
            r->skipping = false;
        else if (end - start > r->max)
            on_oversize(px);
        else
            on_line(px, r->data + start, end - start);
        start = end + 1;
        r->scan = start;
    }
    size_t rest = r->len - start;
    if (r->skipping) {
        rest = 0;
    } else if (rest > r->max) {
        /* Answer now; the rest of the line is dropped as it comes. */
        on_oversize(px);
        r->skipping = true;
        rest = 0;
    }
    if (rest > 0 && start > 0)
        memmove(r->data, r->data + start, rest);
    r->len = rest;
    r->scan = rest;
}

/* True when the n bytes at s are JSON whitespace only. */
static bool blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    }
    return true;
}

int proxy_reader_fill(proxy *px, proxy_reader *r,
                      void (*on_line)(proxy *, const char *, size_t),
                      void (*on_oversize)(proxy *))
{
    size_t budget = PROXY_READ_BUDGET;
    while (budget > 0 && !r->eof) {
        size_t want = budget < (1u << 20) ? budget : (1u << 20);
        if (r->cap - r->len < want) {
            size_t need = r->len + want;
            size_t ncap = r->cap * 2 > need ? r->cap * 2 : need;
            size_t limit = r->max + want + 1;
            if (ncap > limit && need <= limit)
                ncap = limit;
            char *p = realloc(r->data, ncap);
            if (p == NULL) {
                px->fatal = true;
                return 0;
            }
            r->data = p;
            r->cap = ncap;
        }
        size_t room = r->cap - r->len;
        ssize_t n = read(r->fd, r->data + r->len, room < want ? room : want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0)
            return -1;
        if (n == 0) {
            r->eof = true;
            /* Bytes after the last newline are a last line. */
            if (!r->skipping && !blank(r->data, r->len)) {
                if (r->len > r->max)
                    on_oversize(px);
                else
                    on_line(px, r->data, r->len);
            }
            r->len = r->scan = 0;
            r->skipping = false;
            break;
        }
        r->len += (size_t)n;
        budget -= (size_t)n;
        reader_split(px, r, on_line, on_oversize);
        if (px->fatal)
            break;
    }
    return 0;
}
