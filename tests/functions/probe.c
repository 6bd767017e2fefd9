/* SPDX-License-Identifier: Apache-2.0 */
/* probe.so: the multi-call test function of the end-to-end tests.
 *
 * The payload is a text command "OP [ARGS...]"; the answer is a JSON object. Ops:
 *   echo TEXT              {"echo":TEXT} (TEXT is the rest of the payload, verbatim)
 *   status                 ids, pid, hostname, cwd, groups, capability/seccomp lines of
 *                          /proc/self/status, selected env, request fields, counters
 *   env NAME               {"name":NAME,"value":VALUE or null}
 *   sleep MS / spin MS     nanosleep / busy loop for MS milliseconds
 *   memhog MB              allocate and touch MB MiB, then free it: {"allocated_mb":MB}
 *   forkbomb [MAX]         fork pause()ing children until fork fails (or MAX, default 10000):
 *                          {"forked":N,"errno":E}; the children stay
 *   crash / abort          a line on stderr, then a NULL dereference / abort()
 *   exit CODE              _exit(CODE)
 *   fail TYPE MESSAGE      fnbox_fail(TYPE, MESSAGE)
 *   print TEXT             TEXT on stdout, "err:"TEXT on stderr: {"printed":true}
 *   spam KB                KB KiB of lines on stdout: {"written_kb":KB}
 *   try OP [ARGS]          attempt something a sandbox should (mostly) refuse, in a forked child
 *                          so that success changes nothing in the instance and a seccomp kill is
 *                          reported instead of ending it: {"op","ok","errno","error"[,"signal"],
 *                          op-specific fields}. OPs: read PATH, write PATH, ls PATH, mount,
 *                          unshare-user, unshare-net, clone-newns, setns [NSFILE], ptrace, bpf,
 *                          perf, keyctl, userfaultfd, io_uring, tiocsti, chroot, x32, i386,
 *                          connect HOST PORT, kill PID SIG, setuid0, mknod PATH, chmod-suid PATH
 *   net                    interfaces with their flags and addresses
 *   mounts                 {"mountinfo": /proc/self/mountinfo}
 *   limits                 soft/hard NOFILE, CORE, NPROC, AS, FSIZE, STACK (-1: unlimited)
 *   fds                    open fds and their readlink() targets
 *   ps                     every process in /proc: pid, ppid, state, comm
 *   spawn MS               fork a child that exits after MS ms and is not waited for (the agent,
 *                          as PID 1, must reap it): {"pid":N}
 * Unknown ops and bad arguments fail with type "BadRequest".
 *
 * Also exported: fnbox_init (prints "probe: init"; returns $FNBOX_TEST_INIT_FAIL if set, after
 * sleeping $FNBOX_TEST_INIT_SLEEP_MS) and a second handler "hello" (deploy "probe.so:hello"). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <net/if.h>
#include <netdb.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fnbox.h"

fnbox_handler_fn handler;
fnbox_handler_fn hello;

extern char **environ;

static unsigned init_calls;
static unsigned invocations;
/* Not provably NULL to the compiler, so the crash is a real SIGSEGV and not a trap instruction. */
static int *volatile crash_ptr;

/* ---- JSON output ------------------------------------------------------------------------- */

typedef struct Json {
        char *buf;
        size_t len, cap;
        bool oom;
} Json;

static void j_raw(Json *j, const char *s, size_t n)
{
        if (j->oom)
                return;
        if (j->len + n + 1 > j->cap) {
                size_t cap = (j->len + n + 1) * 2;
                char *b = realloc(j->buf, cap);

                if (!b) {
                        j->oom = true;
                        return;
                }
                j->buf = b;
                j->cap = cap;
        }
        memcpy(j->buf + j->len, s, n);
        j->len += n;
        j->buf[j->len] = '\0';
}

/* A comma unless we are right after an opening bracket, a key, or at the start. */
static void j_sep(Json *j)
{
        char last = j->len > 0 ? j->buf[j->len - 1] : '{';

        if (last != '{' && last != '[' && last != ':')
                j_raw(j, ",", 1);
}

static void j_fmt(Json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void j_fmt(Json *j, const char *fmt, ...)
{
        char tmp[128];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        if (n > 0)
                j_raw(j, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static size_t utf8_len(const unsigned char *s, size_t left)
{
        unsigned c;
        size_t n;

        if (s[0] < 0x80)
                return 1;
        if ((s[0] & 0xe0) == 0xc0)
                n = 2, c = s[0] & 0x1f;
        else if ((s[0] & 0xf0) == 0xe0)
                n = 3, c = s[0] & 0x0f;
        else if ((s[0] & 0xf8) == 0xf0)
                n = 4, c = s[0] & 0x07;
        else
                return 0;
        if (n > left)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                c = c << 6 | (s[i] & 0x3f);
        }
        if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
            c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
                return 0;
        return n;
}

/* A JSON string of n bytes; bytes that are not UTF-8 become U+FFFD. */
static void j_strn(Json *j, const char *s, size_t n)
{
        const unsigned char *u = (const unsigned char *)s;
        size_t i = 0, run = 0; /* s[run..i) is plain text not yet copied */

        j_sep(j);
        j_raw(j, "\"", 1);
        while (i < n) {
                size_t k = utf8_len(u + i, n - i);

                if (k > 0 && u[i] >= 0x20 && u[i] != '"' && u[i] != '\\') {
                        i += k;
                        continue;
                }
                j_raw(j, s + run, i - run);
                if (k == 0)
                        j_raw(j, "\\ufffd", 6);
                else if (u[i] == '"' || u[i] == '\\')
                        j_fmt(j, "\\%c", u[i]);
                else
                        j_fmt(j, "\\u%04x", u[i]);
                run = ++i;
        }
        j_raw(j, s + run, i - run);
        j_raw(j, "\"", 1);
}

static void j_str(Json *j, const char *s)
{
        if (!s) {
                j_sep(j);
                j_raw(j, "null", 4);
                return;
        }
        j_strn(j, s, strlen(s));
}

static void j_key(Json *j, const char *key)
{
        j_str(j, key);
        j_raw(j, ":", 1);
}

static void j_open(Json *j, char c)
{
        j_sep(j);
        j_raw(j, &c, 1);
}

static void j_close(Json *j, char c)
{
        j_raw(j, &c, 1);
}

static void j_int(Json *j, long long v)
{
        j_sep(j);
        j_fmt(j, "%lld", v);
}

static void j_bool(Json *j, bool v)
{
        j_sep(j);
        j_raw(j, v ? "true" : "false", v ? 4 : 5);
}

static void kv_str(Json *j, const char *k, const char *v)
{
        j_key(j, k);
        j_str(j, v);
}

static void kv_int(Json *j, const char *k, long long v)
{
        j_key(j, k);
        j_int(j, v);
}

static void kv_bool(Json *j, const char *k, bool v)
{
        j_key(j, k);
        j_bool(j, v);
}

/* ---- requests ---------------------------------------------------------------------------- */

typedef struct Ctx {
        const fnbox_request *req;
        fnbox_response *res;
        char *cmd;  /* the payload, NUL-terminated (it may contain other NULs) */
        size_t len; /* its length */
        char *pos;  /* parse position */
        Json j;
        bool failed;
        Json *child_j; /* in a try child: where argument errors are reported */
} Ctx;

static int bad_request(Ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_request(Ctx *c, const char *fmt, ...)
{
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (c->child_j) {
                kv_str(c->child_j, "bad_request", msg);
                return -EINVAL;
        }
        (void)fnbox_fail(c->res, "BadRequest", msg);
        c->failed = true;
        return -EINVAL;
}

static bool is_space(char ch)
{
        return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* The next whitespace-separated argument (NUL-terminated in place), or NULL. */
static char *next_arg(Ctx *c)
{
        char *s;

        while (is_space(*c->pos))
                c->pos++;
        if (!*c->pos)
                return NULL;
        s = c->pos;
        while (*c->pos && !is_space(*c->pos))
                c->pos++;
        if (*c->pos)
                *c->pos++ = '\0';
        return s;
}

/* The rest of the payload after one separator, verbatim; its length in *ret_len. */
static const char *rest(Ctx *c, size_t *ret_len)
{
        *ret_len = c->len - (size_t)(c->pos - c->cmd);
        return c->pos;
}

static int parse_int(Ctx *c, const char *what, const char *s, long long min, long long max,
                     long long *ret)
{
        char *end;
        long long v;

        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end || end == s || v < min || v > max)
                return bad_request(c, "bad %s '%.100s'", what, s);
        *ret = v;
        return 0;
}

static int arg_int(Ctx *c, const char *what, long long min, long long max, long long *ret)
{
        const char *s = next_arg(c);

        if (!s)
                return bad_request(c, "missing argument %s", what);
        return parse_int(c, what, s, min, max, ret);
}

/* An optional integer argument: def when absent. */
static int opt_int(Ctx *c, const char *what, long long min, long long max, long long def,
                   long long *ret)
{
        const char *s = next_arg(c);

        if (!s) {
                *ret = def;
                return 0;
        }
        return parse_int(c, what, s, min, max, ret);
}

static int arg_str(Ctx *c, const char *what, const char **ret)
{
        *ret = next_arg(c);
        if (!*ret)
                return bad_request(c, "missing argument %s", what);
        return 0;
}

/* ---- simple ops -------------------------------------------------------------------------- */

static int op_echo(Ctx *c)
{
        size_t n;
        const char *s = rest(c, &n);

        j_key(&c->j, "echo");
        j_strn(&c->j, s, n);
        return 0;
}

static void status_proc_lines(Json *j)
{
        static const char *const keys[] = {"Uid",    "Gid",    "CapInh",     "CapPrm", "CapEff",
                                           "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"};
        char line[512];
        FILE *f = fopen("/proc/self/status", "re");

        if (!f)
                return;
        while (fgets(line, sizeof(line), f)) {
                char *colon = strchr(line, ':'), *v;

                if (!colon)
                        continue;
                *colon = '\0';
                v = colon + 1;
                v += strspn(v, " \t");
                v[strcspn(v, "\n")] = '\0';
                for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                        if (strcmp(line, keys[i]) == 0)
                                kv_str(j, keys[i], v);
        }
        fclose(f);
}

static void status_env(Json *j)
{
        j_key(j, "env");
        j_open(j, '{');
        kv_str(j, "PATH", getenv("PATH"));
        kv_str(j, "HOME", getenv("HOME"));
        for (char **e = environ; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                char name[256];
                size_t n;

                if (!eq || (strncmp(*e, "FNBOX_", 6) != 0 && strncmp(*e, "AWS_LAMBDA_", 11) != 0))
                        continue;
                n = (size_t)(eq - *e);
                if (n >= sizeof(name))
                        continue;
                memcpy(name, *e, n);
                name[n] = '\0';
                kv_str(j, name, eq + 1);
        }
        j_close(j, '}');
}

static int op_status(Ctx *c)
{
        Json *j = &c->j;
        char host[256] = "", cwd[4096];
        gid_t groups[256];
        int n;

        kv_int(j, "uid", getuid());
        kv_int(j, "gid", getgid());
        kv_int(j, "euid", geteuid());
        kv_int(j, "egid", getegid());
        kv_int(j, "pid", getpid());
        kv_int(j, "ppid", getppid());
        (void)gethostname(host, sizeof(host) - 1);
        kv_str(j, "hostname", host);
        kv_str(j, "cwd", getcwd(cwd, sizeof(cwd)));
        j_key(j, "groups");
        j_open(j, '[');
        n = getgroups(256, groups);
        for (int i = 0; i < n; i++)
                j_int(j, groups[i]);
        j_close(j, ']');
        status_proc_lines(j);
        status_env(j);
        kv_str(j, "request_id", c->req->request_id);
        kv_str(j, "function_name", c->req->function_name);
        kv_str(j, "function_version", c->req->function_version);
        kv_int(j, "deadline_unix_ms", (long long)c->req->deadline_unix_ms);
        kv_int(j, "memory_limit_mb", c->req->memory_limit_mb);
        kv_int(j, "remaining_ms",
               c->req->deadline_unix_ms ? (long long)fnbox_remaining_ms(c->req) : -1);
        kv_int(j, "init_calls", init_calls);
        kv_int(j, "invocations", invocations);
        return 0;
}

static int op_env(Ctx *c)
{
        const char *name;

        if (arg_str(c, "NAME", &name) < 0)
                return -EINVAL;
        kv_str(&c->j, "name", name);
        kv_str(&c->j, "value", getenv(name));
        return 0;
}

static void sleep_ms(long long ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int op_sleep(Ctx *c)
{
        long long ms = 0;

        if (arg_int(c, "MS", 0, 24LL * 3600 * 1000, &ms) < 0)
                return -EINVAL;
        sleep_ms(ms);
        kv_int(&c->j, "slept_ms", ms);
        return 0;
}

static long long now_ms(void)
{
        struct timespec ts;

        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int op_spin(Ctx *c)
{
        long long ms = 0, end;
        volatile unsigned long x = 0;

        if (arg_int(c, "MS", 0, 24LL * 3600 * 1000, &ms) < 0)
                return -EINVAL;
        end = now_ms() + ms;
        while (now_ms() < end)
                for (int i = 0; i < 10000; i++)
                        x = x + (unsigned long)i;
        kv_int(&c->j, "spun_ms", ms);
        return 0;
}

static int op_memhog(Ctx *c)
{
        long long mb = 0;
        long page = sysconf(_SC_PAGESIZE);
        volatile char *p;
        size_t size;

        if (arg_int(c, "MB", 0, 1024LL * 1024, &mb) < 0)
                return -EINVAL;
        size = (size_t)mb << 20;
        p = malloc(size ? size : 1);
        if (!p) {
                (void)fnbox_fail(c->res, "MemoryError", "malloc failed");
                c->failed = true;
                return -ENOMEM;
        }
        /* Touch every page so the memory is really charged, not just reserved. */
        for (size_t i = 0; i < size; i += (size_t)page)
                p[i] = 1;
        free((void *)p);
        kv_int(&c->j, "allocated_mb", mb);
        return 0;
}

static int op_forkbomb(Ctx *c)
{
        long long max = 0, n = 0;
        int err = 0;

        if (opt_int(c, "MAX", 1, 1000000, 10000, &max) < 0)
                return -EINVAL;
        while (n < max) {
                pid_t pid = fork();

                if (pid < 0) {
                        err = errno;
                        break;
                }
                if (pid == 0)
                        for (;;)
                                pause();
                n++;
        }
        kv_int(&c->j, "forked", n);
        kv_int(&c->j, "errno", err);
        return 0;
}

static int op_crash(Ctx *c)
{
        fputs("probe: crashing now (NULL dereference)\n", stderr);
        *crash_ptr = 1;
        return 0;
}

static int op_abort(Ctx *c)
{
        fputs("probe: calling abort()\n", stderr);
        abort();
}

static int op_exit(Ctx *c)
{
        long long code = 0;

        if (arg_int(c, "CODE", 0, 255, &code) < 0)
                return -EINVAL;
        _exit((int)code);
}

static int op_fail(Ctx *c)
{
        const char *type, *msg;
        size_t n;

        if (arg_str(c, "TYPE", &type) < 0)
                return -EINVAL;
        msg = rest(c, &n);
        (void)fnbox_fail(c->res, type, msg);
        c->failed = true;
        return 0;
}

static int op_print(Ctx *c)
{
        size_t n;
        const char *s = rest(c, &n);

        (void)fwrite(s, 1, n, stdout);
        (void)fputc('\n', stdout);
        (void)fputs("err:", stderr);
        (void)fwrite(s, 1, n, stderr);
        (void)fputc('\n', stderr);
        kv_bool(&c->j, "printed", true);
        return 0;
}

static int op_spam(Ctx *c)
{
        char line[1024];
        long long kb = 0;

        if (arg_int(c, "KB", 0, 1024LL * 1024, &kb) < 0)
                return -EINVAL;
        memset(line, 'x', sizeof(line) - 1);
        line[sizeof(line) - 1] = '\n';
        for (long long i = 0; i < kb; i++)
                (void)fwrite(line, 1, sizeof(line), stdout);
        kv_int(&c->j, "written_kb", kb);
        return 0;
}

/* ---- environment ops --------------------------------------------------------------------- */

static char *read_text(const char *path, size_t max, size_t *ret_len)
{
        char *buf = malloc(max + 1);
        size_t n = 0;
        int fd;

        if (!buf)
                return NULL;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                free(buf);
                return NULL;
        }
        while (n < max) {
                ssize_t k = read(fd, buf + n, max - n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t)k;
        }
        close(fd);
        buf[n] = '\0';
        *ret_len = n;
        return buf;
}

static int op_mounts(Ctx *c)
{
        size_t n = 0;
        char *s = read_text("/proc/self/mountinfo", 1024 * 1024, &n);

        j_key(&c->j, "mountinfo");
        if (s)
                j_strn(&c->j, s, n);
        else
                j_str(&c->j, NULL);
        free(s);
        return 0;
}

static void limit(Json *j, const char *name, int resource)
{
        struct rlimit rl;

        if (getrlimit(resource, &rl) < 0)
                return;
        j_key(j, name);
        j_open(j, '{');
        kv_int(j, "soft", rl.rlim_cur == RLIM_INFINITY ? -1 : (long long)rl.rlim_cur);
        kv_int(j, "hard", rl.rlim_max == RLIM_INFINITY ? -1 : (long long)rl.rlim_max);
        j_close(j, '}');
}

static int op_limits(Ctx *c)
{
        limit(&c->j, "nofile", RLIMIT_NOFILE);
        limit(&c->j, "core", RLIMIT_CORE);
        limit(&c->j, "nproc", RLIMIT_NPROC);
        limit(&c->j, "as", RLIMIT_AS);
        limit(&c->j, "fsize", RLIMIT_FSIZE);
        limit(&c->j, "stack", RLIMIT_STACK);
        return 0;
}

static int op_fds(Ctx *c)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;

        if (!d) {
                (void)fnbox_fail(c->res, "ProbeError", "cannot open /proc/self/fd");
                c->failed = true;
                return -errno;
        }
        j_key(&c->j, "fds");
        j_open(&c->j, '[');
        while ((de = readdir(d))) {
                char target[4096];
                ssize_t n;

                if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
                        continue;
                n = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
                target[n > 0 ? n : 0] = '\0';
                j_open(&c->j, '{');
                kv_int(&c->j, "fd", atoi(de->d_name));
                kv_str(&c->j, "target", target);
                j_close(&c->j, '}');
        }
        closedir(d);
        j_close(&c->j, ']');
        return 0;
}

static void net_addrs(Json *j, struct ifaddrs *all, const char *name)
{
        j_key(j, "addrs");
        j_open(j, '[');
        for (struct ifaddrs *i = all; i; i = i->ifa_next) {
                char buf[INET6_ADDRSTRLEN] = "";
                const void *a;

                if (strcmp(i->ifa_name, name) != 0 || !i->ifa_addr)
                        continue;
                if (i->ifa_addr->sa_family == AF_INET)
                        a = &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr;
                else if (i->ifa_addr->sa_family == AF_INET6)
                        a = &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr;
                else
                        continue;
                if (inet_ntop(i->ifa_addr->sa_family, a, buf, sizeof(buf)))
                        j_str(j, buf);
        }
        j_close(j, ']');
}

static int op_net(Ctx *c)
{
        struct ifaddrs *all = NULL;

        if (getifaddrs(&all) < 0) {
                (void)fnbox_fail(c->res, "ProbeError", strerror(errno));
                c->failed = true;
                return -EIO;
        }
        j_key(&c->j, "interfaces");
        j_open(&c->j, '[');
        for (struct ifaddrs *i = all; i; i = i->ifa_next) {
                bool seen = false;

                for (struct ifaddrs *k = all; k != i; k = k->ifa_next)
                        seen = seen || strcmp(k->ifa_name, i->ifa_name) == 0;
                if (seen)
                        continue;
                j_open(&c->j, '{');
                kv_str(&c->j, "name", i->ifa_name);
                kv_bool(&c->j, "up", i->ifa_flags & IFF_UP);
                kv_bool(&c->j, "running", i->ifa_flags & IFF_RUNNING);
                kv_bool(&c->j, "loopback", i->ifa_flags & IFF_LOOPBACK);
                net_addrs(&c->j, all, i->ifa_name);
                j_close(&c->j, '}');
        }
        j_close(&c->j, ']');
        freeifaddrs(all);
        return 0;
}

static void ps_entry(Json *j, const char *pid)
{
        char path[64], buf[512], *open_paren, *close_paren;
        int fd;
        ssize_t n;

        (void)snprintf(path, sizeof(path), "/proc/%.20s/stat", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return;
        buf[n] = '\0';
        /* "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses. */
        open_paren = strchr(buf, '(');
        close_paren = strrchr(buf, ')');
        if (!open_paren || !close_paren || close_paren < open_paren || close_paren[1] != ' ')
                return;
        *close_paren = '\0';
        j_open(j, '{');
        kv_int(j, "pid", atoll(pid));
        kv_str(j, "comm", open_paren + 1);
        j_key(j, "state");
        j_strn(j, close_paren + 2, 1);
        kv_int(j, "ppid", atoll(close_paren + 4));
        j_close(j, '}');
}

static int op_ps(Ctx *c)
{
        DIR *d = opendir("/proc");
        struct dirent *de;

        if (!d) {
                (void)fnbox_fail(c->res, "ProbeError", "cannot open /proc");
                c->failed = true;
                return -EIO;
        }
        j_key(&c->j, "processes");
        j_open(&c->j, '[');
        while ((de = readdir(d)))
                if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
                        ps_entry(&c->j, de->d_name);
        closedir(d);
        j_close(&c->j, ']');
        return 0;
}

static int op_spawn(Ctx *c)
{
        long long ms = 0;
        pid_t pid;

        if (arg_int(c, "MS", 0, 24LL * 3600 * 1000, &ms) < 0)
                return -EINVAL;
        pid = fork();
        if (pid < 0) {
                (void)fnbox_fail(c->res, "ProbeError", strerror(errno));
                c->failed = true;
                return -EIO;
        }
        if (pid == 0) {
                sleep_ms(ms);
                _exit(0);
        }
        kv_int(&c->j, "pid", pid);
        return 0;
}

/* ---- try: attempts, each in a forked child ------------------------------------------------ */

/* A try op runs in the child: returns 0 or -errno and may add fields to *j (an open object). */
typedef int try_fn(Ctx *c, Json *j);

static int sys_result(long r)
{
        return r < 0 ? -errno : 0;
}

static int try_read(Ctx *c, Json *j)
{
        const char *path;
        char buf[4096];
        ssize_t n;
        int fd;

        if (arg_str(c, "PATH", &path) < 0)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf));
        if (n < 0)
                return -errno;
        kv_int(j, "bytes", n);
        j_key(j, "data");
        j_strn(j, buf, (size_t)n);
        return 0;
}

static int try_write(Ctx *c, Json *j)
{
        const char *path;
        int fd;

        if (arg_str(c, "PATH", &path) < 0)
                return -EINVAL;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0)
                return -errno;
        if (write(fd, "probe\n", 6) != 6)
                return -errno;
        kv_int(j, "bytes", 6);
        return 0;
}

static int try_ls(Ctx *c, Json *j)
{
        const char *path;
        struct dirent *de;
        long long count = 0;
        DIR *d;

        if (arg_str(c, "PATH", &path) < 0)
                return -EINVAL;
        d = opendir(path);
        if (!d)
                return -errno;
        j_key(j, "names");
        j_open(j, '[');
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (count++ < 1000)
                        j_str(j, de->d_name);
        }
        j_close(j, ']');
        kv_int(j, "count", count);
        return 0;
}

static int try_mount(Ctx *c, Json *j)
{
        if (mkdir("/tmp/x", 0755) < 0 && errno != EEXIST)
                return -errno;
        if (mount("tmpfs", "/tmp/x", "tmpfs", 0, "size=1m") < 0)
                return -errno;
        (void)umount2("/tmp/x", MNT_DETACH);
        return 0;
}

static int try_unshare_user(Ctx *c, Json *j)
{
        return sys_result(unshare(CLONE_NEWUSER));
}

static int try_unshare_net(Ctx *c, Json *j)
{
        return sys_result(unshare(CLONE_NEWNET));
}

static int try_clone_newns(Ctx *c, Json *j)
{
        long pid = syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, NULL, NULL, NULL, NULL);

        if (pid < 0)
                return -errno;
        if (pid == 0)
                _exit(0);
        (void)waitpid((pid_t)pid, NULL, 0);
        return 0;
}

static int try_setns(Ctx *c, Json *j)
{
        const char *path = next_arg(c);
        int fd, r;

        if (!path)
                path = "/proc/self/ns/net";
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = sys_result(setns(fd, 0));
        close(fd);
        return r;
}

static int try_ptrace(Ctx *c, Json *j)
{
        pid_t pid = fork();
        int r;

        if (pid < 0)
                return -errno;
        if (pid == 0)
                for (;;)
                        pause();
        r = sys_result(ptrace(PTRACE_ATTACH, pid, NULL, NULL));
        if (r == 0) {
                (void)waitpid(pid, NULL, __WALL);
                (void)ptrace(PTRACE_DETACH, pid, NULL, NULL);
        }
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, __WALL);
        return r;
}

static int try_bpf(Ctx *c, Json *j)
{
        union bpf_attr attr;
        long fd;

        memset(&attr, 0, sizeof(attr));
        attr.map_type = BPF_MAP_TYPE_ARRAY;
        attr.key_size = 4;
        attr.value_size = 4;
        attr.max_entries = 1;
        fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr));
        return sys_result(fd);
}

static int try_perf(Ctx *c, Json *j)
{
        struct perf_event_attr pa;

        memset(&pa, 0, sizeof(pa));
        pa.type = PERF_TYPE_SOFTWARE;
        pa.size = sizeof(pa);
        pa.config = PERF_COUNT_SW_TASK_CLOCK;
        pa.disabled = 1;
        pa.exclude_kernel = 1;
        pa.exclude_hv = 1;
        return sys_result(syscall(SYS_perf_event_open, &pa, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
}

static int try_keyctl(Ctx *c, Json *j)
{
        return sys_result(
            syscall(SYS_add_key, "user", "fnbox-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING));
}

static int try_userfaultfd(Ctx *c, Json *j)
{
        return sys_result(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
}

static int try_io_uring(Ctx *c, Json *j)
{
        struct io_uring_params p;

        memset(&p, 0, sizeof(p));
        return sys_result(syscall(SYS_io_uring_setup, 1, &p));
}

static int try_tiocsti(Ctx *c, Json *j)
{
        char ch = 'x';

        return sys_result(ioctl(0, TIOCSTI, &ch));
}

static int try_chroot(Ctx *c, Json *j)
{
        return sys_result(chroot("/tmp"));
}

static int try_x32(Ctx *c, Json *j)
{
        /* getpid through the x32 ABI (syscall number | __X32_SYSCALL_BIT). */
        long r = syscall(0x40000000L | 39);

        if (r < 0)
                return -errno;
        kv_int(j, "pid", r);
        return 0;
}

static int try_i386(Ctx *c, Json *j)
{
#if defined(__x86_64__)
        /* getpid (20 in the i386 table) through int $0x80, the 32-bit compat entry. */
        long r = 20;

        __asm__ volatile("int $0x80" : "+a"(r) : : "r8", "r9", "r10", "r11", "memory");
        /* The compat entry returns a 32-bit value: a negative int is -errno. */
        if ((int)r < 0)
                return (int)r;
        kv_int(j, "pid", (int)r);
        return 0;
#else
        return -ENOSYS;
#endif
}

static int connect_timeout(const struct addrinfo *ai, int timeout_ms)
{
        struct pollfd p;
        socklen_t len = sizeof(int);
        int fd, err = 0;

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
                return -errno;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                goto done;
        if (errno != EINPROGRESS) {
                err = errno;
                goto done;
        }
        p = (struct pollfd){.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, timeout_ms) == 0)
                err = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
done:
        close(fd);
        return -err;
}

static int try_connect(Ctx *c, Json *j)
{
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        struct addrinfo *ai = NULL;
        const char *host, *port;
        int r;

        if (arg_str(c, "HOST", &host) < 0 || arg_str(c, "PORT", &port) < 0)
                return -EINVAL;
        r = getaddrinfo(host, port, &hints, &ai);
        if (r != 0) {
                kv_str(j, "gai_error", gai_strerror(r));
                return r == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
        }
        r = connect_timeout(ai, 1000);
        freeaddrinfo(ai);
        return r;
}

static int try_kill(Ctx *c, Json *j)
{
        long long pid = 0, sig = 0;

        if (arg_int(c, "PID", -2147483647LL, 2147483647LL, &pid) < 0 ||
            arg_int(c, "SIG", 0, 64, &sig) < 0)
                return -EINVAL;
        return sys_result(kill((pid_t)pid, (int)sig));
}

static int try_setuid0(Ctx *c, Json *j)
{
        return sys_result(setuid(0));
}

static int try_mknod(Ctx *c, Json *j)
{
        const char *path;

        if (arg_str(c, "PATH", &path) < 0)
                return -EINVAL;
        return sys_result(mknod(path, S_IFCHR | 0600, makedev(1, 3)));
}

static int try_chmod_suid(Ctx *c, Json *j)
{
        const char *path;
        struct stat st;

        if (arg_str(c, "PATH", &path) < 0)
                return -EINVAL;
        if (chmod(path, S_ISUID | 0755) < 0)
                return -errno;
        if (stat(path, &st) == 0)
                kv_int(j, "mode", st.st_mode & 07777);
        return 0;
}

static const struct {
        const char *name;
        try_fn *fn;
} try_ops[] = {
    {"read", try_read},
    {"write", try_write},
    {"ls", try_ls},
    {"mount", try_mount},
    {"unshare-user", try_unshare_user},
    {"unshare-net", try_unshare_net},
    {"clone-newns", try_clone_newns},
    {"setns", try_setns},
    {"ptrace", try_ptrace},
    {"bpf", try_bpf},
    {"perf", try_perf},
    {"keyctl", try_keyctl},
    {"userfaultfd", try_userfaultfd},
    {"io_uring", try_io_uring},
    {"tiocsti", try_tiocsti},
    {"chroot", try_chroot},
    {"x32", try_x32},
    {"i386", try_i386},
    {"connect", try_connect},
    {"kill", try_kill},
    {"setuid0", try_setuid0},
    {"mknod", try_mknod},
    {"chmod-suid", try_chmod_suid},
};

/* What the child sends back: its result, then the fields it added. */
typedef struct TryReport {
        int err;
        unsigned len;
} TryReport;

static bool write_all(int fd, const void *buf, size_t n)
{
        const char *p = buf;

        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return false;
                p += k;
                n -= (size_t)k;
        }
        return true;
}

static size_t read_all(int fd, void *buf, size_t n)
{
        size_t got = 0;

        while (got < n) {
                ssize_t k = read(fd, (char *)buf + got, n - got);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                got += (size_t)k;
        }
        return got;
}

static void try_child(Ctx *c, try_fn *fn, int out)
{
        Json j = {.oom = false};
        Ctx child = *c;
        TryReport rep;

        j_raw(&j, "{", 1);
        child.child_j = &j;
        rep.err = fn(&child, &j);
        rep.len = j.oom ? 0 : (unsigned)(j.len - 1);
        (void)write_all(out, &rep, sizeof(rep));
        if (rep.len > 0)
                (void)write_all(out, j.buf + 1, rep.len);
        _exit(0);
}

static void try_report(Ctx *c, const char *op, const TryReport *rep, const char *extra, int status)
{
        Json *j = &c->j;

        kv_str(j, "op", op);
        if (WIFSIGNALED(status)) {
                /* e.g. SIGSYS from a seccomp filter that kills */
                kv_bool(j, "ok", false);
                kv_int(j, "errno", 0);
                kv_str(j, "error", strsignal(WTERMSIG(status)));
                kv_int(j, "signal", WTERMSIG(status));
                return;
        }
        kv_bool(j, "ok", rep->err == 0);
        kv_int(j, "errno", -rep->err);
        kv_str(j, "error", rep->err ? strerror(-rep->err) : NULL);
        if (extra && *extra) {
                j_raw(j, ",", 1);
                j_raw(j, extra, strlen(extra));
        }
}

static int op_try(Ctx *c)
{
        TryReport rep = {.err = -EIO, .len = 0};
        char *extra = NULL;
        const char *op;
        try_fn *fn = NULL;
        int fds[2], status = 0;
        pid_t pid;

        if (arg_str(c, "OP", &op) < 0)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(try_ops) / sizeof(try_ops[0]); i++)
                if (strcmp(op, try_ops[i].name) == 0)
                        fn = try_ops[i].fn;
        if (!fn)
                return bad_request(c, "unknown try op '%s'", op);

        (void)fflush(stdout);
        (void)fflush(stderr);
        if (pipe2(fds, O_CLOEXEC) < 0)
                return bad_request(c, "pipe: %s", strerror(errno));
        pid = fork();
        if (pid < 0) {
                close(fds[0]);
                close(fds[1]);
                return bad_request(c, "fork: %s", strerror(errno));
        }
        if (pid == 0) {
                close(fds[0]);
                try_child(c, fn, fds[1]);
        }
        close(fds[1]);
        if (read_all(fds[0], &rep, sizeof(rep)) == sizeof(rep) && rep.len > 0 &&
            rep.len < 16u * 1024 * 1024 && (extra = calloc(1, rep.len + 1)))
                rep.len = (unsigned)read_all(fds[0], extra, rep.len);
        close(fds[0]);
        (void)waitpid(pid, &status, 0);
        try_report(c, op, &rep, extra, status);
        free(extra);
        return 0;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static const struct {
        const char *name;
        int (*fn)(Ctx *c);
} ops[] = {
    {"echo", op_echo},
    {"status", op_status},
    {"env", op_env},
    {"sleep", op_sleep},
    {"spin", op_spin},
    {"memhog", op_memhog},
    {"forkbomb", op_forkbomb},
    {"crash", op_crash},
    {"abort", op_abort},
    {"exit", op_exit},
    {"fail", op_fail},
    {"print", op_print},
    {"spam", op_spam},
    {"try", op_try},
    {"net", op_net},
    {"mounts", op_mounts},
    {"limits", op_limits},
    {"fds", op_fds},
    {"ps", op_ps},
    {"spawn", op_spawn},
};

static int run_op(Ctx *c)
{
        const char *op = next_arg(c);

        /* "echo TEXT" keeps TEXT verbatim: only one separator is eaten after the op. */
        if (!op)
                return bad_request(c, "empty request: expected 'OP [ARGS...]'");
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
                if (strcmp(op, ops[i].name) == 0)
                        return ops[i].fn(c);
        return bad_request(c, "unknown op '%.100s'", op);
}

int handler(const fnbox_request *req, fnbox_response *res)
{
        Ctx c = {.req = req, .res = res};
        int r;

        invocations++;
        c.cmd = malloc(req->payload_len + 1);
        if (!c.cmd) {
                (void)fnbox_fail(res, "MemoryError", "cannot copy the payload");
                return 1;
        }
        memcpy(c.cmd, req->payload, req->payload_len);
        c.cmd[req->payload_len] = '\0';
        c.len = req->payload_len;
        c.pos = c.cmd;

        j_raw(&c.j, "{", 1);
        r = run_op(&c);
        j_close(&c.j, '}');
        if (!c.failed && r >= 0) {
                if (c.j.oom)
                        r = fnbox_fail(res, "MemoryError", "response too large for memory");
                else
                        r = fnbox_respond(res, c.j.buf, c.j.len);
        }
        free(c.j.buf);
        free(c.cmd);
        return c.failed ? 1 : r;
}

int hello(const fnbox_request *req, fnbox_response *res)
{
        static const char msg[] = "hello from probe";

        return fnbox_respond(res, msg, sizeof(msg) - 1);
}

int fnbox_init(void)
{
        const char *s;

        init_calls++;
        printf("probe: init\n");
        s = getenv("FNBOX_TEST_INIT_SLEEP_MS");
        if (s)
                sleep_ms(atoll(s));
        s = getenv("FNBOX_TEST_INIT_FAIL");
        return s ? atoi(s) : 0;
}
