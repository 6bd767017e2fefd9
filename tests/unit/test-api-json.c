/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>

#include "api-json.h"
#include "registry.h"

/* The minimal valid body; tests change one field at a time. */
#define RUNTIME "\"runtime\":\"native\""
#define HANDLER "\"handler\":\"echo.so\""
#define CODE "\"code\":\"Zm9v\""
#define BASE RUNTIME "," HANDLER "," CODE

/* "PK\x03\x04\x00\xff" "bundle": binary, with a NUL, like a real zip. */
static const char code_bytes[] = "PK\x03\x04\x00\xff"
                                 "bundle";
#define CODE_B64 "UEsDBAD/YnVuZGxl"

static int parse_len(const char *body, size_t len, FunctionSpec *spec, void **code,
                     size_t *code_len, FnError *err)
{
        return api_parse_function_spec("my-fn", body, len, spec, code, code_len, err);
}

static int parse(const char *body, FunctionSpec *spec, void **code, size_t *code_len, FnError *err)
{
        return parse_len(body, strlen(body), spec, code, code_len, err);
}

/* Parses body (of len bytes) expecting -EINVAL with `needle` in the message, and checks that
 * the outputs were not touched. */
static void expect_error_len(const char *body, size_t len, const char *needle)
{
        FunctionSpec spec, sentinel;
        void *code = (void *)0x1;
        size_t code_len = 4242;
        FnError err = {};
        int r;

        memset(&sentinel, 0x5a, sizeof(sentinel));
        spec = sentinel;
        r = parse_len(body, len, &spec, &code, &code_len, &err);
        if (r != -EINVAL)
                fail_msg("body <%s>: expected -EINVAL, got %d (%s)", body, r, err.msg);
        assert_int_equal(err.code, -EINVAL);
        if (!strstr(err.msg, needle))
                fail_msg("body <%s>: message \"%s\" does not contain \"%s\"", body, err.msg,
                         needle);
        assert_memory_equal(&spec, &sentinel, sizeof(spec));
        assert_ptr_equal(code, (void *)0x1);
        assert_int_equal(code_len, 4242);
}

static void expect_error(const char *body, const char *needle)
{
        expect_error_len(body, strlen(body), needle);
}

/* Parses body expecting success; the caller clears spec and frees *code. */
static void expect_ok(const char *body, FunctionSpec *spec, void **code, size_t *code_len)
{
        FnError err = {};
        int r = parse(body, spec, code, code_len, &err);

        if (r != 0)
                fail_msg("body <%s>: expected success, got %d (%s)", body, r, err.msg);
}

static void expect_ok_free(const char *body)
{
        FunctionSpec spec = {};
        void *code = NULL;
        size_t len = 0;

        expect_ok(body, &spec, &code, &len);
        function_spec_done(&spec);
        free(code);
}

/* ---- parsing: the good cases ---- */

static void test_parse_full(void **state)
{
        const char *body = "{\"runtime\":\"native\",\"handler\":\"lib/fn-1.so:handle_event\","
                           "\"memory_mb\":256,\"timeout_ms\":60000,"
                           "\"env\":{\"GREETING\":\"hello world\",\"_x2\":\"\",\"Q\":\"a\\\"b=c\"},"
                           "\"code\":\"" CODE_B64 "\"}";
        FunctionSpec spec = {};
        void *code = NULL;
        size_t len = 0;

        expect_ok(body, &spec, &code, &len);
        assert_string_equal(spec.name, "my-fn");
        assert_string_equal(spec.runtime, "native");
        assert_string_equal(spec.handler, "lib/fn-1.so:handle_event");
        assert_int_equal(spec.memory_mb, 256);
        assert_int_equal(spec.timeout_ms, 60000);
        assert_int_equal(spec.n_env, 3);
        /* Document order is kept. */
        assert_string_equal(spec.env[0].key, "GREETING");
        assert_string_equal(spec.env[0].value, "hello world");
        assert_string_equal(spec.env[1].key, "_x2");
        assert_string_equal(spec.env[1].value, "");
        assert_string_equal(spec.env[2].key, "Q");
        assert_string_equal(spec.env[2].value, "a\"b=c");
        assert_int_equal(len, sizeof(code_bytes) - 1);
        assert_memory_equal(code, code_bytes, len);
        function_spec_done(&spec);
        free(code);
}

static void test_parse_defaults(void **state)
{
        FunctionSpec spec;
        void *code = NULL;
        size_t len = 0;

        memset(&spec, 0x5a, sizeof(spec));
        expect_ok("{" BASE "}", &spec, &code, &len);
        assert_string_equal(spec.name, "my-fn");
        assert_string_equal(spec.runtime, "native");
        assert_string_equal(spec.handler, "echo.so");
        assert_int_equal(spec.memory_mb, 128);
        assert_int_equal(spec.timeout_ms, 3000);
        assert_int_equal(spec.keep_alive_ms, 600000);
        assert_int_equal(spec.max_concurrency, 0);
        assert_int_equal(spec.min_instances, 0);
        assert_int_equal(spec.n_env, 0);
        assert_null(spec.env);
        assert_int_equal(len, 3);
        assert_memory_equal(code, "foo", 3);
        free(code);

        /* Whitespace and key order do not matter; an empty env is no env. */
        expect_ok(" \n{ \"code\" : \"Zm9v\" , \"env\":{}, \"handler\":\"echo.so\",\n"
                  "\"runtime\":\"native\" }\n",
                  &spec, &code, &len);
        assert_int_equal(spec.n_env, 0);
        assert_null(spec.env);
        free(code);
}

/* Test-only allocation: running out of memory here is not a result to report. */
static void *xmalloc(size_t n)
{
        void *p = malloc(n);

        if (!p)
                abort();
        return p;
}

static char *repeat(char c, size_t n)
{
        char *s = xmalloc(n + 1);

        memset(s, c, n);
        s[n] = '\0';
        return s;
}

static char *env_body(size_t n_vars, size_t key_len, size_t value_len)
{
        size_t cap = 256 + n_vars * (key_len + value_len + 16);
        char *b = xmalloc(cap), *p = b;
        _cleanup_free_ char *value = repeat('v', value_len);

        p += sprintf(p, "{" BASE ",\"env\":{");
        for (size_t i = 0; i < n_vars; i++) {
                /* Unique keys of exactly key_len bytes: "K" + padding + index. */
                char idx[16];
                int il = snprintf(idx, sizeof(idx), "%zu", i);
                assert_true(key_len > (size_t)il);
                p += sprintf(p, "%s\"K", i ? "," : "");
                memset(p, '_', key_len - 1 - (size_t)il);
                p += key_len - 1 - (size_t)il;
                p += sprintf(p, "%s\":\"%s\"", idx, value);
        }
        p += sprintf(p, "}}");
        assert_true((size_t)(p - b) < cap);
        return b;
}

static void test_parse_boundaries(void **state)
{
        _cleanup_free_ char *b1 = env_body(FUNCTION_ENV_MAX, 8, 4);
        _cleanup_free_ char *b2 = env_body(1, FUNCTION_ENV_KEY_MAX, FUNCTION_ENV_VALUE_MAX);
        _cleanup_free_ char *dir = repeat('d', 255 - strlen("/x.so"));
        char handler[512];
        FunctionSpec spec = {};
        void *code = NULL;
        size_t len;

        expect_ok_free("{" BASE ",\"memory_mb\":64,\"timeout_ms\":1}");
        expect_ok_free("{" BASE ",\"memory_mb\":10240,\"timeout_ms\":900000}");

        expect_ok(b1, &spec, &code, &len);
        assert_int_equal(spec.n_env, FUNCTION_ENV_MAX);
        assert_string_equal(spec.env[FUNCTION_ENV_MAX - 1].value, "vvvv");
        function_spec_done(&spec);
        free(code);

        expect_ok(b2, &spec, &code, &len);
        assert_int_equal(spec.n_env, 1);
        assert_int_equal(strlen(spec.env[0].key), FUNCTION_ENV_KEY_MAX);
        assert_int_equal(strlen(spec.env[0].value), FUNCTION_ENV_VALUE_MAX);
        function_spec_done(&spec);
        free(code);

        /* A 255-byte handler is the longest that fits FunctionSpec.handler. */
        (void)snprintf(handler, sizeof(handler), "{" RUNTIME "," CODE ",\"handler\":\"%s/x.so\"}",
                       dir);
        expect_ok(handler, &spec, &code, &len);
        assert_int_equal(strlen(spec.handler), 255);
        free(code);

        /* Reserved prefixes are exact and case-sensitive; look-alikes are ordinary keys. */
        expect_ok_free("{" BASE ",\"env\":{\"AWSX\":\"1\",\"FNBOX\":\"1\",\"MY_AWS_KEY\":\"1\","
                       "\"LAMBDA\":\"1\"}}");
        expect_ok_free("{" RUNTIME "," CODE ",\"handler\":\"a-b/c_d/.hidden.so:_sym9\"}");
}

/* ---- parsing: the bad cases ---- */

static void test_malformed_json(void **state)
{
        static const char *const bad[] = {
            "",
            "{",
            "{\"runtime\":\"native\",}",
            "{" BASE "} trailing",
            "{" BASE "}{}",
            "{'runtime':'native'}",
            "{" BASE ",\"memory_mb\":100000000000000000000000}",
            "{" BASE ",\"memory_mb\":0128}",
            "{\"runtime\":\"nat\xff\"}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                expect_error(bad[i], "malformed JSON at line 1 column");
        expect_error("{\n\"runtime\":\"native\",\n\"handler\" \"x\"}", "malformed JSON at line 3");
        expect_error_len(NULL, 0, "malformed JSON");
        /* A NUL byte inside the body is not the end of it. */
        expect_error_len("{" BASE "}\0junk", sizeof("{" BASE "}\0junk") - 1, "malformed JSON");
}

static void test_not_an_object(void **state)
{
        static const char *const bad[] = {"[]", "[{" BASE "}]", "5", "\"x\"", "null", "true"};

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                expect_error(bad[i], "must be a JSON object");
}

static void test_unknown_field(void **state)
{
        expect_error("{" BASE ",\"mounts\":[\"/\"]}", "unknown field 'mounts'");
        expect_error("{" BASE ",\"network\":true}", "unknown field 'network'");
        expect_error("{" BASE ",\"name\":\"other\"}", "unknown field 'name'");
        expect_error("{" BASE ",\"Runtime\":\"native\"}", "unknown field 'Runtime'");
        expect_error("{" BASE ",\"\":1}", "unknown field ''");
        /* Control characters in a key are not echoed raw. */
        expect_error("{" BASE ",\"a\\nb\":1}", "unknown field 'a?b'");
}

static void test_duplicate_key(void **state)
{
        expect_error("{" BASE ",\"memory_mb\":128,\"memory_mb\":10240}",
                     "duplicate field 'memory_mb'");
        expect_error("{" BASE ",\"runtime\":\"native\"}", "duplicate field 'runtime'");
        expect_error("{" BASE ",\"env\":{\"A\":\"1\",\"A\":\"2\"}}", "duplicate field 'A'");
}

static void test_nul_in_strings(void **state)
{
        expect_error("{" BASE ",\"env\":{\"A\":\"x\\u0000y\"}}", "must not contain NUL");
        expect_error("{" BASE ",\"env\":{\"A\\u0000B\":\"x\"}}", "must not contain NUL");
        expect_error("{\"runtime\":\"native\\u0000evil\"," HANDLER "," CODE "}",
                     "must not contain NUL");
}

static void test_wrong_types(void **state)
{
        static const struct {
                const char *body, *needle;
        } cases[] = {
            {"{\"runtime\":1," HANDLER "," CODE "}", "field 'runtime' must be a string"},
            {"{\"runtime\":null," HANDLER "," CODE "}", "field 'runtime' must be a string"},
            {"{\"runtime\":[\"native\"]," HANDLER "," CODE "}", "field 'runtime' must be a string"},
            {"{" RUNTIME ",\"handler\":5," CODE "}", "field 'handler' must be a string"},
            {"{" RUNTIME ",\"handler\":{}," CODE "}", "field 'handler' must be a string"},
            {"{" RUNTIME ",\"handler\":null," CODE "}", "field 'handler' must be a string"},
            {"{" BASE ",\"memory_mb\":\"128\"}",
             "field 'memory_mb' must be an integer between 64 and 10240"},
            {"{" BASE ",\"memory_mb\":127.5}",
             "field 'memory_mb' must be an integer between 64 and 10240"},
            {"{" BASE ",\"memory_mb\":128.0}",
             "field 'memory_mb' must be an integer between 64 and 10240"},
            {"{" BASE ",\"memory_mb\":1.28e2}",
             "field 'memory_mb' must be an integer between 64 and 10240"},
            {"{" BASE ",\"memory_mb\":true}",
             "field 'memory_mb' must be an integer between 64 and 10240"},
            {"{" BASE ",\"memory_mb\":null}",
             "field 'memory_mb' must be an integer between 64 and 10240"},
            {"{" BASE ",\"timeout_ms\":\"3000\"}",
             "field 'timeout_ms' must be an integer between 1 and 900000"},
            {"{" BASE ",\"timeout_ms\":1.5}",
             "field 'timeout_ms' must be an integer between 1 and 900000"},
            {"{" BASE ",\"timeout_ms\":false}",
             "field 'timeout_ms' must be an integer between 1 and 900000"},
            {"{" BASE ",\"timeout_ms\":[3000]}",
             "field 'timeout_ms' must be an integer between 1 and 900000"},
            {"{" BASE ",\"env\":[]}", "field 'env' must be an object"},
            {"{" BASE ",\"env\":\"A=1\"}", "field 'env' must be an object"},
            {"{" BASE ",\"env\":null}", "field 'env' must be an object"},
            {"{" RUNTIME "," HANDLER ",\"code\":5}", "field 'code' must be a string"},
            {"{" RUNTIME "," HANDLER ",\"code\":null}", "field 'code' must be a string"},
            {"{" RUNTIME "," HANDLER ",\"code\":[\"Zm9v\"]}", "field 'code' must be a string"},
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                expect_error(cases[i].body, cases[i].needle);
}

static void test_out_of_range(void **state)
{
        static const char *const memory[] = {
            "63", "0", "-1", "10241", "4294967360", "-4294967232", "9223372036854775807"};
        static const char *const timeout[] = {"0", "-1", "900001", "4294967297",
                                              "-9223372036854775808"};
        char body[256];

        /* 4294967360 is 2^32 + 64: it must not wrap into range. */
        for (size_t i = 0; i < ELEMENTSOF(memory); i++) {
                (void)snprintf(body, sizeof(body), "{" BASE ",\"memory_mb\":%s}", memory[i]);
                expect_error(body, "field 'memory_mb' must be an integer between 64 and 10240");
        }
        for (size_t i = 0; i < ELEMENTSOF(timeout); i++) {
                (void)snprintf(body, sizeof(body), "{" BASE ",\"timeout_ms\":%s}", timeout[i]);
                expect_error(body, "field 'timeout_ms' must be an integer between 1 and 900000");
        }
        expect_error("{" BASE ",\"keep_alive_ms\":-1}",
                     "field 'keep_alive_ms' must be an integer between 0 and 86400000");
        expect_error("{" BASE ",\"keep_alive_ms\":86400001}",
                     "field 'keep_alive_ms' must be an integer between 0 and 86400000");
        expect_error("{" BASE ",\"max_concurrency\":1001}",
                     "field 'max_concurrency' must be an integer between 0");
        expect_error("{" BASE ",\"min_instances\":true}",
                     "field 'min_instances' must be an integer between 0 and 1000");
        expect_error("{" BASE ",\"max_concurrency\":2,\"min_instances\":3}",
                     "field 'min_instances' must not exceed 'max_concurrency'");
}

static void test_bad_runtime(void **state)
{
        static const char *const bad[] = {"python",      "",           "Native",     "native ",
                                          "provided.al", "nodejs20.x", "python3.12", "PROVIDED"};
        char body[256];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                (void)snprintf(body, sizeof(body), "{\"runtime\":\"%s\"," HANDLER "," CODE "}",
                               bad[i]);
                expect_error(body, "field 'runtime'");
                /* The message tells the client what would work. */
                expect_error(body, "supported runtimes: native, provided (also provided.al2, "
                                   "provided.al2023), python3, nodejs");
        }
}

/* Each runtime has its own handler syntax; the runtime is kept as given. */
static void test_runtimes_and_their_handlers(void **state)
{
        static const struct {
                const char *runtime, *handler;
        } good[] = {
            {"native", "echo.so"},
            {"provided", "function.handler"},
            {"provided", "anything goes: it is only $_HANDLER"},
            {"provided", "x"},
            {"provided.al2", "function.handler"},
            {"provided.al2023", "not.used"},
            {"python3", "app.handler"},
            {"python3", "lambda_function.lambda_handler"},
            {"python3", "pkg/sub/app.handler"},
            {"python3", "pkg.sub.app.handler"},
            {"python3", "_private.Handler_2"},
            {"nodejs", "index.handler"},
            {"nodejs", "src/lib/app.handler"},
            {"nodejs", "my-app.handler"},
            {"nodejs", "index.handlers.main"},
            {"nodejs", "index.$handler"},
        };
        char body[512];

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                FunctionSpec spec = {};
                void *code = NULL;
                size_t len = 0;

                (void)snprintf(body, sizeof(body),
                               "{\"runtime\":\"%s\",\"handler\":\"%s\"," CODE "}", good[i].runtime,
                               good[i].handler);
                expect_ok(body, &spec, &code, &len);
                assert_string_equal(spec.runtime, good[i].runtime);
                assert_string_equal(spec.handler, good[i].handler);
                function_spec_done(&spec);
                free(code);
        }
}

static void test_bad_runtime_handlers(void **state)
{
        static const struct {
                const char *runtime, *handler, *needle;
        } bad[] = {
            /* a native handler is not a Lambda one, and the reverse */
            {"native", "app.handler", "\"FILE.so\" or \"FILE.so:SYMBOL\""},
            {"python3", "echo.so:handler", "for runtime 'python3' must be \"MODULE.FUNCTION\""},
            {"python3", "app", "for runtime 'python3'"},
            {"python3", "app.", "for runtime 'python3'"},
            {"python3", ".handler", "for runtime 'python3'"},
            {"python3", "pkg..app.handler", "for runtime 'python3'"},
            {"python3", "pkg/../app.handler", "for runtime 'python3'"},
            {"python3", "/abs/app.handler", "for runtime 'python3'"},
            {"python3", "app.handle-r", "for runtime 'python3'"},
            {"python3", "1app.handler", "for runtime 'python3'"},
            {"python3", "app.handler:x", "for runtime 'python3'"},
            {"python3", "my-app.handler", "for runtime 'python3'"},
            {"nodejs", "index", "for runtime 'nodejs' must be \"FILE.EXPORT\""},
            {"nodejs", "index.", "for runtime 'nodejs'"},
            {"nodejs", ".handler", "for runtime 'nodejs'"},
            {"nodejs", "../index.handler", "for runtime 'nodejs'"},
            {"nodejs", "a//index.handler", "for runtime 'nodejs'"},
            {"nodejs", "/index.handler", "for runtime 'nodejs'"},
            {"nodejs", "index.handler..x", "for runtime 'nodejs'"},
            {"nodejs", "index.1handler", "for runtime 'nodejs'"},
            {"nodejs", "in dex.handler", "for runtime 'nodejs'"},
            {"provided", "", "for runtime 'provided' must be 1 to 255 printable ASCII"},
            {"provided", "tab\\there", "for runtime 'provided'"},
            {"provided", "caf\u00e9", "for runtime 'provided'"},
            {"provided.al2023", "new\\nline", "for runtime 'provided'"},
        };
        char body[512];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                (void)snprintf(body, sizeof(body),
                               "{\"runtime\":\"%s\",\"handler\":\"%s\"," CODE "}", bad[i].runtime,
                               bad[i].handler);
                expect_error(body, "field 'handler'");
                expect_error(body, bad[i].needle);
        }
}

static void test_bad_handler(void **state)
{
        static const char *const bad[] = {
            "",
            "x",
            "/abs.so",
            "../x.so",
            "a/../x.so",
            "a/..",
            "./a.so",
            "a//b.so",
            "a/./b.so",
            "a.so:",
            "a.so:1bad",
            "a.so:b:c",
            "a.so:sym-bol",
            "a.so:sym bol",
            "a b.so",
            ".so",
            "a/.so",
            "a.so/",
            "x.SO",
            "x.so.1",
            "a\\\\b.so",
            "caf\xc3\xa9.so",
            ":sym",
            "a.so::x",
            "a.so\\tx",
        };
        _cleanup_free_ char *dir = repeat('d', 256 - strlen("/x.so"));
        char body[1024];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                (void)snprintf(body, sizeof(body), "{" RUNTIME "," CODE ",\"handler\":\"%s\"}",
                               bad[i]);
                expect_error(body, "field 'handler'");
        }
        (void)snprintf(body, sizeof(body), "{" RUNTIME "," CODE ",\"handler\":\"%s/x.so\"}", dir);
        expect_error(body, "field 'handler' must be at most 255 bytes");
}

static void test_bad_env(void **state)
{
        _cleanup_free_ char *too_many = env_body(FUNCTION_ENV_MAX + 1, 8, 1);
        _cleanup_free_ char *long_key = env_body(1, FUNCTION_ENV_KEY_MAX + 1, 1);
        _cleanup_free_ char *long_value = env_body(1, 8, FUNCTION_ENV_VALUE_MAX + 1);
        static const char *const bad_keys[] = {
            "1A", "A-B", "", "A B", "A=B", "A.B", "caf\xc3\xa9", "A\\nB",
        };
        static const char *const reserved[] = {
            "FNBOX_",           "FNBOX_TOKEN",      "AWS_REGION", "AWS_LAMBDA_RUNTIME_API",
            "LAMBDA_TASK_ROOT", "_X_AMZN_TRACE_ID", "_HANDLER",
        };
        static const char *const bad_values[] = {"1", "null", "true", "{}", "[\"x\"]", "1.5"};
        char body[512];

        for (size_t i = 0; i < ELEMENTSOF(bad_keys); i++) {
                (void)snprintf(body, sizeof(body), "{" BASE ",\"env\":{\"%s\":\"v\"}}",
                               bad_keys[i]);
                expect_error(body, "field 'env' key");
                expect_error(body, "must match [A-Za-z_][A-Za-z0-9_]*");
        }
        for (size_t i = 0; i < ELEMENTSOF(reserved); i++) {
                (void)snprintf(body, sizeof(body), "{" BASE ",\"env\":{\"OK\":\"1\",\"%s\":\"v\"}}",
                               reserved[i]);
                expect_error(body, "is reserved");
                expect_error(body, reserved[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad_values); i++) {
                (void)snprintf(body, sizeof(body), "{" BASE ",\"env\":{\"KEY\":%s}}",
                               bad_values[i]);
                expect_error(body, "field 'env' value of 'KEY' must be a string");
        }
        expect_error(too_many, "field 'env' has 65 variables, at most 64 are allowed");
        expect_error(long_key, "field 'env' key");
        expect_error(long_key, "is longer than 128 bytes");
        expect_error(long_value, "field 'env' value of");
        expect_error(long_value, "is longer than 4096 bytes");
}

static void test_missing_required(void **state)
{
        expect_error("{" HANDLER "," CODE "}", "missing required field 'runtime'");
        expect_error("{" RUNTIME "," CODE "}", "missing required field 'handler'");
        expect_error("{" RUNTIME "," HANDLER "}", "missing required field 'code'");
        expect_error("{}", "missing required field");
}

static void test_bad_code(void **state)
{
        static const char *const bad[] = {"Zm9v!",    "Zm9",  "Zg==Zg==",  "Zm 9v",
                                          "Zm9v-_==", "====", "\\u00e9AAA"};
        char body[256];

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                (void)snprintf(body, sizeof(body), "{" RUNTIME "," HANDLER ",\"code\":\"%s\"}",
                               bad[i]);
                expect_error(body, "field 'code' must be valid base64");
        }
        expect_error("{" RUNTIME "," HANDLER ",\"code\":\"\"}", "field 'code' must not be empty");
        expect_error("{" RUNTIME "," HANDLER ",\"code\":\"\\n\"}",
                     "field 'code' must not be empty");
}

static void test_invalid_name(void **state)
{
        FunctionSpec spec = {};
        void *code = NULL;
        size_t len = 0;
        FnError err = {};
        const char *body = "{" BASE "}";

        assert_int_equal(
            api_parse_function_spec("../x", body, strlen(body), &spec, &code, &len, &err), -EINVAL);
        assert_null(code);
        /* reterr may be NULL. */
        assert_int_equal(api_parse_function_spec("my-fn", "[]", 2, &spec, &code, &len, NULL),
                         -EINVAL);
}

/* ---- output ---- */

static json_t *load(const char *s)
{
        json_error_t e;
        json_t *j;

        assert_non_null(s);
        /* Compact output: no newlines, no space after ':' or ','. */
        assert_null(strchr(s, '\n'));
        assert_null(strstr(s, "\": "));
        j = json_loads(s, JSON_REJECT_DUPLICATES, &e);
        if (!j)
                fail_msg("not JSON (%s): %s", e.text, s);
        return j;
}

static const char *get_str(const json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);

        if (!json_is_string(v))
                fail_msg("key '%s' is not a string", key);
        return json_string_value(v);
}

static json_int_t get_int(const json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);

        if (!json_is_integer(v))
                fail_msg("key '%s' is not an integer", key);
        return json_integer_value(v);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
static bool is_rfc3339_ms(const char *s)
{
        static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";

        if (strlen(s) != strlen(pattern))
                return false;
        for (size_t i = 0; pattern[i]; i++) {
                if (pattern[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pattern[i])
                        return false;
        }
        return true;
}

static void fill_function(Function *f, FunctionEnv *env, size_t n_env)
{
        memset(f, 0, sizeof(*f));
        strcpy(f->spec.name, "echo");
        strcpy(f->spec.runtime, "native");
        strcpy(f->spec.handler, "lib/echo.so:handle");
        f->spec.memory_mb = 256;
        f->spec.timeout_ms = 1500;
        f->spec.env = env;
        f->spec.n_env = n_env;
        memset(f->code_sha256, 'a', 64);
        f->code_size = 5000000000ULL; /* above 2^32 */
        f->version = 7;
        /* 2026-11-26T14:34:45Z + 123456 us */
        f->created_usec = 1795703685ULL * 1000000 + 123456;
        f->updated_usec = 1795703685ULL * 1000000 + 999999;
        strcpy(f->code_dir, "/var/lib/fnbox/code/aaaa");
}

static void test_function_to_json(void **state)
{
        FunctionEnv env[] = {
            {.key = (char *)"GREETING", .value = (char *)"hello \"world\"\n\\"},
            {.key = (char *)"EMPTY", .value = (char *)""},
        };
        Function f;
        _cleanup_free_ char *s = NULL;
        json_t *o, *e;

        fill_function(&f, env, ELEMENTSOF(env));
        s = api_function_to_json(&f);
        o = load(s);
        assert_true(json_is_object(o));
        assert_int_equal(json_object_size(o), 14);
        assert_int_equal(get_int(o, "keep_alive_ms"), f.spec.keep_alive_ms);
        assert_int_equal(get_int(o, "max_concurrency"), f.spec.max_concurrency);
        assert_int_equal(get_int(o, "min_instances"), f.spec.min_instances);
        assert_string_equal(get_str(o, "name"), "echo");
        assert_string_equal(get_str(o, "runtime"), "native");
        assert_string_equal(get_str(o, "handler"), "lib/echo.so:handle");
        assert_int_equal(get_int(o, "memory_mb"), 256);
        assert_int_equal(get_int(o, "timeout_ms"), 1500);
        assert_int_equal(strlen(get_str(o, "code_sha256")), 64);
        assert_true(get_int(o, "code_size") == 5000000000LL);
        assert_int_equal(get_int(o, "version"), 7);
        /* Milliseconds are truncated, never rounded up into the next second. */
        assert_string_equal(get_str(o, "created_at"), "2026-11-26T14:34:45.123Z");
        assert_string_equal(get_str(o, "updated_at"), "2026-11-26T14:34:45.999Z");
        assert_true(is_rfc3339_ms(get_str(o, "created_at")));
        /* Internal paths stay internal. */
        assert_null(json_object_get(o, "code_dir"));
        assert_null(strstr(s, "/var/lib"));

        e = json_object_get(o, "env");
        assert_true(json_is_object(e));
        assert_int_equal(json_object_size(e), 2);
        assert_string_equal(get_str(e, "GREETING"), "hello \"world\"\n\\");
        assert_string_equal(get_str(e, "EMPTY"), "");
        json_decref(o);
}

static void test_function_to_json_edges(void **state)
{
        Function f;
        _cleanup_free_ char *s1 = NULL, *s2 = NULL;
        json_t *o;

        fill_function(&f, NULL, 0);
        f.created_usec = 0;
        f.updated_usec = UINT64_MAX;
        s1 = api_function_to_json(&f);
        o = load(s1);
        assert_true(json_is_object(json_object_get(o, "env")));
        assert_int_equal(json_object_size(json_object_get(o, "env")), 0);
        assert_string_equal(get_str(o, "created_at"), "1970-01-01T00:00:00.000Z");
        /* A corrupt stamp still yields a well-formed timestamp. */
        assert_true(is_rfc3339_ms(get_str(o, "updated_at")));
        json_decref(o);

        /* Leap day, end of year. */
        f.created_usec = 1709164800ULL * 1000000 + 1000;   /* 2024-02-29T00:00:00.001Z */
        f.updated_usec = 1767225599ULL * 1000000 + 500000; /* 2025-12-31T23:59:59.500Z */
        s2 = api_function_to_json(&f);
        o = load(s2);
        assert_string_equal(get_str(o, "created_at"), "2024-02-29T00:00:00.001Z");
        assert_string_equal(get_str(o, "updated_at"), "2025-12-31T23:59:59.500Z");
        json_decref(o);
}

static void test_parse_then_describe(void **state)
{
        /* What a client deploys is what it reads back. */
        const char *body = "{\"runtime\":\"native\",\"handler\":\"fn.so:run\",\"memory_mb\":512,"
                           "\"timeout_ms\":42,\"env\":{\"A\":\"1\",\"B\":\"two words\"},"
                           "\"code\":\"" CODE_B64 "\"}";
        Function f = {};
        void *code = NULL;
        size_t len;
        _cleanup_free_ char *s = NULL;
        json_t *o, *e;

        expect_ok(body, &f.spec, &code, &len);
        f.version = 1;
        s = api_function_to_json(&f);
        o = load(s);
        assert_string_equal(get_str(o, "name"), "my-fn");
        assert_string_equal(get_str(o, "handler"), "fn.so:run");
        assert_int_equal(get_int(o, "memory_mb"), 512);
        assert_int_equal(get_int(o, "timeout_ms"), 42);
        e = json_object_get(o, "env");
        assert_int_equal(json_object_size(e), 2);
        assert_string_equal(get_str(e, "A"), "1");
        assert_string_equal(get_str(e, "B"), "two words");
        json_decref(o);
        function_spec_done(&f.spec);
        free(code);
}

static void test_function_list_to_json(void **state)
{
        Function a, b;
        Function *list[] = {&a, &b};
        _cleanup_free_ char *empty = api_function_list_to_json(NULL, 0);
        _cleanup_free_ char *s = NULL;
        json_t *o, *arr;

        assert_non_null(empty);
        assert_string_equal(empty, "{\"functions\":[]}");

        fill_function(&a, NULL, 0);
        fill_function(&b, NULL, 0);
        strcpy(b.spec.name, "zeta");
        b.version = 1;
        s = api_function_list_to_json(list, 2);
        o = load(s);
        assert_int_equal(json_object_size(o), 1);
        arr = json_object_get(o, "functions");
        assert_true(json_is_array(arr));
        assert_int_equal(json_array_size(arr), 2);
        assert_string_equal(get_str(json_array_get(arr, 0), "name"), "echo");
        assert_string_equal(get_str(json_array_get(arr, 1), "name"), "zeta");
        assert_int_equal(get_int(json_array_get(arr, 1), "version"), 1);
        assert_int_equal(json_object_size(json_array_get(arr, 1)), 14);
        assert_string_equal(get_str(json_array_get(arr, 1), "created_at"),
                            "2026-11-26T14:34:45.123Z");
        json_decref(o);
}

static void test_error_to_json(void **state)
{
        _cleanup_free_ char *s1 = api_error_to_json("NotFound", "function 'x' not found");
        _cleanup_free_ char *s2 =
            api_error_to_json("InvalidParameter", "field \"a\\b\"\n\tbad \xc3\xa9");
        _cleanup_free_ char *s3 = api_error_to_json("Internal", "bad \xff byte");
        json_t *o, *e;

        assert_non_null(s1);
        assert_string_equal(s1, "{\"error\":{\"type\":\"NotFound\",\"message\":\"function 'x' not "
                                "found\"}}");

        o = load(s2);
        assert_int_equal(json_object_size(o), 1);
        e = json_object_get(o, "error");
        assert_int_equal(json_object_size(e), 2);
        assert_string_equal(get_str(e, "type"), "InvalidParameter");
        assert_string_equal(get_str(e, "message"), "field \"a\\b\"\n\tbad \xc3\xa9");
        json_decref(o);

        /* Bytes that are not UTF-8 must not turn an error report into no report. */
        o = load(s3);
        e = json_object_get(o, "error");
        assert_string_equal(get_str(e, "message"), "bad ? byte");
        json_decref(o);
}

/* A parse error message fits into FnError and is itself valid JSON material. */
static void test_error_message_from_parser_round_trips(void **state)
{
        _cleanup_free_ char *key = repeat('k', 300);
        _cleanup_free_ char *body = NULL;
        _cleanup_free_ char *s = NULL;
        FunctionSpec spec = {};
        void *code = NULL;
        size_t len;
        FnError err = {};
        json_t *o;

        assert_true(asprintf(&body, "{" BASE ",\"%s\":1}", key) > 0);
        assert_int_equal(parse(body, &spec, &code, &len, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "unknown field 'kkkk"));
        assert_non_null(strstr(err.msg, "...'"));
        s = api_error_to_json("InvalidParameter", err.msg);
        o = load(s);
        assert_string_equal(get_str(json_object_get(o, "error"), "message"), err.msg);
        json_decref(o);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_full),
            cmocka_unit_test(test_parse_defaults),
            cmocka_unit_test(test_parse_boundaries),
            cmocka_unit_test(test_malformed_json),
            cmocka_unit_test(test_not_an_object),
            cmocka_unit_test(test_unknown_field),
            cmocka_unit_test(test_duplicate_key),
            cmocka_unit_test(test_nul_in_strings),
            cmocka_unit_test(test_wrong_types),
            cmocka_unit_test(test_out_of_range),
            cmocka_unit_test(test_bad_runtime),
            cmocka_unit_test(test_runtimes_and_their_handlers),
            cmocka_unit_test(test_bad_runtime_handlers),
            cmocka_unit_test(test_bad_handler),
            cmocka_unit_test(test_bad_env),
            cmocka_unit_test(test_missing_required),
            cmocka_unit_test(test_bad_code),
            cmocka_unit_test(test_invalid_name),
            cmocka_unit_test(test_function_to_json),
            cmocka_unit_test(test_function_to_json_edges),
            cmocka_unit_test(test_parse_then_describe),
            cmocka_unit_test(test_function_list_to_json),
            cmocka_unit_test(test_error_to_json),
            cmocka_unit_test(test_error_message_from_parser_round_trips),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
