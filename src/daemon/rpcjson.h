/*
 * rpcjson.h - a fast reader for the JSON of ordinary requests.
 *
 * jansson's parser spends several microseconds on a request of a few
 * hundred bytes (it reads through a character stream and saves every
 * byte), which makes it the largest cost of a check. This reader builds
 * the same jansson values from the forms requests actually use, in one
 * pass over the line, and declines everything else: a text it returns NULL
 * for is then read by jansson, which decides whether it is valid and names
 * the error. So jansson keeps the last word on what JSON is, and every
 * error message stays jansson's.
 *
 * What it reads: objects, arrays, strings whose escapes are \" \\ \/ \b \f
 * \n \r \t, integers of at most 18 digits (no fraction, no exponent, no
 * leading zero), true, false and null, with JSON whitespace around them.
 * What it declines: everything else, valid or not -- \u escapes, escapes
 * in object keys, control characters, real numbers, longer integers,
 * duplicate keys, trailing text, an empty text, text that is not UTF-8,
 * nesting deeper than RPC_MAX_DEPTH.
 */
#ifndef TRINED_RPCJSON_H
#define TRINED_RPCJSON_H

#include <jansson.h>
#include <stddef.h>

/* Reads the n bytes at text as one JSON value. Returns a new reference
 * equal to what json_loadb(text, n, JSON_DECODE_ANY |
 * JSON_REJECT_DUPLICATES) returns (the same types, values and key order),
 * or NULL when the text is not one this reader takes or memory runs out:
 * the caller then checks it with rpc_prescan and parses it with jansson. A
 * text it takes is valid UTF-8 and nests at most RPC_MAX_DEPTH deep, so
 * rpc_prescan would have passed it. */
json_t *rpc_json_read(const char *text, size_t n);

#endif /* TRINED_RPCJSON_H */
