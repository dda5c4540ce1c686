/*
 * loadgen.c - the load generator of the daemon benchmark (see loadgen.h).
 */
#include "support/loadgen.h"
#include "support/net.h"

#include "lib/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { PHASE_WARMUP, PHASE_MEASURE, PHASE_STOP };
static atomic_int phase;

typedef struct cl_conn {
    int fd;
    int inflight;
    int64_t *sent; /* ring of send times, depth entries */
    int head;
    char *rbuf;
    size_t rlen;
    size_t rcap;
} cl_conn;

typedef struct cl_thread {
    pthread_t th;
    cl_conn *conns;
    int nconns;
    int depth;
    const char *params;
    bool expect_allow;
    uint64_t next_id;
    uint32_t *lat; /* latencies in ns (capped), measuring phase only */
    size_t nlat;
    size_t caplat;
    uint64_t replies;
    uint64_t bad;
    int failed;
    strbuf w;
} cl_thread;

/* Appends k requests to t->w. */
static void cl_requests(cl_thread *t, int k)
{
    for (int i = 0; i < k; i++)
        sb_printf(&t->w,
                  "{\"jsonrpc\":\"2.0\",\"id\":%llu,\"method\":\"check\","
                  "\"params\":%s}\n",
                  (unsigned long long)t->next_id++, t->params);
}

/* Fills c's pipeline back up to the depth, in one write. */
static int cl_refill(cl_thread *t, cl_conn *c)
{
    int k = t->depth - c->inflight;
    if (k <= 0)
        return 0;
    sb_reset(&t->w);
    cl_requests(t, k);
    if (t->w.oom)
        return -1;
    int64_t ts = bench_now_ns();
    for (int i = 0; i < k; i++) {
        int slot = (c->head + c->inflight) % t->depth;
        c->sent[slot] = ts;
        c->inflight++;
    }
    return bench_write_all(c->fd, t->w.data, t->w.len);
}

static int cl_record(cl_thread *t, int64_t ns)
{
    if (t->nlat == t->caplat) {
        size_t cap = t->caplat ? t->caplat * 2 : 65536;
        uint32_t *p = realloc(t->lat, cap * sizeof *p);
        if (p == NULL)
            return -1;
        t->lat = p;
        t->caplat = cap;
    }
    t->lat[t->nlat++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
    return 0;
}

/* Reads replies on c; returns -1 when the connection failed. */
static int cl_read(cl_thread *t, cl_conn *c)
{
    for (;;) {
        if (c->rcap - c->rlen < 65536) {
            size_t cap = c->rcap ? c->rcap * 2 : 131072;
            char *p = realloc(c->rbuf, cap);
            if (p == NULL)
                return -1;
            c->rbuf = p;
            c->rcap = cap;
        }
        ssize_t n =
            recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return -1;
        c->rlen += (size_t)n;
    }
    int64_t ts = bench_now_ns();
    bool measuring =
        atomic_load_explicit(&phase, memory_order_relaxed) == PHASE_MEASURE;
    size_t start = 0;
    for (;;) {
        char *nl = memchr(c->rbuf + start, '\n', c->rlen - start);
        if (nl == NULL)
            break;
        size_t len = (size_t)(nl - (c->rbuf + start));
        if (c->inflight == 0)
            return -1; /* a reply nobody asked for */
        int64_t sent = c->sent[c->head];
        c->head = (c->head + 1) % t->depth;
        c->inflight--;
        if (measuring) {
            t->replies++;
            if (cl_record(t, ts - sent) != 0)
                return -1;
            if (t->expect_allow) {
                *nl = '\0';
                if (strstr(c->rbuf + start, "\"decision\":\"allow\"") == NULL)
                    t->bad++;
            }
        }
        start += len + 1;
    }
    memmove(c->rbuf, c->rbuf + start, c->rlen - start);
    c->rlen -= start;
    return 0;
}

static void *client_thread(void *arg)
{
    cl_thread *t = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        t->failed = 1;
        return NULL;
    }
    for (int i = 0; i < t->nconns; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &t->conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, t->conns[i].fd, &ev);
        if (cl_refill(t, &t->conns[i]) != 0)
            t->failed = 1;
    }
    while (!t->failed &&
           atomic_load_explicit(&phase, memory_order_relaxed) != PHASE_STOP) {
        struct epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 50);
        for (int i = 0; i < n && !t->failed; i++) {
            cl_conn *c = evs[i].data.ptr;
            if (cl_read(t, c) != 0 || cl_refill(t, c) != 0)
                t->failed = 1;
        }
    }
    close(ep);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int load_run(const load_opts *o, const char *path, const char *params,
             int nconns, int depth, bool expect_allow, load_result *r)
{
    int nth = o->client_threads < nconns ? o->client_threads : nconns;
    cl_thread *ts = calloc((size_t)nth, sizeof *ts);
    cl_conn *cs = calloc((size_t)nconns, sizeof *cs);
    int rc = -1;
    int connected = 0;
    memset(r, 0, sizeof *r);
    if (ts == NULL || cs == NULL)
        goto out;
    for (int i = 0; i < nconns; i++) {
        cs[i].fd = bench_unix_connect(path);
        cs[i].sent = calloc((size_t)depth, sizeof *cs[i].sent);
        if (cs[i].fd < 0 || cs[i].sent == NULL) {
            fprintf(stderr, "load: cannot connect to %s: %s\n", path,
                    strerror(errno));
            if (cs[i].fd >= 0)
                close(cs[i].fd);
            free(cs[i].sent);
            goto out;
        }
        connected++;
    }
    atomic_store(&phase, PHASE_WARMUP);
    int per = nconns / nth;
    int extra = nconns % nth;
    int at = 0;
    for (int i = 0; i < nth; i++) {
        cl_thread *t = &ts[i];
        t->nconns = per + (i < extra ? 1 : 0);
        t->conns = cs + at;
        at += t->nconns;
        t->depth = depth;
        t->params = params;
        t->expect_allow = expect_allow;
        t->next_id = 1;
        sb_init(&t->w);
    }
    int started = 0;
    for (int i = 0; i < nth; i++) {
        if (pthread_create(&ts[i].th, NULL, client_thread, &ts[i]) != 0)
            break;
        started++;
    }
    bench_sleep_s(o->warmup);
    atomic_store(&phase, PHASE_MEASURE);
    int64_t t0 = bench_now_ns();
    bench_sleep_s(o->seconds);
    atomic_store(&phase, PHASE_STOP);
    int64_t t1 = bench_now_ns();
    size_t nlat = 0;
    int failed = started < nth;
    for (int i = 0; i < started; i++) {
        pthread_join(ts[i].th, NULL);
        r->replies += ts[i].replies;
        r->bad += ts[i].bad;
        nlat += ts[i].nlat;
        failed |= ts[i].failed;
    }
    r->rate = (double)r->replies / ((double)(t1 - t0) / 1e9);
    uint32_t *all = malloc((nlat ? nlat : 1) * sizeof *all);
    if (all != NULL && nlat > 0) {
        size_t k = 0;
        for (int i = 0; i < started; i++) {
            memcpy(all + k, ts[i].lat, ts[i].nlat * sizeof *all);
            k += ts[i].nlat;
        }
        qsort(all, nlat, sizeof *all, cmp_u32);
        r->p50_us = all[(size_t)(0.50 * (double)(nlat - 1))] / 1e3;
        r->p99_us = all[(size_t)(0.99 * (double)(nlat - 1))] / 1e3;
    }
    free(all);
    if (failed)
        fprintf(stderr, "load: a connection to %s failed under load\n", path);
    rc = failed || nlat == 0 ? -1 : 0;
out:
    for (int i = 0; ts != NULL && i < nth; i++) {
        free(ts[i].lat);
        sb_free(&ts[i].w);
    }
    for (int i = 0; i < connected; i++) {
        close(cs[i].fd);
        free(cs[i].sent);
        free(cs[i].rbuf);
    }
    free(ts);
    free(cs);
    return rc;
}
