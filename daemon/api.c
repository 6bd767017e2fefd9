/* SPDX-License-Identifier: Apache-2.0 */
#include "api.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api-json.h"
#include "list.h"
#include "logstore.h"
#include "log.h"
#include "util.h"

typedef enum Route {
        ROUTE_NONE,
        ROUTE_HEALTH,
        ROUTE_FUNCTIONS,
        ROUTE_FUNCTION,
        ROUTE_INVOKE,
        ROUTE_INVOCATION,
        ROUTE_POOL,
        ROUTE_METRICS,
        ROUTE_FUNCTION_LOGS,
        ROUTE_INVOCATION_LOGS,
} Route;

struct Api {
        Loop *loop;
        Registry *reg;
        Invoker *inv;
        struct MHD_Daemon *mhd;
        LoopSource *mhd_src;
        uint16_t port;
        struct Request *suspended; /* requests waiting on a function */
        bool in_mhd;               /* inside MHD_run: it must not be entered again */
};

typedef struct Request {
        Api *api;
        struct MHD_Connection *conn;
        Route route;
        char name[65]; /* function name or invocation id */
        char *body;
        size_t body_len, body_limit;
        bool started;  /* the first callback has run */
        bool rejected; /* an error answer was queued; discard the rest */
        /* an answer to queue on the next callback */
        bool answered; /* an answer is waiting in pending (NULL there: out of memory) */
        unsigned pending_status;
        struct MHD_Response *pending;
        Invocation *invocation;
        struct Request *prev, *next; /* in api->suspended */
} Request;

/* ---- responses ---- */

static struct MHD_Response *response_from_string(char *s, const char *content_type)
{
        struct MHD_Response *resp;

        if (!s)
                return NULL;
        resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                free(s);
                return NULL;
        }
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        return resp;
}

static struct MHD_Response *error_response(const char *type, const char *fmt, ...) _printf_(2, 3);
static struct MHD_Response *error_response(const char *type, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return response_from_string(api_error_to_json(type, msg), "application/json");
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status,
                             struct MHD_Response *resp)
{
        enum MHD_Result r;

        if (!resp) {
                static char oom[] = "{\"error\":{\"type\":\"InternalError\","
                                    "\"message\":\"out of memory\"}}";
                resp = MHD_create_response_from_buffer(strlen(oom), oom, MHD_RESPMEM_PERSISTENT);
                if (!resp)
                        return MHD_NO;
                status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        }
        r = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return r;
}

/* Remembers an answer; it is queued on the next callback (queueing on the first callback of a
 * request makes libmicrohttpd 0.9.75 close the connection). */
static void request_answer(Request *req, unsigned status, struct MHD_Response *resp)
{
        if (req->pending)
                MHD_destroy_response(req->pending);
        req->pending = resp;
        req->pending_status = status;
        req->answered = true;
        if (!resp)
                req->pending_status = MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static void request_answer_error(Request *req, unsigned status, const char *type,
                                 const char *message)
{
        struct MHD_Response *resp = error_response(type, "%s", message);

        if (resp && status == MHD_HTTP_UNAUTHORIZED)
                (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                              "Bearer realm=\"fnbox\"");
        request_answer(req, status, resp);
}

static unsigned status_for_errno(int r)
{
        switch (r) {
        case -ENOENT:
                return MHD_HTTP_NOT_FOUND;
        case -EINVAL:
        case -EBADMSG:
        case -ENAMETOOLONG:
                return MHD_HTTP_BAD_REQUEST;
        case -EFBIG:
        case -E2BIG:
                return MHD_HTTP_CONTENT_TOO_LARGE;
        case -ENOMEM:
        case -ENOSPC:
        case -EDQUOT:
                return MHD_HTTP_SERVICE_UNAVAILABLE;
        default:
                return MHD_HTTP_INTERNAL_SERVER_ERROR;
        }
}

static const char *type_for_status(unsigned status)
{
        switch (status) {
        case MHD_HTTP_BAD_REQUEST:
                return "BadRequest";
        case MHD_HTTP_NOT_FOUND:
                return "NotFound";
        case MHD_HTTP_CONTENT_TOO_LARGE:
                return "PayloadTooLarge";
        case MHD_HTTP_SERVICE_UNAVAILABLE:
                return "ServiceUnavailable";
        default:
                return "InternalError";
        }
}

/* ---- routing ---- */

static Route route_parse(const char *url, char name[65])
{
        const char *p, *slash;
        size_t l;

        name[0] = '\0';
        if (strcmp(url, "/healthz") == 0)
                return ROUTE_HEALTH;
        if (strcmp(url, "/metrics") == 0)
                return ROUTE_METRICS;
        if (strcmp(url, "/v1/pool") == 0)
                return ROUTE_POOL;
        if (strcmp(url, "/v1/functions") == 0 || strcmp(url, "/v1/functions/") == 0)
                return ROUTE_FUNCTIONS;
        if (strncmp(url, "/v1/invocations/", 16) == 0) {
                bool logs;
                p = url + 16;
                slash = strchr(p, '/');
                logs = slash && strcmp(slash, "/logs") == 0;
                if (slash && !logs)
                        return ROUTE_NONE;
                l = slash ? (size_t)(slash - p) : strlen(p);
                if (l == 0 || l > 64)
                        return ROUTE_NONE;
                memcpy(name, p, l);
                name[l] = '\0';
                if (!name_is_valid(name))
                        return ROUTE_NONE;
                return logs ? ROUTE_INVOCATION_LOGS : ROUTE_INVOCATION;
        }
        if (strncmp(url, "/v1/functions/", 14) != 0)
                return ROUTE_NONE;
        p = url + 14;
        slash = strchr(p, '/');
        l = slash ? (size_t)(slash - p) : strlen(p);
        /* Keep the raw name (up to 64 + 1 bytes) so a bad one is reported as such. */
        if (l > 64)
                l = 65;
        memcpy(name, p, MIN(l, (size_t)64));
        name[MIN(l, (size_t)64)] = '\0';
        if (l > 64)
                name[0] = '\0';
        if (!slash)
                return ROUTE_FUNCTION;
        if (strcmp(slash, "/invoke") == 0)
                return ROUTE_INVOKE;
        if (strcmp(slash, "/logs") == 0)
                return ROUTE_FUNCTION_LOGS;
        return ROUTE_NONE;
}

static bool method_allowed(Route route, const char *method, const char **ret_allow)
{
        static const char *const allow[] = {
            [ROUTE_HEALTH] = "GET",
            [ROUTE_FUNCTIONS] = "GET",
            [ROUTE_FUNCTION] = "GET, PUT, DELETE",
            [ROUTE_INVOKE] = "POST",
            [ROUTE_INVOCATION] = "GET",
            [ROUTE_POOL] = "GET",
            [ROUTE_METRICS] = "GET",
            [ROUTE_FUNCTION_LOGS] = "GET",
            [ROUTE_INVOCATION_LOGS] = "GET",
        };
        const char *a = allow[route];
        size_t ml = strlen(method);

        *ret_allow = a;
        for (const char *p = a; (p = strstr(p, method)); p += ml)
                if ((p == a || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0'))
                        return true;
        return false;
}

static bool request_authorized(Api *api, struct MHD_Connection *conn)
{
        const char *h =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

        if (!h || strncasecmp(h, "Bearer ", 7) != 0)
                return false;
        h += 7;
        while (*h == ' ')
                h++;
        return registry_check_token(api->reg, h) >= 0;
}

/* ---- handlers ---- */

/* An error about the function the URL names: 404 when there is no such function, else the
 * status the error maps to, with the type that goes with that status. */
static void request_answer_function_error(Request *req, int r, const char *what)
{
        char msg[128];
        unsigned status;

        if (r == -ENOENT) {
                (void)snprintf(msg, sizeof(msg), "function '%s' not found", req->name);
                request_answer_error(req, MHD_HTTP_NOT_FOUND, "NotFound", msg);
                return;
        }
        status = status_for_errno(r);
        request_answer_error(req, status, type_for_status(status), what);
}

static void handle_health(Request *req)
{
        request_answer(req, MHD_HTTP_OK,
                       response_from_string(strdup("{\"status\":\"ok\"}"), "application/json"));
}

static void handle_list(Request *req)
{
        Function **list = NULL;
        size_t n = 0;
        int r = registry_list(req->api->reg, &list, &n);

        if (r < 0) {
                request_answer_error(req, status_for_errno(r), "InternalError",
                                     "cannot list functions");
                return;
        }
        request_answer(
            req, MHD_HTTP_OK,
            response_from_string(api_function_list_to_json(list, n), "application/json"));
        function_list_free(list, n);
}

static void handle_get(Request *req)
{
        _cleanup_(function_freep) Function *f = NULL;
        int r = registry_get(req->api->reg, req->name, &f);

        if (r < 0) {
                request_answer_function_error(req, r, "cannot read the function");
                return;
        }
        request_answer(req, MHD_HTTP_OK,
                       response_from_string(api_function_to_json(f), "application/json"));
}

static void handle_delete(Request *req)
{
        int r = registry_delete(req->api->reg, req->name);

        if (r < 0) {
                request_answer_function_error(req, r, "cannot delete the function");
                return;
        }
        invoker_remove_function(req->api->inv, req->name);
        log_info("deleted function %s", req->name);
        request_answer(req, MHD_HTTP_NO_CONTENT,
                       MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT));
}

static void handle_put(Request *req)
{
        FunctionSpec spec = {0};
        _cleanup_free_ void *code = NULL;
        _cleanup_(function_freep) Function *f = NULL;
        size_t code_len = 0;
        FnError err = {0};
        bool created = false;
        int r;

        r = api_parse_function_spec(req->name, req->body ? req->body : "", req->body_len, &spec,
                                    &code, &code_len, &err);
        if (r < 0) {
                request_answer_error(req, MHD_HTTP_BAD_REQUEST, "BadRequest", err.msg);
                return;
        }
        r = registry_put(req->api->reg, &spec, code, code_len, &created, &f, &err);
        function_spec_done(&spec);
        if (r < 0) {
                unsigned status = status_for_errno(r);
                request_answer_error(req, status, type_for_status(status),
                                     err.msg[0] ? err.msg : strerror(-r));
                return;
        }
        r = invoker_set_function(req->api->inv, f);
        if (r < 0)
                log_warning_errno(r, "Cannot hand function %s to the invoker, ignoring: %m",
                                  f->spec.name);
        log_info("%s function %s version %" PRIu64 " (code %.12s)", created ? "created" : "updated",
                 f->spec.name, f->version, f->code_sha256);
        request_answer(req, created ? MHD_HTTP_CREATED : MHD_HTTP_OK,
                       response_from_string(api_function_to_json(f), "application/json"));
}

static char *invocation_record_to_json(const InvokeResult *res)
{
        /* What a function printed is arbitrary bytes; JSON wants UTF-8. */
        _cleanup_free_ char *log = utf8_sanitize(res->log ? res->log : "", res->log_len);
        _cleanup_free_ char *type = utf8_sanitize(res->error_type, strlen(res->error_type));
        _cleanup_free_ char *msg = utf8_sanitize(res->error_message, strlen(res->error_message));
        json_t *o;
        char *s;

        if (!log || !type || !msg)
                return NULL;
        o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:f, s:f, s:I, s:I, s:s, s:b}", "id", res->id,
                      "function", res->function, "outcome", invoke_outcome_to_string(res->outcome),
                      "start", invoke_start_to_string(res->start), "start_cause", res->start_cause,
                      "duration_ms", (double)res->run_usec / 1000.0, "total_ms",
                      (double)res->total_usec / 1000.0, "billed_ms", (json_int_t)res->billed_ms,
                      "max_memory_used_mb",
                      (json_int_t)((res->memory_peak_bytes + 1024 * 1024 - 1) / (1024 * 1024)),
                      "log", log, "log_truncated", res->log_truncated);
        if (!o)
                return NULL;
        if (res->outcome != INVOKE_OK)
                (void)json_object_set_new(o, "error",
                                          json_pack("{s:s, s:s}", "type", type, "message", msg));
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

/* The record of the invocation the URL names, or NULL with a 404 answered. */
static const InvokeResult *request_find_record(Request *req)
{
        const InvokeResult *res = invoker_find_record(req->api->inv, req->name);

        if (!res)
                request_answer_error(req, MHD_HTTP_NOT_FOUND, "NotFound",
                                     "no record of that invocation (records are kept for "
                                     "the latest invocations only)");
        return res;
}

static void handle_invocation(Request *req)
{
        const InvokeResult *res = request_find_record(req);

        if (!res)
                return;
        request_answer(req, MHD_HTTP_OK,
                       response_from_string(invocation_record_to_json(res), "application/json"));
}

static unsigned status_for_outcome(InvokeOutcome o)
{
        switch (o) {
        case INVOKE_OK:
                return MHD_HTTP_OK;
        case INVOKE_TIMEOUT:
                return MHD_HTTP_GATEWAY_TIMEOUT;
        case INVOKE_PLATFORM_ERROR:
                return MHD_HTTP_SERVICE_UNAVAILABLE;
        case INVOKE_THROTTLED:
                return MHD_HTTP_TOO_MANY_REQUESTS;
        default:
                return MHD_HTTP_BAD_GATEWAY;
        }
}

static void add_invoke_headers(struct MHD_Response *resp, const InvokeResult *res)
{
        char timing[512], buf[64];
        size_t n = 0;

        (void)MHD_add_response_header(resp, "X-Fnbox-Invocation-Id", res->id);
        if (res->start != INVOKE_START_NONE)
                (void)MHD_add_response_header(resp, "X-Fnbox-Start",
                                              invoke_start_to_string(res->start));
        if (res->start_cause)
                (void)MHD_add_response_header(resp, "X-Fnbox-Start-Cause", res->start_cause);
        for (size_t k = 0; k < res->n_phases && n < sizeof(timing); k++)
                n +=
                    (size_t)snprintf(timing + n, sizeof(timing) - n, "%s%s;dur=%.3f", k ? ", " : "",
                                     res->phases[k].name, (double)res->phases[k].usec / 1000.0);
        if (n < sizeof(timing))
                (void)snprintf(timing + n, sizeof(timing) - n, "%stotal;dur=%.3f", n ? ", " : "",
                               (double)res->total_usec / 1000.0);
        (void)MHD_add_response_header(resp, "Server-Timing", timing);
        (void)snprintf(buf, sizeof(buf), "%" PRIu64, res->billed_ms);
        (void)MHD_add_response_header(resp, "X-Fnbox-Billed-Duration-Ms", buf);
        /* Whole megabytes, rounded up, as Lambda's "Max Memory Used". */
        (void)snprintf(buf, sizeof(buf), "%" PRIu64,
                       (res->memory_peak_bytes + 1024 * 1024 - 1) / (1024 * 1024));
        (void)MHD_add_response_header(resp, "X-Fnbox-Max-Memory-Used-Mb", buf);
        if (res->outcome != INVOKE_OK)
                (void)MHD_add_response_header(resp, "X-Fnbox-Function-Error", res->error_type);
}

static void api_run(Api *api)
{
        if (api->in_mhd)
                return;
        api->in_mhd = true;
        (void)MHD_run(api->mhd);
        api->in_mhd = false;
}

static void request_unsuspend(Request *req)
{
        Api *api = req->api;

        LIST_REMOVE(api->suspended, req);
        MHD_resume_connection(req->conn);
}

/* {"error":{"type":"InitError","message":...,"runtime_error":{...}}}: the runtime's own error
 * body (Lambda's {"errorMessage","errorType","stackTrace"}) rides along when it is JSON. */
static char *init_error_json(const InvokeResult *res)
{
        _cleanup_free_ char *msg = utf8_sanitize(res->error_message, strlen(res->error_message));
        json_t *o, *body;
        char *s;

        if (!msg)
                return NULL;
        o = json_pack("{s:{s:s, s:s}}", "error", "type", "InitError", "message", msg);
        if (!o)
                return NULL;
        body = json_loadb(res->body, res->body_len, 0, NULL);
        if (body && json_is_object(body))
                (void)json_object_set_new(json_object_get(o, "error"), "runtime_error", body);
        else
                json_decref(body);
        s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

static void on_invoke_done(const InvokeResult *res, void *userdata)
{
        Request *req = userdata;
        Api *api = req->api;
        struct MHD_Response *resp;
        unsigned status = status_for_outcome(res->outcome);

        if (res->outcome == INVOKE_INIT_ERROR && res->body)
                resp = response_from_string(init_error_json(res), "application/json");
        else if (res->outcome == INVOKE_OK ||
                 (res->outcome == INVOKE_FUNCTION_ERROR && res->body)) {
                /* The function's response; or the error body a Lambda-style runtime posted
                 * ({"errorMessage","errorType","stackTrace"}), passed through as Lambda does. */
                resp = MHD_create_response_from_buffer(res->body_len, res->body,
                                                       MHD_RESPMEM_MUST_COPY);
                if (resp)
                        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                                      res->outcome == INVOKE_OK
                                                          ? "application/octet-stream"
                                                          : "application/json");
        } else
                resp = error_response(res->error_type, "%s", res->error_message);
        if (resp) {
                const char *want =
                    MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-Fnbox-Log");
                add_invoke_headers(resp, res);
                if (want && strcasecmp(want, "tail") == 0) {
                        /* As Lambda's LogType: Tail: the last 4 KiB of the log, base64. */
                        size_t n = MIN(res->log_len, (size_t)API_LOG_TAIL_BYTES);
                        _cleanup_free_ char *b64 =
                            base64_encode(res->log ? res->log + res->log_len - n : "", n);
                        if (b64)
                                (void)MHD_add_response_header(resp, "X-Fnbox-Log-Result", b64);
                }
                if (res->outcome == INVOKE_THROTTLED) {
                        char secs[32];
                        usec_t t = pool_config(invoker_pool(api->inv))->queue_timeout;
                        (void)snprintf(secs, sizeof(secs), "%" PRIu64,
                                       MAX((t + USEC_PER_SEC - 1) / USEC_PER_SEC, (usec_t)1));
                        (void)MHD_add_response_header(resp, "Retry-After", secs);
                }
        }
        request_answer(req, status, resp);
        if (req->invocation) {
                req->invocation = NULL;
                request_unsuspend(req);
                /* Send the answer now, before whatever else this loop round holds. */
                api_run(api);
        }
        /* else: called from within invoker_submit, the request is not suspended yet */
}

static void handle_invoke(Request *req)
{
        Api *api = req->api;
        Invocation *i = NULL;
        int r;

        r = invoker_submit(api->inv, req->name, req->body, req->body_len, on_invoke_done, req, &i);
        if (r < 0) {
                request_answer_function_error(req, r, "cannot start the invocation");
                return;
        }
        if (!i || req->answered)
                return; /* already answered (throttled, or no sandbox) */
        req->invocation = i;
        LIST_PREPEND(api->suspended, req);
        MHD_suspend_connection(req->conn);
}

static void pool_instance_json(const PoolInstance *i, void *userdata)
{
        json_t *arr = userdata;
        const char *state = i->state == POOL_INSTANCE_IDLE && i->frozen
                                ? "frozen"
                                : pool_instance_state_to_string(i->state);

        (void)json_array_append_new(arr, json_pack("{s:s, s:s?, s:I, s:I, s:I}", "state", state,
                                                   "function", i->function[0] ? i->function : NULL,
                                                   "version", (json_int_t)i->version, "memory_mb",
                                                   (json_int_t)(i->memory_bytes / (1024 * 1024)),
                                                   "invocations", (json_int_t)i->invocations));
}

static void handle_pool(Request *req)
{
        const Pool *pool = invoker_pool(req->api->inv);
        const PoolConfig *cfg = pool_config(pool);
        PoolStats st;
        json_t *o, *states, *hits, *instances;
        char *text;

        pool_get_stats(pool, &st);
        instances = json_array();
        pool_foreach(pool, pool_instance_json, instances);
        states = json_pack(
            "{s:I, s:I, s:I, s:I, s:I}", "prewarmed", (json_int_t)st.by_state[POOL_INSTANCE_CELL],
            "starting", (json_int_t)st.by_state[POOL_INSTANCE_STARTING], "warm_idle",
            (json_int_t)(st.by_state[POOL_INSTANCE_IDLE] - st.frozen), "frozen",
            (json_int_t)st.frozen, "busy", (json_int_t)st.by_state[POOL_INSTANCE_BUSY]);
        hits = json_pack("{s:I, s:I, s:I}", "warm", (json_int_t)st.hits[POOL_TIER_WARM],
                         "prewarmed", (json_int_t)st.hits[POOL_TIER_PREWARMED], "cold",
                         (json_int_t)st.hits[POOL_TIER_COLD]);
        o = json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}, "
                      "s:o}",
                      "instances_by_state", states, "starts", hits, "memory_reserved_mb",
                      (json_int_t)(st.memory_reserved / (1024 * 1024)), "memory_budget_mb",
                      (json_int_t)(cfg->memory_budget / (1024 * 1024)), "queued",
                      (json_int_t)st.queued, "throttled", (json_int_t)st.rejected, "evictions",
                      "expired", (json_int_t)st.evictions[POOL_CAUSE_EXPIRED], "memory",
                      (json_int_t)st.evictions[POOL_CAUSE_EVICTED], "code_changed",
                      (json_int_t)st.evictions[POOL_CAUSE_CODE_CHANGED], "config", "prewarm_target",
                      (json_int_t)cfg->prewarm_target, "max_busy", (json_int_t)cfg->max_busy,
                      "queue_max", (json_int_t)cfg->queue_max, "queue_timeout_ms",
                      (json_int_t)(cfg->queue_timeout / USEC_PER_MSEC), "instances", instances);
        text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        request_answer(req, MHD_HTTP_OK, response_from_string(text, "application/json"));
}

static void handle_function_logs(Request *req)
{
        const char *v;
        uint64_t lines = 100, after = 0, cursor = 0;
        char *text = NULL, buf[32];
        struct MHD_Response *resp;
        int r;

        v = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "tail");
        if (v && (parse_uint64(v, &lines) < 0 || lines > LOGSTORE_TAIL_MAX)) {
                request_answer_error(req, MHD_HTTP_BAD_REQUEST, "BadRequest",
                                     "query 'tail' must be a whole number of lines up to 10000");
                return;
        }
        v = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, "after");
        if (v && parse_uint64(v, &after) < 0) {
                request_answer_error(req, MHD_HTTP_BAD_REQUEST, "BadRequest",
                                     "query 'after' must be a cursor from X-Fnbox-Log-Cursor");
                return;
        }
        r = invoker_function_logs(req->api->inv, req->name, (size_t)lines, after, &text, &cursor);
        if (r < 0) {
                request_answer_function_error(req, r, "cannot read the log");
                return;
        }
        /* What functions print is arbitrary bytes; the answer says UTF-8, so make it so. */
        resp = response_from_string(utf8_sanitize(text, strlen(text)), "text/plain; charset=utf-8");
        free(text);
        if (resp) {
                (void)snprintf(buf, sizeof(buf), "%" PRIu64, cursor);
                (void)MHD_add_response_header(resp, "X-Fnbox-Log-Cursor", buf);
        }
        request_answer(req, MHD_HTTP_OK, resp);
}

static void handle_invocation_logs(Request *req)
{
        const InvokeResult *res = request_find_record(req);

        if (!res)
                return;
        request_answer(req, MHD_HTTP_OK,
                       response_from_string(
                           utf8_sanitize(res->log ? res->log : "", res->log ? res->log_len : 0),
                           "text/plain; charset=utf-8"));
}

static void handle_metrics(Request *req)
{
        request_answer(
            req, MHD_HTTP_OK,
            response_from_string(invoker_metrics(req->api->inv), "text/plain; version=0.0.4"));
}

/* ---- libmicrohttpd glue ---- */

static void request_dispatch(Request *req, const char *method)
{
        switch (req->route) {
        case ROUTE_HEALTH:
                handle_health(req);
                break;
        case ROUTE_FUNCTIONS:
                handle_list(req);
                break;
        case ROUTE_FUNCTION:
                if (strcmp(method, "GET") == 0)
                        handle_get(req);
                else if (strcmp(method, "PUT") == 0)
                        handle_put(req);
                else
                        handle_delete(req);
                break;
        case ROUTE_INVOKE:
                handle_invoke(req);
                break;
        case ROUTE_INVOCATION:
                handle_invocation(req);
                break;
        case ROUTE_POOL:
                handle_pool(req);
                break;
        case ROUTE_METRICS:
                handle_metrics(req);
                break;
        case ROUTE_FUNCTION_LOGS:
                handle_function_logs(req);
                break;
        case ROUTE_INVOCATION_LOGS:
                handle_invocation_logs(req);
                break;
        case ROUTE_NONE:
                break;
        }
}

/* Checks what can be checked from the request line and headers, on the first callback. */
static void request_start(Request *req, const char *url, const char *method)
{
        const char *allow, *cl;
        uint64_t length = 0;

        req->route = route_parse(url, req->name);
        if (req->route == ROUTE_NONE) {
                request_answer_error(req, MHD_HTTP_NOT_FOUND, "NotFound", "no such route");
                return;
        }
        if (req->route != ROUTE_HEALTH && !request_authorized(req->api, req->conn)) {
                request_answer_error(req, MHD_HTTP_UNAUTHORIZED, "Unauthorized",
                                     "missing or invalid bearer token");
                return;
        }
        if (!method_allowed(req->route, method, &allow)) {
                struct MHD_Response *resp = error_response("MethodNotAllowed",
                                                           "method %s is not allowed here; "
                                                           "allowed: %s",
                                                           method, allow);
                if (resp)
                        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
                request_answer(req, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
                return;
        }
        if ((req->route == ROUTE_FUNCTION || req->route == ROUTE_INVOKE ||
             req->route == ROUTE_FUNCTION_LOGS) &&
            !name_is_valid(req->name)) {
                request_answer_error(req, MHD_HTTP_BAD_REQUEST, "BadRequest",
                                     "function names are 1 to 64 characters of A-Z a-z 0-9 _ -");
                return;
        }
        req->body_limit = req->route == ROUTE_INVOKE ? INVOKE_PAYLOAD_MAX
                          : (req->route == ROUTE_FUNCTION && strcmp(method, "PUT") == 0)
                              ? API_DEPLOY_BODY_MAX
                              : 0;
        cl =
            MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && parse_uint64(cl, &length) >= 0 && length > req->body_limit) {
                char msg[160];
                (void)snprintf(msg, sizeof(msg),
                               "request body of %" PRIu64 " bytes is over the limit of %zu bytes",
                               length, req->body_limit);
                request_answer_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "PayloadTooLarge", msg);
        }
}

static bool request_take_body(Request *req, const char *data, size_t len)
{
        char *nb;
        size_t cap;

        if (req->body_len + len > req->body_limit) {
                char msg[160];
                (void)snprintf(msg, sizeof(msg), "request body is over the limit of %zu bytes",
                               req->body_limit);
                request_answer_error(req, MHD_HTTP_CONTENT_TOO_LARGE, "PayloadTooLarge", msg);
                return false;
        }
        /* Grow geometrically; +1 keeps the body NUL-terminated for the JSON parser. */
        cap = MAX(req->body_len + len + 1, MIN(2 * (req->body_len + 1), req->body_limit + 1));
        nb = realloc(req->body, cap);
        if (!nb) {
                request_answer_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "ServiceUnavailable",
                                     "out of memory");
                return false;
        }
        req->body = nb;
        memcpy(req->body + req->body_len, data, len);
        req->body_len += len;
        req->body[req->body_len] = '\0';
        return true;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
        Api *api = cls;
        Request *req = *con_cls;

        if (!req) {
                req = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                req->api = api;
                req->conn = conn;
                *con_cls = req;
                request_start(req, url, method);
                if (req->answered && req->pending_status == MHD_HTTP_CONTENT_TOO_LARGE) {
                        /* Answer now, before reading the body (the connection closes). */
                        req->rejected = true;
                        return queue(conn, req->pending_status, TAKE_PTR(req->pending));
                }
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                /* Discard the body of a request already refused; else keep it. */
                if (!req->answered && !req->rejected)
                        (void)request_take_body(req, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return MHD_YES;
        }

        if (req->rejected)
                return MHD_YES;
        if (!req->answered && !req->invocation)
                request_dispatch(req, method);
        if (req->answered) {
                req->rejected = true; /* answered */
                return queue(conn, req->pending_status, TAKE_PTR(req->pending));
        }
        return MHD_YES; /* suspended, waiting on the function */
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        Request *req = *con_cls;

        if (!req)
                return;
        if (req->invocation)
                invocation_detach(req->invocation);
        if (req->pending)
                MHD_destroy_response(req->pending);
        free(req->body);
        free(req);
        *con_cls = NULL;
}

static int on_mhd_io(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        api_run(userdata);
        return 0;
}

static usec_t on_prepare(void *userdata)
{
        Api *api = userdata;
        MHD_UNSIGNED_LONG_LONG ms;

        /* Resumed connections wake MHD's epoll fd by themselves (its inter-thread channel), so
         * only its timeouts need the loop's help here. */
        if (MHD_get_timeout(api->mhd, &ms) != MHD_YES)
                return USEC_INFINITY;
        if (ms == 0) {
                /* A connection timed out: let MHD close it. */
                api_run(api);
                if (MHD_get_timeout(api->mhd, &ms) != MHD_YES)
                        return USEC_INFINITY;
        }
        return (usec_t)ms * USEC_PER_MSEC;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
#pragma GCC diagnostic pop
        msg[strcspn(msg, "\n")] = '\0';
        log_debug("libmicrohttpd: %s", msg);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *ret_len,
                        FnError *reterr)
{
        char host[128];
        const char *colon = strrchr(listen, ':');
        uint64_t port;
        size_t hl;

        if (!colon || parse_uint64(colon + 1, &port) < 0 || port > 65535)
                return fn_error_set(reterr, -EINVAL, "bad listen address '%s': want HOST:PORT",
                                    listen);
        hl = (size_t)(colon - listen);
        if (hl >= sizeof(host))
                return fn_error_set(reterr, -EINVAL, "bad listen address '%s'", listen);
        memcpy(host, listen, hl);
        host[hl] = '\0';
        memset(ss, 0, sizeof(*ss));
        if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
                struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
                host[hl - 1] = '\0';
                a6->sin6_family = AF_INET6;
                a6->sin6_port = htons((uint16_t)port);
                if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
                        return fn_error_set(reterr, -EINVAL, "bad IPv6 address in '%s'", listen);
                *ret_len = sizeof(*a6);
                return 0;
        }
        struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
                return fn_error_set(reterr, -EINVAL,
                                    "bad IPv4 address in '%s' (use a numeric address)", listen);
        *ret_len = sizeof(*a4);
        return 0;
}

int api_new(Loop *loop, Registry *reg, Invoker *inv, const ApiConfig *cfg, Api **ret,
            FnError *reterr)
{
        _cleanup_free_ Api *api = calloc(1, sizeof(*api));
        struct sockaddr_storage ss;
        socklen_t sl;
        const union MHD_DaemonInfo *info;
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        int r;

        if (!api)
                return -ENOMEM;
        r = parse_listen(cfg->listen, &ss, &sl, reterr);
        if (r < 0)
                return r;
        if (ss.ss_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        api->loop = loop;
        api->reg = reg;
        api->inv = inv;
        api->mhd = MHD_start_daemon(
            flags, 0, NULL, NULL, on_access, api, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, api,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
            api, MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_CONNECTIONS_MAX,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_CONNECTION_TIMEOUT_SEC,
            MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
        if (!api->mhd)
                return fn_error_set(reterr, -EADDRINUSE,
                                    "cannot listen on %s (address in use or not available)",
                                    cfg->listen);
        info = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_BIND_PORT);
        api->port = info ? info->port : 0;
        info = MHD_get_daemon_info(api->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                MHD_stop_daemon(api->mhd);
                return fn_error_set(reterr, -EIO, "libmicrohttpd has no epoll fd");
        }
        r = loop_add_io(loop, info->epoll_fd, EPOLLIN, on_mhd_io, api, &api->mhd_src);
        if (r < 0) {
                MHD_stop_daemon(api->mhd);
                return fn_error_set(reterr, r, "cannot watch the HTTP socket");
        }
        loop_set_prepare(loop, on_prepare, api);
        *ret = TAKE_PTR(api);
        return 0;
}

uint16_t api_port(const Api *api)
{
        return api->port;
}

Api *api_free(Api *api)
{
        if (!api)
                return NULL;
        loop_set_prepare(api->loop, NULL, NULL);
        /* libmicrohttpd forbids stopping with suspended connections: answer them first. */
        while (api->suspended) {
                Request *req = api->suspended;
                if (req->invocation)
                        invocation_detach(req->invocation);
                req->invocation = NULL;
                request_answer_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "ServiceUnavailable",
                                     "the daemon is stopping");
                request_unsuspend(req);
        }
        (void)MHD_run(api->mhd);
        loop_source_free(api->mhd_src);
        MHD_stop_daemon(api->mhd);
        free(api);
        return NULL;
}
