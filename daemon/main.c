/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "api.h"
#include "config.h"
#include "invoke.h"
#include "log.h"
#include "loop.h"
#include "registry.h"
#include "sandbox.h"
#include "util.h"

static const char *arg_listen = "127.0.0.1:8080";
static const char *arg_state_dir = "/var/lib/fnbox";
static const char *arg_agent = NULL;
static uint64_t arg_pids_max = 64;
static uint64_t arg_tmp_mb = 64;
static const char *arg_cgroup_parent = "fnbox";
static uint64_t arg_prewarm = 2;
static uint64_t arg_memory_budget_mb = 0; /* 0: half of the host's memory */
static uint64_t arg_max_busy = 256;
static uint64_t arg_queue_max = 1024;
static uint64_t arg_queue_timeout_ms = 1000;
static uint64_t arg_freeze_after_ms = 1000;
static uint64_t arg_netns_pool = 4;
static const char *arg_region = "us-east-1";
static const char *arg_runtimes_dir = NULL;

static void help(void)
{
        printf("Usage: fnboxd [OPTIONS]\n\n"
               "Runs the fnbox function platform daemon.\n\n"
               "  --listen HOST:PORT   HTTP address (default 127.0.0.1:8080; [::1]:PORT for IPv6)\n"
               "  --state-dir DIR      functions, code and the admin token (default "
               "/var/lib/fnbox)\n"
               "  --agent PATH         the fnbox-agent binary (default %s/fnbox-agent)\n"
               "  --pids-max N         processes per sandbox (default 64)\n"
               "  --tmp-size-mb N      size of each sandbox's /tmp (default 64)\n"
               "  --cgroup-parent NAME cgroup below which sandboxes are made (default fnbox)\n"
               "  --prewarm N          prewarmed sandboxes kept ready (default 2)\n"
               "  --memory-budget-mb N memory of warm and busy instances before the least\n"
               "                       recently used idle ones are evicted (default: half of\n"
               "                       the host's memory)\n"
               "  --max-concurrency N  invocations running at once, host-wide (default 256)\n"
               "  --queue-max N        requests waiting for capacity (default 1024)\n"
               "  --queue-timeout-ms N longest wait before 429 (default 1000)\n"
               "  --freeze-after-ms N  idle time before a warm instance is frozen (default "
               "1000)\n"
               "  --netns-pool N       network namespaces made ahead (default 4)\n"
               "  --region NAME        AWS_REGION inside sandboxes (default us-east-1)\n"
               "  --runtimes-dir DIR   Lambda-style runtime shims, bound at /var/runtime\n"
               "                       (default: the installed ones)\n"
               "  --config FILE        options, one \"name = value\" per line (default\n"
               "                       /etc/fnbox/fnboxd.conf if it exists; also $FNBOX_CONFIG);\n"
               "                       the command line wins\n"
               "  -v, --verbose        debug logging\n"
               "  -h, --help           this text\n"
               "      --version        the version\n\n"
               "On first start the admin token is written to DIR/token (mode 0600).\n",
               FNBOX_LIBEXECDIR);
}

static int parse_bounded(const char *s, const char *opt, uint64_t min, uint64_t max, uint64_t *ret)
{
        uint64_t v;

        if (parse_uint64(s, &v) < 0 || v < min || v > max)
                return log_error_errno(
                    -EINVAL, "%s wants a whole number from %" PRIu64 " to %" PRIu64, opt, min, max);
        *ret = v;
        return 0;
}

/* Half of MemTotal, the default memory budget. */
static uint64_t default_memory_budget(void)
{
        _cleanup_free_ char *text = NULL;
        unsigned long long kb = 0;
        char *p;

        if (read_file_at(AT_FDCWD, "/proc/meminfo", 65536, &text, NULL) < 0)
                return 4096ULL * 1024 * 1024;
        p = strstr(text, "MemTotal:");
        if (!p || sscanf(p, "MemTotal: %llu kB", &kb) != 1 || kb == 0)
                return 4096ULL * 1024 * 1024;
        return (uint64_t)kb * 1024 / 2;
}

static int parse_args(int argc, char **argv)
{
        enum {
                ARG_LISTEN = 0x100,
                ARG_STATE,
                ARG_AGENT,
                ARG_PIDS,
                ARG_TMP,
                ARG_CGROUP,
                ARG_VERSION,
                ARG_PREWARM,
                ARG_BUDGET,
                ARG_MAX_BUSY,
                ARG_QUEUE_MAX,
                ARG_QUEUE_TIMEOUT,
                ARG_FREEZE,
                ARG_NETNS,
                ARG_REGION,
                ARG_RUNTIMES,
                ARG_CONFIG
        };
        static const struct option opts[] = {
            {"listen", required_argument, NULL, ARG_LISTEN},
            {"state-dir", required_argument, NULL, ARG_STATE},
            {"agent", required_argument, NULL, ARG_AGENT},
            {"pids-max", required_argument, NULL, ARG_PIDS},
            {"tmp-size-mb", required_argument, NULL, ARG_TMP},
            {"cgroup-parent", required_argument, NULL, ARG_CGROUP},
            {"prewarm", required_argument, NULL, ARG_PREWARM},
            {"memory-budget-mb", required_argument, NULL, ARG_BUDGET},
            {"max-concurrency", required_argument, NULL, ARG_MAX_BUSY},
            {"queue-max", required_argument, NULL, ARG_QUEUE_MAX},
            {"queue-timeout-ms", required_argument, NULL, ARG_QUEUE_TIMEOUT},
            {"freeze-after-ms", required_argument, NULL, ARG_FREEZE},
            {"netns-pool", required_argument, NULL, ARG_NETNS},
            {"region", required_argument, NULL, ARG_REGION},
            {"runtimes-dir", required_argument, NULL, ARG_RUNTIMES},
            {"config", required_argument, NULL, ARG_CONFIG},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, ARG_VERSION},
            {},
        };
        int c, r = 0;

        while ((c = getopt_long(argc, argv, "vh", opts, NULL)) >= 0) {
                if (r < 0)
                        break;
                switch (c) {
                case ARG_LISTEN:
                        arg_listen = optarg;
                        break;
                case ARG_STATE:
                        arg_state_dir = optarg;
                        break;
                case ARG_AGENT:
                        arg_agent = optarg;
                        break;
                case ARG_PIDS:
                        if (parse_uint64(optarg, &arg_pids_max) < 0 || arg_pids_max < 8 ||
                            arg_pids_max > 4096)
                                return log_error_errno(-EINVAL, "--pids-max wants 8..4096");
                        break;
                case ARG_TMP:
                        if (parse_uint64(optarg, &arg_tmp_mb) < 0 || arg_tmp_mb < 1 ||
                            arg_tmp_mb > 10240)
                                return log_error_errno(-EINVAL, "--tmp-size-mb wants 1..10240");
                        break;
                case ARG_CGROUP:
                        if (!name_is_valid(optarg))
                                return log_error_errno(-EINVAL, "--cgroup-parent wants "
                                                                "[A-Za-z0-9_-]{1,64}");
                        arg_cgroup_parent = optarg;
                        break;
                case ARG_PREWARM:
                        r = parse_bounded(optarg, "--prewarm", 0, 1024, &arg_prewarm);
                        break;
                case ARG_BUDGET:
                        r = parse_bounded(optarg, "--memory-budget-mb", 64, UINT32_MAX,
                                          &arg_memory_budget_mb);
                        break;
                case ARG_MAX_BUSY:
                        r = parse_bounded(optarg, "--max-concurrency", 1, 100000, &arg_max_busy);
                        break;
                case ARG_QUEUE_MAX:
                        r = parse_bounded(optarg, "--queue-max", 0, 1000000, &arg_queue_max);
                        break;
                case ARG_QUEUE_TIMEOUT:
                        r = parse_bounded(optarg, "--queue-timeout-ms", 0, 600000,
                                          &arg_queue_timeout_ms);
                        break;
                case ARG_FREEZE:
                        r = parse_bounded(optarg, "--freeze-after-ms", 0, 86400000,
                                          &arg_freeze_after_ms);
                        break;
                case ARG_NETNS:
                        r = parse_bounded(optarg, "--netns-pool", 0, 1024, &arg_netns_pool);
                        break;
                case ARG_REGION:
                        if (!name_is_valid(optarg))
                                return log_error_errno(-EINVAL, "--region wants a name like "
                                                                "us-east-1");
                        arg_region = optarg;
                        break;
                case ARG_RUNTIMES:
                        arg_runtimes_dir = optarg;
                        break;
                case ARG_CONFIG:
                        break; /* read before the command line: parse_config_file() */
                case 'v':
                        log_set_max_level(LOG_LEVEL_DEBUG);
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("fnboxd %s\n", FNBOX_VERSION);
                        return 0;
                default:
                        return -EINVAL;
                }
        }
        if (r < 0)
                return r;
        if (optind < argc)
                return log_error_errno(-EINVAL, "unexpected argument '%s'", argv[optind]);
        return 1;
}

/* The agent next to fnboxd in a build tree (so a build never runs an older installed agent),
 * else the installed one. */
static int find_agent(char *buf, size_t size)
{
        char exe[PATH_MAX];
        ssize_t n;
        char *slash;

        if (arg_agent) {
                (void)snprintf(buf, size, "%s", arg_agent);
                return access(buf, X_OK) < 0 ? negative_errno() : 0;
        }
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n >= 0) {
                exe[n] = '\0';
                slash = strrchr(exe, '/');
                if (slash)
                        *slash = '\0';
                if ((size_t)snprintf(buf, size, "%.*s/../agent/fnbox-agent", PATH_MAX - 64, exe) <
                        size &&
                    access(buf, X_OK) >= 0)
                        return 0;
        }
        (void)snprintf(buf, size, "%s/fnbox-agent", FNBOX_LIBEXECDIR);
        return access(buf, X_OK) < 0 ? -ENOENT : 0;
}

/* The Lambda-style runtime shims: --runtimes-dir, else the source tree's rootfs/runtimes when
 * fnboxd runs from a build tree inside it, else the installed ones. "" when there are none
 * (native functions still work). */
static void find_runtimes(char *buf, size_t size)
{
        char exe[PATH_MAX], path[PATH_MAX];
        ssize_t n;
        char *slash;

        buf[0] = '\0';
        if (arg_runtimes_dir) {
                (void)snprintf(buf, size, "%s", arg_runtimes_dir);
                return;
        }
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n >= 0) {
                exe[n] = '\0';
                slash = strrchr(exe, '/');
                if (slash)
                        *slash = '\0';
                /* BUILD/daemon/fnboxd, with BUILD inside the source tree. */
                if ((size_t)snprintf(path, sizeof(path), "%.*s/../../rootfs/runtimes",
                                     PATH_MAX - 64, exe) < sizeof(path) &&
                    access(path, R_OK | X_OK) >= 0 && realpath(path, buf))
                        return;
                buf[0] = '\0';
        }
        (void)snprintf(buf, size, "%s/runtimes", FNBOX_DATADIR);
        if (access(buf, R_OK | X_OK) < 0)
                buf[0] = '\0';
}

/* Tells a supervising systemd we are ready; a no-op without $NOTIFY_SOCKET. */
static void notify_ready(void)
{
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -EBADF;
        size_t l;

        if (!path || (path[0] != '/' && path[0] != '@'))
                return;
        l = strlen(path);
        if (l >= sizeof(sa.sun_path))
                return;
        memcpy(sa.sun_path, path, l);
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = '\0';
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return;
        (void)sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&sa,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l));
}

/* Hands every stored function to the invoker (min_instances start warming from here). */
static int load_functions(Registry *reg, Invoker *inv)
{
        Function **list = NULL;
        size_t n = 0;
        int r = registry_list(reg, &list, &n);

        if (r < 0)
                return r;
        for (size_t k = 0; k < n && r >= 0; k++)
                r = invoker_set_function(inv, list[k]);
        function_list_free(list, n);
        return r < 0 ? r : (int)n;
}

/* Code of retired versions goes once no sandbox has it mounted. */
#define CODE_COLLECT_USEC (60 * USEC_PER_SEC)

static int on_collect_code(LoopSource *s, usec_t now, void *userdata)
{
        int r = registry_collect_code(userdata);

        if (r < 0)
                log_warning_errno(r, "Cannot collect unused code, ignoring: %m");
        return loop_source_set_time(s, now + CODE_COLLECT_USEC);
}

static int on_signal(LoopSource *s, int fd, uint32_t revents, void *userdata)
{
        struct signalfd_siginfo si;

        if (read(fd, &si, sizeof(si)) != sizeof(si))
                return 0;
        log_info("received signal %u, stopping", si.ssi_signo);
        loop_exit(userdata, 0);
        return 0;
}

static int run(void)
{
        _cleanup_(registry_freep) Registry *reg = NULL;
        _cleanup_(sandbox_host_freep) SandboxHost *host = NULL;
        _cleanup_(loop_freep) Loop *loop = NULL;
        _cleanup_(invoker_freep) Invoker *inv = NULL;
        _cleanup_(api_freep) Api *api = NULL;
        _cleanup_(loop_source_freep) LoopSource *sig_src = NULL;
        _cleanup_(loop_source_freep) LoopSource *collect_src = NULL;
        _cleanup_close_ int sig_fd = -EBADF;
        char agent[PATH_MAX], token_path[PATH_MAX], run_dir[PATH_MAX], runtime_dir[PATH_MAX];
        FnError err = {0};
        sigset_t mask;
        int r;

        if (geteuid() != 0)
                return log_error_errno(-EPERM, "fnboxd needs root to make sandboxes "
                                               "(namespaces, cgroups, mounts)");
        r = find_agent(agent, sizeof(agent));
        if (r < 0)
                return log_error_errno(r, "cannot find fnbox-agent (tried %s; use --agent): %m",
                                       agent);
        find_runtimes(runtime_dir, sizeof(runtime_dir));
        r = registry_open(arg_state_dir, &reg, &err);
        if (r < 0)
                return log_error_errno(r, "cannot open state dir %s: %s", arg_state_dir, err.msg);
        (void)snprintf(token_path, sizeof(token_path), "%s/token", arg_state_dir);
        r = registry_ensure_admin_token(reg, token_path, &err);
        if (r < 0)
                return log_error_errno(r, "cannot set up the admin token: %s", err.msg);
        (void)snprintf(run_dir, sizeof(run_dir), "%s/run", arg_state_dir);
        if (mkdir(run_dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "cannot create %s: %m", run_dir);

        SandboxHostConfig hc = {
            .agent_path = agent,
            .run_dir = run_dir,
            .cgroup_root = "/sys/fs/cgroup",
            .cgroup_parent = arg_cgroup_parent,
            .runtime_dir = runtime_dir[0] ? runtime_dir : NULL,
            .uid_base = 200000,
            .uid_count = 10000,
        };
        r = sandbox_host_new(&hc, &host, &err);
        if (r < 0)
                return log_error_errno(r, "cannot set up sandboxes: %s", err.msg);
        r = sandbox_host_cleanup_stale(host);
        if (r < 0)
                log_warning_errno(r, "cannot remove sandboxes left by an earlier run, "
                                     "ignoring: %m");

        r = loop_new(&loop);
        if (r < 0)
                return log_error_errno(r, "cannot create the event loop: %m");
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        (void)sigprocmask(SIG_BLOCK, &mask, NULL);
        sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sig_fd < 0)
                return log_error_errno(negative_errno(), "cannot create a signalfd: %m");
        r = loop_add_io(loop, sig_fd, EPOLLIN, on_signal, loop, &sig_src);
        if (r < 0)
                return log_error_errno(r, "cannot watch signals: %m");

        InvokerConfig ic = {
            .pids_max = arg_pids_max,
            .tmp_bytes = arg_tmp_mb * 1024 * 1024,
            .nofile = 1024,
            .records_max = 256,
            .region = arg_region,
            .netns_target = (unsigned)arg_netns_pool,
            .pool =
                {
                    .prewarm_target = (unsigned)arg_prewarm,
                    .memory_budget = arg_memory_budget_mb > 0 ? arg_memory_budget_mb * 1024 * 1024
                                                              : default_memory_budget(),
                    .max_busy = (unsigned)arg_max_busy,
                    .queue_max = (unsigned)arg_queue_max,
                    .queue_timeout = arg_queue_timeout_ms * USEC_PER_MSEC,
                    .freeze_after = arg_freeze_after_ms * USEC_PER_MSEC,
                },
        };
        r = invoker_new(loop, host, &ic, &inv);
        if (r < 0)
                return log_error_errno(r, "cannot create the invoker: %m");
        r = load_functions(reg, inv);
        if (r < 0)
                return log_error_errno(r, "cannot load the functions: %m");
        registry_set_code_in_use(reg, invoker_code_in_use, inv);
        r = loop_add_timer(loop, now_usec() + CODE_COLLECT_USEC, on_collect_code, reg,
                           &collect_src);
        if (r < 0)
                return log_error_errno(r, "cannot arm a timer: %m");
        ApiConfig ac = {.listen = arg_listen};
        r = api_new(loop, reg, inv, &ac, &api, &err);
        if (r < 0)
                return log_error_errno(r, "%s", err.msg);

        log_info("fnboxd %s ready: http://%s (port %u), state %s, cgroup %s, token in %s",
                 FNBOX_VERSION, arg_listen, api_port(api), arg_state_dir,
                 sandbox_host_cgroup_version(host), token_path);
        notify_ready();
        r = loop_run(loop);
        /* Stop in order: the API answers waiting clients, then sandboxes go. */
        sig_src = loop_source_free(sig_src);
        collect_src = loop_source_free(collect_src);
        api = api_free(api);
        registry_set_code_in_use(reg, NULL, NULL);
        inv = invoker_free(inv);
        return r;
}

#define CONFIG_FILE_DEFAULT "/etc/fnbox/fnboxd.conf"
#define CONFIG_FILE_MAX (64u * 1024u)
#define CONFIG_LINES_MAX 256u

/* --config FILE (or $FNBOX_CONFIG, else /etc/fnbox/fnboxd.conf if it exists): one option per
 * line, "name = value" or "name value" with the long option's name ("prewarm = 4"); '#' starts
 * a comment. The lines go through the same parser as the command line. Returns 1 to go on. */
static int parse_config_file(int argc, char **argv)
{
        static char *config_argv[CONFIG_LINES_MAX + 2];
        _cleanup_free_ char *text = NULL;
        const char *path = getenv("FNBOX_CONFIG");
        bool explicit_path = path != NULL;
        int n = 0, r;

        for (int k = 1; k < argc; k++) {
                if (strcmp(argv[k], "--config") == 0 && k + 1 < argc)
                        path = argv[k + 1], explicit_path = true;
                else if (strncmp(argv[k], "--config=", 9) == 0)
                        path = argv[k] + 9, explicit_path = true;
        }
        if (!path)
                path = CONFIG_FILE_DEFAULT;
        r = read_file_at(AT_FDCWD, path, CONFIG_FILE_MAX, &text, NULL);
        if (r == -ENOENT && !explicit_path)
                return 1;
        if (r < 0)
                return log_error_errno(r, "cannot read the config file %s: %m", path);
        config_argv[n++] = argv[0];
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                char *p = line, *name, *value, *end;
                size_t l;

                p[strcspn(p, "#")] = '\0';
                p += strspn(p, " \t");
                end = p + strlen(p);
                while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
                        *--end = '\0';
                if (!*p)
                        continue;
                name = p;
                l = strcspn(name, " \t=");
                value = name + l;
                value += strspn(value, " \t");
                if (*value == '=')
                        value++;
                value += strspn(value, " \t");
                name[l] = '\0';
                if (n >= (int)CONFIG_LINES_MAX)
                        return log_error_errno(-E2BIG, "%s: more than %u options", path,
                                               CONFIG_LINES_MAX);
                if (strcmp(name, "config") == 0 || strcmp(name, "help") == 0 ||
                    strcmp(name, "version") == 0)
                        return log_error_errno(-EINVAL, "%s: '%s' is not allowed in a config file",
                                               path, name);
                if (asprintf(&config_argv[n], "--%s%s%s", name, *value ? "=" : "", value) < 0)
                        return log_error_errno(-ENOMEM, "out of memory");
                n++;
        }
        config_argv[n] = NULL;
        r = parse_args(n, config_argv);
        if (r < 0)
                return log_error_errno(r, "in the config file %s", path);
        return r;
}

int main(int argc, char **argv)
{
        int r;

        log_set_ident("fnboxd");
        (void)signal(SIGPIPE, SIG_IGN);
        /* The config file first, so that the command line wins. */
        r = parse_config_file(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        optind = 0; /* glibc: a full restart of getopt for the real command line */
        r = parse_args(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        r = run();
        return r < 0 ? 1 : 0;
}
