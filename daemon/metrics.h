/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>

#include "invoke.h"
#include "macro.h"
#include "pool.h"

/* Counters and histograms for GET /metrics (Prometheus text format 0.0.4). Pure: fed with
 * finished invocations, rendered with the pool's gauges. */

#define METRICS_SERIES_MAX 4096 /* (function, start, outcome) series; more are folded */

typedef struct Metrics Metrics;

int metrics_new(Metrics **ret);
Metrics *metrics_free(Metrics *m);
DEFINE_CLEANUP_FUNC(Metrics *, metrics_free);

void metrics_observe(Metrics *m, const InvokeResult *res);
/* The whole exposition as a malloc'd string, or NULL on OOM. */
char *metrics_render(const Metrics *m, const PoolStats *pool);
