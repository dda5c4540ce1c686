/*
 * http.c - the HTTP client for the authorization server (see http.h).
 */
#include "daemon/http.h"

#include "trine.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct http_client {
    CURL *h;
    int timeout_ms;
    int connect_ms;
    const atomic_bool *stop;
    http_response *cur; /* the response being read */
    bool oversize;      /* the body passed HTTP_MAX_BODY */
    char errbuf[CURL_ERROR_SIZE];
};

int http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : TRINE_EIO;
}

void http_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- URLs -------------------------------------------------------------- */

/* The parts of a URL the checks need, each curl_free'd by the caller. */
typedef struct url_parts {
    char *scheme;
    char *host;
    char *user;
    char *password;
} url_parts;

static void url_parts_free(url_parts *p)
{
    curl_free(p->scheme);
    curl_free(p->host);
    curl_free(p->user);
    curl_free(p->password);
    memset(p, 0, sizeof *p);
}

/* Splits url with libcurl's own parser, so the checks see the URL exactly
 * as the transfer will. Returns 0, TRINE_EINVAL with a message, or
 * TRINE_ENOMEM. */
static int url_split(const char *url, url_parts *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    CURLU *u = curl_url();
    if (u == NULL)
        return TRINE_ENOMEM;
    CURLUcode rc =
        curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (rc == CURLUE_OUT_OF_MEMORY) {
        curl_url_cleanup(u);
        return TRINE_ENOMEM;
    }
    if (rc != CURLUE_OK) {
        snprintf(err, errlen, "\"%s\" is not a valid URL: %s", url,
                 curl_url_strerror(rc));
        curl_url_cleanup(u);
        return TRINE_EINVAL;
    }
    int ret = 0;
    if (curl_url_get(u, CURLUPART_SCHEME, &p->scheme, 0) != CURLUE_OK) {
        snprintf(err, errlen, "\"%s\" is not a valid URL: no scheme", url);
        ret = TRINE_EINVAL;
    }
    /* A missing host (file:///...), user or password is an error code
     * here, not a failure: the callers decide. */
    curl_url_get(u, CURLUPART_HOST, &p->host, 0);
    curl_url_get(u, CURLUPART_USER, &p->user, 0);
    curl_url_get(u, CURLUPART_PASSWORD, &p->password, 0);
    curl_url_cleanup(u);
    if (ret != 0)
        url_parts_free(p);
    return ret;
}

/* True for "localhost", an IPv4 address in 127.0.0.0/8 and [::1]. */
static bool host_is_loopback(const char *host)
{
    if (strcasecmp(host, "localhost") == 0)
        return true;
    unsigned char a4[4];
    if (inet_pton(AF_INET, host, a4) == 1)
        return a4[0] == 127;
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        char inner[64];
        if (n - 2 >= sizeof inner)
            return false;
        memcpy(inner, host + 1, n - 2);
        inner[n - 2] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, inner, &a6) == 1)
            return memcmp(&a6, &in6addr_loopback, sizeof a6) == 0;
    }
    return false;
}

bool http_url_is_loopback(const char *url)
{
    url_parts p;
    char err[8];
    if (url_split(url, &p, err, sizeof err) != 0)
        return false;
    bool lo = p.host != NULL && host_is_loopback(p.host);
    url_parts_free(&p);
    return lo;
}

int http_url_check(const char *url, char *err, size_t errlen)
{
    url_parts p;
    int rc = url_split(url, &p, err, errlen);
    if (rc != 0)
        return rc;
    if (strcmp(p.scheme, "https") != 0 && strcmp(p.scheme, "http") != 0) {
        snprintf(err, errlen, "\"%s\": scheme \"%s\" is not https", url,
                 p.scheme);
        rc = TRINE_EINVAL;
    } else if (p.host == NULL || p.host[0] == '\0') {
        snprintf(err, errlen, "\"%s\" names no host", url);
        rc = TRINE_EINVAL;
    } else if (p.user != NULL || p.password != NULL) {
        snprintf(err, errlen,
                 "%s: a URL must not carry a user name or "
                 "password",
                 p.host);
        rc = TRINE_EINVAL;
    } else if (strcmp(p.scheme, "http") == 0) {
        if (!host_is_loopback(p.host)) {
            snprintf(err, errlen,
                     "\"%s\" must use https (plain http is allowed only to "
                     "a loopback host)",
                     url);
            rc = TRINE_EINVAL;
        }
    }
    url_parts_free(&p);
    return rc;
}

/* ---- Encodings --------------------------------------------------------- */

void http_form_encode(strbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            sb_putc(b, (char)c);
        } else if (c == ' ') {
            sb_putc(b, '+');
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_putn(b, esc, 3);
        }
    }
}

int http_basic_auth(strbuf *b, const char *id, const char *secret)
{
    strbuf raw;
    sb_init(&raw);
    http_form_encode(&raw, id, strlen(id));
    sb_putc(&raw, ':');
    http_form_encode(&raw, secret, strlen(secret));
    int rc = 0;
    if (raw.oom || raw.len > 64 * 1024) {
        rc = TRINE_ENOMEM;
    } else {
        size_t need = 4 * ((raw.len + 2) / 3) + 1;
        sb_puts(b, "Basic ");
        if (!sb_reserve(b, need)) {
            rc = TRINE_ENOMEM;
        } else {
            int n =
                EVP_EncodeBlock((unsigned char *)b->data + b->len,
                                (const unsigned char *)raw.data, (int)raw.len);
            b->len += (size_t)n;
            b->data[b->len] = '\0';
        }
    }
    if (raw.data != NULL)
        explicit_bzero(raw.data, raw.cap);
    sb_free(&raw);
    return rc != 0 || b->oom ? TRINE_ENOMEM : 0;
}

/* True when the n bytes at s equal the lowercase word w, ignoring case. */
static bool word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

int64_t http_parse_max_age(const char *v, size_t n)
{
    int64_t age = -1;
    bool none = false;
    size_t i = 0;
    while (i < n) {
        /* One directive: name [ "=" value ], up to the next comma. */
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t name = i;
        while (i < n && v[i] != '=' && v[i] != ',' && v[i] != ' ' &&
               v[i] != '\t')
            i++;
        size_t name_len = i - name;
        while (i < n && (v[i] == ' ' || v[i] == '\t'))
            i++;
        const char *val = NULL;
        size_t val_len = 0;
        if (i < n && v[i] == '=') {
            i++;
            while (i < n && (v[i] == ' ' || v[i] == '\t'))
                i++;
            bool quoted = i < n && v[i] == '"';
            if (quoted)
                i++;
            val = v + i;
            while (i < n && v[i] != ',' && v[i] != '"' && v[i] != ' ' &&
                   v[i] != '\t')
                i++;
            val_len = (size_t)(v + i - val);
            if (quoted && i < n && v[i] == '"')
                i++;
        }
        /* Skip whatever is left of a malformed directive. */
        while (i < n && v[i] != ',')
            i++;
        if (word_is(v + name, name_len, "no-store") ||
            word_is(v + name, name_len, "no-cache")) {
            none = true;
        } else if (word_is(v + name, name_len, "max-age") && val != NULL &&
                   val_len > 0 && age < 0) {
            int64_t x = 0;
            size_t k = 0;
            for (; k < val_len && val[k] >= '0' && val[k] <= '9'; k++) {
                if (x < INT32_MAX)
                    x = x * 10 + (val[k] - '0');
            }
            if (k == val_len)
                age = x > INT32_MAX ? INT32_MAX : x;
        }
    }
    return none ? 0 : age;
}

/* ---- Transfers --------------------------------------------------------- */

int http_client_new(int timeout_ms, int connect_timeout_ms,
                    const atomic_bool *stop, http_client **out)
{
    *out = NULL;
    http_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return TRINE_ENOMEM;
    c->h = curl_easy_init();
    if (c->h == NULL) {
        free(c);
        return TRINE_ENOMEM;
    }
    c->timeout_ms = timeout_ms;
    c->connect_ms = connect_timeout_ms;
    c->stop = stop;
    *out = c;
    return 0;
}

void http_client_free(http_client *c)
{
    if (c == NULL)
        return;
    curl_easy_cleanup(c->h);
    free(c);
}

void http_response_init(http_response *r)
{
    r->status = 0;
    sb_init(&r->body);
    r->max_age_s = -1;
}

void http_response_free(http_response *r)
{
    if (r->body.data != NULL)
        explicit_bzero(r->body.data, r->body.cap);
    sb_free(&r->body);
    r->status = 0;
    r->max_age_s = -1;
}

static size_t http_on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    http_client *c = ctx;
    size_t n = size * nmemb;
    strbuf *b = &c->cur->body;
    if (n > HTTP_MAX_BODY || b->len + n > HTTP_MAX_BODY) {
        c->oversize = true;
        return 0; /* aborts the transfer */
    }
    sb_putn(b, data, n);
    return b->oom ? 0 : n;
}

static size_t http_on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
    http_client *c = ctx;
    size_t n = size * nmemb;
    static const char name[] = "cache-control:";
    size_t k = sizeof name - 1;
    if (n > k && strncasecmp(data, name, k) == 0 && c->cur->max_age_s < 0) {
        size_t end = n;
        while (end > k && (data[end - 1] == '\r' || data[end - 1] == '\n'))
            end--;
        c->cur->max_age_s = http_parse_max_age(data + k, end - k);
    }
    return n;
}

static int http_on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow,
                            curl_off_t ultotal, curl_off_t ulnow)
{
    const http_client *c = ctx;
    return c->stop != NULL && atomic_load(c->stop) ? 1 : 0;
}

/* Overwrites and frees a header list (it may hold a client secret). */
static void http_free_headers(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p != NULL; p = p->next) {
        if (p->data != NULL)
            explicit_bzero(p->data, strlen(p->data));
    }
    curl_slist_free_all(l);
}

/* Sets the options every request shares. Returns curl's code. */
static CURLcode http_setup(http_client *c, const char *url,
                           struct curl_slist *headers)
{
    CURL *h = c->h;
    CURLcode e = curl_easy_setopt(h, CURLOPT_URL, url);
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https,http");
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_ms);
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
                             (curl_off_t)HTTP_MAX_BODY);
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_on_body);
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, http_on_header);
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_USERAGENT, "trined");
    if (e == CURLE_OK)
        e = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    if (e == CURLE_OK && c->stop != NULL) {
        e = curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, http_on_progress);
        if (e == CURLE_OK)
            e = curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
        if (e == CURLE_OK)
            e = curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    /* A loopback server is never reached through a proxy the environment
     * names. TLS verification keeps libcurl's defaults (peer and host
     * verified) and is not touched anywhere. */
    if (e == CURLE_OK && http_url_is_loopback(url))
        e = curl_easy_setopt(h, CURLOPT_PROXY, "");
    return e;
}

/* Runs the request set up on c's handle. Returns as http_get. */
static int http_perform(http_client *c, http_response *r, char *err,
                        size_t errlen)
{
    CURLcode e = curl_easy_perform(c->h);
    if (e != CURLE_OK) {
        if (r->body.oom) {
            snprintf(err, errlen, "out of memory");
            return TRINE_ENOMEM;
        }
        if (c->oversize || e == CURLE_FILESIZE_EXCEEDED)
            snprintf(err, errlen, "response larger than %d bytes",
                     HTTP_MAX_BODY);
        else if (e == CURLE_ABORTED_BY_CALLBACK)
            snprintf(err, errlen, "the daemon is stopping");
        else
            snprintf(err, errlen, "%s",
                     c->errbuf[0] ? c->errbuf : curl_easy_strerror(e));
        return TRINE_EIO;
    }
    long status = 0;
    curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
    r->status = status;
    return 0;
}

/* Runs one request: setup, transfer, and a reset of the handle, so that it
 * keeps no pointer to our buffers between requests. */
static int http_request(http_client *c, const char *url, const char *body,
                        size_t len, const char *authorization, http_response *r,
                        char *err, size_t errlen)
{
    http_response_free(r);
    http_response_init(r);
    c->cur = r;
    c->oversize = false;
    c->errbuf[0] = '\0';
    curl_easy_reset(c->h);

    struct curl_slist *headers = NULL;
    struct curl_slist *t = curl_slist_append(NULL, "Accept: application/json");
    headers = t;
    if (t != NULL && body != NULL) {
        t = curl_slist_append(
            headers, "Content-Type: application/x-www-form-urlencoded");
        if (t != NULL)
            t = curl_slist_append(headers, "Expect:");
    }
    strbuf auth;
    sb_init(&auth);
    if (t != NULL && authorization != NULL) {
        sb_puts(&auth, "Authorization: ");
        sb_puts(&auth, authorization);
        t = auth.oom ? NULL : curl_slist_append(headers, auth.data);
    }
    if (auth.data != NULL)
        explicit_bzero(auth.data, auth.cap);
    sb_free(&auth);
    if (t == NULL) {
        http_free_headers(headers);
        snprintf(err, errlen, "out of memory");
        return TRINE_ENOMEM;
    }

    CURLcode e = http_setup(c, url, headers);
    if (e == CURLE_OK && body != NULL) {
        e = curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)len);
        if (e == CURLE_OK)
            e = curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
    }
    int rc;
    if (e != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(e));
        rc = e == CURLE_OUT_OF_MEMORY ? TRINE_ENOMEM : TRINE_EIO;
    } else {
        rc = http_perform(c, r, err, errlen);
    }
    curl_easy_reset(c->h);
    http_free_headers(headers);
    c->cur = NULL;
    return rc;
}

int http_get(http_client *c, const char *url, http_response *r, char *err,
             size_t errlen)
{
    return http_request(c, url, NULL, 0, NULL, r, err, errlen);
}

int http_post_form(http_client *c, const char *url, const char *body,
                   size_t len, const char *authorization, http_response *r,
                   char *err, size_t errlen)
{
    return http_request(c, url, body != NULL ? body : "", len, authorization, r,
                        err, errlen);
}
