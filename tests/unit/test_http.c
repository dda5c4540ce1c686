/*
 * test_http.c - the HTTP client of trined: which URLs it accepts (https, or
 * http to a loopback host only), the encodings of an introspection request
 * (form-urlencoding, HTTP Basic per RFC 6749 §2.3.1), Cache-Control
 * max-age, and real transfers against a one-shot server on 127.0.0.1: the
 * request it sends, the response size cap, the timeout, and redirects not
 * followed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon/http.h"
#include "trine.h"

/* ---- URLs -------------------------------------------------------------- */

static void expect_url_ok(const char *url)
{
    char err[256] = "";
    assert_int_equal(http_url_check(url, err, sizeof err), 0);
}

static void expect_url_bad(const char *url, const char *msg)
{
    char err[256] = "";
    assert_int_equal(http_url_check(url, err, sizeof err), TRINE_EINVAL);
    assert_string_equal(err, msg);
}

static void test_url_rule(void **state)
{
    (void)state;
    expect_url_ok("https://as.example.com/.well-known/jwks.json");
    expect_url_ok("HTTPS://as.example.com:8443/introspect");
    expect_url_ok("http://127.0.0.1:8080/jwks");
    expect_url_ok("http://127.5.6.7/jwks");
    expect_url_ok("http://localhost:9/x");
    expect_url_ok("http://LocalHost/x");
    expect_url_ok("http://[::1]:9/x");
    expect_url_bad("http://as.example.com/jwks",
                   "\"http://as.example.com/jwks\" must use https (plain "
                   "http is allowed only to a loopback host)");
    expect_url_bad("http://128.0.0.1/jwks",
                   "\"http://128.0.0.1/jwks\" must use https (plain http is "
                   "allowed only to a loopback host)");
    expect_url_bad("http://[::2]/x", "\"http://[::2]/x\" must use https "
                                     "(plain http is allowed only to a "
                                     "loopback host)");
    /* Names that merely start like a loopback host are not one. */
    expect_url_bad("http://localhost.evil.example/x",
                   "\"http://localhost.evil.example/x\" must use https "
                   "(plain http is allowed only to a loopback host)");
    expect_url_bad("http://127.0.0.1.nip.io/x",
                   "\"http://127.0.0.1.nip.io/x\" must use https (plain "
                   "http is allowed only to a loopback host)");
    expect_url_bad("ftp://as.example.com/jwks",
                   "\"ftp://as.example.com/jwks\": scheme \"ftp\" is not "
                   "https");
    expect_url_bad("file:///etc/passwd",
                   "\"file:///etc/passwd\": scheme \"file\" is not https");
    expect_url_bad("https://client:pw@as.example.com/x",
                   "as.example.com: a URL must not carry a user name or "
                   "password");
    char err[256] = "";
    assert_int_equal(http_url_check("not a url", err, sizeof err),
                     TRINE_EINVAL);
    assert_non_null(strstr(err, "\"not a url\" is not a valid URL"));
    assert_true(http_url_is_loopback("http://127.0.0.1:1/"));
    assert_false(http_url_is_loopback("https://as.example.com/"));
    assert_false(http_url_is_loopback("::"));
}

/* ---- Encodings --------------------------------------------------------- */

static void test_form_encode(void **state)
{
    (void)state;
    strbuf b;
    sb_init(&b);
    const char in[] = "aZ09-._~ +/=&%\xc3\xa9";
    http_form_encode(&b, in, sizeof in - 1);
    assert_string_equal(b.data, "aZ09-._~+%2B%2F%3D%26%25%C3%A9");
    sb_free(&b);
}

static void test_basic_auth(void **state)
{
    (void)state;
    strbuf b;
    sb_init(&b);
    /* RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined with
     * ':' and base64-encoded. "my client:s3:cr/t" becomes
     * "my+client:s3%3Acr%2Ft". */
    assert_int_equal(http_basic_auth(&b, "my client", "s3:cr/t"), 0);
    assert_string_equal(b.data, "Basic bXkrY2xpZW50OnMzJTNBY3IlMkZ0");
    sb_free(&b);
}

static void test_max_age(void **state)
{
    (void)state;
#define AGE(s) http_parse_max_age(s, strlen(s))
    assert_int_equal(AGE("max-age=600"), 600);
    assert_int_equal(AGE(" public, max-age=60"), 60);
    assert_int_equal(AGE("Max-Age=\"120\", must-revalidate"), 120);
    assert_int_equal(AGE("max-age = 30"), 30);
    assert_int_equal(AGE("no-store"), 0);
    assert_int_equal(AGE("max-age=600, no-cache"), 0);
    assert_int_equal(AGE("max-age=abc"), -1);
    assert_int_equal(AGE("max-age="), -1);
    assert_int_equal(AGE("s-maxage=10"), -1);
    assert_int_equal(AGE("private"), -1);
    assert_int_equal(AGE(""), -1);
    assert_int_equal(AGE("max-age=99999999999999999999"), INT32_MAX);
    /* The first max-age counts. */
    assert_int_equal(AGE("max-age=5, max-age=9"), 5);
#undef AGE
}

/* ---- Transfers --------------------------------------------------------- */

/* A server that answers one connection with a canned response, after an
 * optional delay, and keeps what it received. */
typedef struct oneshot {
    int lfd;
    int port;
    const char *response;
    size_t response_len;
    int delay_ms;
    char got[8192];
    size_t got_len;
    pthread_t thread;
} oneshot;

static void *oneshot_main(void *arg)
{
    oneshot *o = arg;
    int fd = accept(o->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    /* Read the head and, for a POST, the body its Content-Length names. */
    for (;;) {
        ssize_t n =
            read(fd, o->got + o->got_len, sizeof o->got - 1 - o->got_len);
        if (n <= 0)
            break;
        o->got_len += (size_t)n;
        o->got[o->got_len] = '\0';
        char *end = strstr(o->got, "\r\n\r\n");
        if (end == NULL)
            continue;
        const char *cl = strstr(o->got, "Content-Length: ");
        size_t want = cl != NULL ? (size_t)atoi(cl + 16) : 0;
        if (o->got_len >= (size_t)(end + 4 - o->got) + want)
            break;
    }
    if (o->delay_ms > 0) {
        struct timespec ts = {o->delay_ms / 1000,
                              (long)(o->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    size_t off = 0;
    while (off < o->response_len) {
        ssize_t n = write(fd, o->response + off, o->response_len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    return NULL;
}

static void oneshot_start(oneshot *o, const char *response, size_t len,
                          int delay_ms)
{
    memset(o, 0, sizeof *o);
    o->response = response;
    o->response_len = len;
    o->delay_ms = delay_ms;
    o->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(o->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(o->lfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    assert_int_equal(getsockname(o->lfd, (struct sockaddr *)&a, &alen), 0);
    o->port = ntohs(a.sin_port);
    assert_int_equal(listen(o->lfd, 1), 0);
    assert_int_equal(pthread_create(&o->thread, NULL, oneshot_main, o), 0);
}

static void oneshot_stop(oneshot *o)
{
    shutdown(o->lfd, SHUT_RDWR);
    pthread_join(o->thread, NULL);
    close(o->lfd);
}

static int setup(void **state)
{
    (void)state;
    return http_global_init();
}

static int teardown(void **state)
{
    (void)state;
    http_global_cleanup();
    return 0;
}

/* A client, the URL of a path on a loopback port, and a response and an
 * error buffer for one request. */
typedef struct exchange {
    http_client *c;
    char url[64];
    http_response r;
    char err[256];
} exchange;

static void exchange_open(exchange *x, int timeout_ms, int connect_ms,
                          atomic_bool *stop, int port, const char *path)
{
    x->c = NULL;
    assert_int_equal(http_client_new(timeout_ms, connect_ms, stop, &x->c), 0);
    snprintf(x->url, sizeof x->url, "http://127.0.0.1:%d%s", port, path);
    http_response_init(&x->r);
    x->err[0] = '\0';
}

static void exchange_close(exchange *x)
{
    http_response_free(&x->r);
    http_client_free(x->c);
}

static void test_get_reads_status_body_and_max_age(void **state)
{
    (void)state;
    static const char resp[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "Cache-Control: public, max-age=600\r\n"
                               "Content-Length: 11\r\n"
                               "Connection: close\r\n\r\n"
                               "{\"keys\":[]}";
    oneshot o;
    oneshot_start(&o, resp, sizeof resp - 1, 0);
    exchange x;
    exchange_open(&x, 5000, 2000, NULL, o.port, "/jwks");
    assert_int_equal(http_get(x.c, x.url, &x.r, x.err, sizeof x.err), 0);
    assert_int_equal(x.r.status, 200);
    assert_string_equal(x.r.body.data, "{\"keys\":[]}");
    assert_int_equal(x.r.max_age_s, 600);
    oneshot_stop(&o);
    assert_non_null(strstr(o.got, "GET /jwks HTTP/1.1\r\n"));
    assert_non_null(strstr(o.got, "Accept: application/json\r\n"));
    exchange_close(&x);
}

static void test_post_sends_form_and_authorization(void **state)
{
    (void)state;
    static const char resp[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Length: 16\r\n"
                               "Connection: close\r\n\r\n"
                               "{\"active\":false}";
    oneshot o;
    oneshot_start(&o, resp, sizeof resp - 1, 0);
    exchange x;
    exchange_open(&x, 5000, 2000, NULL, o.port, "/introspect");
    const char body[] = "token=abc&token_type_hint=access_token";
    assert_int_equal(http_post_form(x.c, x.url, body, sizeof body - 1,
                                    "Basic YTpi", &x.r, x.err, sizeof x.err),
                     0);
    assert_int_equal(x.r.status, 200);
    assert_int_equal(x.r.max_age_s, -1);
    oneshot_stop(&o);
    assert_non_null(strstr(o.got, "POST /introspect HTTP/1.1\r\n"));
    assert_non_null(strstr(o.got, "Authorization: Basic YTpi\r\n"));
    assert_non_null(
        strstr(o.got, "Content-Type: application/x-www-form-urlencoded\r\n"));
    assert_null(strstr(o.got, "Expect:"));
    assert_non_null(
        strstr(o.got, "\r\n\r\ntoken=abc&token_type_hint=access_token"));
    exchange_close(&x);
}

static void test_oversize_response_is_cut(void **state)
{
    (void)state;
    /* No Content-Length: the cap must hold while reading. */
    size_t body = HTTP_MAX_BODY + 4096;
    static const char head[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
    char *resp = malloc(sizeof head - 1 + body);
    assert_non_null(resp);
    memcpy(resp, head, sizeof head - 1);
    memset(resp + sizeof head - 1, 'x', body);
    oneshot o;
    oneshot_start(&o, resp, sizeof head - 1 + body, 0);
    exchange x;
    exchange_open(&x, 5000, 2000, NULL, o.port, "/big");
    assert_int_equal(http_get(x.c, x.url, &x.r, x.err, sizeof x.err),
                     TRINE_EIO);
    assert_string_equal(x.err, "response larger than 1048576 bytes");
    assert_true(x.r.body.len <= HTTP_MAX_BODY);
    oneshot_stop(&o);
    free(resp);
    exchange_close(&x);
}

static void test_timeout(void **state)
{
    (void)state;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    oneshot o;
    oneshot_start(&o, resp, sizeof resp - 1, 1500);
    exchange x;
    exchange_open(&x, 300, 200, NULL, o.port, "/slow");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(http_get(x.c, x.url, &x.r, x.err, sizeof x.err),
                     TRINE_EIO);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms =
        (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms < 1400);
    assert_non_null(strstr(x.err, "imed out"));
    oneshot_stop(&o);
    exchange_close(&x);
}

static void test_redirect_not_followed(void **state)
{
    (void)state;
    static const char resp[] = "HTTP/1.1 302 Found\r\n"
                               "Location: http://127.0.0.1:1/elsewhere\r\n"
                               "Content-Length: 0\r\n\r\n";
    oneshot o;
    oneshot_start(&o, resp, sizeof resp - 1, 0);
    exchange x;
    exchange_open(&x, 5000, 2000, NULL, o.port, "/jwks");
    assert_int_equal(http_get(x.c, x.url, &x.r, x.err, sizeof x.err), 0);
    assert_int_equal(x.r.status, 302);
    oneshot_stop(&o);
    exchange_close(&x);
}

static void test_connection_refused(void **state)
{
    (void)state;
    /* A port nobody listens on: bind one, then close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &alen);
    close(fd);
    exchange x;
    exchange_open(&x, 2000, 1000, NULL, ntohs(a.sin_port), "/");
    assert_int_equal(http_get(x.c, x.url, &x.r, x.err, sizeof x.err),
                     TRINE_EIO);
    assert_true(x.err[0] != '\0');
    assert_int_equal(x.r.status, 0);
    exchange_close(&x);
}

static void test_stop_flag_aborts(void **state)
{
    (void)state;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
    oneshot o;
    oneshot_start(&o, resp, sizeof resp - 1, 1500);
    atomic_bool stop;
    atomic_init(&stop, true);
    exchange x;
    exchange_open(&x, 5000, 2000, &stop, o.port, "/");
    assert_int_equal(http_get(x.c, x.url, &x.r, x.err, sizeof x.err),
                     TRINE_EIO);
    assert_string_equal(x.err, "the daemon is stopping");
    oneshot_stop(&o);
    exchange_close(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_rule),
        cmocka_unit_test(test_form_encode),
        cmocka_unit_test(test_basic_auth),
        cmocka_unit_test(test_max_age),
        cmocka_unit_test(test_get_reads_status_body_and_max_age),
        cmocka_unit_test(test_post_sends_form_and_authorization),
        cmocka_unit_test(test_oversize_response_is_cut),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_redirect_not_followed),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_stop_flag_aborts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
