/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Recent invocation logs per function, in memory and bounded: each function keeps its latest
 * entries up to bytes_per_function (the oldest go first). Every entry gets a sequence number,
 * increasing across the store, so a follower can ask for what came after what it saw. Pure. */

#define LOGSTORE_BYTES_PER_FUNCTION (256u * 1024u)
#define LOGSTORE_TAIL_MAX 10000u /* lines one request may ask for */

typedef struct LogStore LogStore;

LogStore *logstore_new(size_t bytes_per_function);
LogStore *logstore_free(LogStore *s);
DEFINE_CLEANUP_FUNC(LogStore *, logstore_free);

/* Appends one invocation's framed log (copied). Returns the entry's sequence number, or 0 on
 * OOM (the entry is then dropped). */
uint64_t logstore_append(LogStore *s, const char *function, const char *text, size_t len);

/* The last `lines` lines of function's entries whose sequence is > after (0: all), as one
 * malloc'd NUL-terminated string; *ret_cursor gets the newest sequence in the store for that
 * function (unchanged from `after` when nothing is newer). -ENOENT if the function has no log,
 * -ENOMEM. */
int logstore_tail(const LogStore *s, const char *function, size_t lines, uint64_t after, char **ret,
                  uint64_t *ret_cursor);

/* Forgets a function's log (after a delete). */
void logstore_remove(LogStore *s, const char *function);
