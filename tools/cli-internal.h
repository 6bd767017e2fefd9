/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "error.h"
#include "macro.h"

/* Shared by the files of the fnbox CLI (tools/fnbox.c, tools/cli-*.c); not a public API. */

/* jansson >= 2.9 provides json_decrefp() for _cleanup_(json_decrefp). */

/* Exit codes, documented in `fnbox --help` and docs/cli.md. Scripts depend on them. */
enum {
        CLI_EXIT_OK = 0,
        CLI_EXIT_LOCAL = 1,    /* daemon unreachable, or a local error */
        CLI_EXIT_USAGE = 2,    /* bad command line */
        CLI_EXIT_API = 3,      /* the API refused the request */
        CLI_EXIT_FUNCTION = 4, /* invoke answered 502 or 504 */
};

/* Caps matching the daemon's, so an oversized request fails here with a clear message. */
#define CLI_INVOKE_DATA_MAX ((size_t)6 * 1024 * 1024)
#define CLI_BUNDLE_MAX ((size_t)64 * 1024 * 1024)
#define CLI_DEPLOY_BODY_MAX ((size_t)64 * 1024 * 1024)
/* An answer larger than this is refused (the largest legitimate one is a 6 MiB invoke result or a
 * long function list). */
#define CLI_RESPONSE_MAX ((size_t)128 * 1024 * 1024)

/* Prints "fnbox: <message>" to stderr. Returns code, so `return cli_fail(CLI_EXIT_USAGE, ...)`. */
int cli_fail(int code, const char *fmt, ...) _printf_(2, 3);
/* Prints "fnbox: warning: <message>" to stderr unless quiet. */
void cli_warn(bool quiet, const char *fmt, ...) _printf_(2, 3);

/* ---- cli-http.c: one blocking HTTP request through libcurl ---- */

typedef struct CliEndpoint {
        const char *display;     /* the URL as the user gave it, for messages */
        const char *base_url;    /* "http://host:port" without trailing slash */
        const char *unix_socket; /* NULL, or the socket of a unix: URL */
        const char *token;       /* NULL: no Authorization header */
} CliEndpoint;

typedef struct HttpRequest {
        const char *method; /* GET, PUT, POST, DELETE */
        const char *path;   /* starts with '/' */
        const void *body;   /* POST/PUT only; may be NULL with body_len 0 */
        size_t body_len;
        const char *content_type; /* NULL: none */
        const char *header;       /* NULL, or one more request header, "Name: value" */
        long timeout_sec;         /* whole transfer */
        /* NULL, or a flag (set by a signal handler) that aborts the transfer within about a
         * second once it becomes non-zero. */
        const volatile sig_atomic_t *cancel;
} HttpRequest;

typedef struct HttpResponse {
        long status;
        char *body; /* NUL-terminated (the NUL is not counted in body_len); NULL when empty */
        size_t body_len;
        char *fnbox_headers; /* "Name: value\n" lines of X-Fnbox-* and Server-Timing, or NULL */
} HttpResponse;

void http_response_done(HttpResponse *r);

/* Sends one request to ep and collects the answer. Returns 0 once any HTTP answer arrived, of any
 * status; -ECANCELED when req->cancel fired; -errno with reterr from curl when no answer came
 * (connection refused, timeout, answer over CLI_RESPONSE_MAX). Blocking; curl_global_init() must
 * have run. *ret is written on success. */
int cli_http_request(const CliEndpoint *ep, const HttpRequest *req, HttpResponse *ret,
                     FnError *reterr);

/* Finds header name (case-insensitive; only those kept in fnbox_headers) in r. Returns 0 and its
 * value, without surrounding blanks, as a pointer into r->fnbox_headers and a length (not
 * NUL-terminated); -ENOENT if absent. */
int http_response_header(const HttpResponse *r, const char *name, const char **ret,
                         size_t *ret_len);

/* ---- cli-pack.c: deploy bundles ---- */

typedef struct PackStats {
        size_t files;   /* regular files stored */
        size_t dirs;    /* directories stored */
        size_t links;   /* symlinks stored (target inside the directory) */
        size_t skipped; /* entries skipped with a warning */
} PackStats;

/* Packs the directory tree at path into a zip in memory (at most max bytes): regular files,
 * directories and symlinks whose target stays inside, with relative paths in sorted order and
 * modes 0644/0755 (executable bit kept). Other symlinks and special files are skipped with a
 * warning (unless quiet). Returns 0 and a malloc'd buffer the caller frees, or -errno with
 * reterr. Blocking. */
int cli_pack_directory(const char *path, size_t max, bool quiet, char **ret, size_t *ret_len,
                       PackStats *ret_stats, FnError *reterr);

/* Reads a whole fd (at most max bytes; -EFBIG beyond) into a malloc'd buffer. */

/* Reads an existing .zip/.tar.gz/.tgz bundle file (at most max bytes) after checking that its
 * first bytes match the name. Returns 0 and a malloc'd buffer, or -errno with reterr. */
int cli_read_bundle_file(const char *path, size_t max, char **ret, size_t *ret_len,
                         FnError *reterr);

/* true if path names a bundle file by its extension (.zip, .tar.gz, .tgz). */
bool cli_is_bundle_name(const char *path);

/* ---- cli-output.c: what goes to stdout ---- */

/* Pretty-prints j (2-space indent, keys in the daemon's order) and a newline. */
int cli_print_json(json_t *j);
/* Prints an aligned table NAME RUNTIME HANDLER MEMORY TIMEOUT VERSION UPDATED, one row per
 * function object of the array fns. */
int cli_print_function_table(json_t *fns);
/* Prints the "name" of each function object of fns, one per line. */
int cli_print_function_names(json_t *fns);
/* Describes a failed answer as "<message> (<type>, HTTP <status>)" from the daemon's
 * {"error":{"type","message"}} body, falling back to the status and the start of the body. */
void cli_describe_error(const HttpResponse *r, char *buf, size_t size);
