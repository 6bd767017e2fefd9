/* SPDX-License-Identifier: Apache-2.0 */
#include "invoke.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>

#include "agentconn.h"
#include "list.h"
#include "logstore.h"
#include "metrics.h"
#include "log.h"
#include "sandbox-cgroup.h"
#include "util.h"

/* Where an instance's agent is in its life. */
typedef enum InstancePhase {
        PHASE_SPAWNED, /* cloned, waiting for Ready */
        PHASE_CELL,    /* ready stem cell, no code */
        PHASE_INIT,    /* Init sent, waiting for InitResult */
        PHASE_LOADED,  /* function loaded: idle or running */
} InstancePhase;

typedef struct Instance {
        PoolInstance pi; /* first: the pool's part */
        Invoker *inv;
        Sandbox *sandbox;
        LoopSource *chan_src, *pid_src, *timer_src;
        int log_fd;
        InstancePhase phase;
        Function *fn;    /* what it serves (a copy); NULL for a stem cell */
        Invocation *cur; /* the invocation it runs, if any */
        usec_t t_spawn_begin, t_spawned;
        uint64_t oom_kills; /* at the start of the current invocation */
        bool dead;          /* destroyed by the pool; freed at the next safe point */
        struct Instance *prev, *next;
} Instance;

/* A killed sandbox waiting for PID 1 to exit before its cgroup can go. */
typedef struct Corpse {
        Invoker *inv;
        Sandbox *sandbox;
        LoopSource *pid_src;
        bool ready; /* PID 1 has exited */
        struct Corpse *prev, *next;
} Corpse;

typedef struct FunctionEntry {
        Function *fn;
        struct FunctionEntry *next;
} FunctionEntry;

struct Invocation {
        Invoker *inv;
        Function *fn; /* a copy */
        void *payload;
        size_t payload_len;
        Instance *inst;
        bool queued, was_queued;
        bool invoke_sent; /* the event went out behind the Init */
        usec_t t_submit, t_granted, t_ready, t_run;
        InvokeResult res;
        invoke_done_cb cb;
        void *userdata;
        Invocation *prev, *next;
};

struct Invoker {
        Loop *loop;
        SandboxHost *host;
        InvokerConfig cfg;
        Pool *pool;
        Metrics *metrics;
        LogStore *logs;
        LoopSource *tick_src;
        usec_t tick_at;
        bool tick_wanted; /* a tick at the next idle moment */
        FunctionEntry *functions;
        Instance *instances; /* alive */
        size_t n_instances;
        Instance *dead; /* destroyed, memory not yet released */
        Invocation *invocations;
        size_t n_invocations;
        Corpse *corpses;
        size_t n_corpses, n_corpses_ready;
        uint64_t seq;
        char spawn_error[256]; /* why the last spawn failed, for 503 answers */
        InvokeResult *records; /* ring of finished invocations (no bodies) */
        size_t n_records, next_record;
};

/* A stem cell's limits until a function takes it over. */
#define CELL_MEMORY_MB 128u

static const char *const start_names[_INVOKE_START_MAX] = {
    [INVOKE_START_NONE] = "none",
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
    [INVOKE_THROTTLED] = "throttled",
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

/* ---- corpses: killed sandboxes waiting for PID 1 to exit ---- */

static void corpse_free(Corpse *c)
{
        Invoker *inv = c->inv;

        LIST_REMOVE(inv->corpses, c);
        inv->n_corpses--;
        if (c->ready)
                inv->n_corpses_ready--;
        loop_source_free(c->pid_src);
        sandbox_free(c->sandbox); /* PID 1 has exited: this does not wait */
        free(c);
}

/* Dead sandboxes (PID 1 reaped) are torn down (cgroup rmdir, mounts, run dir: about a
 * millisecond on cgroup v1) when the loop is idle, so that work never delays an answer;
 * past this many waiting, one goes at once. */
#define CORPSES_READY_MAX 16

static int on_corpse_exit(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        Corpse *c = userdata;
        Invoker *inv = c->inv;

        c->pid_src = loop_source_free(c->pid_src);
        c->ready = true;
        inv->n_corpses_ready++;
        if (inv->n_corpses_ready > CORPSES_READY_MAX)
                corpse_free(c);
        else
                loop_idle_wake(inv->loop);
        return 0;
}

static void invoker_tick(Invoker *inv);

/* One unit of deferred work per idle moment: a dead sandbox's teardown, else a tick. */
static bool on_idle(void *userdata)
{
        Invoker *inv = userdata;
        bool done = false;

        for (Corpse *c = inv->corpses; c; c = c->next)
                if (c->ready) {
                        corpse_free(c);
                        done = true;
                        break;
                }
        if (!done && inv->tick_wanted) {
                inv->tick_wanted = false;
                invoker_tick(inv);
        }
        return inv->n_corpses_ready > 0 || inv->tick_wanted;
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
        LIST_PREPEND(inv->corpses, c);
        inv->n_corpses++;
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

static int make_uuid(char out[37])
{
        /* Random bytes come from getrandom() a page at a time, not one syscall per id. */
        static uint8_t pool[4096];
        static size_t left;
        uint8_t b[16];
        char hex[33];

        if (left < sizeof(b)) {
                int r = random_bytes(pool, sizeof(pool));
                if (r < 0)
                        return r;
                left = sizeof(pool);
        }
        memcpy(b, pool + sizeof(pool) - left, sizeof(b));
        explicit_bzero(pool + sizeof(pool) - left, sizeof(b));
        left -= sizeof(b);
        b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
        b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        hex_encode(b, sizeof(b), hex);
        (void)snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
                       hex + 20);
        return 0;
}

static void phase_add(InvokeResult *res, const char *name, usec_t from, usec_t to)
{
        if (res->n_phases >= INVOKE_PHASES_MAX || from == 0 || to < from)
                return;
        res->phases[res->n_phases++] = (InvokePhase){.name = name, .usec = to - from};
}

/* ---- functions ---- */

static Function *function_dup(const Function *f)
{
        Function *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        *c = *f;
        c->spec.env = NULL;
        c->spec.n_env = 0;
        if (f->spec.n_env > 0) {
                c->spec.env = calloc(f->spec.n_env, sizeof(*c->spec.env));
                if (!c->spec.env)
                        return function_free(c);
                for (size_t k = 0; k < f->spec.n_env; k++) {
                        c->spec.env[k].key = strdup(f->spec.env[k].key);
                        c->spec.env[k].value = strdup(f->spec.env[k].value);
                        c->spec.n_env = k + 1;
                        if (!c->spec.env[k].key || !c->spec.env[k].value)
                                return function_free(c);
                }
        }
        return c;
}

static PoolFunction pool_function(const Function *f)
{
        return (PoolFunction){
            .name = f->spec.name,
            .version = f->version,
            .memory_bytes = (uint64_t)f->spec.memory_mb * 1024 * 1024,
            .keep_alive = (usec_t)f->spec.keep_alive_ms * USEC_PER_MSEC,
            .max_concurrency = f->spec.max_concurrency,
            .min_instances = f->spec.min_instances,
        };
}

static FunctionEntry *function_entry(Invoker *inv, const char *name)
{
        for (FunctionEntry *e = inv->functions; e; e = e->next)
                if (strcmp(e->fn->spec.name, name) == 0)
                        return e;
        return NULL;
}

/* ---- the tick: pool housekeeping and prewarming, off the request path ---- */

static int on_tick(LoopSource *s, usec_t now, void *userdata);
static void invoker_release_dead(Invoker *inv);

/* Runs the pool's tick at `when` at the latest. */
static void tick_schedule(Invoker *inv, usec_t when)
{
        if (!inv->tick_src || when >= inv->tick_at)
                return;
        inv->tick_at = when;
        (void)loop_source_set_time(inv->tick_src, when);
}

/* After a request changed the pool: when the loop is idle, so that refilling (a sandbox
 * creation, about a millisecond) never delays an answer. */
static void tick_soon(Invoker *inv)
{
        inv->tick_wanted = true;
        loop_idle_wake(inv->loop);
}

static void invoker_tick(Invoker *inv)
{
        usec_t next, now;

        invoker_release_dead(inv);
        next = pool_tick(inv->pool);
        /* Network namespaces for future sandboxes, one per tick. */
        if (sandbox_host_netns_available(inv->host) < inv->cfg.netns_target) {
                int r = sandbox_host_refill(inv->host, 1);
                if (r == -ENOTRECOVERABLE) {
                        /* The daemon could not get back to its own network namespace: nothing
                         * it creates from here would be where it should. Stop. */
                        log_error_errno(r, "Cannot return to the daemon's network namespace, "
                                           "stopping: %m");
                        loop_exit(inv->loop, r);
                        return;
                } else if (r < 0)
                        log_debug_errno(r, "Cannot make a network namespace: %m");
                else if (sandbox_host_netns_available(inv->host) < inv->cfg.netns_target)
                        next = 0;
        }
        now = now_usec();
        if (next <= now)
                tick_soon(inv); /* more work now: at the next idle moment */
        else if (next != USEC_INFINITY)
                tick_schedule(inv, next);
}

static int on_tick(LoopSource *s, usec_t now, void *userdata)
{
        Invoker *inv = userdata;

        inv->tick_at = USEC_INFINITY;
        invoker_tick(inv);
        return 0;
}

/* ---- instances ---- */

static Instance *instance_of(PoolInstance *pi)
{
        return (Instance *)pi;
}

static void instance_disarm(Instance *in)
{
        (void)loop_source_set_time(in->timer_src, USEC_INFINITY);
}

static void invocation_finish(Invocation *i, bool reusable, InvokeOutcome outcome, const char *type,
                              const char *fmt, ...) _printf_(5, 6);

/* The instance cannot go on: a running invocation ends with the outcome, then it goes. */
static void instance_fail(Instance *in, InvokeOutcome outcome, const char *type,
                          const char *message)
{
        if (in->cur)
                invocation_finish(in->cur, false, outcome, type, "%s", message);
        else
                pool_instance_lost(in->inv->pool, &in->pi);
        tick_soon(in->inv);
}

static void invocation_send_invoke(Invocation *i)
{
        Instance *in = i->inst;
        uint64_t deadline = now_realtime_usec() / USEC_PER_MSEC + i->fn->spec.timeout_ms;
        int r;

        i->t_run = now_usec();
        r = agentconn_send_invoke(sandbox_channel_fd(in->sandbox), i->res.id, i->payload,
                                  i->payload_len, deadline);
        if (r < 0) {
                invocation_finish(i, false, INVOKE_CRASHED, "Crashed", "cannot send the event: %s",
                                  strerror(-r));
                return;
        }
        (void)loop_source_set_time(in->timer_src,
                                   i->t_run + (usec_t)i->fn->spec.timeout_ms * USEC_PER_MSEC);
}

static void instance_send_init(Instance *in)
{
        Invocation *i = in->cur;
        int r = agentconn_send_init(sandbox_channel_fd(in->sandbox), in->fn, in->inv->cfg.region);

        if (r < 0) {
                instance_fail(in, INVOKE_CRASHED, "Crashed", "cannot send init to the agent");
                return;
        }
        in->phase = PHASE_INIT;
        (void)loop_source_set_time(in->timer_src, now_usec() + INVOKE_INIT_TIMEOUT_USEC);
        /* A native function loads in well under a millisecond: its event goes right behind the
         * Init, so the agent runs it without sleeping in between (a wake-up of an idle process
         * costs more than the load itself). The run's clock and time limit start at the
         * InitResult. Process runtimes may take seconds to init, and their deadline must not
         * include that: they get the event after the InitResult. If the init fails, the agent
         * refuses the early event and the sandbox goes anyway. */
        if (i && strcmp(in->fn->spec.runtime, "native") == 0) {
                uint64_t deadline = now_realtime_usec() / USEC_PER_MSEC + i->fn->spec.timeout_ms;

                r = agentconn_send_invoke(sandbox_channel_fd(in->sandbox), i->res.id, i->payload,
                                          i->payload_len, deadline);
                if (r < 0) {
                        invocation_finish(i, false, INVOKE_CRASHED, "Crashed",
                                          "cannot send the event: %s", strerror(-r));
                        return;
                }
                i->invoke_sent = true;
        }
}

static void instance_on_ready(Instance *in, AgentMsg *m)
{
        usec_t now = now_usec();

        in->log_fd = TAKE_FD(m->log_fd);
        if (!in->fn) {
                /* A stem cell: ready to be taken over. */
                in->phase = PHASE_CELL;
                instance_disarm(in);
                pool_cell_ready(in->inv->pool, &in->pi);
                return;
        }
        if (in->cur) {
                phase_add(&in->cur->res, "agent", in->t_spawned, now);
                in->cur->t_ready = now;
        }
        instance_send_init(in);
}

static void instance_on_init_result(Instance *in, AgentMsg *m)
{
        Invocation *i = in->cur;
        usec_t now = now_usec();

        if (i)
                phase_add(&i->res, "load", i->t_ready, now);
        if (!m->ok) {
                /* A runtime's own init error body (Lambda's shape) goes along, within the same
                 * cap as any response. */
                if (i && m->payload_len <= INVOKE_PAYLOAD_MAX) {
                        i->res.body = TAKE_PTR(m->payload);
                        i->res.body_len = m->payload_len;
                }
                /* Every init failure is an InitError; the agent's own kind (HandlerNotFound,
                 * a runtime's errorType) leads the message unless the runtime's own error
                 * body travels along, which names it. */
                if (i &&
                    (i->res.body || !m->error_type[0] || strcmp(m->error_type, "InitError") == 0))
                        invocation_finish(i, false, INVOKE_INIT_ERROR, "InitError", "%s",
                                          m->error_message);
                else if (i)
                        invocation_finish(i, false, INVOKE_INIT_ERROR, "InitError", "%s: %s",
                                          m->error_type, m->error_message);
                else
                        pool_release(in->inv->pool, &in->pi, false);
                tick_soon(in->inv);
                return;
        }
        in->phase = PHASE_LOADED;
        instance_disarm(in);
        if (i && i->invoke_sent) {
                i->t_run = now;
                (void)loop_source_set_time(in->timer_src,
                                           now + (usec_t)i->fn->spec.timeout_ms * USEC_PER_MSEC);
        } else if (i)
                invocation_send_invoke(i);
        else {
                /* Initialised for min_instances: now warm. */
                pool_release(in->inv->pool, &in->pi, true);
                tick_soon(in->inv);
        }
}

static void instance_on_result(Instance *in, AgentMsg *m)
{
        Invocation *i = in->cur;
        uint64_t oom = 0;

        i->res.run_usec = now_usec() - i->t_run;
        /* A runtime's child killed by the memory limit while the agent lives on. The counter
         * is read on errors only (it is a cgroupfs read); in->oom_kills holds the last one. */
        if (!m->ok && sandbox_oom_kills(in->sandbox, &oom) >= 0 && oom > in->oom_kills) {
                in->oom_kills = oom;
                invocation_finish(i, false, INVOKE_OUT_OF_MEMORY, "OutOfMemory",
                                  "the function exceeded its memory limit of %" PRIu32 " MB",
                                  i->fn->spec.memory_mb);
                return;
        }
        if (m->payload_len > INVOKE_PAYLOAD_MAX) {
                /* The agent checks this too, but the agent shares the sandbox with the
                 * function: the daemon holds the line itself. */
                invocation_finish(i, false, INVOKE_FUNCTION_ERROR, "ResponseTooLarge",
                                  "the response of %zu bytes is over the limit of %u bytes",
                                  m->payload_len, INVOKE_PAYLOAD_MAX);
                return;
        }
        /* fatal: the agent exits right after this answer (its runtime died): never reuse. */
        if (m->ok) {
                i->res.body = TAKE_PTR(m->payload);
                i->res.body_len = m->payload_len;
                invocation_finish(i, !m->fatal, INVOKE_OK, NULL, NULL);
        } else {
                /* The error body a runtime posted (Lambda's shape) is passed through. */
                i->res.body = TAKE_PTR(m->payload);
                i->res.body_len = m->payload_len;
                invocation_finish(i, !m->fatal, INVOKE_FUNCTION_ERROR,
                                  m->error_type[0] ? m->error_type : "FunctionError", "%s",
                                  m->error_message);
        }
}

/* Returns true if the instance is gone. */
static bool instance_handle_msg(Instance *in, AgentMsg *m)
{
        if (m->type == AGENT_MSG_READY && in->phase == PHASE_SPAWNED)
                instance_on_ready(in, m);
        else if (m->type == AGENT_MSG_INIT_RESULT && in->phase == PHASE_INIT)
                instance_on_init_result(in, m);
        else if (m->type == AGENT_MSG_RESULT && in->phase == PHASE_LOADED && in->cur &&
                 strcmp(m->request_id, in->cur->res.id) == 0)
                instance_on_result(in, m);
        else {
                instance_fail(in, INVOKE_CRASHED, "Crashed",
                              "the sandbox's agent broke the protocol");
                return true;
        }
        return false;
}

/* Reads every waiting message. Returns true if the instance is gone: the pool may destroy it
 * inside a handler (released and not kept); its memory stays valid, marked dead, until the
 * next entry into the invoker. */
static bool instance_drain(Instance *in)
{
        for (;;) {
                AgentMsg m = {.log_fd = -EBADF};
                bool gone;
                int r;

                if (!in->chan_src)
                        return false;
                r = agentconn_recv(sandbox_channel_fd(in->sandbox), &m);
                if (r == -EAGAIN)
                        return false;
                if (r == -ECONNRESET) {
                        /* The agent is gone; the pidfd tells why. */
                        in->chan_src = loop_source_free(in->chan_src);
                        return false;
                }
                if (r < 0) {
                        instance_fail(in, INVOKE_CRASHED, "Crashed",
                                      "the sandbox's agent sent a malformed message");
                        return true;
                }
                gone = instance_handle_msg(in, &m);
                agent_msg_done(&m);
                if (gone || in->dead)
                        return true;
        }
}

/* Frees instances the pool destroyed; called where no Instance pointer is held. */
static void invoker_release_dead(Invoker *inv)
{
        while (inv->dead) {
                Instance *in = inv->dead;
                inv->dead = in->next;
                free(in);
        }
}

static int on_instance_channel(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        Instance *in = userdata;
        Invoker *inv = in->inv;

        invoker_release_dead(inv);
        (void)instance_drain(in);
        return 0;
}

static void invocation_finish_exit(Invocation *i, const SandboxExit *ex)
{
        if (ex->setup_failed)
                invocation_finish(i, false, INVOKE_PLATFORM_ERROR, "SandboxError",
                                  "sandbox setup failed at step '%s': %s",
                                  sandbox_step_to_string(ex->step), strerror(ex->step_errno));
        else if (ex->oom_killed)
                invocation_finish(i, false, INVOKE_OUT_OF_MEMORY, "OutOfMemory",
                                  "the function exceeded its memory limit of %" PRIu32 " MB",
                                  i->fn->spec.memory_mb);
        else if (ex->signal > 0)
                invocation_finish(i, false, INVOKE_CRASHED, "Crashed",
                                  "the function crashed: signal %d (%s)", ex->signal,
                                  strsignal(ex->signal));
        else
                invocation_finish(i, false, INVOKE_CRASHED, "Crashed",
                                  "the function exited with code %d before answering",
                                  ex->exit_code);
}

static int on_instance_exit(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        Instance *in = userdata;
        Invoker *inv = in->inv;
        SandboxExit ex;
        int r;

        invoker_release_dead(inv);
        /* A Result sent just before PID 1 died still counts. */
        if (instance_drain(in))
                return 0;
        r = sandbox_reap(in->sandbox, &ex);
        if (r == -EAGAIN)
                return 0;
        if (r < 0) {
                instance_fail(in, INVOKE_CRASHED, "Crashed", "cannot reap the sandbox");
                return 0;
        }
        if (!in->cur) {
                if (ex.setup_failed)
                        log_warning("sandbox %s failed at step '%s': %s", sandbox_id(in->sandbox),
                                    sandbox_step_to_string(ex.step), strerror(ex.step_errno));
                pool_instance_lost(inv->pool, &in->pi);
        } else
                invocation_finish_exit(in->cur, &ex);
        tick_soon(inv);
        return 0;
}

static int on_instance_timer(LoopSource *s, usec_t now, void *userdata)
{
        Instance *in = userdata;
        Invoker *inv = in->inv;

        invoker_release_dead(inv);
        if (in->phase == PHASE_LOADED && in->cur)
                invocation_finish(in->cur, false, INVOKE_TIMEOUT, "Timeout",
                                  "Task timed out after %.2f seconds",
                                  (double)in->cur->fn->spec.timeout_ms / 1000.0);
        else if (in->phase == PHASE_SPAWNED || in->phase == PHASE_INIT)
                instance_fail(in, INVOKE_TIMEOUT, "Timeout",
                              "the function was not ready within 10 seconds");
        tick_soon(inv);
        return 0;
}

/* ---- pool operations ---- */

static usec_t op_now(void *ctx)
{
        return now_usec();
}

static PoolInstance *op_spawn(void *ctx, const PoolFunction *pf)
{
        Invoker *inv = ctx;
        FunctionEntry *e = pf ? function_entry(inv, pf->name) : NULL;
        uint64_t memory_mb = e ? e->fn->spec.memory_mb : CELL_MEMORY_MB;
        char id[32];
        FnError err = {0};
        Instance *in;
        int r;

        if (pf && (!e || e->fn->version != pf->version)) {
                (void)snprintf(inv->spawn_error, sizeof(inv->spawn_error),
                               "function '%s' changed meanwhile", pf->name);
                return NULL;
        }
        in = calloc(1, sizeof(*in));
        if (!in)
                return NULL;
        in->inv = inv;
        in->log_fd = -EBADF;
        if (e) {
                in->fn = function_dup(e->fn);
                if (!in->fn) {
                        free(in);
                        return NULL;
                }
        }
        (void)snprintf(id, sizeof(id), "sbx-%" PRIu64, ++inv->seq);
        SandboxSpec spec = {
            .id = id,
            .code_dir = in->fn ? in->fn->code_dir : NULL,
            .memory_bytes = memory_mb * 1024 * 1024,
            .cpu_weight = cgroup_cpu_weight_for_memory(memory_mb),
            .pids_max = inv->cfg.pids_max,
            .tmp_bytes = inv->cfg.tmp_bytes,
            .tmp_inodes = 4096,
            .nofile = inv->cfg.nofile,
        };
        in->t_spawn_begin = now_usec();
        r = sandbox_spawn(inv->host, &spec, &in->sandbox, &err);
        if (r < 0) {
                (void)snprintf(inv->spawn_error, sizeof(inv->spawn_error), "%s",
                               err.msg[0] ? err.msg : strerror(-r));
                log_debug("cannot spawn a sandbox: %s", inv->spawn_error);
                function_free(in->fn);
                free(in);
                return NULL;
        }
        in->t_spawned = now_usec();
        r = loop_add_io(inv->loop, sandbox_channel_fd(in->sandbox), EPOLLIN, on_instance_channel,
                        in, &in->chan_src);
        if (r >= 0)
                r = loop_add_io(inv->loop, sandbox_pidfd(in->sandbox), EPOLLIN, on_instance_exit,
                                in, &in->pid_src);
        if (r >= 0)
                r = loop_add_timer(inv->loop, in->t_spawn_begin + INVOKE_INIT_TIMEOUT_USEC,
                                   on_instance_timer, in, &in->timer_src);
        if (r < 0) {
                (void)snprintf(inv->spawn_error, sizeof(inv->spawn_error),
                               "cannot watch the sandbox: %s", strerror(-r));
                loop_source_free(in->chan_src);
                loop_source_free(in->pid_src);
                sandbox_retire(inv, in->sandbox);
                function_free(in->fn);
                free(in);
                return NULL;
        }
        LIST_PREPEND(inv->instances, in);
        inv->n_instances++;
        return &in->pi;
}

static void invocation_unlink_free(Invocation *i);

static void op_destroy(void *ctx, PoolInstance *pi)
{
        Invoker *inv = ctx;
        Instance *in = instance_of(pi);

        if (in->cur) {
                /* Only at shutdown: the invocation goes without an answer. */
                in->cur->inst = NULL;
                invocation_unlink_free(in->cur);
                in->cur = NULL;
        }
        LIST_REMOVE(inv->instances, in);
        inv->n_instances--;
        in->chan_src = loop_source_free(in->chan_src);
        in->pid_src = loop_source_free(in->pid_src);
        in->timer_src = loop_source_free(in->timer_src);
        in->log_fd = safe_close(in->log_fd);
        sandbox_retire(inv, TAKE_PTR(in->sandbox));
        in->fn = function_free(in->fn);
        in->dead = true;
        in->next = inv->dead;
        in->prev = NULL;
        inv->dead = in;
}

static int op_freeze(void *ctx, PoolInstance *pi, bool frozen)
{
        return sandbox_freeze(instance_of(pi)->sandbox, frozen);
}

static void invocation_begin(Invocation *i, const PoolGrant *g);

static void op_dequeued(void *ctx, void *waiter, const PoolGrant *g, int error)
{
        Invoker *inv = ctx;
        Invocation *i = waiter;

        i->queued = false;
        if (g) {
                invocation_begin(i, g);
                return;
        }
        if (error == -ENOENT)
                invocation_finish(i, false, INVOKE_PLATFORM_ERROR, "NotFound",
                                  "the function was deleted while the request waited");
        else if (error == -EAGAIN)
                invocation_finish(i, false, INVOKE_THROTTLED, "TooManyRequests",
                                  "over the concurrency limit of the function or the host, "
                                  "or the memory budget; retry later");
        else
                invocation_finish(i, false, INVOKE_PLATFORM_ERROR, "ServiceUnavailable",
                                  "no sandbox could be made: %s",
                                  error == -EIO ? inv->spawn_error : strerror(-error));
}

static const PoolOps pool_ops = {
    .now = op_now,
    .spawn = op_spawn,
    .destroy = op_destroy,
    .freeze = op_freeze,
    .dequeued = op_dequeued,
};

/* ---- invocations ---- */

static void invocation_unlink_free(Invocation *i)
{
        Invoker *inv = i->inv;

        LIST_REMOVE(inv->invocations, i);
        inv->n_invocations--;
        result_done(&i->res);
        function_free(i->fn);
        free(i->payload);
        free(i);
}

/* Reads what the function printed from the agent's log memfd, capped at INVOKE_LOG_MAX. The
 * memfd belongs to the sandbox: only its size and bytes are trusted, as data. Returns a malloc'd
 * buffer (or NULL when there is no output). */
static char *read_output(int log_fd, size_t *ret_len, bool *ret_truncated)
{
        static const char marker[] = "\n[fnbox: output truncated]\n";
        struct stat st;
        size_t keep, n;
        ssize_t k;
        char *buf;

        *ret_len = 0;
        *ret_truncated = false;
        if (log_fd < 0 || fstat(log_fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0)
                return NULL;
        keep = MIN((size_t)st.st_size, (size_t)INVOKE_LOG_MAX);
        buf = malloc(keep + sizeof(marker));
        if (!buf)
                return NULL;
        k = pread(log_fd, buf, keep, 0);
        n = k > 0 ? (size_t)k : 0;
        if ((size_t)st.st_size > keep) {
                memcpy(buf + n, marker, sizeof(marker) - 1);
                n += sizeof(marker) - 1;
                *ret_truncated = true;
        }
        *ret_len = n;
        return buf;
}

static usec_t phase_usec(const InvokeResult *res, const char *name)
{
        for (size_t k = 0; k < res->n_phases; k++)
                if (strcmp(res->phases[k].name, name) == 0)
                        return res->phases[k].usec;
        return 0;
}

/* The invocation's log as Lambda frames it: START, what the function printed, END, and REPORT
 * with the real figures (Init Duration on cold and prewarmed starts). */
static void frame_log(Invocation *i, const char *out, size_t out_len)
{
        const InvokeResult *res = &i->res;
        char head[160], init[64] = "", tail[512];
        int hl, tl;

        hl = snprintf(head, sizeof(head), "START RequestId: %s Version: %" PRIu64 "\n", res->id,
                      i->fn->version);
        if (res->start != INVOKE_START_WARM)
                (void)snprintf(init, sizeof(init), "\tInit Duration: %.2f ms",
                               (double)phase_usec(res, "load") / 1000.0);
        tl = snprintf(tail, sizeof(tail),
                      "%sEND RequestId: %s\n"
                      "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %" PRIu64
                      " ms\tMemory Size: %" PRIu32 " MB\tMax Memory Used: %" PRIu64 " MB%s\t\n",
                      out_len > 0 && out[out_len - 1] != '\n' ? "\n" : "", res->id, res->id,
                      (double)res->run_usec / 1000.0, res->billed_ms, i->fn->spec.memory_mb,
                      (res->memory_peak_bytes + 1024 * 1024 - 1) / (1024 * 1024), init);
        if (hl < 0 || tl < 0)
                return;
        i->res.log = malloc((size_t)hl + out_len + (size_t)tl + 1);
        if (!i->res.log)
                return;
        memcpy(i->res.log, head, (size_t)hl);
        if (out_len > 0)
                memcpy(i->res.log + hl, out, out_len);
        memcpy(i->res.log + hl + out_len, tail, (size_t)tl);
        i->res.log_len = (size_t)hl + out_len + (size_t)tl;
        i->res.log[i->res.log_len] = '\0';
}

static void collect_log(Invocation *i, int log_fd)
{
        size_t len;
        bool truncated;
        _cleanup_free_ char *out = read_output(log_fd, &len, &truncated);

        i->res.log_truncated = truncated;
        frame_log(i, out, len);
        if (i->res.log)
                (void)logstore_append(i->inv->logs, i->res.function, i->res.log, i->res.log_len);
}

/* Ends the invocation: figures, record, metrics, the caller's callback; then the instance goes
 * back to the pool (kept warm if reusable and the function keeps instances) and `i` is freed. */
static void invocation_finish(Invocation *i, bool reusable, InvokeOutcome outcome, const char *type,
                              const char *fmt, ...)
{
        Invoker *inv = i->inv;
        Instance *in = i->inst;
        usec_t now = now_usec();
        uint64_t peak = 0;
        InvokeStart start;

        i->res.outcome = outcome;
        if (type)
                (void)snprintf(i->res.error_type, sizeof(i->res.error_type), "%s", type);
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                (void)vsnprintf(i->res.error_message, sizeof(i->res.error_message), fmt, ap);
                va_end(ap);
        }
        if (i->t_run != 0) {
                if (i->res.run_usec == 0)
                        i->res.run_usec = now - i->t_run;
                phase_add(&i->res, "run", i->t_run, i->t_run + i->res.run_usec);
        }
        i->res.total_usec = now - i->t_submit;
        /* Lambda bills whole milliseconds, rounded up. */
        i->res.billed_ms = (i->res.run_usec + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
        if (in && in->sandbox && sandbox_memory_peak(in->sandbox, &peak) >= 0)
                i->res.memory_peak_bytes = peak;
        if (in)
                collect_log(i, in->log_fd);

        log_debug("invocation %s of %s: %s (%s) in %" PRIu64 " us", i->res.id, i->res.function,
                  invoke_outcome_to_string(outcome), invoke_start_to_string(i->res.start),
                  i->res.total_usec);
        metrics_observe(inv->metrics, &i->res);
        record_store(inv, &i->res);
        if (i->cb)
                i->cb(&i->res, i->userdata);
        /* The instance's timer is left armed: with no invocation on it, a late expiry is
         * ignored, and the next invocation re-arms it (one syscall less per call). */
        if (in)
                in->cur = NULL;
        start = i->res.start;
        invocation_unlink_free(i);
        if (!in) {
                tick_soon(inv);
                return;
        }
        pool_release(inv->pool, &in->pi, reusable);
        if (in->dead || start != INVOKE_START_WARM)
                tick_soon(inv); /* an instance or a stem cell went: the pool may refill */
        else
                /* Kept warm: the pool next needs to look at it when it is due to freeze. */
                tick_schedule(inv, now_usec() + pool_config(inv->pool)->freeze_after);
}

static void invocation_specialize(Invocation *i, Instance *in)
{
        usec_t t = now_usec();
        int r;

        in->fn = function_dup(i->fn);
        if (!in->fn) {
                invocation_finish(i, false, INVOKE_PLATFORM_ERROR, "ServiceUnavailable",
                                  "out of memory");
                return;
        }
        r = sandbox_set_limits(in->sandbox, (uint64_t)in->fn->spec.memory_mb * 1024 * 1024,
                               cgroup_cpu_weight_for_memory(in->fn->spec.memory_mb));
        if (r >= 0)
                r = sandbox_load_code(in->sandbox, in->fn->code_dir);
        if (r < 0) {
                invocation_finish(i, false, INVOKE_PLATFORM_ERROR, "SandboxError",
                                  "cannot bring the code into a prewarmed sandbox: %s",
                                  strerror(-r));
                return;
        }
        i->t_ready = now_usec();
        phase_add(&i->res, "specialize", t, i->t_ready);
        instance_send_init(in);
}

static void invocation_begin(Invocation *i, const PoolGrant *g)
{
        Instance *in = instance_of(g->inst);

        i->inst = in;
        in->cur = i;
        i->t_granted = now_usec();
        i->res.start = g->tier == POOL_TIER_WARM        ? INVOKE_START_WARM
                       : g->tier == POOL_TIER_PREWARMED ? INVOKE_START_PREWARMED
                                                        : INVOKE_START_COLD;
        i->res.start_cause = g->cause == POOL_CAUSE_NONE ? NULL : pool_cause_to_string(g->cause);
        if (i->was_queued)
                phase_add(&i->res, "queue", i->t_submit, i->t_granted);
        switch (g->tier) {
        case POOL_TIER_WARM:
                invocation_send_invoke(i);
                break;
        case POOL_TIER_PREWARMED:
                invocation_specialize(i, in);
                break;
        default:
                /* Cold: spawned just now; Ready comes on the channel. */
                phase_add(&i->res, "sandbox", in->t_spawn_begin, in->t_spawned);
                break;
        }
}

int invoker_submit(Invoker *inv, const char *name, const void *payload, size_t len,
                   invoke_done_cb cb, void *userdata, Invocation **ret)
{
        FunctionEntry *e;
        Invocation *i;
        PoolFunction pf;
        PoolGrant g = {0};
        int r;

        invoker_release_dead(inv);
        e = function_entry(inv, name);
        if (!e)
                return -ENOENT;
        i = calloc(1, sizeof(*i));
        if (!i)
                return -ENOMEM;
        i->inv = inv;
        i->t_submit = now_usec();
        i->cb = cb;
        i->userdata = userdata;
        i->fn = function_dup(e->fn);
        if (len > 0)
                i->payload = malloc(len);
        r = make_uuid(i->res.id);
        if (!i->fn || (len > 0 && !i->payload) || r < 0) {
                function_free(i->fn);
                free(i->payload);
                free(i);
                return r < 0 ? r : -ENOMEM;
        }
        if (len > 0)
                memcpy(i->payload, payload, len);
        i->payload_len = len;
        (void)snprintf(i->res.function, sizeof(i->res.function), "%s", name);
        LIST_PREPEND(inv->invocations, i);
        inv->n_invocations++;
        if (ret)
                *ret = i;

        pf = pool_function(i->fn);
        r = pool_acquire(inv->pool, &pf, i, &g);
        if (r == 0)
                invocation_begin(i, &g);
        else if (r == 1) {
                i->queued = i->was_queued = true;
                tick_schedule(inv, i->t_submit + pool_config(inv->pool)->queue_timeout);
        } else if (r == -EAGAIN)
                invocation_finish(i, false, INVOKE_THROTTLED, "TooManyRequests",
                                  "over the concurrency limit of the function or the host, "
                                  "or the memory budget; retry later");
        else if (r == -E2BIG)
                invocation_finish(i, false, INVOKE_PLATFORM_ERROR, "ServiceUnavailable",
                                  "the function's memory (%" PRIu32 " MB) is more than the "
                                  "host's whole memory budget (%" PRIu64 " MB)",
                                  i->fn->spec.memory_mb,
                                  pool_config(inv->pool)->memory_budget / (1024 * 1024));
        else
                invocation_finish(i, false, INVOKE_PLATFORM_ERROR, "SandboxError", "%s",
                                  r == -EIO ? inv->spawn_error : strerror(-r));
        return 0;
}

void invocation_detach(Invocation *i)
{
        if (!i)
                return;
        if (i->queued) {
                pool_cancel_wait(i->inv->pool, i);
                invocation_unlink_free(i);
        } else
                i->cb = NULL;
}

int invoker_set_function(Invoker *inv, const Function *fn)
{
        FunctionEntry *e = function_entry(inv, fn->spec.name);
        Function *copy = function_dup(fn);
        PoolFunction pf;

        if (!copy)
                return -ENOMEM;
        if (!e) {
                e = calloc(1, sizeof(*e));
                if (!e) {
                        function_free(copy);
                        return -ENOMEM;
                }
                e->next = inv->functions;
                inv->functions = e;
        } else
                function_free(e->fn);
        e->fn = copy;
        pf = pool_function(copy);
        tick_soon(inv);
        return pool_set_function(inv->pool, &pf);
}

void invoker_remove_function(Invoker *inv, const char *name)
{
        for (FunctionEntry **pp = &inv->functions; *pp; pp = &(*pp)->next)
                if (strcmp((*pp)->fn->spec.name, name) == 0) {
                        FunctionEntry *e = *pp;
                        *pp = e->next;
                        function_free(e->fn);
                        free(e);
                        break;
                }
        pool_remove_function(inv->pool, name);
        logstore_remove(inv->logs, name);
        tick_soon(inv);
}

int invoker_function_logs(Invoker *inv, const char *name, size_t lines, uint64_t after, char **ret,
                          uint64_t *ret_cursor)
{
        int r;

        if (!function_entry(inv, name))
                return -ENOENT;
        r = logstore_tail(inv->logs, name, lines, after, ret, ret_cursor);
        if (r == -ENOENT) {
                /* Known function, no invocation yet: an empty log. */
                *ret = strdup("");
                if (!*ret)
                        return -ENOMEM;
                *ret_cursor = after;
                return 0;
        }
        return r;
}

bool invoker_code_in_use(const char *sha, void *userdata)
{
        const Invoker *inv = userdata;

        for (const Instance *in = inv->instances; in; in = in->next)
                if (in->fn && strcmp(in->fn->code_sha256, sha) == 0)
                        return true;
        return false;
}

const Pool *invoker_pool(const Invoker *inv)
{
        return inv->pool;
}

char *invoker_metrics(const Invoker *inv)
{
        PoolStats ps;

        pool_get_stats(inv->pool, &ps);
        return metrics_render(inv->metrics, &ps);
}

int invoker_new(Loop *loop, SandboxHost *host, const InvokerConfig *cfg, Invoker **ret)
{
        Invoker *inv = calloc(1, sizeof(*inv));
        int r;

        if (!inv)
                return -ENOMEM;
        inv->loop = loop;
        inv->host = host;
        inv->cfg = *cfg;
        inv->tick_at = USEC_INFINITY;
        if (inv->cfg.records_max > 0) {
                inv->records = calloc(inv->cfg.records_max, sizeof(*inv->records));
                if (!inv->records) {
                        free(inv);
                        return -ENOMEM;
                }
        }
        r = pool_new(&cfg->pool, &pool_ops, inv, &inv->pool);
        if (r >= 0)
                r = metrics_new(&inv->metrics);
        if (r >= 0) {
                inv->logs = logstore_new(LOGSTORE_BYTES_PER_FUNCTION);
                if (!inv->logs)
                        r = -ENOMEM;
        }
        if (r >= 0)
                r = loop_add_timer(loop, USEC_INFINITY, on_tick, inv, &inv->tick_src);
        if (r < 0) {
                invoker_free(inv);
                return r;
        }
        (void)sandbox_host_set_netns_target(host, cfg->netns_target);
        loop_set_idle(loop, on_idle, inv);
        tick_soon(inv);
        *ret = inv;
        return 0;
}

Invoker *invoker_free(Invoker *inv)
{
        if (!inv)
                return NULL;
        for (Invocation *i = inv->invocations; i; i = i->next)
                i->cb = NULL;
        inv->pool = pool_free(inv->pool); /* destroys every instance, refuses every waiter */
        while (inv->invocations)
                invocation_unlink_free(inv->invocations);
        while (inv->corpses)
                corpse_free(inv->corpses);
        loop_set_idle(inv->loop, NULL, NULL);
        invoker_release_dead(inv);
        while (inv->functions) {
                FunctionEntry *e = inv->functions;
                inv->functions = e->next;
                function_free(e->fn);
                free(e);
        }
        for (size_t k = 0; k < inv->n_records; k++)
                result_done(&inv->records[k]);
        free(inv->records);
        loop_source_free(inv->tick_src);
        metrics_free(inv->metrics);
        logstore_free(inv->logs);
        free(inv);
        return NULL;
}
