/* SPDX-License-Identifier: Apache-2.0 */
/* Root-only tests of the sandbox mechanism (daemon/sandbox*.c) against the real kernel: spawns
 * sandboxes whose "agent" is probe-agent (argv[1]), which reports what it sees from inside, and
 * asserts each isolation property on that report; then checks failures, kills, OOM and that
 * teardown leaves nothing behind. TAP output. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox.h"
#include "util.h"

#define CGROUP_PARENT "fnbox-test"
#define UID_BASE 200000
#define TIMEOUT_MSEC 10000

static int tap_n, tap_failed;
static const char *probe_path;
static char run_dir[64], code_dir[64];
static int listen_port;

static void tap(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tap(bool ok, const char *fmt, ...)
{
        va_list ap;

        printf("%sok %d - ", ok ? "" : "not ", ++tap_n);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
        if (!ok)
                tap_failed++;
}

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void diag(const char *fmt, ...)
{
        va_list ap;

        printf("# ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
}

/* ---- report parsing ---- */

/* The value of the first "key=" line, or NULL. Returns a pointer into a static buffer. */
static const char *rget(const char *report, const char *key)
{
        static char val[4096];
        size_t kl = strlen(key);

        for (const char *l = report; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                if (strncmp(l, key, kl) == 0 && l[kl] == '=') {
                        const char *v = l + kl + 1;
                        size_t n = strcspn(v, "\n");
                        if (n >= sizeof(val))
                                n = sizeof(val) - 1;
                        memcpy(val, v, n);
                        val[n] = '\0';
                        return val;
                }
        }
        return NULL;
}

static bool rget_eq(const char *report, const char *key, const char *want)
{
        const char *v = rget(report, key);
        if (!v || strcmp(v, want) != 0) {
                diag("%s: got '%s', want '%s'", key, v ? v : "(missing)", want);
                return false;
        }
        return true;
}

/* Finds "mnt=<point> ..." and returns "<opts> <fstype> <superopts>", or NULL. */
static const char *mount_of(const char *report, const char *point)
{
        static char val[1024];
        size_t pl = strlen(point);

        for (const char *l = report; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                if (strncmp(l, "mnt=", 4) == 0 && strncmp(l + 4, point, pl) == 0 &&
                    l[4 + pl] == ' ') {
                        const char *v = l + 4 + pl + 1;
                        size_t n = strcspn(v, "\n");
                        if (n >= sizeof(val))
                                n = sizeof(val) - 1;
                        memcpy(val, v, n);
                        val[n] = '\0';
                        return val;
                }
        }
        return NULL;
}

static bool has_opt(const char *opts, const char *opt)
{
        size_t ol = strlen(opt);
        const char *end = opts + strcspn(opts, " ");

        for (const char *p = opts; p < end; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
                if ((size_t)(end - p) >= ol && strncmp(p, opt, ol) == 0 &&
                    (p[ol] == ',' || p[ol] == ' ' || p[ol] == '\0'))
                        return true;
                if (!p[strcspn(p, ",")])
                        break;
        }
        return false;
}

static bool mount_has(const char *report, const char *point, const char *const *opts,
                      const char *fstype)
{
        const char *m = mount_of(report, point);
        bool ok = m != NULL;

        for (size_t i = 0; ok && opts[i]; i++)
                ok = has_opt(m, opts[i]);
        if (ok && fstype) {
                const char *f = strchr(m, ' ');
                ok = f && strncmp(f + 1, fstype, strlen(fstype)) == 0 &&
                     f[1 + strlen(fstype)] == ' ';
        }
        if (!ok)
                diag("mount %s: '%s'", point, m ? m : "(missing)");
        return ok;
}

/* ---- helpers ---- */

static int count_fds(void)
{
        int n = 0;
        struct dirent *de;
        DIR *d = opendir("/proc/self/fd");

        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1; /* the directory's own fd */
}

static bool path_exists(const char *p)
{
        struct stat st;
        return lstat(p, &st) == 0;
}

/* Waits for one packet on the sandbox's channel. */
static ssize_t chan_recv(Sandbox *s, char *buf, size_t size, int timeout_ms)
{
        struct pollfd pfd = {.fd = sandbox_channel_fd(s), .events = POLLIN};
        ssize_t n;

        if (poll(&pfd, 1, timeout_ms) <= 0)
                return -ETIMEDOUT;
        n = recv(pfd.fd, buf, size - 1, 0);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return n;
}

static int chan_send(Sandbox *s, const char *msg)
{
        return send(sandbox_channel_fd(s), msg, strlen(msg), MSG_NOSIGNAL) < 0 ? -errno : 0;
}

static int wait_exit(Sandbox *s, SandboxExit *e)
{
        struct pollfd pfd = {.fd = sandbox_pidfd(s), .events = POLLIN};

        if (poll(&pfd, 1, TIMEOUT_MSEC) <= 0)
                return -ETIMEDOUT;
        return sandbox_reap(s, e);
}

static SandboxSpec spec_default(const char *id)
{
        return (SandboxSpec){.id = id,
                             .code_dir = code_dir,
                             .memory_bytes = 64ULL << 20,
                             .cpu_weight = 100,
                             .pids_max = 32,
                             .tmp_bytes = 1ULL << 20,
                             .tmp_inodes = 64,
                             .nofile = 64};
}

static bool cgroup_gone(SandboxHost *h, const char *id)
{
        static const char *const ctrls[] = {"memory", "cpu", "pids", "freezer"};
        char p[256];

        if (strcmp(sandbox_host_cgroup_version(h), "v1") != 0)
                return true; /* checked by the cgroup unit tests on v2 */
        for (size_t i = 0; i < 4; i++) {
                snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/" CGROUP_PARENT "/%s", ctrls[i], id);
                if (path_exists(p)) {
                        diag("%s still exists", p);
                        return false;
                }
        }
        return true;
}

static bool cgroup_gone_quiet(SandboxHost *h, const char *id)
{
        char p[256];

        if (strcmp(sandbox_host_cgroup_version(h), "v1") != 0)
                return false;
        snprintf(p, sizeof(p), "/sys/fs/cgroup/memory/" CGROUP_PARENT "/%s", id);
        return !path_exists(p);
}

static bool run_dir_gone(const char *id)
{
        char p[256];
        snprintf(p, sizeof(p), "%s/%s", run_dir, id);
        return !path_exists(p);
}

static bool host_mounts_mention(const char *needle)
{
        _cleanup_free_ char *mi = NULL;
        if (read_file_at(AT_FDCWD, "/proc/self/mountinfo", 1 << 20, &mi, NULL) < 0)
                return true;
        return strstr(mi, needle) != NULL;
}

/* Field n (0-based) of a mountinfo line, copied into buf. */
static const char *mi_field(const char *line, int n, char *buf, size_t size)
{
        const char *p = line;
        size_t l;

        for (int i = 0; i < n && p; i++) {
                p = strchr(p, ' ');
                p = p ? p + 1 : NULL;
        }
        if (!p)
                return "";
        l = strcspn(p, " \n");
        snprintf(buf, size, "%.*s", (int)l, p);
        return buf;
}

/* Mounts in a mountinfo file: all of them (point NULL) or those at point. -1 on error. */
static int mount_count_in(const char *mountinfo, const char *point)
{
        _cleanup_free_ char *mi = NULL;
        int n = 0;

        if (read_file_at(AT_FDCWD, mountinfo, 1 << 20, &mi, NULL) < 0)
                return -1;
        for (const char *l = mi; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                char f[512];
                if (!point || strcmp(mi_field(l, 4, f, sizeof(f)), point) == 0)
                        n++;
        }
        return n;
}

static int host_mount_count(const char *point)
{
        return mount_count_in("/proc/self/mountinfo", point);
}

/* From the host: in the sandbox's mount table nothing is shared; the want_task mounts at
 * /var/task are slaves if task_slave, else private like every other mount (no "shared:" or
 * "master:" tag). */
static bool sandbox_propagation_ok(Sandbox *s, int want_task, bool task_slave)
{
        _cleanup_free_ char *mi = NULL;
        char path[64];
        int task = 0;
        bool ok = true;

        snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)sandbox_pid(s));
        if (read_file_at(AT_FDCWD, path, 1 << 20, &mi, NULL) < 0)
                return false;
        for (const char *l = mi; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                char point[256], opt[64];
                bool shared = false, slave = false, is_task;

                mi_field(l, 4, point, sizeof(point));
                /* optional fields: from field 6 up to "-" */
                for (int i = 6; i < 12; i++) {
                        mi_field(l, i, opt, sizeof(opt));
                        if (strcmp(opt, "-") == 0)
                                break;
                        shared = shared || strncmp(opt, "shared:", 7) == 0;
                        slave = slave || strncmp(opt, "master:", 7) == 0;
                }
                is_task = strcmp(point, "/var/task") == 0;
                task += is_task;
                if (shared || slave != (is_task && task_slave)) {
                        diag("unexpected propagation: %.*s", (int)strcspn(l, "\n"), l);
                        ok = false;
                }
        }
        if (task != want_task) {
                diag("%d mounts at /var/task, want %d", task, want_task);
                ok = false;
        }
        return ok;
}

/* Every "mnt=/var/task ..." line of a report has all of opts. */
static bool all_task_mounts_have(const char *r, const char *const *opts)
{
        int n = 0;

        for (const char *l = r; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                if (strncmp(l, "mnt=/var/task ", 14) != 0)
                        continue;
                n++;
                for (size_t i = 0; opts[i]; i++)
                        if (!has_opt(l + 14, opts[i])) {
                                diag("/var/task lacks %s: %.*s", opts[i], (int)strcspn(l, "\n"), l);
                                return false;
                        }
        }
        return n > 0;
}

static ino_t ns_inode(pid_t pid, const char *ns)
{
        char p[64];
        struct stat st;

        if (pid > 0)
                snprintf(p, sizeof(p), "/proc/%d/ns/%s", (int)pid, ns);
        else
                snprintf(p, sizeof(p), "/proc/self/ns/%s", ns);
        return stat(p, &st) == 0 ? st.st_ino : 0;
}

/* The first line of a cgroup v1 control file of sandbox id, or "" (v2: "" too). */
static const char *cg_v1_read(SandboxHost *h, const char *ctrl, const char *id, const char *file)
{
        static char buf[128];
        _cleanup_free_ char *c = NULL;
        char p[256];

        buf[0] = '\0';
        if (strcmp(sandbox_host_cgroup_version(h), "v1") != 0)
                return buf;
        snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/" CGROUP_PARENT "/%s/%s", ctrl, id, file);
        if (read_file_at(AT_FDCWD, p, 4096, &c, NULL) >= 0)
                snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(c, "\n"), c);
        return buf;
}

/* The state letter of /proc/<pid>/stat ("S", "D", ...). */
static char proc_state(pid_t pid)
{
        _cleanup_free_ char *c = NULL;
        char p[64];
        const char *e;

        snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
        if (read_file_at(AT_FDCWD, p, 4096, &c, NULL) < 0 || !(e = strrchr(c, ')')))
                return '?';
        return e[1] == ' ' ? e[2] : '?';
}

/* Spawns, waits for "hello". Returns NULL (after a failed TAP line) on error. */
static Sandbox *spawn_ready(SandboxHost *h, const SandboxSpec *spec, usec_t *ret_ready_usec)
{
        Sandbox *s = NULL;
        FnError err = {};
        char buf[64];
        usec_t t0 = now_usec();
        int r;

        r = sandbox_spawn(h, spec, &s, &err);
        if (r < 0) {
                tap(false, "spawn %s: %s (%s)", spec->id, strerror(-r), err.msg);
                return NULL;
        }
        r = (int)chan_recv(s, buf, sizeof(buf), TIMEOUT_MSEC);
        if (r < 0 || strcmp(buf, "hello") != 0) {
                SandboxExit e;
                if (sandbox_reap(s, &e) >= 0 && e.setup_failed)
                        diag("setup failed at %s: %s", sandbox_step_to_string(e.step),
                             strerror(e.step_errno));
                tap(false, "sandbox %s says hello (%s)", spec->id, r < 0 ? strerror(-r) : buf);
                return sandbox_free(s);
        }
        if (ret_ready_usec)
                *ret_ready_usec = now_usec() - t0;
        return s;
}

static char *get_report(Sandbox *s)
{
        static char buf[65536];
        char cmd[32];

        snprintf(cmd, sizeof(cmd), "report %d", listen_port);
        if (chan_send(s, cmd) < 0 || chan_recv(s, buf, sizeof(buf), TIMEOUT_MSEC) < 0)
                return NULL;
        return strdup(buf);
}

/* ---- the property checks ---- */

static void check_identity(const char *r)
{
        tap(rget(r, "uid") && atoi(rget(r, "uid")) >= UID_BASE &&
                atoi(rget(r, "uid")) < UID_BASE + 10000,
            "agent runs as a sandbox uid in [uid_base, uid_base+count): %s", rget(r, "uid"));
        {
                char u[64], g[64];
                snprintf(u, sizeof(u), "%s", rget(r, "uid"));
                snprintf(g, sizeof(g), "%s", rget(r, "gid") ? rget(r, "gid") : "");
                tap(strcmp(u, g) == 0 && strchr(u, ',') &&
                        strncmp(u, strchr(u, ',') + 1, strcspn(u, ",")) == 0,
                    "real/effective/saved uid and gid all equal the slot id (%s / %s)", u, g);
        }
        tap(rget_eq(r, "groups", "0"), "no supplementary groups");
        tap(rget_eq(r, "pid", "1") && rget_eq(r, "ppid", "0"),
            "agent is PID 1 of its own pid namespace");
        tap(rget_eq(r, "sid", "1"), "agent leads its own session (no controlling tty)");
        tap(rget_eq(r, "pdeathsig", "9"), "parent-death signal is SIGKILL (survives uid switch)");
        tap(rget_eq(r, "hostname", "fnbox"), "hostname is fnbox");
        tap(rget_eq(r, "argc", "1") && rget_eq(r, "argv0", "fnbox-agent"), "argv is {fnbox-agent}");
        tap(rget_eq(r, "env", "PATH=/usr/local/bin:/usr/bin:/bin") &&
                strstr(r, "env=LANG=C.UTF-8\n") && strstr(r, "env=HOME=/tmp\n"),
            "environment is exactly PATH, LANG, HOME");
        tap(rget_eq(r, "rlimit_nofile", "64,64"), "RLIMIT_NOFILE = spec nofile");
        tap(rget_eq(r, "rlimit_core", "0,0"), "RLIMIT_CORE = 0");
        tap(rget_eq(r, "umask", "022"), "umask 022");
        tap(rget(r, "exe") && strncmp(rget(r, "exe"), "/memfd:fnbox-agent", 18) == 0,
            "agent runs from the sealed memfd copy (%s)", rget(r, "exe"));
        diag("agent comm (task name) after execveat: '%s'", rget(r, "comm"));
        tap(rget(r, "exe_write") && strcmp(rget(r, "exe_write"), "ok") != 0,
            "agent cannot open its own binary for writing (%s)", rget(r, "exe_write"));
}

static void check_privileges(const char *r)
{
        static const char *const caps[] = {"status.CapInh", "status.CapPrm", "status.CapEff",
                                           "status.CapBnd", "status.CapAmb"};

        for (size_t i = 0; i < 5; i++)
                tap(rget_eq(r, caps[i], "0000000000000000"), "%s is empty", caps[i] + 7);
        tap(rget_eq(r, "status.NoNewPrivs", "1"), "no_new_privs is set");
        tap(rget_eq(r, "status.Seccomp", "2"), "a seccomp filter is loaded");
}

static void check_fds(const char *r)
{
        tap(rget_eq(r, "fds", "0,1,2,3"), "agent has only fds 0-3 (channel on 3, nothing leaked)");
        tap(rget_eq(r, "fd0", "/dev/null") && rget_eq(r, "fd1", "/dev/null") &&
                rget_eq(r, "fd2", "/dev/null"),
            "stdio is /dev/null");
        tap(rget(r, "fd3") && strncmp(rget(r, "fd3"), "socket:", 7) == 0, "fd 3 is the channel");
}

static void check_mounts(const char *r)
{
        static const char *const ro[] = {"ro", "nosuid", "nodev", NULL};
        static const char *const rw[] = {"rw", "nosuid", "nodev", NULL};
        static const char *const proc[] = {"rw", "nosuid", "nodev", "noexec", NULL};
        static const char *const rox[] = {"ro", "nosuid", "nodev", "noexec", NULL};
        static const char *const dev_node[] = {"ro", "nosuid", "noexec", NULL};
        /* every mount point the sandbox may have */
        static const char *const allowed[] = {"/",
                                              "/usr",
                                              "/usr/bin/dash", /* bash, as /bin/sh */
                                              "/etc",
                                              "/etc/ld.so.cache",
                                              "/etc/ssl/certs",
                                              "/etc/alternatives",
                                              "/var/task",
                                              "/tmp",
                                              "/proc",
                                              "/dev/null",
                                              "/dev/zero",
                                              "/dev/full",
                                              "/dev/random",
                                              "/dev/urandom",
                                              "/dev/shm",
                                              NULL};
        bool only_allowed = true;
        char want[128];

        tap(mount_has(r, "/", rox, "tmpfs"), "/ is a read-only tmpfs, nosuid nodev noexec");
        tap(mount_has(r, "/usr", ro, NULL), "/usr is bound read-only, nosuid nodev");
        tap(mount_has(r, "/etc", rox, "tmpfs"), "/etc is a read-only tmpfs, nosuid nodev noexec");
        tap(mount_has(r, "/etc/ssl/certs", rox, NULL) &&
                mount_has(r, "/etc/alternatives", rox, NULL),
            "/etc/ssl/certs and /etc/alternatives are bound read-only, nosuid nodev noexec");
        tap(mount_has(r, "/var/task", ro, NULL), "/var/task is bound read-only, nosuid nodev");
        tap(mount_has(r, "/etc/ld.so.cache", ro, NULL), "/etc/ld.so.cache is bound read-only");
        tap(mount_has(r, "/tmp", rw, "tmpfs"), "/tmp is a writable tmpfs, nosuid nodev");
        snprintf(want, sizeof(want), "size=1024k");
        tap(mount_of(r, "/tmp") && strstr(mount_of(r, "/tmp"), want) &&
                strstr(mount_of(r, "/tmp"), "nr_inodes=64"),
            "/tmp has the spec's size and inode limits (%s)", mount_of(r, "/tmp"));
        tap(mount_has(r, "/proc", proc, "proc"), "/proc is a fresh procfs, nosuid nodev noexec");
        tap(mount_has(r, "/proc/sys", rox, NULL) && mount_has(r, "/proc/bus", rox, NULL) &&
                mount_has(r, "/proc/fs", rox, NULL) && mount_has(r, "/proc/irq", rox, NULL),
            "/proc/sys, bus, fs, irq are read-only");
        tap(mount_of(r, "/proc/keys") && mount_of(r, "/proc/timer_list"),
            "/proc/keys and /proc/timer_list are masked");
        tap(mount_has(r, "/proc/acpi", rox, "tmpfs"), "/proc/acpi is masked by a read-only tmpfs");
        tap(!mount_of(r, "/dev"), "/dev is a directory of the read-only root, not a mount");
        tap(mount_has(r, "/dev/null", dev_node, NULL) &&
                mount_has(r, "/dev/urandom", dev_node, NULL),
            "the device nodes are read-only, nosuid, noexec binds");
        tap(mount_has(r, "/dev/shm", proc, "tmpfs"), "/dev/shm is a tmpfs, nosuid nodev noexec");

        for (const char *l = r; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                char point[256];
                bool ok = false;

                if (strncmp(l, "mnt=", 4) != 0)
                        continue;
                snprintf(point, sizeof(point), "%.*s", (int)strcspn(l + 4, " \n"), l + 4);
                if (strncmp(point, "/proc/", 6) == 0)
                        ok = has_opt(l + 4 + strlen(point) + 1, "ro") ||
                             !strcmp(point, "/proc/keys") || !strcmp(point, "/proc/timer_list") ||
                             !strcmp(point, "/proc/interrupts") || !strcmp(point, "/proc/kcore") ||
                             !strcmp(point, "/proc/sysrq-trigger") ||
                             !strcmp(point, "/proc/sched_debug") ||
                             !strcmp(point, "/proc/latency_stats") ||
                             !strcmp(point, "/proc/timer_stats");
                for (size_t i = 0; !ok && allowed[i]; i++)
                        ok = strcmp(point, allowed[i]) == 0;
                if (!ok) {
                        diag("unexpected mount %s", point);
                        only_allowed = false;
                }
        }
        tap(only_allowed, "no mount points beyond the planned ones (no host paths)");
}

static void check_fs(const char *r)
{
        tap(rget_eq(r, "write_usr", "EROFS"), "cannot create files in /usr");
        tap(rget_eq(r, "write_task", "EROFS"), "cannot create files in /var/task");
        tap(rget_eq(r, "write_root", "EROFS"), "cannot create files in /");
        tap(rget_eq(r, "write_etc", "EROFS"), "cannot create files in /etc");
        tap(rget_eq(r, "write_dev", "EROFS"), "cannot create files in /dev");
        tap(rget_eq(r, "write_devshm", "ok"), "can create files in /dev/shm");
        tap(rget_eq(r, "task_read", "hello from the task"), "the function's code is readable");
        tap(rget_eq(r, "write_tmp", "ok"), "/tmp is writable by the sandbox uid");
        tap(rget_eq(r, "tmp_bytes", "1048576") && rget_eq(r, "tmp_inodes", "64"),
            "statvfs(/tmp) shows 1 MiB and 64 inodes");
        tap(rget_eq(r, "tmp_fill", "ENOSPC") && rget_eq(r, "tmp_fill_bytes", "1048576"),
            "filling /tmp stops with ENOSPC at exactly 1 MiB");
        tap(rget_eq(r, "tmp_mode", "1777"), "/tmp is mode 1777");
        tap(rget_eq(r, "dev", "fd,full,null,random,shm,stderr,stdin,stdout,urandom,zero"),
            "/dev holds only null, zero, full, random, urandom, shm and the fd links");
        tap(rget_eq(r, "devnull_write", "ok") && rget_eq(r, "devzero_read", "ok") &&
                rget_eq(r, "devurandom_read", "ok"),
            "the device nodes work (write null, read zero and urandom)");
        tap(rget_eq(r, "sys", ""), "/sys is empty");
        tap(rget_eq(r, "procpids", "1"), "/proc shows only the sandbox's own process");
        tap(rget_eq(r, "proc_keys", "chr") && rget_eq(r, "proc_timer_list", "chr"),
            "/proc/keys and /proc/timer_list are /dev/null");
        tap(rget_eq(r, "proc_acpi", ""), "/proc/acpi is empty");
        {
                const char *c = rget(r, "cgroup");
                bool ok = c != NULL;
                for (const char *l = strstr(r, "cgroup="); l; l = strstr(l + 1, "\ncgroup=")) {
                        const char *v = l[0] == '\n' ? l + 8 : l + 7;
                        size_t n = strcspn(v, "\n");
                        if (n < 2 || v[n - 1] != '/' || v[n - 2] != ':')
                                ok = false;
                }
                tap(ok, "/proc/self/cgroup shows only \"/\" (cgroup namespace): %s", c);
        }
}

static void check_passwd(const char *r)
{
        char want[64];
        const char *uid = rget(r, "uid");

        snprintf(want, sizeof(want), "passwd=sbx:x:%d:%d:", atoi(uid ? uid : "0"),
                 atoi(uid ? uid : "0"));
        tap(strstr(r, want) && strstr(r, "passwd=root:x:0:0:"),
            "/etc/passwd names root and sbx with the sandbox uid");
}

static void check_net(const char *r)
{
        tap(rget_eq(r, "ifaces", "lo"), "only the loopback interface exists");
        tap(rget_eq(r, "lo_up", "1"), "lo is up");
        tap(rget_eq(r, "connect_host", "ECONNREFUSED"),
            "the host's 127.0.0.1 listener is unreachable (own loopback refuses)");
        tap(rget_eq(r, "connect_ext", "ENETUNREACH"), "no route to anywhere else");
}

static void check_syscalls(const char *r)
{
        static const char *const eperm[] = {"sys_mount",
                                            "sys_umount2",
                                            "sys_pivot_root",
                                            "sys_chroot",
                                            "sys_open_tree",
                                            "sys_fsopen",
                                            "sys_move_mount",
                                            "sys_mount_setattr",
                                            "sys_unshare_user",
                                            "sys_clone_newuser",
                                            "sys_clone_newns",
                                            "sys_setns",
                                            "sys_ptrace",
                                            "sys_process_vm_readv",
                                            "sys_pidfd_getfd",
                                            "sys_bpf",
                                            "sys_perf_event_open",
                                            "sys_io_uring_setup",
                                            "sys_userfaultfd",
                                            "sys_keyctl",
                                            "sys_add_key",
                                            "sys_ioctl_tiocsti",
                                            "sys_ioctl_tiocsti_hi",
                                            "sys_ioctl_tioclinux",
                                            "sys_name_to_handle_at",
                                            "sys_open_by_handle_at",
                                            "sys_settimeofday",
                                            "sys_clock_settime",
                                            "sys_iopl",
                                            "sys_personality_linux32",
                                            "sys_personality_hi",
                                            NULL};

        for (size_t i = 0; eperm[i]; i++)
                tap(rget_eq(r, eperm[i], "EPERM"), "%s is refused with EPERM", eperm[i] + 4);
        tap(rget_eq(r, "sys_clone3", "ENOSYS"), "clone3 fails with ENOSYS (glibc falls back)");
        tap(rget_eq(r, "sys_clone_plain", "ok"), "clone without namespace flags works");
        tap(rget_eq(r, "sys_ioctl_fionread", "EBADF"), "other ioctls pass the filter");
        tap(rget_eq(r, "sys_personality_query", "ok"), "personality(0xffffffff) query works");
        tap(rget_eq(r, "sys_x32", "signal:31"), "an x32 syscall kills the process (SIGSYS)");
        tap(rget_eq(r, "sys_i386", "signal:31"), "an i386 int 0x80 syscall kills the process");
        tap(rget_eq(r, "sys_getpid", "ok"), "ordinary syscalls work");
        tap(rget_eq(r, "sys_socket_vsock", "EAFNOSUPPORT"), "AF_VSOCK sockets are refused");
        tap(rget_eq(r, "sys_socket_alg", "EAFNOSUPPORT") &&
                rget_eq(r, "sys_socket_alg_hi", "EAFNOSUPPORT"),
            "AF_ALG sockets are refused, also with high bits set in the family");
        tap(rget_eq(r, "sys_socket_unix", "ok"), "AF_UNIX sockets work");
        {
                const char *f = rget(r, "forks");
                int n = f ? atoi(f) : -1;
                tap(n > 0 && n < 32 && rget_eq(r, "forks_stop", "EAGAIN"),
                    "fork stops with EAGAIN below pids_max=32 (%d forks): the agent is in its "
                    "cgroup",
                    n);
        }
}

/* ---- test cases ---- */

static void test_properties(SandboxHost *h)
{
        SandboxSpec spec = spec_default("t-props");
        _cleanup_free_ char *rep = NULL;
        int mounts_before = host_mount_count(NULL);
        char runpath[128];
        SandboxExit e = {};
        Sandbox *s;
        int r;

        s = spawn_ready(h, &spec, NULL);
        if (!s)
                return;
        tap(sandbox_pid(s) > 0 && sandbox_pidfd(s) >= 0 && sandbox_channel_fd(s) >= 0 &&
                strcmp(sandbox_id(s), "t-props") == 0,
            "spawn returns pid, pidfd, channel and id");
        tap(fcntl(sandbox_channel_fd(s), F_GETFL) & O_NONBLOCK &&
                fcntl(sandbox_channel_fd(s), F_GETFD) & FD_CLOEXEC,
            "daemon end of the channel is non-blocking and CLOEXEC");
        rep = get_report(s);
        tap(rep && rget_eq(rep, "end", "1"), "probe sent a complete report");
        if (rep) {
                check_identity(rep);
                check_privileges(rep);
                check_fds(rep);
                check_mounts(rep);
                check_fs(rep);
                check_passwd(rep);
                check_net(rep);
                check_syscalls(rep);
        }
        snprintf(runpath, sizeof(runpath), "%s/.root", run_dir);
        tap(!host_mounts_mention(runpath) && host_mount_count(NULL) == mounts_before,
            "the sandbox's mounts are invisible on the host (%d mounts before, %d now)",
            mounts_before, host_mount_count(NULL));
        tap(sandbox_propagation_ok(s, 1, false),
            "inside, every mount is private (the code at /var/task is private too)");
        tap(sandbox_load_code(s, code_dir) == -EINVAL,
            "sandbox_load_code on a sandbox spawned with code: -EINVAL");
        r = sandbox_reap(s, &e);
        tap(r == -EAGAIN, "reap of a running sandbox returns -EAGAIN");
        chan_send(s, "exit 7");
        r = wait_exit(s, &e);
        tap(r == 0 && !e.setup_failed && e.exit_code == 7 && e.signal == 0,
            "agent exit status 7 is reported (code %d, signal %d)", e.exit_code, e.signal);
        tap(e.memory_peak > 0 && !e.oom_killed, "memory peak %llu bytes, no OOM",
            (unsigned long long)e.memory_peak);
        s = sandbox_free(s);
        tap(cgroup_gone(h, "t-props"), "sandbox_free removes the cgroup");
        tap(run_dir_gone("t-props"), "sandbox_free removes the run dir");
}

static void test_two_and_kill(SandboxHost *h)
{
        SandboxSpec sa = spec_default("t-a"), sb = spec_default("t-b");
        _cleanup_free_ char *ra = NULL, *rb = NULL;
        char buf[64], ua[64] = "", ub[64] = "";
        SandboxExit e;
        Sandbox *a, *b;
        FnError err = {};
        Sandbox *dup = NULL;
        int r;

        a = spawn_ready(h, &sa, NULL);
        b = spawn_ready(h, &sb, NULL);
        if (!a || !b) {
                sandbox_free(a);
                sandbox_free(b);
                return;
        }
        r = sandbox_spawn(h, &sa, &dup, &err);
        tap(r == -EEXIST, "a second sandbox with a live id is refused (%d: %s)", r, err.msg);
        ra = get_report(a);
        rb = get_report(b);
        if (ra && rget(ra, "uid"))
                snprintf(ua, sizeof(ua), "%s", rget(ra, "uid"));
        if (rb && rget(rb, "uid"))
                snprintf(ub, sizeof(ub), "%s", rget(rb, "uid"));
        tap(ua[0] && ub[0] && strcmp(ua, ub) != 0,
            "concurrent sandboxes get distinct uids (%s, %s)", ua, ub);
        chan_send(a, "sleep");
        tap(chan_recv(a, buf, sizeof(buf), TIMEOUT_MSEC) > 0 && !strcmp(buf, "sleeping"),
            "probe forked a sleeping child");
        tap(sandbox_kill(a) == 0, "sandbox_kill succeeds");
        tap(sandbox_kill(a) == 0, "sandbox_kill is idempotent");
        r = wait_exit(a, &e);
        tap(r == 0 && e.signal == SIGKILL && !e.setup_failed,
            "killed sandbox reports SIGKILL (signal %d)", e.signal);
        a = sandbox_free(a);
        tap(cgroup_gone(h, "t-a") && run_dir_gone("t-a"),
            "killed sandbox (with a child) leaves no cgroup and no run dir");
        /* free without reaping first: kills and waits itself */
        b = sandbox_free(b);
        tap(cgroup_gone(h, "t-b") && run_dir_gone("t-b"),
            "sandbox_free of a live sandbox cleans up");
}

static void test_failures(SandboxHost *h)
{
        SandboxSpec spec = spec_default("t-fail");
        FnError err = {};
        SandboxExit e = {};
        Sandbox *s = NULL;
        int r;

        spec.code_dir = "/nonexistent/fnbox-code";
        r = sandbox_spawn(h, &spec, &s, &err);
        tap(r == 0, "spawn with a missing code dir returns (the child fails later)");
        if (r == 0) {
                r = wait_exit(s, &e);
                tap(r == 0 && e.setup_failed && e.step == SANDBOX_STEP_TASK &&
                        e.step_errno == ENOENT && e.exit_code == 1,
                    "child reports step '%s' errno %d (%s)", sandbox_step_to_string(e.step),
                    e.step_errno, strerror(e.step_errno));
                tap(sandbox_step_to_string(e.step) &&
                        !strcmp(sandbox_step_to_string(e.step), "task"),
                    "step name is \"task\"");
                s = sandbox_free(s);
                tap(cgroup_gone(h, "t-fail") && run_dir_gone("t-fail"),
                    "failed sandbox leaves no cgroup and no run dir");
        }

        spec = spec_default("t-bad");
        spec.tmp_bytes = 0;
        tap(sandbox_spawn(h, &spec, &s, &err) == -EINVAL, "tmp_bytes 0 (unlimited) is refused");
        spec = spec_default("../escape");
        tap(sandbox_spawn(h, &spec, &s, &err) == -EINVAL, "an id with '/' is refused");
        spec = spec_default("t-bad");
        spec.code_dir = "relative/dir";
        tap(sandbox_spawn(h, &spec, &s, &err) == -EINVAL, "a relative code dir is refused");
        tap(run_dir_gone("t-bad"), "refused specs leave no run dir");
        tap(sandbox_step_to_string(SANDBOX_STEP_ROOT) &&
                !strcmp(sandbox_step_to_string(SANDBOX_STEP_ROOT), "mount-root") &&
                !strcmp(sandbox_step_to_string(SANDBOX_STEP_SECCOMP), "seccomp") &&
                sandbox_step_to_string(_SANDBOX_STEP_MAX) == NULL,
            "step names");
}

/* A stem cell: spawned without code, specialized later with one host-side mount. */
static void test_stem(SandboxHost *h)
{
        static const char *const ro[] = {"ro", "nosuid", "nodev", NULL};
        SandboxSpec spec = spec_default("t-stem");
        _cleanup_free_ char *r1 = NULL, *r2 = NULL;
        int mounts_before = host_mount_count(NULL), fds_before = count_fds();
        char cell[128], line[256];
        Sandbox *s;
        usec_t t0, t1;
        int r;

        snprintf(cell, sizeof(cell), "%s/t-stem", run_dir);
        spec.code_dir = NULL;
        s = spawn_ready(h, &spec, NULL);
        if (!s)
                return;
        tap(host_mount_count(NULL) == mounts_before + 1 && host_mount_count(cell) == 1,
            "a stem cell adds exactly one mount on the host, its cell dir (%d -> %d)",
            mounts_before, host_mount_count(NULL));
        r1 = get_report(s);
        tap(r1 && rget_eq(r1, "task", ""), "a stem cell starts with an empty /var/task");
        tap(r1 && rget_eq(r1, "write_task", "EROFS"), "the empty /var/task is read-only");
        tap(r1 && all_task_mounts_have(r1, ro), "the empty /var/task is ro, nosuid, nodev");
        if (r1) {
                check_privileges(r1);
                check_net(r1);
                tap(rget_eq(r1, "write_root", "EROFS") && rget_eq(r1, "write_usr", "EROFS"),
                    "a stem cell's root and /usr are read-only too");
        }
        tap(sandbox_propagation_ok(s, 1, true),
            "inside, /var/task is a slave of the cell and every other mount is private");

        t0 = now_usec();
        r = sandbox_load_code(s, code_dir);
        t1 = now_usec();
        tap(r == 0, "sandbox_load_code (%s, %llu us)", strerror(-r), (unsigned long long)(t1 - t0));
        tap(sandbox_load_code(s, code_dir) == -EBUSY, "loading code twice: -EBUSY");
        tap(host_mount_count(NULL) == mounts_before + 2 && host_mount_count(cell) == 2,
            "on the host: the cell and the code on it, nothing else (%d -> %d)", mounts_before,
            host_mount_count(NULL));
        {
                /* the host's own copy of the code mount */
                _cleanup_free_ char *mi = NULL;
                const char *l = NULL;
                snprintf(line, sizeof(line), " %s ro,nosuid,nodev", cell);
                if (read_file_at(AT_FDCWD, "/proc/self/mountinfo", 1 << 20, &mi, NULL) >= 0)
                        l = strstr(mi, line);
                tap(l != NULL, "the code mount on the host is ro, nosuid, nodev");
        }
        r2 = get_report(s);
        tap(r2 && rget_eq(r2, "task", "hello.txt") &&
                rget_eq(r2, "task_read", "hello from the task"),
            "after load, the sandbox sees the code at /var/task");
        tap(r2 && rget_eq(r2, "write_task", "EROFS"), "the loaded /var/task is read-only");
        tap(r2 && all_task_mounts_have(r2, ro),
            "the copy that propagated into the sandbox is ro, nosuid, nodev");
        tap(sandbox_propagation_ok(s, 2, true),
            "inside: two slave mounts at /var/task, all others private");
        if (r2)
                check_mounts(r2);

        /* limits */
        t0 = now_usec();
        r = sandbox_set_limits(s, 96ULL << 20, 200);
        t1 = now_usec();
        tap(r == 0, "sandbox_set_limits (%s, %llu us)", strerror(-r),
            (unsigned long long)(t1 - t0));
        if (!strcmp(sandbox_host_cgroup_version(h), "v1")) {
                tap(!strcmp(cg_v1_read(h, "memory", "t-stem", "memory.limit_in_bytes"),
                            "100663296"),
                    "memory.limit_in_bytes is now 96 MiB (%s)",
                    cg_v1_read(h, "memory", "t-stem", "memory.limit_in_bytes"));
                tap(!strcmp(cg_v1_read(h, "cpu", "t-stem", "cpu.shares"), "2048"),
                    "cpu.shares follows the weight (%s)",
                    cg_v1_read(h, "cpu", "t-stem", "cpu.shares"));
                tap(!strcmp(cg_v1_read(h, "pids", "t-stem", "pids.max"), "32"),
                    "pids.max is kept (%s)", cg_v1_read(h, "pids", "t-stem", "pids.max"));
        }
        tap(sandbox_set_limits(s, 32ULL << 20, 100) == 0 &&
                (strcmp(sandbox_host_cgroup_version(h), "v1") ||
                 !strcmp(cg_v1_read(h, "memory", "t-stem", "memory.limit_in_bytes"), "33554432")),
            "limits can be lowered again");
        tap(sandbox_set_limits(s, 0, 100) == -EINVAL &&
                sandbox_set_limits(s, 1 << 20, 0) == -EINVAL,
            "a zero memory limit or weight is refused");
        chan_send(s, "ping");
        tap(chan_recv(s, line, sizeof(line), TIMEOUT_MSEC) > 0 && !strcmp(line, "pong"),
            "the sandbox still runs after a refused set_limits");

        s = sandbox_free(s);
        tap(host_mount_count(NULL) == mounts_before && run_dir_gone("t-stem") &&
                cgroup_gone(h, "t-stem"),
            "freeing a stem cell removes its mounts, cell dir and cgroup");
        tap(count_fds() == fds_before, "no fd leaked (%d before, %d after)", fds_before,
            count_fds());
        snprintf(line, sizeof(line), "%s/hello.txt", code_dir);
        tap(path_exists(line), "the code directory itself is untouched");
}

static void test_freeze(SandboxHost *h)
{
        SandboxSpec spec = spec_default("t-frz");
        char buf[64];
        Sandbox *s;
        usec_t t0, t1;
        int r;

        spec.code_dir = NULL;
        s = spawn_ready(h, &spec, NULL);
        if (!s)
                return;
        chan_send(s, "ping");
        (void)chan_recv(s, buf, sizeof(buf), TIMEOUT_MSEC);
        t0 = now_usec();
        r = sandbox_freeze(s, true);
        t1 = now_usec();
        tap(r == 0, "sandbox_freeze(true) (%s, %llu us)", strerror(-r),
            (unsigned long long)(t1 - t0));
        if (!strcmp(sandbox_host_cgroup_version(h), "v1"))
                tap(!strcmp(cg_v1_read(h, "freezer", "t-frz", "freezer.state"), "FROZEN"),
                    "freezer.state is FROZEN");
        diag("state of the frozen agent in /proc/<pid>/stat: %c", proc_state(sandbox_pid(s)));
        tap(proc_state(sandbox_pid(s)) == 'D', "the frozen agent is in state D");
        chan_send(s, "ping");
        tap(chan_recv(s, buf, sizeof(buf), 300) == -ETIMEDOUT,
            "a frozen agent does not answer (300 ms)");
        tap(sandbox_freeze(s, true) == 0, "freezing again is fine");
        r = sandbox_freeze(s, false);
        tap(r == 0, "sandbox_freeze(false) (%s)", strerror(-r));
        tap(chan_recv(s, buf, sizeof(buf), TIMEOUT_MSEC) > 0 && !strcmp(buf, "pong"),
            "thawed, it answers the ping sent while frozen");
        if (!strcmp(sandbox_host_cgroup_version(h), "v1"))
                tap(!strcmp(cg_v1_read(h, "freezer", "t-frz", "freezer.state"), "THAWED"),
                    "freezer.state is THAWED");
        /* frozen sandboxes must still be killable and freeable */
        tap(sandbox_freeze(s, true) == 0, "frozen again");
        s = sandbox_free(s);
        tap(cgroup_gone(h, "t-frz") && run_dir_gone("t-frz"),
            "a frozen sandbox is freed completely (cgroup, cell dir)");
}

static void test_netns_pool(SandboxHost *h)
{
        SandboxSpec sa = spec_default("t-nsa"), sb = spec_default("t-nsb"),
                    sc = spec_default("t-nsc");
        _cleanup_free_ char *ra = NULL;
        ino_t self = ns_inode(0, "net"), ia, ib, ic;
        Sandbox *a, *b, *c;
        usec_t t0, t1;
        int r;

        tap(sandbox_host_netns_available(h) == 0, "the netns pool starts empty");
        tap(sandbox_host_refill(h, 4) == 0, "refill with target 0 makes none");
        tap(sandbox_host_set_netns_target(h, 100000) == -EINVAL, "an absurd target is refused");
        tap(sandbox_host_set_netns_target(h, 3) == 0, "target 3");
        t0 = now_usec();
        r = sandbox_host_refill(h, 10);
        t1 = now_usec();
        tap(r == 3 && sandbox_host_netns_available(h) == 3, "refill makes 3 (%d, %llu us for all)",
            r, (unsigned long long)(t1 - t0));
        tap(ns_inode(0, "net") == self && self != 0,
            "the daemon is back in its own network namespace after refill");
        tap(sandbox_host_refill(h, 10) == 0, "a full pool makes none");

        a = spawn_ready(h, &sa, NULL);
        b = spawn_ready(h, &sb, NULL);
        tap(sandbox_host_netns_available(h) == 1, "two spawns took two namespaces");
        ia = a ? ns_inode(sandbox_pid(a), "net") : 0;
        ib = b ? ns_inode(sandbox_pid(b), "net") : 0;
        tap(ia && ib && ia != ib && ia != self && ib != self,
            "each pooled sandbox has a network namespace of its own (%lu, %lu; host %lu)",
            (unsigned long)ia, (unsigned long)ib, (unsigned long)self);
        ra = a ? get_report(a) : NULL;
        if (ra)
                check_net(ra);
        tap(sandbox_host_set_netns_target(h, 0) == 0 && sandbox_host_netns_available(h) == 0,
            "lowering the target frees the spare namespaces");
        c = spawn_ready(h, &sc, NULL);
        ic = c ? ns_inode(sandbox_pid(c), "net") : 0;
        tap(c && ic && ic != self && ic != ia && ic != ib,
            "with the pool empty, a spawn makes a fresh namespace");
        a = sandbox_free(a);
        b = sandbox_free(b);
        c = sandbox_free(c);
        tap(ns_inode(0, "net") == self, "the daemon's network namespace never changed");
}

static void test_oom(SandboxHost *h)
{
        SandboxSpec spec = spec_default("t-oom");
        SandboxExit e = {};
        uint64_t kills = 0;
        Sandbox *s;
        int r;

        spec.memory_bytes = 32ULL << 20;
        s = spawn_ready(h, &spec, NULL);
        if (!s)
                return;
        chan_send(s, "memhog");
        r = wait_exit(s, &e);
        tap(r == 0 && e.signal == SIGKILL && e.oom_killed,
            "memory hog is OOM-killed (signal %d, oom %d, peak %llu)", e.signal, e.oom_killed,
            (unsigned long long)e.memory_peak);
        tap(e.memory_peak >= (24ULL << 20) && e.memory_peak <= (33ULL << 20),
            "memory peak is near the 32 MiB limit");
        tap(sandbox_oom_kills(s, &kills) == 0 && kills >= 1, "sandbox_oom_kills counts it");
        s = sandbox_free(s);
        tap(cgroup_gone(h, "t-oom"), "OOM-killed sandbox leaves no cgroup");
}

/* The daemon dies (SIGKILL, no cleanup): its sandboxes must die with it (PR_SET_PDEATHSIG),
 * and the next daemon's cleanup_stale must remove what it left. */
static void test_parent_death(SandboxHost *h)
{
        char cell[256];
        int pp[2], status = 0;
        pid_t helper, sbx = 0;
        siginfo_t si = {};
        bool died = false;

        if (pipe2(pp, O_CLOEXEC) < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
                tap(false, "parent-death setup: %s", strerror(errno));
                return;
        }
        helper = fork();
        if (helper == 0) {
                SandboxHostConfig cfg = {.agent_path = probe_path,
                                         .run_dir = run_dir,
                                         .cgroup_root = "/sys/fs/cgroup",
                                         .cgroup_parent = CGROUP_PARENT,
                                         .uid_base = UID_BASE + 5000,
                                         .uid_count = 10};
                SandboxSpec spec = spec_default("t-orphan");
                SandboxHost *h2 = NULL;
                FnError err = {};
                Sandbox *s;
                pid_t pid = 0;

                /* A stem cell with code loaded: the dead daemon leaves two stacked mounts on
                 * the cell, and cleanup must remove them without touching the code. */
                spec.code_dir = NULL;
                if (sandbox_host_new(&cfg, &h2, &err) >= 0) {
                        s = spawn_ready(h2, &spec, NULL);
                        pid = s && sandbox_load_code(s, code_dir) == 0 ? sandbox_pid(s) : 0;
                        /* Sleeping, the probe no longer exits on EOF of the channel (which
                         * races with the parent-death signal): only that signal ends it. */
                        if (pid > 0 && chan_send(s, "sleep") < 0)
                                pid = 0;
                }
                (void)!write(pp[1], &pid, sizeof(pid));
                for (;;)
                        pause(); /* killed by the test: no cleanup at all */
        }
        close(pp[1]);
        if (read(pp[0], &sbx, sizeof(sbx)) != sizeof(sbx))
                sbx = 0;
        close(pp[0]);
        tap(sbx > 0, "a helper \"daemon\" spawned a sandbox (pid %d)", (int)sbx);
        kill(helper, SIGKILL);
        waitpid(helper, &status, 0);
        if (sbx > 0) {
                /* We are the subreaper: the orphaned PID 1 is reparented to us. */
                usec_t deadline = now_usec() + 5 * USEC_PER_SEC;
                while (now_usec() < deadline) {
                        memset(&si, 0, sizeof(si));
                        if (waitid(P_PID, (id_t)sbx, &si, WEXITED | WNOHANG) == 0 &&
                            si.si_pid == sbx) {
                                died = true;
                                break;
                        }
                        usleep(1000);
                }
        }
        tap(died && si.si_code == CLD_KILLED && si.si_status == SIGKILL,
            "the sandbox is SIGKILLed when its daemon dies (code %d, status %d)", si.si_code,
            si.si_status);
        (void)prctl(PR_SET_CHILD_SUBREAPER, 0);
        snprintf(cell, sizeof(cell), "%s/t-orphan", run_dir);
        tap(!run_dir_gone("t-orphan") && !cgroup_gone_quiet(h, "t-orphan") &&
                host_mount_count(cell) == 2,
            "the dead daemon left its cell (with 2 mounts: %d) and cgroup behind",
            host_mount_count(cell));
        tap(sandbox_host_cleanup_stale(h) == 0 && run_dir_gone("t-orphan") &&
                cgroup_gone(h, "t-orphan") && host_mount_count(cell) == 0,
            "cleanup_stale removes what the dead daemon left, mounts included");
        snprintf(cell, sizeof(cell), "%s/hello.txt", code_dir);
        tap(path_exists(cell), "cleanup_stale leaves the code that was bound in the cell alone");
}

/* Every uid slot in use: spawn fails cleanly; freeing one makes room. */
static void test_uid_exhaustion(void)
{
        SandboxHostConfig cfg = {.agent_path = probe_path,
                                 .run_dir = run_dir,
                                 .cgroup_root = "/sys/fs/cgroup",
                                 .cgroup_parent = CGROUP_PARENT,
                                 .uid_base = UID_BASE + 6000,
                                 .uid_count = 1};
        SandboxSpec sa = spec_default("t-slot-a"), sb = spec_default("t-slot-b");
        _cleanup_(sandbox_host_freep) SandboxHost *h = NULL;
        _cleanup_free_ char *rep = NULL;
        FnError err = {};
        Sandbox *a, *b = NULL;
        int r;

        if (sandbox_host_new(&cfg, &h, &err) < 0) {
                tap(false, "second host: %s", err.msg);
                return;
        }
        a = spawn_ready(h, &sa, NULL);
        r = sandbox_spawn(h, &sb, &b, &err);
        tap(a && r == -EBUSY, "with every uid in use, spawn fails with -EBUSY (%d: %s)", r,
            err.msg);
        tap(run_dir_gone("t-slot-b") && cgroup_gone(h, "t-slot-b"),
            "the refused spawn left no run dir and no cgroup");
        a = sandbox_free(a);
        b = spawn_ready(h, &sb, NULL);
        rep = b ? get_report(b) : NULL;
        tap(rep && rget(rep, "uid") && atoi(rget(rep, "uid")) == UID_BASE + 6000,
            "after a free, the uid is handed out again");
        b = sandbox_free(b);
}

/* An agent that cannot be exec'ed: the failure names the exec step. A script is such an
 * agent: execveat of a CLOEXEC fd cannot pass the script to its interpreter. */
static void test_exec_failure(void)
{
        SandboxHostConfig cfg = {.agent_path = NULL,
                                 .run_dir = run_dir,
                                 .cgroup_root = "/sys/fs/cgroup",
                                 .cgroup_parent = CGROUP_PARENT,
                                 .uid_base = UID_BASE + 7000,
                                 .uid_count = 10};
        SandboxSpec spec = spec_default("t-exec");
        _cleanup_(sandbox_host_freep) SandboxHost *h = NULL;
        char script[128];
        FnError err = {};
        SandboxExit e = {};
        Sandbox *s = NULL;
        int fd, r;

        snprintf(script, sizeof(script), "%s/agent.sh", code_dir);
        fd = open(script, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        if (fd < 0 || write(fd, "#!/bin/sh\nexit 0\n", 17) != 17) {
                tap(false, "cannot write %s", script);
                if (fd >= 0)
                        close(fd);
                return;
        }
        close(fd);
        cfg.agent_path = script;
        r = sandbox_host_new(&cfg, &h, &err);
        if (r >= 0)
                r = sandbox_spawn(h, &spec, &s, &err);
        if (r >= 0)
                r = wait_exit(s, &e);
        tap(r == 0 && e.setup_failed && e.step == SANDBOX_STEP_EXEC && e.step_errno == ENOENT,
            "a script agent fails at step '%s' with errno %d", sandbox_step_to_string(e.step),
            e.step_errno);
        s = sandbox_free(s);
        unlink(script);
}

static int cmp_usec(const void *a, const void *b)
{
        usec_t x = *(const usec_t *)a, y = *(const usec_t *)b;
        return x < y ? -1 : x > y;
}

static void test_timing(SandboxHost *h)
{
        enum { N = 20 };
        usec_t spawn_t[N], ready_t[N], exit_t[N], free_t[N];
        int ok = 0;

        for (int i = 0; i < N; i++) {
                char id[32];
                SandboxSpec spec;
                SandboxExit e;
                Sandbox *s;
                FnError err = {};
                char buf[16];
                usec_t t0, t1, t2, t3;

                snprintf(id, sizeof(id), "t-time-%d", i);
                spec = spec_default(id);
                t0 = now_usec();
                if (sandbox_spawn(h, &spec, &s, &err) < 0)
                        break;
                t1 = now_usec();
                if (chan_recv(s, buf, sizeof(buf), TIMEOUT_MSEC) < 0) {
                        sandbox_free(s);
                        break;
                }
                t2 = now_usec();
                chan_send(s, "exit 0");
                if (wait_exit(s, &e) < 0) {
                        sandbox_free(s);
                        break;
                }
                t3 = now_usec();
                sandbox_free(s);
                spawn_t[ok] = t1 - t0;
                ready_t[ok] = t2 - t0;
                exit_t[ok] = t3 - t2;
                free_t[ok] = now_usec() - t3;
                ok++;
        }
        tap(ok == N, "%d spawn/exit/free cycles", ok);
        if (ok == 0)
                return;
        qsort(spawn_t, ok, sizeof(usec_t), cmp_usec);
        qsort(ready_t, ok, sizeof(usec_t), cmp_usec);
        qsort(exit_t, ok, sizeof(usec_t), cmp_usec);
        qsort(free_t, ok, sizeof(usec_t), cmp_usec);
        diag("timing over %d runs (median / min / max, microseconds):", ok);
        diag("  sandbox_spawn() call:            %6llu / %6llu / %6llu",
             (unsigned long long)spawn_t[ok / 2], (unsigned long long)spawn_t[0],
             (unsigned long long)spawn_t[ok - 1]);
        diag("  spawn -> agent's first message:  %6llu / %6llu / %6llu",
             (unsigned long long)ready_t[ok / 2], (unsigned long long)ready_t[0],
             (unsigned long long)ready_t[ok - 1]);
        diag("  exit request -> reaped:          %6llu / %6llu / %6llu",
             (unsigned long long)exit_t[ok / 2], (unsigned long long)exit_t[0],
             (unsigned long long)exit_t[ok - 1]);
        diag("  sandbox_free() after reap:       %6llu / %6llu / %6llu",
             (unsigned long long)free_t[ok / 2], (unsigned long long)free_t[0],
             (unsigned long long)free_t[ok - 1]);
}

static void test_cleanup_stale(SandboxHost *h)
{
        static const char *const ctrls[] = {"memory", "cpu", "pids", "freezer"};
        char p[256];
        bool cg_gone = true;
        int fd;

        snprintf(p, sizeof(p), "%s/stale-1", run_dir);
        mkdir(p, 0700);
        snprintf(p, sizeof(p), "%s/stale-1/leftover", run_dir);
        fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
                close(fd);
        if (!strcmp(sandbox_host_cgroup_version(h), "v1"))
                for (size_t i = 0; i < 4; i++) {
                        snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/" CGROUP_PARENT "/stale-cg",
                                 ctrls[i]);
                        mkdir(p, 0755);
                }
        tap(sandbox_host_cleanup_stale(h) == 0, "cleanup_stale succeeds");
        tap(run_dir_gone("stale-1"), "cleanup_stale removes a leftover run dir");
        for (size_t i = 0; i < 4; i++) {
                snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/" CGROUP_PARENT "/stale-cg", ctrls[i]);
                cg_gone = cg_gone && !path_exists(p);
        }
        tap(cg_gone, "cleanup_stale removes leftover cgroups");
}

static int setup_dirs(void)
{
        char p[128];
        int fd;

        snprintf(run_dir, sizeof(run_dir), "/tmp/fnbox-sbx-run-XXXXXX");
        snprintf(code_dir, sizeof(code_dir), "/tmp/fnbox-sbx-code-XXXXXX");
        if (!mkdtemp(run_dir) || !mkdtemp(code_dir))
                return -errno;
        if (chmod(code_dir, 0755) < 0)
                return -errno;
        snprintf(p, sizeof(p), "%s/hello.txt", code_dir);
        fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        if (write(fd, "hello from the task\n", 20) != 20) {
                close(fd);
                return -EIO;
        }
        close(fd);
        return 0;
}

static int listen_loopback(void)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
                return -errno;
        listen_port = ntohs(sa.sin_port);
        return fd;
}

static void remove_test_cgroup_parent(void)
{
        static const char *const ctrls[] = {"memory", "cpu", "pids", "freezer"};
        char p[256];

        for (size_t i = 0; i < 4; i++) {
                snprintf(p, sizeof(p), "/sys/fs/cgroup/%s/" CGROUP_PARENT, ctrls[i]);
                (void)rmdir(p);
        }
}

int main(int argc, char **argv)
{
        SandboxHost *h = NULL;
        FnError err = {};
        int fds_before, mounts_before, lfd, r;

        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root (namespaces, cgroups, mounts)\n");
                return 0;
        }
        if (argc < 2) {
                printf("1..0 # SKIP usage: test-sandbox <probe-agent>\n");
                return 0;
        }
        probe_path = argv[1];
        signal(SIGPIPE, SIG_IGN);
        /* The code files this test writes must be readable by the sandbox uids. */
        (void)umask(0022);
        /* A mount namespace of our own with "/" shared, as systemd sets up a host: then every
         * propagation the sandbox code gets wrong shows up (this machine's "/" is private),
         * and nothing the test mounts can reach the real host. */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL) < 0) {
                printf("Bail out! cannot make a shared mount namespace: %s\n", strerror(errno));
                return 1;
        }
        fds_before = count_fds();
        mounts_before = host_mount_count(NULL);
        if (setup_dirs() < 0) {
                printf("Bail out! cannot create temp dirs\n");
                return 1;
        }
        SandboxHostConfig cfg = {.agent_path = probe_path,
                                 .run_dir = run_dir,
                                 .cgroup_root = "/sys/fs/cgroup",
                                 .cgroup_parent = CGROUP_PARENT,
                                 .uid_base = UID_BASE,
                                 .uid_count = 10000};
        r = sandbox_host_new(&cfg, &h, &err);
        tap(r == 0, "sandbox_host_new (%s)", r < 0 ? err.msg : "ok");
        if (r < 0) {
                printf("1..%d\n", tap_n);
                return 1;
        }
        diag("cgroup %s", sandbox_host_cgroup_version(h));
        lfd = listen_loopback();
        tap(lfd >= 0, "host listens on 127.0.0.1:%d", listen_port);

        test_cleanup_stale(h);
        test_properties(h);
        test_two_and_kill(h);
        test_failures(h);
        test_stem(h);
        test_freeze(h);
        test_netns_pool(h);
        test_oom(h);
        test_uid_exhaustion();
        test_exec_failure();
        test_parent_death(h);
        test_timing(h);

        close(lfd);
        h = sandbox_host_free(h);
        tap(count_fds() == fds_before, "no fd leaked in the test process (%d before, %d after)",
            fds_before, count_fds());
        tap(host_mount_count(NULL) == mounts_before,
            "no mount left on the host after sandbox_host_free (%d before, %d after)",
            mounts_before, host_mount_count(NULL));
        (void)rm_rf_at(AT_FDCWD, run_dir);
        (void)rm_rf_at(AT_FDCWD, code_dir);
        remove_test_cgroup_parent();
        printf("1..%d\n", tap_n);
        return tap_failed ? 1 : 0;
}
