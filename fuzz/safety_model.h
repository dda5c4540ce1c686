/*
 * safety_model.h - the rules of DESIGN §2.4 step 3 and §2.5 for template
 * values, and the glob matching of §2.5, written for the fuzz targets
 * independently of src/lib (its own strict UTF-8 decoder, its own segment
 * rules, a plain backtracking glob), so that a target can check the
 * library's answers against them rather than against the library itself.
 */
#ifndef TRINE_FUZZ_SAFETY_MODEL_H
#define TRINE_FUZZ_SAFETY_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SM_UNUSED __attribute__((unused))

/* Decodes one code point of strict UTF-8 (no overlongs, no surrogates,
 * nothing past U+10FFFF). Returns its length, or 0 when s is not UTF-8. */
SM_UNUSED static size_t model_utf8(const unsigned char *s, size_t n,
                                   uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t min;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        min = 0x80;
        *cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        min = 0x800;
        *cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        min = 0x10000;
        *cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3f);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return len;
}

SM_UNUSED static bool model_is_utf8(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = model_utf8(u + i, n - i, &cp);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

/* §2.4 step 3 and §2.5: is v a safe value for {p} (rest false) or {p...}? */
SM_UNUSED static bool model_safe(const json_t *v, bool rest)
{
    if (v == NULL || json_is_null(v))
        return false;
    if (json_is_integer(v))
        return true;
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0)
        return false;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = model_utf8(u + i, n - i, &cp);
        if (l == 0)
            return false;
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == '*' || cp == '?')
            return false;
        i += l;
    }
    /* Split on '/': for {p} there must be one segment; no segment may be
     * "." or ".."; for {p...} only the first and the last may be empty. */
    size_t nseg = 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '/')
            continue;
        size_t len = i - start;
        bool first = start == 0;
        bool last = i == n;
        nseg++;
        if ((len == 1 && s[start] == '.') ||
            (len == 2 && s[start] == '.' && s[start + 1] == '.'))
            return false;
        if (len == 0 && !first && !last)
            return false;
        start = i + 1;
    }
    return rest || nseg == 1;
}

/* Glob match: '*' any run of code points, '?' exactly one, all else
 * literal bytes. Subjects here are valid UTF-8. */
SM_UNUSED static bool model_glob(const char *p, const char *s, size_t slen)
{
    if (*p == '\0')
        return slen == 0;
    if (*p == '*') {
        for (size_t i = 0;;) {
            if (model_glob(p + 1, s + i, slen - i))
                return true;
            if (i == slen)
                return false;
            uint32_t cp;
            size_t l = model_utf8((const unsigned char *)s + i, slen - i, &cp);
            i += l > 0 ? l : 1;
        }
    }
    if (slen == 0)
        return false;
    if (*p == '?') {
        uint32_t cp;
        size_t l = model_utf8((const unsigned char *)s, slen, &cp);
        if (l == 0)
            l = 1;
        return model_glob(p + 1, s + l, slen - l);
    }
    return *p == *s && model_glob(p + 1, s + 1, slen - 1);
}

#endif
