/*
 * policy_query.c - questions asked of a compiled policy after the fact: the
 * consent a tool demands, for the daemon's consent grants.
 */
#include "lib/policy.h"

int trine_policy_tool_consent(const trine_policy *p, const char *server,
                              const char *tool, trine_consent_mode *mode,
                              int64_t *duration_s)
{
    if (p == NULL || server == NULL || tool == NULL || mode == NULL ||
        duration_s == NULL)
        return TRINE_EINVAL;
    *mode = TRINE_CONSENT_NONE;
    *duration_s = -1;
    const cpl_server *srv = strmap_get(&p->servers, server);
    if (srv == NULL)
        return 0;
    const cpl_tool *t = strmap_get(&srv->tools, tool);
    if (t == NULL)
        t = srv->wildcard;
    if (t == NULL)
        return 0;
    *mode = t->consent;
    *duration_s = t->consent != TRINE_CONSENT_NONE ? t->consent_duration_s : -1;
    return 1;
}
