/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "macro.h"

/* Functions, versions, tokens, and the content-addressed code store (DESIGN.md decision 7).
 * State lives in STATE_DIR/fnbox.db (SQLite, WAL) and STATE_DIR/code/<sha256-hex>/ (immutable
 * extracted bundles). Knows no sandboxes and no HTTP. Main thread only; blocking (bounded). */

#define FUNCTION_ENV_MAX 64         /* variables per function */
#define FUNCTION_ENV_KEY_MAX 128    /* bytes per key */
#define FUNCTION_ENV_VALUE_MAX 4096 /* bytes per value */
#define FUNCTION_MEMORY_MIN_MB 64
#define FUNCTION_MEMORY_MAX_MB 10240
#define FUNCTION_TIMEOUT_MIN_MS 1
#define FUNCTION_TIMEOUT_MAX_MS 900000
#define FUNCTION_KEEP_ALIVE_DEFAULT_MS 600000 /* 10 minutes */
#define FUNCTION_KEEP_ALIVE_MAX_MS 86400000   /* a day */
#define FUNCTION_CONCURRENCY_MAX 1000         /* max_concurrency and min_instances */

typedef struct FunctionEnv {
        char *key;
        char *value;
} FunctionEnv;

/* What a client deploys. */
typedef struct FunctionSpec {
        char name[65];
        char runtime[16];  /* "native", "provided", "provided.al2", "provided.al2023", "python3"
                            * or "nodejs" (api-json.c checks the name) */
        char handler[256]; /* native: "FILE.so[:SYMBOL]"; provided: any _HANDLER; python3:
                            * "MODULE.FUNCTION"; nodejs: "FILE.EXPORT" */
        uint32_t memory_mb;
        uint32_t timeout_ms;
        uint32_t keep_alive_ms;   /* idle instances kept this long; 0: none kept */
        uint32_t max_concurrency; /* reserved-concurrency style cap; 0: host-wide cap only */
        uint32_t min_instances;   /* provisioned-concurrency style: kept warm at all times */
        FunctionEnv *env;         /* n_env entries, owned */
        size_t n_env;
} FunctionSpec;

/* A stored function: the spec plus what the registry assigned. */
typedef struct Function {
        FunctionSpec spec;
        char code_sha256[65]; /* hex */
        uint64_t code_size;   /* bytes of the bundle as uploaded */
        uint64_t version;     /* 1 on create, +1 on every update */
        usec_t created_usec;  /* CLOCK_REALTIME */
        usec_t updated_usec;
        char code_dir[4096]; /* absolute path of the extracted code */
} Function;

void function_spec_done(FunctionSpec *spec);
Function *function_free(Function *f);
DEFINE_CLEANUP_FUNC(Function *, function_free);
void function_list_free(Function **list, size_t n);

typedef struct Registry Registry;

/* Opens or creates state_dir (0700), the database and the code store; removes leftover staging
 * directories. */
int registry_open(const char *state_dir, Registry **ret, FnError *reterr);
Registry *registry_free(Registry *r);
DEFINE_CLEANUP_FUNC(Registry *, registry_free);

/* Creates or updates a function. bundle is the decoded zip/tar.gz. The bundle is extracted once
 * per sha256 into a staging dir and renamed into place; what the runtime will load must exist in
 * it as a regular file, not through a symlink (native: the handler's FILE.so; provided: an
 * executable "bootstrap" at the root; python3: MODULE.py or MODULE/__init__.py; nodejs: FILE.js,
 * .mjs or .cjs), checked again when the bundle is already stored. The row is written in one
 * transaction, so a function is always its old or its new version. On success *ret_created tells
 * create from update and *ret is the stored function (caller frees). Errors: -EINVAL (bad bundle
 * / handler's file missing, with reterr), -EIO, -ENOMEM. */
int registry_put(Registry *r, const FunctionSpec *spec, const void *bundle, size_t len,
                 bool *ret_created, Function **ret, FnError *reterr);
/* -ENOENT if there is no such function. */
int registry_get(Registry *r, const char *name, Function **ret);
/* All functions sorted by name. */
int registry_list(Registry *r, Function ***ret, size_t *ret_n);
/* -ENOENT if there is no such function. The code dir is removed when no function uses it. */
int registry_delete(Registry *r, const char *name);

/* Code directories are removed once no function refers to them and in_use (when set) says no
 * sandbox has them mounted. registry_collect_code() sweeps what could not go earlier. */
void registry_set_code_in_use(Registry *r, bool (*in_use)(const char *sha, void *userdata),
                              void *userdata);
int registry_collect_code(Registry *r);

/* Makes sure an admin token exists: if token_path is missing, creates a random 256-bit token,
 * writes it there (hex, mode 0600) and stores its SHA-256; if present, stores its hash. */
int registry_ensure_admin_token(Registry *r, const char *token_path, FnError *reterr);
/* 0 if token matches a stored token (SHA-256 compared in constant time), else -EACCES. */
int registry_check_token(Registry *r, const char *token);
