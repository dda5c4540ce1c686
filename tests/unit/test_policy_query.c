/*
 * test_policy_query.c - trine_policy_tool_consent: the consent a tool
 * demands, looked up by name and then through the server's wildcard tool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "trine.h"

static const char src[] =
    "scope \"s\" { allow a.read, a.write, a.delete on \"r:*\" }\n"
    "tool \"srv\" \"plain\" { needs a.read on \"r:x\" }\n"
    "tool \"srv\" \"hourly\" { needs a.write on \"r:x\"\n"
    "  consent once for 2h \"ok?\" }\n"
    "tool \"srv\" \"forever\" { needs a.write on \"r:x\" consent once }\n"
    "tool \"srv\" \"sess\" { needs a.write on \"r:x\" consent session }\n"
    "tool \"srv\" * { needs a.delete on \"r:x\" consent always }\n"
    "tool \"other\" \"t\" { needs a.read on \"r:x\" }\n";

static void expect(const trine_policy *p, const char *server, const char *tool,
                   int rc, trine_consent_mode mode, int64_t dur)
{
    trine_consent_mode m = (trine_consent_mode)99;
    int64_t d = 99;
    assert_int_equal(trine_policy_tool_consent(p, server, tool, &m, &d), rc);
    assert_int_equal(m, mode);
    assert_int_equal(d, dur);
}

static void test_tool_consent(void **state)
{
    (void)state;
    trine_source s = {"q.trine", src, sizeof src - 1};
    trine_diag *diag = trine_diag_new();
    trine_policy *p = NULL;
    int rc = trine_policy_load_sources(&s, 1, diag, &p);
    if (rc != 0)
        trine_diag_print(diag, stderr);
    assert_int_equal(rc, 0);
    trine_diag_free(diag);

    expect(p, "srv", "plain", 1, TRINE_CONSENT_NONE, -1);
    expect(p, "srv", "hourly", 1, TRINE_CONSENT_ONCE, 7200);
    expect(p, "srv", "forever", 1, TRINE_CONSENT_ONCE, -1);
    expect(p, "srv", "sess", 1, TRINE_CONSENT_SESSION, -1);
    /* Any other tool of srv: the wildcard block. */
    expect(p, "srv", "drop_table", 1, TRINE_CONSENT_ALWAYS, -1);
    expect(p, "other", "t", 1, TRINE_CONSENT_NONE, -1);
    expect(p, "other", "nope", 0, TRINE_CONSENT_NONE, -1);
    expect(p, "nobody", "t", 0, TRINE_CONSENT_NONE, -1);

    trine_consent_mode m;
    int64_t d;
    assert_int_equal(trine_policy_tool_consent(NULL, "srv", "t", &m, &d),
                     TRINE_EINVAL);
    assert_int_equal(trine_policy_tool_consent(p, "srv", NULL, &m, &d),
                     TRINE_EINVAL);
    trine_policy_release(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tool_consent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
