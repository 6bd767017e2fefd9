/* SPDX-License-Identifier: Apache-2.0 */
/* The byte-level parts of the agent's Lambda Runtime API server (agent/http.c): the function
 * itself can send anything to that server, so every request shape must parse or fail cleanly,
 * in any split. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "http.h"

#define MAX_BODY ((size_t)1024)

typedef struct Parsed {
        int result; /* HTTP_PARSE_DONE or the negative status */
        bool head_seen;
        HttpRequest req;
        char *buf; /* the buffer after parsing (bodies are decoded in place) */
} Parsed;

/* Feeds s to the parser `step` bytes at a time (0: all at once), like reads would. */
static Parsed parse_in_steps(const char *s, size_t len, size_t step, size_t body_max)
{
        Parsed p = {.result = HTTP_PARSE_MORE};
        size_t have = 0;

        p.buf = malloc(len + 1);
        assert_non_null(p.buf);
        for (;;) {
                size_t n = step == 0 ? len - have : step;
                int r;

                if (have + n > len)
                        n = len - have;
                memcpy(p.buf + have, s + have, n);
                have += n;
                do {
                        r = http_parse(&p.req, p.buf, have, body_max);
                        if (r == HTTP_PARSE_HEAD) {
                                assert_false(p.head_seen); /* reported once */
                                p.head_seen = true;
                        }
                } while (r == HTTP_PARSE_HEAD);
                if (r != HTTP_PARSE_MORE || have == len) {
                        p.result = r;
                        return p;
                }
        }
}

static Parsed parse_all(const char *s)
{
        return parse_in_steps(s, strlen(s), 0, MAX_BODY);
}

static const char *path_of(const Parsed *p)
{
        return p->buf + p->req.path_off;
}

static void expect_status(const char *s, int status)
{
        Parsed p = parse_all(s);

        if (p.result != -status)
                fail_msg("<%s>: expected -%d, got %d", s, status, p.result);
        free(p.buf);
}

static void test_get(void **state)
{
        Parsed p = parse_all("GET /2018-06-01/runtime/invocation/next?x=1 HTTP/1.1\r\n"
                             "Host: 127.0.0.1:9001\r\nUser-Agent: curl/7.88.1\r\n\r\n");

        assert_int_equal(p.result, HTTP_PARSE_DONE);
        assert_true(p.head_seen);
        assert_int_equal(p.req.method, HTTP_METHOD_GET);
        assert_string_equal(path_of(&p), "/2018-06-01/runtime/invocation/next");
        assert_int_equal(p.req.path_len, strlen("/2018-06-01/runtime/invocation/next"));
        assert_true(p.req.keep_alive);
        assert_false(p.req.chunked);
        assert_int_equal(p.req.body_len, 0);
        assert_int_equal(p.req.error_type_len, 0);
        free(p.buf);
}

static void test_keep_alive_rules(void **state)
{
        Parsed p = parse_all("GET / HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\n");

        assert_false(p.req.keep_alive);
        free(p.buf);
        p = parse_all("GET / HTTP/1.0\r\n\r\n");
        assert_false(p.req.keep_alive);
        free(p.buf);
        p = parse_all("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n");
        assert_true(p.req.keep_alive);
        free(p.buf);
        /* bare LF line ends are accepted */
        p = parse_all("GET /a HTTP/1.1\nHost: x\n\n");
        assert_int_equal(p.result, HTTP_PARSE_DONE);
        assert_string_equal(path_of(&p), "/a");
        free(p.buf);
}

static void test_post_with_length_and_pipelining(void **state)
{
        static const char s[] = "POST /2018-06-01/runtime/invocation/id-1/error HTTP/1.1\r\n"
                                "Content-Length: 5\r\n"
                                "Lambda-Runtime-Function-Error-Type:  Runtime.Custom \r\n"
                                "Expect: 100-continue\r\n\r\n"
                                "hello"
                                "GET /next HTTP/1.1\r\n\r\n";
        Parsed p = parse_all(s);

        assert_int_equal(p.result, HTTP_PARSE_DONE);
        assert_int_equal(p.req.method, HTTP_METHOD_POST);
        assert_true(p.req.has_length);
        assert_true(p.req.expect_continue);
        assert_int_equal(p.req.body_len, 5);
        assert_memory_equal(p.buf + p.req.head_len, "hello", 5);
        assert_string_equal(p.buf + p.req.error_type_off, "Runtime.Custom");
        assert_int_equal(p.req.error_type_len, strlen("Runtime.Custom"));
        /* the next request starts right after */
        assert_string_equal(s + p.req.consumed, "GET /next HTTP/1.1\r\n\r\n");
        free(p.buf);
}

static const char chunked[] = "POST /r HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5;name=value\r\nhello\r\n"
                              "1\r\n \r\n"
                              "A\r\n0123456789\r\n"
                              "0\r\nTrailer-One: x\r\nTrailer-Two: y\r\n\r\n"
                              "NEXT";

static void test_chunked_in_every_split(void **state)
{
        for (size_t step = 0; step <= 7; step++) {
                Parsed p = parse_in_steps(chunked, strlen(chunked), step, MAX_BODY);

                assert_int_equal(p.result, HTTP_PARSE_DONE);
                assert_true(p.req.chunked);
                assert_int_equal(p.req.body_len, 16);
                assert_memory_equal(p.buf + p.req.head_len, "hello 0123456789", 16);
                assert_string_equal(chunked + p.req.consumed, "NEXT");
                free(p.buf);
        }
}

static void test_body_in_every_split(void **state)
{
        static const char s[] = "POST /x HTTP/1.1\r\ncontent-length: 10\r\n\r\n0123456789";

        for (size_t step = 1; step <= 11; step++) {
                Parsed p = parse_in_steps(s, strlen(s), step, MAX_BODY);

                assert_int_equal(p.result, HTTP_PARSE_DONE);
                assert_memory_equal(p.buf + p.req.head_len, "0123456789", 10);
                assert_int_equal(p.req.consumed, strlen(s));
                free(p.buf);
        }
}

static void test_incomplete_is_more(void **state)
{
        static const char *const partial[] = {
            "",
            "GET / HTTP/1.1\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n\r",
            "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabc",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
        };

        for (size_t i = 0; i < sizeof(partial) / sizeof(*partial); i++) {
                Parsed p = parse_all(partial[i]);

                if (p.result != HTTP_PARSE_MORE)
                        fail_msg("<%s>: expected MORE, got %d", partial[i], p.result);
                free(p.buf);
        }
}

static void test_malformed(void **state)
{
        static const char *const bad[] = {
            "GARBAGE\r\n\r\n",
            "GET\r\n\r\n",
            "GET / \r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "GET relative HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1 extra\r\n\r\n",
            "GET / HTTX/1.1\r\n\r\n",
            "G(T / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 x\r\nab\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                expect_status(bad[i], 400);
        expect_status("GET / HTTP/2.0\r\n\r\n", 505);
        expect_status("GET / HTTP/1.2\r\n\r\n", 505);
        expect_status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
}

static void test_nul_in_head(void **state)
{
        static const char s[] = "GET /\0x HTTP/1.1\r\n\r\n";
        Parsed p = parse_in_steps(s, sizeof(s) - 1, 0, MAX_BODY);

        assert_int_equal(p.result, -400);
        free(p.buf);
}

static void test_limits(void **state)
{
        size_t big = HTTP_HEAD_MAX + 10;
        char *s = malloc(big + 64);
        Parsed p;
        int n;

        assert_non_null(s);
        /* A head that never ends: refused once it passes the cap, not buffered forever. */
        n = snprintf(s, 64, "GET / HTTP/1.1\r\nX: ");
        memset(s + n, 'a', big - (size_t)n);
        p = parse_in_steps(s, big, 4096, MAX_BODY);
        assert_int_equal(p.result, -431);
        free(p.buf);
        /* One that ends, but too late. */
        memcpy(s + big, "\r\n\r\n", 4);
        p = parse_in_steps(s, big + 4, 0, MAX_BODY);
        assert_int_equal(p.result, -431);
        free(p.buf);
        free(s);

        /* Bodies: 413 comes after the head, so the caller knows the target. */
        p = parse_all("POST /2018-06-01/runtime/invocation/a/response HTTP/1.1\r\n"
                      "Content-Length: 1025\r\n\r\n");
        assert_true(p.head_seen);
        assert_int_equal(p.result, -413);
        assert_string_equal(path_of(&p), "/2018-06-01/runtime/invocation/a/response");
        free(p.buf);
        p = parse_all("POST / HTTP/1.1\r\nContent-Length: 1024\r\n\r\n");
        assert_int_equal(p.result, HTTP_PARSE_MORE);
        free(p.buf);
        p = parse_all("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "400\r\n");
        assert_int_equal(p.result, HTTP_PARSE_MORE); /* exactly 1024: fine */
        free(p.buf);
        {
                /* 1024 bytes in two chunks, then one more byte: 413 */
                char b[2200];
                size_t l = (size_t)snprintf(b, sizeof(b),
                                            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                            "200\r\n");
                memset(b + l, 'x', 512);
                l += 512;
                l += (size_t)snprintf(b + l, sizeof(b) - l, "\r\n200\r\n");
                memset(b + l, 'y', 512);
                l += 512;
                l += (size_t)snprintf(b + l, sizeof(b) - l, "\r\n1\r\nz\r\n0\r\n\r\n");
                p = parse_in_steps(b, l, 0, MAX_BODY);
                assert_int_equal(p.result, -413);
                free(p.buf);
        }
        /* A chunk-size line that never ends. */
        {
                char b[HTTP_LINE_MAX + 200];
                size_t l = (size_t)snprintf(b, sizeof(b),
                                            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                            "1;");
                memset(b + l, 'e', sizeof(b) - l);
                p = parse_in_steps(b, sizeof(b), 0, MAX_BODY);
                assert_int_equal(p.result, -400);
                free(p.buf);
        }
}

/* A tiny deterministic PRNG for the mutation loop. */
static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
        rnd_state ^= rnd_state << 13;
        rnd_state ^= rnd_state >> 17;
        rnd_state ^= rnd_state << 5;
        return rnd_state;
}

/* Mutations of valid requests never crash the parser or break its invariants. */
static void test_mutations(void **state)
{
        static const char *const seeds[] = {
            chunked,
            "POST /2018-06-01/runtime/invocation/x/response HTTP/1.1\r\nContent-Length: 3\r\n"
            "Lambda-Runtime-Function-Error-Type: T\r\n\r\nabc",
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: a\r\n\r\n",
        };
        char m[512];

        for (int iter = 0; iter < 20000; iter++) {
                const char *seed = seeds[rnd() % 3];
                size_t len = strlen(seed);
                Parsed p;

                memcpy(m, seed, len);
                for (int k = 0, edits = 1 + (int)(rnd() % 4); k < edits; k++) {
                        size_t at = rnd() % len;

                        switch (rnd() % 3) {
                        case 0:
                                m[at] = (char)rnd();
                                break;
                        case 1: /* cut */
                                len = at + 1;
                                break;
                        default:
                                m[at] = "\r\n:; 0aF"[rnd() % 8];
                                break;
                        }
                }
                p = parse_in_steps(m, len, 1 + rnd() % 16, 64);
                assert_true(p.result == HTTP_PARSE_MORE || p.result == HTTP_PARSE_DONE ||
                            p.result == -400 || p.result == -413 || p.result == -431 ||
                            p.result == -501 || p.result == -505);
                if (p.result == HTTP_PARSE_DONE) {
                        assert_true(p.req.body_len <= 64);
                        assert_true(p.req.consumed <= len);
                        assert_true(p.req.head_len + p.req.body_len <= p.req.consumed);
                        assert_true(p.req.path_off + p.req.path_len < p.req.head_len);
                }
                free(p.buf);
        }
}

/* ---- JSON ---- */

static char *get(const char *json, const char *key, int expect)
{
        char *v = NULL;
        int r = json_get_string(json, strlen(json), key, &v);

        if (r != expect)
                fail_msg("<%s> key %s: expected %d, got %d", json, key, expect, r);
        return v;
}

static void test_json_get_string(void **state)
{
        static const char body[] =
            " {\"stackTrace\": [\"  File \\\"/var/task/app.py\\\", line 3\", {\"errorType\": "
            "\"nested\"}], \"n\": -1.5e3, \"t\": true, \"z\": null, \"o\": {\"a\": [1, {}]},\n"
            "\"errorType\":\"ValueError\", \"errorMessage\": \"line1\\nline2 \\\"q\\\" \\u00e9 "
            "\\ud83d\\ude00 \\/ \\\\\"} ";
        char *v;

        v = get(body, "errorType", 0);
        assert_string_equal(v, "ValueError"); /* the top-level one, not the nested */
        free(v);
        v = get(body, "errorMessage", 0);
        assert_string_equal(v, "line1\nline2 \"q\" \xc3\xa9 \xf0\x9f\x98\x80 / \\");
        free(v);
        assert_null(get(body, "requestId", -ENOENT));
        assert_null(get(body, "n", -ENOENT)); /* not a string */
        assert_null(get(body, "o", -ENOENT));
        assert_null(get("{}", "errorType", -ENOENT));
        v = get("{\"errorType\":\"\"}", "errorType", 0);
        assert_string_equal(v, "");
        free(v);
}

static void test_json_odd_strings(void **state)
{
        char *v;

        v = get("{\"m\":\"a\\u0000b\"}", "m", 0);
        assert_string_equal(v, "a?b"); /* no NUL inside a C string */
        free(v);
        v = get("{\"m\":\"\\ud800x\"}", "m", 0);
        assert_string_equal(v, "\xef\xbf\xbdx"); /* a lone surrogate: U+FFFD */
        free(v);
        v = get("{\"m\":\"\\udc00\\ud800\"}", "m", 0);
        assert_string_equal(v, "\xef\xbf\xbd\xef\xbf\xbd");
        free(v);
        v = get("{\"m\":\"caf\xc3\xa9\"}", "m", 0);
        assert_string_equal(v, "caf\xc3\xa9");
        free(v);
}

static void test_json_not_an_object(void **state)
{
        static const char *const bad[] = {
            "",
            "plain text failure",
            "[\"errorType\"]",
            "\"errorType\"",
            "{",
            "{\"errorType\"",
            "{\"errorType\":",
            "{\"errorType\":\"unterminated",
            "{\"a\":1 \"errorType\":\"x\"}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12\"}",
            "{\"a\":\"ctl\x01\"}",
            "{\"a\":]}",
            "{\"a\":[1,2}",
            "{'errorType':'x'}",
        };

        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                assert_null(get(bad[i], "errorType", -EINVAL));
}

static void test_json_deep_nesting(void **state)
{
        /* Skipping is iterative: depth costs nothing. */
        size_t depth = 100000, len = 2 * depth + 64;
        char *s = malloc(len), *v = NULL;
        size_t n = 0;

        static const char head[] = "{\"deep\":";

        assert_non_null(s);
        if (!s)
                return; /* (tells the compiler too: the size is known below) */
        memcpy(s, head, sizeof(head) - 1);
        n = sizeof(head) - 1;
        memset(s + n, '[', depth);
        n += depth;
        memset(s + n, ']', depth);
        n += depth;
        n += (size_t)sprintf(s + n, ",\"errorType\":\"T\"}");
        assert_int_equal(json_get_string(s, n, "errorType", &v), 0);
        assert_string_equal(v, "T");
        free(v);
        free(s);
}

static void test_json_append_string(void **state)
{
        char out[64];
        size_t pos = 0;

        assert_int_equal(json_append_string(out, sizeof(out), &pos, "a\"b\\c\nd\te\x01"), 0);
        assert_string_equal(out, "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
        assert_int_equal(pos, strlen(out));
        pos = 0;
        assert_int_equal(json_append_string(out, 8, &pos, "0123456789"), -ENOBUFS);
        assert_true(strlen(out) < 8);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_get),
            cmocka_unit_test(test_keep_alive_rules),
            cmocka_unit_test(test_post_with_length_and_pipelining),
            cmocka_unit_test(test_chunked_in_every_split),
            cmocka_unit_test(test_body_in_every_split),
            cmocka_unit_test(test_incomplete_is_more),
            cmocka_unit_test(test_malformed),
            cmocka_unit_test(test_nul_in_head),
            cmocka_unit_test(test_limits),
            cmocka_unit_test(test_mutations),
            cmocka_unit_test(test_json_get_string),
            cmocka_unit_test(test_json_odd_strings),
            cmocka_unit_test(test_json_not_an_object),
            cmocka_unit_test(test_json_deep_nesting),
            cmocka_unit_test(test_json_append_string),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
