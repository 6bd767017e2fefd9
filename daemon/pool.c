/* SPDX-License-Identifier: Apache-2.0 */
#include "pool.h"

#include <string.h>

#include "list.h"

/* At most this many instances are spawned per tick, so prewarming never holds the loop for
 * more than a sandbox creation at a time; the tick reschedules itself at once when more is due. */
#define POOL_SPAWNS_PER_TICK 1
/* After a failed background spawn, wait this long before trying again. */
#define POOL_RETRY_USEC (1 * USEC_PER_SEC)

typedef struct Waiter {
        void *waiter;
        char name[65];
        PoolFunction fn; /* fn.name points at name */
        usec_t deadline;
        struct Waiter *next;
} Waiter;

/* What the pool remembers per function name. */
typedef struct FnState {
        char name[65];
        PoolFunction cfg; /* cfg.name points at name; valid if known */
        bool known;       /* set by pool_set_function */
        bool seen;        /* had an instance since the daemon started */
        PoolCause last_loss;
        usec_t spawn_after; /* min_instances: an instance failed, wait before the next */
        struct FnState *next;
} FnState;

struct Pool {
        PoolConfig cfg;
        PoolOps ops;
        void *ctx;
        PoolInstance *instances;
        Waiter *waiters;
        unsigned n_waiters;
        FnState *fns;
        PoolStats counters; /* hits, evictions, rejected */
        usec_t retry_at;    /* a background spawn failed: not before this */
};

static const char *const tier_names[_POOL_TIER_MAX] = {
    [POOL_TIER_WARM] = "warm",
    [POOL_TIER_PREWARMED] = "prewarmed",
    [POOL_TIER_COLD] = "cold",
};

const char *pool_tier_to_string(PoolTier t)
{
        return t >= 0 && t < _POOL_TIER_MAX ? tier_names[t] : NULL;
}

static const char *const cause_names[_POOL_CAUSE_MAX] = {
    [POOL_CAUSE_NONE] = "none",
    [POOL_CAUSE_FIRST_CALL] = "first-call",
    [POOL_CAUSE_ALL_BUSY] = "all-busy",
    [POOL_CAUSE_EXPIRED] = "expired",
    [POOL_CAUSE_EVICTED] = "evicted",
    [POOL_CAUSE_CODE_CHANGED] = "code-changed",
    [POOL_CAUSE_POOL_EMPTY] = "pool-empty",
};

const char *pool_cause_to_string(PoolCause c)
{
        return c >= 0 && c < _POOL_CAUSE_MAX ? cause_names[c] : NULL;
}

static const char *const state_names[_POOL_INSTANCE_STATE_MAX] = {
    [POOL_INSTANCE_STARTING] = "starting",
    [POOL_INSTANCE_CELL] = "prewarmed",
    [POOL_INSTANCE_BUSY] = "busy",
    [POOL_INSTANCE_IDLE] = "warm-idle",
};

const char *pool_instance_state_to_string(PoolInstanceState s)
{
        return s >= 0 && s < _POOL_INSTANCE_STATE_MAX ? state_names[s] : NULL;
}

int pool_new(const PoolConfig *cfg, const PoolOps *ops, void *ctx, Pool **ret)
{
        Pool *p = calloc(1, sizeof(*p));

        if (!p)
                return -ENOMEM;
        p->cfg = *cfg;
        p->ops = *ops;
        p->ctx = ctx;
        *ret = p;
        return 0;
}

static usec_t now(Pool *p)
{
        return p->ops.now(p->ctx);
}

/* ---- bookkeeping ---- */

static void instance_link(Pool *p, PoolInstance *i)
{
        LIST_PREPEND(p->instances, i);
}

static void instance_unlink(Pool *p, PoolInstance *i)
{
        LIST_REMOVE(p->instances, i);
}

static FnState *fn_state(Pool *p, const char *name, bool create)
{
        FnState *s;

        for (s = p->fns; s; s = s->next)
                if (strcmp(s->name, name) == 0)
                        return s;
        if (!create)
                return NULL;
        s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        (void)snprintf(s->name, sizeof(s->name), "%s", name);
        s->cfg.name = s->name;
        s->next = p->fns;
        p->fns = s;
        return s;
}

static bool instance_of(const PoolInstance *i, const PoolFunction *fn)
{
        return i->function[0] && strcmp(i->function, fn->name) == 0 && i->version == fn->version &&
               !i->retired;
}

static unsigned count_busy(const Pool *p, const char *name)
{
        unsigned n = 0;

        for (PoolInstance *i = p->instances; i; i = i->next)
                if (i->state == POOL_INSTANCE_BUSY && (!name || strcmp(i->function, name) == 0))
                        n++;
        return n;
}

static uint64_t memory_reserved(const Pool *p)
{
        uint64_t m = 0;

        for (PoolInstance *i = p->instances; i; i = i->next)
                if (i->state == POOL_INSTANCE_BUSY || i->state == POOL_INSTANCE_IDLE)
                        m += i->memory_bytes;
        return m;
}

/* Unlinks and destroys i; a function instance leaving for a reason records it, so the next
 * cold start of that function can say why it was not warm. */
static void instance_destroy(Pool *p, PoolInstance *i, PoolCause cause)
{
        if (i->function[0] && cause != POOL_CAUSE_NONE) {
                FnState *s = fn_state(p, i->function, false);
                if (s)
                        s->last_loss = cause;
                /* A kept-warm function whose instances fail (say its init) is not respawned in
                 * a tight loop. */
                if (s && s->known && s->cfg.min_instances > 0 && cause == POOL_CAUSE_POOL_EMPTY)
                        s->spawn_after = now(p) + POOL_RETRY_USEC;
                if (cause == POOL_CAUSE_EXPIRED || cause == POOL_CAUSE_EVICTED ||
                    cause == POOL_CAUSE_CODE_CHANGED)
                        p->counters.evictions[cause]++;
        }
        instance_unlink(p, i);
        p->ops.destroy(p->ctx, i);
}

/* True if i is one of the min_instances its function keeps warm at all times. */
static bool instance_is_provisioned(Pool *p, const PoolInstance *i)
{
        FnState *s = fn_state(p, i->function, false);
        unsigned have = 0;

        if (!s || !s->known || s->cfg.min_instances == 0 || i->retired ||
            s->cfg.version != i->version)
                return false;
        for (PoolInstance *o = p->instances; o; o = o->next)
                if (o->state == POOL_INSTANCE_IDLE || o->state == POOL_INSTANCE_BUSY)
                        if (instance_of(o, &s->cfg))
                                have++;
        return have <= s->cfg.min_instances;
}

static PoolInstance *find_lru_idle(const Pool *p)
{
        PoolInstance *best = NULL;

        for (PoolInstance *i = p->instances; i; i = i->next)
                if (i->state == POOL_INSTANCE_IDLE && !instance_is_provisioned((Pool *)p, i) &&
                    (!best || i->last_used < best->last_used))
                        best = i;
        return best;
}

/* Evicts least recently used idle instances until `need` more bytes fit the budget. */
static bool budget_make_room(Pool *p, uint64_t need)
{
        uint64_t idle = 0;

        if (p->cfg.memory_budget == 0)
                return true;
        /* Evict nothing unless evicting can make it fit. */
        for (PoolInstance *i = p->instances; i; i = i->next)
                if (i->state == POOL_INSTANCE_IDLE && !instance_is_provisioned(p, i))
                        idle += i->memory_bytes;
        if (memory_reserved(p) - idle + need > p->cfg.memory_budget)
                return false;
        while (memory_reserved(p) + need > p->cfg.memory_budget) {
                PoolInstance *victim = find_lru_idle(p);
                if (!victim)
                        return false;
                instance_destroy(p, victim, POOL_CAUSE_EVICTED);
        }
        return true;
}

static PoolCause cause_for(Pool *p, const PoolFunction *fn)
{
        FnState *s = fn_state(p, fn->name, false);

        for (PoolInstance *i = p->instances; i; i = i->next)
                if (i->state == POOL_INSTANCE_BUSY && instance_of(i, fn))
                        return POOL_CAUSE_ALL_BUSY;
        if (!s || !s->seen)
                return POOL_CAUSE_FIRST_CALL;
        if (s->last_loss != POOL_CAUSE_NONE)
                return s->last_loss;
        return POOL_CAUSE_POOL_EMPTY;
}

static void instance_take(Pool *p, PoolInstance *i, const PoolFunction *fn)
{
        usec_t t = now(p);

        (void)snprintf(i->function, sizeof(i->function), "%s", fn->name);
        i->version = fn->version;
        i->memory_bytes = fn->memory_bytes;
        i->keep_alive = fn->keep_alive;
        i->state = POOL_INSTANCE_BUSY;
        i->last_used = t;
        if (i->created == 0)
                i->created = t;
}

/* Looks for a warm instance of fn; thaws it. */
static PoolInstance *take_warm(Pool *p, const PoolFunction *fn)
{
        for (;;) {
                PoolInstance *best = NULL;

                /* The most recently used one: the others then age out when load drops. */
                for (PoolInstance *i = p->instances; i; i = i->next)
                        if (i->state == POOL_INSTANCE_IDLE && instance_of(i, fn) &&
                            (!best || i->last_used > best->last_used))
                                best = i;
                if (!best)
                        return NULL;
                if (best->frozen && p->ops.freeze(p->ctx, best, false) < 0) {
                        instance_destroy(p, best, POOL_CAUSE_POOL_EMPTY);
                        continue;
                }
                best->frozen = false;
                best->state = POOL_INSTANCE_BUSY;
                best->last_used = now(p);
                return best;
        }
}

static PoolInstance *take_cell(Pool *p)
{
        for (PoolInstance *i = p->instances; i; i = i->next)
                if (i->state == POOL_INSTANCE_CELL)
                        return i;
        return NULL;
}

/* 0 granted, 1 must wait, <0 error. Never queues. */
static int try_grant(Pool *p, const PoolFunction *fn, PoolGrant *ret)
{
        FnState *s = fn_state(p, fn->name, true);
        PoolInstance *i;
        PoolCause cause;

        if (!s)
                return -ENOMEM;
        /* A function bigger than the whole budget could only ever wait: refuse it. */
        if (p->cfg.memory_budget > 0 && fn->memory_bytes > p->cfg.memory_budget)
                return -E2BIG;
        /* The caps count running invocations, whatever tier serves them. */
        if (fn->max_concurrency > 0 && count_busy(p, fn->name) >= fn->max_concurrency)
                return 1;
        if (p->cfg.max_busy > 0 && count_busy(p, NULL) >= p->cfg.max_busy)
                return 1;
        i = take_warm(p, fn);
        if (i) {
                p->counters.hits[POOL_TIER_WARM]++;
                *ret = (PoolGrant){.tier = POOL_TIER_WARM, .cause = POOL_CAUSE_NONE, .inst = i};
                return 0;
        }
        if (!budget_make_room(p, fn->memory_bytes))
                return 1;

        cause = cause_for(p, fn);
        i = take_cell(p);
        if (i) {
                instance_take(p, i, fn);
                s->seen = true;
                p->counters.hits[POOL_TIER_PREWARMED]++;
                *ret = (PoolGrant){.tier = POOL_TIER_PREWARMED, .cause = cause, .inst = i};
                return 0;
        }
        i = p->ops.spawn(p->ctx, fn);
        if (!i)
                return -EIO;
        memset(i, 0, sizeof(*i));
        instance_take(p, i, fn);
        instance_link(p, i);
        s->seen = true;
        p->counters.hits[POOL_TIER_COLD]++;
        *ret = (PoolGrant){.tier = POOL_TIER_COLD, .cause = cause, .inst = i};
        return 0;
}

static void waiter_unlink(Pool *p, Waiter *w)
{
        for (Waiter **pp = &p->waiters; *pp; pp = &(*pp)->next)
                if (*pp == w) {
                        *pp = w->next;
                        p->n_waiters--;
                        return;
                }
}

/* Gives freed capacity to waiters, in arrival order; a waiter still blocked (by its own
 * function's cap) does not hold up the ones behind it. */
static void serve_waiters(Pool *p)
{
        bool progress = true;

        while (progress) {
                progress = false;
                for (Waiter *w = p->waiters; w; w = w->next) {
                        PoolGrant g = {0};
                        int r = try_grant(p, &w->fn, &g);
                        void *waiter = w->waiter;

                        if (r == 1)
                                continue;
                        waiter_unlink(p, w);
                        free(w);
                        /* The callback may re-enter the pool: start the scan again after it. */
                        p->ops.dequeued(p->ctx, waiter, r == 0 ? &g : NULL, r < 0 ? r : 0);
                        progress = true;
                        break;
                }
        }
}

int pool_acquire(Pool *p, const PoolFunction *fn, void *waiter, PoolGrant *ret)
{
        Waiter *w;
        int r;

        /* Queued requests of the same function go first. */
        for (w = p->waiters; w; w = w->next)
                if (strcmp(w->name, fn->name) == 0)
                        break;
        if (!w) {
                r = try_grant(p, fn, ret);
                if (r != 1)
                        return r;
        }
        if (p->n_waiters >= p->cfg.queue_max || p->cfg.queue_timeout == 0) {
                p->counters.rejected++;
                return -EAGAIN;
        }
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->waiter = waiter;
        (void)snprintf(w->name, sizeof(w->name), "%s", fn->name);
        w->fn = *fn;
        w->fn.name = w->name;
        w->deadline = now(p) + p->cfg.queue_timeout;
        /* Append: FIFO. */
        Waiter **pp = &p->waiters;
        while (*pp)
                pp = &(*pp)->next;
        *pp = w;
        p->n_waiters++;
        return 1;
}

void pool_cancel_wait(Pool *p, void *waiter)
{
        for (Waiter *w = p->waiters; w; w = w->next)
                if (w->waiter == waiter) {
                        waiter_unlink(p, w);
                        free(w);
                        return;
                }
}

void pool_release(Pool *p, PoolInstance *i, bool reusable)
{
        usec_t t = now(p);

        i->invocations++;
        if (i->retired)
                instance_destroy(p, i, POOL_CAUSE_CODE_CHANGED);
        else if (!reusable || (i->keep_alive == 0 && !instance_is_provisioned(p, i)))
                instance_destroy(p, i, POOL_CAUSE_POOL_EMPTY);
        else {
                i->state = POOL_INSTANCE_IDLE;
                i->idle_since = t;
                i->last_used = t;
                i->frozen = false;
        }
        serve_waiters(p);
}

void pool_cell_ready(Pool *p, PoolInstance *i)
{
        if (i->state == POOL_INSTANCE_STARTING)
                i->state = POOL_INSTANCE_CELL;
}

void pool_instance_lost(Pool *p, PoolInstance *i)
{
        instance_destroy(p, i, POOL_CAUSE_POOL_EMPTY);
        serve_waiters(p);
}

int pool_set_function(Pool *p, const PoolFunction *fn)
{
        FnState *s = fn_state(p, fn->name, true);
        PoolInstance *i, *next;

        if (!s)
                return -ENOMEM;
        if (s->known && s->cfg.version != fn->version && s->seen)
                s->last_loss = POOL_CAUSE_CODE_CHANGED;
        s->cfg = *fn;
        s->cfg.name = s->name;
        s->known = true;
        for (i = p->instances; i; i = next) {
                next = i->next;
                if (!i->function[0] || strcmp(i->function, fn->name) != 0 ||
                    i->version == fn->version)
                        continue;
                if (i->state == POOL_INSTANCE_IDLE)
                        instance_destroy(p, i, POOL_CAUSE_CODE_CHANGED);
                else
                        i->retired = true;
        }
        return 0;
}

void pool_remove_function(Pool *p, const char *name)
{
        PoolInstance *i, *next;

        for (i = p->instances; i; i = next) {
                next = i->next;
                if (!i->function[0] || strcmp(i->function, name) != 0)
                        continue;
                if (i->state == POOL_INSTANCE_IDLE)
                        instance_destroy(p, i, POOL_CAUSE_CODE_CHANGED);
                else
                        i->retired = true;
        }
        /* Requests still waiting for it end now. */
        for (Waiter *w = p->waiters; w;) {
                Waiter *n = w->next;
                if (strcmp(w->name, name) == 0) {
                        void *waiter = w->waiter;
                        waiter_unlink(p, w);
                        free(w);
                        p->ops.dequeued(p->ctx, waiter, NULL, -ENOENT);
                        n = p->waiters;
                }
                w = n;
        }
        for (FnState **pp = &p->fns; *pp; pp = &(*pp)->next)
                if (strcmp((*pp)->name, name) == 0) {
                        FnState *s = *pp;
                        *pp = s->next;
                        free(s);
                        break;
                }
}

static void tick_waiters(Pool *p, usec_t t, usec_t *next)
{
        for (Waiter *w = p->waiters; w;) {
                Waiter *n = w->next;
                if (w->deadline <= t) {
                        void *waiter = w->waiter;
                        waiter_unlink(p, w);
                        free(w);
                        p->counters.rejected++;
                        p->ops.dequeued(p->ctx, waiter, NULL, -EAGAIN);
                        /* The callback may have changed the list. */
                        n = p->waiters;
                } else
                        *next = MIN(*next, w->deadline);
                w = n;
        }
}

static void tick_idle(Pool *p, usec_t t, usec_t *next)
{
        PoolInstance *i, *n;

        for (i = p->instances; i; i = n) {
                n = i->next;
                if (i->state != POOL_INSTANCE_IDLE)
                        continue;
                if (instance_is_provisioned(p, i)) {
                        /* min_instances: never expires; only freezing applies. */
                } else if (t - i->idle_since >= i->keep_alive) {
                        instance_destroy(p, i, POOL_CAUSE_EXPIRED);
                        continue;
                } else
                        *next = MIN(*next, i->idle_since + i->keep_alive);
                if (i->frozen || p->cfg.freeze_after == 0)
                        continue;
                if (t - i->idle_since >= p->cfg.freeze_after) {
                        if (p->ops.freeze(p->ctx, i, true) < 0)
                                instance_destroy(p, i, POOL_CAUSE_POOL_EMPTY);
                        else
                                i->frozen = true;
                } else
                        *next = MIN(*next, i->idle_since + p->cfg.freeze_after);
        }
}

/* Starts at most `budget` instances: stem cells up to the target, then min_instances. */
static void tick_spawn(Pool *p, usec_t t, usec_t *next)
{
        unsigned cells = 0, spawned = 0;

        if (t < p->retry_at) {
                *next = MIN(*next, p->retry_at);
                return;
        }
        for (PoolInstance *i = p->instances; i; i = i->next)
                if (i->state == POOL_INSTANCE_STARTING || i->state == POOL_INSTANCE_CELL)
                        cells++;
        for (FnState *s = p->fns; s; s = s->next) {
                unsigned have = 0;
                PoolInstance *i;

                if (!s->known || s->cfg.min_instances == 0)
                        continue;
                if (t < s->spawn_after) {
                        *next = MIN(*next, s->spawn_after);
                        continue;
                }
                for (i = p->instances; i; i = i->next)
                        if (instance_of(i, &s->cfg) &&
                            (i->state == POOL_INSTANCE_IDLE || i->state == POOL_INSTANCE_BUSY))
                                have++;
                if (have >= s->cfg.min_instances)
                        continue;
                if (spawned >= POOL_SPAWNS_PER_TICK) {
                        *next = t;
                        return;
                }
                if (!budget_make_room(p, s->cfg.memory_bytes) ||
                    !(i = p->ops.spawn(p->ctx, &s->cfg))) {
                        p->retry_at = t + POOL_RETRY_USEC;
                        *next = MIN(*next, p->retry_at);
                        return;
                }
                memset(i, 0, sizeof(*i));
                instance_take(p, i, &s->cfg);
                instance_link(p, i);
                s->seen = true;
                spawned++;
                if (have + 1 < s->cfg.min_instances)
                        *next = t; /* more to come, one per tick */
        }
        while (cells < p->cfg.prewarm_target) {
                PoolInstance *i;
                if (spawned >= POOL_SPAWNS_PER_TICK) {
                        *next = t;
                        return;
                }
                i = p->ops.spawn(p->ctx, NULL);
                if (!i) {
                        p->retry_at = t + POOL_RETRY_USEC;
                        *next = MIN(*next, p->retry_at);
                        return;
                }
                memset(i, 0, sizeof(*i));
                i->state = POOL_INSTANCE_STARTING;
                i->created = t;
                instance_link(p, i);
                cells++;
                spawned++;
        }
}

usec_t pool_tick(Pool *p)
{
        usec_t t = now(p), next = USEC_INFINITY;

        tick_waiters(p, t, &next);
        tick_idle(p, t, &next);
        if (p->cfg.memory_budget > 0)
                while (memory_reserved(p) > p->cfg.memory_budget) {
                        PoolInstance *victim = find_lru_idle(p);
                        if (!victim)
                                break;
                        instance_destroy(p, victim, POOL_CAUSE_EVICTED);
                }
        tick_spawn(p, t, &next);
        return next;
}

void pool_get_stats(const Pool *p, PoolStats *ret)
{
        PoolStats s = p->counters;

        memset(s.by_state, 0, sizeof(s.by_state));
        s.frozen = 0;
        for (PoolInstance *i = p->instances; i; i = i->next) {
                s.by_state[i->state]++;
                if (i->state == POOL_INSTANCE_IDLE && i->frozen)
                        s.frozen++;
        }
        s.queued = p->n_waiters;
        s.memory_reserved = memory_reserved(p);
        *ret = s;
}

void pool_foreach(const Pool *p, void (*cb)(const PoolInstance *i, void *userdata), void *userdata)
{
        for (PoolInstance *i = p->instances; i; i = i->next)
                cb(i, userdata);
}

const PoolConfig *pool_config(const Pool *p)
{
        return &p->cfg;
}

Pool *pool_free(Pool *p)
{
        if (!p)
                return NULL;
        while (p->waiters) {
                Waiter *w = p->waiters;
                void *waiter = w->waiter;
                waiter_unlink(p, w);
                free(w);
                p->ops.dequeued(p->ctx, waiter, NULL, -ECANCELED);
        }
        while (p->instances)
                instance_destroy(p, p->instances, POOL_CAUSE_NONE);
        while (p->fns) {
                FnState *s = p->fns;
                p->fns = s->next;
                free(s);
        }
        free(p);
        return NULL;
}
