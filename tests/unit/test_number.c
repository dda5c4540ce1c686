/*
 * test_number.c - numbers read and written the same in every locale: the
 * conversions of number.c, and through them the policy lexer, canonical
 * JSON and the messages of a decision, under a locale whose decimal point
 * is a comma (when one is installed; those cases are skipped otherwise).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/decision.h"
#include "lib/lexer.h"
#include "lib/number.h"

#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Locales that write 2.5 as "2,5", by the names systems install them as. */
static const char *const comma_locales[] = {
    "de_DE.UTF-8", "de_DE.utf8",  "fr_FR.UTF-8", "fr_FR.utf8",
    "nl_NL.UTF-8", "es_ES.UTF-8", "it_IT.UTF-8", "ru_RU.UTF-8",
    "pt_BR.UTF-8", "de_DE",       "fr_FR",       NULL};

/* Sets the process's LC_NUMERIC to an installed comma locale. Returns its
 * name, or NULL (locale unchanged) when none is installed. */
static const char *set_comma_locale(void)
{
    for (size_t i = 0; comma_locales[i] != NULL; i++) {
        if (setlocale(LC_NUMERIC, comma_locales[i]) == NULL)
            continue;
        if (strcmp(localeconv()->decimal_point, ",") == 0)
            return comma_locales[i];
        setlocale(LC_NUMERIC, "C");
    }
    return NULL;
}

/* A policy with a real in a constraint, checked end to end. */
static const char policy_src[] = "scope \"s\" { allow a on \"*\" }\n"
                                 "role r { allow a on \"*\" }\n"
                                 "user * { roles r }\n"
                                 "agent * { allow a on \"*\" }\n"
                                 "tool \"srv\" \"t\" {\n"
                                 "  needs a on \"x\"\n"
                                 "  arg ratio < 2.5\n"
                                 "}\n";

/* What the library produced, gathered without assertions so that another
 * thread can gather it and the test's own thread can check it. */
typedef struct observed {
    int parse_rc, parse_comma_rc;
    double parsed;
    int lex_rc;
    bool lex_int;
    double lexed;
    char shortest[NUM_BUF];
    char fixed[NUM_BUF];
    char canon_half[32], canon_hundred[32], canon_big[32];
    char canonical[64];
    int load_rc;
    char kind_below[32];
    char reason_at[32];
    char result_at[2048];
    char args_hash[65];
} observed;

/* Checks one request against p; copies the kind, the reason and the
 * result text into o's buffers (when given). */
static void observe_check(const trine_policy *p, double ratio, char *kind,
                          char *reason, char *result, char *hash)
{
    json_t *params =
        json_pack("{s:s,s:s,s:{s:f},s:{s:s,s:s,s:s}}", "server", "srv", "tool",
                  "t", "arguments", "ratio", ratio, "token", "sub", "u",
                  "scope", "s", "client_id", "c");
    trine_decision *d = NULL;
    trine_check_opts opts = {0, NULL, NULL};
    if (params != NULL && trine_check(p, params, &opts, &d, NULL, 0) == 0) {
        if (kind != NULL)
            snprintf(kind, 32, "%s", trine_decision_kind(d));
        if (reason != NULL)
            snprintf(reason, 32, "%s", trine_decision_reason(d));
        if (result != NULL)
            trine_decision_write(d, -1, result, 2048);
        if (hash != NULL)
            snprintf(hash, 65, "%s", trine_decision_args_hash(d));
    }
    trine_decision_free(d);
    json_decref(params);
}

static void observe(observed *o)
{
    memset(o, 0, sizeof *o);
    o->parse_rc = num_parse("-0.125", 6, &o->parsed);
    double ignored;
    o->parse_comma_rc = num_parse("2,5", 3, &ignored);
    int64_t iv = 0;
    o->lex_rc = lex_number("-1000.75", 8, &o->lexed, &o->lex_int, &iv);
    num_shortest(0.1, o->shortest);
    num_format(o->fixed, sizeof o->fixed, "%.1f", 3.0);
    canon_real(2.5, o->canon_half);
    canon_real(100.0, o->canon_hundred);
    canon_real(1e300, o->canon_big);

    json_t *v = json_pack("{s:f,s:[f,i]}", "b", 1.5, "a", -0.25, 3);
    char *text = NULL;
    if (v != NULL && trine_json_canonical(v, &text, NULL) == 0)
        snprintf(o->canonical, sizeof o->canonical, "%s", text);
    trine_free(text);
    json_decref(v);

    trine_source src = {"n.trine", policy_src, sizeof policy_src - 1};
    trine_policy *p = NULL;
    o->load_rc = trine_policy_load_sources(&src, 1, NULL, &p);
    if (p != NULL) {
        observe_check(p, 2.25, o->kind_below, NULL, NULL, NULL);
        observe_check(p, 2.5, NULL, o->reason_at, o->result_at, o->args_hash);
    }
    trine_policy_release(p);
}

/* What every locale must agree on. */
static void expect_c_behaviour(const observed *o)
{
    assert_int_equal(o->parse_rc, 0);
    assert_true(o->parsed == -0.125);
    /* Under a comma locale, strtod would read this as 2.5. */
    assert_int_equal(o->parse_comma_rc, -1);
    assert_int_equal(o->lex_rc, LEX_NUM_OK);
    assert_false(o->lex_int);
    assert_true(o->lexed == -1000.75);
    assert_string_equal(o->shortest, "0.1");
    assert_string_equal(o->fixed, "3.0");
    assert_string_equal(o->canon_half, "2.5");
    assert_string_equal(o->canon_hundred, "100.0");
    assert_string_equal(o->canon_big, "1e+300");
    assert_string_equal(o->canonical, "{\"a\":[-0.25,3],\"b\":1.5}");
    /* "arg ratio < 2.5" read as 2.5, not 2. */
    assert_int_equal(o->load_rc, 0);
    assert_string_equal(o->kind_below, "allow");
    assert_string_equal(o->reason_at, "argument_invalid");
    assert_non_null(strstr(o->result_at, "\"detail\":\"ratio must be < 2.5\""));
    /* The argument hash is over canonical JSON with "2.5". */
    char hex[65];
    trine_sha256_hex("{\"ratio\":2.5}", 13, hex);
    assert_string_equal(o->args_hash, hex);
}

static void test_c_locale(void **state)
{
    (void)state;
    observed o;
    observe(&o);
    expect_c_behaviour(&o);

    double d;
    /* Not a number in full, or too long to be worth reading. */
    assert_int_equal(num_parse("2.5x", 4, &d), -1);
    assert_int_equal(num_parse("", 0, &d), -1);
    static char big[600];
    memset(big, '1', sizeof big);
    assert_int_equal(num_parse(big, sizeof big, &d), -1);
    /* Only the n bytes given are read. */
    assert_int_equal(num_parse("7.25999", 4, &d), 0);
    assert_true(d == 7.25);
}

static void test_process_comma_locale(void **state)
{
    (void)state;
    const char *name = set_comma_locale();
    if (name == NULL)
        skip();
    /* The locale is really in force for the C library... */
    char probe[16];
    snprintf(probe, sizeof probe, "%.1f", 2.5);
    assert_string_equal(probe, "2,5");
    /* ...and not for libtrine. */
    observed o;
    observe(&o);
    /* The process's locale is left as it was. */
    snprintf(probe, sizeof probe, "%.1f", 2.5);
    setlocale(LC_NUMERIC, "C");
    assert_string_equal(probe, "2,5");
    expect_c_behaviour(&o);
}

/* A thread with a comma locale of its own (uselocale). */
typedef struct thread_job {
    locale_t loc;
    observed o;
    bool restored;
} thread_job;

static void *thread_body(void *arg)
{
    thread_job *job = arg;
    uselocale(job->loc);
    observe(&job->o);
    /* The thread's own locale is back after every conversion. */
    job->restored = uselocale((locale_t)0) == job->loc;
    uselocale(LC_GLOBAL_LOCALE);
    return NULL;
}

static void test_thread_comma_locale(void **state)
{
    (void)state;
    static thread_job job;
    job.loc = (locale_t)0;
    for (size_t i = 0; comma_locales[i] != NULL && job.loc == (locale_t)0; i++)
        job.loc = newlocale(LC_NUMERIC_MASK, comma_locales[i], (locale_t)0);
    if (job.loc == (locale_t)0)
        skip();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, thread_body, &job), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    freelocale(job.loc);
    assert_true(job.restored);
    expect_c_behaviour(&job.o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_c_locale),
        cmocka_unit_test(test_process_comma_locale),
        cmocka_unit_test(test_thread_comma_locale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
