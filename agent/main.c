/* SPDX-License-Identifier: Apache-2.0 */
/* fnbox-agent: PID 1 of a sandbox. It speaks the wire protocol with fnboxd on fd 3, loads a native
 * function from /var/task with dlopen() and runs its invocations one at a time, in-process. For
 * the process runtimes (provided, python3, nodejs) it serves the Lambda Runtime API to a child
 * process instead (runtime-api.c).
 *
 * Order of messages: agent sends Ready (with the log memfd attached) -> daemon sends Init -> agent
 * answers InitResult -> daemon sends Invoke, agent answers Result, any number of times ->
 * Shutdown or EOF ends the agent with status 0. Everything else ends it with a non-zero status
 * (see AgentExit); being PID 1, that ends the whole sandbox, which is what the daemon expects of a
 * broken instance. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "fnbox.h"
#include "log.h"
#include "macro.h"
#include "util.h"
#include "wire.h"

#define HANDLER_MAX 255
#define ERROR_TYPE_MAX 128
#define ERROR_MESSAGE_MAX ((size_t)64 * 1024)

struct fnbox_response {
        void *body;
        size_t body_len;
        size_t too_large; /* the refused length when fnbox_respond() got > FNBOX_RESPONSE_MAX */
        bool failed;
        char *error_type;
        char *error_message;
};

typedef struct Agent {
        int log_fd;
        int signal_fd;
        sigset_t chld;         /* { SIGCHLD }, blocked while the agent itself runs */
        sigset_t handler_mask; /* what function code runs with: nothing blocked */
        bool init_seen;
        fnbox_handler_fn *handler;
        char *function_name;
        char *function_version;
        uint32_t memory_mb;
} Agent;

typedef struct InitError {
        const char *type;
        char message[1024];
} InitError;

/* A copy of at most max bytes of s with invalid UTF-8 replaced by '?': the daemon puts these
 * strings in JSON, which must be UTF-8 (it still checks: the function is not trusted). */
static char *text_copy(const char *s, size_t max)
{
        return utf8_sanitize(s ? s : "", s ? strnlen(s, max) : 0);
}

int fnbox_respond(fnbox_response *res, const void *data, size_t len)
{
        void *copy;

        if (!res || (!data && len > 0))
                return -EINVAL;
        if (len > FNBOX_RESPONSE_MAX) {
                free(res->body);
                res->body = NULL;
                res->body_len = 0;
                res->too_large = len;
                return -EFBIG;
        }
        copy = malloc(len > 0 ? len : 1);
        if (!copy)
                return -ENOMEM;
        if (len > 0)
                memcpy(copy, data, len);
        free(res->body);
        res->body = copy;
        res->body_len = len;
        res->too_large = 0;
        return 0;
}

int fnbox_fail(fnbox_response *res, const char *type, const char *message)
{
        char *t, *m;

        if (!res)
                return -EINVAL;
        t = text_copy(type && *type ? type : "FunctionError", ERROR_TYPE_MAX);
        m = text_copy(message, ERROR_MESSAGE_MAX);
        if (!t || !m) {
                free(t);
                free(m);
                return -ENOMEM;
        }
        free(res->error_type);
        free(res->error_message);
        res->error_type = t;
        res->error_message = m;
        res->failed = true;
        return 0;
}

uint64_t fnbox_remaining_ms(const fnbox_request *req)
{
        uint64_t now;

        if (!req || req->deadline_unix_ms == 0)
                return UINT64_MAX;
        now = now_realtime_usec() / USEC_PER_MSEC;
        return req->deadline_unix_ms > now ? req->deadline_unix_ms - now : 0;
}

static void response_done(struct fnbox_response *res)
{
        free(res->body);
        free(res->error_type);
        free(res->error_message);
        *res = (struct fnbox_response){};
}

static void reap_children(void)
{
        /* __WALL: also children cloned with an exit signal other than SIGCHLD. */
        while (waitpid(-1, NULL, WNOHANG | __WALL) > 0)
                ;
}

static void drain_signals(Agent *a)
{
        struct signalfd_siginfo si;

        while (read(a->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                ;
        reap_children();
}

/* Function code (constructors, fnbox_init, handlers) runs with the signal mask it would have
 * outside fnbox; the agent keeps SIGCHLD blocked for its signalfd only between calls. */
static void enter_function(Agent *a)
{
        (void)sigprocmask(SIG_SETMASK, &a->handler_mask, NULL);
}

static void leave_function(Agent *a)
{
        (void)fflush(stdout);
        (void)fflush(stderr);
        (void)sigprocmask(SIG_BLOCK, &a->chld, NULL);
}

/* fds 0-2 must be taken before anything is opened, or a closed one would be reused for the
 * log memfd or the signalfd. */
static int ensure_std_fds(void)
{
        for (int fd = 0; fd < 3; fd++) {
                int n;

                if (fcntl(fd, F_GETFD) >= 0)
                        continue;
                n = open("/dev/null", O_RDWR | O_NOCTTY);
                if (n < 0)
                        return negative_errno();
                if (n != fd) {
                        (void)close(n);
                        return -EBADF;
                }
        }
        return 0;
}

/* Everything the function and its children print lands in one memfd. The daemon holds its own
 * descriptor (passed in Ready) and reads it after each invocation, so output written just before
 * a crash is not lost. O_APPEND keeps writers from different processes from overwriting each
 * other and makes them follow the truncation at the start of each invocation. */
static int setup_log(Agent *a)
{
        int fl;

        a->log_fd = memfd_create("fnbox-log", MFD_CLOEXEC);
        if (a->log_fd < 0)
                return log_error_errno(negative_errno(), "Failed to create the log memfd: %m");
        fl = fcntl(a->log_fd, F_GETFL);
        if (fl < 0 || fcntl(a->log_fd, F_SETFL, fl | O_APPEND) < 0)
                return log_error_errno(negative_errno(), "Failed to set O_APPEND on the log: %m");
        /* dup2() leaves fds 1 and 2 without FD_CLOEXEC: children that exec keep printing there. */
        if (dup2(a->log_fd, STDOUT_FILENO) < 0 || dup2(a->log_fd, STDERR_FILENO) < 0)
                return log_error_errno(negative_errno(), "Failed to redirect stdout/stderr: %m");
        /* stdout on a file would be fully buffered: a crash would lose what the handler printed
         * last, and stdout and stderr lines would come out of order. */
        (void)setvbuf(stdout, NULL, _IOLBF, 0);
        return 0;
}

static int setup_signals(Agent *a)
{
        struct sigaction sa = {.sa_handler = SIG_IGN};

        /* The daemon may have blocked signals for its own signalfd; functions get a clean mask. */
        (void)sigemptyset(&a->handler_mask);
        (void)sigemptyset(&a->chld);
        (void)sigaddset(&a->chld, SIGCHLD);
        if (sigprocmask(SIG_SETMASK, &a->handler_mask, NULL) < 0)
                return negative_errno();
        /* Sends use MSG_NOSIGNAL already; this covers whatever else writes to a closed pipe. */
        if (sigaction(SIGPIPE, &sa, NULL) < 0)
                return negative_errno();
        if (sigprocmask(SIG_BLOCK, &a->chld, NULL) < 0)
                return negative_errno();
        a->signal_fd = signalfd(-1, &a->chld, SFD_CLOEXEC | SFD_NONBLOCK);
        if (a->signal_fd < 0)
                return negative_errno();
        return 0;
}

static int send_ready(Agent *a)
{
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__Ready ready = FNBOX__READY__INIT;

        ready.agent_pid = (uint32_t)getpid();
        ready.agent_version = (char *)FNBOX_VERSION;
        ready.ready_usec = now_usec();
        env.msg_case = FNBOX__ENVELOPE__MSG_READY;
        env.ready = &ready;
        return wire_send(CHANNEL_FD, &env, a->log_fd);
}

static int agent_setup(Agent *a)
{
        int r;

        /* Before opening anything: fd 3 must be the channel, not something we opened. */
        if (fcntl(CHANNEL_FD, F_GETFD) < 0)
                return -EBADF;
        r = ensure_std_fds();
        if (r < 0)
                return r;
        /* The channel is the agent's alone: children that exec must not hold it open. */
        if (fcntl(CHANNEL_FD, F_SETFD, FD_CLOEXEC) < 0)
                return negative_errno();
        r = setup_signals(a);
        if (r < 0)
                return log_error_errno(r, "Failed to set up signals: %m");
        r = setup_log(a);
        if (r < 0)
                return r;
        r = send_ready(a);
        if (r < 0)
                return log_error_errno(r, "Failed to send Ready: %m");
        return 0;
}

static int init_fail(InitError *e, const char *type, const char *fmt, ...) _printf_(3, 4);
static int init_fail(InitError *e, const char *type, const char *fmt, ...)
{
        va_list ap;

        e->type = type;
        va_start(ap, fmt);
        (void)vsnprintf(e->message, sizeof(e->message), fmt, ap);
        va_end(ap);
        return -EINVAL;
}

static bool symbol_is_valid(const char *s)
{
        if (!*s || strlen(s) > HANDLER_MAX || (*s >= '0' && *s <= '9'))
                return false;
        for (; *s; s++)
                if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                      (*s >= '0' && *s <= '9')))
                        return false;
        return true;
}

/* True for "a.so" and "lib/a.so"; false for "/a.so", "a//b.so", "./a.so", "x/../a.so". The
 * daemon checks the same at deploy time; this keeps the agent safe on its own. */
static bool relative_path_is_safe(const char *p)
{
        for (;;) {
                const char *slash = strchr(p, '/');
                size_t l = slash ? (size_t)(slash - p) : strlen(p);

                if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                if (!slash)
                        return true;
                p = slash + 1;
        }
}

/* "FILE" or "FILE:SYMBOL" -> FILE (a relative path inside /var/task) and SYMBOL ("handler"). */
static int parse_handler(const char *spec, char *file, size_t file_size, const char **ret_symbol,
                         InitError *e)
{
        const char *colon = strchr(spec, ':');
        size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
        const char *symbol = colon ? colon + 1 : "handler";

        if (len == 0 || len >= file_size)
                return init_fail(e, "InitError", "invalid handler '%.300s': no file name", spec);
        memcpy(file, spec, len);
        file[len] = '\0';
        if (!relative_path_is_safe(file))
                return init_fail(e, "InitError",
                                 "invalid handler '%.300s': the file must be a relative path "
                                 "inside /var/task, without '.', '..' or empty components",
                                 spec);
        if (!symbol_is_valid(symbol))
                return init_fail(e, "InitError",
                                 "invalid handler '%.300s': the symbol must be a C identifier",
                                 spec);
        *ret_symbol = symbol;
        return 0;
}

static int apply_env(const Fnbox__Init *init, InitError *e)
{
        for (size_t i = 0; i < init->n_env; i++) {
                const Fnbox__EnvVar *v = init->env[i];

                if (!v->key || !*v->key || strchr(v->key, '='))
                        return init_fail(e, "InitError",
                                         "invalid environment variable name '%.200s'",
                                         v->key ? v->key : "");
                if (setenv(v->key, v->value ? v->value : "", 1) < 0)
                        return init_fail(e, "InitError", "setenv(%.200s): %s", v->key,
                                         strerror(errno));
        }
        return 0;
}

static int load_function(Agent *a, const Fnbox__Init *init, InitError *e)
{
        char file[HANDLER_MAX + 1], path[sizeof(TASK_ROOT) + HANDLER_MAX + 1];
        const char *symbol = NULL;
        int (*init_fn)(void);
        void *dl, *sym;
        int r;

        if (init->runtime && *init->runtime && strcmp(init->runtime, "native") != 0)
                return init_fail(e, "InitError", "runtime '%.100s' is not supported by this agent",
                                 init->runtime);
        r = apply_env(init, e);
        if (r < 0)
                return r;
        r = parse_handler(init->handler ? init->handler : "", file, sizeof(file), &symbol, e);
        if (r < 0)
                return r;
        (void)snprintf(path, sizeof(path), TASK_ROOT "/%s", file);

        dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                const char *why = dlerror();

                if (access(path, F_OK) < 0 && errno == ENOENT)
                        return init_fail(e, "HandlerNotFound", "%s",
                                         why ? why : "handler file not found");
                return init_fail(e, "InitError", "%s", why ? why : "dlopen failed");
        }
        (void)dlerror();
        sym = dlsym(dl, symbol);
        if (!sym)
                return init_fail(e, "HandlerNotFound", "symbol '%s' not found in %s: %s", symbol,
                                 file, dlerror() ?: "NULL");

        *(void **)&init_fn = dlsym(dl, "fnbox_init");
        if (init_fn) {
                r = init_fn();
                if (r != 0)
                        return init_fail(e, "InitError", "fnbox_init returned %d", r);
        }
        *(void **)&a->handler = sym;
        return 0;
}

static int handle_init(Agent *a, const Fnbox__Init *init)
{
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__InitResult res = FNBOX__INIT_RESULT__INIT;
        InitError e = {.type = NULL};
        usec_t t0 = now_usec();
        int r;

        if (a->init_seen) {
                log_error("Protocol error: a second Init");
                return -EPROTO;
        }
        a->init_seen = true;
        a->memory_mb = init->memory_mb;
        a->function_name = strdup(init->function_name ? init->function_name : "");
        a->function_version = strdup(init->function_version ? init->function_version : "");
        if (!a->function_name || !a->function_version)
                r = init_fail(&e, "InitError", "out of memory");
        else {
                /* dlopen() runs the function's constructors: they are function code too. */
                enter_function(a);
                r = load_function(a, init, &e);
                leave_function(a);
        }

        res.ok = r >= 0;
        if (r < 0) {
                a->handler = NULL;
                res.error_type = (char *)e.type;
                res.error_message = e.message;
        }
        res.init_usec = now_usec() - t0;
        env.msg_case = FNBOX__ENVELOPE__MSG_INIT_RESULT;
        env.init_result = &res;
        r = wire_send(CHANNEL_FD, &env, -EBADF);
        if (r < 0)
                return log_error_errno(r, "Failed to send InitResult: %m");
        return 0;
}

static void result_from_response(Fnbox__Result *out, struct fnbox_response *res, int rc, char *msg,
                                 size_t msg_size)
{
        if (res->failed) {
                out->status = FNBOX__STATUS__STATUS_FUNCTION_ERROR;
                out->error_type = res->error_type;
                out->error_message = res->error_message;
        } else if (res->too_large > 0) {
                out->status = FNBOX__STATUS__STATUS_FUNCTION_ERROR;
                out->error_type = (char *)"ResponseTooLarge";
                (void)snprintf(msg, msg_size,
                               "response of %zu bytes exceeds the limit of %zu bytes",
                               res->too_large, FNBOX_RESPONSE_MAX);
                out->error_message = msg;
        } else if (rc != 0) {
                out->status = FNBOX__STATUS__STATUS_FUNCTION_ERROR;
                out->error_type = (char *)"FunctionError";
                (void)snprintf(msg, msg_size, "handler returned %d", rc);
                out->error_message = msg;
        } else {
                out->status = FNBOX__STATUS__STATUS_OK;
                out->payload.data = res->body;
                out->payload.len = res->body_len;
        }
}

static int handle_invoke(Agent *a, const Fnbox__Invoke *inv)
{
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__Result result = FNBOX__RESULT__INIT;
        struct fnbox_response res = {};
        fnbox_request req = {
            .payload = inv->payload.len > 0 ? (const char *)inv->payload.data : "",
            .payload_len = inv->payload.len,
            .request_id = inv->request_id ? inv->request_id : "",
            .function_name = a->function_name,
            .function_version = a->function_version,
            .deadline_unix_ms = inv->deadline_unix_ms,
            .memory_limit_mb = a->memory_mb,
        };
        char msg[160];
        usec_t t0;
        int rc, r;

        /* Each invocation's log starts empty: the daemon has read the previous one. */
        (void)ftruncate(a->log_fd, 0);

        enter_function(a);
        t0 = now_usec();
        rc = a->handler(&req, &res);
        result.run_usec = now_usec() - t0;
        leave_function(a);

        result.request_id = (char *)req.request_id;
        result_from_response(&result, &res, rc, msg, sizeof(msg));
        env.msg_case = FNBOX__ENVELOPE__MSG_RESULT;
        env.result = &result;
        r = wire_send(CHANNEL_FD, &env, -EBADF);
        response_done(&res);
        reap_children();
        if (r < 0)
                return log_error_errno(r, "Failed to send Result: %m");
        return 0;
}

/* Handles one message. Returns -1 to go on, or the exit status. */
static int dispatch(Agent *a, const Fnbox__Envelope *env)
{
        int r;

        switch (env->msg_case) {
        case FNBOX__ENVELOPE__MSG_INIT:
                /* Process runtimes (Lambda Runtime API) run their own loop from here on. */
                if (!a->init_seen && runtime_is_process(env->init->runtime)) {
                        a->init_seen = true;
                        return runtime_run(env->init, a->signal_fd, a->log_fd);
                }
                r = handle_init(a, env->init);
                if (r == -EPROTO)
                        return AGENT_EXIT_PROTOCOL;
                return r < 0 ? AGENT_EXIT_SEND : -1;
        case FNBOX__ENVELOPE__MSG_INVOKE:
                if (!a->handler) {
                        log_error("Protocol error: Invoke before a successful Init");
                        return AGENT_EXIT_PROTOCOL;
                }
                return handle_invoke(a, env->invoke) < 0 ? AGENT_EXIT_SEND : -1;
        case FNBOX__ENVELOPE__MSG_SHUTDOWN:
                return AGENT_EXIT_OK;
        default:
                log_error("Protocol error: unexpected message %d", (int)env->msg_case);
                return AGENT_EXIT_PROTOCOL;
        }
}

static int agent_run(Agent *a)
{
        for (;;) {
                struct pollfd p[2] = {
                    {.fd = CHANNEL_FD, .events = POLLIN},
                    {.fd = a->signal_fd, .events = POLLIN},
                };
                Fnbox__Envelope *env = NULL;
                int r;

                if (poll(p, ELEMENTSOF(p), -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_error_errno(negative_errno(), "poll() failed: %m");
                        return AGENT_EXIT_RECV;
                }
                if (p[1].revents)
                        drain_signals(a);
                if (!p[0].revents)
                        continue;

                r = wire_recv(CHANNEL_FD, &env, NULL);
                if (r == -ECONNRESET)
                        return AGENT_EXIT_OK;
                if (r < 0) {
                        log_error_errno(r, "Failed to receive from the daemon: %m");
                        return AGENT_EXIT_RECV;
                }
                r = dispatch(a, env);
                wire_envelope_free(env);
                if (r >= 0)
                        return r;
        }
}

int main(int argc, char *argv[])
{
        Agent a = {.log_fd = -EBADF, .signal_fd = -EBADF};

        log_set_ident("fnbox-agent");
        if (agent_setup(&a) < 0)
                return AGENT_EXIT_SETUP;
        return agent_run(&a);
}
