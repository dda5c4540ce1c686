/*
 * fuzz_keys.h - the signing keys of the fuzz targets that need tokens with
 * good signatures (fuzz_jwt, fuzz_rpc): an RSA 2048 key, a P-256 key and an
 * Ed25519 key. They are test keys, made for these targets and used nowhere
 * else; being fixed, a corpus kept between runs stays valid. The signing
 * side (JWKs, tokens) is tests/unit/jwt_fixture.h.
 */
#ifndef TRINE_FUZZ_KEYS_H
#define TRINE_FUZZ_KEYS_H

#include "../tests/unit/jwt_fixture.h"

#include <openssl/pem.h>

FX_UNUSED static const char fuzz_rsa_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCxqQ+CtwORD8r6\n"
    "E36w1vsem1GbBlAkIrceRZprUMBmvSp9zTGQZjdVT73BPWfZaImFE1j5QmGRsGKI\n"
    "L5S5ptOXKeg99aZsy3oH/6tvCR4jY+7J/HZIBsF+27ou1zjiFvptd4TbnvoiqdxO\n"
    "LEf3XnBqR+8sz/6VqeP33FrfwzJb8biI/lUPUIdV6+YNXFiZpWa2ywV/XVVEBx47\n"
    "e0m7OAHNyBBBNVHYTcvRpx51UIL53EzSfrclmICEQoNzn82/aEWCqhYoLXHajnP8\n"
    "IuKM5yyKFoGWE2xYabA7Ba3jXVsbzos3P46c+pMMIbyqQ2inD+MyS0UN+dCc4Agr\n"
    "fpin1knnAgMBAAECggEAU+V+xh8v5356P2saXl8/Oj5lpJwwF0hvijObTwdUvI+j\n"
    "M8JFICgtBDQCa3FYi8ICgx3WW+s9kSOm/CHgDWXbMNzg5/WL0H+sUn+pkOdQ3KyR\n"
    "9L+sianrEUGpI/qNybLJMw2IZ4AlJl5pg18E4yutUXtD1rkoQ7v1RDTCkz2mF+V8\n"
    "8gpKonU4rzmIWQmg2XY88ELKwXbWdDWQsS9rYBC1kjXu7Rs+QMjFDkJBrf4Dkk5G\n"
    "NJ5UFm736PsdDQ5vSWVayijiNcy+wTnG1KAeXzGRE2jvX83v1ngLEdiceskHRYIY\n"
    "WIjVrWgPPvt0XGJg8WZhkCGFn1VimUp1r7rl5z5AEQKBgQDw2otTmTD4N+tkcl8H\n"
    "S23Pnzmyo+AlSkWGNo8/ELxV5GR8zrgq53SFo8/mMQfHvUgwDUNQfuNR62Umhb7q\n"
    "V2xC9z3ZTYh2d0VDAaCJLODMECwEojZx01zyPnvulNtIqRZi1WxDSpnzoK1lLQl7\n"
    "NtliweXZSdx0EhBNu2LjzwzKFwKBgQC81S4VZPf/ekwICcpih+Q/meaF69dzNV3p\n"
    "Pf4Qv/9TEJsGXwlMYPf/OBlraMT6P6UA2Y9JrVISDkD79zerS7j9f6rJOrBTiV1q\n"
    "WTWZZGSXK2uqosOKpxB+OnJo6rI/IMNu9MOld0e3DluV5asTJ8x/stjW6oZW7Jmp\n"
    "95mHHF/wsQKBgH4aXoJJnbsIRCWWQCzokDj5a9MdO/kqNtZ7cGqbj5AFAZva+8/y\n"
    "2S4zQ2GJYEJy1v3Zo9ncZZZ5gb82nWvCk/tHyckhcAZekhPwISZRKe2Ntg5DA/B6\n"
    "sppenrKem2UiqobaqVFeGNbW1JI5j1JEuHKdhINMybC32HNqXe9ac57HAoGAEuSN\n"
    "WMyiV2hIBSHdouAPwSFHxCxlgPxc6gIu0kQzan8l04xcpMyq41kcifeQha0qeBxM\n"
    "TsXNiUrty4ffhP7tgkdssfdyPtlmhEZqq2809T795bOlNtEiQE7etYqNzO0dQJOy\n"
    "o3J8tV71YNj6tc7skfY15cLPMBE6CpxgOvlmy/ECgYAyaWpQlliGq36P4YpavORX\n"
    "eFx71kbb9Pycq8o3pKnOGSZkuK05+JWipup67za+TzNTtU+UM1hmiVt6gntvTXre\n"
    "Ky6mOhgrgcsfNRELRuSR0CGuWcbfdi6U0GRBXdRPrLYmigL57P+857MVDcLeQR7N\n"
    "lJcJm3Jyp+6xLhy2CrVzYg==\n"
    "-----END PRIVATE KEY-----\n";
FX_UNUSED static const char fuzz_ec_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQglDiDl21MljCxNHXF\n"
    "tfG8KFV9R6H/AQvUn62kN+xWwvGhRANCAAR9+nEJJtntwaDwcOvhWGyNn2mUb5gw\n"
    "zFTVwOxKw2yIR4/fJNncF1DqZVcCikv7g7mX/u7AYrBJej9dReW4B3TG\n"
    "-----END PRIVATE KEY-----\n";
FX_UNUSED static const char fuzz_ed_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIPa2ewYZWckyNouTuMTwLBceHIS4AfyZhWbjYFRwvhYP\n"
    "-----END PRIVATE KEY-----\n";

/* Returns the private key of a PEM text, or NULL. */
FX_UNUSED static EVP_PKEY *fuzz_key_load(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k =
        b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return k;
}

#endif
