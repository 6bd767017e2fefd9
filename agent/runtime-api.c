/* SPDX-License-Identifier: Apache-2.0 */
/* Process runtimes: "provided" (a Lambda custom runtime's /var/task/bootstrap), "python3" and
 * "nodejs" (the shims /var/runtime/<runtime>/bootstrap, which are custom runtimes too).
 *
 * The agent serves the AWS Lambda Runtime API (version 2018-06-01) on 127.0.0.1:9001 inside the
 * sandbox's network namespace and runs the bootstrap as its child, with stdout and stderr on the
 * log memfd and Lambda's environment. The runtime pulls events with GET .../invocation/next and
 * posts the outcome to .../invocation/{id}/response or .../error; the agent turns these into the
 * InitResult and Result messages of the channel, so the daemon drives a process runtime exactly
 * like a native function:
 *
 *   Init   -> listen, fork+exec the bootstrap; the first GET /next completes init (InitResult ok),
 *             POST /init/error or the bootstrap exiting fails it
 *   Invoke -> answers the waiting (or the next) GET /next with the event; POST /response gives
 *             Result OK, POST /error Result FUNCTION_ERROR with Lambda's error JSON as payload,
 *             the bootstrap exiting Result FUNCTION_ERROR "Runtime.ExitError" (fatal)
 *
 * The Runtime API is reachable by the function itself, which is not trusted: the server is a
 * single-threaded poll() loop over non-blocking sockets that never waits on one client, caps
 * every request (64 KiB of head, 6 MiB of body), answers malformed HTTP with 400 and unknown
 * paths with 404 (like AWS's emulator), and holds at most CONN_MAX connections, evicting the
 * least recently active idle one when a new one arrives. Status codes and error bodies follow
 * AWS's Runtime Interface Emulator (aws-lambda-runtime-interface-emulator, lambda/rapi). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <locale.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "fnbox.h"
#include "http.h"
#include "log.h"
#include "macro.h"
#include "util.h"
#include "wire.h"

#define API_PORT 9001
#define API_ADDRESS "127.0.0.1:9001"
#define RUNTIME_DIR "/var/runtime"
#define DEFAULT_REGION "us-east-1"
#define CONN_MAX 8
#define LISTEN_BACKLOG 16
#define READ_CHUNK ((size_t)64 * 1024)
#define READ_PER_ROUND ((size_t)1024 * 1024) /* per connection and poll() round */
#define BODY_MAX FNBOX_RESPONSE_MAX
#define BUF_MAX (HTTP_HEAD_MAX + BODY_MAX + READ_CHUNK)
#define OUT_MAX 4096                 /* response head (+ small body) */
#define BUF_KEEP ((size_t)64 * 1024) /* what a connection's buffer shrinks back to */
#define ERROR_TYPE_MAX 128
#define ERROR_MESSAGE_MAX ((size_t)64 * 1024)
#define REQUEST_ID_MAX 63
#define ENV_MAX 128
/* After the bootstrap dies: how long to wait for what it wrote just before (the response it
 * posted on its way out) before calling it a crash. Ends early once its connections are gone. */
#define DEATH_GRACE_USEC (100 * USEC_PER_MSEC)

#define PATH_PREFIX "/2018-06-01/runtime/"

typedef struct Event {
        unsigned refs;
        Fnbox__Envelope *env; /* its invoke->payload is the event body */
} Event;

typedef enum ConnState {
        CONN_READ,   /* reading (or between) requests */
        CONN_PARKED, /* a GET /next waiting for an event */
        CONN_WRITE,  /* a response is being written */
} ConnState;

typedef struct Conn {
        int fd;
        ConnState state;
        char *buf;
        size_t len, cap;
        HttpRequest req;
        char out[OUT_MAX];
        size_t out_len, out_off;
        Event *body_event; /* keeps body alive */
        const uint8_t *body;
        size_t body_len, body_off;
        bool carries_event; /* this response hands the current event to the runtime */
        bool close_after;
        uint64_t discard; /* bytes of a refused body still to skip before the next request */
        uint64_t last_active, parked_at;
} Conn;

typedef enum RtState {
        RT_INIT,        /* the bootstrap runs, no GET /next yet */
        RT_INIT_FAILED, /* InitResult error sent */
        RT_IDLE,        /* initialised, no invocation */
        RT_RUNNING,     /* an invocation is in progress */
} RtState;

typedef struct Runtime {
        const Fnbox__Init *init;
        int signal_fd, log_fd, listen_fd;
        RtState state;
        pid_t pid; /* the bootstrap, 0 once reaped */
        bool dead;
        int wstatus;
        usec_t dead_at;
        Conn *conns[CONN_MAX];
        uint64_t tick;
        usec_t t_init;
        char arn[256];
        /* the invocation in progress */
        Event *event;
        const char *request_id; /* owned by event */
        bool delivered;
        usec_t t_invoke;
        uint64_t deadline_ms;
        char trace_id[96];
        int exit; /* -1 while running, then the agent's exit status */
} Runtime;

bool runtime_is_process(const char *runtime)
{
        static const char *const names[] = {"provided", "provided.al2", "provided.al2023",
                                            "python3", "nodejs"};

        for (size_t i = 0; runtime && i < ELEMENTSOF(names); i++)
                if (strcmp(runtime, names[i]) == 0)
                        return true;
        return false;
}

static Event *event_unref(Event *e)
{
        if (e && --e->refs == 0) {
                wire_envelope_free(e->env);
                free(e);
        }
        return NULL;
}

/* "Killed" -> "killed": how Go (and so Lambda) spells the reasons a process ended. */
static void lower_first(char *s)
{
        if (s[0] >= 'A' && s[0] <= 'Z')
                s[0] = (char)(s[0] - 'A' + 'a');
}

static void describe_exit(int wstatus, char *out, size_t size)
{
        if (WIFSIGNALED(wstatus)) {
                (void)snprintf(out, size, "signal: %s", strsignal(WTERMSIG(wstatus)));
                lower_first(out + strlen("signal: "));
        } else
                (void)snprintf(out, size, "exit status %d", WEXITSTATUS(wstatus));
}

/* Lambda's error document: {"errorMessage":..., "errorType":...}. */
static void make_error_body(char *out, size_t size, const char *type, const char *message)
{
        size_t p = 0;

        (void)snprintf(out, size, "{\"errorMessage\":");
        p = strlen(out);
        (void)json_append_string(out, size, &p, message);
        if (p + 16 < size) {
                memcpy(out + p, ",\"errorType\":", 13);
                p += 13;
                (void)json_append_string(out, size, &p, type);
        }
        if (p + 2 < size) {
                out[p++] = '}';
                out[p] = '\0';
        }
}

/* A text from the runtime as it may go to the daemon: at most max bytes, valid UTF-8. */
static char *clean_text(const char *s, size_t max)
{
        return utf8_sanitize(s ? s : "", s ? strnlen(s, max) : 0);
}

/* ---- messages to the daemon ---------------------------------------------------------------- */

static int send_init_result(Runtime *rt, bool ok, const char *type, const char *message,
                            const void *body, size_t body_len)
{
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__InitResult res = FNBOX__INIT_RESULT__INIT;
        _cleanup_free_ char *t = NULL, *m = NULL;
        int r;

        res.ok = ok;
        if (!ok) {
                t = clean_text(type && *type ? type : "InitError", ERROR_TYPE_MAX);
                m = clean_text(message, ERROR_MESSAGE_MAX);
                if (!t || !m)
                        return -ENOMEM;
                res.error_type = t;
                res.error_message = m;
                res.error_body.data = (uint8_t *)body;
                res.error_body.len = body ? body_len : 0;
        }
        res.init_usec = now_usec() - rt->t_init;
        env.msg_case = FNBOX__ENVELOPE__MSG_INIT_RESULT;
        env.init_result = &res;
        r = wire_send(CHANNEL_FD, &env, -EBADF);
        if (r < 0) {
                log_error_errno(r, "Failed to send InitResult: %m");
                rt->exit = AGENT_EXIT_SEND;
        }
        rt->state = ok ? RT_IDLE : RT_INIT_FAILED;
        return r;
}

/* Ends the invocation in progress. */
static int send_result(Runtime *rt, bool ok, const void *payload, size_t len, const char *type,
                       const char *message)
{
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__Result res = FNBOX__RESULT__INIT;
        _cleanup_free_ char *t = NULL, *m = NULL;
        int r;

        res.request_id = (char *)rt->request_id;
        res.status = ok ? FNBOX__STATUS__STATUS_OK : FNBOX__STATUS__STATUS_FUNCTION_ERROR;
        res.payload.data = (uint8_t *)payload;
        res.payload.len = payload ? len : 0;
        if (!ok) {
                t = clean_text(type && *type ? type : "Unhandled", ERROR_TYPE_MAX);
                m = clean_text(message, ERROR_MESSAGE_MAX);
                if (!t || !m)
                        return -ENOMEM;
                res.error_type = t;
                res.error_message = m;
        }
        res.run_usec = now_usec() - rt->t_invoke;
        res.fatal = rt->dead;
        env.msg_case = FNBOX__ENVELOPE__MSG_RESULT;
        env.result = &res;
        r = wire_send(CHANNEL_FD, &env, -EBADF);
        if (r < 0) {
                log_error_errno(r, "Failed to send Result: %m");
                rt->exit = AGENT_EXIT_SEND;
        }
        rt->event = event_unref(rt->event);
        rt->request_id = NULL;
        rt->delivered = false;
        rt->state = RT_IDLE;
        return r;
}

/* Result FUNCTION_ERROR from a body the runtime posted: errorType from the body, else from the
 * Lambda-Runtime-Function-Error-Type header; errorMessage from the body, else the body itself if
 * it is not JSON. The body travels as it is. */
static int send_function_error(Runtime *rt, const char *body, size_t len, const char *header_type)
{
        _cleanup_free_ char *type = NULL, *message = NULL;

        if (json_get_string(body, len, "errorType", &type) < 0 || !*type) {
                free(type);
                type = NULL;
        }
        if (json_get_string(body, len, "errorMessage", &message) == -EINVAL)
                message = strndup(body, MIN(len, (size_t)1024));
        return send_result(rt, false, body, len,
                           type                          ? type
                           : header_type && *header_type ? header_type
                                                         : "Unhandled",
                           message ? message : "");
}

/* ---- connections ------------------------------------------------------------------------- */

static void conn_close(Runtime *rt, size_t slot)
{
        Conn *c = rt->conns[slot];

        if (!c)
                return;
        /* The event did not reach the runtime: the next GET /next gets it again. */
        if (c->carries_event && c->body_event == rt->event && rt->state == RT_RUNNING)
                rt->delivered = false;
        event_unref(c->body_event);
        safe_close(c->fd);
        free(c->buf);
        free(c);
        rt->conns[slot] = NULL;
}

static const char *reason_phrase(int code)
{
        switch (code) {
        case 200:
                return "OK";
        case 202:
                return "Accepted";
        case 400:
                return "Bad Request";
        case 403:
                return "Forbidden";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 413:
                return "Request Entity Too Large";
        case 431:
                return "Request Header Fields Too Large";
        case 501:
                return "Not Implemented";
        case 505:
                return "HTTP Version Not Supported";
        default:
                return "Internal Server Error";
        }
}

/* Writes what is queued. Returns 1 when all is written, 0 if the socket is full, <0 on error. */
static int conn_flush(Conn *c)
{
        while (c->out_off < c->out_len || c->body_off < c->body_len) {
                struct iovec iov[2];
                int n = 0;
                ssize_t k;

                if (c->out_off < c->out_len)
                        iov[n++] = (struct iovec){c->out + c->out_off, c->out_len - c->out_off};
                if (c->body_off < c->body_len)
                        iov[n++] = (struct iovec){(void *)(c->body + c->body_off),
                                                  c->body_len - c->body_off};
                k = writev(c->fd, iov, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno == EAGAIN ? 0 : negative_errno();
                }
                if (c->out_off < c->out_len) {
                        size_t h = MIN((size_t)k, c->out_len - c->out_off);

                        c->out_off += h;
                        k -= (ssize_t)h;
                }
                c->body_off += (size_t)k;
        }
        return 1;
}

/* Queues a response: status line, extra headers (each ending in "\r\n"), then either a small
 * copied body (text) or a referenced one (ev's payload). */
static void conn_respond(Conn *c, int code, const char *headers, const char *ctype,
                         const char *text, Event *ev)
{
        const uint8_t *body = NULL;
        size_t body_len = 0;
        int n;

        if (ev) {
                body = ev->env->invoke->payload.data;
                body_len = ev->env->invoke->payload.len;
        } else if (text) /* our own short messages: they fit next to the head */
                body_len = MIN(strlen(text), (size_t)OUT_MAX / 2);
        if (!c->req.keep_alive)
                c->close_after = true;
        n = snprintf(c->out, sizeof(c->out),
                     "HTTP/1.1 %d %s\r\n%s%s%s%sContent-Length: %zu\r\n%s\r\n", code,
                     reason_phrase(code), headers ? headers : "", ctype ? "Content-Type: " : "",
                     ctype ? ctype : "", ctype ? "\r\n" : "", body_len,
                     c->close_after ? "Connection: close\r\n" : "");
        if (n < 0 || (size_t)n >= sizeof(c->out)) {
                /* Cannot happen with our headers; answer something valid anyway. */
                n = snprintf(c->out, sizeof(c->out),
                             "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                             "Connection: close\r\n\r\n");
                c->close_after = true;
                body_len = 0;
                ev = NULL;
                text = NULL;
        }
        c->out_len = (size_t)n;
        c->out_off = 0;
        if (text && !ev) {
                memcpy(c->out + c->out_len, text, body_len);
                c->out_len += body_len;
                body_len = 0;
        }
        c->body_event = ev;
        if (ev)
                ev->refs++;
        c->body = body;
        c->body_len = ev ? body_len : 0;
        c->body_off = 0;
        c->state = CONN_WRITE;
}

static void respond_json(Conn *c, int code, const char *type, const char *fmt, ...) _printf_(4, 5);
static void respond_json(Conn *c, int code, const char *type, const char *fmt, ...)
{
        char msg[512], body[1024];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        make_error_body(body, sizeof(body) - 1, type, msg);
        strcat(body, "\n");
        conn_respond(c, code, NULL, "application/json", body, NULL);
}

static void respond_accepted(Conn *c)
{
        conn_respond(c, 202, NULL, "application/json", "{\"status\":\"OK\"}\n", NULL);
}

static void respond_invalid_request_id(Conn *c)
{
        respond_json(c, 400, "InvalidRequestID", "Invalid request ID");
}

static void respond_state(Conn *c, const char *from, const char *to)
{
        respond_json(c, 403, "InvalidStateTransition",
                     "State transition from %s to %s failed for runtime. Error: State transition "
                     "is not allowed",
                     from, to);
}

static const char *state_name(const Runtime *rt)
{
        switch (rt->state) {
        case RT_INIT:
                return "Started";
        case RT_INIT_FAILED:
                return "InitError";
        case RT_IDLE:
                return "Ready";
        default:
                return "Running";
        }
}

/* Hands the current event to c, which holds a GET /next. */
static void deliver(Runtime *rt, Conn *c)
{
        char headers[OUT_MAX / 2];
        int n;

        n = snprintf(headers, sizeof(headers),
                     "Lambda-Runtime-Aws-Request-Id: %s\r\n"
                     "Lambda-Runtime-Deadline-Ms: %" PRIu64 "\r\n"
                     "Lambda-Runtime-Invoked-Function-Arn: %s\r\n"
                     "Lambda-Runtime-Trace-Id: %s\r\n",
                     rt->request_id, rt->deadline_ms, rt->arn, rt->trace_id);
        if (n < 0 || (size_t)n >= sizeof(headers))
                headers[0] = '\0';
        conn_respond(c, 200, headers, "application/json", NULL, rt->event);
        c->carries_event = true;
        rt->delivered = true;
}

static Conn *oldest_parked(Runtime *rt)
{
        Conn *best = NULL;

        for (size_t i = 0; i < CONN_MAX; i++) {
                Conn *c = rt->conns[i];

                if (c && c->state == CONN_PARKED && (!best || c->parked_at < best->parked_at))
                        best = c;
        }
        return best;
}

static void park(Runtime *rt, Conn *c)
{
        c->state = CONN_PARKED;
        c->parked_at = ++rt->tick;
}

static void handle_next(Runtime *rt, Conn *c)
{
        switch (rt->state) {
        case RT_INIT:
                /* The runtime is ready: init is complete. */
                (void)send_init_result(rt, true, NULL, NULL, NULL, 0);
                park(rt, c);
                return;
        case RT_INIT_FAILED:
        case RT_IDLE:
                park(rt, c);
                return;
        case RT_RUNNING:
                if (!rt->delivered)
                        deliver(rt, c);
                else
                        respond_state(c, "Running", "Ready");
                return;
        }
}

static bool request_id_is_current(const Runtime *rt, const char *id)
{
        return rt->state == RT_RUNNING && rt->request_id && strcmp(id, rt->request_id) == 0;
}

static void handle_init_error(Runtime *rt, Conn *c, const char *body, size_t len,
                              const char *header_type)
{
        _cleanup_free_ char *type = NULL, *message = NULL;

        if (rt->state != RT_INIT) {
                respond_state(c, state_name(rt), "InitError");
                return;
        }
        if (json_get_string(body, len, "errorType", &type) < 0 || !*type) {
                free(type);
                type = NULL;
        }
        if (json_get_string(body, len, "errorMessage", &message) == -EINVAL)
                message = strndup(body, MIN(len, (size_t)1024));
        (void)send_init_result(rt, false,
                               type                          ? type
                               : header_type && *header_type ? header_type
                                                             : "InitError",
                               message ? message : "", body, len);
        respond_accepted(c);
}

/* What a GET or POST names under /2018-06-01/runtime/. */
typedef enum Route {
        ROUTE_NONE,
        ROUTE_NEXT,
        ROUTE_RESPONSE,
        ROUTE_ERROR,
        ROUTE_INIT_ERROR,
} Route;

/* Splits the path; *ret_id points into path (NUL-terminated in place) for ROUTE_RESPONSE and
 * ROUTE_ERROR. */
static Route route_of(char *path, char **ret_id)
{
        char *rest, *slash;

        if (strncmp(path, PATH_PREFIX, strlen(PATH_PREFIX)) != 0)
                return ROUTE_NONE;
        rest = path + strlen(PATH_PREFIX);
        if (strcmp(rest, "init/error") == 0)
                return ROUTE_INIT_ERROR;
        if (strncmp(rest, "invocation/", 11) != 0)
                return ROUTE_NONE;
        rest += 11;
        if (strcmp(rest, "next") == 0)
                return ROUTE_NEXT;
        slash = strchr(rest, '/');
        if (!slash || slash == rest || strchr(slash + 1, '/'))
                return ROUTE_NONE;
        if (strcmp(slash + 1, "response") != 0 && strcmp(slash + 1, "error") != 0)
                return ROUTE_NONE;
        *slash = '\0';
        *ret_id = rest;
        return slash[1] == 'r' ? ROUTE_RESPONSE : ROUTE_ERROR;
}

/* The head of a request is in, its body not yet. */
static void on_head(Conn *c)
{
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

        /* curl sends "Expect: 100-continue" with large POSTs and would otherwise wait a second.
         * Nothing else is queued at this point; 25 bytes fit any socket buffer, and if not, the
         * client sends the body after its own timeout anyway. */
        if (c->req.expect_continue && c->req.has_length && c->req.content_length > 0 &&
            c->req.content_length <= BODY_MAX && c->len == c->req.head_len)
                (void)send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* The request was refused before its body was read (status: 400, 413, ...). */
static void on_bad_request(Runtime *rt, Conn *c, int status)
{
        if (status == 413 && c->req.has_length && !c->req.expect_continue && c->req.head_len > 0) {
                /* The client sends the whole body before it reads our answer: skip it and keep
                 * the connection (closing with unread data would reset it, and the client would
                 * never see the 413). */
                size_t have = c->len - c->req.head_len;

                if (have >= c->req.content_length) {
                        c->discard = 0;
                        c->req.consumed = c->req.head_len + (size_t)c->req.content_length;
                } else {
                        c->discard = c->req.content_length - have;
                        c->req.consumed = c->len;
                }
        } else
                c->req.keep_alive = false; /* the rest of the stream cannot be trusted */
        if (status == 413) {
                char *id = NULL;
                Route route =
                    c->req.head_len > 0 ? route_of(c->buf + c->req.path_off, &id) : ROUTE_NONE;
                char body[256];

                if ((route == ROUTE_RESPONSE || route == ROUTE_ERROR) &&
                    request_id_is_current(rt, id)) {
                        /* As Lambda: the invocation fails, the runtime gets 413. */
                        char msg[128];

                        (void)snprintf(msg, sizeof(msg),
                                       "Response payload size exceeded maximum allowed payload "
                                       "size (%zu bytes).",
                                       (size_t)BODY_MAX);
                        make_error_body(body, sizeof(body), "Function.ResponseSizeTooLarge", msg);
                        (void)send_result(rt, false, body, strlen(body),
                                          "Function.ResponseSizeTooLarge", msg);
                } else if (route == ROUTE_INIT_ERROR && rt->state == RT_INIT) {
                        (void)send_init_result(rt, false, "InitError",
                                               "the runtime's init error was too large", NULL, 0);
                }
                respond_json(c, 413, "RequestEntityTooLarge",
                             "Exceeded maximum allowed payload size (%zu bytes).",
                             (size_t)BODY_MAX);
                return;
        }
        {
                char text[64];

                (void)snprintf(text, sizeof(text), "%d %s\n", status, reason_phrase(status));
                conn_respond(c, status, NULL, "text/plain; charset=utf-8", text, NULL);
        }
}

/* A complete request. */
static void handle_request(Runtime *rt, Conn *c)
{
        char *path = c->buf + c->req.path_off, *id = NULL;
        char *body = c->buf + c->req.head_len;
        size_t len = c->req.body_len;
        const char *header_type = c->req.error_type_len > 0 ? c->buf + c->req.error_type_off : NULL;
        Route route = route_of(path, &id);
        HttpMethod want = route == ROUTE_NEXT ? HTTP_METHOD_GET : HTTP_METHOD_POST;

        if (route == ROUTE_NONE) {
                conn_respond(c, 404, NULL, "text/plain; charset=utf-8", "404 page not found\n",
                             NULL);
                return;
        }
        if (c->req.method != want) {
                conn_respond(c, 405, want == HTTP_METHOD_GET ? "Allow: GET\r\n" : "Allow: POST\r\n",
                             NULL, NULL, NULL);
                return;
        }
        switch (route) {
        case ROUTE_NEXT:
                handle_next(rt, c);
                return;
        case ROUTE_INIT_ERROR:
                handle_init_error(rt, c, body, len, header_type);
                return;
        case ROUTE_RESPONSE:
        case ROUTE_ERROR:
                /* A wrong or stale id does not end the invocation: it may be a bug in code that
                 * will still answer for the right one. */
                if (!request_id_is_current(rt, id)) {
                        respond_invalid_request_id(c);
                        return;
                }
                if (route == ROUTE_RESPONSE)
                        (void)send_result(rt, true, body, len, NULL, NULL);
                else
                        (void)send_function_error(rt, body, len, header_type);
                respond_accepted(c);
                return;
        default:
                conn_respond(c, 404, NULL, "text/plain; charset=utf-8", "404 page not found\n",
                             NULL);
                return;
        }
}

/* Drops the request just answered and makes the next one (already buffered, maybe) current. */
static void conn_next_request(Conn *c)
{
        size_t used = MIN(c->req.consumed, c->len);

        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        /* A 6 MiB response is no reason to hold 6 MiB for the rest of the instance's life. */
        if (c->cap > BUF_KEEP && c->len <= BUF_KEEP) {
                char *nb = realloc(c->buf, BUF_KEEP);

                if (nb) {
                        c->buf = nb;
                        c->cap = BUF_KEEP;
                }
        }
        c->req = (HttpRequest){};
        c->body_event = event_unref(c->body_event);
        c->body = NULL;
        c->body_len = c->body_off = 0;
        c->out_len = c->out_off = 0;
        c->carries_event = false;
        c->state = CONN_READ;
}

/* Reads what is there (bounded). Returns >0 if data came, 0 if nothing (EAGAIN), <0 on EOF or
 * error. */
static int conn_read(Conn *c)
{
        size_t total = 0;

        while (total < READ_PER_ROUND) {
                size_t want = READ_CHUNK;
                ssize_t k;

                /* A body of known length is read to its end in one go. */
                if (c->req.head_len > 0 && c->req.has_length &&
                    c->req.head_len + c->req.content_length > c->len)
                        want =
                            MAX(want, (size_t)(c->req.head_len + c->req.content_length - c->len));
                want = MIN(want, BUF_MAX - c->len);
                if (want == 0)
                        return -ENOBUFS;
                if (c->cap - c->len < want) {
                        size_t cap = MAX(c->cap * 2, c->len + want);
                        char *nb;

                        cap = MIN(cap, (size_t)BUF_MAX);
                        nb = realloc(c->buf, cap);
                        if (!nb)
                                return -ENOMEM;
                        c->buf = nb;
                        c->cap = cap;
                }
                k = read(c->fd, c->buf + c->len, want);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return negative_errno();
                }
                if (k == 0)
                        return total > 0 ? (int)1 : -ECONNRESET;
                c->len += (size_t)k;
                total += (size_t)k;
                if ((size_t)k < want)
                        break;
        }
        return total > 0;
}

/* Advances connection `slot` as far as it goes without blocking. `readable`: poll() said so. */
static void conn_run(Runtime *rt, size_t slot, bool readable)
{
        Conn *c = rt->conns[slot];

        while (c && rt->exit < 0) {
                int r;

                switch (c->state) {
                case CONN_PARKED:
                        return;
                case CONN_WRITE:
                        r = conn_flush(c);
                        if (r == 0)
                                return;
                        if (r < 0 || c->close_after) {
                                conn_close(rt, slot);
                                return;
                        }
                        c->last_active = ++rt->tick;
                        conn_next_request(c);
                        continue;
                case CONN_READ:
                        if (c->discard > 0 && c->len > 0) {
                                size_t k = (size_t)MIN(c->discard, (uint64_t)c->len);

                                memmove(c->buf, c->buf + k, c->len - k);
                                c->len -= k;
                                c->discard -= k;
                        }
                        r = c->len > 0 && c->discard == 0
                                ? http_parse(&c->req, c->buf, c->len, BODY_MAX)
                                : HTTP_PARSE_MORE;
                        if (r == HTTP_PARSE_HEAD) {
                                on_head(c);
                                continue;
                        }
                        if (r == HTTP_PARSE_DONE) {
                                handle_request(rt, c);
                                continue;
                        }
                        if (r < 0) {
                                on_bad_request(rt, c, -r);
                                continue;
                        }
                        if (!readable)
                                return;
                        readable = false;
                        r = conn_read(c);
                        if (r == -ENOBUFS) {
                                on_bad_request(rt, c, 413);
                                continue;
                        }
                        if (r < 0) {
                                conn_close(rt, slot);
                                return;
                        }
                        if (r == 0)
                                return;
                        c->last_active = ++rt->tick;
                        /* More may be waiting beyond this round's cap: poll() says so again. */
                        continue;
                }
        }
}

static void accept_connections(Runtime *rt)
{
        for (int k = 0; k < CONN_MAX; k++) {
                int fd = accept4(rt->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                size_t slot = CONN_MAX, victim = CONN_MAX;
                int one = 1;
                Conn *c;

                if (fd < 0)
                        return; /* EAGAIN, or a transient error: poll() tells again */
                for (size_t i = 0; i < CONN_MAX && slot == CONN_MAX; i++)
                        if (!rt->conns[i])
                                slot = i;
                if (slot == CONN_MAX) {
                        /* Full: evict the least recently active connection that waits for
                         * nothing from us (a GET /next in progress or a response being written
                         * are kept). */
                        for (size_t i = 0; i < CONN_MAX; i++)
                                if (rt->conns[i]->state == CONN_READ &&
                                    (victim == CONN_MAX ||
                                     rt->conns[i]->last_active < rt->conns[victim]->last_active))
                                        victim = i;
                        if (victim == CONN_MAX) {
                                safe_close(fd);
                                continue;
                        }
                        conn_close(rt, victim);
                        slot = victim;
                }
                c = calloc(1, sizeof(*c));
                if (!c) {
                        safe_close(fd);
                        return;
                }
                (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                c->fd = fd;
                c->state = CONN_READ;
                c->last_active = ++rt->tick;
                rt->conns[slot] = c;
        }
}

/* ---- the bootstrap process ----------------------------------------------------------------- */

typedef struct EnvList {
        char *v[ENV_MAX + 1];
        size_t n;
} EnvList;

static void env_list_done(EnvList *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        l->n = 0;
}

/* Sets key=value, replacing an earlier value of key. */
static int env_set(EnvList *l, const char *key, const char *value)
{
        size_t klen = strlen(key), i;
        char *s;

        if (!*key || strchr(key, '='))
                return -EINVAL;
        if (asprintf(&s, "%s=%s", key, value ? value : "") < 0)
                return -ENOMEM;
        for (i = 0; i < l->n; i++)
                if (strncmp(l->v[i], key, klen) == 0 && l->v[i][klen] == '=')
                        break;
        if (i == l->n) {
                if (l->n >= ENV_MAX) {
                        free(s);
                        return -E2BIG;
                }
                l->n++;
        } else
                free(l->v[i]);
        l->v[i] = s;
        l->v[l->n] = NULL;
        return 0;
}

static const char *default_lang(void)
{
        locale_t l = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", (locale_t)0);

        if (!l)
                return "C.UTF-8";
        freelocale(l);
        return "en_US.UTF-8";
}

static const char *execution_env(const char *runtime)
{
        if (strcmp(runtime, "python3") == 0)
                return "AWS_Lambda_python3";
        if (strcmp(runtime, "nodejs") == 0)
                return "AWS_Lambda_nodejs";
        return NULL;
}

/* Lambda's environment: defaults the function may override (PATH, LANG, TZ, ...), then the
 * function's variables, then what the platform owns (the names Lambda reserves). */
static int build_env(const Runtime *rt, EnvList *l)
{
        const Fnbox__Init *init = rt->init;
        const char *region = init->region && *init->region ? init->region : DEFAULT_REGION;
        const char *name = init->function_name ? init->function_name : "";
        const char *version = init->function_version ? init->function_version : "";
        const char *exec_env = execution_env(init->runtime);
        char num[32], group[128], stream[160], day[16], hex[33];
        uint8_t rnd[16];
        time_t now = time(NULL);
        struct tm tm;
        static const char *const reserved[] = {"_HANDLER", "_X_AMZN_TRACE_ID"};
        int r;

        (void)gmtime_r(&now, &tm);
        (void)strftime(day, sizeof(day), "%Y/%m/%d", &tm);
        if (random_bytes(rnd, sizeof(rnd)) < 0)
                memset(rnd, 0, sizeof(rnd));
        hex_encode(rnd, sizeof(rnd), hex);
        (void)snprintf(stream, sizeof(stream), "%s/[%s]%s", day, version, hex);
        (void)snprintf(group, sizeof(group), "/aws/lambda/%s", name);
        (void)snprintf(num, sizeof(num), "%" PRIu32, init->memory_mb);

        r = env_set(l, "PATH", "/usr/local/bin:/usr/bin:/bin:/opt/bin");
        r = r ?: env_set(l, "LANG", default_lang());
        r = r ?: env_set(l, "TZ", ":UTC");
        r = r ?: env_set(l, "LD_LIBRARY_PATH", "/var/task/lib:/opt/lib");
        r = r ?: env_set(l, "HOME", "/tmp");
        for (size_t i = 0; r == 0 && i < init->n_env; i++) {
                const Fnbox__EnvVar *v = init->env[i];
                bool skip = !v->key || strncmp(v->key, "AWS_", 4) == 0 ||
                            strncmp(v->key, "LAMBDA_", 7) == 0;

                for (size_t k = 0; !skip && k < ELEMENTSOF(reserved); k++)
                        skip = strcmp(v->key, reserved[k]) == 0;
                if (!skip)
                        r = env_set(l, v->key, v->value);
        }
        r = r ?: env_set(l, "_HANDLER", init->handler ? init->handler : "");
        r = r ?: env_set(l, "LAMBDA_TASK_ROOT", TASK_ROOT);
        r = r ?: env_set(l, "LAMBDA_RUNTIME_DIR", RUNTIME_DIR);
        r = r ?: env_set(l, "AWS_LAMBDA_RUNTIME_API", API_ADDRESS);
        r = r ?: env_set(l, "AWS_LAMBDA_FUNCTION_NAME", name);
        r = r ?: env_set(l, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", num);
        r = r ?: env_set(l, "AWS_LAMBDA_FUNCTION_VERSION", version);
        r = r ?: env_set(l, "AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand");
        r = r ?: env_set(l, "AWS_LAMBDA_LOG_GROUP_NAME", group);
        r = r ?: env_set(l, "AWS_LAMBDA_LOG_STREAM_NAME", stream);
        r = r ?: env_set(l, "AWS_REGION", region);
        r = r ?: env_set(l, "AWS_DEFAULT_REGION", region);
        if (exec_env)
                r = r ?: env_set(l, "AWS_EXECUTION_ENV", exec_env);
        return r;
}

static void bootstrap_path(const char *runtime, char *out, size_t size)
{
        if (strncmp(runtime, "provided", 8) == 0)
                (void)snprintf(out, size, TASK_ROOT "/bootstrap");
        else
                (void)snprintf(out, size, RUNTIME_DIR "/%s/bootstrap", runtime);
}

/* Starts the bootstrap as the agent's child. On failure, *type and msg say why, Lambda's way. */
static int spawn_bootstrap(Runtime *rt, const char **type, char *msg, size_t msg_size)
{
        _cleanup_(env_list_done) EnvList env = {};
        char path[128], why[128];
        int pipefd[2], err = 0, r;
        struct stat st;
        ssize_t n;
        pid_t pid;

        bootstrap_path(rt->init->runtime, path, sizeof(path));
        *type = "Runtime.InvalidEntrypoint";
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
                (void)snprintf(msg, msg_size, "Couldn't find valid bootstrap(s): [%s]", path);
                return -ENOENT;
        }
        r = build_env(rt, &env);
        if (r < 0) {
                *type = "InitError";
                (void)snprintf(msg, msg_size, "cannot build the environment: %s", strerror(-r));
                return r;
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                *type = "InitError";
                (void)snprintf(msg, msg_size, "pipe: %s", strerror(errno));
                return negative_errno();
        }
        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                *type = "InitError";
                (void)snprintf(msg, msg_size, "fork: %s", strerror(-r));
                safe_close(pipefd[0]);
                safe_close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                char *argv[] = {path, NULL};
                struct sigaction dfl = {.sa_handler = SIG_DFL};
                sigset_t none;

                /* Async-signal-safe calls only. The runtime starts like a process of its own:
                 * SIGPIPE not ignored (an ignored disposition survives exec), nothing blocked,
                 * in /var/task like Lambda's. fds 1 and 2 are the log; the rest is close-on-exec.
                 */
                (void)sigaction(SIGPIPE, &dfl, NULL);
                (void)sigemptyset(&none);
                (void)sigprocmask(SIG_SETMASK, &none, NULL);
                (void)chdir(TASK_ROOT);
                execve(path, argv, env.v);
                err = errno;
                (void)!write(pipefd[1], &err, sizeof(err));
                _exit(127);
        }
        safe_close(pipefd[1]);
        do
                n = read(pipefd[0], &err, sizeof(err));
        while (n < 0 && errno == EINTR);
        safe_close(pipefd[0]);
        if (n == (ssize_t)sizeof(err)) {
                (void)waitpid(pid, NULL, 0);
                (void)snprintf(why, sizeof(why), "%s", strerror(err));
                lower_first(why);
                (void)snprintf(msg, msg_size, "fork/exec %s: %s", path, why);
                return -err;
        }
        rt->pid = pid;
        return 0;
}

static int listen_api(Runtime *rt)
{
        struct sockaddr_in sa = {
            .sin_family = AF_INET,
            .sin_port = htons(API_PORT),
            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        int one = 1;

        rt->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (rt->listen_fd < 0)
                return negative_errno();
        (void)setsockopt(rt->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(rt->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            listen(rt->listen_fd, LISTEN_BACKLOG) < 0)
                return negative_errno();
        return 0;
}

/* ---- the loop ---------------------------------------------------------------------------- */

static void reap(Runtime *rt)
{
        struct signalfd_siginfo si;
        int status;
        pid_t p;

        while (read(rt->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                ;
        /* __WALL: also children cloned with an exit signal other than SIGCHLD. The bootstrap's
         * orphans are ours too (PID 1). */
        while ((p = waitpid(-1, &status, WNOHANG | __WALL)) > 0)
                if (p == rt->pid) {
                        rt->pid = 0;
                        rt->dead = true;
                        rt->wstatus = status;
                        rt->dead_at = now_usec();
                }
}

static bool any_connection(const Runtime *rt)
{
        for (size_t i = 0; i < CONN_MAX; i++)
                if (rt->conns[i])
                        return true;
        return false;
}

/* The bootstrap is gone and what it sent is in: report what is owed and end. */
static void finish_death(Runtime *rt)
{
        char how[96], msg[256], body[512];

        describe_exit(rt->wstatus, how, sizeof(how));
        if (rt->state == RT_INIT) {
                (void)snprintf(msg, sizeof(msg), "Runtime exited with error: %s", how);
                make_error_body(body, sizeof(body), "Runtime.ExitError", msg);
                (void)send_init_result(rt, false, "Runtime.ExitError", msg, body, strlen(body));
        } else if (rt->state == RT_RUNNING) {
                (void)snprintf(msg, sizeof(msg),
                               "RequestId: %s Error: Runtime exited with error: %s", rt->request_id,
                               how);
                make_error_body(body, sizeof(body), "Runtime.ExitError", msg);
                (void)send_result(rt, false, body, strlen(body), "Runtime.ExitError", msg);
        }
        log_debug("The runtime exited (%s)", how);
        if (rt->exit < 0)
                rt->exit = AGENT_EXIT_RUNTIME;
}

static void make_trace_id(Runtime *rt)
{
        uint8_t rnd[20];
        char root[25], parent[17];

        if (random_bytes(rnd, sizeof(rnd)) < 0)
                memset(rnd, 0, sizeof(rnd));
        hex_encode(rnd, 12, root);
        hex_encode(rnd + 12, 8, parent);
        (void)snprintf(rt->trace_id, sizeof(rt->trace_id), "Root=1-%08x-%s;Parent=%s;Sampled=0",
                       (unsigned)time(NULL), root, parent);
}

static bool request_id_is_valid(const char *id)
{
        size_t len = id ? strlen(id) : 0;

        if (len == 0 || len > REQUEST_ID_MAX)
                return false;
        for (; *id; id++)
                if (!((*id >= 'a' && *id <= 'z') || (*id >= 'A' && *id <= 'Z') ||
                      (*id >= '0' && *id <= '9') || *id == '-' || *id == '_' || *id == '.'))
                        return false;
        return true;
}

/* Takes env (an Invoke) in. */
static void start_invocation(Runtime *rt, Fnbox__Envelope *env)
{
        const Fnbox__Invoke *inv = env->invoke;
        Event *ev;
        Conn *c;

        if (rt->state != RT_IDLE || !request_id_is_valid(inv->request_id)) {
                log_error("Protocol error: Invoke %s",
                          rt->state != RT_IDLE ? "out of turn" : "with a bad request id");
                wire_envelope_free(env);
                rt->exit = AGENT_EXIT_PROTOCOL;
                return;
        }
        ev = calloc(1, sizeof(*ev));
        if (!ev) {
                wire_envelope_free(env);
                rt->exit = AGENT_EXIT_RECV;
                return;
        }
        ev->refs = 1;
        ev->env = env;
        /* Each invocation's log starts empty: the daemon has read the previous one. */
        (void)ftruncate(rt->log_fd, 0);
        rt->event = ev;
        rt->request_id = inv->request_id;
        rt->delivered = false;
        rt->t_invoke = now_usec();
        rt->deadline_ms = inv->deadline_unix_ms
                              ? inv->deadline_unix_ms
                              : now_realtime_usec() / USEC_PER_MSEC + rt->init->timeout_ms;
        make_trace_id(rt);
        rt->state = RT_RUNNING;

        c = oldest_parked(rt);
        if (c) {
                deliver(rt, c);
                for (size_t i = 0; i < CONN_MAX; i++)
                        if (rt->conns[i] == c)
                                conn_run(rt, i, false);
        }
}

static void on_channel(Runtime *rt)
{
        Fnbox__Envelope *env = NULL;
        int r = wire_recv(CHANNEL_FD, &env, NULL);

        if (r == -EAGAIN || r == -EINTR)
                return;
        if (r == -ECONNRESET) {
                rt->exit = AGENT_EXIT_OK;
                return;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to receive from the daemon: %m");
                rt->exit = AGENT_EXIT_RECV;
                return;
        }
        switch (env->msg_case) {
        case FNBOX__ENVELOPE__MSG_INVOKE:
                start_invocation(rt, env); /* takes env */
                return;
        case FNBOX__ENVELOPE__MSG_SHUTDOWN:
                rt->exit = AGENT_EXIT_OK;
                break;
        default:
                log_error("Protocol error: unexpected message %d", (int)env->msg_case);
                rt->exit = AGENT_EXIT_PROTOCOL;
                break;
        }
        wire_envelope_free(env);
}

static void runtime_done(Runtime *rt)
{
        for (size_t i = 0; i < CONN_MAX; i++)
                conn_close(rt, i);
        rt->event = event_unref(rt->event);
        rt->listen_fd = safe_close(rt->listen_fd);
}

int runtime_run(const Fnbox__Init *init, int signal_fd, int log_fd)
{
        Runtime rt = {
            .init = init,
            .signal_fd = signal_fd,
            .log_fd = log_fd,
            .listen_fd = -EBADF,
            .t_init = now_usec(),
            .exit = -1,
        };
        const char *type = NULL;
        char msg[512];
        int r;

        /* The function runs as the agent's uid: without this it could open /proc/1/mem. */
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        if (init->function_arn && *init->function_arn)
                (void)snprintf(rt.arn, sizeof(rt.arn), "%s", init->function_arn);
        else
                (void)snprintf(rt.arn, sizeof(rt.arn), "arn:aws:lambda:%s:000000000000:function:%s",
                               init->region && *init->region ? init->region : DEFAULT_REGION,
                               init->function_name ? init->function_name : "");
        r = listen_api(&rt);
        if (r < 0) {
                (void)snprintf(msg, sizeof(msg), "cannot serve the Runtime API on %s: %s",
                               API_ADDRESS, strerror(-r));
                type = "InitError";
        } else
                r = spawn_bootstrap(&rt, &type, msg, sizeof(msg));
        if (r < 0) {
                char body[1024];

                make_error_body(body, sizeof(body), type, msg);
                (void)send_init_result(&rt, false, type, msg, body, strlen(body));
                runtime_done(&rt);
                return rt.exit >= 0 ? rt.exit : AGENT_EXIT_RUNTIME;
        }

        while (rt.exit < 0) {
                struct pollfd p[3 + CONN_MAX];
                size_t slot_of[3 + CONN_MAX], n = 3;
                int timeout = -1;

                if (rt.dead) {
                        usec_t now = now_usec(), end = rt.dead_at + DEATH_GRACE_USEC;

                        if (!any_connection(&rt) || now >= end) {
                                finish_death(&rt);
                                break;
                        }
                        timeout = (int)((end - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                }
                p[0] = (struct pollfd){.fd = CHANNEL_FD, .events = POLLIN};
                p[1] = (struct pollfd){.fd = rt.signal_fd, .events = POLLIN};
                p[2] = (struct pollfd){.fd = rt.listen_fd, .events = POLLIN};
                for (size_t i = 0; i < CONN_MAX; i++) {
                        Conn *c = rt.conns[i];

                        if (!c)
                                continue;
                        p[n] = (struct pollfd){
                            .fd = c->fd,
                            .events = c->state == CONN_WRITE    ? POLLOUT
                                      : c->state == CONN_PARKED ? POLLRDHUP
                                                                : POLLIN | POLLRDHUP,
                        };
                        slot_of[n++] = i;
                }
                if (poll(p, n, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error_errno(negative_errno(), "poll() failed: %m");
                        rt.exit = AGENT_EXIT_RECV;
                        break;
                }
                /* Connections first: a response posted just before the bootstrap exited must be
                 * seen before its death. */
                for (size_t k = 3; k < n && rt.exit < 0; k++) {
                        size_t i = slot_of[k];
                        Conn *c = rt.conns[i];

                        if (!c || !p[k].revents)
                                continue;
                        if (c->state == CONN_PARKED) {
                                /* The client gave up on its GET /next. */
                                if (p[k].revents & (POLLRDHUP | POLLHUP | POLLERR))
                                        conn_close(&rt, i);
                                continue;
                        }
                        conn_run(&rt, i, p[k].revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR));
                }
                if (p[2].revents && rt.exit < 0)
                        accept_connections(&rt);
                if (p[1].revents && rt.exit < 0) {
                        bool was_dead = rt.dead;

                        reap(&rt);
                        if (rt.dead && !was_dead)
                                for (size_t i = 0; i < CONN_MAX && rt.exit < 0; i++)
                                        if (rt.conns[i] && rt.conns[i]->state == CONN_READ)
                                                conn_run(&rt, i, true);
                }
                if (p[0].revents && rt.exit < 0)
                        on_channel(&rt);
        }
        runtime_done(&rt);
        return rt.exit;
}
