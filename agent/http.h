/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The pieces of the Lambda Runtime API server (runtime-api.c) that only look at bytes: an
 * incremental HTTP/1.1 request parser and a reader for string members of a JSON object. No I/O
 * and no allocation in the parser, so the function's own (untrusted) requests can be fed to it in
 * any split and any shape. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Request line plus headers, including the empty line. */
#define HTTP_HEAD_MAX ((size_t)64 * 1024)
/* A chunk-size line (with extensions) and all trailers together. */
#define HTTP_LINE_MAX ((size_t)4 * 1024)

typedef enum HttpMethod {
        HTTP_METHOD_OTHER,
        HTTP_METHOD_GET,
        HTTP_METHOD_POST,
} HttpMethod;

typedef enum HttpParseResult {
        HTTP_PARSE_MORE = 0, /* the buffer holds no complete step yet: read more */
        HTTP_PARSE_HEAD = 1, /* the head is complete (reported once per request) */
        HTTP_PARSE_DONE = 2, /* the whole request is complete */
} HttpParseResult;

/* One request being parsed from the start of a connection's buffer. Offsets are into that
 * buffer, so it may be reallocated between calls. Zero-initialize before the first call. */
typedef struct HttpRequest {
        /* Valid after HTTP_PARSE_HEAD. Strings in the head are NUL-terminated in place. */
        HttpMethod method;
        size_t path_off, path_len;             /* the target up to '?' */
        size_t error_type_off, error_type_len; /* Lambda-Runtime-Function-Error-Type; 0: none */
        bool keep_alive;
        bool expect_continue; /* "Expect: 100-continue" */
        bool chunked;
        bool has_length;
        uint64_t content_length;
        size_t head_len;

        /* Valid after HTTP_PARSE_DONE: the decoded body is at buf + head_len (chunked bodies are
         * decoded in place), and the request took `consumed` bytes of the buffer; what follows
         * is the next request (pipelining). */
        size_t body_len;
        size_t consumed;

        /* parser state */
        int state;
        size_t pos; /* where parsing resumes in the buffer */
        uint64_t chunk_left;
        size_t line_bytes; /* of the current chunk-size line or of the trailers */
} HttpRequest;

/* Parses as much of buf[0..len) as it can. Call again after each read with the same req, buf
 * (possibly moved) and the new len. body_max caps the (decoded) body. Returns an
 * HttpParseResult, or the negative HTTP status to answer with before closing the connection:
 * -400 (malformed), -413 (body over body_max; reported after HTTP_PARSE_HEAD, so the caller knows
 * the target), -431 (head over HTTP_HEAD_MAX), -501 (a transfer coding other than chunked),
 * -505 (not HTTP/1.0 or 1.1). */
int http_parse(HttpRequest *req, char *buf, size_t len, size_t body_max);

/* Reads the top-level member `key` of the JSON object in s[0..len) if it is a string. On success
 * *ret is a malloc'd, NUL-terminated copy with escapes decoded (\u0000 becomes '?'; lone
 * surrogates U+FFFD; other bytes are copied as they are, so the caller still has to check
 * UTF-8). Returns 0, -ENOENT (no such member, or it is not a string), -EINVAL (s is not a JSON
 * object, as far as needed to find the member), -ENOMEM. */
int json_get_string(const char *s, size_t len, const char *key, char **ret);

/* Appends s as a JSON string (with quotes) to out[*pos..size). Bytes >= 0x80 are copied as they
 * are (callers pass UTF-8). Returns 0 or -ENOBUFS (out then holds a truncated prefix). */
int json_append_string(char *out, size_t size, size_t *pos, const char *s);
