/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "error.h"
#include "invoke.h"
#include "loop.h"
#include "macro.h"
#include "registry.h"

/* The HTTP API: libmicrohttpd in external-epoll mode on the daemon's loop; a request waiting
 * on a function is suspended, never a blocked thread. The only code that knows HTTP. */

#define API_DEPLOY_BODY_MAX (64u * 1024u * 1024u)
#define API_CONNECTIONS_MAX 1024u
#define API_CONNECTION_TIMEOUT_SEC 30u
#define API_LOG_TAIL_BYTES 4096u /* X-Fnbox-Log: tail */

typedef struct ApiConfig {
        const char *listen; /* "HOST:PORT", "[V6]:PORT"; PORT 0 picks a free port */
} ApiConfig;

typedef struct Api Api;

/* Binds and starts serving on loop. Fails with a message when the address is bad or taken. */
int api_new(Loop *loop, Registry *reg, Invoker *inv, const ApiConfig *cfg, Api **ret,
            FnError *reterr);
/* Resumes and answers suspended requests (503), stops listening, frees. */
Api *api_free(Api *api);
DEFINE_CLEANUP_FUNC(Api *, api_free);
/* The bound port (useful with port 0). */
uint16_t api_port(const Api *api);
