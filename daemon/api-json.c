/* SPDX-License-Identifier: Apache-2.0 */
#include "api-json.h"

#include <assert.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "util.h"

/* _cleanup_(json_decrefp): jansson >= 2.9 defines json_decrefp() itself. */

#define DEFAULT_MEMORY_MB 128
#define DEFAULT_TIMEOUT_MS 3000

/* How much of a client-supplied string (a key, a parser excerpt) is echoed in a message. */
#define ECHO_MAX 64

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" and its NUL. */
#define TIMESTAMP_SIZE 32

/* The text lists the array for messages; keep the two in step. "provided.al2" and
 * "provided.al2023" are Lambda's names for the same OS-only runtime; they are kept as given. */
static const char *const supported_runtimes[] = {
    "native", "provided", "provided.al2", "provided.al2023", "python3", "nodejs",
};
#define SUPPORTED_RUNTIMES_TEXT                                                                    \
        "native, provided (also provided.al2, provided.al2023), python3, nodejs"

static const char *const allowed_fields[] = {
    "runtime", "handler",       "memory_mb",       "timeout_ms",    "env",
    "code",    "keep_alive_ms", "max_concurrency", "min_instances",
};

/* Names the platform sets itself in the sandbox; a tenant must not override them. */
static const char *const reserved_env_prefixes[] = {"FNBOX_", "AWS_", "LAMBDA_"};
/* Lambda's reserved names outside those prefixes. */
static const char *const reserved_env_names[] = {"_HANDLER", "_X_AMZN_TRACE_ID"};

static char printable(char c)
{
        if (c >= 0x20 && c < 0x7f)
                return c;
        return '?';
}

/* Client bytes go into error messages that end up in JSON and in logs: keep only printable
 * ASCII (anything else becomes '?') and at most ECHO_MAX bytes, so a message is always valid
 * UTF-8, has no control characters and still leaves room for the rest of the sentence. */
static void echo_sanitize(const char *s, size_t len, char out[static ECHO_MAX + 4])
{
        size_t n = MIN(len, (size_t)ECHO_MAX);

        for (size_t i = 0; i < n; i++)
                out[i] = printable(s[i]);
        if (len > ECHO_MAX) {
                memcpy(out + n, "...", 3);
                n += 3;
        }
        out[n] = '\0';
}

/* A string value jansson accepted, as a C string without embedded NUL. JSON_ALLOW_NUL is off,
 * so the parser already rejects "\u0000"; this check keeps that guarantee local. */
static const char *json_cstring(const json_t *v)
{
        const char *s;

        if (!json_is_string(v))
                return NULL;
        s = json_string_value(v);
        if (strlen(s) != json_string_length(v))
                return NULL;
        return s;
}

static int parse_error(const json_error_t *err, FnError *reterr)
{
        char near[ECHO_MAX + 4];
        const char *p, *q;

        switch (json_error_code(err)) {
        case json_error_duplicate_key:
                /* The text is "duplicate object key near '"KEY"'": echo KEY only. */
                p = strstr(err->text, "near '\"");
                q = p ? strrchr(err->text, '"') : NULL;
                if (p && q && q > p + 6) {
                        p += 7;
                        echo_sanitize(p, (size_t)(q - p), near);
                        return fn_error_set(reterr, -EINVAL,
                                            "duplicate field '%s' at line %d column %d", near,
                                            err->line, err->column);
                }
                return fn_error_set(reterr, -EINVAL, "duplicate field at line %d column %d",
                                    err->line, err->column);
        case json_error_null_character:
        case json_error_null_byte_in_key:
                return fn_error_set(reterr, -EINVAL,
                                    "malformed JSON at line %d column %d: strings must not "
                                    "contain NUL (\\u0000)",
                                    err->line, err->column);
        default:
                echo_sanitize(err->text, strlen(err->text), near);
                return fn_error_set(reterr, -EINVAL, "malformed JSON at line %d column %d: %s",
                                    err->line, err->column, near);
        }
}

static int check_fields(const json_t *root, FnError *reterr)
{
        const char *key;
        json_t *v;

        json_object_foreach ((json_t *)root, key, v) {
                bool known = false;
                char echo[ECHO_MAX + 4];

                for (size_t i = 0; i < ELEMENTSOF(allowed_fields) && !known; i++)
                        known = strcmp(key, allowed_fields[i]) == 0;
                if (known)
                        continue;
                echo_sanitize(key, strlen(key), echo);
                return fn_error_set(reterr, -EINVAL, "unknown field '%s'", echo);
        }
        return 0;
}

static int parse_runtime(const json_t *v, char *out, size_t size, FnError *reterr)
{
        const char *s = json_cstring(v);

        if (!v)
                return fn_error_set(reterr, -EINVAL, "missing required field 'runtime'");
        if (!s)
                return fn_error_set(reterr, -EINVAL, "field 'runtime' must be a string");
        for (size_t i = 0; i < ELEMENTSOF(supported_runtimes); i++) {
                if (strcmp(s, supported_runtimes[i]) != 0)
                        continue;
                assert(strlen(s) < size);
                strcpy(out, s);
                return 0;
        }
        return fn_error_set(reterr, -EINVAL,
                            "field 'runtime' names no supported runtime (supported runtimes: %s)",
                            SUPPORTED_RUNTIMES_TEXT);
}

static bool is_ident_start(char c)
{
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_ident_char(char c)
{
        return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* FILE of a handler: a canonical relative path below the bundle root. Besides "..", "." and
 * empty components are refused too, so one handler has one spelling and the registry's lookup
 * of the file in the bundle never needs to normalize anything. */
static int check_handler_file(const char *file, size_t len, FnError *reterr)
{
        size_t start = 0;

        if (len == 0)
                return fn_error_set(reterr, -EINVAL, "field 'handler' must not be empty");
        if (file[0] == '/')
                return fn_error_set(reterr, -EINVAL,
                                    "field 'handler' must name a relative path, not an absolute "
                                    "one");
        for (size_t i = 0; i < len; i++) {
                char c = file[i];
                if (!is_ident_char(c) && c != '.' && c != '-' && c != '/')
                        return fn_error_set(reterr, -EINVAL,
                                            "field 'handler' file may contain only "
                                            "[A-Za-z0-9._/-]");
        }
        for (size_t i = 0; i <= len; i++) {
                size_t l;
                if (i < len && file[i] != '/')
                        continue;
                l = i - start;
                if (l == 0 || (l == 1 && file[start] == '.') ||
                    (l == 2 && file[start] == '.' && file[start + 1] == '.'))
                        return fn_error_set(reterr, -EINVAL,
                                            "field 'handler' file must not contain '..', '.' or "
                                            "empty path components");
                if (i < len)
                        start = i + 1;
        }
        /* start is now the beginning of the last component, which needs a name before ".so". */
        if (len - start < 4 || memcmp(file + len - 3, ".so", 3) != 0)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'handler' must be \"FILE.so\" or \"FILE.so:SYMBOL\" "
                                    "(file must end in '.so')");
        return 0;
}

/* native: "FILE.so" or "FILE.so:SYMBOL". */
static int check_native_handler(const char *s, size_t len, FnError *reterr)
{
        const char *colon = strchr(s, ':');
        size_t flen = colon ? (size_t)(colon - s) : len;
        int r;

        r = check_handler_file(s, flen, reterr);
        if (r < 0)
                return r;
        if (colon) {
                const char *sym = colon + 1;
                bool ok = is_ident_start(sym[0]);
                for (const char *p = sym; ok && *p; p++)
                        ok = is_ident_char(*p);
                if (!ok)
                        return fn_error_set(reterr, -EINVAL,
                                            "field 'handler' symbol after ':' must be a C "
                                            "identifier ([A-Za-z_][A-Za-z0-9_]*)");
        }
        return 0;
}

/* provided: Lambda passes the handler to the bootstrap as _HANDLER and gives it no meaning. */
static int check_provided_handler(const char *s, size_t len, FnError *reterr)
{
        bool ok = len > 0;

        for (size_t i = 0; ok && i < len; i++)
                ok = s[i] >= 0x20 && s[i] < 0x7f;
        if (!ok)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'handler' for runtime 'provided' must be 1 to 255 "
                                    "printable ASCII characters (the bootstrap gets it as "
                                    "_HANDLER)");
        return 0;
}

/* [A-Za-z_][A-Za-z0-9_]* at s[0..len). */
static bool is_ident(const char *s, size_t len)
{
        if (len == 0 || !is_ident_start(s[0]))
                return false;
        for (size_t i = 1; i < len; i++)
                if (!is_ident_char(s[i]))
                        return false;
        return true;
}

/* Splits s[0..len) at every char in seps and checks each part with ok(). */
static bool parts_are(const char *s, size_t len, const char *seps, bool (*ok)(const char *, size_t))
{
        size_t start = 0;

        for (size_t i = 0; i <= len; i++) {
                if (i < len && !strchr(seps, s[i]))
                        continue;
                if (!ok(s + start, i - start))
                        return false;
                start = i + 1;
        }
        return true;
}

/* python3: "MODULE.FUNCTION", MODULE a path of identifiers joined by '.' or '/'. */
static int check_python_handler(const char *s, size_t len, FnError *reterr)
{
        const char *dot = memrchr(s, '.', len);

        if (!dot || !is_ident(dot + 1, len - (size_t)(dot + 1 - s)) ||
            !parts_are(s, (size_t)(dot - s), "./", is_ident))
                return fn_error_set(reterr, -EINVAL,
                                    "field 'handler' for runtime 'python3' must be "
                                    "\"MODULE.FUNCTION\" of Python identifiers (e.g. "
                                    "\"app.handler\", \"pkg/app.handler\" or "
                                    "\"pkg.app.handler\")");
        return 0;
}

static bool is_file_name(const char *s, size_t len)
{
        if (len == 0)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!is_ident_char(s[i]) && s[i] != '-')
                        return false;
        return true;
}

static bool is_js_ident(const char *s, size_t len)
{
        if (len == 0 || !(is_ident_start(s[0]) || s[0] == '$'))
                return false;
        for (size_t i = 1; i < len; i++)
                if (!is_ident_char(s[i]) && s[i] != '$')
                        return false;
        return true;
}

/* nodejs: "FILE.EXPORT": FILE may be in subdirectories, EXPORT may be a dotted path (Lambda
 * resolves "index.handlers.main" as index.js's handlers.main). */
static int check_nodejs_handler(const char *s, size_t len, FnError *reterr)
{
        const char *slash = memrchr(s, '/', len), *base = slash ? slash + 1 : s;
        const char *dot = memchr(base, '.', len - (size_t)(base - s));

        if (!dot || (slash && !parts_are(s, (size_t)(slash - s), "/", is_file_name)) ||
            !is_file_name(base, (size_t)(dot - base)) ||
            !parts_are(dot + 1, len - (size_t)(dot + 1 - s), ".", is_js_ident))
                return fn_error_set(reterr, -EINVAL,
                                    "field 'handler' for runtime 'nodejs' must be "
                                    "\"FILE.EXPORT\" (e.g. \"index.handler\" or "
                                    "\"src/app.handler\"; FILE of [A-Za-z0-9_-], EXPORT a "
                                    "JavaScript identifier)");
        return 0;
}

static int parse_handler(const json_t *v, const char *runtime, char *out, size_t size,
                         FnError *reterr)
{
        const char *s = json_cstring(v);
        size_t len;
        int r;

        if (!v)
                return fn_error_set(reterr, -EINVAL, "missing required field 'handler'");
        if (!s)
                return fn_error_set(reterr, -EINVAL, "field 'handler' must be a string");
        len = strlen(s);
        if (len >= size)
                return fn_error_set(reterr, -EINVAL, "field 'handler' must be at most %zu bytes",
                                    size - 1);
        if (strncmp(runtime, "provided", 8) == 0)
                r = check_provided_handler(s, len, reterr);
        else if (strcmp(runtime, "python3") == 0)
                r = check_python_handler(s, len, reterr);
        else if (strcmp(runtime, "nodejs") == 0)
                r = check_nodejs_handler(s, len, reterr);
        else
                r = check_native_handler(s, len, reterr);
        if (r < 0)
                return r;
        memcpy(out, s, len + 1);
        return 0;
}

static int parse_uint_field(const json_t *v, uint32_t min, uint32_t max, uint32_t def,
                            uint32_t *ret)
{
        json_int_t i;

        if (!v) {
                *ret = def;
                return 0;
        }
        /* json_is_integer is false for reals (128.0) and booleans: both are type errors. */
        if (!json_is_integer(v))
                return -EINVAL;
        i = json_integer_value(v);
        if (i < (json_int_t)min || i > (json_int_t)max)
                return -EINVAL;
        *ret = (uint32_t)i;
        return 0;
}

static FunctionEnv *env_array_free(FunctionEnv *env, size_t n)
{
        for (size_t i = 0; i < n && env; i++) {
                free(env[i].key);
                free(env[i].value);
        }
        free(env);
        return NULL;
}

static int check_env_key(const char *key, FnError *reterr)
{
        size_t len = strlen(key);
        char echo[ECHO_MAX + 4];
        bool ok = is_ident_start(key[0]);

        for (size_t i = 1; ok && i < len; i++)
                ok = is_ident_char(key[i]);
        echo_sanitize(key, len, echo);
        if (!ok)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'env' key '%s' must match [A-Za-z_][A-Za-z0-9_]*", echo);
        if (len > FUNCTION_ENV_KEY_MAX)
                return fn_error_set(reterr, -EINVAL, "field 'env' key '%s' is longer than %d bytes",
                                    echo, FUNCTION_ENV_KEY_MAX);
        for (size_t i = 0; i < ELEMENTSOF(reserved_env_prefixes); i++)
                if (strncmp(key, reserved_env_prefixes[i], strlen(reserved_env_prefixes[i])) == 0)
                        return fn_error_set(reterr, -EINVAL,
                                            "field 'env' key '%s' is reserved (the prefixes "
                                            "FNBOX_, AWS_ and LAMBDA_ belong to the platform)",
                                            echo);
        for (size_t i = 0; i < ELEMENTSOF(reserved_env_names); i++)
                if (strcmp(key, reserved_env_names[i]) == 0)
                        return fn_error_set(reterr, -EINVAL,
                                            "field 'env' key '%s' is reserved (the platform sets "
                                            "it, as Lambda does)",
                                            echo);
        return 0;
}

static int check_env_value(const char *key, const json_t *v, FnError *reterr)
{
        const char *s = json_cstring(v);

        if (!json_is_string(v))
                return fn_error_set(reterr, -EINVAL, "field 'env' value of '%s' must be a string",
                                    key);
        if (!s)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'env' value of '%s' must not contain NUL", key);
        if (strlen(s) > FUNCTION_ENV_VALUE_MAX)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'env' value of '%s' is longer than %d bytes", key,
                                    FUNCTION_ENV_VALUE_MAX);
        return 0;
}

static int parse_env(const json_t *v, FunctionEnv **ret, size_t *ret_n, FnError *reterr)
{
        FunctionEnv *env = NULL;
        size_t n = 0, count;
        const char *key;
        json_t *value;
        int r;

        if (!v) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (!json_is_object(v))
                return fn_error_set(reterr, -EINVAL,
                                    "field 'env' must be an object of string values");
        count = json_object_size(v);
        if (count > FUNCTION_ENV_MAX)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'env' has %zu variables, at most %d are allowed", count,
                                    FUNCTION_ENV_MAX);
        /* Validate everything before allocating, so the error path frees nothing. */
        json_object_foreach ((json_t *)v, key, value) {
                r = check_env_key(key, reterr);
                if (r < 0)
                        return r;
                r = check_env_value(key, value, reterr);
                if (r < 0)
                        return r;
        }
        if (count == 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        env = calloc(count, sizeof(*env));
        if (!env)
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        json_object_foreach ((json_t *)v, key, value) {
                _cleanup_free_ char *k = strdup(key);
                _cleanup_free_ char *val = strdup(json_string_value(value));

                assert(n < count);
                if (!k || !val) {
                        env_array_free(env, n);
                        return fn_error_set(reterr, -ENOMEM, "out of memory");
                }
                env[n].key = TAKE_PTR(k);
                env[n].value = TAKE_PTR(val);
                n++;
        }
        *ret = env;
        *ret_n = n;
        return 0;
}

static int parse_code(const json_t *v, void **ret, size_t *ret_len, FnError *reterr)
{
        _cleanup_free_ void *code = NULL;
        const char *s = json_cstring(v);
        size_t len;
        int r;

        if (!v)
                return fn_error_set(reterr, -EINVAL, "missing required field 'code'");
        if (!s)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'code' must be a string (base64 of a zip or tar.gz)");
        r = base64_decode(s, json_string_length(v), &code, &len);
        if (r == -ENOMEM)
                return fn_error_set(reterr, r, "out of memory");
        if (r < 0)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'code' must be valid base64 (RFC 4648, padded)");
        if (len == 0)
                return fn_error_set(reterr, -EINVAL, "field 'code' must not be empty");
        *ret = TAKE_PTR(code);
        *ret_len = len;
        return 0;
}

static int parse_limits(const json_t *root, FunctionSpec *spec, FnError *reterr)
{
        if (parse_uint_field(json_object_get(root, "memory_mb"), FUNCTION_MEMORY_MIN_MB,
                             FUNCTION_MEMORY_MAX_MB, DEFAULT_MEMORY_MB, &spec->memory_mb) < 0)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'memory_mb' must be an integer between %d and %d",
                                    FUNCTION_MEMORY_MIN_MB, FUNCTION_MEMORY_MAX_MB);
        if (parse_uint_field(json_object_get(root, "timeout_ms"), FUNCTION_TIMEOUT_MIN_MS,
                             FUNCTION_TIMEOUT_MAX_MS, DEFAULT_TIMEOUT_MS, &spec->timeout_ms) < 0)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'timeout_ms' must be an integer between %d and %d",
                                    FUNCTION_TIMEOUT_MIN_MS, FUNCTION_TIMEOUT_MAX_MS);
        if (parse_uint_field(json_object_get(root, "keep_alive_ms"), 0, FUNCTION_KEEP_ALIVE_MAX_MS,
                             FUNCTION_KEEP_ALIVE_DEFAULT_MS, &spec->keep_alive_ms) < 0)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'keep_alive_ms' must be an integer between 0 and %d",
                                    FUNCTION_KEEP_ALIVE_MAX_MS);
        if (parse_uint_field(json_object_get(root, "max_concurrency"), 0, FUNCTION_CONCURRENCY_MAX,
                             0, &spec->max_concurrency) < 0)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'max_concurrency' must be an integer between 0 (no "
                                    "cap of its own) and %d",
                                    FUNCTION_CONCURRENCY_MAX);
        if (parse_uint_field(json_object_get(root, "min_instances"), 0, FUNCTION_CONCURRENCY_MAX, 0,
                             &spec->min_instances) < 0)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'min_instances' must be an integer between 0 and %d",
                                    FUNCTION_CONCURRENCY_MAX);
        if (spec->max_concurrency > 0 && spec->min_instances > spec->max_concurrency)
                return fn_error_set(reterr, -EINVAL,
                                    "field 'min_instances' must not exceed 'max_concurrency'");
        return 0;
}

int api_parse_function_spec(const char *name, const char *body, size_t len, FunctionSpec *spec,
                            void **ret_code, size_t *ret_code_len, FnError *reterr)
{
        _cleanup_(json_decrefp) json_t *root = NULL;
        FunctionSpec s = {};
        json_error_t err;
        int r;

        assert(spec);
        assert(ret_code);
        assert(ret_code_len);

        /* The caller validated name; checking again is cheap and keeps spec->name safe to use
         * as a path component whatever the caller does. */
        if (!name || !name_is_valid(name))
                return fn_error_set(reterr, -EINVAL, "invalid function name");
        strcpy(s.name, name);

        /* JSON_DECODE_ANY lets a scalar top level reach the "must be an object" message below;
         * JSON_ALLOW_NUL stays off, so "\u0000" never reaches a C string. */
        root = json_loadb(body ? body : "", body ? len : 0,
                          JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
        if (!root)
                return parse_error(&err, reterr);
        if (!json_is_object(root))
                return fn_error_set(reterr, -EINVAL, "request body must be a JSON object");

        r = check_fields(root, reterr);
        if (r < 0)
                return r;
        r = parse_runtime(json_object_get(root, "runtime"), s.runtime, sizeof(s.runtime), reterr);
        if (r < 0)
                return r;
        r = parse_handler(json_object_get(root, "handler"), s.runtime, s.handler, sizeof(s.handler),
                          reterr);
        if (r < 0)
                return r;
        r = parse_limits(root, &s, reterr);
        if (r < 0)
                return r;
        r = parse_env(json_object_get(root, "env"), &s.env, &s.n_env, reterr);
        if (r < 0)
                return r;
        /* The expensive part last, after every cheap check passed. */
        r = parse_code(json_object_get(root, "code"), ret_code, ret_code_len, reterr);
        if (r < 0) {
                env_array_free(s.env, s.n_env);
                return r;
        }
        *spec = s;
        return 0;
}

/* RFC 3339 UTC with milliseconds. The registry stores CLOCK_REALTIME stamps, so anything past
 * year 9999 is a corrupt row: clamp it rather than print a timestamp no parser accepts. */
static void format_timestamp(usec_t usec, char out[static TIMESTAMP_SIZE])
{
        const usec_t max = (usec_t)253402300799ULL * USEC_PER_SEC + (USEC_PER_SEC - 1);
        time_t sec;
        struct tm tm = {};
        size_t n;

        usec = MIN(usec, max);
        sec = (time_t)(usec / USEC_PER_SEC);
        /* Cannot fail for years 1970..9999 with a 64-bit time_t. */
        (void)gmtime_r(&sec, &tm);
        n = strftime(out, TIMESTAMP_SIZE, "%Y-%m-%dT%H:%M:%S", &tm);
        (void)snprintf(out + n, TIMESTAMP_SIZE - n, ".%03uZ",
                       (unsigned)(usec % USEC_PER_SEC / USEC_PER_MSEC));
}

static json_t *json_u64(uint64_t v)
{
        return json_integer((json_int_t)MIN(v, (uint64_t)INT64_MAX));
}

/* json_object_set_new() consumes the value even on failure, and a NULL value (failed
 * constructor) makes it fail: so one check per field covers every allocation. */
static json_t *env_to_object(const FunctionSpec *spec)
{
        _cleanup_(json_decrefp) json_t *o = json_object();

        if (!o)
                return NULL;
        for (size_t i = 0; i < spec->n_env; i++)
                if (json_object_set_new(o, spec->env[i].key, json_string(spec->env[i].value)) < 0)
                        return NULL;
        return TAKE_PTR(o);
}

static json_t *function_to_object(const Function *f)
{
        _cleanup_(json_decrefp) json_t *o = json_object();
        char created[TIMESTAMP_SIZE], updated[TIMESTAMP_SIZE];

        if (!o)
                return NULL;
        format_timestamp(f->created_usec, created);
        format_timestamp(f->updated_usec, updated);
        if (json_object_set_new(o, "name", json_string(f->spec.name)) < 0 ||
            json_object_set_new(o, "runtime", json_string(f->spec.runtime)) < 0 ||
            json_object_set_new(o, "handler", json_string(f->spec.handler)) < 0 ||
            json_object_set_new(o, "memory_mb", json_integer(f->spec.memory_mb)) < 0 ||
            json_object_set_new(o, "timeout_ms", json_integer(f->spec.timeout_ms)) < 0 ||
            json_object_set_new(o, "keep_alive_ms", json_integer(f->spec.keep_alive_ms)) < 0 ||
            json_object_set_new(o, "max_concurrency", json_integer(f->spec.max_concurrency)) < 0 ||
            json_object_set_new(o, "min_instances", json_integer(f->spec.min_instances)) < 0 ||
            json_object_set_new(o, "env", env_to_object(&f->spec)) < 0 ||
            json_object_set_new(o, "code_sha256", json_string(f->code_sha256)) < 0 ||
            json_object_set_new(o, "code_size", json_u64(f->code_size)) < 0 ||
            json_object_set_new(o, "version", json_u64(f->version)) < 0 ||
            json_object_set_new(o, "created_at", json_string(created)) < 0 ||
            json_object_set_new(o, "updated_at", json_string(updated)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

char *api_function_to_json(const Function *f)
{
        _cleanup_(json_decrefp) json_t *o = NULL;

        assert(f);
        o = function_to_object(f);
        if (!o)
                return NULL;
        return json_dumps(o, JSON_COMPACT);
}

char *api_function_list_to_json(Function *const *list, size_t n)
{
        _cleanup_(json_decrefp) json_t *o = json_object();
        json_t *a;

        if (!o)
                return NULL;
        /* a is borrowed from o from here: set_new() took it, or freed it on failure. */
        a = json_array();
        if (json_object_set_new(o, "functions", a) < 0)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(a, function_to_object(list[i])) < 0)
                        return NULL;
        return json_dumps(o, JSON_COMPACT);
}

/* A message may carry bytes that are not UTF-8 (an strerror, a path); jansson refuses those,
 * so fall back to a printable-ASCII copy rather than fail as if out of memory. */
static json_t *json_string_lossy(const char *s)
{
        _cleanup_free_ char *copy = NULL;
        json_t *v;
        size_t len;

        s = s ? s : "";
        v = json_string(s);
        if (v)
                return v;
        len = strlen(s);
        copy = malloc(len + 1);
        if (!copy)
                return NULL;
        for (size_t i = 0; i < len; i++)
                copy[i] = printable(s[i]);
        copy[len] = '\0';
        return json_string(copy);
}

char *api_error_to_json(const char *type, const char *message)
{
        _cleanup_(json_decrefp) json_t *o = json_object();
        json_t *e;

        if (!o)
                return NULL;
        e = json_object();
        if (json_object_set_new(o, "error", e) < 0 ||
            json_object_set_new(e, "type", json_string_lossy(type)) < 0 ||
            json_object_set_new(e, "message", json_string_lossy(message)) < 0)
                return NULL;
        return json_dumps(o, JSON_COMPACT);
}
