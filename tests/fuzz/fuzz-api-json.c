/* SPDX-License-Identifier: Apache-2.0 */
/* The deploy body of PUT /v1/functions/NAME, straight from an HTTP client:
 * api_parse_function_spec() on arbitrary bytes. Besides crashes and leaks, a success must hand
 * back a spec that keeps the promises the registry and the agent rely on (the handler is a
 * relative path without "..", env keys are identifiers outside the reserved prefixes, numbers
 * are in range, code is not empty), and a failure must say why. */
#include <stdbool.h>
#include <string.h>

#include "api-json.h"
#include "fuzz.h"
#include "macro.h"
#include "registry.h"

static bool is_ident(const char *s)
{
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
                return false;
        for (s++; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                      (*s >= '0' && *s <= '9') || *s == '_'))
                        return false;
        return true;
}

/* The file part of "FILE.so[:SYMBOL]" must stay inside the bundle. */
static bool handler_is_safe(const char *h)
{
        size_t flen = strcspn(h, ":");

        if (flen == 0 || h[0] == '/')
                return false;
        if (flen < 3 || memcmp(h + flen - 3, ".so", 3) != 0)
                return false;
        for (const char *c = h; c < h + flen;) {
                size_t n = strcspn(c, "/:");

                if (n > flen - (size_t)(c - h))
                        n = flen - (size_t)(c - h);
                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c += n + 1;
        }
        return true;
}

static void check_spec(const FunctionSpec *s, size_t code_len)
{
        FUZZ_CHECK(strcmp(s->name, "f") == 0);
        FUZZ_CHECK(strcmp(s->runtime, "native") == 0);
        FUZZ_CHECK(memchr(s->handler, '\0', sizeof(s->handler)));
        FUZZ_CHECK(handler_is_safe(s->handler));
        FUZZ_CHECK(s->memory_mb >= FUNCTION_MEMORY_MIN_MB &&
                   s->memory_mb <= FUNCTION_MEMORY_MAX_MB);
        FUZZ_CHECK(s->timeout_ms >= FUNCTION_TIMEOUT_MIN_MS &&
                   s->timeout_ms <= FUNCTION_TIMEOUT_MAX_MS);
        FUZZ_CHECK(s->n_env <= FUNCTION_ENV_MAX);
        FUZZ_CHECK((s->n_env == 0) == (s->env == NULL));
        for (size_t i = 0; i < s->n_env; i++) {
                const char *k = s->env[i].key;

                FUZZ_CHECK(k && s->env[i].value);
                FUZZ_CHECK(is_ident(k) && strlen(k) <= FUNCTION_ENV_KEY_MAX);
                FUZZ_CHECK(strncmp(k, "FNBOX_", 6) != 0 && strncmp(k, "AWS_", 4) != 0 &&
                           strncmp(k, "LAMBDA_", 7) != 0);
                FUZZ_CHECK(strlen(s->env[i].value) <= FUNCTION_ENV_VALUE_MAX);
        }
        FUZZ_CHECK(code_len > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *body = NULL;
        _cleanup_free_ void *code = NULL;
        FunctionSpec spec = {};
        FnError err = {};
        size_t code_len = 0;
        int r;

        /* api.c hands over its request buffer, which it keeps NUL-terminated, with the length;
         * the body may contain NULs of its own. */
        body = malloc(size + 1);
        FUZZ_CHECK(body);
        memcpy(body, data, size);
        body[size] = '\0';

        r = api_parse_function_spec("f", body, size, &spec, &code, &code_len, &err);
        if (r >= 0) {
                check_spec(&spec, code_len);
                FUZZ_CHECK(code);
                function_spec_done(&spec);
        } else {
                /* Outputs untouched, and a reason for the client. */
                FUZZ_CHECK(!code && code_len == 0 && !spec.env && spec.n_env == 0);
                FUZZ_CHECK(err.code == r);
                FUZZ_CHECK(err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof(err.msg)));
        }
        return 0;
}
