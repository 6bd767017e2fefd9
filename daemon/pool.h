/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* The warm pool and admission policy (DESIGN.md decision 5). Pure logic: the sandboxes are
 * behind PoolOps and the clock is injected, so this is unit-tested with fakes, without root.
 *
 * Tiers, in order: an idle warm instance of the same function version; else a prewarmed stem
 * cell (no code yet) taken over on the spot; else a cold start. An instance serves one version of
 * one function and is never reused after a failed invocation. One invocation at a time per
 * instance; concurrency scales out. A request over a concurrency cap or the memory budget waits
 * in a bounded FIFO queue for at most queue_timeout, then is refused (the API answers 429). */

typedef enum PoolTier {
        POOL_TIER_WARM,
        POOL_TIER_PREWARMED,
        POOL_TIER_COLD,
        _POOL_TIER_MAX,
        _POOL_TIER_INVALID = -EINVAL,
} PoolTier;
const char *pool_tier_to_string(PoolTier t);

/* Why a start was not warm. */
typedef enum PoolCause {
        POOL_CAUSE_NONE,         /* it was warm */
        POOL_CAUSE_FIRST_CALL,   /* no instance of this function since the daemon started */
        POOL_CAUSE_ALL_BUSY,     /* instances exist but every one is running */
        POOL_CAUSE_EXPIRED,      /* the last idle instance outlived its keep-alive */
        POOL_CAUSE_EVICTED,      /* the last idle instance was evicted for memory */
        POOL_CAUSE_CODE_CHANGED, /* a deploy retired the old version's instances */
        POOL_CAUSE_POOL_EMPTY,   /* none kept: keep_alive_ms 0, or the last one failed */
        _POOL_CAUSE_MAX,
        _POOL_CAUSE_INVALID = -EINVAL,
} PoolCause;
const char *pool_cause_to_string(PoolCause c);

typedef enum PoolInstanceState {
        POOL_INSTANCE_STARTING, /* a stem cell whose agent is not ready yet */
        POOL_INSTANCE_CELL,     /* a ready stem cell (prewarmed, no code) */
        POOL_INSTANCE_BUSY,     /* serving (or initialising for) its function */
        POOL_INSTANCE_IDLE,     /* warm, waiting for the next call; frozen after a grace */
        _POOL_INSTANCE_STATE_MAX,
        _POOL_INSTANCE_STATE_INVALID = -EINVAL,
} PoolInstanceState;
const char *pool_instance_state_to_string(PoolInstanceState s);

/* What the pool knows of a function. */
typedef struct PoolFunction {
        const char *name;
        uint64_t version;
        uint64_t memory_bytes;
        usec_t keep_alive;        /* 0: never kept warm */
        unsigned max_concurrency; /* 0: only the host-wide cap applies */
        unsigned min_instances;   /* kept warm at all times */
} PoolFunction;

/* The pool's part of an instance; the caller embeds it in its own instance struct. */
typedef struct PoolInstance {
        PoolInstanceState state;
        char function[65]; /* "" for a stem cell */
        uint64_t version;
        uint64_t memory_bytes; /* reserved for the budget (0 for cells) */
        usec_t keep_alive;
        usec_t created, last_used, idle_since;
        bool frozen;
        bool retired; /* destroy instead of keeping when released */
        unsigned invocations;
        struct PoolInstance *prev, *next;
} PoolInstance;

typedef struct PoolGrant {
        PoolTier tier;
        PoolCause cause;
        PoolInstance *inst;
} PoolGrant;

typedef struct PoolOps {
        usec_t (*now)(void *ctx);
        /* Creates and starts an instance: a stem cell when fn is NULL, else a cold instance of
         * fn. Returns NULL when none can be made. The pool fills in the PoolInstance part. */
        PoolInstance *(*spawn)(void *ctx, const PoolFunction *fn);
        /* Kills and frees an instance the pool has already unlinked. */
        void (*destroy)(void *ctx, PoolInstance *i);
        /* Freezes or thaws an idle instance; a failure makes the pool destroy it. */
        int (*freeze)(void *ctx, PoolInstance *i, bool frozen);
        /* A queued request's turn: g->inst is its instance, or NULL when its wait timed out
         * (-EAGAIN, answer 429) or no instance could be made (-EIO, answer 503). */
        void (*dequeued)(void *ctx, void *waiter, const PoolGrant *g, int error);
} PoolOps;

typedef struct PoolConfig {
        unsigned prewarm_target; /* stem cells kept ready */
        uint64_t memory_budget;  /* bytes reserved by warm and busy instances; 0: none */
        unsigned max_busy;       /* host-wide concurrency cap; 0: none */
        unsigned queue_max;      /* waiting requests, host-wide */
        usec_t queue_timeout;    /* longest wait before 429 */
        usec_t freeze_after;     /* idle grace before freezing */
} PoolConfig;

typedef struct PoolStats {
        unsigned by_state[_POOL_INSTANCE_STATE_MAX];
        unsigned frozen; /* idle and frozen (counted in by_state[IDLE] too) */
        unsigned queued;
        uint64_t memory_reserved;
        uint64_t hits[_POOL_TIER_MAX];
        uint64_t evictions[_POOL_CAUSE_MAX]; /* by reason: EXPIRED, EVICTED, CODE_CHANGED */
        uint64_t rejected;                   /* 429s */
} PoolStats;

typedef struct Pool Pool;

int pool_new(const PoolConfig *cfg, const PoolOps *ops, void *ctx, Pool **ret);
/* Destroys every instance (through ops->destroy) and refuses every waiter. */
Pool *pool_free(Pool *p);
DEFINE_CLEANUP_FUNC(Pool *, pool_free);

/* Finds an instance for one invocation of fn.
 * 0: granted now, *ret filled, the instance is BUSY (thawed, unlinked from idle).
 * 1: over a cap or the budget: queued; ops->dequeued(waiter) is called later, exactly once,
 *    unless pool_cancel_wait() comes first.
 * -EAGAIN: the queue is full: refuse now (429).
 * -EIO: no instance could be made (503). */
int pool_acquire(Pool *p, const PoolFunction *fn, void *waiter, PoolGrant *ret);
void pool_cancel_wait(Pool *p, void *waiter);

/* The invocation on i ended. reusable=false after a timeout, crash, OOM or protocol error:
 * then i is destroyed. Otherwise it is kept idle for its keep-alive (or destroyed if that is
 * 0 or the function changed). Waiters may be served from here. */
void pool_release(Pool *p, PoolInstance *i, bool reusable);
/* A stem cell's agent is ready: STARTING -> CELL. */
void pool_cell_ready(Pool *p, PoolInstance *i);
/* i died or failed outside an invocation (any state): it is unlinked and destroyed. */
void pool_instance_lost(Pool *p, PoolInstance *i);

/* A function was deployed (or found at start-up): instances of other versions are retired
 * (cause code-changed) and min_instances is remembered. */
int pool_set_function(Pool *p, const PoolFunction *fn);
/* A function was deleted: its instances go, its settings are forgotten. */
void pool_remove_function(Pool *p, const char *name);

/* Does what is due: freezes, expiries, queue timeouts, budget evictions, prewarming and
 * min_instances. Returns when it next needs to run (USEC_INFINITY: nothing scheduled). */
usec_t pool_tick(Pool *p);

void pool_get_stats(const Pool *p, PoolStats *ret);
/* Calls cb for each instance (for GET /v1/pool). */
void pool_foreach(const Pool *p, void (*cb)(const PoolInstance *i, void *userdata), void *userdata);
const PoolConfig *pool_config(const Pool *p);
