/* SPDX-License-Identifier: Apache-2.0 */
/* fnbox-bench: cold, prewarmed and warm invocations of fnboxd through its real HTTP API, for each
 * runtime (native echo.so, python3 and nodejs echo handlers), next to baselines measured in the
 * same run (crun run and bwrap of /bin/true, a bare libmicrohttpd "hello" server driven by the same
 * client). See docs/performance.md.
 *
 * The load generator is its own: HTTP/1.1 keep-alive on raw non-blocking sockets and one epoll,
 * one request in flight per connection (closed loop), so that the client costs less per request
 * than the server it measures. Every answer is a sample: when it was sent, how long the whole
 * answer took, status, X-Fnbox-Start, X-Fnbox-Start-Cause and each Server-Timing phase. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#include <jansson.h>

#include "config.h"
#include "macro.h"
#include "util.h"

extern char **environ;

/* ---- options ------------------------------------------------------------------------------ */

typedef struct Options {
        const char *fnboxd, *agent, *echo_so, *probe_so, *hello, *url, *token, *token_file;
        const char *csv, *json, *svg, *cgroup_parent, *only, *functions_dir;
        unsigned prewarm;
        uint64_t n_warm, n_cold, n_rt_cold, baseline_runs;
        double duration, create_duration, warmup;
        unsigned gap_ms, mem_instances;
        double wait_quiet;
        bool no_baselines, keep_tmp;
} Options;

static Options opt = {
    .prewarm = 2,
    .n_warm = 2000,
    .n_cold = 500,
    .n_rt_cold = 300,
    .baseline_runs = 300,
    .duration = 3.0,
    .create_duration = 3.0,
    .warmup = 0.5,
    .gap_ms = 5,
    .mem_instances = 32,
};

static volatile sig_atomic_t interrupted;

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t bench_epoch_ns;

static void msg(const char *fmt, ...) _printf_(1, 2);
static void msg(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void)vfprintf(stderr, fmt, ap);
        va_end(ap);
        (void)fputc('\n', stderr);
}

/* "21.3 µs", "1.92 ms", "1.23 s" */
static const char *fmt_us(double us, char buf[32])
{
        if (isnan(us) || us < 0)
                (void)snprintf(buf, 32, "-");
        else if (us < 1000)
                (void)snprintf(buf, 32, "%.1f µs", us);
        else if (us < 1000000)
                (void)snprintf(buf, 32, "%.2f ms", us / 1000);
        else
                (void)snprintf(buf, 32, "%.2f s", us / 1000000);
        return buf;
}

/* The printf width that puts s in a column of w characters: "µ" takes two bytes, one column. */
static int col(const char *s, int w)
{
        for (; *s; s++)
                if (((unsigned char)*s & 0xC0) == 0x80)
                        w++;
        return w;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

/* Nearest-rank quantile of a sorted array. */
static uint64_t quantile(const uint64_t *v, size_t n, double q)
{
        size_t k;

        if (n == 0)
                return 0;
        k = (size_t)ceil(q * (double)n);
        if (k < 1)
                k = 1;
        if (k > n)
                k = n;
        return v[k - 1];
}

static double median_i64(int64_t *v, size_t n)
{
        if (n == 0)
                return NAN;
        qsort(v, n, sizeof(*v), cmp_i64);
        return (double)v[(n - 1) / 2];
}

static int read_text(const char *path, char *buf, size_t size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return negative_errno();
        n = read(fd, buf, size - 1);
        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        return (int)n;
}

static int64_t read_int_file(const char *path)
{
        char buf[64];
        uint64_t v;

        if (read_text(path, buf, sizeof(buf)) < 0)
                return -1;
        buf[strcspn(buf, "\n")] = '\0';
        return parse_uint64(buf, &v) < 0 ? -1 : (int64_t)v;
}

/* A "Key:   value kB" line of a /proc file, in bytes; -1 if absent. */
static int64_t proc_kb_field(const char *path, const char *key)
{
        char buf[8192], *p;
        size_t kl = strlen(key);

        if (read_text(path, buf, sizeof(buf)) < 0)
                return -1;
        for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, key, kl) == 0 && p[kl] == ':')
                        return strtoll(p + kl + 1, NULL, 10) * 1024;
        return -1;
}

/* utime + stime of a process, in seconds; -1 if unknown. */
static double proc_cpu_seconds(pid_t pid)
{
        char path[64], buf[2048], *p;
        unsigned long long ut = 0, st = 0;

        if (pid <= 0)
                return -1;
        (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (read_text(path, buf, sizeof(buf)) < 0)
                return -1;
        p = strrchr(buf, ')'); /* comm may hold spaces */
        if (!p ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                return -1;
        return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_seconds(void)
{
        struct rusage ru;

        (void)getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Busy and total jiffies of the whole host, from /proc/stat; steal: time the hypervisor gave
 * to others while a vCPU wanted to run (may be NULL). */
static void host_cpu_steal(uint64_t *busy, uint64_t *total, uint64_t *steal)
{
        char buf[512];
        unsigned long long v[8] = {0};

        *busy = *total = 0;
        if (steal)
                *steal = 0;
        if (read_text("/proc/stat", buf, sizeof(buf)) < 0 ||
            sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) != 8)
                return;
        for (size_t i = 0; i < 8; i++)
                *total += v[i];
        *busy = *total - v[3] - v[4]; /* minus idle and iowait */
        if (steal)
                *steal = v[7];
}

static void host_cpu(uint64_t *busy, uint64_t *total)
{
        host_cpu_steal(busy, total, NULL);
}

/* Runs argv (in cwd if not NULL), its stdout and stderr captured into out. Returns the wait
 * status, or -errno if it could not start. */
static int run_capture(char *const argv[], const char *cwd, char *out, size_t out_size)
{
        posix_spawn_file_actions_t fa;
        int pipefd[2], status = 0, r;
        size_t len = 0;
        pid_t pid;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        (void)posix_spawn_file_actions_init(&fa);
        (void)posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        (void)posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
        (void)posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
        if (cwd)
                (void)posix_spawn_file_actions_addchdir_np(&fa, cwd);
        r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
        (void)posix_spawn_file_actions_destroy(&fa);
        (void)close(pipefd[1]);
        if (r != 0) {
                (void)close(pipefd[0]);
                return -r;
        }
        for (;;) {
                char tmp[4096];
                ssize_t n = read(pipefd[0], tmp, sizeof(tmp));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                if (out && len + 1 < out_size) {
                        size_t k = MIN((size_t)n, out_size - 1 - len);
                        memcpy(out + len, tmp, k);
                        len += k;
                }
        }
        if (out && out_size > 0)
                out[len] = '\0';
        (void)close(pipefd[0]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return status;
}

/* ---- samples and series ------------------------------------------------------------------- */

enum {
        START_NONE = -1,
        START_COLD,
        START_PREWARMED,
        START_WARM,
        START_OTHER,
        _START_MAX,
};
static const char *const start_names[_START_MAX] = {"cold", "prewarmed", "warm", "other"};

#define PHASES_MAX 8
#define CAUSES_MAX 16
static char phase_names[PHASES_MAX][24];
static size_t n_phase_names;
static char cause_names[CAUSES_MAX][32];
static size_t n_cause_names;

/* How a function's code runs: the agent dlopen()s echo.so, or a Lambda-style runtime process
 * (fnbox's shims in rootfs/runtimes) runs the echo of tools/bench/functions/RUNTIME/. */
typedef enum Runtime {
        RT_NATIVE,
        RT_PYTHON,
        RT_NODE,
        _RT_MAX,
} Runtime;
static const char *const runtime_names[_RT_MAX] = {"native", "python3", "nodejs"};
/* For the Lambda-style runtimes: the file under --functions-dir, its name in the bundle, the
 * handler. */
static const char *const runtime_sources[_RT_MAX] = {NULL, "python3/app.py", "nodejs/index.js"};
static const char *const runtime_handlers[_RT_MAX] = {NULL, "app.handler", "index.handler"};
static bool runtime_wanted[_RT_MAX] = {true, true, true};

typedef struct Sample {
        uint64_t t_ns;   /* when the request was sent, since the benchmark started */
        uint64_t lat_ns; /* until the whole answer was read (or the process was reaped) */
        uint16_t status; /* HTTP status; 0: transport error; baselines: 200 if exit 0, else 500 */
        int8_t start;    /* START_*, START_NONE without the header */
        int8_t cause;    /* index into cause_names, -1 without the header */
        uint16_t series;
        uint16_t conn;
        int32_t phase_us[PHASES_MAX]; /* by index into phase_names; -1: absent */
} Sample;

static Sample *samples;
static size_t n_samples, samples_cap;

typedef enum System {
        SYS_FNBOX,
        SYS_HELLO,
        SYS_CRUN,
        SYS_BWRAP,
} System;
static const char *const system_names[] = {"fnbox", "hello", "crun", "bwrap"};

typedef enum Kind {
        KIND_LATENCY,    /* N requests back to back (or paced) on one connection */
        KIND_THROUGHPUT, /* closed loop over a fixed duration */
        KIND_CREATION,   /* cold starts at low concurrency, sustained */
        KIND_PROCESS,    /* a baseline command run N times */
} Kind;
static const char *const kind_names[] = {"latency", "throughput", "creation", "process"};

typedef struct Series {
        char name[64];
        System sys;
        Runtime rt; /* fnbox series only; RT_NATIVE for the baselines */
        Kind kind;
        int tier; /* the start asked for (START_*), START_NONE for baselines */
        unsigned concurrency;
        uint64_t gap_ns;
        bool paced_reference; /* warm calls paced as the prewarmed ones: not found by series_find */
        size_t first, n;      /* its samples */
        uint64_t ok, errors, mismatches, reconnects;
        uint64_t in_window;           /* OK answers completed within the duration (throughput) */
        uint64_t t_begin, t_deadline; /* since the benchmark started (throughput) */
        uint64_t starts[_START_MAX];
        double seconds, rps;
        double server_cpu, client_cpu, host_busy; /* fractions; -1: unknown */
        char note[200];
        char first_error[200];
} Series;

#define SERIES_MAX 64
static Series series[SERIES_MAX];
static size_t n_series;

static Series *series_new(System sys, Runtime rt, Kind kind, int tier, unsigned conc)
{
        Series *s;

        if (n_series >= SERIES_MAX)
                return NULL;
        s = &series[n_series++];
        *s = (Series){.sys = sys,
                      .rt = rt,
                      .kind = kind,
                      .tier = tier,
                      .concurrency = conc,
                      .first = n_samples,
                      .server_cpu = -1,
                      .client_cpu = -1,
                      .host_busy = -1};
        /* Native keeps the names it had before there were runtimes: fnbox-cold-latency-c1. */
        if (sys == SYS_FNBOX)
                (void)snprintf(s->name, sizeof(s->name), "fnbox-%s%s%s-%s-c%u",
                               rt == RT_NATIVE ? "" : runtime_names[rt], rt == RT_NATIVE ? "" : "-",
                               start_names[tier], kind_names[kind], conc);
        else if (kind == KIND_PROCESS)
                (void)snprintf(s->name, sizeof(s->name), "%s-run", system_names[sys]);
        else
                (void)snprintf(s->name, sizeof(s->name), "%s-%s-c%u", system_names[sys],
                               kind_names[kind], conc);
        return s;
}

static Series *series_find(System sys, Runtime rt, Kind kind, int tier, unsigned conc)
{
        for (size_t i = 0; i < n_series; i++)
                if (series[i].sys == sys && series[i].rt == rt && series[i].kind == kind &&
                    series[i].tier == tier && series[i].concurrency == conc &&
                    !series[i].paced_reference)
                        return &series[i];
        return NULL;
}

static const Series *series_paced_warm(void)
{
        for (size_t i = 0; i < n_series; i++)
                if (series[i].paced_reference)
                        return &series[i];
        return NULL;
}

static Sample *sample_add(Series *s)
{
        Sample *x;

        if (n_samples == samples_cap) {
                size_t cap = samples_cap ? samples_cap * 2 : 65536;
                Sample *ns = realloc(samples, cap * sizeof(*ns));
                if (!ns)
                        return NULL;
                samples = ns;
                samples_cap = cap;
        }
        x = &samples[n_samples++];
        memset(x, 0, sizeof(*x));
        x->start = START_NONE;
        x->cause = -1;
        x->series = (uint16_t)(s - series);
        for (size_t k = 0; k < PHASES_MAX; k++)
                x->phase_us[k] = -1;
        s->n++;
        return x;
}

static int intern(char names[][32], size_t *n, size_t max, const char *s, size_t len)
{
        for (size_t i = 0; i < *n; i++)
                if (strlen(names[i]) == len && strncmp(names[i], s, len) == 0)
                        return (int)i;
        if (*n >= max || len == 0 || len >= 32)
                return -1;
        /* Header text goes into CSV, JSON and SVG: keep only harmless characters. */
        for (size_t i = 0; i < len; i++)
                names[*n][i] =
                    isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' ? s[i] : '_';
        names[*n][len] = '\0';
        return (int)(*n)++;
}

static int phase_index(const char *s, size_t len)
{
        for (size_t i = 0; i < n_phase_names; i++)
                if (strlen(phase_names[i]) == len && strncmp(phase_names[i], s, len) == 0)
                        return (int)i;
        if (n_phase_names >= PHASES_MAX || len == 0 || len >= sizeof(phase_names[0]))
                return -1;
        for (size_t i = 0; i < len; i++)
                phase_names[n_phase_names][i] =
                    isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' ? s[i] : '_';
        phase_names[n_phase_names][len] = '\0';
        return (int)n_phase_names++;
}

static int phase_lookup(const char *name)
{
        for (size_t i = 0; i < n_phase_names; i++)
                if (strcmp(phase_names[i], name) == 0)
                        return (int)i;
        return -1;
}

/* ---- HTTP responses ----------------------------------------------------------------------- */

typedef struct Response {
        unsigned status;
        size_t header_len;      /* through the blank line */
        int64_t content_length; /* -1: none */
        bool chunked, close;
        int8_t start, cause;
        int32_t phase_us[PHASES_MAX];
} Response;

static bool header_is(const char *line, size_t len, const char *name, const char **ret_value)
{
        size_t nl = strlen(name);

        if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
                return false;
        line += nl + 1;
        while (*line == ' ' || *line == '\t')
                line++;
        *ret_value = line;
        return true;
}

/* "sandbox;dur=0.512, agent;dur=1.2, total;dur=1.9" */
static void parse_server_timing(const char *v, size_t len, int32_t phase_us[PHASES_MAX])
{
        const char *end = v + len;

        while (v < end) {
                const char *item_end = memchr(v, ',', (size_t)(end - v));
                const char *semi, *dur;
                int k;

                if (!item_end)
                        item_end = end;
                while (v < item_end && *v == ' ')
                        v++;
                semi = memchr(v, ';', (size_t)(item_end - v));
                if (semi) {
                        k = phase_index(v, (size_t)(semi - v));
                        dur = memmem(semi, (size_t)(item_end - semi), "dur=", 4);
                        if (k >= 0 && dur)
                                phase_us[k] = (int32_t)lround(strtod(dur + 4, NULL) * 1000.0);
                }
                v = item_end + 1;
        }
}

/* Parses the response at the start of buf. Returns the bytes the whole message takes, 0 if
 * more is needed (or, with neither Content-Length nor chunking, until EOF), -EBADMSG if it is not
 * HTTP. */
static ssize_t response_parse(const char *buf, size_t len, bool eof, Response *r)
{
        const char *hend = memmem(buf, len, "\r\n\r\n", 4), *line, *v;
        unsigned major, minor, status;

        if (!hend)
                return len > 65536 ? -EBADMSG : 0;
        *r = (Response){.content_length = -1, .start = START_NONE, .cause = -1};
        for (size_t k = 0; k < PHASES_MAX; k++)
                r->phase_us[k] = -1;
        if (sscanf(buf, "HTTP/%u.%u %u", &major, &minor, &status) != 3)
                return -EBADMSG;
        r->status = status;
        r->header_len = (size_t)(hend - buf) + 4;
        r->close = major == 1 && minor == 0;
        line = memchr(buf, '\n', (size_t)(hend - buf) + 2) + 1; /* the status line's end */
        while (line < hend + 2) {
                const char *eol = memmem(line, (size_t)(hend + 2 - line), "\r\n", 2);
                size_t ll;

                if (!eol)
                        break;
                ll = (size_t)(eol - line);
                if (header_is(line, ll, "Content-Length", &v))
                        r->content_length = strtoll(v, NULL, 10);
                else if (header_is(line, ll, "Transfer-Encoding", &v))
                        r->chunked = strncasecmp(v, "chunked", 7) == 0;
                else if (header_is(line, ll, "Connection", &v))
                        r->close = strncasecmp(v, "close", 5) == 0;
                else if (header_is(line, ll, "X-Fnbox-Start", &v)) {
                        size_t vl = (size_t)(eol - v);
                        r->start = START_OTHER;
                        for (int k = 0; k < START_OTHER; k++)
                                if (strlen(start_names[k]) == vl &&
                                    strncmp(v, start_names[k], vl) == 0)
                                        r->start = (int8_t)k;
                } else if (header_is(line, ll, "X-Fnbox-Start-Cause", &v))
                        r->cause = (int8_t)intern(cause_names, &n_cause_names, CAUSES_MAX, v,
                                                  (size_t)(eol - v));
                else if (header_is(line, ll, "Server-Timing", &v))
                        parse_server_timing(v, (size_t)(eol - v), r->phase_us);
                line = eol + 2;
        }
        if (r->content_length >= 0) {
                size_t total = r->header_len + (size_t)r->content_length;
                return len >= total ? (ssize_t)total : 0;
        }
        if (r->chunked) {
                /* Enough for the servers measured here: the answer ends with the last chunk. */
                if (len >= r->header_len + 5 && memcmp(buf + len - 5, "0\r\n\r\n", 5) == 0)
                        return (ssize_t)len;
                return 0;
        }
        if (status == 204 || status == 304 || (status >= 100 && status < 200))
                return (ssize_t)r->header_len;
        r->close = true;
        return eof ? (ssize_t)len : 0;
}

/* ---- one request, blocking (deploys, health checks) ----------------------------------------- */

static int http_sync(const struct sockaddr_in *addr, const char *method, const char *path,
                     const char *token, const char *body, size_t body_len, unsigned timeout_ms,
                     unsigned *ret_status, char **ret_body)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *head = NULL, *buf = NULL;
        struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
        size_t len = 0, cap = 16384;
        Response resp;
        ssize_t m = 0;
        int r;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0)
                return negative_errno();
        r = asprintf(&head,
                     "%s %s HTTP/1.1\r\nHost: %s:%u\r\n%s%s%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     method, path, inet_ntoa(addr->sin_addr), ntohs(addr->sin_port),
                     token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
                     body_len);
        if (r < 0)
                return -ENOMEM;
        r = loop_write(fd, head, strlen(head));
        if (r >= 0 && body_len > 0)
                r = loop_write(fd, body, body_len);
        if (r < 0)
                return r;
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (len + 1 >= cap) {
                        char *nb = realloc(buf, cap * 2);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        cap *= 2;
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return errno == EAGAIN ? -ETIMEDOUT : negative_errno();
                len += (size_t)n;
                m = response_parse(buf, len, n == 0, &resp);
                if (m != 0 || n == 0)
                        break;
        }
        if (m <= 0)
                return -EBADMSG;
        *ret_status = resp.status;
        if (ret_body) {
                size_t bl = (size_t)m - resp.header_len;
                memmove(buf, buf + resp.header_len, bl);
                buf[bl] = '\0';
                *ret_body = TAKE_PTR(buf);
        }
        return 0;
}

/* ---- the load generator ------------------------------------------------------------------- */

typedef struct Conn {
        int fd;
        uint16_t idx;
        bool busy, want_out, parked;
        size_t wpos;
        uint64_t t0, next_at;
        char *buf;
        size_t len, cap;
} Conn;

typedef struct Load {
        const struct sockaddr_in *addr;
        const char *req;
        size_t req_len;
        unsigned conns;
        uint64_t count;       /* requests to issue; 0: until the deadline */
        uint64_t duration_ns; /* with count 0 */
        uint64_t gap_ns;      /* pause per connection between an answer and its next request */
        Series *series;       /* NULL: a warm-up, nothing recorded */
        pid_t server_pid;     /* for its CPU time; 0: unknown */
        /* state */
        int ep;
        Conn *c;
        uint64_t issued, completed, deadline, t_begin;
        unsigned inflight;
        bool have_parked;
        uint64_t consecutive_errors;
        int fatal;
} Load;

#define REQUEST_TIMEOUT_NS (60ULL * 1000000000ULL)

static int conn_connect(Load *L, Conn *c)
{
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        int one = 1, fd;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* Blocking connect: loopback completes at once, and it is not part of any sample. */
        if (connect(fd, (const struct sockaddr *)L->addr, sizeof(*L->addr)) < 0 ||
            fcntl(fd, F_SETFL, O_NONBLOCK) < 0 || epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                int r = negative_errno();
                (void)close(fd);
                return r;
        }
        c->fd = fd;
        c->want_out = false;
        c->len = 0;
        return 0;
}

static void conn_close(Load *L, Conn *c)
{
        if (c->fd >= 0) {
                (void)epoll_ctl(L->ep, EPOLL_CTL_DEL, c->fd, NULL);
                (void)close(c->fd);
        }
        c->fd = -EBADF;
}

static void conn_want_out(Load *L, Conn *c, bool on)
{
        struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};

        if (c->want_out == on)
                return;
        c->want_out = on;
        (void)epoll_ctl(L->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int conn_flush(Load *L, Conn *c)
{
        while (c->wpos < L->req_len) {
                ssize_t n = send(c->fd, L->req + c->wpos, L->req_len - c->wpos, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                conn_want_out(L, c, true);
                                return 0;
                        }
                        return negative_errno();
                }
                c->wpos += (size_t)n;
        }
        conn_want_out(L, c, false);
        return 0;
}

static bool load_may_issue(Load *L, uint64_t now)
{
        if (L->fatal || interrupted)
                return false;
        if (L->count > 0)
                return L->issued < L->count;
        return now < L->deadline;
}

static void conn_failed(Load *L, Conn *c, int error);

static void conn_issue(Load *L, Conn *c)
{
        int r;

        c->parked = false;
        if (c->fd < 0) {
                r = conn_connect(L, c);
                if (r < 0) {
                        L->fatal = r;
                        return;
                }
        }
        c->busy = true;
        c->wpos = 0;
        c->len = 0;
        L->issued++;
        L->inflight++;
        c->t0 = now_ns();
        r = conn_flush(L, c);
        if (r < 0)
                conn_failed(L, c, r);
}

/* After an answer or a failure: the next request on c, now or after the gap. */
static void conn_next(Load *L, Conn *c, uint64_t now)
{
        if (!load_may_issue(L, now))
                return;
        if (L->gap_ns > 0) {
                c->next_at = now + L->gap_ns;
                c->parked = true;
                L->have_parked = true;
                return;
        }
        conn_issue(L, c);
}

/* body: the answer's body (for the first error's message), may be NULL */
static void record(Load *L, Conn *c, uint64_t t1, unsigned status, const Response *resp,
                   const char *body, size_t body_len)
{
        Series *s = L->series;
        Sample *x;
        int tier;

        L->completed++;
        if (!s)
                return;
        tier = s->tier;
        if (status >= 200 && status < 300) {
                s->ok++;
                if (L->count == 0 && t1 <= L->deadline)
                        s->in_window++;
        } else {
                s->errors++;
                if (!s->first_error[0] && status == 0)
                        (void)snprintf(s->first_error, sizeof(s->first_error), "transport error");
                else if (!s->first_error[0])
                        (void)snprintf(s->first_error, sizeof(s->first_error), "HTTP %u %.*s",
                                       status, (int)MIN(body_len, (size_t)150), body ? body : "");
        }
        if (resp && resp->start >= 0)
                s->starts[resp->start]++;
        if (tier >= 0 && status >= 200 && status < 300 && (!resp || resp->start != tier))
                s->mismatches++;
        x = sample_add(s);
        if (!x) {
                L->fatal = -ENOMEM;
                return;
        }
        x->t_ns = c->t0 - bench_epoch_ns;
        x->lat_ns = t1 - c->t0;
        x->status = (uint16_t)status;
        x->conn = c->idx;
        if (resp) {
                x->start = resp->start;
                x->cause = resp->cause;
                memcpy(x->phase_us, resp->phase_us, sizeof(x->phase_us));
        }
}

static void conn_failed(Load *L, Conn *c, int error)
{
        uint64_t now = now_ns();

        if (c->busy) {
                c->busy = false;
                L->inflight--;
                record(L, c, now, 0, NULL, NULL, 0);
        }
        conn_close(L, c);
        if (L->series)
                L->series->reconnects++;
        if (++L->consecutive_errors > 100) {
                L->fatal = error < 0 ? error : -EIO;
                return;
        }
        conn_next(L, c, now);
}

static void conn_readable(Load *L, Conn *c)
{
        Response resp;
        bool eof = false;
        ssize_t m;
        uint64_t t1;

        for (;;) {
                ssize_t n;
                size_t space;

                if (c->cap - c->len < 4096) {
                        size_t cap = c->cap ? c->cap * 2 : 16384;
                        char *nb = realloc(c->buf, cap);
                        if (!nb) {
                                L->fatal = -ENOMEM;
                                return;
                        }
                        c->buf = nb;
                        c->cap = cap;
                }
                space = c->cap - c->len;
                n = recv(c->fd, c->buf + c->len, space, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n < 0) {
                        conn_failed(L, c, negative_errno());
                        return;
                }
                if (n == 0) {
                        eof = true;
                        break;
                }
                c->len += (size_t)n;
                if ((size_t)n < space)
                        break; /* the socket is drained (level-triggered: woken again if not) */
        }
        if (!c->busy) {
                /* The server closed an idle keep-alive connection: reopen on the next issue. */
                if (eof || c->len > 0)
                        conn_close(L, c);
                c->len = 0;
                return;
        }
        m = response_parse(c->buf, c->len, eof, &resp);
        if (m < 0 || (m == 0 && eof)) {
                conn_failed(L, c, m < 0 ? (int)m : -ECONNRESET);
                return;
        }
        if (m == 0)
                return;
        t1 = now_ns();
        c->busy = false;
        L->inflight--;
        L->consecutive_errors = resp.status >= 200 && resp.status < 500 ? 0 : L->consecutive_errors;
        record(L, c, t1, resp.status, &resp, c->buf + resp.header_len, (size_t)m - resp.header_len);
        if (resp.close || eof || (size_t)m != c->len) {
                conn_close(L, c);
                if (L->series)
                        L->series->reconnects++;
        }
        c->len = 0;
        conn_next(L, c, t1);
}

/* Runs one load: connects every connection first, then measures. */
static int load_run(Load *L)
{
        _cleanup_free_ struct epoll_event *evs = NULL;
        _cleanup_free_ Conn *conns = NULL;
        double cpu0 = 0, scpu0 = 0;
        uint64_t hb0, ht0, hb1, ht1, t_end;
        int r = 0;

        conns = calloc(L->conns, sizeof(*conns));
        evs = calloc(L->conns, sizeof(*evs));
        if (!conns || !evs)
                return -ENOMEM;
        L->c = conns;
        L->ep = epoll_create1(EPOLL_CLOEXEC);
        if (L->ep < 0)
                return negative_errno();
        for (unsigned i = 0; i < L->conns; i++) {
                conns[i].fd = -EBADF;
                conns[i].idx = (uint16_t)i;
                r = conn_connect(L, &conns[i]);
                if (r < 0)
                        goto out;
        }
        cpu0 = self_cpu_seconds();
        scpu0 = proc_cpu_seconds(L->server_pid);
        host_cpu(&hb0, &ht0);
        L->t_begin = now_ns();
        L->deadline = L->t_begin + L->duration_ns;
        for (unsigned i = 0; i < L->conns && load_may_issue(L, L->t_begin); i++)
                conn_issue(L, &conns[i]);

        for (;;) {
                uint64_t now = now_ns(), wake = UINT64_MAX;
                int timeout, n;

                if (L->fatal || interrupted)
                        break;
                if (L->have_parked) {
                        L->have_parked = false;
                        for (unsigned i = 0; i < L->conns; i++) {
                                Conn *c = &conns[i];
                                if (!c->parked)
                                        continue;
                                if (!load_may_issue(L, now))
                                        c->parked = false;
                                else if (c->next_at <= now)
                                        conn_issue(L, c);
                                else {
                                        L->have_parked = true;
                                        wake = MIN(wake, c->next_at);
                                }
                        }
                }
                if (L->inflight == 0 && !L->have_parked)
                        break;
                /* Wake for paced requests, the deadline, and to look for stuck requests. */
                if (L->count == 0 && now < L->deadline)
                        wake = MIN(wake, L->deadline);
                wake = MIN(wake, now + 100000000ULL);
                timeout = wake <= now ? 0 : (int)((wake - now + 999999) / 1000000);
                n = epoll_wait(L->ep, evs, (int)L->conns, timeout);
                if (n < 0 && errno != EINTR) {
                        r = negative_errno();
                        break;
                }
                for (int k = 0; k < n; k++) {
                        Conn *c = evs[k].data.ptr;
                        if (c->fd < 0)
                                continue;
                        if ((evs[k].events & EPOLLOUT) && c->busy) {
                                int w = conn_flush(L, c);
                                if (w < 0) {
                                        conn_failed(L, c, w);
                                        continue;
                                }
                        }
                        if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                                conn_readable(L, c);
                }
                now = now_ns();
                for (unsigned i = 0; n == 0 && i < L->conns; i++)
                        if (conns[i].busy && now - conns[i].t0 > REQUEST_TIMEOUT_NS)
                                conn_failed(L, &conns[i], -ETIMEDOUT);
        }
        t_end = now_ns();
        if (L->series) {
                Series *s = L->series;
                double secs = (double)(t_end - L->t_begin) / 1e9;
                double sc1 = proc_cpu_seconds(L->server_pid);

                host_cpu(&hb1, &ht1);
                s->seconds = secs;
                s->t_begin = L->t_begin - bench_epoch_ns;
                s->t_deadline = L->deadline - bench_epoch_ns;
                if (L->count == 0) {
                        s->seconds = (double)L->duration_ns / 1e9;
                        s->rps = (double)s->in_window / s->seconds;
                } else
                        s->rps = secs > 0 ? (double)s->ok / secs : 0;
                s->client_cpu = (self_cpu_seconds() - cpu0) / secs;
                if (scpu0 >= 0 && sc1 >= 0)
                        s->server_cpu = (sc1 - scpu0) / secs;
                if (ht1 > ht0)
                        s->host_busy = (double)(hb1 - hb0) / (double)(ht1 - ht0);
        }
        if (interrupted)
                r = -EINTR;
        else if (L->fatal)
                r = L->fatal;
out:
        for (unsigned i = 0; i < L->conns; i++) {
                conn_close(L, &conns[i]);
                free(conns[i].buf);
        }
        L->ep = safe_close(L->ep);
        L->c = NULL;
        return r;
}

/* ---- targets under test: fnboxd, hello ---------------------------------------------------- */

typedef struct Server {
        pid_t pid; /* 0: not ours */
        struct sockaddr_in addr;
        char token[1100];
        char dir[PATH_MAX]; /* our temp dir for it */
        char cgroup_parent[65];
} Server;

static char tmp_root[256]; /* /tmp/fnbox-bench.XXXXXX */
static char machine_line[512], fnboxd_version[128], quiet_line[192];
static double host_busy_before = -1;
static bool fnboxd_has_prewarm;

static int free_port(void)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockname(fd, (struct sockaddr *)&a, &l) < 0)
                return -EADDRNOTAVAIL;
        return ntohs(a.sin_port);
}

/* fork+exec with stdout/stderr to log_path (or a pipe into *ret_out), dying with us. */
static int spawn_server(char *const argv[], const char *log_path, int *ret_out, pid_t *ret_pid)
{
        int pipefd[2] = {-1, -1};
        pid_t pid;

        if (ret_out && pipe2(pipefd, O_CLOEXEC) < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                int fd =
                    log_path ? open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
                (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
                (void)setpgid(0, 0); /* a ^C at the terminal goes to us; we stop it in order */
                if (fd >= 0) {
                        (void)dup2(fd, 2);
                        (void)dup2(fd, 1);
                }
                if (ret_out)
                        (void)dup2(pipefd[1], 1);
                (void)execv(argv[0], argv);
                _exit(127);
        }
        if (ret_out) {
                (void)close(pipefd[1]);
                *ret_out = pipefd[0];
        }
        *ret_pid = pid;
        return 0;
}

/* SIGTERM, then SIGKILL after 10 s. Returns true if it had to be killed. */
static bool stop_process(pid_t pid)
{
        int status;

        if (pid <= 0)
                return false;
        (void)kill(pid, SIGTERM);
        for (int i = 0; i < 1000; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return false;
                (void)usleep(10000);
        }
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
        return true;
}

static int addr_set(struct sockaddr_in *a, const char *host, unsigned port)
{
        *a = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        if (strcmp(host, "localhost") == 0)
                host = "127.0.0.1";
        return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -EINVAL;
}

static void print_log_tail(const char *path)
{
        char buf[4096];
        int n = read_text(path, buf, sizeof(buf));

        if (n > 0)
                msg("--- %s ---\n%s---", path, buf);
}

static int fnboxd_start(Server *s, unsigned prewarm, const char *label)
{
        char listen[32], state[PATH_MAX + 16], log[PATH_MAX + 16], token_path[PATH_MAX + 32];
        char prewarm_s[16];
        char *argv[16];
        size_t a = 0;
        int port, r;

        memset(s, 0, sizeof(*s));
        (void)snprintf(s->cgroup_parent, sizeof(s->cgroup_parent), "%s",
                       opt.cgroup_parent ? opt.cgroup_parent : "fnbox-bench");
        (void)snprintf(s->dir, sizeof(s->dir), "%s/fnboxd-%s", tmp_root, label);
        if (mkdir(s->dir, 0700) < 0 && errno != EEXIST)
                return negative_errno();
        port = free_port();
        if (port < 0)
                return port;
        (void)snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
        (void)snprintf(state, sizeof(state), "%s/state", s->dir);
        (void)snprintf(log, sizeof(log), "%s/fnboxd.log", s->dir);
        (void)snprintf(prewarm_s, sizeof(prewarm_s), "%u", prewarm);
        argv[a++] = (char *)opt.fnboxd;
        argv[a++] = (char *)"--listen";
        argv[a++] = listen;
        argv[a++] = (char *)"--state-dir";
        argv[a++] = state;
        argv[a++] = (char *)"--cgroup-parent";
        argv[a++] = s->cgroup_parent;
        argv[a++] = (char *)"--agent";
        argv[a++] = (char *)opt.agent;
        if (fnboxd_has_prewarm) {
                argv[a++] = (char *)"--prewarm";
                argv[a++] = prewarm_s;
        }
        argv[a] = NULL;
        (void)addr_set(&s->addr, "127.0.0.1", (unsigned)port);
        r = spawn_server(argv, log, NULL, &s->pid);
        if (r < 0)
                return r;
        for (int i = 0; i < 1000; i++) {
                unsigned status = 0;
                int st;

                if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
                        s->pid = 0;
                        msg("fnbox-bench: fnboxd exited at start-up");
                        print_log_tail(log);
                        return -ECHILD;
                }
                if (http_sync(&s->addr, "GET", "/healthz", NULL, NULL, 0, 1000, &status, NULL) >=
                        0 &&
                    status == 200) {
                        (void)snprintf(token_path, sizeof(token_path), "%s/token", state);
                        r = read_text(token_path, s->token, sizeof(s->token));
                        if (r < 0)
                                return r;
                        s->token[strcspn(s->token, " \r\n")] = '\0';
                        return 0;
                }
                (void)usleep(10000);
        }
        print_log_tail(log);
        return -ETIMEDOUT;
}

/* Stops a daemon we started; true if it did not stop within 10 s of SIGTERM and was killed (its
 * sandboxes may then be left behind). */
static bool server_stop(Server *s)
{
        DIR *d;
        struct dirent *de;
        char path[PATH_MAX];
        bool killed;

        if (s->pid <= 0)
                return false;
        killed = stop_process(s->pid);
        s->pid = 0;
        /* The daemon leaves its (empty) cgroup parent behind. Ours by default (fnbox-bench):
         * remove it; rmdir fails harmlessly if anything is still in it. A parent named with
         * --cgroup-parent may be shared with another daemon: left alone. */
        if (opt.cgroup_parent)
                return killed;
        d = opendir("/sys/fs/cgroup");
        if (!d)
                return killed;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                (void)snprintf(path, sizeof(path), "/sys/fs/cgroup/%s/%s", de->d_name,
                               s->cgroup_parent);
                (void)rmdir(path);
        }
        (void)closedir(d);
        (void)snprintf(path, sizeof(path), "/sys/fs/cgroup/%s", s->cgroup_parent);
        (void)rmdir(path);
        return killed;
}

/* ---- deploying the function --------------------------------------------------------------- */

/* A one-file ustar archive (the daemon takes zip, tar and tar.gz; tar needs no checksum of the
 * data). */
static int make_tar(const char *name, const void *data, size_t len, char **ret, size_t *ret_len)
{
        size_t padded = (len + 511) / 512 * 512, total = 512 + padded + 1024;
        unsigned sum = 0;
        char *t = calloc(1, total);

        if (!t)
                return -ENOMEM;
        if (strlen(name) >= 100) {
                free(t);
                return -ENAMETOOLONG;
        }
        memcpy(t, name, strlen(name));
        memcpy(t + 100, "0000644", 7);
        memcpy(t + 108, "0000000", 7);
        memcpy(t + 116, "0000000", 7);
        (void)snprintf(t + 124, 12, "%011zo", len);
        (void)snprintf(t + 136, 12, "%011llo", (unsigned long long)time(NULL));
        memset(t + 148, ' ', 8);
        t[156] = '0';
        memcpy(t + 257, "ustar", 6);
        memcpy(t + 263, "00", 2);
        for (size_t i = 0; i < 512; i++)
                sum += (unsigned char)t[i];
        (void)snprintf(t + 148, 8, "%06o", sum);
        t[155] = ' ';
        memcpy(t + 512, data, len);
        *ret = t;
        *ret_len = total;
        return 0;
}

/* What a function is made of: one file, bundled as a one-file tar at deploy. */
typedef struct Code {
        Runtime rt;
        const char *path;    /* the file: echo.so, probe.so, app.py, index.js */
        const char *handler; /* NULL: the file's name (native) */
} Code;

static Code code_echo(Runtime rt)
{
        static char paths[_RT_MAX][PATH_MAX];

        if (rt == RT_NATIVE)
                return (Code){.rt = rt, .path = opt.echo_so};
        (void)snprintf(paths[rt], sizeof(paths[rt]), "%s/%s", opt.functions_dir,
                       runtime_sources[rt]);
        return (Code){.rt = rt, .path = paths[rt], .handler = runtime_handlers[rt]};
}

/* PUT /v1/functions/NAME with code, plus extra JSON fields (",\"keep_alive_ms\":0"). Returns the
 * HTTP status, or -errno; why gets the answer's body when it is not 2xx. */
static int fnbox_deploy(const Server *s, const char *name, const Code *code, const char *extra,
                        char *why, size_t why_size)
{
        _cleanup_free_ char *data = NULL, *tar = NULL, *b64 = NULL, *body = NULL, *answer = NULL;
        char path[128];
        const char *base = strrchr(code->path, '/') ? strrchr(code->path, '/') + 1 : code->path;
        size_t data_len = 0, tar_len = 0;
        unsigned status = 0;
        int r;

        r = read_file_at(AT_FDCWD, code->path, (size_t)64 * 1024 * 1024, &data, &data_len);
        if (r < 0) {
                (void)snprintf(why, why_size, "cannot read %s: %s", code->path, strerror(-r));
                return r;
        }
        r = make_tar(base, data, data_len, &tar, &tar_len);
        if (r < 0)
                return r;
        b64 = base64_encode(tar, tar_len);
        if (!b64)
                return -ENOMEM;
        if (asprintf(&body,
                     "{\"runtime\":\"%s\",\"handler\":\"%s\",\"memory_mb\":128,"
                     "\"timeout_ms\":10000%s,\"code\":\"%s\"}",
                     runtime_names[code->rt], code->handler ? code->handler : base, extra, b64) < 0)
                return -ENOMEM;
        (void)snprintf(path, sizeof(path), "/v1/functions/%s", name);
        r = http_sync(&s->addr, "PUT", path, s->token, body, strlen(body), 30000, &status, &answer);
        if (r < 0) {
                (void)snprintf(why, why_size, "deploy: %s", strerror(-r));
                return r;
        }
        if (status < 200 || status >= 300)
                (void)snprintf(why, why_size, "HTTP %u %s", status, answer ? answer : "");
        return (int)status;
}

/* Deploys with the extra fields the tier needs; a daemon from before the warm pool refuses
 * fields it does not know (its parser is strict), so then again without them, noted. */
static int deploy_tier(const Server *s, const char *name, const Code *code, const char *extra,
                       char *note, size_t note_size)
{
        char why[512] = "";
        int r = fnbox_deploy(s, name, code, extra, why, sizeof(why));

        if (r == 400 && extra[0] && code->rt == RT_NATIVE) {
                (void)snprintf(note, note_size, "daemon refused {%s}, deployed without it",
                               extra + 1);
                r = fnbox_deploy(s, name, code, "", why, sizeof(why));
        }
        if (r < 200 || r >= 300) {
                msg("fnbox-bench: cannot deploy %s: %s", name, why);
                if (code->rt != RT_NATIVE)
                        (void)snprintf(note, note_size, "cannot deploy: %.400s", why);
                return r < 0 ? r : -EPROTO;
        }
        return 0;
}

static void fnbox_delete(const Server *s, const char *name)
{
        char path[96];
        unsigned status;

        (void)snprintf(path, sizeof(path), "/v1/functions/%s", name);
        (void)http_sync(&s->addr, "DELETE", path, s->token, NULL, 0, 5000, &status, NULL);
}

static int invoke_request(const Server *s, const char *fn, const char *payload, char **ret,
                          size_t *ret_len)
{
        int n = asprintf(ret,
                         "POST /v1/functions/%s/invoke HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                         "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n\r\n%s",
                         fn, ntohs(s->addr.sin_port), s->token, strlen(payload), payload);
        if (n < 0)
                return -ENOMEM;
        *ret_len = (size_t)n;
        return 0;
}

static const char echo_payload[] = "{\"hello\":\"world\"}";

/* ---- measurement plans -------------------------------------------------------------------- */

static const unsigned tput_conc[] = {1, 16, 64};
static const unsigned create_conc[] = {2, 3, 4};

static bool want(const char *what)
{
        const char *p;
        size_t l = strlen(what);

        if (!opt.only)
                return true;
        for (p = opt.only; (p = strstr(p, what)); p += l)
                if ((p == opt.only || p[-1] == ',') && (p[l] == ',' || p[l] == '\0'))
                        return true;
        return false;
}

static int run_load(const struct sockaddr_in *addr, pid_t pid, const char *req, size_t req_len,
                    Series *s, unsigned conc, uint64_t count, double seconds, uint64_t gap_ns,
                    double warmup_seconds, uint64_t warmup_count)
{
        int r;

        if (!s)
                return -E2BIG;
        if (warmup_seconds > 0 || warmup_count > 0) {
                Load w = {.addr = addr,
                          .req = req,
                          .req_len = req_len,
                          .conns = conc,
                          .count = warmup_count,
                          .duration_ns = (uint64_t)(warmup_seconds * 1e9),
                          .gap_ns = gap_ns};
                r = load_run(&w);
                if (r < 0)
                        return r;
        }
        Load L = {.addr = addr,
                  .req = req,
                  .req_len = req_len,
                  .conns = conc,
                  .count = count,
                  .duration_ns = (uint64_t)(seconds * 1e9),
                  .gap_ns = gap_ns,
                  .series = s,
                  .server_pid = pid};
        r = load_run(&L);
        if (r < 0)
                (void)snprintf(s->note, sizeof(s->note), "stopped early: %s", strerror(-r));
        return r;
}

static void progress(const Series *s)
{
        char a[32];

        if (s->kind == KIND_LATENCY || s->kind == KIND_PROCESS) {
                uint64_t *v = malloc((s->n + 1) * sizeof(*v));
                size_t n = 0;
                if (v) {
                        for (size_t i = 0; i < s->n; i++)
                                if (samples[s->first + i].status == 200)
                                        v[n++] = samples[s->first + i].lat_ns;
                        qsort(v, n, sizeof(*v), cmp_u64);
                }
                msg("  %-36s n=%-6zu p50 %s%s%s", s->name, n,
                    fmt_us(v ? (double)quantile(v, n, 0.5) / 1000 : NAN, a),
                    s->mismatches ? "  (start mismatches: " : "",
                    s->mismatches ? "see table)" : "");
                free(v);
        } else
                msg("  %-36s %.0f req/s%s", s->name, s->rps,
                    s->mismatches ? "  (start mismatches: see table)" : "");
}

/* Unrecorded rounds of conc connections until (nearly) every answer is warm: the throughput of the
 * warm tier is that of conc warm instances, and a Lambda-style runtime takes tens of ms to start
 * each of them. */
static int warm_up_instances(const Server *s, const char *req, size_t req_len, unsigned conc)
{
        for (int round = 0; round < 20 && !interrupted; round++) {
                Series tmp = {.tier = START_WARM};
                size_t keep = n_samples;
                Load L = {.addr = &s->addr,
                          .req = req,
                          .req_len = req_len,
                          .conns = conc,
                          .duration_ns = 500000000ULL,
                          .series = &tmp};
                int r = load_run(&L);

                n_samples = keep; /* not samples of any series */
                if (r < 0)
                        return r;
                if (tmp.ok > 0 && tmp.starts[START_WARM] * 100 >= tmp.ok * 99)
                        return 0;
        }
        return 0;
}

/* Latency at c=1; native: throughput at c=1/16/64 and, for the cold tier, creations per second;
 * the Lambda-style runtimes: throughput of the warm tier at c=16. */
static int bench_fnbox_tier(const Server *s, Runtime rt, int tier, const char *fn)
{
        static const unsigned rt_tput_conc[] = {16};
        _cleanup_free_ char *req = NULL;
        size_t req_len = 0;
        uint64_t gap = tier == START_PREWARMED ? (uint64_t)opt.gap_ms * 1000000ULL : 0;
        uint64_t count = tier == START_WARM ? opt.n_warm
                         : rt == RT_NATIVE  ? opt.n_cold
                                            : opt.n_rt_cold;
        const unsigned *conc = tput_conc;
        size_t n_conc = ELEMENTSOF(tput_conc);
        Series *x;
        int r;

        r = invoke_request(s, fn, echo_payload, &req, &req_len);
        if (r < 0)
                return r;
        x = series_new(SYS_FNBOX, rt, KIND_LATENCY, tier, 1);
        if (!x)
                return -E2BIG;
        x->gap_ns = gap;
        /* A few unrecorded calls first: the page cache, the first cold start. */
        r = run_load(&s->addr, s->pid, req, req_len, x, 1, count, 0, gap, 0, 10);
        progress(x);
        if (r < 0)
                return r;
        /* What the pause alone costs: warm calls with the prewarmed tier's pause between them
         * (idle vCPUs wake up slower), to hold the prewarmed figure against. */
        if (tier == START_WARM && rt == RT_NATIVE && opt.gap_ms > 0) {
                uint64_t g = (uint64_t)opt.gap_ms * 1000000ULL;
                x = series_new(SYS_FNBOX, rt, KIND_LATENCY, tier, 1);
                if (!x)
                        return -E2BIG;
                x->gap_ns = g;
                x->paced_reference = true;
                (void)snprintf(x->name, sizeof(x->name), "fnbox-warm-paced-latency-c1");
                r = run_load(&s->addr, s->pid, req, req_len, x, 1, opt.n_cold, 0, g, 0, 10);
                progress(x);
                if (r < 0)
                        return r;
        }
        if (rt != RT_NATIVE) {
                if (tier != START_WARM)
                        return 0;
                conc = rt_tput_conc;
                n_conc = ELEMENTSOF(rt_tput_conc);
        }
        for (size_t i = 0; i < n_conc; i++) {
                if (tier == START_WARM) {
                        r = warm_up_instances(s, req, req_len, conc[i]);
                        if (r < 0)
                                return r;
                }
                x = series_new(SYS_FNBOX, rt, KIND_THROUGHPUT, tier, conc[i]);
                r = run_load(&s->addr, s->pid, req, req_len, x, conc[i], 0, opt.duration, 0,
                             opt.warmup, 0);
                progress(x);
                if (r < 0)
                        return r;
        }
        if (tier != START_COLD || rt != RT_NATIVE)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(create_conc); i++) {
                x = series_new(SYS_FNBOX, rt, KIND_CREATION, tier, create_conc[i]);
                r = run_load(&s->addr, s->pid, req, req_len, x, create_conc[i], 0,
                             opt.create_duration, 0, opt.warmup, 0);
                progress(x);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- host memory per idle warm instance --------------------------------------------------- */

typedef struct MemSnap {
        int64_t cgroup;    /* bytes charged to the sandboxes' parent cgroup (all sandboxes) */
        int64_t rss;       /* fnboxd's VmRSS */
        int64_t available; /* MemAvailable */
        int sandboxes;     /* child cgroups of the parent: sandboxes alive (cells included) */
} MemSnap;

typedef struct MemResult {
        bool attempted, measured;
        bool min_instances;
        unsigned asked;
        int instances;
        int sandboxes_before; /* sandboxes (stem cells, warm instances) before; -1: unknown */
        int64_t d_cgroup, d_rss, d_available;
        char cgroup_dir[PATH_MAX];
        char note[512];  /* how the instances were made, and why there is no figure */
        const char *why; /* why there is no figure, short */
} MemResult;

static MemResult mem;

static void find_memory_cgroup(const Server *s, char *dir, size_t size)
{
        char buf[4096], cand[PATH_MAX];
        char *p;
        struct statfs sfs;

        dir[0] = '\0';
        (void)snprintf(cand, sizeof(cand), "/sys/fs/cgroup/memory/%s", s->cgroup_parent);
        if (access(cand, F_OK) >= 0) {
                (void)snprintf(dir, size, "%s", cand);
                return;
        }
        /* cgroup v2: the parent sits below the daemon's own group (or its parent, when the
         * daemon moved itself into a leaf). */
        if (statfs("/sys/fs/cgroup", &sfs) < 0 || sfs.f_type != CGROUP2_SUPER_MAGIC)
                return;
        (void)snprintf(cand, sizeof(cand), "/proc/%d/cgroup", (int)(s->pid > 0 ? s->pid : 1));
        if (read_text(cand, buf, sizeof(buf)) < 0 || !(p = strstr(buf, "0::/")))
                return;
        p += 3;
        p[strcspn(p, "\n")] = '\0';
        for (int up = 0; up < 3; up++) {
                (void)snprintf(cand, sizeof(cand), "/sys/fs/cgroup%s/%s", strcmp(p, "/") ? p : "",
                               s->cgroup_parent);
                if (access(cand, F_OK) >= 0) {
                        (void)snprintf(dir, size, "%s", cand);
                        return;
                }
                char *slash = strrchr(p, '/');
                if (!slash || slash == p)
                        p = (char *)"/";
                else
                        *slash = '\0';
        }
}

static void mem_snap(const Server *s, const char *cgdir, MemSnap *m)
{
        char path[PATH_MAX + 32];
        DIR *d;
        struct dirent *de;

        *m = (MemSnap){.cgroup = -1, .rss = -1, .available = -1, .sandboxes = -1};
        if (cgdir[0]) {
                (void)snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", cgdir);
                m->cgroup = read_int_file(path);
                if (m->cgroup < 0) {
                        (void)snprintf(path, sizeof(path), "%s/memory.current", cgdir);
                        m->cgroup = read_int_file(path);
                }
                d = opendir(cgdir);
                if (d) {
                        m->sandboxes = 0;
                        while ((de = readdir(d)))
                                if (de->d_type == DT_DIR && de->d_name[0] != '.')
                                        m->sandboxes++;
                        (void)closedir(d);
                }
        }
        if (s->pid > 0) {
                (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)s->pid);
                m->rss = proc_kb_field(path, "VmRSS");
        }
        m->available = proc_kb_field("/proc/meminfo", "MemAvailable");
}

/* Waits (at most 5 s) until the number of sandboxes is `target`, or with -1 until it stayed
 * the same for half a second: sandboxes being torn down still count, and still hold memory. */
static void mem_settle(const Server *s, const char *cgdir, int target)
{
        int last = -2, same = 0;

        for (int i = 0; i < 100 && !interrupted; i++) {
                MemSnap m;

                mem_snap(s, cgdir, &m);
                if (m.sandboxes < 0 || (target >= 0 && m.sandboxes <= target))
                        return;
                same = m.sandboxes == last ? same + 1 : 0;
                if (target < 0 && same >= 10)
                        return;
                last = m.sandboxes;
                (void)usleep(50000);
        }
}

/* K idle warm instances: min_instances K when the daemon has it, else K parallel slow calls
 * (probe.so sleeping 300 ms, so that no call finds another's instance free). */
static int bench_memory(const Server *s)
{
        _cleanup_free_ char *req = NULL;
        char extra[64], note[256] = "";
        MemSnap before, after;
        size_t req_len = 0;
        bool use_min;
        int r;

        mem.attempted = true;
        mem.asked = opt.mem_instances;
        find_memory_cgroup(s, mem.cgroup_dir, sizeof(mem.cgroup_dir));
        (void)usleep(1000000); /* let stem cells refill and earlier sandboxes go */
        mem_settle(s, mem.cgroup_dir, -1);
        mem_snap(s, mem.cgroup_dir, &before);
        mem.sandboxes_before = before.sandboxes;

        (void)snprintf(extra, sizeof(extra), ",\"min_instances\":%u", opt.mem_instances);
        Code echo = code_echo(RT_NATIVE);
        r = deploy_tier(s, "bench-mem", &echo, extra, note, sizeof(note));
        if (r < 0)
                return r;
        use_min = note[0] == '\0';
        mem.min_instances = use_min;
        if (use_min) {
                /* Wait for the daemon to make them. */
                for (int i = 0; i < 200; i++) {
                        MemSnap m;
                        mem_snap(s, mem.cgroup_dir, &m);
                        if (m.sandboxes >= 0 && before.sandboxes >= 0 &&
                            m.sandboxes - before.sandboxes >= (int)opt.mem_instances)
                                break;
                        (void)usleep(50000);
                }
        } else {
                const char *so =
                    opt.probe_so && access(opt.probe_so, R_OK) >= 0 ? opt.probe_so : opt.echo_so;
                Code code = {.rt = RT_NATIVE, .path = so};
                r = deploy_tier(s, "bench-mem", &code, "", note, sizeof(note));
                if (r < 0)
                        return r;
                r = invoke_request(s, "bench-mem", so == opt.echo_so ? echo_payload : "sleep 300",
                                   &req, &req_len);
                if (r < 0)
                        return r;
                Series tmp = {.tier = START_NONE};
                Load L = {.addr = &s->addr,
                          .req = req,
                          .req_len = req_len,
                          .conns = opt.mem_instances,
                          .count = opt.mem_instances,
                          .series = &tmp};
                size_t keep = n_samples;
                r = load_run(&L);
                n_samples = keep; /* not samples of any series */
                if (r < 0)
                        return r;
                (void)snprintf(mem.note, sizeof(mem.note),
                               "daemon has no min_instances: %u parallel calls of %s%s (%" PRIu64
                               " ok)",
                               opt.mem_instances, strrchr(so, '/') ? strrchr(so, '/') + 1 : so,
                               so == opt.echo_so ? "" : " \"sleep 300\"", tmp.ok);
        }
        (void)usleep(2000000); /* idle: past the freeze grace, settled */
        mem_snap(s, mem.cgroup_dir, &after);
        if (before.sandboxes < 0 || after.sandboxes < 0) {
                mem.why = "cannot find the sandboxes' memory cgroup";
                (void)snprintf(mem.note + strlen(mem.note), sizeof(mem.note) - strlen(mem.note),
                               "%s%s", mem.note[0] ? "; " : "", mem.why);
                return 0;
        }
        mem.instances = after.sandboxes - before.sandboxes;
        mem.d_cgroup = after.cgroup - before.cgroup;
        mem.d_rss = after.rss >= 0 && before.rss >= 0 ? after.rss - before.rss : 0;
        mem.d_available = before.available - after.available;
        if (mem.instances <= 0) {
                mem.why = "no idle instance stayed after the calls (no warm pool)";
                (void)snprintf(mem.note + strlen(mem.note), sizeof(mem.note) - strlen(mem.note),
                               "%s%s", mem.note[0] ? "; " : "", mem.why);
                return 0;
        }
        mem.measured = true;
        return 0;
}

/* The memory figure's instances go before the next series (min_instances never expire). */
static void memory_cleanup(const Server *s)
{
        fnbox_delete(s, "bench-mem");
        if (mem.attempted && mem.sandboxes_before >= 0)
                mem_settle(s, mem.cgroup_dir, mem.sandboxes_before);
}

/* ---- the fnbox runs ----------------------------------------------------------------------- */

static char fnbox_notes[48][400];
static size_t n_fnbox_notes;

static void fnbox_note(const char *fmt, ...) _printf_(1, 2);
static void fnbox_note(const char *fmt, ...)
{
        va_list ap;

        if (n_fnbox_notes >= ELEMENTSOF(fnbox_notes))
                return;
        va_start(ap, fmt);
        (void)vsnprintf(fnbox_notes[n_fnbox_notes++], sizeof(fnbox_notes[0]), fmt, ap);
        va_end(ap);
}

static int server_from_url(Server *s)
{
        char host[64];
        unsigned port = 80;
        const char *p = opt.url;
        size_t hl;

        memset(s, 0, sizeof(*s));
        (void)snprintf(s->cgroup_parent, sizeof(s->cgroup_parent), "%s",
                       opt.cgroup_parent ? opt.cgroup_parent : "fnbox");
        if (strncmp(p, "http://", 7) != 0)
                return -EINVAL;
        p += 7;
        hl = strcspn(p, ":/");
        if (hl == 0 || hl >= sizeof(host))
                return -EINVAL;
        memcpy(host, p, hl);
        host[hl] = '\0';
        if (p[hl] == ':')
                port = (unsigned)strtoul(p + hl + 1, NULL, 10);
        if (addr_set(&s->addr, host, port) < 0)
                return -EINVAL;
        if (opt.token)
                (void)snprintf(s->token, sizeof(s->token), "%s", opt.token);
        else if (opt.token_file) {
                int r = read_text(opt.token_file, s->token, sizeof(s->token));
                if (r < 0)
                        return r;
                s->token[strcspn(s->token, " \r\n")] = '\0';
        }
        return 0;
}

/* bench-cold, bench-warm, ... for native (the names from before there were runtimes);
 * bench-python3-cold, ... */
static void function_name(Runtime rt, int tier, char *buf, size_t size)
{
        (void)snprintf(buf, size, "bench-%s%s%s", rt == RT_NATIVE ? "" : runtime_names[rt],
                       rt == RT_NATIVE ? "" : "-", start_names[tier]);
}

static bool runtime_failed[_RT_MAX];

/* Deploys the echo of rt for tier and measures it. A Lambda-style runtime that cannot be deployed
 * (no shims, no interpreter) is noted and skipped; native cannot be skipped. */
static int bench_runtime_tier(const Server *s, Runtime rt, int tier)
{
        Code code = code_echo(rt);
        const char *extra = tier == START_WARM ? "" : ",\"keep_alive_ms\":0";
        char fn[64], note[512] = "";
        int r;

        if (!runtime_wanted[rt] || runtime_failed[rt] || !want(start_names[tier]) || interrupted)
                return 0;
        if (rt != RT_NATIVE)
                msg("  %s, %s tier", runtime_names[rt], start_names[tier]);
        function_name(rt, tier, fn, sizeof(fn));
        r = deploy_tier(s, fn, &code, extra, note, sizeof(note));
        if (note[0])
                fnbox_note("%s %s tier: %s", runtime_names[rt], start_names[tier], note);
        if (r < 0 && rt != RT_NATIVE) {
                runtime_failed[rt] = true;
                return 0;
        }
        if (r >= 0)
                r = bench_fnbox_tier(s, rt, tier, fn);
        /* Its instances go with it: they would hold memory and CPU through later series. */
        if (rt != RT_NATIVE)
                fnbox_delete(s, fn);
        return r;
}

static int bench_fnbox(void)
{
        Server s;
        int r = 0;

        if (opt.url) {
                /* A running daemon: its --prewarm is what it is; every tier is asked for by the
                 * deploy settings alone, and the answers say what they got. */
                r = server_from_url(&s);
                if (r < 0)
                        return r;
                fnbox_note("daemon at %s (not started by fnbox-bench): its --prewarm applies to "
                           "every tier",
                           opt.url);
                for (Runtime rt = 0; rt < _RT_MAX && r >= 0; rt++)
                        r = bench_runtime_tier(&s, rt, START_COLD);
                if (r < 0)
                        goto out;
                goto pool_tiers;
        }

        if (want("cold")) {
                msg("fnboxd --prewarm 0: cold tier");
                r = fnboxd_start(&s, 0, "cold");
                if (r < 0)
                        return r;
                for (Runtime rt = 0; rt < _RT_MAX && r >= 0; rt++)
                        r = bench_runtime_tier(&s, rt, START_COLD);
                if (server_stop(&s))
                        fnbox_note("fnboxd --prewarm 0 did not stop within 10 s of SIGTERM and "
                                   "was killed: its sandboxes may be left behind");
                if (r < 0)
                        return r;
        }
        if (!want("prewarmed") && !want("warm") && !want("memory"))
                return 0;
        msg("fnboxd --prewarm %u: prewarmed and warm tiers", opt.prewarm);
        r = fnboxd_start(&s, opt.prewarm, "pool");
        if (r < 0)
                return r;

pool_tiers:
        /* Native first, then its memory figure (in the state the native warm series left), then
         * the Lambda-style runtimes, each removed when measured. */
        for (Runtime rt = 0; rt < _RT_MAX && r >= 0; rt++) {
                r = bench_runtime_tier(&s, rt, START_PREWARMED);
                if (r >= 0)
                        r = bench_runtime_tier(&s, rt, START_WARM);
                if (r < 0 || rt != RT_NATIVE || !want("memory") || !runtime_wanted[RT_NATIVE] ||
                    interrupted)
                        continue;
                msg("memory per idle warm instance (%u instances)", opt.mem_instances);
                r = bench_memory(&s);
                memory_cleanup(&s);
        }
out:
        if (opt.url) {
                /* Not our daemon: take our functions (and bench-mem's instances) away. */
                char fn[64];
                for (Runtime rt = 0; rt < _RT_MAX; rt++)
                        for (int t = START_COLD; t <= START_WARM; t++) {
                                function_name(rt, t, fn, sizeof(fn));
                                fnbox_delete(&s, fn);
                        }
                fnbox_delete(&s, "bench-mem");
        }
        if (server_stop(&s))
                fnbox_note("fnboxd --prewarm %u did not stop within 10 s of SIGTERM and was "
                           "killed: its sandboxes may be left behind",
                           opt.prewarm);
        return r;
}

/* ---- baselines ---------------------------------------------------------------------------- */

static char baseline_notes[4][400];
static size_t n_baseline_notes;

static void baseline_note(const char *fmt, ...) _printf_(1, 2);
static void baseline_note(const char *fmt, ...)
{
        va_list ap;

        if (n_baseline_notes >= ELEMENTSOF(baseline_notes))
                return;
        va_start(ap, fmt);
        (void)vsnprintf(baseline_notes[n_baseline_notes++], sizeof(baseline_notes[0]), fmt, ap);
        va_end(ap);
        msg("  %s", baseline_notes[n_baseline_notes - 1]);
}

static bool find_in_path(const char *name, char *buf, size_t size)
{
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = strdup(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
        char *save = NULL;

        if (!copy)
                return false;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                (void)snprintf(buf, size, "%s/%s", d, name);
                if (access(buf, X_OK) >= 0)
                        return true;
        }
        return false;
}

typedef struct RunRecord {
        uint64_t lat_ns, t_ns;
        int status;
} RunRecord;

/* Times `runs` executions of argv (stdout to /dev/null, stderr to err_path); records go to fd.
 * In the crun case this runs in a child that left the host's mount namespace first. */
static void time_runs(char *const argv[], uint64_t runs, const char *err_path, int fd,
                      char *id_slot, size_t id_size)
{
        for (uint64_t i = 0; i < runs && !interrupted; i++) {
                posix_spawn_file_actions_t fa;
                RunRecord rec;
                uint64_t t0;
                pid_t pid;
                int status = 0, r;

                if (id_slot)
                        (void)snprintf(id_slot, id_size, "fnbox-bench-%d-%" PRIu64, (int)getpid(),
                                       i);
                (void)posix_spawn_file_actions_init(&fa);
                (void)posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
                (void)posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
                (void)posix_spawn_file_actions_addopen(&fa, 2, err_path,
                                                       O_WRONLY | O_CREAT | O_TRUNC, 0600);
                t0 = now_ns();
                r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
                (void)posix_spawn_file_actions_destroy(&fa);
                if (r == 0)
                        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                                ;
                rec = (RunRecord){.lat_ns = now_ns() - t0,
                                  .t_ns = t0 - bench_epoch_ns,
                                  .status = r != 0 ? -1 : status};
                if (loop_write(fd, &rec, sizeof(rec)) < 0 || rec.status != 0)
                        break;
        }
}

/* Collects what time_runs wrote into a process series. */
static int collect_runs(int fd, Series *s, const char *err_path)
{
        RunRecord rec;

        while (read(fd, &rec, sizeof(rec)) == (ssize_t)sizeof(rec)) {
                Sample *x = sample_add(s);
                if (!x)
                        return -ENOMEM;
                x->t_ns = rec.t_ns;
                x->lat_ns = rec.lat_ns;
                x->status = rec.status == 0 ? 200 : 500;
                if (rec.status == 0)
                        s->ok++;
                else {
                        char err[160] = "";
                        (void)read_text(err_path, err, sizeof(err));
                        err[strcspn(err, "\n")] = '\0';
                        s->errors++;
                        (void)snprintf(s->first_error, sizeof(s->first_error), "exit status %d%s%s",
                                       WIFEXITED(rec.status) ? WEXITSTATUS(rec.status) : -1,
                                       err[0] ? ": " : "", err);
                }
        }
        return 0;
}

static int crun_bundle(const char *crun, const char *dir, char *why, size_t why_size)
{
        char path[PATH_MAX + 64], out[2048], cc[PATH_MAX];
        json_t *cfg, *proc;
        json_error_t jerr;
        int st, r;

        (void)snprintf(path, sizeof(path), "%s/rootfs/bin", dir);
        r = mkdir_p(path, 0755);
        if (r < 0)
                return r;
        (void)snprintf(path, sizeof(path), "%s/true.c", dir);
        r = write_file_atomic(path, "int main(void)\n{\n\treturn 0;\n}\n", 29, 0644);
        if (r < 0)
                return r;
        if (!find_in_path(getenv("CC") ? getenv("CC") : "cc", cc, sizeof(cc))) {
                (void)snprintf(why, why_size, "no C compiler (cc) for a static /bin/true");
                return -ENOENT;
        }
        {
                char *argv[] = {
                    cc,           (char *)"-static",         (char *)"-Os",    (char *)"-s",
                    (char *)"-o", (char *)"rootfs/bin/true", (char *)"true.c", NULL};
                st = run_capture(argv, dir, out, sizeof(out));
        }
        if (st != 0) {
                out[strcspn(out, "\n")] = '\0';
                (void)snprintf(why, why_size,
                               "cc -static failed (is libc6-dev's libc.a installed?): %.200s", out);
                return -ENOENT;
        }
        {
                char *argv[] = {(char *)crun, (char *)"spec", (char *)"--bundle", (char *)dir,
                                NULL};
                st = run_capture(argv, dir, out, sizeof(out));
        }
        (void)snprintf(path, sizeof(path), "%s/config.json", dir);
        cfg = st == 0 ? json_load_file(path, 0, &jerr) : NULL;
        proc = cfg ? json_object_get(cfg, "process") : NULL;
        if (!proc) {
                (void)snprintf(why, why_size, "crun spec failed: %.200s", out);
                json_decref(cfg);
                return -EIO;
        }
        /* What is measured: create, start and delete of a container running a static /bin/true,
         * with crun's default namespaces (pid, net, ipc, uts, mount) and its own cgroup. */
        (void)json_object_set_new(proc, "terminal", json_false());
        (void)json_object_set_new(proc, "args", json_pack("[s]", "/bin/true"));
        r = json_dump_file(cfg, path, JSON_INDENT(2));
        json_decref(cfg);
        return r < 0 ? -EIO : 0;
}

static void bench_crun(void)
{
        char crun[PATH_MAX], dir[PATH_MAX], state[PATH_MAX + 16], err_path[PATH_MAX + 16];
        char why[400] = "", id[64] = "", ver[256] = "";
        int pipefd[2], st;
        pid_t pid;
        Series *s;

        if (!find_in_path("crun", crun, sizeof(crun))) {
                baseline_note("crun: not installed, skipped (apt-get install crun)");
                return;
        }
        {
                char *argv[] = {crun, (char *)"--version", NULL};
                (void)run_capture(argv, NULL, ver, sizeof(ver));
                ver[strcspn(ver, "\n")] = '\0';
        }
        (void)snprintf(dir, sizeof(dir), "%s/crun-bundle", tmp_root);
        (void)snprintf(state, sizeof(state), "%s/crun-state", tmp_root);
        (void)snprintf(err_path, sizeof(err_path), "%s/crun.err", tmp_root);
        if (crun_bundle(crun, dir, why, sizeof(why)) < 0) {
                baseline_note("crun: skipped: %s", why);
                return;
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return;
        pid = fork();
        if (pid < 0)
                return;
        if (pid == 0) {
                char *argv[] = {
                    crun, (char *)"--root", state, (char *)"run", (char *)"--bundle", dir, id,
                    NULL};
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void)close(pipefd[0]);
                /* crun 1.8.1 refuses a hybrid host ("cgroups in hybrid mode not supported")
                 * while the v2 `unified` mount is there; in a mount namespace of our own, without
                 * that mount, it uses the v1 controllers. Nothing changes for the host. */
                if (unshare(CLONE_NEWNS) < 0 ||
                    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                        _exit(1);
                (void)umount2("/sys/fs/cgroup/unified", MNT_DETACH);
                time_runs(argv, opt.baseline_runs, err_path, pipefd[1], id, sizeof(id));
                _exit(0);
        }
        (void)close(pipefd[1]);
        s = series_new(SYS_CRUN, RT_NATIVE, KIND_PROCESS, START_NONE, 1);
        (void)collect_runs(pipefd[0], s, err_path);
        (void)close(pipefd[0]);
        (void)waitpid(pid, &st, 0);
        (void)snprintf(s->note, sizeof(s->note), "%.120s; crun run of static /bin/true", ver);
        if (s->errors)
                baseline_note("crun: failed: %s", s->first_error);
        progress(s);
}

static void bench_bwrap(void)
{
        char bwrap[PATH_MAX], err_path[PATH_MAX + 16], ver[128] = "";
        int pipefd[2];
        Series *s;

        if (!find_in_path("bwrap", bwrap, sizeof(bwrap))) {
                baseline_note("bwrap: not installed, skipped (apt-get install bubblewrap)");
                return;
        }
        {
                char *argv[] = {bwrap, (char *)"--version", NULL};
                (void)run_capture(argv, NULL, ver, sizeof(ver));
                ver[strcspn(ver, "\n")] = '\0';
        }
        (void)snprintf(err_path, sizeof(err_path), "%s/bwrap.err", tmp_root);
        if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
                return;
        s = series_new(SYS_BWRAP, RT_NATIVE, KIND_PROCESS, START_NONE, 1);
        {
                char *argv[] = {bwrap,
                                (char *)"--unshare-all",
                                (char *)"--ro-bind",
                                (char *)"/",
                                (char *)"/",
                                (char *)"/bin/true",
                                NULL};
                /* Records are written as they come: drain the pipe in rounds. */
                for (uint64_t done = 0; done < opt.baseline_runs && !interrupted;) {
                        uint64_t k = MIN((uint64_t)256, opt.baseline_runs - done);
                        uint64_t before = s->ok + s->errors;
                        time_runs(argv, k, err_path, pipefd[1], NULL, 0);
                        (void)collect_runs(pipefd[0], s, err_path);
                        done += k;
                        if (s->errors || s->ok + s->errors == before)
                                break;
                }
        }
        (void)close(pipefd[0]);
        (void)close(pipefd[1]);
        (void)snprintf(s->note, sizeof(s->note), "%s; bwrap --unshare-all --ro-bind / / /bin/true",
                       ver);
        if (s->errors)
                baseline_note("bwrap: failed: %s", s->first_error);
        progress(s);
}

static int bench_hello(void)
{
        _cleanup_free_ char *req = NULL;
        char *argv[] = {(char *)opt.hello, (char *)"--port", (char *)"0", NULL};
        char line[64] = "";
        Server s = {.pid = 0};
        unsigned port = 0;
        size_t req_len = 0;
        int out = -1, r;
        ssize_t n;
        Series *x;

        if (!opt.hello || access(opt.hello, X_OK) < 0) {
                baseline_note("hello: %s not found, skipped", opt.hello ? opt.hello : "hello-mhd");
                return 0;
        }
        r = spawn_server(argv, NULL, &out, &s.pid);
        if (r < 0)
                return r;
        n = read(out, line, sizeof(line) - 1);
        (void)close(out);
        if (n <= 0 || sscanf(line, "PORT %u", &port) != 1) {
                stop_process(s.pid);
                baseline_note("hello: hello-mhd did not start");
                return 0;
        }
        (void)addr_set(&s.addr, "127.0.0.1", port);
        /* The very bytes of an fnbox invocation, with a made-up token of the same length. */
        memset(s.token, 'x', 64);
        r = invoke_request(&s, "bench-warm", echo_payload, &req, &req_len);
        if (r < 0)
                goto out;
        x = series_new(SYS_HELLO, RT_NATIVE, KIND_LATENCY, START_NONE, 1);
        r = run_load(&s.addr, s.pid, req, req_len, x, 1, opt.n_warm, 0, 0, 0, 100);
        progress(x);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(tput_conc); i++) {
                x = series_new(SYS_HELLO, RT_NATIVE, KIND_THROUGHPUT, START_NONE, tput_conc[i]);
                r = run_load(&s.addr, s.pid, req, req_len, x, tput_conc[i], 0, opt.duration, 0,
                             opt.warmup, 0);
                progress(x);
        }
out:
        stop_process(s.pid);
        return r;
}

/* ---- other work on the host -------------------------------------------------------------- */

/* A child process adds up, once a second, the CPU time of every process that is neither ours
 * (this program and its descendants: the daemons, their sandboxes, the baselines) nor a kernel
 * thread. Children a process reaped count in its cutime/cstime, so a build or a test suite
 * started during the run shows, short-lived compilers included. Kernel threads (softirqs, netns
 * teardown) are left out: our own sandboxes cause much of their work. */
typedef struct OtherSample {
        uint64_t t0_ns, t1_ns; /* since the benchmark started */
        double cores;          /* CPU of other processes over [t0, t1], in cores */
} OtherSample;

#define OTHER_SAMPLES_MAX 36000
static OtherSample *other;
static size_t n_other;
static pid_t other_pid;
static int other_fd = -EBADF;
static uint64_t steal0, steal_total0;
static double steal_fraction = NAN; /* of the host's time during the run */

typedef struct ProcCpu {
        pid_t pid, ppid;
        uint64_t ticks; /* utime + stime + cutime + cstime */
        bool kthread, ours;
} ProcCpu;

static int cmp_proc(const void *a, const void *b)
{
        pid_t x = ((const ProcCpu *)a)->pid, y = ((const ProcCpu *)b)->pid;
        return x < y ? -1 : x > y;
}

static ProcCpu *proc_find(ProcCpu *v, size_t n, pid_t pid)
{
        ProcCpu key = {.pid = pid};
        return bsearch(&key, v, n, sizeof(*v), cmp_proc);
}

/* Every process of the host, sorted by pid, with whether it descends from root. */
static size_t scan_procs(ProcCpu *v, size_t max, pid_t root)
{
        DIR *d = opendir("/proc");
        struct dirent *de;
        size_t n = 0;

        if (!d)
                return 0;
        while ((de = readdir(d)) && n < max) {
                char path[300], buf[1024], *p;
                unsigned long long ut, st;
                long long cut, cst;
                unsigned flags;
                char state;
                int ppid;

                if (!isdigit((unsigned char)de->d_name[0]))
                        continue;
                (void)snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
                if (read_text(path, buf, sizeof(buf)) < 0 || !(p = strrchr(buf, ')')))
                        continue;
                if (sscanf(p + 2, "%c %d %*d %*d %*d %*d %u %*u %*u %*u %*u %llu %llu %lld %lld",
                           &state, &ppid, &flags, &ut, &st, &cut, &cst) != 7)
                        continue;
                v[n++] =
                    (ProcCpu){.pid = (pid_t)atoi(de->d_name),
                              .ppid = ppid,
                              .ticks = ut + st + (uint64_t)MAX(cut, 0LL) + (uint64_t)MAX(cst, 0LL),
                              .kthread = (flags & 0x00200000) != 0}; /* PF_KTHREAD */
        }
        (void)closedir(d);
        qsort(v, n, sizeof(*v), cmp_proc);
        for (size_t i = 0; i < n; i++) {
                const ProcCpu *q = &v[i];
                for (int depth = 0; q && depth < 64; depth++) {
                        if (q->pid == root) {
                                v[i].ours = true;
                                break;
                        }
                        q = q->ppid > 0 ? proc_find(v, n, q->ppid) : NULL;
                }
        }
        return n;
}

static void other_sampler(pid_t root, int fd)
{
        const size_t max = 65536;
        ProcCpu *a = calloc(max, sizeof(*a)), *b = calloc(max, sizeof(*b));
        size_t na, nb;
        uint64_t t0, t1;
        double tck = (double)sysconf(_SC_CLK_TCK);

        if (!a || !b)
                _exit(1);
        t0 = now_ns();
        na = scan_procs(a, max, root);
        for (;;) {
                OtherSample rec;
                uint64_t ticks = 0;

                (void)usleep(1000000);
                if (getppid() != root)
                        _exit(0);
                t1 = now_ns();
                nb = scan_procs(b, max, root);
                for (size_t i = 0; i < nb; i++) {
                        const ProcCpu *old;
                        if (b[i].ours || b[i].kthread)
                                continue;
                        old = proc_find(a, na, b[i].pid);
                        /* New since the last scan: all of its time is in this second. */
                        ticks += old ? (b[i].ticks > old->ticks ? b[i].ticks - old->ticks : 0)
                                     : b[i].ticks;
                }
                /* A process that went was reaped: its whole time moved into its parent's
                 * cutime/cstime, counted above, of which the part up to the last scan was
                 * counted already. */
                for (size_t i = 0; i < na; i++)
                        if (!a[i].ours && !a[i].kthread && !proc_find(b, nb, a[i].pid))
                                ticks -= MIN(ticks, a[i].ticks);
                rec = (OtherSample){.t0_ns = t0 - bench_epoch_ns,
                                    .t1_ns = t1 - bench_epoch_ns,
                                    .cores = (double)ticks / tck / ((double)(t1 - t0) / 1e9)};
                if (write(fd, &rec, sizeof(rec)) != (ssize_t)sizeof(rec))
                        _exit(1);
                ProcCpu *tmp = a;
                a = b;
                b = tmp;
                na = nb;
                t0 = t1;
        }
}

static void other_start(void)
{
        char path[PATH_MAX];
        pid_t root = getpid();

        uint64_t busy;

        host_cpu_steal(&busy, &steal_total0, &steal0);
        (void)snprintf(path, sizeof(path), "%s/other-cpu", tmp_root);
        other_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (other_fd < 0)
                return;
        other_pid = fork();
        if (other_pid == 0) {
                (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void)signal(SIGTERM, SIG_DFL);
                (void)signal(SIGINT, SIG_IGN);
                other_sampler(root, other_fd);
        }
        if (other_pid < 0)
                other_pid = 0;
}

static void other_stop(void)
{
        OtherSample rec;
        uint64_t busy, total, steal;

        host_cpu_steal(&busy, &total, &steal);
        if (total > steal_total0)
                steal_fraction = (double)(steal - steal0) / (double)(total - steal_total0);
        if (other_pid <= 0 || other_fd < 0)
                return;
        stop_process(other_pid);
        other_pid = 0;
        other = calloc(OTHER_SAMPLES_MAX, sizeof(*other));
        if (!other || lseek(other_fd, 0, SEEK_SET) < 0)
                return;
        while (n_other < OTHER_SAMPLES_MAX &&
               read(other_fd, &rec, sizeof(rec)) == (ssize_t)sizeof(rec))
                other[n_other++] = rec;
        other_fd = safe_close(other_fd);
}

/* Mean CPU of other processes over [t0, t1] (ns since the start), in cores; the busiest second
 * in *ret_max. NAN without samples. */
static double other_over(uint64_t t0, uint64_t t1, double *ret_max)
{
        double w = 0, sum = 0, mx = NAN;

        for (size_t i = 0; i < n_other; i++) {
                uint64_t a = MAX(t0, other[i].t0_ns), b = MIN(t1, other[i].t1_ns);
                if (b <= a)
                        continue;
                w += (double)(b - a);
                sum += other[i].cores * (double)(b - a);
                mx = isnan(mx) ? other[i].cores : MAX(mx, other[i].cores);
        }
        if (ret_max)
                *ret_max = mx;
        return w > 0 ? sum / w : NAN;
}

/* When a series ran: its first request to its last answer. */
static double series_other(const Series *s)
{
        uint64_t t0 = UINT64_MAX, t1 = 0;

        for (size_t i = 0; i < s->n; i++) {
                const Sample *x = &samples[s->first + i];
                t0 = MIN(t0, x->t_ns);
                t1 = MAX(t1, x->t_ns + x->lat_ns);
        }
        return t1 > t0 ? other_over(t0, t1, NULL) : NAN;
}

static char other_line[200];

/* The run's figure for other work, and a note per series that ran while other processes used at
 * least a tenth of the host. */
static void other_notes(void)
{
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        double mx, mean = other_over(0, UINT64_MAX, &mx);

        if (isnan(mean)) {
                (void)snprintf(other_line, sizeof(other_line),
                               "other processes during the run: not measured");
                return;
        }
        (void)snprintf(other_line, sizeof(other_line),
                       "other processes during the run: %.1f%% of the host on average, %.0f%% in "
                       "the busiest second; steal (hypervisor) %.1f%%",
                       mean / (double)ncpu * 100, mx / (double)ncpu * 100, steal_fraction * 100);
        if (steal_fraction >= 0.05)
                fnbox_note("the hypervisor took %.0f%% of the vCPUs' time (steal) during the run: "
                           "every figure is distorted",
                           steal_fraction * 100);
        if (mean / (double)ncpu >= 0.05)
                fnbox_note("other processes used %.0f%% of the host on average during the run: "
                           "every figure is distorted; run again on a quiet machine",
                           mean / (double)ncpu * 100);
        for (size_t i = 0; i < n_series; i++) {
                double o = series_other(&series[i]) / (double)ncpu;
                if (!isnan(o) && o >= 0.10)
                        fnbox_note("%s ran while other processes used %.0f%% of the host",
                                   series[i].name, o * 100);
        }
}

/* ---- figures ------------------------------------------------------------------------------ */

typedef struct Stats {
        size_t n;
        double p50, p90, p99, max; /* µs */
} Stats;

static bool sample_counts(const Series *s, const Sample *x)
{
        return x->status >= 200 && x->status < 300 && (s->tier < 0 || x->start == s->tier);
}

/* Sorted latencies (ns) of the OK samples that started as asked. */
static uint64_t *series_latencies(const Series *s, size_t *ret_n)
{
        uint64_t *v = malloc((s->n + 1) * sizeof(*v));
        size_t n = 0;

        if (!v)
                return NULL;
        for (size_t i = 0; i < s->n; i++)
                if (sample_counts(s, &samples[s->first + i]))
                        v[n++] = samples[s->first + i].lat_ns;
        qsort(v, n, sizeof(*v), cmp_u64);
        *ret_n = n;
        return v;
}

static Stats series_stats(const Series *s)
{
        Stats st = {.p50 = NAN, .p90 = NAN, .p99 = NAN, .max = NAN};
        _cleanup_free_ uint64_t *v = NULL;
        size_t n = 0;

        if (!s || !(v = series_latencies(s, &n)) || n == 0)
                return st;
        st.n = n;
        st.p50 = (double)quantile(v, n, 0.50) / 1000;
        st.p90 = (double)quantile(v, n, 0.90) / 1000;
        st.p99 = (double)quantile(v, n, 0.99) / 1000;
        st.max = (double)v[n - 1] / 1000;
        return st;
}

/* Share of OK answers that started as asked. */
static double match_fraction(const Series *s)
{
        if (!s || s->ok == 0)
                return 0;
        if (s->tier < 0)
                return 1;
        return (double)(s->ok - s->mismatches) / (double)s->ok;
}

/* Cold starts completed within the window, per second. */
static double creation_rate(const Series *s)
{
        uint64_t n = 0;

        if (!s || s->seconds <= 0)
                return NAN;
        for (size_t i = 0; i < s->n; i++) {
                const Sample *x = &samples[s->first + i];
                if (sample_counts(s, x) && x->t_ns + x->lat_ns <= s->t_deadline)
                        n++;
        }
        return (double)n / ((double)(s->t_deadline - s->t_begin) / 1e9);
}

typedef struct TierPhases {
        bool have;
        size_t n;
        double med[PHASES_MAX]; /* µs, NAN if absent */
        double client_p50;      /* µs */
        double outside;         /* median of (client latency - Server-Timing total), µs */
} TierPhases;

static TierPhases tier_phases[_RT_MAX][3];

/* Medians of each Server-Timing phase of a series' matching answers, and of what lies outside. */
static void series_phases(const Series *s, TierPhases *tp)
{
        int total = phase_lookup("total");
        _cleanup_free_ int64_t *v = NULL;

        *tp = (TierPhases){.client_p50 = NAN, .outside = NAN};
        for (size_t k = 0; k < PHASES_MAX; k++)
                tp->med[k] = NAN;
        if (!s || !(v = malloc((s->n + 1) * sizeof(*v))))
                return;
        tp->client_p50 = series_stats(s).p50;
        for (size_t k = 0; k < n_phase_names; k++) {
                size_t n = 0;
                for (size_t i = 0; i < s->n; i++) {
                        const Sample *x = &samples[s->first + i];
                        if (sample_counts(s, x) && x->phase_us[k] >= 0)
                                v[n++] = x->phase_us[k];
                }
                tp->med[k] = median_i64(v, n);
                if (n > 0)
                        tp->have = true;
                tp->n = MAX(tp->n, n);
        }
        if (total >= 0) {
                size_t n = 0;
                for (size_t i = 0; i < s->n; i++) {
                        const Sample *x = &samples[s->first + i];
                        if (sample_counts(s, x) && x->phase_us[total] >= 0)
                                v[n++] = (int64_t)(x->lat_ns / 1000) - x->phase_us[total];
                }
                tp->outside = median_i64(v, n);
        }
}

static TierPhases paced_warm_phases;

static void compute_phases(void)
{
        for (int rt_t = 0; rt_t < _RT_MAX * 3; rt_t++) {
                Runtime rt = (Runtime)(rt_t / 3);
                int t = rt_t % 3;

                series_phases(series_find(SYS_FNBOX, rt, KIND_LATENCY, t, 1), &tier_phases[rt][t]);
        }
        series_phases(series_paced_warm(), &paced_warm_phases);
}

typedef enum TargetState {
        TARGET_NA,
        TARGET_MET,
        TARGET_MISSED,
} TargetState;

typedef struct Target {
        const char *what, *goal;
        char value[256];
        TargetState state;
} Target;

static Target targets[12];
static size_t n_targets;

typedef struct Ratio {
        const char *what;
        double value;
        char detail[160];
} Ratio;

static Ratio ratios[3];

static Target *target_add(const char *what, const char *goal)
{
        Target *t = &targets[n_targets++];

        *t = (Target){.what = what, .goal = goal, .state = TARGET_NA};
        return t;
}

/* A tier's figure counts when at least 95% of its answers started as asked. */
static bool tier_valid(const Series *s, Target *t, const char *tier)
{
        if (!s || s->ok == 0) {
                (void)snprintf(t->value, sizeof(t->value), "not measured");
                return false;
        }
        if (match_fraction(s) < 0.95) {
                (void)snprintf(t->value, sizeof(t->value), "n/a: %.0f%% of answers were %s",
                               match_fraction(s) * 100, tier);
                return false;
        }
        return true;
}

static void compute_targets(void)
{
        const Series *cold = series_find(SYS_FNBOX, RT_NATIVE, KIND_LATENCY, START_COLD, 1);
        const Series *pre = series_find(SYS_FNBOX, RT_NATIVE, KIND_LATENCY, START_PREWARMED, 1);
        const Series *warm = series_find(SYS_FNBOX, RT_NATIVE, KIND_LATENCY, START_WARM, 1);
        const Series *hello = series_find(SYS_HELLO, RT_NATIVE, KIND_LATENCY, START_NONE, 1);
        const Series *crun = series_find(SYS_CRUN, RT_NATIVE, KIND_PROCESS, START_NONE, 1);
        const Series *warm16 = series_find(SYS_FNBOX, RT_NATIVE, KIND_THROUGHPUT, START_WARM, 16);
        const Series *hello16 = series_find(SYS_HELLO, RT_NATIVE, KIND_THROUGHPUT, START_NONE, 16);
        Stats cs = series_stats(cold), ps = series_stats(pre), ws = series_stats(warm);
        Stats hs = series_stats(hello), rs = series_stats(crun);
        char a[32], b[32];
        double best = NAN;
        Target *t;

        n_targets = 0;
        ratios[0] = (Ratio){.what = "cold p50 / crun run p50", .value = NAN};
        ratios[1] = (Ratio){.what = "warm p50 / hello p50 (c=1)", .value = NAN};
        ratios[2] = (Ratio){.what = "warm throughput / hello throughput (c=16)", .value = NAN};
        /* Only between figures of answers that started as asked. */
        if (cs.n && rs.n && match_fraction(cold) >= 0.95) {
                ratios[0].value = cs.p50 / rs.p50;
                (void)snprintf(ratios[0].detail, sizeof(ratios[0].detail), "%s / %s",
                               fmt_us(cs.p50, a), fmt_us(rs.p50, b));
        }
        if (ws.n && hs.n && match_fraction(warm) >= 0.95) {
                ratios[1].value = ws.p50 / hs.p50;
                (void)snprintf(ratios[1].detail, sizeof(ratios[1].detail), "%s / %s",
                               fmt_us(ws.p50, a), fmt_us(hs.p50, b));
        }
        if (warm16 && hello16 && match_fraction(warm16) >= 0.95 && hello16->rps > 0) {
                ratios[2].value = warm16->rps / hello16->rps;
                (void)snprintf(ratios[2].detail, sizeof(ratios[2].detail), "%.0f / %.0f req/s",
                               warm16->rps, hello16->rps);
        }

        t = target_add("cold start p50, through HTTP", "<= 2 ms");
        if (tier_valid(cold, t, "cold")) {
                (void)snprintf(t->value, sizeof(t->value), "%s", fmt_us(cs.p50, a));
                t->state = cs.p50 <= 2000 ? TARGET_MET : TARGET_MISSED;
        }
        t = target_add("cold p50 / crun run /bin/true p50", "< 1/3");
        if (tier_valid(cold, t, "cold")) {
                if (isnan(ratios[0].value))
                        (void)snprintf(t->value, sizeof(t->value), "n/a: no crun figure");
                else {
                        (void)snprintf(t->value, sizeof(t->value), "%.2fx (%s)", ratios[0].value,
                                       ratios[0].detail);
                        t->state = ratios[0].value < 1.0 / 3 ? TARGET_MET : TARGET_MISSED;
                }
        }
        t = target_add("prewarmed start p50", "<= 0.4 ms");
        if (tier_valid(pre, t, "prewarmed")) {
                const Series *pw = series_paced_warm();
                Stats pws = series_stats(pw);
                if (pws.n && match_fraction(pw) >= 0.95)
                        (void)snprintf(t->value, sizeof(t->value),
                                       "%s (a warm call paced alike: %s)", fmt_us(ps.p50, a),
                                       fmt_us(pws.p50, b));
                else
                        (void)snprintf(t->value, sizeof(t->value), "%s", fmt_us(ps.p50, a));
                t->state = ps.p50 <= 400 ? TARGET_MET : TARGET_MISSED;
        }
        t = target_add("warm p50 / hello p50, c=1", "<= 3x");
        if (tier_valid(warm, t, "warm")) {
                if (isnan(ratios[1].value))
                        (void)snprintf(t->value, sizeof(t->value), "n/a: no hello figure");
                else {
                        (void)snprintf(t->value, sizeof(t->value), "%.2fx (%s)", ratios[1].value,
                                       ratios[1].detail);
                        t->state = ratios[1].value <= 3 ? TARGET_MET : TARGET_MISSED;
                }
        }
        t = target_add("warm throughput / hello, c=16", ">= 35%");
        if (tier_valid(warm16, t, "warm")) {
                if (isnan(ratios[2].value))
                        (void)snprintf(t->value, sizeof(t->value), "n/a: no hello figure");
                else {
                        (void)snprintf(t->value, sizeof(t->value), "%.0f%% (%s)",
                                       ratios[2].value * 100, ratios[2].detail);
                        t->state = ratios[2].value >= 0.35 ? TARGET_MET : TARGET_MISSED;
                }
        }
        t = target_add("sandbox creations per second", ">= 400/s");
        for (size_t i = 0; i < ELEMENTSOF(create_conc); i++) {
                const Series *s =
                    series_find(SYS_FNBOX, RT_NATIVE, KIND_CREATION, START_COLD, create_conc[i]);
                double r = creation_rate(s);
                if (s && match_fraction(s) >= 0.95 && !isnan(r) && (isnan(best) || r > best))
                        best = r;
        }
        if (!isnan(best)) {
                (void)snprintf(t->value, sizeof(t->value), "%.0f/s (best of c=2..4)", best);
                t->state = best >= 400 ? TARGET_MET : TARGET_MISSED;
        } else
                (void)snprintf(t->value, sizeof(t->value), "not measured");
        t = target_add("host memory per idle warm instance", "<= 400 KiB");
        if (mem.measured) {
                double per = (double)(mem.d_cgroup + mem.d_rss) / mem.instances / 1024;
                double avail = (double)mem.d_available / mem.instances / 1024;
                (void)snprintf(t->value, sizeof(t->value),
                               "%.0f KiB (cgroups+RSS; MemAvailable says %.0f KiB; %d inst.)", per,
                               avail, mem.instances);
                t->state = per <= 400 ? TARGET_MET : TARGET_MISSED;
        } else
                (void)snprintf(t->value, sizeof(t->value), "n/a: %s",
                               mem.why ? mem.why : "not measured");

        /* The runtimes' target: what a warm call through a Lambda-style runtime adds to a warm
         * native call (the runtime's own HTTP hop to the agent, its event loop, JSON). */
        static const char *const overhead_names[_RT_MAX] = {
            NULL, "warm python3 p50 - warm native p50", "warm nodejs p50 - warm native p50"};
        for (Runtime rt = RT_PYTHON; rt < _RT_MAX; rt++) {
                const Series *rw = series_find(SYS_FNBOX, rt, KIND_LATENCY, START_WARM, 1);
                Stats rws = series_stats(rw);

                if (!runtime_wanted[rt])
                        continue;
                t = target_add(overhead_names[rt], "<= +0.5 ms");
                if (!tier_valid(rw, t, "warm"))
                        continue;
                if (!ws.n || match_fraction(warm) < 0.95) {
                        (void)snprintf(t->value, sizeof(t->value), "n/a: no warm native figure");
                        continue;
                }
                (void)snprintf(t->value, sizeof(t->value), "%+.3f ms (%s - %s)",
                               (rws.p50 - ws.p50) / 1000, fmt_us(rws.p50, a), fmt_us(ws.p50, b));
                t->state = rws.p50 - ws.p50 <= 500 ? TARGET_MET : TARGET_MISSED;
        }
}

/* ---- the table ---------------------------------------------------------------------------- */

static const char *series_label(const Series *s, char *buf, size_t size)
{
        if (s->sys == SYS_FNBOX)
                (void)snprintf(buf, size, "fnbox %s%s%s%s",
                               s->rt == RT_NATIVE ? "" : runtime_names[s->rt],
                               s->rt == RT_NATIVE ? "" : " ", start_names[s->tier],
                               s->gap_ns ? " (paced)" : "");
        else if (s->sys == SYS_HELLO)
                (void)snprintf(buf, size, "hello (libmicrohttpd)");
        else if (s->sys == SYS_CRUN)
                (void)snprintf(buf, size, "crun run /bin/true");
        else
                (void)snprintf(buf, size, "bwrap /bin/true");
        return buf;
}

static void starts_text(const Series *s, char *buf, size_t size)
{
        size_t n = 0;

        buf[0] = '\0';
        for (int k = 0; k < _START_MAX; k++)
                if (s->starts[k] && n < size)
                        n += (size_t)snprintf(buf + n, size - n, "%s%s %" PRIu64, n ? ", " : "",
                                              start_names[k], s->starts[k]);
        if (n == 0 && s->sys == SYS_FNBOX)
                (void)snprintf(buf, size, "(no X-Fnbox-Start)");
}

static void causes_text(const Series *s, char *buf, size_t size)
{
        uint64_t counts[CAUSES_MAX] = {0};
        size_t n = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < s->n; i++)
                if (samples[s->first + i].cause >= 0)
                        counts[samples[s->first + i].cause]++;
        for (size_t k = 0; k < n_cause_names; k++)
                if (counts[k] && n < size)
                        n += (size_t)snprintf(buf + n, size - n, "%s%s %" PRIu64, n ? ", " : "",
                                              cause_names[k], counts[k]);
}

static const char *state_text(TargetState s)
{
        return s == TARGET_MET ? "MET" : s == TARGET_MISSED ? "MISSED" : "n/a";
}

/* One line per runtime: p50 / p90 / p99 of each tier at c=1, warm req/s at c=16, and what a warm
 * call adds over a warm native one. */
static void print_runtimes(FILE *f)
{
        const Series *nw = series_find(SYS_FNBOX, RT_NATIVE, KIND_LATENCY, START_WARM, 1);
        Stats ns = series_stats(nw);
        char a[32], b[32], c[32], cell[3][64];
        bool any = false;

        for (Runtime rt = 0; rt < _RT_MAX; rt++)
                any = any || series_find(SYS_FNBOX, rt, KIND_LATENCY, START_WARM, 1) ||
                      series_find(SYS_FNBOX, rt, KIND_LATENCY, START_COLD, 1);
        if (!any)
                return;
        fprintf(f, "\nRUNTIMES: latency at c=1, p50 / p90 / p99 (matching starts only); warm "
                   "throughput at c=16\n");
        fprintf(f, "  %-8s %-32s %-32s %-32s %9s %13s\n", "", "cold", "prewarmed", "warm",
                "warm c=16", "warm - native");
        for (Runtime rt = 0; rt < _RT_MAX; rt++) {
                const Series *w16 = series_find(SYS_FNBOX, rt, KIND_THROUGHPUT, START_WARM, 16);
                const Series *w = series_find(SYS_FNBOX, rt, KIND_LATENCY, START_WARM, 1);
                Stats ws = series_stats(w);
                char rps[32] = "-", over[32] = "-";

                if (!runtime_wanted[rt])
                        continue;
                for (int t = 0; t < 3; t++) {
                        const Series *x = series_find(SYS_FNBOX, rt, KIND_LATENCY, t, 1);
                        Stats st = series_stats(x);
                        if (!x)
                                (void)snprintf(cell[t], sizeof(cell[t]), "-");
                        else if (match_fraction(x) < 0.95)
                                (void)snprintf(cell[t], sizeof(cell[t]), "n/a (%.0f%% %s)",
                                               match_fraction(x) * 100, start_names[t]);
                        else
                                (void)snprintf(cell[t], sizeof(cell[t]), "%s / %s / %s",
                                               fmt_us(st.p50, a), fmt_us(st.p90, b),
                                               fmt_us(st.p99, c));
                }
                if (w16 && match_fraction(w16) >= 0.95)
                        (void)snprintf(rps, sizeof(rps), "%.0f", w16->rps);
                if (rt != RT_NATIVE && ws.n && ns.n && match_fraction(w) >= 0.95 &&
                    match_fraction(nw) >= 0.95)
                        (void)snprintf(over, sizeof(over), "%+.3f ms", (ws.p50 - ns.p50) / 1000);
                fprintf(f, "  %-8s %-*s %-*s %-*s %9s %13s\n", runtime_names[rt], col(cell[0], 32),
                        cell[0], col(cell[1], 32), cell[1], col(cell[2], 32), cell[2], rps, over);
                if (runtime_failed[rt])
                        fprintf(f, "  %-8s (not measured: see NOTES)\n", "");
        }
}

static void print_phase_row(FILE *f, const char *label, const TierPhases *tp)
{
        char a[32], b[32];

        fprintf(f, "  %-18s", label);
        for (size_t k = 0; k < n_phase_names; k++)
                fprintf(f, " %*s", col(fmt_us(tp->med[k], a), 10), a);
        fmt_us(tp->client_p50, a);
        fmt_us(tp->outside, b);
        fprintf(f, " %*s %*s\n", col(a, 10), a, col(b, 13), b);
}

static void print_report(FILE *f)
{
        char a[32], b[32], c[32], d[32], label[64], starts[160], causes[256];

        fprintf(f, "\nfnbox-bench %s: %s\n", FNBOX_VERSION, machine_line);
        fprintf(f, "fnboxd: %s\n", fnboxd_version[0] ? fnboxd_version : "(not started)");
        fprintf(f, "%s\n", quiet_line);
        fprintf(f, "%s\n", other_line);

        fprintf(f, "\nLATENCY, one connection, request after request (matching starts only)\n");
        fprintf(f, "  %-32s %6s %10s %10s %10s %10s  %s\n", "", "n", "p50", "p90", "p99", "max",
                "starts / errors");
        for (size_t i = 0; i < n_series; i++) {
                const Series *s = &series[i];
                Stats st;
                if (s->kind != KIND_LATENCY && s->kind != KIND_PROCESS)
                        continue;
                st = series_stats(s);
                starts_text(s, starts, sizeof(starts));
                fmt_us(st.p50, a);
                fmt_us(st.p90, b);
                fmt_us(st.p99, c);
                fmt_us(st.max, d);
                fprintf(f, "  %-32s %6zu %*s %*s %*s %*s  %s%s%" PRIu64 " errors\n",
                        series_label(s, label, sizeof(label)), st.n, col(a, 10), a, col(b, 10), b,
                        col(c, 10), c, col(d, 10), d, starts, starts[0] ? "; " : "", s->errors);
                if (s->mismatches)
                        fprintf(f,
                                "  %-32s %" PRIu64 " of %" PRIu64
                                " answers did not start %s (left out above)\n",
                                "  MISMATCH:", s->mismatches, s->ok, start_names[s->tier]);
        }

        fprintf(f, "\nTHROUGHPUT, closed loop, %.1f s per row after %.1f s of warm-up\n",
                opt.duration, opt.warmup);
        fprintf(f, "  %-34s %10s %8s %8s %8s %7s %7s %6s  %s\n", "", "req/s", "ok", "errors",
                "mismatch", "server", "client", "host", "starts");
        for (size_t i = 0; i < n_series; i++) {
                const Series *s = &series[i];
                if (s->kind != KIND_THROUGHPUT && s->kind != KIND_CREATION)
                        continue;
                starts_text(s, starts, sizeof(starts));
                (void)snprintf(
                    label, sizeof(label), "%s%s%s%s c=%u",
                    s->kind == KIND_CREATION ? "creations: " : "",
                    s->sys == SYS_FNBOX && s->rt != RT_NATIVE ? runtime_names[s->rt] : "",
                    s->sys == SYS_FNBOX && s->rt != RT_NATIVE ? " " : "",
                    s->sys == SYS_HELLO ? "hello" : start_names[s->tier], s->concurrency);
                if (s->server_cpu >= 0)
                        (void)snprintf(a, sizeof(a), "%.0f%%", s->server_cpu * 100);
                else
                        (void)snprintf(a, sizeof(a), "-");
                fprintf(f,
                        "  %-34s %10.0f %8" PRIu64 " %8" PRIu64 " %8" PRIu64
                        " %7s %6.0f%% %5.0f%%  %s\n",
                        label, s->kind == KIND_CREATION ? creation_rate(s) : s->rps, s->ok,
                        s->errors, s->mismatches, a, s->client_cpu * 100, s->host_busy * 100,
                        starts);
        }
        fprintf(f,
                "  (server: CPU of fnboxd or hello-mhd itself, of one core; client: this "
                "program; host: all %ld cores busy)\n",
                sysconf(_SC_NPROCESSORS_ONLN));

        fprintf(f, "\nSERVER-TIMING, medians per tier (c=1, matching starts)\n");
        fprintf(f, "  %-18s", "");
        for (size_t k = 0; k < n_phase_names; k++)
                fprintf(f, " %10s", phase_names[k]);
        fprintf(f, " %10s %13s\n", "client p50", "outside fnbox");
        for (int i = 0; i < _RT_MAX * 3; i++) {
                Runtime rt = (Runtime)(i / 3);
                int t = i % 3;
                const TierPhases *tp = &tier_phases[rt][t];
                if (!series_find(SYS_FNBOX, rt, KIND_LATENCY, t, 1))
                        continue;
                (void)snprintf(label, sizeof(label), "%s %s", runtime_names[rt], start_names[t]);
                print_phase_row(f, label, tp);
        }
        if (paced_warm_phases.have)
                print_phase_row(f, "native warm, paced", &paced_warm_phases);
        fprintf(f, "  (outside fnbox: client-observed latency minus Server-Timing total: HTTP, "
                   "kernel, client)\n");
        for (size_t i = 0; i < n_series; i++) {
                causes_text(&series[i], causes, sizeof(causes));
                if (causes[0])
                        fprintf(f, "  start causes, %s: %s\n", series[i].name, causes);
        }

        print_runtimes(f);

        fprintf(f, "\nMEMORY PER IDLE WARM INSTANCE\n");
        if (mem.measured)
                fprintf(f,
                        "  %d idle instances (%s): cgroup %s %+.1f MiB, fnboxd RSS %+.1f MiB "
                        "-> %.0f KiB each; MemAvailable %+.1f MiB -> %.0f KiB each\n",
                        mem.instances, mem.min_instances ? "min_instances" : "parallel calls",
                        mem.cgroup_dir, (double)mem.d_cgroup / 1048576, (double)mem.d_rss / 1048576,
                        (double)(mem.d_cgroup + mem.d_rss) / mem.instances / 1024,
                        (double)-mem.d_available / 1048576,
                        (double)mem.d_available / mem.instances / 1024);
        else
                fprintf(f, "  not measured%s%s\n", mem.note[0] ? ": " : "", mem.note);
        if (mem.measured && mem.note[0])
                fprintf(f, "  (%s)\n", mem.note);

        fprintf(f, "\nRATIOS (same run)\n");
        for (size_t i = 0; i < ELEMENTSOF(ratios); i++) {
                if (isnan(ratios[i].value))
                        fprintf(f, "  %-44s n/a\n", ratios[i].what);
                else
                        fprintf(f, "  %-44s %6.2f   (%s)\n", ratios[i].what, ratios[i].value,
                                ratios[i].detail);
        }

        fprintf(f, "\nTARGETS (figures, not assertions)\n");
        for (size_t i = 0; i < n_targets; i++)
                fprintf(f, "  %-7s %-38s %-11s %s\n", state_text(targets[i].state), targets[i].what,
                        targets[i].goal, targets[i].value);

        /* A start label that contradicts the phases: a sandbox was made for a call said to be
         * warm or prewarmed. */
        int sb = phase_lookup("sandbox");
        uint64_t suspect[_START_MAX] = {0};
        for (size_t i = 0; sb >= 0 && i < n_samples; i++)
                if ((samples[i].start == START_WARM || samples[i].start == START_PREWARMED) &&
                    samples[i].phase_us[sb] >= 0)
                        suspect[samples[i].start]++;
        if (suspect[START_WARM] || suspect[START_PREWARMED])
                fprintf(f,
                        "\nSUSPECT START LABELS: %" PRIu64 " answers said warm and %" PRIu64
                        " said prewarmed, yet their Server-Timing has a 'sandbox' phase (a "
                        "sandbox was made for them)\n",
                        suspect[START_WARM], suspect[START_PREWARMED]);

        size_t n_notes = n_fnbox_notes + n_baseline_notes;
        fprintf(f, "\nNOTES\n");
        for (size_t i = 0; i < n_fnbox_notes; i++)
                fprintf(f, "  - %s\n", fnbox_notes[i]);
        for (size_t i = 0; i < n_baseline_notes; i++)
                fprintf(f, "  - %s\n", baseline_notes[i]);
        for (size_t i = 0; i < n_series; i++) {
                const Series *s = &series[i];
                if (s->note[0] && s->kind != KIND_PROCESS && ++n_notes)
                        fprintf(f, "  - %s: %s\n", s->name, s->note);
                if (s->errors && ++n_notes)
                        fprintf(f, "  - %s: %" PRIu64 " errors, the first: %s\n", s->name,
                                s->errors, s->first_error);
        }
        if (n_notes == 0)
                fprintf(f, "  (none)\n");
}

/* ---- CSV and JSON ------------------------------------------------------------------------- */

static int write_csv(const char *path)
{
        _cleanup_fclose_ FILE *f = fopen(path, "we");

        if (!f)
                return negative_errno();
        fprintf(f, "series,system,runtime,kind,tier,concurrency,conn,t_us,latency_us,status,start,"
                   "cause");
        for (size_t k = 0; k < n_phase_names; k++)
                fprintf(f, ",%s_us", phase_names[k]);
        fputc('\n', f);
        for (size_t i = 0; i < n_samples; i++) {
                const Sample *x = &samples[i];
                const Series *s = &series[x->series];
                fprintf(f, "%s,%s,%s,%s,%s,%u,%u,%.3f,%.3f,%u,%s,%s", s->name, system_names[s->sys],
                        s->sys == SYS_FNBOX ? runtime_names[s->rt] : "", kind_names[s->kind],
                        s->tier >= 0 ? start_names[s->tier] : "", s->concurrency, x->conn,
                        (double)x->t_ns / 1000, (double)x->lat_ns / 1000, x->status,
                        x->start >= 0 ? start_names[x->start] : "",
                        x->cause >= 0 ? cause_names[x->cause] : "");
                for (size_t k = 0; k < n_phase_names; k++)
                        if (x->phase_us[k] >= 0)
                                fprintf(f, ",%d", x->phase_us[k]);
                        else
                                fputc(',', f);
                fputc('\n', f);
        }
        return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

static void json_str(FILE *f, const char *s)
{
        fputc('"', f);
        for (; *s; s++) {
                unsigned char ch = (unsigned char)*s;
                if (ch == '"' || ch == '\\')
                        fprintf(f, "\\%c", ch);
                else if (ch < 0x20)
                        fprintf(f, "\\u%04x", ch);
                else
                        fputc(ch, f);
        }
        fputc('"', f);
}

static void json_num(FILE *f, double v)
{
        if (isnan(v) || isinf(v))
                fputs("null", f);
        else
                fprintf(f, "%.3f", v);
}

static int write_json(const char *path, const char *date)
{
        _cleanup_fclose_ FILE *f = fopen(path, "we");

        if (!f)
                return negative_errno();
        fprintf(f, "{\"tool\":\"fnbox-bench\",\"version\":");
        json_str(f, FNBOX_VERSION);
        fprintf(f, ",\"date\":");
        json_str(f, date);
        fprintf(f, ",\"machine\":");
        json_str(f, machine_line);
        fprintf(f, ",\"fnboxd\":");
        json_str(f, fnboxd_version);
        fprintf(f, ",\"quiet\":");
        json_str(f, quiet_line);
        fprintf(f, ",\"other_processes\":");
        json_str(f, other_line);
        fprintf(f,
                ",\"options\":{\"prewarm\":%u,\"n_warm\":%" PRIu64 ",\"n_cold\":%" PRIu64
                ",\"n_runtime_cold\":%" PRIu64 ",\"baseline_runs\":%" PRIu64
                ",\"duration_s\":%.3f,\"create_duration_s\":%.3f,\"warmup_s\":%.3f,"
                "\"gap_ms\":%u,\"mem_instances\":%u,\"runtimes\":[",
                opt.prewarm, opt.n_warm, opt.n_cold, opt.n_rt_cold, opt.baseline_runs, opt.duration,
                opt.create_duration, opt.warmup, opt.gap_ms, opt.mem_instances);
        for (Runtime rt = 0, first = 1; rt < _RT_MAX; rt++)
                if (runtime_wanted[rt]) {
                        fprintf(f, "%s\"%s\"", first ? "" : ",", runtime_names[rt]);
                        first = 0;
                }
        fputs("]}", f);
        fprintf(f, ",\n\"series\":[");
        for (size_t i = 0; i < n_series; i++) {
                const Series *s = &series[i];
                Stats st = series_stats(s);
                fprintf(f, "%s\n{\"name\":", i ? "," : "");
                json_str(f, s->name);
                fprintf(f, ",\"system\":\"%s\",\"runtime\":", system_names[s->sys]);
                if (s->sys == SYS_FNBOX)
                        json_str(f, runtime_names[s->rt]);
                else
                        fputs("null", f);
                fprintf(f, ",\"kind\":\"%s\",\"tier\":", kind_names[s->kind]);
                if (s->tier >= 0)
                        json_str(f, start_names[s->tier]);
                else
                        fputs("null", f);
                fprintf(f,
                        ",\"concurrency\":%u,\"gap_ms\":%.3f,\"samples\":%zu,\"ok\":%" PRIu64
                        ",\"errors\":%" PRIu64 ",\"mismatches\":%" PRIu64 ",\"reconnects\":%" PRIu64
                        ",\"starts\":{",
                        s->concurrency, (double)s->gap_ns / 1e6, s->n, s->ok, s->errors,
                        s->mismatches, s->reconnects);
                for (int k = 0; k < _START_MAX; k++)
                        fprintf(f, "%s\"%s\":%" PRIu64, k ? "," : "", start_names[k], s->starts[k]);
                fprintf(f, "},\"matching\":%zu,\"p50_us\":", st.n);
                json_num(f, st.p50);
                fprintf(f, ",\"p90_us\":");
                json_num(f, st.p90);
                fprintf(f, ",\"p99_us\":");
                json_num(f, st.p99);
                fprintf(f, ",\"max_us\":");
                json_num(f, st.max);
                fprintf(f, ",\"seconds\":");
                json_num(f, s->seconds);
                fprintf(f, ",\"req_per_s\":");
                json_num(f, s->kind == KIND_CREATION ? creation_rate(s) : s->rps);
                fprintf(f, ",\"server_cpu\":");
                json_num(f, s->server_cpu);
                fprintf(f, ",\"client_cpu\":");
                json_num(f, s->client_cpu);
                fprintf(f, ",\"host_busy\":");
                json_num(f, s->host_busy);
                fprintf(f, ",\"other_processes_cores\":");
                json_num(f, series_other(s));
                fprintf(f, ",\"note\":");
                json_str(f, s->note);
                fprintf(f, ",\"first_error\":");
                json_str(f, s->first_error);
                fputc('}', f);
        }
        /* {"native":{"cold":{"sandbox":...},...},"python3":{...}} */
        fprintf(f, "],\n\"phases_median_us\":{");
        int rt_open = -1;
        for (int i = 0, first = 1; i < _RT_MAX * 3; i++) {
                Runtime rt = (Runtime)(i / 3);
                int t = i % 3;
                const TierPhases *tp = &tier_phases[rt][t];
                if (!series_find(SYS_FNBOX, rt, KIND_LATENCY, t, 1))
                        continue;
                if (rt_open != (int)rt) {
                        fprintf(f, "%s\"%s\":{", rt_open >= 0 ? "}," : "", runtime_names[rt]);
                        rt_open = (int)rt;
                        first = 1;
                }
                fprintf(f, "%s\"%s\":{", first ? "" : ",", start_names[t]);
                first = 0;
                for (size_t k = 0; k < n_phase_names; k++) {
                        fprintf(f, "\"%s\":", phase_names[k]);
                        json_num(f, tp->med[k]);
                        fputc(',', f);
                }
                fprintf(f, "\"client_p50\":");
                json_num(f, tp->client_p50);
                fprintf(f, ",\"outside_fnbox\":");
                json_num(f, tp->outside);
                fputc('}', f);
        }
        if (rt_open >= 0)
                fputc('}', f);
        /* The warm calls paced as the prewarmed ones (what the pause alone costs). */
        if (paced_warm_phases.have && rt_open >= 0) {
                fprintf(f, ",\"native_warm_paced\":{");
                for (size_t k = 0; k < n_phase_names; k++) {
                        fprintf(f, "\"%s\":", phase_names[k]);
                        json_num(f, paced_warm_phases.med[k]);
                        fputc(',', f);
                }
                fprintf(f, "\"client_p50\":");
                json_num(f, paced_warm_phases.client_p50);
                fprintf(f, ",\"outside_fnbox\":");
                json_num(f, paced_warm_phases.outside);
                fputc('}', f);
        }
        fprintf(f,
                "},\n\"memory\":{\"measured\":%s,\"instances\":%d,\"min_instances\":%s,"
                "\"cgroup_delta_bytes\":%" PRId64 ",\"fnboxd_rss_delta_bytes\":%" PRId64
                ",\"memavailable_delta_bytes\":%" PRId64 ",\"cgroup\":",
                mem.measured ? "true" : "false", mem.instances,
                mem.min_instances ? "true" : "false", mem.d_cgroup, mem.d_rss, mem.d_available);
        json_str(f, mem.cgroup_dir);
        fprintf(f, ",\"note\":");
        json_str(f, mem.note);
        fprintf(f, "},\n\"ratios\":[");
        for (size_t i = 0; i < ELEMENTSOF(ratios); i++) {
                fprintf(f, "%s{\"what\":", i ? "," : "");
                json_str(f, ratios[i].what);
                fprintf(f, ",\"value\":");
                json_num(f, ratios[i].value);
                fprintf(f, ",\"detail\":");
                json_str(f, ratios[i].detail);
                fputc('}', f);
        }
        fprintf(f, "],\n\"targets\":[");
        for (size_t i = 0; i < n_targets; i++) {
                fprintf(f, "%s{\"what\":", i ? "," : "");
                json_str(f, targets[i].what);
                fprintf(f, ",\"goal\":");
                json_str(f, targets[i].goal);
                fprintf(f, ",\"value\":");
                json_str(f, targets[i].value);
                fprintf(f, ",\"state\":\"%s\"}", state_text(targets[i].state));
        }
        fprintf(f, "],\n\"notes\":[");
        for (size_t i = 0; i < n_fnbox_notes + n_baseline_notes; i++) {
                fprintf(f, "%s", i ? "," : "");
                json_str(f, i < n_fnbox_notes ? fnbox_notes[i] : baseline_notes[i - n_fnbox_notes]);
        }
        fprintf(f, "],\n\"sample_fields\":[\"series\",\"conn\",\"t_us\",\"latency_us\","
                   "\"status\",\"start\",\"cause\"");
        for (size_t k = 0; k < n_phase_names; k++)
                fprintf(f, ",\"%s_us\"", phase_names[k]);
        fprintf(f, "],\n\"samples\":[");
        for (size_t i = 0; i < n_samples; i++) {
                const Sample *x = &samples[i];
                fprintf(f, "%s\n[\"%s\",%u,%.3f,%.3f,%u,", i ? "," : "", series[x->series].name,
                        x->conn, (double)x->t_ns / 1000, (double)x->lat_ns / 1000, x->status);
                if (x->start >= 0)
                        fprintf(f, "\"%s\",", start_names[x->start]);
                else
                        fputs("null,", f);
                if (x->cause >= 0)
                        fprintf(f, "\"%s\"", cause_names[x->cause]);
                else
                        fputs("null", f);
                for (size_t k = 0; k < n_phase_names; k++)
                        if (x->phase_us[k] >= 0)
                                fprintf(f, ",%d", x->phase_us[k]);
                        else
                                fputs(",null", f);
                fputc(']', f);
        }
        fprintf(f, "]}\n");
        return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

/* ---- the chart (SVG written by hand: no plotting tool needed) ------------------------------ */

#define SVG_W 980
#define PHASE_ROW 30 /* px per Server-Timing bar */

static void svg_text(FILE *f, double x, double y, const char *anchor, int size, const char *fill,
                     const char *fmt, ...) _printf_(7, 8);
static void svg_text(FILE *f, double x, double y, const char *anchor, int size, const char *fill,
                     const char *fmt, ...)
{
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"%d\" fill=\"%s\">",
                x, y, anchor, size, fill);
        for (const char *p = buf; *p; p++) {
                if (*p == '<')
                        fputs("&lt;", f);
                else if (*p == '>')
                        fputs("&gt;", f);
                else if (*p == '&')
                        fputs("&amp;", f);
                else
                        fputc(*p, f);
        }
        fputs("</text>\n", f);
}

static const char *series_colour(const Series *s)
{
        static const char *const tier_colours[] = {"#d62728", "#ff7f0e", "#2ca02c"};

        switch (s->sys) {
        case SYS_FNBOX:
                return s->paced_reference ? "#98df8a" : tier_colours[s->tier];
        case SYS_HELLO:
                return "#1f77b4";
        case SYS_CRUN:
                return "#9467bd";
        default:
                return "#8c564b";
        }
}

static const char *short_rate(double v, char buf[32])
{
        if (isnan(v))
                (void)snprintf(buf, 32, "-");
        else if (v >= 1e6 && fmod(v, 1e6) == 0)
                (void)snprintf(buf, 32, "%.0fM", v / 1e6);
        else if (v >= 1000 && fmod(v, 1000) == 0)
                (void)snprintf(buf, 32, "%.0fk", v / 1000);
        else if (v >= 10000)
                (void)snprintf(buf, 32, "%.0fk", v / 1000);
        else if (v >= 1000)
                (void)snprintf(buf, 32, "%.1fk", v / 1000);
        else
                (void)snprintf(buf, 32, "%.0f", v);
        return buf;
}

/* A decade of nanoseconds: "10 µs", "1 ms", "1 s". */
static const char *axis_label(double ns, char buf[32])
{
        if (ns < 1e6)
                (void)snprintf(buf, 32, "%.0f µs", ns / 1e3);
        else if (ns < 1e9)
                (void)snprintf(buf, 32, "%.0f ms", ns / 1e6);
        else
                (void)snprintf(buf, 32, "%.0f s", ns / 1e9);
        return buf;
}

static uint64_t series_min_ns(const Series *s)
{
        uint64_t m = UINT64_MAX;

        for (size_t i = 0; i < s->n; i++)
                if (sample_counts(s, &samples[s->first + i]))
                        m = MIN(m, samples[s->first + i].lat_ns);
        return m;
}

static void svg_cdf(FILE *f, double top)
{
        const double x0 = 90, x1 = 940, y0 = top + 30, y1 = top + 290;
        const Series *list[8];
        size_t n_list = 0;
        uint64_t lo = UINT64_MAX, hi = 0;
        double llo, lhi;
        char a[32], b[32];

        for (size_t i = 0; i < n_series && n_list < ELEMENTSOF(list); i++) {
                const Series *s = &series[i];
                Stats st;
                /* The runtimes have a panel of their own. */
                if ((s->kind != KIND_LATENCY && s->kind != KIND_PROCESS) ||
                    (s->sys == SYS_FNBOX && s->rt != RT_NATIVE))
                        continue;
                st = series_stats(s);
                if (st.n == 0)
                        continue;
                list[n_list++] = s;
                lo = MIN(lo, series_min_ns(s));
                hi = MAX(hi, (uint64_t)(st.max * 1000));
        }
        svg_text(
            f, x0, top + 16, "start", 15, "#000",
            "Latency, one connection (CDF, log scale; native fnbox tiers: answers that started "
            "as asked)");
        if (n_list == 0) {
                svg_text(f, x0, top + 60, "start", 12, "#666", "no latency figures");
                return;
        }
        llo = floor(log10((double)MAX(lo, (uint64_t)1000)));
        lhi = ceil(log10((double)MAX(hi, (uint64_t)10000)));
        if (lhi <= llo)
                lhi = llo + 1;
#define XPOS(ns) (x0 + (log10((double)(ns)) - llo) / (lhi - llo) * (x1 - x0))
#define YPOS(q) (y1 - (q) * (y1 - y0))
        fprintf(f,
                "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" "
                "stroke=\"#999\"/>\n",
                x0, y0, x1 - x0, y1 - y0);
        for (double d = llo; d <= lhi + 1e-9; d += 1) {
                for (int m = 1; m < 10; m++) {
                        double v = pow(10, d) * m, x = XPOS(v);
                        if (x > x1 + 0.5)
                                break;
                        fprintf(f,
                                "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" "
                                "stroke=\"%s\"/>\n",
                                x, y0, x, y1, m == 1 ? "#bbb" : "#e6e6e6");
                        if (m == 1)
                                svg_text(f, x, y1 + 16, "middle", 11, "#333", "%s",
                                         axis_label(v, a));
                }
        }
        for (int k = 0; k <= 4; k++)
                svg_text(f, x0 - 6, YPOS(k / 4.0) + 4, "end", 11, "#333", "%.2f", k / 4.0);
        static const double marks[] = {0.5, 0.9, 0.99};
        static const char *const mark_names[] = {"p50", "p90", "p99"};
        for (size_t k = 0; k < ELEMENTSOF(marks); k++) {
                fprintf(f,
                        "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#aaa\" "
                        "stroke-dasharray=\"4 3\"/>\n",
                        x0, YPOS(marks[k]), x1, YPOS(marks[k]));
                svg_text(f, x1 - 4, YPOS(marks[k]) - 3, "end", 10, "#777", "%s", mark_names[k]);
        }
        svg_text(f, (x0 + x1) / 2, y1 + 34, "middle", 12, "#333",
                 "latency seen by the client (HTTP request to whole answer; process: spawn to "
                 "reap)");
        for (size_t i = 0; i < n_list; i++) {
                const Series *s = list[i];
                _cleanup_free_ uint64_t *v = NULL;
                size_t n = 0, step;
                char label[64];
                Stats st = series_stats(s);

                v = series_latencies(s, &n);
                if (!v || n == 0)
                        continue;
                step = n > 800 ? n / 800 : 1;
                fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                        series_colour(s));
                for (size_t k = 0; k < n; k += step)
                        fprintf(f, "%.1f,%.1f ", XPOS(MAX(v[k], (uint64_t)1)),
                                YPOS((double)(k + 1) / (double)n));
                fprintf(f, "%.1f,%.1f\"/>\n", XPOS(MAX(v[n - 1], (uint64_t)1)), YPOS(1.0));
                /* The legend goes below the axis, two columns of up to four. */
                double lx = x0 + (double)(i / 4) * 430, ly = y1 + 56 + 18 * (double)(i % 4);
                fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"18\" height=\"4\" fill=\"%s\"/>\n",
                        lx, ly - 5, series_colour(s));
                svg_text(f, lx + 24, ly, "start", 12, "#000", "%s: p50 %s, p99 %s (n=%zu)",
                         series_label(s, label, sizeof(label)), fmt_us(st.p50, a),
                         fmt_us(st.p99, b), st.n);
        }
#undef XPOS
#undef YPOS
}

static const char *phase_colour(size_t k)
{
        static const char *const c[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
                                        "#59a14f", "#edc948", "#b07aa1", "#ff9da7"};
        return c[k % ELEMENTSOF(c)];
}

static bool phase_row_drawn(const TierPhases *tp)
{
        return tp->have && !isnan(tp->client_p50);
}

/* Height of the phases panel: a bar per runtime and tier with Server-Timing figures. */
static double svg_phases_height(void)
{
        size_t rows = 0;

        for (int i = 0; i < _RT_MAX * 3; i++)
                rows += phase_row_drawn(&tier_phases[i / 3][i % 3]);
        return 36 + (double)MAX(rows, (size_t)1) * PHASE_ROW + 40;
}

static void svg_phases(FILE *f, double top)
{
        const double x0 = 160, x1 = 800;
        int total = phase_lookup("total");
        double y = top + 36;
        char a[32];
        bool any = false;

        svg_text(f, 90, top + 16, "start", 15, "#000",
                 "Where a call's time goes: Server-Timing medians per runtime and tier (each bar "
                 "= its client p50)");
        for (int i = 0; i < _RT_MAX * 3; i++) {
                Runtime rt = (Runtime)(i / 3);
                int t = i % 3;
                const TierPhases *tp = &tier_phases[rt][t];
                double sum = 0, scale, x = x0, outside;

                if (!phase_row_drawn(tp))
                        continue;
                any = true;
                for (size_t k = 0; k < n_phase_names; k++)
                        if ((int)k != total && !isnan(tp->med[k]))
                                sum += tp->med[k];
                outside = MAX(tp->client_p50 - sum, 0.0);
                scale = (x1 - x0) / MAX(sum + outside, 1.0);
                svg_text(f, x0 - 8, y + 16, "end", 12, "#000", "%s %s", runtime_names[rt],
                         start_names[t]);
                for (size_t k = 0; k <= n_phase_names; k++) {
                        bool rest = k == n_phase_names;
                        double v = rest ? outside : tp->med[k], w;
                        if ((!rest && ((int)k == total || isnan(v))) || v <= 0)
                                continue;
                        w = v * scale;
                        fprintf(f,
                                "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%d\" "
                                "fill=\"%s\" stroke=\"#fff\"/>\n",
                                x, y, w, PHASE_ROW - 6, rest ? "#bab0ac" : phase_colour(k));
                        if (w > 46)
                                svg_text(f, x + w / 2, y + 16, "middle", 10, "#fff", "%s",
                                         fmt_us(v, a));
                        x += w;
                }
                svg_text(f, x1 + 8, y + 16, "start", 12, "#000", "p50 %s",
                         fmt_us(tp->client_p50, a));
                y += PHASE_ROW;
        }
        if (!any) {
                svg_text(f, x0, y + 20, "start", 12, "#666", "no Server-Timing figures");
                return;
        }
        /* legend */
        double lx = x0;
        for (size_t k = 0; k <= n_phase_names; k++) {
                bool rest = k == n_phase_names;
                if (!rest && (int)k == total)
                        continue;
                fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n",
                        lx, y + 4, rest ? "#bab0ac" : phase_colour(k));
                svg_text(f, lx + 16, y + 14, "start", 11, "#333", "%s",
                         rest ? "outside fnbox: HTTP, kernel, client" : phase_names[k]);
                lx += rest ? 230 : 30 + 7.0 * (double)strlen(phase_names[k]);
        }
}

static void svg_throughput(FILE *f, double top)
{
        const double x0 = 90, x1 = 940, y0 = top + 40, y1 = top + 250;
        const Series *bars[4][ELEMENTSOF(tput_conc)];
        static const char *const names[] = {"hello", "fnbox warm", "fnbox prewarmed", "fnbox cold"};
        static const char *const colours[] = {"#1f77b4", "#2ca02c", "#ff7f0e", "#d62728"};
        double maxv = 1, lhi, gw = (x1 - x0) / (double)ELEMENTSOF(tput_conc), bw = 44;
        char a[32];

        for (size_t c = 0; c < ELEMENTSOF(tput_conc); c++) {
                bars[0][c] =
                    series_find(SYS_HELLO, RT_NATIVE, KIND_THROUGHPUT, START_NONE, tput_conc[c]);
                bars[1][c] =
                    series_find(SYS_FNBOX, RT_NATIVE, KIND_THROUGHPUT, START_WARM, tput_conc[c]);
                bars[2][c] = series_find(SYS_FNBOX, RT_NATIVE, KIND_THROUGHPUT, START_PREWARMED,
                                         tput_conc[c]);
                bars[3][c] =
                    series_find(SYS_FNBOX, RT_NATIVE, KIND_THROUGHPUT, START_COLD, tput_conc[c]);
                for (size_t k = 0; k < 4; k++)
                        if (bars[k][c])
                                maxv = MAX(maxv, bars[k][c]->rps);
        }
        lhi = MAX(ceil(log10(maxv)), 2.0);
#define YPOS(v) (y1 - (log10(MAX((v), 10.0)) - 1) / (lhi - 1) * (y1 - y0))
        svg_text(f, x0, top + 16, "start", 15, "#000",
                 "Throughput, native, req/s (closed loop, %.1f s per bar; log scale; pale: under "
                 "95%% of answers started as asked)",
                 opt.duration);
        for (double d = 1; d <= lhi; d += 1) {
                fprintf(f,
                        "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                        x0, YPOS(pow(10, d)), x1, YPOS(pow(10, d)));
                svg_text(f, x0 - 6, YPOS(pow(10, d)) + 4, "end", 11, "#333", "%s",
                         short_rate(pow(10, d), a));
        }
        for (size_t c = 0; c < ELEMENTSOF(tput_conc); c++) {
                double gx = x0 + gw * (double)c + (gw - 4 * (bw + 6)) / 2;
                for (size_t k = 0; k < 4; k++) {
                        const Series *s = bars[k][c];
                        double x = gx + (double)k * (bw + 6), y;
                        if (!s || s->rps <= 0)
                                continue;
                        y = YPOS(s->rps);
                        fprintf(f,
                                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.1f\" "
                                "fill=\"%s\" fill-opacity=\"%s\"/>\n",
                                x, y, bw, y1 - y, colours[k],
                                match_fraction(s) >= 0.95 ? "1" : "0.3");
                        svg_text(f, x + bw / 2, y - 4, "middle", 10, "#000", "%s",
                                 short_rate(s->rps, a));
                }
                svg_text(f, x0 + gw * ((double)c + 0.5), y1 + 18, "middle", 12, "#000",
                         "%u connection%s", tput_conc[c], tput_conc[c] == 1 ? "" : "s");
        }
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#999\"/>\n", x0,
                y1, x1, y1);
        for (size_t k = 0; k < 4; k++) {
                fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n",
                        x0 + 160 * (double)k, y1 + 30, colours[k]);
                svg_text(f, x0 + 160 * (double)k + 16, y1 + 40, "start", 11, "#333", "%s",
                         names[k]);
        }
#undef YPOS
}

static const char *const runtime_colours[_RT_MAX] = {"#4e79a7", "#f28e2b", "#59a14f"};

static bool svg_has_runtimes(void)
{
        for (Runtime rt = RT_PYTHON; rt < _RT_MAX; rt++)
                for (int t = 0; t < 3; t++)
                        if (series_find(SYS_FNBOX, rt, KIND_LATENCY, t, 1))
                                return true;
        return false;
}

#define RUNTIMES_PANEL_H 330

/* Per tier, a bar per runtime: p50 at c=1, a whisker from p90 to p99; log scale. */
static void svg_runtimes(FILE *f, double top)
{
        const double x0 = 90, x1 = 940, y0 = top + 40, y1 = top + 250, bw = 56;
        const double gw = (x1 - x0) / 3;
        const Series *nw = series_find(SYS_FNBOX, RT_NATIVE, KIND_LATENCY, START_WARM, 1);
        Stats st[_RT_MAX][3], ns = series_stats(nw);
        double lo = INFINITY, hi = 0, llo, lhi;
        char a[32];

        for (Runtime rt = 0; rt < _RT_MAX; rt++)
                for (int t = 0; t < 3; t++) {
                        const Series *x = series_find(SYS_FNBOX, rt, KIND_LATENCY, t, 1);
                        st[rt][t] = series_stats(x);
                        if (!x || st[rt][t].n == 0 || match_fraction(x) < 0.95) {
                                st[rt][t].n = 0;
                                continue;
                        }
                        lo = MIN(lo, st[rt][t].p50);
                        hi = MAX(hi, st[rt][t].p99);
                }
        svg_text(f, x0, top + 16, "start", 15, "#000",
                 "Runtimes: latency at c=1 per tier (bar: p50, whisker: p90 to p99; log scale)");
        if (hi <= 0) {
                svg_text(f, x0, top + 60, "start", 12, "#666", "no runtime figures");
                return;
        }
        llo = floor(log10(lo));
        lhi = MAX(ceil(log10(hi)), llo + 1);
#define YPOS(us) (y1 - (log10(MAX((us), pow(10, llo))) - llo) / (lhi - llo) * (y1 - y0))
        for (double d = llo; d <= lhi + 1e-9; d += 1) {
                fprintf(f,
                        "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n",
                        x0, YPOS(pow(10, d)), x1, YPOS(pow(10, d)));
                svg_text(f, x0 - 6, YPOS(pow(10, d)) + 4, "end", 11, "#333", "%s",
                         axis_label(pow(10, d) * 1000, a));
        }
        for (int t = 0; t < 3; t++) {
                double gx = x0 + gw * t + (gw - _RT_MAX * (bw + 8)) / 2;
                for (Runtime rt = 0; rt < _RT_MAX; rt++) {
                        const Stats *x = &st[rt][t];
                        double bx = gx + (double)rt * (bw + 8), y, wx = bx + bw / 2;
                        if (x->n == 0)
                                continue;
                        y = YPOS(x->p50);
                        fprintf(f,
                                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.1f\" "
                                "fill=\"%s\"/>\n",
                                bx, y, bw, y1 - y, runtime_colours[rt]);
                        fprintf(f,
                                "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fh12M%.1f %.1fh12\" "
                                "stroke=\"#000\" fill=\"none\"/>\n",
                                wx, YPOS(x->p90), YPOS(x->p99), wx - 6, YPOS(x->p90), wx - 6,
                                YPOS(x->p99));
                        svg_text(f, wx, YPOS(x->p99) - 5, "middle", 10, "#000", "%s",
                                 fmt_us(x->p50, a));
                }
                svg_text(f, x0 + gw * (t + 0.5), y1 + 18, "middle", 12, "#000", "%s",
                         start_names[t]);
        }
#undef YPOS
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#999\"/>\n", x0,
                y1, x1, y1);
        for (Runtime rt = 0; rt < _RT_MAX; rt++) {
                const Series *w16 = series_find(SYS_FNBOX, rt, KIND_THROUGHPUT, START_WARM, 16);
                double ly = y1 + 38 + 18 * (double)rt;
                char rps[64] = "", over[64] = "";
                if (!runtime_wanted[rt])
                        continue;
                if (w16 && match_fraction(w16) >= 0.95)
                        (void)snprintf(rps, sizeof(rps), "; warm c=16: %s req/s",
                                       short_rate(w16->rps, a));
                if (rt != RT_NATIVE && st[rt][START_WARM].n && ns.n && match_fraction(nw) >= 0.95)
                        (void)snprintf(over, sizeof(over), "; warm p50 %+.3f ms over native",
                                       (st[rt][START_WARM].p50 - ns.p50) / 1000);
                fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n",
                        x0, ly - 10, runtime_colours[rt]);
                svg_text(f, x0 + 16, ly, "start", 12, "#000", "%s%s%s%s", runtime_names[rt], rps,
                         over, runtime_failed[rt] ? ": not measured" : "");
        }
}

static int write_svg(const char *path, const char *date)
{
        _cleanup_fclose_ FILE *f = fopen(path, "we");
        char creations[160] = "", a[32];
        size_t n = 0;
        /* Panels top to bottom: CDF, phases (a bar per runtime and tier), throughput, runtimes,
         * then three lines of text. */
        const double phases_top = 500, tput_top = phases_top + svg_phases_height();
        const double rt_top = tput_top + 310;
        const int svg_h = (int)(rt_top + (svg_has_runtimes() ? RUNTIMES_PANEL_H : 0) + 88);

        if (!f)
                return negative_errno();
        fprintf(f,
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, "
                "sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
                SVG_W, svg_h, SVG_W, svg_h);
        svg_text(f, 90, 28, "start", 18, "#000", "fnbox-bench %s, %s", FNBOX_VERSION, date);
        svg_text(f, 90, 46, "start", 12, "#444", "%s", machine_line);
        svg_text(f, 90, 62, "start", 12, "#444", "fnboxd: %s; %s", fnboxd_version, quiet_line);
        svg_cdf(f, 76);
        svg_phases(f, phases_top);
        svg_throughput(f, tput_top);
        if (svg_has_runtimes())
                svg_runtimes(f, rt_top);
        for (size_t i = 0; i < ELEMENTSOF(create_conc); i++) {
                const Series *s =
                    series_find(SYS_FNBOX, RT_NATIVE, KIND_CREATION, START_COLD, create_conc[i]);
                if (s && n < sizeof(creations))
                        n += (size_t)snprintf(
                            creations + n, sizeof(creations) - n, "%sc=%u %s%s", n ? ", " : "",
                            create_conc[i],
                            match_fraction(s) >= 0.95 ? short_rate(creation_rate(s), a) : "n/a",
                            match_fraction(s) >= 0.95 ? "/s" : " (answers were not cold)");
        }
        if (n)
                svg_text(f, 90, svg_h - 50, "start", 12, "#000",
                         "Sandbox creations (cold starts, sustained %.1f s): %s",
                         opt.create_duration, creations);
        if (mem.measured)
                svg_text(f, 90, svg_h - 32, "start", 12, "#000",
                         "Host memory per idle warm instance: %.0f KiB (cgroups + fnboxd RSS), "
                         "%.0f KiB (MemAvailable), %d instances",
                         (double)(mem.d_cgroup + mem.d_rss) / mem.instances / 1024,
                         (double)mem.d_available / mem.instances / 1024, mem.instances);
        svg_text(f, 90, svg_h - 68, "start", 12, "#000", "%s", other_line);
        svg_text(f, 90, svg_h - 12, "start", 10, "#666",
                 "%zu samples; client and server on the same machine; compare within one run "
                 "(absolute figures move 1.5-2x between runs). tools/bench/fnbox-bench",
                 n_samples);
        fprintf(f, "</svg>\n");
        return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

/* ---- the machine -------------------------------------------------------------------------- */

static void describe_machine(void)
{
        struct utsname u;
        struct statfs sfs;
        char cpuinfo[8192] = "", model[128] = "?", *p;
        const char *cg = "cgroup ?";
        int64_t total = proc_kb_field("/proc/meminfo", "MemTotal");

        (void)uname(&u);
        if (read_text("/proc/cpuinfo", cpuinfo, sizeof(cpuinfo)) > 0 &&
            (p = strstr(cpuinfo, "model name"))) {
                p = strchr(p, ':');
                if (p) {
                        p += 2;
                        (void)snprintf(model, sizeof(model), "%.*s", (int)strcspn(p, "\n"), p);
                }
        }
        if (statfs("/sys/fs/cgroup", &sfs) >= 0 && sfs.f_type == CGROUP2_SUPER_MAGIC)
                cg = "cgroup v2";
        else if (statfs("/sys/fs/cgroup/unified", &sfs) >= 0 && sfs.f_type == CGROUP2_SUPER_MAGIC)
                cg = "cgroup v1 (hybrid, v2 'unified' mount too)";
        else
                cg = "cgroup v1";
        (void)snprintf(machine_line, sizeof(machine_line),
                       "%s %s %s, %ld CPUs (%s), %.1f GiB RAM, %s", u.sysname, u.release, u.machine,
                       sysconf(_SC_NPROCESSORS_ONLN), model, (double)total / (1024.0 * 1024 * 1024),
                       cg);
}

/* How busy the host is before we start: other work on a 2-core machine moves every figure. */

static double host_busy_over(unsigned ms)
{
        uint64_t b0, t0, b1, t1;

        host_cpu(&b0, &t0);
        (void)usleep(ms * 1000);
        host_cpu(&b1, &t1);
        return t1 > t0 ? (double)(b1 - b0) / (double)(t1 - t0) : -1;
}

static void check_quiet(void)
{
        char load[64] = "";
        double waited = 0;

        for (;;) {
                host_busy_before = host_busy_over(1000);
                if (host_busy_before < 0.10 || waited >= opt.wait_quiet || interrupted)
                        break;
                if (waited == 0)
                        msg("fnbox-bench: the host is %.0f%% busy; waiting up to %.0f s for it to "
                            "calm down",
                            host_busy_before * 100, opt.wait_quiet);
                waited += 1;
        }
        (void)read_text("/proc/loadavg", load, sizeof(load));
        load[strcspn(load, "\n")] = '\0';
        if (strrchr(load, ' '))
                *strrchr(load, ' ') = '\0'; /* drop the last pid */
        (void)snprintf(quiet_line, sizeof(quiet_line),
                       "host %.0f%% busy in the second before the run; loadavg %s",
                       host_busy_before * 100, load);
        if (host_busy_before >= 0.10)
                fnbox_note("the host was %.0f%% busy before the run (other work): every figure is "
                           "distorted; run again on a quiet machine (--wait-quiet)",
                           host_busy_before * 100);
}

/* ---- main --------------------------------------------------------------------------------- */

static void help(void)
{
        printf("Usage: fnbox-bench [OPTIONS]\n\n"
               "Measures fnboxd's cold, prewarmed and warm invocations through its HTTP API, for\n"
               "native, python3 and nodejs functions, next to crun, bwrap and a bare\n"
               "libmicrohttpd server in the same run.\n\n"
               "Target:\n"
               "  --fnboxd PATH        fnboxd to start (twice: --prewarm 0, then --prewarm N);\n"
               "                       default: next to this program in the build tree\n"
               "  --agent PATH         fnbox-agent for it (default: build tree)\n"
               "  --url URL            use a running daemon instead (http://HOST:PORT)\n"
               "  --token T, --token-file PATH   its token\n"
               "  --cgroup-parent NAME sandboxes' cgroup parent (default fnbox-bench; with --url,\n"
               "                       fnbox), for the memory figure\n"
               "  --function PATH      echo.so (default: build tree tests/functions/echo.so)\n"
               "  --slow-function PATH probe.so, for K parallel slow calls (default: build tree)\n"
               "  --hello PATH         hello-mhd (default: next to this program)\n"
               "  --runtimes LIST      some of native,python3,nodejs (default: all)\n"
               "  --functions-dir DIR  the echo functions of the Lambda-style runtimes,\n"
               "                       python3/app.py and nodejs/index.js (default %s)\n\n"
               "Sizes:\n"
               "  -n, --requests N     warm and hello latency samples (default %" PRIu64 ")\n"
               "  --cold-requests N    cold and prewarmed latency samples (default %" PRIu64 ")\n"
               "  --runtime-cold-requests N  the same for python3 and nodejs (default %" PRIu64
               ")\n"
               "  --baseline-runs N    crun and bwrap runs (default %" PRIu64 ")\n"
               "  -d, --duration S     seconds per throughput point (default %.1f)\n"
               "  --create-duration S  seconds per sandbox-creation point (default %.1f)\n"
               "  --warmup S           unrecorded seconds before each throughput point (%.1f)\n"
               "  --prewarm N          stem cells for the prewarmed/warm daemon (default %u)\n"
               "  --gap-ms MS          pause between prewarmed calls, for the refill (default %u)\n"
               "  --mem-instances K    idle warm instances for the memory figure (default %u)\n"
               "  --only LIST          some of crun,bwrap,hello,cold,prewarmed,warm,memory\n"
               "  --quick              small sizes, for a smoke test\n"
               "  --no-baselines       skip crun and bwrap\n"
               "  --wait-quiet S       wait up to S seconds for the host to be under 10%% busy\n\n"
               "Output:\n"
               "  --csv FILE, --json FILE   every sample; --svg FILE   the chart\n"
               "  --keep-tmp           keep the temp dir (daemon logs)\n",
               BENCH_FUNCTIONS_DIR, opt.n_warm, opt.n_cold, opt.n_rt_cold, opt.baseline_runs,
               opt.duration, opt.create_duration, opt.warmup, opt.prewarm, opt.gap_ms,
               opt.mem_instances);
}

static int parse_count(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        uint64_t v;

        if (parse_uint64(s, &v) < 0 || v < min || v > max) {
                msg("fnbox-bench: '%s' is not a number in %" PRIu64 "..%" PRIu64, s, min, max);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static int parse_seconds(const char *s, double *ret)
{
        char *end;
        double v = strtod(s, &end);

        if (*s == '\0' || *end != '\0' || !(v > 0 && v <= 3600)) {
                msg("fnbox-bench: '%s' is not a duration in seconds", s);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

/* "native,python3,nodejs" */
static int parse_runtimes(const char *list)
{
        bool w[_RT_MAX] = {false};
        const char *p = list;

        for (;;) {
                size_t l = strcspn(p, ",");
                Runtime rt;

                for (rt = 0; rt < _RT_MAX; rt++)
                        if (strlen(runtime_names[rt]) == l && strncmp(p, runtime_names[rt], l) == 0)
                                break;
                if (rt == _RT_MAX) {
                        msg("fnbox-bench: --runtimes wants some of native,python3,nodejs, not "
                            "'%.*s'",
                            (int)l, p);
                        return -EINVAL;
                }
                w[rt] = true;
                if (p[l] == '\0')
                        break;
                p += l + 1;
        }
        memcpy(runtime_wanted, w, sizeof(w));
        return 0;
}

static int parse_args(int argc, char **argv)
{
        enum {
                ARG_FNBOXD = 0x100,
                ARG_AGENT,
                ARG_URL,
                ARG_TOKEN,
                ARG_TOKEN_FILE,
                ARG_CGROUP,
                ARG_FUNCTION,
                ARG_SLOW,
                ARG_HELLO,
                ARG_COLD_N,
                ARG_BASE_N,
                ARG_CREATE_D,
                ARG_WARMUP,
                ARG_PREWARM,
                ARG_GAP,
                ARG_MEM,
                ARG_ONLY,
                ARG_QUICK,
                ARG_CSV,
                ARG_JSON,
                ARG_SVG,
                ARG_KEEP,
                ARG_WAIT_QUIET,
                ARG_NO_BASELINES,
                ARG_RUNTIMES,
                ARG_FUNCTIONS_DIR,
                ARG_RT_COLD_N,
        };
        static const struct option opts[] = {
            {"fnboxd", required_argument, NULL, ARG_FNBOXD},
            {"agent", required_argument, NULL, ARG_AGENT},
            {"url", required_argument, NULL, ARG_URL},
            {"token", required_argument, NULL, ARG_TOKEN},
            {"token-file", required_argument, NULL, ARG_TOKEN_FILE},
            {"cgroup-parent", required_argument, NULL, ARG_CGROUP},
            {"function", required_argument, NULL, ARG_FUNCTION},
            {"slow-function", required_argument, NULL, ARG_SLOW},
            {"hello", required_argument, NULL, ARG_HELLO},
            {"requests", required_argument, NULL, 'n'},
            {"cold-requests", required_argument, NULL, ARG_COLD_N},
            {"baseline-runs", required_argument, NULL, ARG_BASE_N},
            {"duration", required_argument, NULL, 'd'},
            {"create-duration", required_argument, NULL, ARG_CREATE_D},
            {"warmup", required_argument, NULL, ARG_WARMUP},
            {"prewarm", required_argument, NULL, ARG_PREWARM},
            {"gap-ms", required_argument, NULL, ARG_GAP},
            {"mem-instances", required_argument, NULL, ARG_MEM},
            {"only", required_argument, NULL, ARG_ONLY},
            {"quick", no_argument, NULL, ARG_QUICK},
            {"csv", required_argument, NULL, ARG_CSV},
            {"json", required_argument, NULL, ARG_JSON},
            {"svg", required_argument, NULL, ARG_SVG},
            {"keep-tmp", no_argument, NULL, ARG_KEEP},
            {"wait-quiet", required_argument, NULL, ARG_WAIT_QUIET},
            {"no-baselines", no_argument, NULL, ARG_NO_BASELINES},
            {"runtimes", required_argument, NULL, ARG_RUNTIMES},
            {"functions-dir", required_argument, NULL, ARG_FUNCTIONS_DIR},
            {"runtime-cold-requests", required_argument, NULL, ARG_RT_COLD_N},
            {"help", no_argument, NULL, 'h'},
            {},
        };
        uint64_t v;
        int c;

        while ((c = getopt_long(argc, argv, "n:d:h", opts, NULL)) >= 0) {
                switch (c) {
                case ARG_FNBOXD:
                        opt.fnboxd = optarg;
                        break;
                case ARG_AGENT:
                        opt.agent = optarg;
                        break;
                case ARG_URL:
                        opt.url = optarg;
                        break;
                case ARG_TOKEN:
                        opt.token = optarg;
                        break;
                case ARG_TOKEN_FILE:
                        opt.token_file = optarg;
                        break;
                case ARG_CGROUP:
                        if (!name_is_valid(optarg)) {
                                msg("fnbox-bench: --cgroup-parent wants [A-Za-z0-9_-]{1,64}");
                                return -EINVAL;
                        }
                        opt.cgroup_parent = optarg;
                        break;
                case ARG_FUNCTION:
                        opt.echo_so = optarg;
                        break;
                case ARG_SLOW:
                        opt.probe_so = optarg;
                        break;
                case ARG_HELLO:
                        opt.hello = optarg;
                        break;
                case 'n':
                        if (parse_count(optarg, 1, 10000000, &opt.n_warm) < 0)
                                return -EINVAL;
                        break;
                case ARG_COLD_N:
                        if (parse_count(optarg, 1, 1000000, &opt.n_cold) < 0)
                                return -EINVAL;
                        break;
                case ARG_BASE_N:
                        if (parse_count(optarg, 0, 100000, &opt.baseline_runs) < 0)
                                return -EINVAL;
                        break;
                case 'd':
                        if (parse_seconds(optarg, &opt.duration) < 0)
                                return -EINVAL;
                        break;
                case ARG_CREATE_D:
                        if (parse_seconds(optarg, &opt.create_duration) < 0)
                                return -EINVAL;
                        break;
                case ARG_WARMUP:
                        if (strcmp(optarg, "0") == 0)
                                opt.warmup = 0;
                        else if (parse_seconds(optarg, &opt.warmup) < 0)
                                return -EINVAL;
                        break;
                case ARG_PREWARM:
                        if (parse_count(optarg, 0, 1024, &v) < 0)
                                return -EINVAL;
                        opt.prewarm = (unsigned)v;
                        break;
                case ARG_GAP:
                        if (parse_count(optarg, 0, 10000, &v) < 0)
                                return -EINVAL;
                        opt.gap_ms = (unsigned)v;
                        break;
                case ARG_MEM:
                        if (parse_count(optarg, 1, 1000, &v) < 0)
                                return -EINVAL;
                        opt.mem_instances = (unsigned)v;
                        break;
                case ARG_ONLY:
                        opt.only = optarg;
                        break;
                case ARG_QUICK:
                        opt.n_warm = 300;
                        opt.n_cold = 60;
                        opt.n_rt_cold = 30;
                        opt.baseline_runs = 40;
                        opt.duration = 0.5;
                        opt.create_duration = 0.5;
                        opt.warmup = 0.1;
                        opt.mem_instances = 8;
                        break;
                case ARG_CSV:
                        opt.csv = optarg;
                        break;
                case ARG_JSON:
                        opt.json = optarg;
                        break;
                case ARG_SVG:
                        opt.svg = optarg;
                        break;
                case ARG_KEEP:
                        opt.keep_tmp = true;
                        break;
                case ARG_WAIT_QUIET:
                        if (parse_seconds(optarg, &opt.wait_quiet) < 0)
                                return -EINVAL;
                        break;
                case ARG_NO_BASELINES:
                        opt.no_baselines = true;
                        break;
                case ARG_RUNTIMES:
                        if (parse_runtimes(optarg) < 0)
                                return -EINVAL;
                        break;
                case ARG_FUNCTIONS_DIR:
                        opt.functions_dir = optarg;
                        break;
                case ARG_RT_COLD_N:
                        if (parse_count(optarg, 1, 1000000, &opt.n_rt_cold) < 0)
                                return -EINVAL;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                msg("fnbox-bench: unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

/* Defaults from the build tree this program sits in: build/tools/bench/fnbox-bench. */
static char *build_path(const char *exe_dir, const char *rel)
{
        char buf[PATH_MAX * 2], *r;

        (void)snprintf(buf, sizeof(buf), "%s/%s", exe_dir, rel);
        r = realpath(buf, NULL);
        return r ? r : strdup(buf);
}

static void on_signal(int sig)
{
        interrupted = 1;
}

int main(int argc, char **argv)
{
        char exe[PATH_MAX], *slash, date[64], ver[256] = "";
        _cleanup_free_ char *d_fnboxd = NULL, *d_agent = NULL, *d_echo = NULL, *d_probe = NULL,
                            *d_hello = NULL;
        struct sigaction sa = {.sa_handler = on_signal};
        time_t now = time(NULL);
        struct tm tm;
        ssize_t n;
        int r, rc = 0;

        r = parse_args(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        bench_epoch_ns = now_ns();
        (void)sigaction(SIGINT, &sa, NULL);
        (void)sigaction(SIGTERM, &sa, NULL);
        (void)signal(SIGPIPE, SIG_IGN);
        (void)strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime_r(&now, &tm));

        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[n > 0 ? n : 0] = '\0';
        slash = strrchr(exe, '/');
        if (slash)
                *slash = '\0';
        if (!opt.fnboxd)
                opt.fnboxd = d_fnboxd = build_path(exe, "../../daemon/fnboxd");
        if (!opt.agent)
                opt.agent = d_agent = build_path(exe, "../../agent/fnbox-agent");
        if (!opt.echo_so)
                opt.echo_so = d_echo = build_path(exe, "../../tests/functions/echo.so");
        if (!opt.probe_so)
                opt.probe_so = d_probe = build_path(exe, "../../tests/functions/probe.so");
        if (!opt.hello)
                opt.hello = d_hello = build_path(exe, "hello-mhd");
        if (!opt.functions_dir)
                opt.functions_dir = BENCH_FUNCTIONS_DIR;
        describe_machine();

        for (Runtime rt = RT_PYTHON; rt < _RT_MAX; rt++) {
                Code c = code_echo(rt);
                if (runtime_wanted[rt] && access(c.path, R_OK) < 0) {
                        msg("fnbox-bench: cannot read %s (--functions-dir)", c.path);
                        return 1;
                }
        }
        if (runtime_wanted[RT_NATIVE] && access(opt.echo_so, R_OK) < 0) {
                msg("fnbox-bench: cannot read the echo function %s (--function)", opt.echo_so);
                return 1;
        }
        if (!opt.url) {
                if (geteuid() != 0) {
                        msg("fnbox-bench: starting fnboxd needs root (or use --url)");
                        return 1;
                }
                if (access(opt.fnboxd, X_OK) < 0 || access(opt.agent, X_OK) < 0) {
                        msg("fnbox-bench: cannot run %s with %s (--fnboxd, --agent)", opt.fnboxd,
                            opt.agent);
                        return 1;
                }
                {
                        char *hargv[] = {(char *)opt.fnboxd, (char *)"--help", NULL};
                        char *vargv[] = {(char *)opt.fnboxd, (char *)"--version", NULL};
                        char help_text[8192] = "";
                        (void)run_capture(hargv, NULL, help_text, sizeof(help_text));
                        fnboxd_has_prewarm = strstr(help_text, "--prewarm") != NULL;
                        (void)run_capture(vargv, NULL, ver, sizeof(ver));
                        ver[strcspn(ver, "\n")] = '\0';
                        (void)snprintf(fnboxd_version, sizeof(fnboxd_version), "%.80s%s", ver,
                                       fnboxd_has_prewarm ? "" : " (no --prewarm flag)");
                }
                if (!fnboxd_has_prewarm)
                        fnbox_note("fnboxd has no --prewarm flag yet (no warm pool): every "
                                   "call is a cold start, so the prewarmed and warm tiers show "
                                   "mismatches and their targets are n/a");
        } else
                (void)snprintf(fnboxd_version, sizeof(fnboxd_version), "at %s", opt.url);

        (void)snprintf(tmp_root, sizeof(tmp_root), "/tmp/fnbox-bench.XXXXXX");
        if (!mkdtemp(tmp_root)) {
                msg("fnbox-bench: cannot make a temp dir: %m");
                return 1;
        }
        msg("fnbox-bench: %s; temp dir %s", machine_line, tmp_root);
        check_quiet();
        msg("fnbox-bench: %s", quiet_line);
        other_start();

        /* Process baselines first, while this process is small (they fork). */
        if (!opt.no_baselines && want("crun") && opt.baseline_runs > 0) {
                msg("baseline: crun run");
                bench_crun();
        }
        if (!opt.no_baselines && want("bwrap") && opt.baseline_runs > 0 && !interrupted) {
                msg("baseline: bwrap");
                bench_bwrap();
        }
        if (want("hello") && !interrupted) {
                msg("baseline: libmicrohttpd hello");
                r = bench_hello();
                if (r < 0)
                        msg("fnbox-bench: hello baseline stopped: %s", strerror(-r));
        }
        if (!interrupted) {
                r = bench_fnbox();
                if (r < 0) {
                        msg("fnbox-bench: fnbox measurements stopped: %s", strerror(-r));
                        rc = 1;
                }
        }

        other_stop();
        other_notes();
        compute_phases();
        compute_targets();
        print_report(stdout);
        (void)fflush(stdout);
        if (opt.csv && (r = write_csv(opt.csv)) < 0)
                msg("fnbox-bench: cannot write %s: %s", opt.csv, strerror(-r));
        if (opt.json && (r = write_json(opt.json, date)) < 0)
                msg("fnbox-bench: cannot write %s: %s", opt.json, strerror(-r));
        if (opt.svg && (r = write_svg(opt.svg, date)) < 0)
                msg("fnbox-bench: cannot write %s: %s", opt.svg, strerror(-r));
        if (opt.csv || opt.json || opt.svg)
                msg("written:%s%s%s%s%s%s", opt.csv ? " " : "", opt.csv ? opt.csv : "",
                    opt.json ? " " : "", opt.json ? opt.json : "", opt.svg ? " " : "",
                    opt.svg ? opt.svg : "");

        if (opt.keep_tmp)
                msg("fnbox-bench: kept %s", tmp_root);
        else if ((r = rm_rf_at(AT_FDCWD, tmp_root)) < 0)
                msg("fnbox-bench: could not remove all of %s: %s", tmp_root, strerror(-r));
        free(samples);
        if (interrupted)
                return 130;
        return rc;
}
