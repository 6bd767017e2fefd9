/* SPDX-License-Identifier: Apache-2.0 */
/* fnbox native functions: the only header a function author needs.
 *
 * A native function is a shared object loaded by fnbox-agent with dlopen() from /var/task. It
 * exports a handler (by default the symbol "handler"; deploy with handler "FILE.so:SYMBOL" to pick
 * another) with the fnbox_handler_fn signature:
 *
 *     #include "fnbox.h"
 *     int handler(const fnbox_request *req, fnbox_response *res)
 *     {
 *             return fnbox_respond(res, req->payload, req->payload_len);
 *     }
 *
 * Build: cc -shared -fPIC -I<dir of fnbox.h> echo.c -o echo.so (no library to link: the fnbox_*
 * functions below are provided by the agent at load time).
 *
 * The process is reused: one instance serves invocations of one function version one after the
 * other (never two at once), so globals and caches survive between invocations, like Lambda's
 * execution environment. Whatever the function writes to stdout and stderr (fds 1 and 2, also from
 * its child processes) is the invocation's log. Crashing, exiting or running past the deadline
 * ends the instance; the next invocation starts a fresh one.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Responses (fnbox_respond) larger than this are refused; the invocation then fails with
 * error type "ResponseTooLarge". */
#define FNBOX_RESPONSE_MAX ((size_t)6 * 1024 * 1024)

/* One invocation. Everything it points to is owned by the agent and valid only until the handler
 * returns: copy what must outlive the call. */
typedef struct fnbox_request {
        const char *payload;          /* the event body; NOT NUL-terminated, may hold NULs */
        size_t payload_len;           /* bytes in payload (0: payload points to "") */
        const char *request_id;       /* unique id of this invocation */
        const char *function_name;    /* as deployed */
        const char *function_version; /* as deployed */
        uint64_t deadline_unix_ms;    /* wall clock (ms since the epoch) after which the instance
                                       * is killed; 0 if none */
        uint32_t memory_limit_mb;     /* memory limit of the instance, MiB; 0 if none */
} fnbox_request;

/* Opaque: what the handler answers, filled with fnbox_respond() or fnbox_fail(). */
typedef struct fnbox_response fnbox_response;

/* Sets the response body to a copy of len bytes of data (data may be NULL when len is 0).
 * Calling it again replaces the previous body. Returns 0, -EINVAL (res NULL, or data NULL with
 * len > 0), -EFBIG (len > FNBOX_RESPONSE_MAX: the invocation will fail with "ResponseTooLarge")
 * or -ENOMEM. Only valid while the handler runs, from the thread that called it. */
int fnbox_respond(fnbox_response *res, const void *data, size_t len);

/* Marks the invocation as failed with an error type (e.g. "ValidationError"; NULL means
 * "FunctionError") and a human-readable message (may be NULL). The caller sees them as Lambda's
 * errorType/errorMessage. A failure wins over any fnbox_respond(); calling it again replaces the
 * previous error. Long strings are truncated (type 128 bytes, message 64 KiB) and bytes that are
 * not UTF-8 become '?'. Returns 0, -EINVAL (res NULL) or -ENOMEM. */
int fnbox_fail(fnbox_response *res, const char *type, const char *message);

/* Milliseconds left before req's deadline: 0 once it has passed, UINT64_MAX if there is none. */
uint64_t fnbox_remaining_ms(const fnbox_request *req);

/* The handler. It answers with fnbox_respond() or fnbox_fail() and returns 0. A non-zero return
 * without fnbox_fail() fails the invocation with type "FunctionError" and the message "handler
 * returned N". The handler may block, sleep and fork; child processes still running when it
 * returns may be reaped by the agent (the instance's PID 1), so wait for the ones you need.
 * Declare yours with `fnbox_handler_fn handler;` to have the compiler check its signature. */
typedef int fnbox_handler_fn(const fnbox_request *req, fnbox_response *res);

/* Optional: if the shared object exports fnbox_init, the agent calls it once after loading, before
 * the first invocation (its output goes to the log like the handler's). A non-zero return fails
 * the deployment's initialisation ("InitError") and the instance is not used. */
int fnbox_init(void);

#ifdef __cplusplus
}
#endif
