/* SPDX-License-Identifier: Apache-2.0 */
/* The warm pool and admission policy (daemon/pool.c) against a fake sandbox layer and a fake
 * clock: every spawn, destroy, freeze/thaw and dequeued callback is logged, so each test asserts
 * what the platform's user sees (which tier and why, which sandbox, when it dies, who waits). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "pool.h"

#define MB ((uint64_t)1 << 20)
#define SEC USEC_PER_SEC
#define T0 (1000 * SEC)
#define KEEP (60 * SEC)
#define MAX_EVENTS 512
#define MAX_IDS 128

/* ---- the fake sandbox layer ---- */

typedef struct FakeInst {
        PoolInstance pi;
        int id;
} FakeInst;

typedef enum EvKind {
        EV_SPAWN_CELL,
        EV_SPAWN_COLD,
        EV_SPAWN_FAILED,
        EV_DESTROY,
        EV_FREEZE,
        EV_THAW,
        EV_DEQUEUED,
} EvKind;

typedef struct Ev {
        EvKind kind;
        int id;        /* instance id, 0 if none */
        char fn[65];   /* spawn: the function ("" for a cell) */
        int state;     /* freeze/thaw/destroy: the instance's state at the call */
        void *waiter;  /* dequeued */
        PoolTier tier; /* dequeued with a grant */
        PoolCause cause;
        PoolInstance *inst; /* dequeued: the granted instance or NULL */
        int error;
} Ev;

typedef struct Fake {
        usec_t now;
        int last_id;
        unsigned live;         /* spawned and not yet destroyed */
        unsigned fail_spawns;  /* the next N spawns fail */
        unsigned fail_freezes; /* the next N freeze(true) fail */
        unsigned fail_thaws;   /* the next N freeze(false) fail */
        Ev ev[MAX_EVENTS];
        size_t n_ev;
        struct FakeInst *by_id[MAX_IDS]; /* live instances by id */
} Fake;

static FakeInst *fake_inst(const PoolInstance *i)
{
        return (FakeInst *)((char *)i - offsetof(FakeInst, pi));
}

static int id_of(const PoolInstance *i)
{
        return i ? fake_inst(i)->id : 0;
}

static Ev *ev_add(Fake *f, EvKind kind, const PoolInstance *i)
{
        Ev *e;

        assert_true(f->n_ev < MAX_EVENTS);
        e = &f->ev[f->n_ev++];
        memset(e, 0, sizeof(*e));
        e->kind = kind;
        e->id = id_of(i);
        e->state = i ? (int)i->state : -1;
        return e;
}

static usec_t fake_now(void *ctx)
{
        return ((Fake *)ctx)->now;
}

static PoolInstance *fake_spawn(void *ctx, const PoolFunction *fn)
{
        Fake *f = ctx;
        FakeInst *fi;
        Ev *e;

        if (f->fail_spawns > 0) {
                f->fail_spawns--;
                e = ev_add(f, EV_SPAWN_FAILED, NULL);
                (void)snprintf(e->fn, sizeof(e->fn), "%s", fn ? fn->name : "");
                return NULL;
        }
        fi = calloc(1, sizeof(*fi));
        assert_non_null(fi);
        /* Garbage in the pool's part: the pool must fill it in itself. */
        memset(&fi->pi, 0xa5, sizeof(fi->pi));
        fi->id = ++f->last_id;
        assert_true(fi->id < MAX_IDS);
        f->by_id[fi->id] = fi;
        f->live++;
        e = ev_add(f, fn ? EV_SPAWN_COLD : EV_SPAWN_CELL, NULL);
        e->id = fi->id;
        (void)snprintf(e->fn, sizeof(e->fn), "%s", fn ? fn->name : "");
        return &fi->pi;
}

static void fake_destroy(void *ctx, PoolInstance *i)
{
        Fake *f = ctx;

        assert_null(i->prev);
        assert_null(i->next);
        ev_add(f, EV_DESTROY, i);
        assert_true(f->live > 0);
        f->live--;
        f->by_id[fake_inst(i)->id] = NULL;
        free(fake_inst(i));
}

static int fake_freeze(void *ctx, PoolInstance *i, bool frozen)
{
        Fake *f = ctx;

        ev_add(f, frozen ? EV_FREEZE : EV_THAW, i);
        if (frozen && f->fail_freezes > 0) {
                f->fail_freezes--;
                return -EBUSY;
        }
        if (!frozen && f->fail_thaws > 0) {
                f->fail_thaws--;
                return -EIO;
        }
        return 0;
}

static void fake_dequeued(void *ctx, void *waiter, const PoolGrant *g, int error)
{
        Ev *e = ev_add(ctx, EV_DEQUEUED, g ? g->inst : NULL);

        e->waiter = waiter;
        e->error = error;
        e->tier = g ? g->tier : _POOL_TIER_INVALID;
        e->cause = g ? g->cause : _POOL_CAUSE_INVALID;
        e->inst = g ? g->inst : NULL;
}

static const PoolOps fake_ops = {
    .now = fake_now,
    .spawn = fake_spawn,
    .destroy = fake_destroy,
    .freeze = fake_freeze,
    .dequeued = fake_dequeued,
};

/* Events of one kind since index `from`, for instance `id` (0: any). */
static unsigned n_ev_since(const Fake *f, size_t from, EvKind kind, int id)
{
        unsigned n = 0;

        for (size_t k = from; k < f->n_ev; k++)
                if (f->ev[k].kind == kind && (id == 0 || f->ev[k].id == id))
                        n++;
        return n;
}

static unsigned n_ev(const Fake *f, EvKind kind, int id)
{
        return n_ev_since(f, 0, kind, id);
}

/* The dequeued event of `waiter`, asserting there was exactly one. */
static const Ev *dequeued_of(const Fake *f, const void *waiter)
{
        const Ev *found = NULL;

        for (size_t k = 0; k < f->n_ev; k++)
                if (f->ev[k].kind == EV_DEQUEUED && f->ev[k].waiter == waiter) {
                        assert_null(found);
                        found = &f->ev[k];
                }
        assert_non_null(found);
        return found;
}

static unsigned n_dequeued(const Fake *f, const void *waiter)
{
        unsigned n = 0;

        for (size_t k = 0; k < f->n_ev; k++)
                if (f->ev[k].kind == EV_DEQUEUED && f->ev[k].waiter == waiter)
                        n++;
        return n;
}

/* ---- per-test state ---- */

typedef struct T {
        Fake f;
        Pool *p;
} T;

static int setup(void **state)
{
        T *t = calloc(1, sizeof(*t));

        if (!t)
                return -1;
        t->f.now = T0;
        *state = t;
        return 0;
}

static int teardown(void **state)
{
        T *t = *state;

        t->p = pool_free(t->p);
        free(t);
        return 0;
}

static PoolConfig cfg_default(void)
{
        return (PoolConfig){
            .queue_max = 16,
            .queue_timeout = 5 * SEC,
        };
}

static Pool *mkpool(T *t, const PoolConfig *cfg)
{
        assert_int_equal(pool_new(cfg, &fake_ops, &t->f, &t->p), 0);
        assert_non_null(t->p);
        return t->p;
}

/* Frees the pool and checks that every sandbox it made was destroyed exactly once. */
static void finish(T *t)
{
        t->p = pool_free(t->p);
        assert_int_equal(t->f.live, 0);
}

static PoolFunction fn_make(const char *name, uint64_t mem)
{
        return (PoolFunction){
            .name = name,
            .version = 1,
            .memory_bytes = mem,
            .keep_alive = KEEP,
        };
}

static void assert_grant(const PoolGrant *g, PoolTier tier, PoolCause cause)
{
        /* As strings, so a failure says "cold" != "warm" rather than 2 != 0. */
        assert_non_null(pool_tier_to_string(g->tier));
        assert_non_null(pool_cause_to_string(g->cause));
        assert_string_equal(pool_tier_to_string(g->tier), pool_tier_to_string(tier));
        assert_string_equal(pool_cause_to_string(g->cause), pool_cause_to_string(cause));
}

/* Acquires now and checks the tier and cause; returns the (BUSY) instance. */
static PoolInstance *acq(T *t, const PoolFunction *fn, PoolTier tier, PoolCause cause)
{
        PoolGrant g = {.tier = _POOL_TIER_INVALID, .cause = _POOL_CAUSE_INVALID};

        assert_int_equal(pool_acquire(t->p, fn, NULL, &g), 0);
        assert_grant(&g, tier, cause);
        assert_non_null(g.inst);
        assert_int_equal(g.inst->state, POOL_INSTANCE_BUSY);
        assert_string_equal(g.inst->function, fn->name);
        assert_int_equal(g.inst->version, fn->version);
        assert_int_equal(g.inst->memory_bytes, fn->memory_bytes);
        assert_false(g.inst->frozen);
        return g.inst;
}

/* Acquires and expects to be queued. */
static void acq_wait(T *t, const PoolFunction *fn, void *waiter)
{
        PoolGrant g = {.inst = NULL};

        assert_int_equal(pool_acquire(t->p, fn, waiter, &g), 1);
}

typedef struct Find {
        int id;
        int state;
        unsigned n;
} Find;

static void find_cb(const PoolInstance *i, void *userdata)
{
        Find *fd = userdata;

        fd->n++;
        if (id_of(i) == fd->id)
                fd->state = (int)i->state;
}

/* The state of the instance with that id, or -1 if the pool no longer has it. */
static int state_of(const T *t, int id)
{
        Find fd = {.id = id, .state = -1};

        pool_foreach(t->p, find_cb, &fd);
        return fd.state;
}

/* The live instance with that id. */
static PoolInstance *inst(const T *t, int id)
{
        assert_true(id > 0 && id < MAX_IDS);
        assert_non_null(t->f.by_id[id]);
        return &t->f.by_id[id]->pi;
}

/* The id of the last instance spawned. */
static int last_spawned(const T *t)
{
        for (size_t k = t->f.n_ev; k > 0; k--)
                if (t->f.ev[k - 1].kind == EV_SPAWN_CELL || t->f.ev[k - 1].kind == EV_SPAWN_COLD)
                        return t->f.ev[k - 1].id;
        fail_msg("nothing spawned");
        return 0;
}

static unsigned n_instances(const T *t)
{
        Find fd = {.id = -1, .state = -1};

        pool_foreach(t->p, find_cb, &fd);
        return fd.n;
}

static PoolStats stats(const T *t)
{
        PoolStats s;

        memset(&s, 0xff, sizeof(s));
        pool_get_stats(t->p, &s);
        return s;
}

/* ---- names ---- */

static void test_names(void **state)
{
        assert_string_equal(pool_tier_to_string(POOL_TIER_WARM), "warm");
        assert_string_equal(pool_tier_to_string(POOL_TIER_PREWARMED), "prewarmed");
        assert_string_equal(pool_tier_to_string(POOL_TIER_COLD), "cold");
        assert_null(pool_tier_to_string(_POOL_TIER_MAX));
        assert_null(pool_tier_to_string(_POOL_TIER_INVALID));

        assert_string_equal(pool_cause_to_string(POOL_CAUSE_NONE), "none");
        assert_string_equal(pool_cause_to_string(POOL_CAUSE_FIRST_CALL), "first-call");
        assert_string_equal(pool_cause_to_string(POOL_CAUSE_ALL_BUSY), "all-busy");
        assert_string_equal(pool_cause_to_string(POOL_CAUSE_EXPIRED), "expired");
        assert_string_equal(pool_cause_to_string(POOL_CAUSE_EVICTED), "evicted");
        assert_string_equal(pool_cause_to_string(POOL_CAUSE_CODE_CHANGED), "code-changed");
        assert_string_equal(pool_cause_to_string(POOL_CAUSE_POOL_EMPTY), "pool-empty");
        assert_null(pool_cause_to_string(_POOL_CAUSE_MAX));
        assert_null(pool_cause_to_string(_POOL_CAUSE_INVALID));

        for (int s = 0; s < _POOL_INSTANCE_STATE_MAX; s++)
                assert_non_null(pool_instance_state_to_string((PoolInstanceState)s));
        assert_null(pool_instance_state_to_string(_POOL_INSTANCE_STATE_MAX));
        assert_null(pool_instance_state_to_string(_POOL_INSTANCE_STATE_INVALID));
}

/* ---- tiers ---- */

static void test_first_call_is_cold(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 128 * MB);
        PoolInstance *x;

        mkpool(t, &cfg);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        /* One sandbox, made for this function (not a stem cell). */
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 1);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_CELL, 0), 0);
        assert_string_equal(t->f.ev[0].fn, "a");
        assert_int_equal(t->f.ev[0].id, id_of(x));
        assert_false(x->retired);
        assert_int_equal(x->keep_alive, KEEP);
        assert_int_equal(state_of(t, id_of(x)), POOL_INSTANCE_BUSY);
        assert_int_equal(stats(t).hits[POOL_TIER_COLD], 1);
        pool_release(t->p, x, true);
        assert_int_equal(x->invocations, 1);
        finish(t);
}

static void test_prewarmed_then_warm(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 128 * MB), b = fn_make("b", 256 * MB);
        PoolInstance *x, *y, *z;
        PoolStats s;
        size_t mark;
        int cell;

        cfg.prewarm_target = 1;
        mkpool(t, &cfg);
        assert_int_equal(pool_tick(t->p), USEC_INFINITY);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_CELL, 0), 1);
        cell = last_spawned(t);
        assert_int_equal(state_of(t, cell), POOL_INSTANCE_STARTING);
        assert_string_equal(inst(t, cell)->function, "");
        assert_int_equal(stats(t).memory_reserved, 0);

        /* A cell whose agent is not ready yet is not used: cold. */
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        assert_int_not_equal(id_of(x), cell);
        assert_int_equal(state_of(t, cell), POOL_INSTANCE_STARTING);

        /* Ready: the next first call takes it over on the spot; no sandbox is made. */
        pool_cell_ready(t->p, inst(t, cell));
        assert_int_equal(state_of(t, cell), POOL_INSTANCE_CELL);
        mark = t->f.n_ev;
        y = acq(t, &b, POOL_TIER_PREWARMED, POOL_CAUSE_FIRST_CALL);
        assert_int_equal(id_of(y), cell);
        assert_int_equal(n_ev_since(&t->f, mark, EV_SPAWN_COLD, 0), 0);
        assert_int_equal(n_ev_since(&t->f, mark, EV_SPAWN_CELL, 0), 0);
        assert_int_equal(stats(t).memory_reserved, 128 * MB + 256 * MB);

        /* Released healthy: the next call of b is warm, on the same sandbox. */
        pool_release(t->p, y, true);
        assert_int_equal(state_of(t, cell), POOL_INSTANCE_IDLE);
        z = acq(t, &b, POOL_TIER_WARM, POOL_CAUSE_NONE);
        assert_ptr_equal(z, y);
        assert_int_equal(n_ev_since(&t->f, mark, EV_SPAWN_COLD, 0), 0);
        assert_int_equal(n_ev_since(&t->f, mark, EV_DESTROY, 0), 0);
        assert_int_equal(z->invocations, 1);

        s = stats(t);
        assert_int_equal(s.hits[POOL_TIER_WARM], 1);
        assert_int_equal(s.hits[POOL_TIER_PREWARMED], 1);
        assert_int_equal(s.hits[POOL_TIER_COLD], 1);
        pool_release(t->p, z, true);
        pool_release(t->p, x, true);
        finish(t);
}

static void test_warm_prefers_most_recently_used(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolInstance *x, *y;

        mkpool(t, &cfg);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        y = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_ALL_BUSY);
        pool_release(t->p, y, true);
        t->f.now += SEC;
        pool_release(t->p, x, true);
        /* x was used last: it serves, so y can age out when the load drops. */
        assert_ptr_equal(acq(t, &a, POOL_TIER_WARM, POOL_CAUSE_NONE), x);
        assert_ptr_equal(acq(t, &a, POOL_TIER_WARM, POOL_CAUSE_NONE), y);
        pool_release(t->p, x, true);
        pool_release(t->p, y, true);
        finish(t);
}

/* ---- causes ---- */

static void test_cause_all_busy(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB), b = fn_make("b", 64 * MB);
        PoolInstance *x, *y, *z, *u;
        int cell1, cell2;

        cfg.prewarm_target = 1;
        mkpool(t, &cfg);
        (void)pool_tick(t->p);
        cell1 = last_spawned(t);
        pool_cell_ready(t->p, inst(t, cell1));

        x = acq(t, &a, POOL_TIER_PREWARMED, POOL_CAUSE_FIRST_CALL);
        assert_int_equal(id_of(x), cell1);
        /* The only instance is running: the second concurrent call starts another. */
        y = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_ALL_BUSY);
        assert_ptr_not_equal(y, x);

        (void)pool_tick(t->p);
        cell2 = last_spawned(t);
        assert_int_not_equal(cell2, cell1);
        pool_cell_ready(t->p, inst(t, cell2));
        z = acq(t, &a, POOL_TIER_PREWARMED, POOL_CAUSE_ALL_BUSY);
        assert_int_equal(id_of(z), cell2);

        /* Another function's busy instances say nothing about b: its first call. */
        u = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);

        pool_release(t->p, x, true);
        pool_release(t->p, y, true);
        pool_release(t->p, z, true);
        pool_release(t->p, u, true);
        finish(t);
}

static void test_cause_expired_at_keep_alive_boundary(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolInstance *x;
        int xid;

        a.keep_alive = 10 * SEC;
        mkpool(t, &cfg);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        xid = id_of(x);
        t->f.now = T0 + SEC;
        pool_release(t->p, x, true);

        /* Next due: the keep-alive deadline, idle_since + keep_alive. */
        assert_int_equal(pool_tick(t->p), T0 + 11 * SEC);
        t->f.now = T0 + 11 * SEC - 1;
        assert_int_equal(pool_tick(t->p), T0 + 11 * SEC);
        assert_int_equal(state_of(t, xid), POOL_INSTANCE_IDLE);
        assert_int_equal(n_ev(&t->f, EV_DESTROY, 0), 0);

        t->f.now = T0 + 11 * SEC;
        assert_int_equal(pool_tick(t->p), USEC_INFINITY);
        assert_int_equal(n_ev(&t->f, EV_DESTROY, xid), 1);
        assert_int_equal(state_of(t, xid), -1);
        assert_int_equal(stats(t).evictions[POOL_CAUSE_EXPIRED], 1);

        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_EXPIRED);
        assert_int_not_equal(id_of(x), xid);
        pool_release(t->p, x, true);
        finish(t);
}

static void test_cause_code_changed(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a1 = fn_make("a", 64 * MB), a2;
        PoolInstance *x, *y, *z, *w;
        int xid, yid;
        size_t mark;

        a2 = a1;
        a2.version = 2;
        mkpool(t, &cfg);
        assert_int_equal(pool_set_function(t->p, &a1), 0);
        x = acq(t, &a1, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        y = acq(t, &a1, POOL_TIER_COLD, POOL_CAUSE_ALL_BUSY);
        xid = id_of(x);
        yid = id_of(y);
        pool_release(t->p, x, true);

        /* Deploy v2: the idle v1 instance goes at once, the busy one finishes its call. */
        mark = t->f.n_ev;
        assert_int_equal(pool_set_function(t->p, &a2), 0);
        assert_int_equal(n_ev_since(&t->f, mark, EV_DESTROY, 0), 1);
        assert_int_equal(n_ev_since(&t->f, mark, EV_DESTROY, xid), 1);
        assert_int_equal(state_of(t, yid), POOL_INSTANCE_BUSY);
        assert_true(y->retired);
        assert_int_equal(stats(t).evictions[POOL_CAUSE_CODE_CHANGED], 1);

        z = acq(t, &a2, POOL_TIER_COLD, POOL_CAUSE_CODE_CHANGED);
        assert_int_not_equal(id_of(z), yid);

        /* The retired v1 instance is destroyed when its call ends, never kept for v2. */
        pool_release(t->p, y, true);
        assert_int_equal(n_ev(&t->f, EV_DESTROY, yid), 1);
        assert_int_equal(state_of(t, yid), -1);
        assert_int_equal(stats(t).evictions[POOL_CAUSE_CODE_CHANGED], 2);
        assert_int_equal(n_instances(t), 1);

        pool_release(t->p, z, true);
        w = acq(t, &a2, POOL_TIER_WARM, POOL_CAUSE_NONE);
        assert_ptr_equal(w, z);
        pool_release(t->p, w, true);
        finish(t);
}

static void test_cause_pool_empty(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB), b = fn_make("b", 64 * MB);
        PoolInstance *x;
        PoolStats s;
        int xid;

        a.keep_alive = 0;
        mkpool(t, &cfg);

        /* keep_alive 0: never kept, even after a healthy call. */
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        xid = id_of(x);
        pool_release(t->p, x, true);
        assert_int_equal(n_ev(&t->f, EV_DESTROY, xid), 1);
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_IDLE], 0);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_POOL_EMPTY);
        pool_release(t->p, x, true);

        /* The last instance failed. */
        x = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        xid = id_of(x);
        pool_release(t->p, x, false);
        assert_int_equal(n_ev(&t->f, EV_DESTROY, xid), 1);
        x = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_POOL_EMPTY);
        pool_release(t->p, x, true);

        /* Neither counts as an eviction. */
        s = stats(t);
        assert_int_equal(s.evictions[POOL_CAUSE_EXPIRED], 0);
        assert_int_equal(s.evictions[POOL_CAUSE_EVICTED], 0);
        assert_int_equal(s.evictions[POOL_CAUSE_CODE_CHANGED], 0);
        finish(t);
}

/* ---- never reused, never shared ---- */

static void test_failed_instance_never_reused(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolInstance *x, *y;
        int xid, yid;

        mkpool(t, &cfg);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        xid = id_of(x);
        pool_release(t->p, x, true);
        assert_ptr_equal(acq(t, &a, POOL_TIER_WARM, POOL_CAUSE_NONE), x);
        /* It timed out / crashed / ran out of memory. */
        pool_release(t->p, x, false);
        assert_int_equal(n_ev(&t->f, EV_DESTROY, xid), 1);
        assert_int_equal(state_of(t, xid), -1);
        y = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_POOL_EMPTY);
        yid = id_of(y);
        assert_int_not_equal(yid, xid);

        /* Died while idle: gone too, the next call is not warm. */
        pool_release(t->p, y, true);
        pool_instance_lost(t->p, y);
        assert_int_equal(n_ev(&t->f, EV_DESTROY, yid), 1);
        assert_int_equal(n_instances(t), 0);
        y = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_POOL_EMPTY);
        pool_release(t->p, y, true);
        finish(t);
}

static void test_never_shared_across_functions(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB), b = fn_make("b", 64 * MB),
                     c = fn_make("c", 64 * MB), d = fn_make("d", 64 * MB);
        PoolInstance *xa, *xb, *xc, *xd;
        int cell1, cell2;

        cfg.prewarm_target = 1;
        mkpool(t, &cfg);
        xa = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        pool_release(t->p, xa, true);
        /* An idle instance of a is never handed to b. */
        xb = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        assert_ptr_not_equal(xb, xa);
        assert_int_equal(state_of(t, id_of(xa)), POOL_INSTANCE_IDLE);
        pool_release(t->p, xb, true);

        /* A cell taken by c belongs to c from then on: it never goes back to the cell pool. */
        (void)pool_tick(t->p);
        cell1 = last_spawned(t);
        pool_cell_ready(t->p, inst(t, cell1));
        xc = acq(t, &c, POOL_TIER_PREWARMED, POOL_CAUSE_FIRST_CALL);
        assert_int_equal(id_of(xc), cell1);
        pool_release(t->p, xc, true);
        assert_int_equal(state_of(t, cell1), POOL_INSTANCE_IDLE);
        assert_string_equal(xc->function, "c");
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_CELL], 0);
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_STARTING], 0);

        (void)pool_tick(t->p);
        cell2 = last_spawned(t);
        assert_int_not_equal(cell2, cell1);
        pool_cell_ready(t->p, inst(t, cell2));
        xd = acq(t, &d, POOL_TIER_PREWARMED, POOL_CAUSE_FIRST_CALL);
        assert_int_equal(id_of(xd), cell2);

        /* Each function still finds its own. */
        assert_ptr_equal(acq(t, &a, POOL_TIER_WARM, POOL_CAUSE_NONE), xa);
        assert_ptr_equal(acq(t, &b, POOL_TIER_WARM, POOL_CAUSE_NONE), xb);
        assert_ptr_equal(acq(t, &c, POOL_TIER_WARM, POOL_CAUSE_NONE), xc);
        pool_release(t->p, xa, true);
        pool_release(t->p, xb, true);
        pool_release(t->p, xc, true);
        pool_release(t->p, xd, true);
        finish(t);
}

static void test_never_across_versions(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a1 = fn_make("a", 64 * MB), a2;
        PoolInstance *x;
        PoolGrant g = {.inst = NULL};

        a2 = a1;
        a2.version = 2;
        mkpool(t, &cfg);
        x = acq(t, &a1, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        pool_release(t->p, x, true);

        /* Even without a pool_set_function, v1's idle instance does not serve v2. */
        assert_int_equal(pool_acquire(t->p, &a2, NULL, &g), 0);
        assert_int_equal(g.tier, POOL_TIER_COLD);
        assert_ptr_not_equal(g.inst, x);
        assert_int_equal(g.inst->version, 2);
        assert_int_equal(state_of(t, id_of(x)), POOL_INSTANCE_IDLE);
        pool_release(t->p, g.inst, true);
        /* Nor v2's a v1 request. */
        assert_ptr_equal(acq(t, &a1, POOL_TIER_WARM, POOL_CAUSE_NONE), x);
        pool_release(t->p, x, true);
        finish(t);
}

/* ---- freezing ---- */

static void test_freeze_after_grace_and_thaw(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolInstance *x, *y;
        size_t mark;
        int xid;

        cfg.freeze_after = 2 * SEC;
        a.keep_alive = 10 * SEC;
        mkpool(t, &cfg);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        xid = id_of(x);
        pool_release(t->p, x, true);

        assert_int_equal(pool_tick(t->p), T0 + 2 * SEC);
        t->f.now = T0 + 2 * SEC - 1;
        assert_int_equal(pool_tick(t->p), T0 + 2 * SEC);
        assert_int_equal(n_ev(&t->f, EV_FREEZE, 0), 0);
        assert_int_equal(stats(t).frozen, 0);

        t->f.now = T0 + 2 * SEC;
        assert_int_equal(pool_tick(t->p), T0 + 10 * SEC);
        assert_int_equal(n_ev(&t->f, EV_FREEZE, xid), 1);
        assert_true(x->frozen);
        assert_int_equal(stats(t).frozen, 1);
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_IDLE], 1);

        /* Frozen once, not again on every tick. */
        t->f.now = T0 + 3 * SEC;
        assert_int_equal(pool_tick(t->p), T0 + 10 * SEC);
        assert_int_equal(n_ev(&t->f, EV_FREEZE, 0), 1);

        /* Acquiring thaws it before handing it over. */
        mark = t->f.n_ev;
        y = acq(t, &a, POOL_TIER_WARM, POOL_CAUSE_NONE);
        assert_ptr_equal(y, x);
        assert_int_equal(n_ev_since(&t->f, mark, EV_THAW, xid), 1);
        assert_int_equal(t->f.ev[mark].kind, EV_THAW);
        assert_int_equal(t->f.ev[mark].state, POOL_INSTANCE_IDLE);
        assert_int_equal(stats(t).frozen, 0);

        /* Released again: a fresh grace period. */
        pool_release(t->p, y, true);
        assert_false(y->frozen);
        assert_int_equal(pool_tick(t->p), T0 + 5 * SEC);
        t->f.now = T0 + 5 * SEC;
        assert_int_equal(pool_tick(t->p), T0 + 13 * SEC);
        assert_int_equal(n_ev(&t->f, EV_FREEZE, xid), 2);
        finish(t);
}

static void test_freeze_failure_destroys(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolInstance *x, *y;
        size_t mark;
        int xid;

        cfg.freeze_after = SEC;
        mkpool(t, &cfg);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        xid = id_of(x);
        pool_release(t->p, x, true);
        t->f.fail_freezes = 1;
        t->f.now += SEC;
        (void)pool_tick(t->p);
        assert_int_equal(n_ev(&t->f, EV_FREEZE, xid), 1);
        assert_int_equal(n_ev(&t->f, EV_DESTROY, xid), 1);
        assert_int_equal(state_of(t, xid), -1);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_POOL_EMPTY);
        xid = id_of(x);
        pool_release(t->p, x, true);

        /* Frozen fine, but the thaw fails: destroyed, and the call starts cold instead. */
        t->f.now += SEC;
        (void)pool_tick(t->p);
        assert_true(x->frozen);
        t->f.fail_thaws = 1;
        mark = t->f.n_ev;
        y = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_POOL_EMPTY);
        assert_int_equal(n_ev_since(&t->f, mark, EV_THAW, xid), 1);
        assert_int_equal(n_ev_since(&t->f, mark, EV_DESTROY, xid), 1);
        assert_int_not_equal(id_of(y), xid);
        pool_release(t->p, y, true);
        finish(t);
}

/* ---- memory budget ---- */

static void test_eviction_lru_never_busy(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 100 * MB), b = fn_make("b", 100 * MB),
                     c = fn_make("c", 100 * MB), d = fn_make("d", 100 * MB),
                     e = fn_make("e", 100 * MB), f = fn_make("f", 100 * MB),
                     g = fn_make("g", 100 * MB);
        PoolInstance *xa, *xb, *xc, *xd, *xe, *xg;
        int w1, w2, w3, aid, bid, cid, did;
        const Ev *ev;
        size_t mark;

        cfg.memory_budget = 300 * MB;
        mkpool(t, &cfg);
        /* b is busy since the start: the least recently used, but never a victim. */
        xb = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        bid = id_of(xb);
        t->f.now = T0 + 1;
        xa = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        aid = id_of(xa);
        pool_release(t->p, xa, true);
        t->f.now = T0 + 2;
        xc = acq(t, &c, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        cid = id_of(xc);
        pool_release(t->p, xc, true);
        /* a used again: now c (made after a) is the least recently used idle one. */
        t->f.now = T0 + 3;
        assert_ptr_equal(acq(t, &a, POOL_TIER_WARM, POOL_CAUSE_NONE), xa);
        pool_release(t->p, xa, true);
        assert_int_equal(stats(t).memory_reserved, 300 * MB);

        t->f.now = T0 + 4;
        mark = t->f.n_ev;
        xd = acq(t, &d, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        did = id_of(xd);
        assert_int_equal(n_ev_since(&t->f, mark, EV_DESTROY, 0), 1);
        assert_int_equal(n_ev_since(&t->f, mark, EV_DESTROY, cid), 1);
        assert_int_equal(state_of(t, aid), POOL_INSTANCE_IDLE);
        assert_int_equal(state_of(t, bid), POOL_INSTANCE_BUSY);
        assert_int_equal(stats(t).evictions[POOL_CAUSE_EVICTED], 1);
        assert_int_equal(stats(t).memory_reserved, 300 * MB);

        /* c's next call says why it was not warm. It evicts a, the only idle one left. */
        t->f.now = T0 + 5;
        mark = t->f.n_ev;
        xc = acq(t, &c, POOL_TIER_COLD, POOL_CAUSE_EVICTED);
        assert_int_equal(n_ev_since(&t->f, mark, EV_DESTROY, 0), 1);
        assert_int_equal(n_ev_since(&t->f, mark, EV_DESTROY, aid), 1);
        assert_int_equal(stats(t).evictions[POOL_CAUSE_EVICTED], 2);

        /* Everything is busy: nothing can be evicted, the request waits. */
        t->f.now = T0 + 6;
        mark = t->f.n_ev;
        acq_wait(t, &e, &w1);
        assert_int_equal(n_ev_since(&t->f, mark, EV_DESTROY, 0), 0);
        assert_int_equal(n_ev_since(&t->f, mark, EV_SPAWN_COLD, 0), 0);
        assert_int_equal(stats(t).queued, 1);
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_BUSY], 3);

        /* d's invocation failed: its memory frees, e is served. */
        pool_release(t->p, xd, false);
        assert_int_equal(n_ev(&t->f, EV_DESTROY, did), 1);
        ev = dequeued_of(&t->f, &w1);
        assert_int_equal(ev->error, 0);
        assert_non_null(ev->inst);
        assert_int_equal(ev->tier, POOL_TIER_COLD);
        assert_int_equal(ev->cause, POOL_CAUSE_FIRST_CALL);
        assert_string_equal(ev->inst->function, "e");
        assert_int_equal(ev->inst->state, POOL_INSTANCE_BUSY);
        xe = ev->inst;
        assert_int_equal(stats(t).queued, 0);

        /* Nothing frees in time: refused at the queue deadline. */
        acq_wait(t, &f, &w2);
        t->f.now += cfg.queue_timeout;
        (void)pool_tick(t->p);
        ev = dequeued_of(&t->f, &w2);
        assert_null(ev->inst);
        assert_int_equal(ev->error, -EAGAIN);
        assert_int_equal(stats(t).rejected, 1);

        /* b finishes healthy: it becomes idle, so it is the victim that lets g in. */
        acq_wait(t, &g, &w3);
        mark = t->f.n_ev;
        pool_release(t->p, xb, true);
        assert_int_equal(n_ev_since(&t->f, mark, EV_DESTROY, bid), 1);
        ev = dequeued_of(&t->f, &w3);
        assert_int_equal(ev->error, 0);
        assert_non_null(ev->inst);
        assert_string_equal(ev->inst->function, "g");
        xg = ev->inst;
        assert_int_equal(stats(t).memory_reserved, 300 * MB);

        pool_release(t->p, xc, true);
        pool_release(t->p, xe, true);
        pool_release(t->p, xg, true);
        finish(t);
}

/* ---- caps and the queue ---- */

static void test_max_concurrency_queue_fifo(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB), b = fn_make("b", 64 * MB);
        PoolInstance *x1, *x2, *y;
        int w1, w2;
        const Ev *ev;
        size_t mark;

        a.max_concurrency = 2;
        mkpool(t, &cfg);
        x1 = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        x2 = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_ALL_BUSY);
        mark = t->f.n_ev;
        acq_wait(t, &a, &w1);
        acq_wait(t, &a, &w2);
        assert_int_equal(n_ev_since(&t->f, mark, EV_SPAWN_COLD, 0), 0);
        assert_int_equal(stats(t).queued, 2);

        /* a's cap does not hold up b. */
        y = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);

        /* One slot frees: the first waiter gets it, the second keeps waiting. */
        pool_release(t->p, x1, true);
        ev = dequeued_of(&t->f, &w1);
        assert_int_equal(ev->error, 0);
        assert_ptr_equal(ev->inst, x1);
        assert_int_equal(ev->tier, POOL_TIER_WARM);
        assert_int_equal(ev->cause, POOL_CAUSE_NONE);
        assert_int_equal(x1->state, POOL_INSTANCE_BUSY);
        assert_int_equal(n_dequeued(&t->f, &w2), 0);
        assert_int_equal(stats(t).queued, 1);

        /* The other fails: destroyed, w2 gets a fresh one (x1 still runs). */
        pool_release(t->p, x2, false);
        ev = dequeued_of(&t->f, &w2);
        assert_int_equal(ev->error, 0);
        assert_non_null(ev->inst);
        assert_ptr_not_equal(ev->inst, x1);
        assert_int_equal(ev->tier, POOL_TIER_COLD);
        assert_int_equal(ev->cause, POOL_CAUSE_ALL_BUSY);
        assert_int_equal(stats(t).queued, 0);
        assert_int_equal(stats(t).rejected, 0);

        pool_release(t->p, ev->inst, true);
        pool_release(t->p, x1, true);
        pool_release(t->p, y, true);
        assert_int_equal(n_dequeued(&t->f, &w1), 1);
        assert_int_equal(n_dequeued(&t->f, &w2), 1);
        finish(t);
}

static void test_blocked_waiter_does_not_hold_up_others(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB), b = fn_make("b", 64 * MB);
        PoolInstance *x, *b1, *b2;
        int wa, wb;
        const Ev *ev;

        cfg.max_busy = 3;
        a.max_concurrency = 1;
        mkpool(t, &cfg);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        acq_wait(t, &a, &wa); /* a's own cap */
        b1 = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        b2 = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_ALL_BUSY);
        acq_wait(t, &b, &wb); /* the host-wide cap */

        /* A slot frees: wa (first in line) is still over a's cap, wb behind it is served. */
        pool_release(t->p, b1, true);
        assert_int_equal(n_dequeued(&t->f, &wa), 0);
        ev = dequeued_of(&t->f, &wb);
        assert_ptr_equal(ev->inst, b1);
        assert_int_equal(ev->tier, POOL_TIER_WARM);

        pool_release(t->p, x, true);
        ev = dequeued_of(&t->f, &wa);
        assert_ptr_equal(ev->inst, x);
        assert_int_equal(ev->tier, POOL_TIER_WARM);

        pool_release(t->p, x, true);
        pool_release(t->p, b1, true);
        pool_release(t->p, b2, true);
        finish(t);
}

static void test_max_busy_host_wide(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB), b = fn_make("b", 64 * MB),
                     c = fn_make("c", 64 * MB);
        PoolInstance *xa, *xb;
        int w;
        const Ev *ev;
        size_t mark;

        cfg.max_busy = 2;
        mkpool(t, &cfg);
        xa = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        xb = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        mark = t->f.n_ev;
        acq_wait(t, &c, &w);
        assert_int_equal(n_ev_since(&t->f, mark, EV_SPAWN_COLD, 0), 0);
        assert_int_equal(stats(t).queued, 1);

        pool_release(t->p, xb, false);
        ev = dequeued_of(&t->f, &w);
        assert_int_equal(ev->error, 0);
        assert_int_equal(ev->tier, POOL_TIER_COLD);
        assert_int_equal(ev->cause, POOL_CAUSE_FIRST_CALL);
        assert_string_equal(ev->inst->function, "c");
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_BUSY], 2);
        pool_release(t->p, ev->inst, true);
        pool_release(t->p, xa, true);
        finish(t);
}

static void test_queue_full_refused_now(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolInstance *x;
        PoolGrant g = {.inst = NULL};
        int w1, w2, w3;

        cfg.queue_max = 2;
        a.max_concurrency = 1;
        mkpool(t, &cfg);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        acq_wait(t, &a, &w1);
        acq_wait(t, &a, &w2);
        assert_int_equal(pool_acquire(t->p, &a, &w3, &g), -EAGAIN);
        assert_null(g.inst);
        assert_int_equal(stats(t).rejected, 1);
        assert_int_equal(stats(t).queued, 2);

        /* w3 was answered already: it is never dequeued later. */
        pool_release(t->p, x, true);
        assert_ptr_equal(dequeued_of(&t->f, &w1)->inst, x);
        pool_release(t->p, x, true);
        assert_ptr_equal(dequeued_of(&t->f, &w2)->inst, x);
        t->f.now += 2 * cfg.queue_timeout;
        (void)pool_tick(t->p);
        assert_int_equal(n_dequeued(&t->f, &w3), 0);
        assert_int_equal(stats(t).rejected, 1);
        pool_release(t->p, x, true);
        finish(t);
}

static void test_queue_timeout_at_deadline(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolInstance *x;
        const Ev *ev;
        int w;

        cfg.queue_timeout = 5 * SEC;
        a.max_concurrency = 1;
        mkpool(t, &cfg);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        t->f.now = T0 + SEC;
        acq_wait(t, &a, &w);
        assert_int_equal(pool_tick(t->p), T0 + 6 * SEC);

        t->f.now = T0 + 6 * SEC - 1;
        assert_int_equal(pool_tick(t->p), T0 + 6 * SEC);
        assert_int_equal(n_dequeued(&t->f, &w), 0);
        assert_int_equal(stats(t).queued, 1);

        t->f.now = T0 + 6 * SEC;
        assert_int_equal(pool_tick(t->p), USEC_INFINITY);
        ev = dequeued_of(&t->f, &w);
        assert_null(ev->inst);
        assert_int_equal(ev->error, -EAGAIN);
        assert_int_equal(stats(t).rejected, 1);
        assert_int_equal(stats(t).queued, 0);

        /* Capacity that frees afterwards does not answer it twice. */
        pool_release(t->p, x, true);
        assert_int_equal(n_dequeued(&t->f, &w), 1);
        assert_int_equal(state_of(t, id_of(x)), POOL_INSTANCE_IDLE);
        finish(t);
}

static void test_cancel_wait(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolInstance *x;
        int w1, w2, other;

        a.max_concurrency = 1;
        mkpool(t, &cfg);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        acq_wait(t, &a, &w1);
        acq_wait(t, &a, &w2);
        /* The client went away. */
        pool_cancel_wait(t->p, &w1);
        pool_cancel_wait(t->p, &other); /* unknown: no effect */
        assert_int_equal(stats(t).queued, 1);

        pool_release(t->p, x, true);
        assert_int_equal(n_dequeued(&t->f, &w1), 0);
        assert_ptr_equal(dequeued_of(&t->f, &w2)->inst, x);
        t->f.now += 2 * cfg.queue_timeout;
        (void)pool_tick(t->p);
        assert_int_equal(n_dequeued(&t->f, &w1), 0);
        assert_int_equal(stats(t).rejected, 0);
        pool_release(t->p, x, true);
        finish(t);
}

static void test_spawn_failure(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolGrant g = {.inst = NULL};
        PoolInstance *x;
        const Ev *ev;
        int w;

        a.max_concurrency = 1;
        mkpool(t, &cfg);
        /* No sandbox can be made: 503 now. */
        t->f.fail_spawns = 1;
        assert_int_equal(pool_acquire(t->p, &a, NULL, &g), -EIO);
        assert_null(g.inst);
        assert_int_equal(n_instances(t), 0);
        assert_int_equal(stats(t).hits[POOL_TIER_COLD], 0);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);

        /* Nor for a waiter whose turn came: it is answered with -EIO. */
        acq_wait(t, &a, &w);
        t->f.fail_spawns = 1;
        pool_release(t->p, x, false);
        ev = dequeued_of(&t->f, &w);
        assert_null(ev->inst);
        assert_int_equal(ev->error, -EIO);
        assert_int_equal(stats(t).queued, 0);
        assert_int_equal(n_instances(t), 0);
        finish(t);
}

/* ---- prewarming ---- */

static void test_prewarm_one_spawn_per_tick(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolInstance *x;

        cfg.prewarm_target = 3;
        mkpool(t, &cfg);
        /* More is due: the tick asks to run again at once. */
        assert_int_equal(pool_tick(t->p), T0);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_CELL, 0), 1);
        assert_int_equal(pool_tick(t->p), T0);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_CELL, 0), 2);
        assert_int_equal(pool_tick(t->p), USEC_INFINITY);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_CELL, 0), 3);
        /* Starting cells count toward the target. */
        assert_int_equal(pool_tick(t->p), USEC_INFINITY);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_CELL, 0), 3);
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_STARTING], 3);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 0);

        for (int id = 1; id <= 3; id++)
                pool_cell_ready(t->p, inst(t, id));
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_CELL], 3);
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_STARTING], 0);
        /* Readying twice changes nothing. */
        pool_cell_ready(t->p, inst(t, 1));
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_CELL], 3);

        x = acq(t, &a, POOL_TIER_PREWARMED, POOL_CAUSE_FIRST_CALL);
        assert_int_equal(pool_tick(t->p), USEC_INFINITY);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_CELL, 0), 4);
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_CELL], 2);
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_STARTING], 1);
        pool_release(t->p, x, true);
        finish(t);
}

static void test_prewarm_spawn_failure_backs_off(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        usec_t retry;

        cfg.prewarm_target = 1;
        mkpool(t, &cfg);
        t->f.fail_spawns = 1;
        retry = pool_tick(t->p);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_FAILED, 0), 1);
        assert_true(retry > T0);
        assert_true(retry != USEC_INFINITY);

        /* Not hammering a failing sandbox layer: no attempt before the retry time. */
        t->f.now = retry - 1;
        assert_int_equal(pool_tick(t->p), retry);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_FAILED, 0), 1);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_CELL, 0), 0);

        t->f.now = retry;
        assert_int_equal(pool_tick(t->p), USEC_INFINITY);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_CELL, 0), 1);
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_STARTING], 1);
        finish(t);
}

static void test_lost_cell_replaced(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        int c1, c2, c3;

        cfg.prewarm_target = 1;
        mkpool(t, &cfg);
        (void)pool_tick(t->p);
        c1 = last_spawned(t);
        pool_cell_ready(t->p, inst(t, c1));
        pool_instance_lost(t->p, inst(t, c1));
        assert_int_equal(n_ev(&t->f, EV_DESTROY, c1), 1);
        assert_int_equal(n_instances(t), 0);

        assert_int_equal(pool_tick(t->p), USEC_INFINITY);
        c2 = last_spawned(t);
        assert_int_not_equal(c2, c1);
        assert_int_equal(state_of(t, c2), POOL_INSTANCE_STARTING);

        /* Dies before its agent was ready: replaced as well. */
        pool_instance_lost(t->p, inst(t, c2));
        assert_int_equal(n_ev(&t->f, EV_DESTROY, c2), 1);
        (void)pool_tick(t->p);
        c3 = last_spawned(t);
        assert_int_not_equal(c3, c2);
        assert_int_equal(n_instances(t), 1);
        finish(t);
}

/* ---- min_instances ---- */

static void test_min_instances(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolInstance *x1, *x2, *x3, *u;
        int id1, id2, id3;
        size_t mark;

        a.min_instances = 2;
        mkpool(t, &cfg);
        assert_int_equal(pool_set_function(t->p, &a), 0);
        (void)pool_tick(t->p);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 1);
        id1 = last_spawned(t);
        assert_string_equal(t->f.ev[t->f.n_ev - 1].fn, "a");
        (void)pool_tick(t->p);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 2);
        id2 = last_spawned(t);
        (void)pool_tick(t->p);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 2);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_CELL, 0), 0);

        /* Busy while they initialise; made for a, not requests. */
        x1 = inst(t, id1);
        x2 = inst(t, id2);
        assert_int_equal(x1->state, POOL_INSTANCE_BUSY);
        assert_string_equal(x1->function, "a");
        assert_int_equal(x1->memory_bytes, 64 * MB);
        assert_int_equal(x2->state, POOL_INSTANCE_BUSY);
        assert_int_equal(stats(t).hits[POOL_TIER_COLD], 0);
        pool_release(t->p, x1, true);
        pool_release(t->p, x2, true);
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_IDLE], 2);

        /* They serve warm. */
        u = acq(t, &a, POOL_TIER_WARM, POOL_CAUSE_NONE);
        assert_true(u == x1 || u == x2);
        pool_release(t->p, u, true);

        /* One dies: a later tick replaces it, after a back-off (no respawn loop when, say,
         * its init keeps failing). */
        pool_instance_lost(t->p, x1);
        assert_int_equal(n_ev(&t->f, EV_DESTROY, id1), 1);
        assert_int_equal(pool_tick(t->p), t->f.now + SEC);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 2);
        t->f.now += SEC;
        (void)pool_tick(t->p);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 3);
        id3 = last_spawned(t);
        x3 = inst(t, id3);
        assert_int_equal(x3->state, POOL_INSTANCE_BUSY);
        pool_release(t->p, x3, true);
        (void)pool_tick(t->p);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 3);

        /* Deleted: idle ones go now, the busy one when its call ends, none is made again. */
        u = acq(t, &a, POOL_TIER_WARM, POOL_CAUSE_NONE);
        mark = t->f.n_ev;
        pool_remove_function(t->p, "a");
        assert_int_equal(n_ev_since(&t->f, mark, EV_DESTROY, 0), 1);
        assert_int_equal(state_of(t, id_of(u)), POOL_INSTANCE_BUSY);
        (void)pool_tick(t->p);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 3);
        pool_release(t->p, u, true);
        assert_int_equal(n_instances(t), 0);
        (void)pool_tick(t->p);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 3);
        finish(t);
}

static void test_lost_busy_frees_capacity(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB), b = fn_make("b", 64 * MB);
        const Ev *ev;
        int w, id;

        cfg.max_busy = 1;
        a.min_instances = 1;
        mkpool(t, &cfg);
        assert_int_equal(pool_set_function(t->p, &a), 0);
        (void)pool_tick(t->p);
        id = last_spawned(t);
        assert_int_equal(state_of(t, id), POOL_INSTANCE_BUSY);
        /* The initialising instance takes the only slot. */
        acq_wait(t, &b, &w);
        /* It dies while initialising: the slot is free again, b is served. */
        pool_instance_lost(t->p, inst(t, id));
        assert_int_equal(n_ev(&t->f, EV_DESTROY, id), 1);
        ev = dequeued_of(&t->f, &w);
        assert_int_equal(ev->error, 0);
        assert_non_null(ev->inst);
        assert_string_equal(ev->inst->function, "b");
        pool_release(t->p, ev->inst, true);
        finish(t);
}

static void test_deleted_then_recreated(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolInstance *x, *y;
        int n, xid;

        mkpool(t, &cfg);
        assert_int_equal(pool_set_function(t->p, &a), 0);
        x = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        pool_remove_function(t->p, "a");
        assert_true(x->retired);

        /* Created again under the same name (same version number): the old function's call
         * still running neither counts as an instance of it nor is kept for it. */
        a.min_instances = 1;
        assert_int_equal(pool_set_function(t->p, &a), 0);
        n = (int)n_ev(&t->f, EV_SPAWN_COLD, 0);
        (void)pool_tick(t->p);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), n + 1);
        y = inst(t, last_spawned(t));
        assert_ptr_not_equal(y, x);
        xid = id_of(x);
        pool_release(t->p, x, true);
        assert_int_equal(state_of(t, xid), -1);
        pool_release(t->p, y, true);
        assert_ptr_equal(acq(t, &a, POOL_TIER_WARM, POOL_CAUSE_NONE), y);
        pool_release(t->p, y, true);
        finish(t);
}

/* ---- stats and teardown ---- */

static void test_stats(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 100 * MB), b = fn_make("b", 50 * MB);
        PoolInstance *xa, *b1, *b2;
        int cell1, cell2, w;
        PoolStats s;

        cfg.prewarm_target = 2;
        cfg.freeze_after = SEC;
        a.max_concurrency = 1;
        mkpool(t, &cfg);
        assert_int_equal(pool_config(t->p)->prewarm_target, 2);
        assert_int_equal(pool_config(t->p)->freeze_after, SEC);

        (void)pool_tick(t->p);
        cell1 = last_spawned(t);
        (void)pool_tick(t->p);
        cell2 = last_spawned(t);
        pool_cell_ready(t->p, inst(t, cell1));
        xa = acq(t, &a, POOL_TIER_PREWARMED, POOL_CAUSE_FIRST_CALL);
        b1 = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        b2 = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_ALL_BUSY);
        pool_release(t->p, b1, true);
        t->f.now = T0 + SEC / 2;
        pool_release(t->p, b2, true);
        /* b1 idle for its grace, b2 not yet; a third cell starts to refill the target. */
        t->f.now = T0 + SEC;
        (void)pool_tick(t->p);
        pool_cell_ready(t->p, inst(t, cell2));
        acq_wait(t, &a, &w);

        s = stats(t);
        assert_int_equal(s.by_state[POOL_INSTANCE_STARTING], 1);
        assert_int_equal(s.by_state[POOL_INSTANCE_CELL], 1);
        assert_int_equal(s.by_state[POOL_INSTANCE_BUSY], 1);
        assert_int_equal(s.by_state[POOL_INSTANCE_IDLE], 2);
        assert_int_equal(s.frozen, 1);
        assert_true(b1->frozen);
        assert_false(b2->frozen);
        assert_int_equal(s.queued, 1);
        assert_int_equal(s.memory_reserved, 200 * MB);
        assert_int_equal(s.hits[POOL_TIER_WARM], 0);
        assert_int_equal(s.hits[POOL_TIER_PREWARMED], 1);
        assert_int_equal(s.hits[POOL_TIER_COLD], 2);
        assert_int_equal(s.evictions[POOL_CAUSE_EXPIRED], 0);
        assert_int_equal(s.evictions[POOL_CAUSE_EVICTED], 0);
        assert_int_equal(s.evictions[POOL_CAUSE_CODE_CHANGED], 0);
        assert_int_equal(s.rejected, 0);

        /* A minute on: both b instances expired, the waiter timed out. */
        t->f.now = T0 + SEC + KEEP;
        (void)pool_tick(t->p);
        s = stats(t);
        assert_int_equal(s.by_state[POOL_INSTANCE_IDLE], 0);
        assert_int_equal(s.frozen, 0);
        assert_int_equal(s.queued, 0);
        assert_int_equal(s.rejected, 1);
        assert_int_equal(s.evictions[POOL_CAUSE_EXPIRED], 2);
        assert_int_equal(s.memory_reserved, 100 * MB);
        assert_int_equal(dequeued_of(&t->f, &w)->error, -EAGAIN);

        pool_release(t->p, xa, true);
        s = stats(t);
        assert_int_equal(s.by_state[POOL_INSTANCE_BUSY], 0);
        assert_int_equal(s.by_state[POOL_INSTANCE_IDLE], 1);
        assert_int_equal(s.memory_reserved, 100 * MB);
        finish(t);
}

static void test_free_destroys_everything(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB), b = fn_make("b", 64 * MB);
        PoolInstance *xb;
        const Ev *ev;
        int w1, w2;
        size_t mark;

        cfg.prewarm_target = 1;
        cfg.freeze_after = SEC;
        a.max_concurrency = 1;
        mkpool(t, &cfg);
        (void)pool_tick(t->p); /* a starting cell */
        (void)acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        xb = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        pool_release(t->p, xb, true);
        t->f.now += SEC;
        (void)pool_tick(t->p); /* b frozen */
        assert_true(xb->frozen);
        acq_wait(t, &a, &w1);
        acq_wait(t, &a, &w2);
        assert_int_equal(t->f.live, 3);

        mark = t->f.n_ev;
        finish(t);
        assert_int_equal(n_ev_since(&t->f, mark, EV_DESTROY, 0), 3);
        ev = dequeued_of(&t->f, &w1);
        assert_null(ev->inst);
        assert_int_equal(ev->error, -ECANCELED);
        assert_int_equal(dequeued_of(&t->f, &w2)->error, -ECANCELED);
        /* Refused before their instances went. */
        assert_true(ev < &t->f.ev[t->f.n_ev - 3]);
}

/* ---- regressions: bugs these tests found in pool.c, now fixed ---- */

/* Regression (was: pool.c try_grant, lines 274-279): the host-wide max_busy cap is checked only
 * after a warm instance has been looked for, so a warm hit is granted over the cap. With max_busy
 * 1, one call of b running and an idle warm instance of a, a call of a gets 0 (warm) and 2
 * invocations run at once; expected 1 (queued until b's call ends), as for any other request over
 * the cap. The same holds for max_concurrency whenever a function has more idle instances than its
 * cap (min_instances > max_concurrency, or a cap lowered by a redeploy). A warm hit also jumps
 * ahead of requests already queued for the host-wide cap. */
static void test_bug_max_busy_bypassed_by_warm(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB), b = fn_make("b", 64 * MB);
        PoolInstance *xa, *xb;
        PoolGrant g = {.inst = NULL};
        int w;

        cfg.max_busy = 1;
        mkpool(t, &cfg);
        xa = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        pool_release(t->p, xa, true);
        xb = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        assert_int_equal(pool_acquire(t->p, &a, &w, &g), 1);
        assert_int_equal(stats(t).by_state[POOL_INSTANCE_BUSY], 1);
        pool_release(t->p, xb, true);
        assert_ptr_equal(dequeued_of(&t->f, &w)->inst, xa);
        pool_release(t->p, xa, true);
        finish(t);
}

/* Regression (was: pool.c tick_spawn, lines 520-547): when a function needs more than one instance
 * to reach min_instances, the tick spawns one and returns without asking to run again: `*next = t`
 * is only set when a *later* function or the cell loop finds more to do. With min_instances 2,
 * prewarm_target 0 and nothing else scheduled, the first tick returns USEC_INFINITY; expected
 * the current time (as for stem cells), else the second instance waits for an unrelated event.
 * Fix: after spawning, if have + 1 < min_instances set *next = t (or loop back). */
static void test_bug_min_instances_tick_reschedules(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);

        a.min_instances = 2;
        mkpool(t, &cfg);
        assert_int_equal(pool_set_function(t->p, &a), 0);
        assert_int_equal(pool_tick(t->p), T0);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 1);
        assert_int_equal(pool_tick(t->p), USEC_INFINITY);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 2);
        finish(t);
}

/* Regression (was: pool.c budget_make_room, lines 192-203): it destroys idle instances one by one
 * and only then finds that even all of them cannot make room, so the request waits anyway and the
 * evicted functions lost their warm instances for nothing. Budget 300 MB, a (200 MB) busy, b
 * (50 MB) idle, a call of c (200 MB): expected queued with b's instance kept (evicting 50 MB
 * cannot fit 200 MB); actual: queued, and b's instance destroyed (evictions[EVICTED] 1, b's next
 * call cold "evicted"). Every blocked waiter retries this on each release, and tick_spawn for
 * min_instances does the same. Fix: first check that reserved - (idle total) + need fits. */
static void test_bug_futile_eviction(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 200 * MB), b = fn_make("b", 50 * MB),
                     c = fn_make("c", 200 * MB);
        PoolInstance *xa, *xb;
        int w;

        cfg.memory_budget = 300 * MB;
        mkpool(t, &cfg);
        xa = acq(t, &a, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        xb = acq(t, &b, POOL_TIER_COLD, POOL_CAUSE_FIRST_CALL);
        pool_release(t->p, xb, true);
        acq_wait(t, &c, &w);
        assert_int_equal(state_of(t, id_of(xb)), POOL_INSTANCE_IDLE);
        assert_int_equal(stats(t).evictions[POOL_CAUSE_EVICTED], 0);
        assert_ptr_equal(acq(t, &b, POOL_TIER_WARM, POOL_CAUSE_NONE), xb);
        pool_release(t->p, xb, true);
        pool_release(t->p, xa, true);
        finish(t);
}

/* Regression (was: pool.c tick_idle, lines 491-494, and pool_release, line 393): instances that
 * make up a function's min_instances ("kept warm at all times", pool.h) are reaped like any other
 * after keep_alive: the tick destroys the idle one (evictions[EXPIRED]) and spawns a replacement
 * that is BUSY initialising, so every keep_alive period the function has no warm instance and pays
 * a cold start; with keep_alive 0 it is destroyed on every release and respawned on every tick.
 * min_instances 1, keep_alive 10 s: expected the idle instance still there at +10 s with no
 * destroy/spawn; actual destroyed and a new one spawned. Fix: skip expiry (and destroy on
 * release) while the function has no more than min_instances instances of its version. */
static void test_bug_min_instances_expire(void **state)
{
        T *t = *state;
        PoolConfig cfg = cfg_default();
        PoolFunction a = fn_make("a", 64 * MB);
        PoolInstance *x;
        int xid;

        a.min_instances = 1;
        a.keep_alive = 10 * SEC;
        mkpool(t, &cfg);
        assert_int_equal(pool_set_function(t->p, &a), 0);
        (void)pool_tick(t->p);
        xid = last_spawned(t);
        x = inst(t, xid);
        pool_release(t->p, x, true);
        t->f.now = T0 + 10 * SEC;
        (void)pool_tick(t->p);
        assert_int_equal(n_ev(&t->f, EV_DESTROY, xid), 0);
        assert_int_equal(state_of(t, xid), POOL_INSTANCE_IDLE);
        assert_int_equal(n_ev(&t->f, EV_SPAWN_COLD, 0), 1);
        assert_ptr_equal(acq(t, &a, POOL_TIER_WARM, POOL_CAUSE_NONE), x);
        pool_release(t->p, x, true);
        finish(t);
}

/* ---- main ---- */

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_names),
            cmocka_unit_test_setup_teardown(test_first_call_is_cold, setup, teardown),
            cmocka_unit_test_setup_teardown(test_prewarmed_then_warm, setup, teardown),
            cmocka_unit_test_setup_teardown(test_warm_prefers_most_recently_used, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cause_all_busy, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cause_expired_at_keep_alive_boundary, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_cause_code_changed, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cause_pool_empty, setup, teardown),
            cmocka_unit_test_setup_teardown(test_failed_instance_never_reused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_never_shared_across_functions, setup, teardown),
            cmocka_unit_test_setup_teardown(test_never_across_versions, setup, teardown),
            cmocka_unit_test_setup_teardown(test_freeze_after_grace_and_thaw, setup, teardown),
            cmocka_unit_test_setup_teardown(test_freeze_failure_destroys, setup, teardown),
            cmocka_unit_test_setup_teardown(test_eviction_lru_never_busy, setup, teardown),
            cmocka_unit_test_setup_teardown(test_max_concurrency_queue_fifo, setup, teardown),
            cmocka_unit_test_setup_teardown(test_blocked_waiter_does_not_hold_up_others, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_max_busy_host_wide, setup, teardown),
            cmocka_unit_test_setup_teardown(test_queue_full_refused_now, setup, teardown),
            cmocka_unit_test_setup_teardown(test_queue_timeout_at_deadline, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cancel_wait, setup, teardown),
            cmocka_unit_test_setup_teardown(test_spawn_failure, setup, teardown),
            cmocka_unit_test_setup_teardown(test_prewarm_one_spawn_per_tick, setup, teardown),
            cmocka_unit_test_setup_teardown(test_prewarm_spawn_failure_backs_off, setup, teardown),
            cmocka_unit_test_setup_teardown(test_lost_cell_replaced, setup, teardown),
            cmocka_unit_test_setup_teardown(test_min_instances, setup, teardown),
            cmocka_unit_test_setup_teardown(test_lost_busy_frees_capacity, setup, teardown),
            cmocka_unit_test_setup_teardown(test_deleted_then_recreated, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
            cmocka_unit_test_setup_teardown(test_free_destroys_everything, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bug_max_busy_bypassed_by_warm, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bug_min_instances_tick_reschedules, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_bug_futile_eviction, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bug_min_instances_expire, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
