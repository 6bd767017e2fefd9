/* SPDX-License-Identifier: Apache-2.0 */
#include "invoke.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "agentconn.h"
#include "log.h"
#include "sandbox-cgroup.h"
#include "util.h"

typedef enum InvocationState {
        STATE_SPAWNED, /* clone done, waiting for Ready */
        STATE_INIT,    /* Init sent, waiting for InitResult */
        STATE_RUNNING, /* Invoke sent, waiting for Result */
        STATE_DONE,
} InvocationState;

/* A sandbox that was killed and waits for PID 1 to exit before its cgroup can go. */
typedef struct Corpse {
        Invoker *inv;
        Sandbox *sandbox;
        LoopSource *pid_src;
        struct Corpse *prev, *next;
} Corpse;

struct Invocation {
        Invoker *inv;
        Function *fn;
        void *payload;
        size_t payload_len;
        Sandbox *sandbox;
        LoopSource *chan_src, *pid_src, *timer_src;
        int log_fd;
        InvocationState state;
        usec_t t_submit, t_spawned, t_ready, t_loaded, t_run;
        InvokeResult res;
        invoke_done_cb cb;
        void *userdata;
        Invocation *prev, *next;
};

struct Invoker {
        Loop *loop;
        SandboxHost *host;
        InvokerConfig cfg;
        Invocation *running;
        Corpse *corpses;
        size_t n_corpses, n_running;
        InvokeResult *records; /* ring of finished invocations (no bodies) */
        size_t n_records, next_record;
};

static const char *const start_names[_INVOKE_START_MAX] = {
    [INVOKE_START_COLD] = "cold",
    [INVOKE_START_PREWARMED] = "prewarmed",
    [INVOKE_START_WARM] = "warm",
};

const char *invoke_start_to_string(InvokeStart s)
{
        return s >= 0 && s < _INVOKE_START_MAX ? start_names[s] : NULL;
}

static const char *const outcome_names[_INVOKE_OUTCOME_MAX] = {
    [INVOKE_OK] = "ok",
    [INVOKE_FUNCTION_ERROR] = "function-error",
    [INVOKE_INIT_ERROR] = "init-error",
    [INVOKE_CRASHED] = "crashed",
    [INVOKE_OUT_OF_MEMORY] = "out-of-memory",
    [INVOKE_TIMEOUT] = "timeout",
    [INVOKE_PLATFORM_ERROR] = "platform-error",
};

const char *invoke_outcome_to_string(InvokeOutcome o)
{
        return o >= 0 && o < _INVOKE_OUTCOME_MAX ? outcome_names[o] : NULL;
}

static void result_done(InvokeResult *r)
{
        free(r->body);
        free(r->log);
        r->body = NULL;
        r->log = NULL;
}

int invoker_new(Loop *loop, SandboxHost *host, const InvokerConfig *cfg, Invoker **ret)
{
        Invoker *inv = calloc(1, sizeof(*inv));

        if (!inv)
                return -ENOMEM;
        inv->loop = loop;
        inv->host = host;
        inv->cfg = *cfg;
        if (inv->cfg.records_max > 0) {
                inv->records = calloc(inv->cfg.records_max, sizeof(*inv->records));
                if (!inv->records) {
                        free(inv);
                        return -ENOMEM;
                }
        }
        *ret = inv;
        return 0;
}

/* ---- corpses: killed sandboxes waiting for PID 1 to exit ---- */

static void corpse_free(Corpse *c)
{
        Invoker *inv = c->inv;

        if (c->prev)
                c->prev->next = c->next;
        else
                inv->corpses = c->next;
        if (c->next)
                c->next->prev = c->prev;
        inv->n_corpses--;
        loop_source_free(c->pid_src);
        sandbox_free(c->sandbox); /* PID 1 has exited: this does not wait */
        free(c);
}

static int on_corpse_exit(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        corpse_free(userdata);
        return 0;
}

/* Kills the sandbox and frees it once PID 1 is gone, off the request path. */
static void sandbox_retire(Invoker *inv, Sandbox *sb)
{
        Corpse *c;

        if (!sb)
                return;
        (void)sandbox_kill(sb);
        c = calloc(1, sizeof(*c));
        if (!c || loop_add_io(inv->loop, sandbox_pidfd(sb), EPOLLIN, on_corpse_exit, c,
                              &c->pid_src) < 0) {
                free(c);
                sandbox_free(sb); /* waits, bounded */
                return;
        }
        c->inv = inv;
        c->sandbox = sb;
        c->next = inv->corpses;
        if (c->next)
                c->next->prev = c;
        inv->corpses = c;
        inv->n_corpses++;
}

size_t invoker_sandboxes_alive(const Invoker *inv)
{
        return inv->n_corpses + inv->n_running;
}

/* ---- records ---- */

static void record_store(Invoker *inv, const InvokeResult *res)
{
        InvokeResult *slot;

        if (inv->cfg.records_max == 0)
                return;
        slot = &inv->records[inv->next_record];
        result_done(slot);
        *slot = *res;
        slot->body = NULL;
        slot->body_len = 0;
        slot->log = NULL;
        if (res->log) {
                slot->log = strdup(res->log);
                if (!slot->log)
                        slot->log_len = 0;
        }
        inv->next_record = (inv->next_record + 1) % inv->cfg.records_max;
        if (inv->n_records < inv->cfg.records_max)
                inv->n_records++;
}

const InvokeResult *invoker_find_record(Invoker *inv, const char *id)
{
        for (size_t i = 0; i < inv->n_records; i++)
                if (strcmp(inv->records[i].id, id) == 0)
                        return &inv->records[i];
        return NULL;
}

/* ---- invocations ---- */

static void invocation_unlink(Invocation *i)
{
        Invoker *inv = i->inv;

        if (i->prev)
                i->prev->next = i->next;
        else if (inv->running == i)
                inv->running = i->next;
        if (i->next)
                i->next->prev = i->prev;
        i->prev = i->next = NULL;
        inv->n_running--;
}

static void invocation_free(Invocation *i)
{
        loop_source_free(i->chan_src);
        loop_source_free(i->pid_src);
        loop_source_free(i->timer_src);
        safe_close(i->log_fd);
        result_done(&i->res);
        function_free(i->fn);
        free(i->payload);
        free(i);
}

static void phase_add(InvokeResult *res, const char *name, usec_t from, usec_t to)
{
        if (res->n_phases >= INVOKE_PHASES_MAX || from == 0 || to < from)
                return;
        res->phases[res->n_phases++] = (InvokePhase){.name = name, .usec = to - from};
}

/* Reads what the function printed from the agent's log memfd, capped at INVOKE_LOG_MAX. */
static void collect_log(Invocation *i)
{
        struct stat st;
        size_t keep;
        ssize_t n;
        static const char marker[] = "\n[fnbox: output truncated]\n";

        if (i->log_fd < 0 || fstat(i->log_fd, &st) < 0 || st.st_size <= 0)
                return;
        keep = MIN((size_t)st.st_size, (size_t)INVOKE_LOG_MAX);
        i->res.log = malloc(keep + sizeof(marker));
        if (!i->res.log)
                return;
        n = pread(i->log_fd, i->res.log, keep, 0);
        if (n < 0)
                n = 0;
        i->res.log_len = (size_t)n;
        if ((size_t)st.st_size > keep) {
                memcpy(i->res.log + i->res.log_len, marker, sizeof(marker) - 1);
                i->res.log_len += sizeof(marker) - 1;
                i->res.log_truncated = true;
        }
        i->res.log[i->res.log_len] = '\0';
}

/* Ends the invocation: collects figures, answers the caller, retires the sandbox. */
static void invocation_finish(Invocation *i, InvokeOutcome outcome, const char *type,
                              const char *fmt, ...) _printf_(4, 5);
static void invocation_finish(Invocation *i, InvokeOutcome outcome, const char *type,
                              const char *fmt, ...)
{
        Invoker *inv = i->inv;
        usec_t now = now_usec();
        uint64_t peak = 0;

        if (i->state == STATE_DONE)
                return;
        i->state = STATE_DONE;
        i->res.outcome = outcome;
        if (type)
                (void)snprintf(i->res.error_type, sizeof(i->res.error_type), "%s", type);
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                (void)vsnprintf(i->res.error_message, sizeof(i->res.error_message), fmt, ap);
                va_end(ap);
        }
        if (i->t_run != 0 && i->res.run_usec == 0)
                i->res.run_usec = now - i->t_run;
        if (i->t_run != 0)
                phase_add(&i->res, "run", i->t_run, now);
        i->res.total_usec = now - i->t_submit;
        /* Lambda bills whole milliseconds, rounded up. */
        i->res.billed_ms = (i->res.run_usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
        if (i->sandbox && sandbox_memory_peak(i->sandbox, &peak) >= 0)
                i->res.memory_peak_bytes = peak;
        collect_log(i);

        loop_source_free(i->chan_src);
        loop_source_free(i->pid_src);
        loop_source_free(i->timer_src);
        i->chan_src = i->pid_src = i->timer_src = NULL;
        sandbox_retire(inv, TAKE_PTR(i->sandbox));
        invocation_unlink(i);

        log_debug("invocation %s of %s: %s in %" PRIu64 " us", i->res.id, i->res.function,
                  invoke_outcome_to_string(outcome), i->res.total_usec);
        record_store(inv, &i->res);
        if (i->cb)
                i->cb(&i->res, i->userdata);
        invocation_free(i);
}

/* Returns true if the invocation finished (and was freed). */
static bool invocation_send_invoke(Invocation *i)
{
        usec_t now = now_usec();
        uint64_t deadline = now_realtime_usec() / USEC_PER_MSEC + i->fn->spec.timeout_ms;
        int r;

        i->t_run = now;
        r = agentconn_send_invoke(sandbox_channel_fd(i->sandbox), i->res.id, i->payload,
                                  i->payload_len, deadline);
        if (r < 0) {
                invocation_finish(i, INVOKE_CRASHED, "Crashed", "cannot send the event: %s",
                                  strerror(-r));
                return true;
        }
        i->state = STATE_RUNNING;
        (void)loop_source_set_time(i->timer_src,
                                   now + (usec_t)i->fn->spec.timeout_ms * USEC_PER_MSEC);
        return false;
}

/* Returns true if the invocation finished (and was freed). */
static bool invocation_handle_msg(Invocation *i, AgentMsg *m)
{
        usec_t now = now_usec();
        int r;

        if (m->type == AGENT_MSG_READY && i->state == STATE_SPAWNED) {
                i->t_ready = now;
                phase_add(&i->res, "agent", i->t_spawned, now);
                i->log_fd = TAKE_FD(m->log_fd);
                r = agentconn_send_init(sandbox_channel_fd(i->sandbox), i->fn);
                if (r < 0) {
                        invocation_finish(i, INVOKE_CRASHED, "Crashed", "cannot send init: %s",
                                          strerror(-r));
                        return true;
                }
                i->state = STATE_INIT;
                return false;
        }
        if (m->type == AGENT_MSG_INIT_RESULT && i->state == STATE_INIT) {
                i->t_loaded = now;
                phase_add(&i->res, "load", i->t_ready, now);
                if (m->ok)
                        return invocation_send_invoke(i);
                invocation_finish(i, INVOKE_INIT_ERROR,
                                  m->error_type[0] ? m->error_type : "InitError", "%s",
                                  m->error_message);
                return true;
        }
        if (m->type == AGENT_MSG_RESULT && i->state == STATE_RUNNING &&
            strcmp(m->request_id, i->res.id) == 0) {
                i->res.run_usec = now - i->t_run;
                if (m->ok) {
                        i->res.body = TAKE_PTR(m->payload);
                        i->res.body_len = m->payload_len;
                        invocation_finish(i, INVOKE_OK, NULL, NULL);
                } else
                        invocation_finish(i, INVOKE_FUNCTION_ERROR,
                                          m->error_type[0] ? m->error_type : "FunctionError", "%s",
                                          m->error_message);
                return true;
        }
        invocation_finish(i, INVOKE_CRASHED, "Crashed", "the sandbox's agent broke the protocol");
        return true;
}

/* Reads every waiting message. Returns true if the invocation finished (and was freed). */
static bool invocation_drain(Invocation *i)
{
        for (;;) {
                AgentMsg m = {.log_fd = -EBADF};
                bool done;
                int r;

                if (!i->chan_src)
                        return false;
                r = agentconn_recv(sandbox_channel_fd(i->sandbox), &m);
                if (r == -EAGAIN)
                        return false;
                if (r == -ECONNRESET) {
                        /* The agent is gone; the pidfd tells why. */
                        i->chan_src = loop_source_free(i->chan_src);
                        return false;
                }
                if (r < 0) {
                        invocation_finish(i, INVOKE_CRASHED, "Crashed",
                                          "the sandbox's agent sent a malformed message");
                        return true;
                }
                done = invocation_handle_msg(i, &m);
                agent_msg_done(&m);
                if (done)
                        return true;
        }
}

static int on_channel(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        (void)invocation_drain(userdata);
        return 0;
}

static int on_exit_pidfd(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        Invocation *i = userdata;
        SandboxExit ex;
        int r;

        /* A Result sent just before PID 1 died still counts. */
        if (invocation_drain(i))
                return 0;
        r = sandbox_reap(i->sandbox, &ex);
        if (r == -EAGAIN)
                return 0;
        if (r < 0) {
                invocation_finish(i, INVOKE_CRASHED, "Crashed", "cannot reap the sandbox: %s",
                                  strerror(-r));
                return 0;
        }
        if (ex.setup_failed)
                invocation_finish(i, INVOKE_PLATFORM_ERROR, "SandboxError",
                                  "sandbox setup failed at step '%s': %s",
                                  sandbox_step_to_string(ex.step), strerror(ex.step_errno));
        else if (ex.oom_killed)
                invocation_finish(i, INVOKE_OUT_OF_MEMORY, "OutOfMemory",
                                  "the function exceeded its memory limit of %" PRIu32 " MB",
                                  i->fn->spec.memory_mb);
        else if (ex.signal > 0)
                invocation_finish(i, INVOKE_CRASHED, "Crashed",
                                  "the function crashed: signal %d (%s)", ex.signal,
                                  strsignal(ex.signal));
        else
                invocation_finish(i, INVOKE_CRASHED, "Crashed",
                                  "the function exited with code %d before answering",
                                  ex.exit_code);
        return 0;
}

static int on_timer(LoopSource *s, usec_t now, void *userdata)
{
        Invocation *i = userdata;

        if (i->state == STATE_RUNNING)
                invocation_finish(i, INVOKE_TIMEOUT, "Timeout", "Task timed out after %.2f seconds",
                                  (double)i->fn->spec.timeout_ms / 1000.0);
        else
                invocation_finish(i, INVOKE_TIMEOUT, "Timeout",
                                  "the sandbox was not ready within %u seconds",
                                  (unsigned)(INVOKE_INIT_TIMEOUT_USEC / USEC_PER_SEC));
        return 0;
}

static int make_uuid(char out[37])
{
        uint8_t b[16];
        char hex[33];
        int r = random_bytes(b, sizeof(b));

        if (r < 0)
                return r;
        b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
        b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        hex_encode(b, sizeof(b), hex);
        (void)snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
                       hex + 20);
        return 0;
}

static int invocation_start_sandbox(Invocation *i, FnError *reterr)
{
        Invoker *inv = i->inv;
        SandboxSpec spec = {
            .id = i->res.id,
            .code_dir = i->fn->code_dir,
            .memory_bytes = (uint64_t)i->fn->spec.memory_mb * 1024 * 1024,
            .cpu_weight = cgroup_cpu_weight_for_memory(i->fn->spec.memory_mb),
            .pids_max = inv->cfg.pids_max,
            .tmp_bytes = inv->cfg.tmp_bytes,
            .tmp_inodes = 4096,
            .nofile = inv->cfg.nofile,
        };
        int r;

        r = sandbox_spawn(inv->host, &spec, &i->sandbox, reterr);
        if (r < 0)
                return r;
        i->t_spawned = now_usec();
        phase_add(&i->res, "sandbox", i->t_submit, i->t_spawned);
        r = loop_add_io(inv->loop, sandbox_channel_fd(i->sandbox), EPOLLIN, on_channel, i,
                        &i->chan_src);
        if (r >= 0)
                r = loop_add_io(inv->loop, sandbox_pidfd(i->sandbox), EPOLLIN, on_exit_pidfd, i,
                                &i->pid_src);
        if (r >= 0)
                r = loop_add_timer(inv->loop, i->t_submit + INVOKE_INIT_TIMEOUT_USEC, on_timer, i,
                                   &i->timer_src);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot watch the sandbox: %s", strerror(-r));
        return 0;
}

int invoker_submit(Invoker *inv, Function *fn, const void *payload, size_t len, invoke_done_cb cb,
                   void *userdata, Invocation **ret)
{
        _cleanup_(function_freep) Function *f = fn;
        Invocation *i;
        FnError err = {0};
        int r;

        i = calloc(1, sizeof(*i));
        if (!i)
                return -ENOMEM;
        i->inv = inv;
        i->log_fd = -EBADF;
        i->t_submit = now_usec();
        i->cb = cb;
        i->userdata = userdata;
        i->res.start = INVOKE_START_COLD;
        if (len > 0) {
                i->payload = malloc(len);
                if (!i->payload) {
                        free(i);
                        return -ENOMEM;
                }
                memcpy(i->payload, payload, len);
                i->payload_len = len;
        }
        r = make_uuid(i->res.id);
        if (r < 0) {
                free(i->payload);
                free(i);
                return r;
        }
        i->fn = TAKE_PTR(f);
        (void)snprintf(i->res.function, sizeof(i->res.function), "%s", i->fn->spec.name);
        i->next = inv->running;
        if (i->next)
                i->next->prev = i;
        inv->running = i;
        inv->n_running++;
        if (ret)
                *ret = i;

        r = invocation_start_sandbox(i, &err);
        if (r < 0) {
                if (ret)
                        *ret = NULL;
                invocation_finish(i, INVOKE_PLATFORM_ERROR, "SandboxError", "%s",
                                  err.msg[0] ? err.msg : strerror(-r));
        }
        return 0;
}

void invocation_detach(Invocation *i)
{
        if (i)
                i->cb = NULL;
}

Invoker *invoker_free(Invoker *inv)
{
        if (!inv)
                return NULL;
        while (inv->running) {
                Invocation *i = inv->running;
                i->cb = NULL;
                invocation_finish(i, INVOKE_PLATFORM_ERROR, "Shutdown", "the daemon stopped");
        }
        while (inv->corpses)
                corpse_free(inv->corpses);
        for (size_t k = 0; k < inv->n_records; k++)
                result_done(&inv->records[k]);
        free(inv->records);
        free(inv);
        return NULL;
}
