/*
 * http.h - the daemon's HTTP client for the authorization server (DESIGN
 * §5): GET for JWKS documents and a form POST for token introspection, over
 * libcurl.
 *
 * The rules every request follows: TLS peer and host verification stay on
 * (libcurl's defaults, never turned off); only the http and https
 * protocols; no redirects; a connect timeout and a total timeout; at most
 * HTTP_MAX_BODY bytes of response (the transfer is aborted past it); no
 * signals. Plain http is accepted only to a loopback host, which
 * http_url_check enforces on the configured URLs at startup.
 *
 * One http_client wraps one CURL easy handle and serves one thread: the
 * handle is reset and reused for every request of that thread, so its
 * connections and TLS sessions are reused too.
 */
#ifndef TRINED_HTTP_H
#define TRINED_HTTP_H

#include "lib/util.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest response body read. */
#define HTTP_MAX_BODY (1024 * 1024)
/* The longest wait for a connection (less when the total timeout is). */
#define HTTP_CONNECT_TIMEOUT_MS 2000

/* Initialises libcurl for the whole process. Call once at startup, before
 * any thread starts. Returns 0 or TRINE_EIO. */
int http_global_init(void);

/* Releases what http_global_init set up. Call once, after every client is
 * freed. */
void http_global_cleanup(void);

/* Checks that url is an absolute https URL, or an http URL whose host is a
 * loopback address (127.0.0.0/8, ::1) or "localhost", and that it carries no
 * user name or password. Returns 0, or TRINE_EINVAL with a message naming
 * what is wrong in err. */
int http_url_check(const char *url, char *err, size_t errlen);

/* True when url's host is a loopback address or "localhost" (false for a URL
 * that does not parse). */
bool http_url_is_loopback(const char *url);

typedef struct http_client http_client;

/* Makes a client with a total timeout and a connect timeout in ms. When
 * stop is not NULL, a transfer in progress is aborted soon after *stop
 * becomes true. Returns 0 with *out, or TRINE_ENOMEM. */
int http_client_new(int timeout_ms, int connect_timeout_ms,
                    const atomic_bool *stop, http_client **out);

/* Frees the client and its handle. NULL is a no-op. */
void http_client_free(http_client *c);

/* A response. body is NUL-terminated. */
typedef struct http_response {
    long status;       /* the HTTP status, 0 before a response */
    strbuf body;       /* at most HTTP_MAX_BODY bytes */
    int64_t max_age_s; /* Cache-Control max-age, -1 when absent */
} http_response;

void http_response_init(http_response *r);

/* Overwrites the body with zeros (it may hold token claims) and frees it. */
void http_response_free(http_response *r);

/* GETs url into r (emptied first). Returns 0 when a response arrived,
 * whatever its status; TRINE_EIO when none did (no connection, a timeout, a
 * TLS failure, a body over HTTP_MAX_BODY, an abort), with the reason in
 * err; or TRINE_ENOMEM. */
int http_get(http_client *c, const char *url, http_response *r, char *err,
             size_t errlen);

/* POSTs len bytes of body as application/x-www-form-urlencoded to url, with
 * the header "Authorization: <authorization>" when authorization is not
 * NULL. Returns as http_get. The client keeps no copy of the body or of the
 * header after it returns. */
int http_post_form(http_client *c, const char *url, const char *body,
                   size_t len, const char *authorization, http_response *r,
                   char *err, size_t errlen);

/* Appends n bytes of s form-urlencoded (application/x-www-form-urlencoded):
 * ASCII letters, digits and "-._~" as they are, a space as '+', every other
 * byte as %XX. */
void http_form_encode(strbuf *b, const char *s, size_t n);

/* Appends the value of an HTTP Basic Authorization header for a client id
 * and secret as RFC 6749 §2.3.1 wants it: "Basic " and the base64 of
 * form-urlencoded id, ':', form-urlencoded secret. Returns 0 or
 * TRINE_ENOMEM. */
int http_basic_auth(strbuf *b, const char *id, const char *secret);

/* Reads max-age=N from a Cache-Control header value (n bytes; directive
 * names are case-insensitive, the value may be quoted). Returns N (capped
 * at INT32_MAX), 0 for no-store or no-cache, or -1 when the value says
 * nothing about it or is malformed. */
int64_t http_parse_max_age(const char *v, size_t n);

#endif /* TRINED_HTTP_H */
