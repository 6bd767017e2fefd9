/* SPDX-License-Identifier: Apache-2.0 */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

/* Seconds. Cold starts sit around milliseconds, warm calls around 100 µs. */
static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                 0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                 5,      10,      30,     60,    300,    900};
#define N_BUCKETS ELEMENTSOF(buckets)

typedef struct Histogram {
        uint64_t counts[N_BUCKETS + 1]; /* the last is +Inf */
        double sum;
        uint64_t n;
} Histogram;

typedef struct Series {
        char function[65];
        InvokeStart start;
        InvokeOutcome outcome;
        uint64_t count;
} Series;

#define N_PHASES 7
static const char *const phase_names[N_PHASES] = {"queue", "sandbox", "agent", "specialize",
                                                  "load",  "run",     "other"};

struct Metrics {
        Series *series;
        size_t n_series;
        uint64_t folded; /* observations past METRICS_SERIES_MAX */
        Histogram duration[_INVOKE_START_MAX];
        Histogram phases[N_PHASES];
};

int metrics_new(Metrics **ret)
{
        Metrics *m = calloc(1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        *ret = m;
        return 0;
}

Metrics *metrics_free(Metrics *m)
{
        if (!m)
                return NULL;
        free(m->series);
        free(m);
        return NULL;
}

static void histogram_add(Histogram *h, double v)
{
        size_t k = 0;

        while (k < N_BUCKETS && v > buckets[k])
                k++;
        h->counts[k]++;
        h->sum += v;
        h->n++;
}

static size_t phase_index(const char *name)
{
        for (size_t k = 0; k < N_PHASES - 1; k++)
                if (strcmp(phase_names[k], name) == 0)
                        return k;
        return N_PHASES - 1;
}

void metrics_observe(Metrics *m, const InvokeResult *res)
{
        Series *s = NULL;

        for (size_t k = 0; k < m->n_series; k++)
                if (m->series[k].start == res->start && m->series[k].outcome == res->outcome &&
                    strcmp(m->series[k].function, res->function) == 0) {
                        s = &m->series[k];
                        break;
                }
        if (!s && m->n_series < METRICS_SERIES_MAX) {
                Series *n = realloc(m->series, (m->n_series + 1) * sizeof(*n));
                if (n) {
                        m->series = n;
                        s = &n[m->n_series++];
                        memset(s, 0, sizeof(*s));
                        (void)snprintf(s->function, sizeof(s->function), "%s", res->function);
                        s->start = res->start;
                        s->outcome = res->outcome;
                }
        }
        if (s)
                s->count++;
        else
                m->folded++;
        if (res->start >= 0 && res->start < _INVOKE_START_MAX)
                histogram_add(&m->duration[res->start], (double)res->total_usec / 1e6);
        for (size_t k = 0; k < res->n_phases; k++)
                histogram_add(&m->phases[phase_index(res->phases[k].name)],
                              (double)res->phases[k].usec / 1e6);
}

typedef struct Buf {
        char *s;
        size_t len, cap;
        bool oom;
} Buf;

static void buf_printf(Buf *b, const char *fmt, ...) _printf_(2, 3);
static void buf_printf(Buf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (b->oom)
                return;
        for (;;) {
                va_start(ap, fmt);
                n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->oom = true;
                        return;
                }
                if (b->s && b->len + (size_t)n < b->cap) {
                        b->len += (size_t)n;
                        return;
                }
                size_t cap = MAX(b->cap * 2, b->len + (size_t)n + 4096);
                char *ns = realloc(b->s, cap);
                if (!ns) {
                        b->oom = true;
                        return;
                }
                b->s = ns;
                b->cap = cap;
        }
}

static void render_histogram(Buf *b, const char *name, const char *label, const char *value,
                             const Histogram *h)
{
        uint64_t cum = 0;

        for (size_t k = 0; k <= N_BUCKETS; k++) {
                cum += h->counts[k];
                if (k < N_BUCKETS)
                        buf_printf(b, "%s_bucket{%s=\"%s\",le=\"%g\"} %" PRIu64 "\n", name, label,
                                   value, buckets[k], cum);
                else
                        buf_printf(b, "%s_bucket{%s=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", name, label,
                                   value, cum);
        }
        buf_printf(b, "%s_sum{%s=\"%s\"} %.6f\n", name, label, value, h->sum);
        buf_printf(b, "%s_count{%s=\"%s\"} %" PRIu64 "\n", name, label, value, h->n);
}

char *metrics_render(const Metrics *m, const PoolStats *ps)
{
        Buf b = {0};

        buf_printf(&b, "# HELP fnbox_invocations_total Invocations by function, start tier and "
                       "outcome.\n# TYPE fnbox_invocations_total counter\n");
        for (size_t k = 0; k < m->n_series; k++) {
                const Series *s = &m->series[k];
                buf_printf(&b,
                           "fnbox_invocations_total{function=\"%s\",start=\"%s\",outcome=\"%s\"} "
                           "%" PRIu64 "\n",
                           s->function, invoke_start_to_string(s->start),
                           invoke_outcome_to_string(s->outcome), s->count);
        }
        buf_printf(&b,
                   "# HELP fnbox_invocations_unlabelled_total Invocations past the series "
                   "limit.\n# TYPE fnbox_invocations_unlabelled_total counter\n"
                   "fnbox_invocations_unlabelled_total %" PRIu64 "\n",
                   m->folded);

        buf_printf(&b, "# HELP fnbox_invocation_duration_seconds Request in to answer out, by "
                       "start tier.\n# TYPE fnbox_invocation_duration_seconds histogram\n");
        for (int t = 0; t < _INVOKE_START_MAX; t++)
                render_histogram(&b, "fnbox_invocation_duration_seconds", "start",
                                 invoke_start_to_string((InvokeStart)t), &m->duration[t]);
        buf_printf(&b, "# HELP fnbox_phase_duration_seconds Time spent in each phase of an "
                       "invocation.\n# TYPE fnbox_phase_duration_seconds histogram\n");
        for (size_t k = 0; k < N_PHASES; k++)
                render_histogram(&b, "fnbox_phase_duration_seconds", "phase", phase_names[k],
                                 &m->phases[k]);

        buf_printf(&b, "# HELP fnbox_pool_instances Sandboxes by state.\n"
                       "# TYPE fnbox_pool_instances gauge\n");
        /* Frozen instances are idle ones; "warm-idle" counts the others, as /v1/pool does. */
        for (int st = 0; st < _POOL_INSTANCE_STATE_MAX; st++)
                buf_printf(&b, "fnbox_pool_instances{state=\"%s\"} %u\n",
                           pool_instance_state_to_string((PoolInstanceState)st),
                           ps->by_state[st] - (st == POOL_INSTANCE_IDLE ? ps->frozen : 0));
        buf_printf(&b, "fnbox_pool_instances{state=\"frozen\"} %u\n", ps->frozen);
        buf_printf(&b,
                   "# HELP fnbox_pool_memory_reserved_bytes Memory limits of warm and busy "
                   "instances.\n# TYPE fnbox_pool_memory_reserved_bytes gauge\n"
                   "fnbox_pool_memory_reserved_bytes %" PRIu64 "\n",
                   ps->memory_reserved);
        buf_printf(&b,
                   "# HELP fnbox_pool_queued Requests waiting for capacity.\n"
                   "# TYPE fnbox_pool_queued gauge\nfnbox_pool_queued %u\n",
                   ps->queued);
        buf_printf(&b, "# HELP fnbox_pool_starts_total Starts by tier.\n"
                       "# TYPE fnbox_pool_starts_total counter\n");
        for (int t = 0; t < _POOL_TIER_MAX; t++)
                buf_printf(&b, "fnbox_pool_starts_total{tier=\"%s\"} %" PRIu64 "\n",
                           pool_tier_to_string((PoolTier)t), ps->hits[t]);
        buf_printf(&b, "# HELP fnbox_pool_evictions_total Instances removed from the pool, by "
                       "reason.\n# TYPE fnbox_pool_evictions_total counter\n");
        buf_printf(&b, "fnbox_pool_evictions_total{reason=\"expired\"} %" PRIu64 "\n",
                   ps->evictions[POOL_CAUSE_EXPIRED]);
        buf_printf(&b, "fnbox_pool_evictions_total{reason=\"memory\"} %" PRIu64 "\n",
                   ps->evictions[POOL_CAUSE_EVICTED]);
        buf_printf(&b, "fnbox_pool_evictions_total{reason=\"code-changed\"} %" PRIu64 "\n",
                   ps->evictions[POOL_CAUSE_CODE_CHANGED]);
        buf_printf(&b,
                   "# HELP fnbox_throttled_total Requests refused with 429.\n"
                   "# TYPE fnbox_throttled_total counter\nfnbox_throttled_total %" PRIu64 "\n",
                   ps->rejected);
        if (b.oom) {
                free(b.s);
                return NULL;
        }
        return b.s;
}
