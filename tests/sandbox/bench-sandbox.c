/* SPDX-License-Identifier: Apache-2.0 */
/* Cold-start benchmark of the sandbox mechanism (root only, not part of any test suite):
 *
 *   bench-sandbox <agent> <mode> [count] [gap-ms]
 *
 * mode "cold": sandbox_spawn with a code dir and a fresh network namespace per spawn;
 * "pool": the same with the netns pool (refilled between spawns, off the timed path);
 * "stem": a stem cell, then sandbox_load_code + sandbox_set_limits once the agent is up.
 * Each round spawns, waits for the agent's first packet (probe-agent's "hello", fnbox-agent's
 * Ready), then frees the sandbox (kill + wait). gap-ms sleeps between rounds, so the kernel's
 * caches and RCU state go cold as they do between requests. Prints medians in microseconds;
 * BENCH_RAW=<file> appends every sample. BENCH_SPIN=1 busy-polls for the first packet. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox.h"
#include "util.h"

static int cmp_usec(const void *a, const void *b)
{
        usec_t x = *(const usec_t *)a, y = *(const usec_t *)b;
        return x < y ? -1 : x > y;
}

/* v is sorted */
static usec_t median(const usec_t *v, int n)
{
        return n ? v[n / 2] : 0;
}

static usec_t pct(const usec_t *v, int n, int p)
{
        return n ? v[(n - 1) * p / 100] : 0;
}

static int wait_first_packet(Sandbox *s)
{
        struct pollfd pfd = {.fd = sandbox_channel_fd(s), .events = POLLIN};
        char buf[256];

        /* BENCH_SPIN=1: busy-poll, to tell wake-up latency from work */
        if (getenv("BENCH_SPIN")) {
                usec_t deadline = now_usec() + 10 * USEC_PER_SEC;
                while (poll(&pfd, 1, 0) == 0 && now_usec() < deadline)
                        ;
        }
        if (poll(&pfd, 1, 10000) <= 0)
                return -ETIMEDOUT;
        return recv(pfd.fd, buf, sizeof(buf), 0) > 0 ? 0 : -EIO;
}

int main(int argc, char **argv)
{
        char run_dir[] = "/tmp/fnbox-bench-run-XXXXXX", code_dir[] = "/tmp/fnbox-bench-code-XXXXXX";
        const char *mode = argc > 2 ? argv[2] : "cold";
        int count = argc > 3 ? atoi(argv[3]) : 200, gap_ms = argc > 4 ? atoi(argv[4]) : 0;
        usec_t *spawn_t, *ready_t, *spec_t, *free_t;
        SandboxHost *h = NULL;
        FnError err = {};
        FILE *raw = NULL;
        int ok = 0;

        if (argc < 2 || count <= 0) {
                fprintf(stderr, "usage: %s <agent> cold|pool|stem [count] [gap-ms]\n", argv[0]);
                return 2;
        }
        if (!mkdtemp(run_dir) || !mkdtemp(code_dir) || chmod(code_dir, 0755) < 0)
                return 1;
        SandboxHostConfig cfg = {.agent_path = argv[1],
                                 .run_dir = run_dir,
                                 .cgroup_root = "/sys/fs/cgroup",
                                 .cgroup_parent = "fnbox-bench",
                                 .uid_base = 300000,
                                 .uid_count = 1000};
        if (sandbox_host_new(&cfg, &h, &err) < 0) {
                fprintf(stderr, "sandbox_host_new: %s\n", err.msg);
                return 1;
        }
#ifndef BENCH_OLD
        if (strcmp(mode, "pool") == 0 && sandbox_host_set_netns_target(h, 4) < 0)
                return 1;
#else
        if (strcmp(mode, "cold") != 0) {
                fprintf(stderr, "only mode cold in this build\n");
                return 2;
        }
#endif
        /* BENCH_RAW=<file>: also append every sample, "mode gap spawn ready load+limits" */
        if (getenv("BENCH_RAW")) {
                raw = fopen(getenv("BENCH_RAW"), "ae");
                if (!raw)
                        return 1;
        }
        spawn_t = calloc((size_t)count, sizeof(usec_t));
        ready_t = calloc((size_t)count, sizeof(usec_t));
        spec_t = calloc((size_t)count, sizeof(usec_t));
        free_t = calloc((size_t)count, sizeof(usec_t));
        if (!spawn_t || !ready_t || !spec_t || !free_t)
                return 1;

        for (int i = 0; i < count; i++) {
                SandboxSpec spec = {.id = "bench",
                                    .code_dir = code_dir,
                                    .memory_bytes = 128ULL << 20,
                                    .cpu_weight = 100,
                                    .pids_max = 64,
                                    .tmp_bytes = 16ULL << 20,
                                    .tmp_inodes = 1024,
                                    .nofile = 1024};
                Sandbox *s = NULL;
                usec_t t0, t1, t2, t3 = 0, t4;

#ifndef BENCH_OLD
                if (strcmp(mode, "pool") == 0 && sandbox_host_refill(h, 4) < 0) {
                        fprintf(stderr, "refill failed\n");
                        break;
                }
                if (strcmp(mode, "stem") == 0)
                        spec.code_dir = NULL;
#endif
                if (gap_ms > 0)
                        (void)usleep((useconds_t)gap_ms * 1000);
                t0 = now_usec();
                if (sandbox_spawn(h, &spec, &s, &err) < 0) {
                        fprintf(stderr, "spawn: %s\n", err.msg);
                        break;
                }
                t1 = now_usec();
                if (wait_first_packet(s) < 0) {
                        SandboxExit e = {};
                        if (sandbox_reap(s, &e) >= 0 && e.setup_failed)
                                fprintf(stderr, "setup failed at %s: %s\n",
                                        sandbox_step_to_string(e.step), strerror(e.step_errno));
                        sandbox_free(s);
                        break;
                }
                t2 = now_usec();
#ifndef BENCH_OLD
                if (strcmp(mode, "stem") == 0) {
                        if (sandbox_load_code(s, code_dir) < 0 ||
                            sandbox_set_limits(s, 256ULL << 20, 200) < 0) {
                                fprintf(stderr, "load/limits failed\n");
                                sandbox_free(s);
                                break;
                        }
                        t3 = now_usec();
                        spec_t[ok] = t3 - t2;
                }
#endif
                t4 = now_usec();
                sandbox_free(s);
                free_t[ok] = now_usec() - t4;
                spawn_t[ok] = t1 - t0;
                ready_t[ok] = t2 - t0;
                if (raw)
                        fprintf(raw, "%s %d %llu %llu %llu\n", mode, gap_ms,
                                (unsigned long long)spawn_t[ok], (unsigned long long)ready_t[ok],
                                (unsigned long long)spec_t[ok]);
                ok++;
        }
        qsort(spawn_t, (size_t)ok, sizeof(usec_t), cmp_usec);
        qsort(ready_t, (size_t)ok, sizeof(usec_t), cmp_usec);
        qsort(spec_t, (size_t)ok, sizeof(usec_t), cmp_usec);
        qsort(free_t, (size_t)ok, sizeof(usec_t), cmp_usec);
        printf("%s n=%d gap=%dms spawn %llu (p90 %llu) ready %llu (p90 %llu) free %llu", mode, ok,
               gap_ms, (unsigned long long)median(spawn_t, ok),
               (unsigned long long)pct(spawn_t, ok, 90), (unsigned long long)median(ready_t, ok),
               (unsigned long long)pct(ready_t, ok, 90), (unsigned long long)median(free_t, ok));
        if (strcmp(mode, "stem") == 0)
                printf(" load+limits %llu (p90 %llu)", (unsigned long long)median(spec_t, ok),
                       (unsigned long long)pct(spec_t, ok, 90));
        printf("\n");
        h = sandbox_host_free(h);
        (void)rm_rf_at(AT_FDCWD, run_dir);
        (void)rm_rf_at(AT_FDCWD, code_dir);
        for (size_t i = 0; i < 4; i++) {
                static const char *const ctrls[] = {"memory", "cpu", "pids", "freezer"};
                char p[128];
                (void)snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/fnbox-bench", ctrls[i]);
                (void)rmdir(p);
        }
        if (raw)
                (void)fclose(raw);
        free(spawn_t);
        free(ready_t);
        free(spec_t);
        free(free_t);
        return ok == count ? 0 : 1;
}
