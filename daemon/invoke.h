/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "loop.h"
#include "macro.h"
#include "registry.h"
#include "pool.h"
#include "sandbox.h"

/* Invocations: a sandbox per call, its agent channel, deadlines, and how each call ended.
 * Runs on the daemon's loop; nothing here blocks on a function. */

#define INVOKE_PAYLOAD_MAX (6u * 1024u * 1024u) /* request and response bodies */
#define INVOKE_LOG_MAX (64u * 1024u)            /* output kept per invocation */
#define INVOKE_INIT_TIMEOUT_USEC (10u * USEC_PER_SEC)

typedef enum InvokeStart {
        INVOKE_START_NONE, /* never reached a sandbox (throttled, or none could be made) */
        INVOKE_START_COLD,
        INVOKE_START_PREWARMED,
        INVOKE_START_WARM,
        _INVOKE_START_MAX,
        _INVOKE_START_INVALID = -EINVAL,
} InvokeStart;
const char *invoke_start_to_string(InvokeStart s);

typedef enum InvokeOutcome {
        INVOKE_OK,
        INVOKE_FUNCTION_ERROR, /* the handler reported an error: 502 FunctionError */
        INVOKE_INIT_ERROR,     /* loading the function failed: 502 InitError */
        INVOKE_CRASHED,        /* the sandbox died: 502 Crashed */
        INVOKE_OUT_OF_MEMORY,  /* the memory limit killed it: 502 OutOfMemory */
        INVOKE_TIMEOUT,        /* past timeout_ms: 504 Timeout */
        INVOKE_PLATFORM_ERROR, /* no sandbox could be made: 503 */
        INVOKE_THROTTLED,      /* over a concurrency cap or the memory budget: 429 */
        _INVOKE_OUTCOME_MAX,
        _INVOKE_OUTCOME_INVALID = -EINVAL,
} InvokeOutcome;
const char *invoke_outcome_to_string(InvokeOutcome o);

#define INVOKE_PHASES_MAX 8

typedef struct InvokePhase {
        const char *name; /* static: queue, sandbox, agent, specialize, load, run */
        usec_t usec;
} InvokePhase;

typedef struct InvokeResult {
        char id[37]; /* UUID */
        char function[65];
        InvokeOutcome outcome;
        InvokeStart start;
        const char *start_cause; /* why not warm ("first-call", ...), NULL when warm */
        void *body;              /* OK: the response; may be stolen by the callback (set to NULL) */
        size_t body_len;
        char error_type[64];
        char error_message[1024];
        InvokePhase phases[INVOKE_PHASES_MAX];
        size_t n_phases;
        usec_t total_usec;
        usec_t run_usec;
        uint64_t billed_ms;
        uint64_t memory_peak_bytes;
        char *log; /* captured stdout+stderr (NUL-terminated), may be NULL */
        size_t log_len;
        bool log_truncated;
} InvokeResult;

typedef struct Invoker Invoker;
typedef struct Invocation Invocation;

/* Called once per submitted invocation, on the loop. res is valid only during the call. */
typedef void (*invoke_done_cb)(const InvokeResult *res, void *userdata);

typedef struct InvokerConfig {
        uint64_t pids_max;     /* per sandbox */
        uint64_t tmp_bytes;    /* /tmp size per sandbox */
        uint64_t nofile;       /* RLIMIT_NOFILE per sandbox */
        size_t records_max;    /* finished invocations kept for GET /v1/invocations/{id} */
        const char *region;    /* AWS_REGION inside sandboxes */
        unsigned netns_target; /* pre-made network namespaces kept ready */
        PoolConfig pool;
} InvokerConfig;

int invoker_new(Loop *loop, SandboxHost *host, const InvokerConfig *cfg, Invoker **ret);
/* Kills every sandbox (callbacks of running invocations are not called) and frees. */
Invoker *invoker_free(Invoker *inv);
DEFINE_CLEANUP_FUNC(Invoker *, invoker_free);

/* The functions the invoker may run. set: after a deploy or at start-up (takes a copy; retires
 * other versions' instances); remove: after a delete. */
int invoker_set_function(Invoker *inv, const Function *fn);
void invoker_remove_function(Invoker *inv, const char *name);

/* Starts one invocation of the function set under `name` with the event payload (copied).
 * -ENOENT if there is no such function. cb runs later on the loop, or before this returns when
 * the invocation ends at once (throttled, or no sandbox could be made). On success *ret (may be
 * NULL) identifies the invocation until cb runs. */
int invoker_submit(Invoker *inv, const char *name, const void *payload, size_t len,
                   invoke_done_cb cb, void *userdata, Invocation **ret);
/* Drops the callback of an invocation whose client went away; a queued one is dropped, a
 * running one runs to its end. */
void invocation_detach(Invocation *i);

/* A finished invocation's record, or NULL if unknown or already dropped (oldest first). */
const InvokeResult *invoker_find_record(Invoker *inv, const char *id);
/* True if a live sandbox serves code with that digest (userdata: the Invoker), for the
 * registry's code collection. */
bool invoker_code_in_use(const char *sha, void *userdata);
/* The last `lines` log lines of a function's invocations newer than cursor `after` (0: all),
 * malloc'd; *ret_cursor is the newest entry's cursor. -ENOENT for an unknown function. */
int invoker_function_logs(Invoker *inv, const char *name, size_t lines, uint64_t after, char **ret,
                          uint64_t *ret_cursor);
/* The pool, for GET /v1/pool. */
const Pool *invoker_pool(const Invoker *inv);
/* GET /metrics in Prometheus text format (malloc'd), or NULL on OOM. */
char *invoker_metrics(const Invoker *inv);
