/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

/* The daemon's one event loop (DESIGN.md decision 1): epoll over fds and one-shot timers
 * (a timerfd each), plus a prepare hook that bounds the wait (libmicrohttpd's timeout). Not
 * thread-safe: everything runs on the main thread. Sources may be freed from any callback,
 * including their own; the memory goes away only after the current dispatch round. */

typedef struct Loop Loop;
typedef struct LoopSource LoopSource;

/* Callbacks return >= 0; a negative return is logged at debug and ignored (the source stays). */
typedef int (*loop_io_cb)(LoopSource *s, int fd, uint32_t revents, void *userdata);
typedef int (*loop_timer_cb)(LoopSource *s, usec_t now, void *userdata);
/* Returns the longest the loop may sleep, USEC_INFINITY for no bound. */
typedef usec_t (*loop_prepare_cb)(void *userdata);

int loop_new(Loop **ret);
/* Frees all remaining sources (without closing their fds) and the loop. */
Loop *loop_free(Loop *l);
DEFINE_CLEANUP_FUNC(Loop *, loop_free);

/* Watches fd (not owned) for events (EPOLLIN...). */
int loop_add_io(Loop *l, int fd, uint32_t events, loop_io_cb cb, void *userdata, LoopSource **ret);
/* One-shot timer at `when` (CLOCK_MONOTONIC µs); fires once, then stays idle until rearmed. */
int loop_add_timer(Loop *l, usec_t when, loop_timer_cb cb, void *userdata, LoopSource **ret);
int loop_source_set_time(LoopSource *s, usec_t when);

/* Removes the source from the loop. Accepts NULL, returns NULL. */
LoopSource *loop_source_free(LoopSource *s);
DEFINE_CLEANUP_FUNC(LoopSource *, loop_source_free);

void loop_set_prepare(Loop *l, loop_prepare_cb cb, void *userdata);

/* Work that waits until the loop has nothing else to do (e.g. tearing down dead sandboxes,
 * so it never delays an answer). The callback does one unit and returns true if more is left.
 * loop_idle_wake() tells the loop there is work. */
typedef bool (*loop_idle_cb)(void *userdata);
void loop_set_idle(Loop *l, loop_idle_cb cb, void *userdata);
void loop_idle_wake(Loop *l);

/* Runs until loop_exit(); returns the code given to it. */
int loop_run(Loop *l);
void loop_exit(Loop *l, int code);
