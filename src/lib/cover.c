/*
 * cover.c - step-up for a deny where only the token's scopes fell short
 * (DESIGN §2.4 step 5, §2.5 "Step-up"): which scopes to ask for, and the
 * WWW-Authenticate value an MCP server answers HTTP 403 with.
 *
 * Finding a smallest set of scopes is set cover, which is NP-hard; the greedy
 * choice (most still-uncovered pairs first) is within a log factor of the
 * best and, with ties to the scope declared first, predictable for policy
 * authors, who declare narrow scopes first.
 */
#include "lib/decision.h"

#include <stdlib.h>
#include <string.h>

bool cover_grants(const cpl_block *b, const char *action, size_t alen,
                  const char *res, size_t rlen)
{
    const cpl_rule *allow = NULL;
    const cpl_rule *deny = NULL;
    block_match(b, action, alen, res, rlen, &allow, &deny);
    return allow != NULL && deny == NULL;
}

size_t cover_greedy(const unsigned char *grants, size_t nscopes, size_t npairs,
                    unsigned char *seen, size_t *picked)
{
    size_t npicked = 0;
    memset(seen, 0, npairs);
    for (;;) {
        size_t best = SIZE_MAX;
        size_t best_gain = 0;
        for (size_t i = 0; i < nscopes; i++) {
            const unsigned char *row = grants + i * npairs;
            size_t gain = 0;
            for (size_t j = 0; j < npairs; j++) {
                if (row[j] && !seen[j])
                    gain++;
            }
            /* Strictly more: a tie keeps the scope declared first. */
            if (gain > best_gain) {
                best_gain = gain;
                best = i;
            }
        }
        if (best == SIZE_MAX)
            return npicked;
        picked[npicked++] = best;
        const unsigned char *row = grants + best * npairs;
        for (size_t j = 0; j < npairs; j++) {
            if (row[j])
                seen[j] = 1;
        }
    }
}

/* Appends s with '"' and '\' escaped, as in an HTTP quoted-string. */
static void put_quoted(strbuf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            sb_putc(b, '\\');
        sb_putc(b, *s);
    }
}

const char *cover_www_authenticate(trine_decision *d, const char *const *scopes,
                                   size_t n, const char *resource_metadata)
{
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "Bearer error=\"insufficient_scope\", scope=\"");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t k = 0; k < i && !dup; k++)
            dup = strcmp(scopes[k], scopes[i]) == 0;
        if (dup)
            continue;
        if (!first)
            sb_putc(&b, ' ');
        first = false;
        put_quoted(&b, scopes[i]);
    }
    sb_putc(&b, '"');
    if (resource_metadata != NULL) {
        sb_puts(&b, ", resource_metadata=\"");
        put_quoted(&b, resource_metadata);
        sb_putc(&b, '"');
    }
    const char *out = NULL;
    if (!b.oom)
        out = dec_strndup(d, b.data, b.len);
    sb_free(&b);
    return out;
}

int cover_step_up(trine_decision *d, const trine_policy *p,
                  const eval_pair *pairs, size_t npairs, const size_t *fail,
                  size_t nfail, const cpl_block *const *held, size_t nheld,
                  const char *resource_metadata)
{
    d->has_required = true;
    size_t *picked = malloc((p->nscopes + 1) * sizeof *picked);
    unsigned char *grants = NULL;
    unsigned char *seen = NULL;
    int rc = TRINE_ENOMEM;
    if (picked == NULL)
        goto done;
    size_t npicked = 0;
    if (nfail > 0 && p->nscopes > 0) {
        grants = calloc(p->nscopes, nfail);
        seen = malloc(nfail);
        if (grants == NULL || seen == NULL)
            goto done;
        for (size_t s = 0; s < p->nscopes; s++) {
            for (size_t j = 0; j < nfail; j++) {
                const eval_pair *pr = &pairs[fail[j]];
                grants[s * nfail + j] = cover_grants(
                    p->scopes[s], pr->action, pr->alen, pr->res, pr->rlen);
            }
        }
        npicked = cover_greedy(grants, p->nscopes, nfail, seen, picked);
    }
    rc = 0;
    if (npicked == 0)
        goto done; /* stepping up cannot help: no header */

    /* S for the header: the held scopes that grant some needed pair, in
     * token order, then the required ones. */
    const char **names = dec_alloc(d, (nheld + npicked) * sizeof *names);
    d->required = dec_alloc(d, npicked * sizeof *d->required);
    rc = TRINE_ENOMEM;
    if (names == NULL || d->required == NULL)
        goto done;
    size_t nn = 0;
    for (size_t s = 0; s < nheld; s++) {
        for (size_t i = 0; i < npairs; i++) {
            const eval_pair *pr = &pairs[i];
            if (cover_grants(held[s], pr->action, pr->alen, pr->res,
                             pr->rlen)) {
                names[nn++] = held[s]->name;
                break;
            }
        }
    }
    for (size_t k = 0; k < npicked; k++) {
        d->required[d->nrequired++] = p->scopes[picked[k]]->name;
        names[nn++] = p->scopes[picked[k]]->name;
    }
    d->www_auth = cover_www_authenticate(d, names, nn, resource_metadata);
    if (d->www_auth != NULL)
        rc = 0;
done:
    free(picked);
    free(grants);
    free(seen);
    return rc;
}
