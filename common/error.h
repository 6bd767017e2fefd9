/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "macro.h"

/* A reason a client can read. Caller-owned, never heap-allocated. */
typedef struct FnError {
        int code;      /* negative errno */
        char msg[256]; /* human-readable, names the problem */
} FnError;

/* Records code and the formatted message in reterr (which may be NULL). Returns code (<0). */
int fn_error_set(FnError *reterr, int code, const char *fmt, ...) _printf_(3, 4);
