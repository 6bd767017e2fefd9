/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>

#include "error.h"
#include "registry.h"

/* JSON in and out of the native API (jansson). Pure functions, no HTTP, no I/O. */

/* Parses a deploy body for function `name` (already validated by the caller):
 * {"runtime":"native","handler":"echo.so","memory_mb":128,"timeout_ms":3000,
 *  "keep_alive_ms":600000,"max_concurrency":0,"min_instances":0,
 *  "env":{"K":"V"},"code":"BASE64 of a zip or tar.gz"}
 * runtime is "native", "provided" (or "provided.al2", "provided.al2023"), "python3" or "nodejs";
 * the handler's syntax depends on it (native "FILE.so[:SYMBOL]", provided 1-255 printable ASCII,
 * python3 "MODULE.FUNCTION", nodejs "FILE.EXPORT"). Strict: malformed JSON, a top level that is
 * not an object, unknown fields, wrong types, missing required fields (runtime, handler, code),
 * out-of-range numbers, bad runtime, bad handler syntax for the runtime, bad env keys
 * ([A-Za-z_][A-Za-z0-9_]*, not FNBOX_/AWS_/LAMBDA_ nor _HANDLER/_X_AMZN_TRACE_ID), too many or
 * too long env entries, and bad base64 all fail with -EINVAL and a message naming the field.
 * Defaults: memory_mb 128, timeout_ms 3000, keep_alive_ms 600000, max_concurrency and
 * min_instances 0, env {}. On success fills *spec (caller calls function_spec_done) and ret_code
 * and ret_code_len (decoded bundle, caller frees). */
int api_parse_function_spec(const char *name, const char *body, size_t len, FunctionSpec *spec,
                            void **ret_code, size_t *ret_code_len, FnError *reterr);

/* The description of a function as a malloc'd JSON object string:
 * {"name","runtime","handler","memory_mb","timeout_ms","env":{},"code_sha256","code_size",
 *  "version","created_at","updated_at"} (timestamps RFC 3339 UTC with milliseconds). */
char *api_function_to_json(const Function *f);
/* {"functions":[...]} of n functions. */
char *api_function_list_to_json(Function *const *list, size_t n);
/* {"error":{"type":type,"message":message}}. */
char *api_error_to_json(const char *type, const char *message);
