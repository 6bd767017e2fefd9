/* SPDX-License-Identifier: Apache-2.0 */
/* fnbox: the command-line client of fnboxd's native REST API (/v1). docs/cli.md describes it;
 * `fnbox help` prints the same. Exit codes are an interface: see the CLI_EXIT_* enum. */
#include <assert.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli-internal.h"
#include "config.h"
#include "util.h"

#define DEFAULT_URL "http://127.0.0.1:8080"
#define DEFAULT_STATE_DIR "/var/lib/fnbox"
#define TOKEN_MAX ((size_t)4096)
#define INVOKE_TIMEOUT_SEC (15L * 60)
#define API_TIMEOUT_SEC 60L
/* The daemon refuses larger values; this only keeps the number an int for JSON. */
#define LIMIT_ARG_MAX ((uint64_t)INT32_MAX)
/* The daemon's ranges for the warm-pool fields, checked here so a typo is a usage error. */
#define KEEP_ALIVE_ARG_MAX ((uint64_t)86400000)
#define CONCURRENCY_ARG_MAX ((uint64_t)1000)
/* `logs`: the daemon's default and cap of ?tail=, and how often -f asks for more. Fixed, and
 * documented in docs/cli.md: one small GET every half second costs the daemon next to nothing. */
#define LOGS_TAIL_DEFAULT ((uint64_t)100)
#define LOGS_TAIL_MAX ((uint64_t)10000)
#define LOGS_POLL_MSEC 500U

typedef enum OutputFormat {
        OUTPUT_TABLE,
        OUTPUT_JSON,
        _OUTPUT_MAX,
        _OUTPUT_INVALID = -EINVAL,
} OutputFormat;

typedef enum Verb {
        VERB_DEPLOY,
        VERB_INVOKE,
        VERB_LOGS,
        VERB_LIST,
        VERB_GET,
        VERB_DELETE,
        VERB_VERSION,
        VERB_HELP,
        _VERB_MAX,
        _VERB_INVALID = -EINVAL,
} Verb;

typedef struct VerbInfo {
        const char *name;
        unsigned min_args, max_args;
        const char *synopsis; /* short, for the command list */
        const char *summary;
        const char *usage; /* what follows "fnbox [OPTIONS] " */
        const char *help;  /* description and the verb's own options */
} VerbInfo;

static const VerbInfo verbs[_VERB_MAX] = {
    [VERB_DEPLOY] =
        {
            "deploy",
            2,
            2,
            "deploy NAME PATH",
            "create or update a function from a directory or bundle",
            "deploy NAME PATH --runtime RUNTIME --handler HANDLER\n"
            "                              [--memory MB] [--timeout MS] [--env K=V]...\n"
            "                              [--keep-alive MS] [--max-concurrency N]\n"
            "                              [--min-instances N]",
            "Create function NAME, or update it, from PATH and print it.\n"
            "PATH is a directory, packed into a zip in memory (regular files and directories\n"
            "with relative paths, executable bits kept; symlinks only if their target stays\n"
            "inside the directory, others and special files are skipped with a warning), or\n"
            "an existing .zip, .tar.gz or .tgz file, sent as is. The request carries the\n"
            "bundle in base64 and may be at most 64 MiB: keep bundles under 48 MiB.\n"
            "Every deploy sets the whole configuration: an option left out takes the\n"
            "daemon's default, not the function's previous value.\n"
            "\n"
            "Options:\n"
            "  --runtime RUNTIME  native (a shared object), or another runtime of the daemon\n"
            "  --handler HANDLER  for native: the .so inside the bundle, e.g. echo.so\n"
            "  --memory MB        memory limit in MiB (daemon default 128)\n"
            "  --timeout MS       time limit of one invocation in ms (daemon default 3000)\n"
            "  -e, --env K=V      environment variable (repeatable); K matches\n"
            "                     [A-Za-z_][A-Za-z0-9_]*, V may be empty or contain '='\n"
            "  --keep-alive MS    keep an idle warm instance this long, 0 to 86400000 ms\n"
            "                     (daemon default 600000; 0: none is kept)\n"
            "  --max-concurrency N\n"
            "                     at most N invocations at once, 0 to 1000; more wait in\n"
            "                     the daemon's queue, then get 429 (default 0: no cap of\n"
            "                     the function's own)\n"
            "  --min-instances N  instances kept warm at all times, 0 to 1000 (default 0);\n"
            "                     at most --max-concurrency when that is not 0\n",
        },
    [VERB_INVOKE] =
        {
            "invoke",
            1,
            1,
            "invoke NAME",
            "invoke a function, print its response",
            "invoke NAME [--data STRING | --data @FILE | --data -] [-i] [--log]",
            "Invoke function NAME and write its response to stdout unchanged (a newline is\n"
            "added only when stdout is a terminal and the response does not end in one).\n"
            "The event is --data, or stdin when --data is absent and stdin is not a\n"
            "terminal; at most 6 MiB. Without either the event is empty.\n"
            "\n"
            "Options:\n"
            "  -d, --data STRING  the event is STRING\n"
            "  -d, --data @FILE   the event is the content of FILE ('@-' is stdin)\n"
            "  -d, --data -       the event is read from stdin\n"
            "  -i, --show-headers print X-Fnbox-Invocation-Id, X-Fnbox-Start and\n"
            "                     Server-Timing to stderr\n"
            "  --log, --log-tail  ask for the end of the invocation's log (its last 4 KiB,\n"
            "                     START to REPORT) and print it to stderr after the response\n",
        },
    [VERB_LOGS] =
        {
            "logs",
            1,
            1,
            "logs NAME",
            "print a function's invocation logs",
            "logs NAME [-f|--follow] [-n|--tail N]",
            "Print the latest lines of function NAME's invocation logs to stdout as the\n"
            "daemon keeps them: each invocation between Lambda's 'START RequestId: ...' and\n"
            "'END RequestId: ...' lines, then its 'REPORT RequestId: ...' line. The daemon\n"
            "keeps the latest 256 KiB per function, in memory. With -o json: an object\n"
            "{\"function\", \"cursor\", \"log\"}; with -f, one such object per line for\n"
            "each batch of new text.\n"
            "\n"
            "Options:\n"
            "  -n, --tail N       the latest N lines, 0 to 10000 (default 100)\n"
            "  -f, --follow       then print new invocations' logs as they come (asking\n"
            "                     every 500 ms), until SIGINT or SIGTERM (exit 0) or the\n"
            "                     function is deleted (exit 3)\n",
        },
    [VERB_LIST] =
        {
            "list",
            0,
            0,
            "list",
            "list functions",
            "list",
            "List functions: a table, their JSON with -o json, or only names with -q.\n",
        },
    [VERB_GET] =
        {
            "get",
            1,
            1,
            "get NAME",
            "show a function",
            "get NAME",
            "Show function NAME: a table, or the daemon's JSON with -o json.\n",
        },
    [VERB_DELETE] =
        {
            "delete",
            1,
            1,
            "delete NAME",
            "delete a function",
            "delete NAME",
            "Delete function NAME.\n",
        },
    [VERB_VERSION] =
        {
            "version",
            0,
            0,
            "version",
            "print the client version",
            "version",
            "Print the version of this client.\n",
        },
    [VERB_HELP] =
        {
            "help",
            0,
            1,
            "help [COMMAND]",
            "show help",
            "help [COMMAND]",
            "Show help, for all commands or for one.\n",
        },
};

static const char global_help[] =
    "Global options (anywhere on the command line; --opt=value works too):\n"
    "  --url URL          daemon endpoint: http://HOST:PORT, https://..., or\n"
    "                     unix:/PATH/TO/SOCKET (default http://127.0.0.1:8080)\n"
    "  --token TOKEN      API token, sent as 'Authorization: Bearer TOKEN'\n"
    "  --token-file PATH  read the token from PATH\n"
    "  --state-dir DIR    read the token from DIR/token (default /var/lib/fnbox)\n"
    "  -o, --output FMT   table (default) or json\n"
    "  -q, --quiet        no notices or warnings on stderr; 'list' prints only names\n"
    "  -h, --help         show help (for COMMAND when one is given)\n"
    "  --version          print the version\n"
    "\n"
    "The endpoint is --url, else $FNBOX_URL, else the default. The token is --token,\n"
    "--token-file or --state-dir DIR/token, else $FNBOX_TOKEN, else\n"
    "/var/lib/fnbox/token if readable; without one no token is sent.\n"
    "\n"
    "Exit status:\n"
    "  0  success; also 'logs -f' ended by SIGINT or SIGTERM\n"
    "  1  the daemon could not be reached, or a local error (file not found, cannot\n"
    "     pack, input too large)\n"
    "  2  usage error (unknown command or option, missing argument, bad NAME, bad --env)\n"
    "  3  the API refused the request (an HTTP error that is not a function failure,\n"
    "     e.g. 400, 401, 404, 413, 503)\n"
    "  4  the function failed (invoke answered 502 or 504)\n";

enum {
        OPT_URL = 0x100,
        OPT_TOKEN,
        OPT_TOKEN_FILE,
        OPT_STATE_DIR,
        OPT_VERSION,
        OPT_RUNTIME,
        OPT_HANDLER,
        OPT_MEMORY,
        OPT_TIMEOUT,
        OPT_KEEP_ALIVE,
        OPT_MAX_CONCURRENCY,
        OPT_MIN_INSTANCES,
        OPT_LOG,
};

static const struct option options[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"output", required_argument, NULL, 'o'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"runtime", required_argument, NULL, OPT_RUNTIME},
    {"handler", required_argument, NULL, OPT_HANDLER},
    {"memory", required_argument, NULL, OPT_MEMORY},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"env", required_argument, NULL, 'e'},
    {"data", required_argument, NULL, 'd'},
    {"show-headers", no_argument, NULL, 'i'},
    {"keep-alive", required_argument, NULL, OPT_KEEP_ALIVE},
    {"max-concurrency", required_argument, NULL, OPT_MAX_CONCURRENCY},
    {"min-instances", required_argument, NULL, OPT_MIN_INSTANCES},
    {"log", no_argument, NULL, OPT_LOG},
    {"log-tail", no_argument, NULL, OPT_LOG},
    {"follow", no_argument, NULL, 'f'},
    {"tail", required_argument, NULL, 'n'},
    {},
};

/* The command line, parsed. */
static const char *arg_url;
static const char *arg_token;
static const char *arg_token_file;
static const char *arg_state_dir;
static OutputFormat arg_output = OUTPUT_TABLE;
static bool arg_quiet;
static bool arg_help;
static bool arg_version;
static const char *arg_runtime;
static const char *arg_handler;
static uint64_t arg_memory_mb; /* 0: not sent, the daemon's default applies */
static uint64_t arg_timeout_ms;
/* -1: not sent, the daemon's default applies (0 is a valid value for these). */
static int64_t arg_keep_alive_ms = -1;
static int64_t arg_max_concurrency = -1;
static int64_t arg_min_instances = -1;
static json_t *arg_env; /* object; NULL until the first --env */
static const char *arg_data;
static bool arg_show_headers;
static bool arg_log_tail;
static bool arg_follow;
static int64_t arg_tail = (int64_t)LOGS_TAIL_DEFAULT;
/* Per verb, the first option given that belongs to that verb only, to refuse it with another. */
static int arg_verb_opt[_VERB_MAX];

/* Set by SIGINT/SIGTERM while `logs -f` runs. */
static volatile sig_atomic_t stop_requested;

static const char *option_name(int val)
{
        for (size_t i = 0; options[i].name; i++)
                if (options[i].val == val)
                        return options[i].name;
        return "?";
}

static int usage_error(Verb verb, const char *fmt, ...) _printf_(2, 3);
static int usage_error(Verb verb, const char *fmt, ...)
{
        va_list ap;

        fputs("fnbox: ", stderr);
        va_start(ap, fmt);
        (void)vfprintf(stderr, fmt, ap);
        va_end(ap);
        if (verb >= 0)
                fprintf(stderr, "\nUsage: fnbox [OPTIONS] %s\nTry 'fnbox help %s'.\n",
                        verbs[verb].usage, verbs[verb].name);
        else
                fputs("\nTry 'fnbox help'.\n", stderr);
        return CLI_EXIT_USAGE;
}

static Verb verb_from_string(const char *s)
{
        for (size_t i = 0; i < _VERB_MAX; i++)
                if (strcmp(verbs[i].name, s) == 0)
                        return (Verb)i;
        return _VERB_INVALID;
}

/* ---- option values ---- */

static int parse_limit(const char *opt, const char *s, uint64_t *ret)
{
        uint64_t v;

        if (parse_uint64(s, &v) < 0 || v == 0 || v > LIMIT_ARG_MAX)
                return usage_error(VERB_DEPLOY, "--%s wants a positive integer, not '%s'", opt, s);
        *ret = v;
        return 0;
}

/* An integer option where 0 is meaningful: 0 to max. */
static int parse_range(Verb verb, const char *opt, const char *s, uint64_t max, int64_t *ret)
{
        uint64_t v;

        if (parse_uint64(s, &v) < 0 || v > max)
                return usage_error(verb, "--%s wants an integer from 0 to %" PRIu64 ", not '%s'",
                                   opt, max, s);
        *ret = (int64_t)v;
        return 0;
}

static bool env_key_is_valid(const char *k, size_t l)
{
        if (l == 0 || (k[0] >= '0' && k[0] <= '9'))
                return false;
        for (size_t i = 0; i < l; i++)
                if (!(k[i] == '_' || (k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= 'a' && k[i] <= 'z') ||
                      (k[i] >= '0' && k[i] <= '9')))
                        return false;
        return true;
}

/* --env K=V; a repeated K keeps the last value, as a shell would. */
static int parse_env(const char *s)
{
        const char *eq = strchr(s, '=');
        _cleanup_free_ char *key = NULL;
        json_t *v;

        if (!eq || !env_key_is_valid(s, (size_t)(eq - s)))
                return usage_error(VERB_DEPLOY,
                                   "--env wants K=V with K matching [A-Za-z_][A-Za-z0-9_]*, "
                                   "not '%s'",
                                   s);
        key = strndup(s, (size_t)(eq - s));
        if (!key)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        v = json_string(eq + 1);
        if (!v)
                return usage_error(VERB_DEPLOY, "--env %s: the value is not valid UTF-8", key);
        if (!arg_env && !(arg_env = json_object()))
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        if (json_object_set_new(arg_env, key, v) < 0)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        return 0;
}

static int parse_output(const char *s)
{
        if (strcmp(s, "table") == 0)
                arg_output = OUTPUT_TABLE;
        else if (strcmp(s, "json") == 0)
                arg_output = OUTPUT_JSON;
        else
                return usage_error(_VERB_INVALID, "-o wants 'table' or 'json', not '%s'", s);
        return 0;
}

/* ---- command line ---- */

/* The verb an option belongs to, or _VERB_INVALID for a global one. */
static Verb option_verb(int c)
{
        switch (c) {
        case OPT_RUNTIME:
        case OPT_HANDLER:
        case OPT_MEMORY:
        case OPT_TIMEOUT:
        case OPT_KEEP_ALIVE:
        case OPT_MAX_CONCURRENCY:
        case OPT_MIN_INSTANCES:
        case 'e':
                return VERB_DEPLOY;
        case 'd':
        case 'i':
        case OPT_LOG:
                return VERB_INVOKE;
        case 'f':
        case 'n':
                return VERB_LOGS;
        default:
                return _VERB_INVALID;
        }
}

static int parse_verb_option(int c, const char *val)
{
        switch (c) {
        case OPT_RUNTIME:
                arg_runtime = val;
                return 0;
        case OPT_HANDLER:
                arg_handler = val;
                return 0;
        case OPT_MEMORY:
                return parse_limit("memory", val, &arg_memory_mb);
        case OPT_TIMEOUT:
                return parse_limit("timeout", val, &arg_timeout_ms);
        case OPT_KEEP_ALIVE:
                return parse_range(VERB_DEPLOY, "keep-alive", val, KEEP_ALIVE_ARG_MAX,
                                   &arg_keep_alive_ms);
        case OPT_MAX_CONCURRENCY:
                return parse_range(VERB_DEPLOY, "max-concurrency", val, CONCURRENCY_ARG_MAX,
                                   &arg_max_concurrency);
        case OPT_MIN_INSTANCES:
                return parse_range(VERB_DEPLOY, "min-instances", val, CONCURRENCY_ARG_MAX,
                                   &arg_min_instances);
        case 'e':
                return parse_env(val);
        case 'd':
                arg_data = val;
                return 0;
        case 'i':
                arg_show_headers = true;
                return 0;
        case OPT_LOG:
                arg_log_tail = true;
                return 0;
        case 'f':
                arg_follow = true;
                return 0;
        default: /* 'n' */
                return parse_range(VERB_LOGS, "tail", val, LOGS_TAIL_MAX, &arg_tail);
        }
}

static int parse_one_option(int c, const char *val)
{
        Verb verb = option_verb(c);

        if (verb >= 0) {
                arg_verb_opt[verb] = arg_verb_opt[verb] ?: c;
                return parse_verb_option(c, val);
        }
        switch (c) {
        case OPT_URL:
                arg_url = val;
                return 0;
        case OPT_TOKEN:
                arg_token = val;
                return 0;
        case OPT_TOKEN_FILE:
                arg_token_file = val;
                return 0;
        case OPT_STATE_DIR:
                arg_state_dir = val;
                return 0;
        case 'o':
                return parse_output(val);
        case 'q':
                arg_quiet = true;
                return 0;
        case 'h':
                arg_help = true;
                return 0;
        default: /* OPT_VERSION */
                arg_version = true;
                return 0;
        }
}

static int bad_option(int c, char **argv)
{
        const char *arg = optind > 0 ? argv[optind - 1] : "";

        if (c == ':')
                return usage_error(
                    _VERB_INVALID, "option '%s%s' needs a value", optopt < 0x100 ? "-" : "--",
                    optopt < 0x100 ? (char[]){(char)optopt, '\0'} : option_name(optopt));
        if (optopt != 0)
                return usage_error(_VERB_INVALID, "unknown option '-%c'", optopt);
        return usage_error(_VERB_INVALID, "unknown option '%.*s'", (int)strcspn(arg, "="), arg);
}

/* Parses argv into the arg_* globals and the positional arguments (in order, in ret_pos, which
 * the caller frees). Options may come before or after the command and its arguments; "--" ends
 * them. Returns 0, or CLI_EXIT_USAGE after printing why. */
static int parse_argv(int argc, char **argv, char ***ret_pos, size_t *ret_n)
{
        _cleanup_free_ char **pos = calloc((size_t)argc + 1, sizeof(char *));
        size_t n = 0;
        int c, r;

        if (!pos)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        opterr = 0;
        /* '-': positional arguments come back in order as option 1, so options may follow the
         * command; ':': a missing value is reported as ':' rather than '?'. */
        while ((c = getopt_long(argc, argv, "-:o:qhe:d:ifn:", options, NULL)) != -1) {
                if (c == 1) {
                        pos[n++] = optarg;
                        continue;
                }
                if (c == '?' || c == ':')
                        return bad_option(c, argv);
                r = parse_one_option(c, optarg);
                if (r != 0)
                        return r;
        }
        for (; optind < argc; optind++)
                pos[n++] = argv[optind];
        *ret_pos = TAKE_PTR(pos);
        *ret_n = n;
        return 0;
}

/* ---- endpoint and token ---- */

typedef struct Endpoint {
        CliEndpoint ep;
        char *base_url;
        char *token;
        char no_token_reason[384]; /* why no token was sent, for the hint after a 401 */
} Endpoint;

static void endpoint_done(Endpoint *e)
{
        free(e->base_url);
        free(e->token);
}

static int resolve_url(Endpoint *e)
{
        const char *src = arg_url, *env = getenv("FNBOX_URL"), *host = NULL;
        size_t l;

        if (!src)
                src = env && *env ? env : DEFAULT_URL;
        e->ep.display = src;
        if (strncmp(src, "unix:", 5) == 0) {
                if (src[5] == '\0')
                        return usage_error(_VERB_INVALID, "URL '%s' names no socket", src);
                /* The host part is only for the Host header; the socket is the address. */
                e->ep.unix_socket = src + 5;
                e->base_url = strdup("http://localhost");
        } else {
                if (strncasecmp(src, "http://", 7) == 0)
                        host = src + 7;
                else if (strncasecmp(src, "https://", 8) == 0)
                        host = src + 8;
                if (!host || strcspn(host, "/") == 0)
                        return usage_error(_VERB_INVALID,
                                           "URL '%s' is not http://HOST[:PORT], https://... or "
                                           "unix:PATH",
                                           src);
                /* Request paths start with '/'; a trailing one would double it. */
                l = strlen(src);
                while (src[l - 1] == '/')
                        l--;
                e->base_url = strndup(src, l);
        }
        if (!e->base_url)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        e->ep.base_url = e->base_url;
        return 0;
}

/* A token goes into an HTTP header: printable ASCII without spaces, so it cannot split it. */
static bool token_is_valid(const char *t)
{
        if (!*t)
                return false;
        for (; *t; t++)
                if (*t < 0x21 || *t > 0x7e)
                        return false;
        return true;
}

static int read_token_file(const char *path, char **ret)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        r = read_fd_full(fd, TOKEN_MAX, &buf, &len);
        if (r < 0)
                return r;
        while (len > 0 && strchr(" \t\r\n", buf[len - 1]))
                buf[--len] = '\0';
        if (strlen(buf) != len || !token_is_valid(buf))
                return -EBADMSG;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int token_file_error(const char *path, int r)
{
        if (r == -EBADMSG)
                return cli_fail(CLI_EXIT_LOCAL,
                                "token file '%s' is empty or holds characters a token cannot have",
                                path);
        return cli_fail(CLI_EXIT_LOCAL, "cannot read token file '%s': %s", path, strerror(-r));
}

static int resolve_token(Endpoint *e)
{
        _cleanup_free_ char *path = NULL;
        const char *env = getenv("FNBOX_TOKEN");
        int r;

        if (arg_token || (!arg_token_file && !arg_state_dir && env && *env)) {
                const char *t = arg_token ?: env;
                if (!token_is_valid(t))
                        return usage_error(_VERB_INVALID, "%s holds characters a token cannot have",
                                           arg_token ? "--token" : "$FNBOX_TOKEN");
                e->token = strdup(t);
                return e->token ? 0 : cli_fail(CLI_EXIT_LOCAL, "out of memory");
        }
        if (arg_token_file)
                path = strdup(arg_token_file);
        else if (asprintf(&path, "%s/token", arg_state_dir ?: DEFAULT_STATE_DIR) < 0)
                path = NULL;
        if (!path)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        r = read_token_file(path, &e->token);
        /* Only the implicit default may be missing: the daemon then answers 401 with a hint. */
        if (r < 0 && !arg_token_file && !arg_state_dir && (r == -ENOENT || r == -EACCES)) {
                (void)snprintf(e->no_token_reason, sizeof(e->no_token_reason),
                               "no token was sent (%s: %s); use --token, --token-file, "
                               "--state-dir or FNBOX_TOKEN",
                               path, strerror(-r));
                return 0;
        }
        return r < 0 ? token_file_error(path, r) : 0;
}

/* ---- talking to the daemon ---- */

static void print_fnbox_headers(const HttpResponse *resp)
{
        static const char skip[] = "X-Fnbox-Log-Result:";

        for (const char *p = resp->fnbox_headers; p && *p;) {
                const char *eol = strchrnul(p, '\n');
                /* --log shows the log tail decoded; its base64 here would only be noise. */
                if (strncasecmp(p, skip, strlen(skip)) != 0)
                        fprintf(stderr, "%.*s\n", (int)(eol - p), p);
                p = *eol ? eol + 1 : eol;
        }
}

/* `invoke --log`: the end of the invocation's log, which the daemon sends base64-encoded in
 * X-Fnbox-Log-Result, decoded to stderr. The header is missing when the invocation never ran
 * (404, 429): a warning only when it should be there. */
static void print_log_result(const HttpResponse *resp, bool expected)
{
        _cleanup_free_ void *log = NULL;
        const char *v;
        size_t l, n;

        if (http_response_header(resp, "X-Fnbox-Log-Result", &v, &l) < 0) {
                if (expected)
                        cli_warn(arg_quiet, "the daemon sent no X-Fnbox-Log-Result header");
                return;
        }
        if (base64_decode(v, l, &log, &n) < 0) {
                cli_warn(arg_quiet, "the daemon's X-Fnbox-Log-Result header is not base64");
                return;
        }
        if (n == 0)
                return;
        (void)fwrite(log, 1, n, stderr);
        /* The tail may be cut mid-line at its start, never at its end; keep stderr tidy anyway. */
        if (((const char *)log)[n - 1] != '\n')
                fputc('\n', stderr);
}

/* One request. Returns 0 with *ret filled for a 2xx answer; -ECANCELED, silently, when
 * req->cancel fired; otherwise prints why and returns the exit code: CLI_EXIT_LOCAL (no answer),
 * CLI_EXIT_FUNCTION (an invoke's 502/504), CLI_EXIT_API. */
static int api_call(const HttpRequest *req, bool invoke, HttpResponse *ret)
{
        _cleanup_(endpoint_done) Endpoint e = {};
        HttpResponse resp = {};
        FnError err = {};
        char msg[512];
        int r;

        r = resolve_url(&e);
        if (r == 0)
                r = resolve_token(&e);
        if (r != 0)
                return r;
        e.ep.token = e.token;
        r = cli_http_request(&e.ep, req, &resp, &err);
        if (r == -ECANCELED)
                return r;
        if (r < 0)
                return cli_fail(CLI_EXIT_LOCAL, "%s", err.msg);
        if (invoke && arg_show_headers)
                print_fnbox_headers(&resp);
        if (resp.status >= 200 && resp.status < 300) {
                *ret = resp;
                return 0;
        }
        /* A failed invocation is where its log helps most: show it before the error line. */
        if (invoke && arg_log_tail)
                print_log_result(&resp, false);
        cli_describe_error(&resp, msg, sizeof(msg));
        r = invoke && (resp.status == 502 || resp.status == 504) ? CLI_EXIT_FUNCTION : CLI_EXIT_API;
        (void)cli_fail(r, "%s", msg);
        if (resp.status == 401 && !e.token && e.no_token_reason[0])
                (void)cli_fail(r, "%s", e.no_token_reason);
        http_response_done(&resp);
        return r;
}

/* Parses a 2xx answer that must be JSON. */
static int answer_json(const HttpResponse *resp, json_t **ret)
{
        json_error_t jerr;
        json_t *j = resp->body ? json_loadb(resp->body, resp->body_len, 0, &jerr) : NULL;

        if (!j)
                return cli_fail(CLI_EXIT_API, "the daemon's answer is not JSON: %s",
                                resp->body ? jerr.text : "empty body");
        *ret = j;
        return 0;
}

static int print_functions(json_t *root, json_t *fns)
{
        int r;

        if (arg_output == OUTPUT_JSON)
                r = cli_print_json(root);
        else if (arg_quiet)
                r = cli_print_function_names(fns);
        else
                r = cli_print_function_table(fns);
        return r < 0 ? cli_fail(CLI_EXIT_LOCAL, "cannot write to stdout: %s", strerror(-r)) : 0;
}

/* ---- verbs ---- */

static bool utf8_is_valid(const char *s)
{
        json_t *j = json_string(s);

        json_decref(j);
        return j != NULL;
}

static int check_name(Verb verb, const char *name)
{
        if (!name_is_valid(name))
                return usage_error(verb, "bad function name '%s': 1 to 64 of [A-Za-z0-9_-]", name);
        return 0;
}

static int load_bundle(const char *path, char **ret, size_t *ret_len, PackStats *ret_stats)
{
        struct stat st;
        FnError err = {};
        int r;

        if (stat(path, &st) < 0)
                return cli_fail(CLI_EXIT_LOCAL, "cannot access '%s': %s", path, strerror(errno));
        if (S_ISDIR(st.st_mode))
                r = cli_pack_directory(path, CLI_BUNDLE_MAX, arg_quiet, ret, ret_len, ret_stats,
                                       &err);
        else if (S_ISREG(st.st_mode) && cli_is_bundle_name(path))
                r = cli_read_bundle_file(path, CLI_BUNDLE_MAX, ret, ret_len, &err);
        else
                return usage_error(VERB_DEPLOY,
                                   "'%s' is not a directory, .zip, .tar.gz or .tgz file", path);
        return r < 0 ? cli_fail(CLI_EXIT_LOCAL, "%s", err.msg) : 0;
}

/* Sets key to v, unless v is -1 (not given). */
static int set_optional_int(json_t *o, const char *key, int64_t v)
{
        return v < 0 ? 0 : json_object_set_new(o, key, json_integer((json_int_t)v));
}

/* The PUT body; memory_mb, timeout_ms and the warm-pool fields are left out when not given so
 * the daemon's defaults apply; env is always sent, so an update without --env clears it. */
static int deploy_body(const char *code, char **ret)
{
        json_t *o = json_object(), *v;
        char *s = NULL;

        if (!o)
                return -ENOMEM;
        if ((v = json_string(arg_runtime)) && json_object_set_new(o, "runtime", v) == 0 &&
            (v = json_string(arg_handler)) && json_object_set_new(o, "handler", v) == 0 &&
            (!arg_memory_mb ||
             json_object_set_new(o, "memory_mb", json_integer((json_int_t)arg_memory_mb)) == 0) &&
            (!arg_timeout_ms ||
             json_object_set_new(o, "timeout_ms", json_integer((json_int_t)arg_timeout_ms)) == 0) &&
            set_optional_int(o, "keep_alive_ms", arg_keep_alive_ms) == 0 &&
            set_optional_int(o, "max_concurrency", arg_max_concurrency) == 0 &&
            set_optional_int(o, "min_instances", arg_min_instances) == 0 &&
            json_object_set_new(o, "env", arg_env ? json_incref(arg_env) : json_object()) == 0 &&
            json_object_set_new(o, "code", json_string_nocheck(code)) == 0)
                s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int deploy_check_args(const char *name)
{
        int r = check_name(VERB_DEPLOY, name);

        if (r != 0)
                return r;
        if (!arg_runtime || !*arg_runtime)
                return usage_error(VERB_DEPLOY, "deploy needs --runtime");
        if (!arg_handler || !*arg_handler)
                return usage_error(VERB_DEPLOY, "deploy needs --handler");
        if (!utf8_is_valid(arg_runtime) || !utf8_is_valid(arg_handler))
                return usage_error(VERB_DEPLOY, "--runtime and --handler must be valid UTF-8");
        return 0;
}

/* For native the handler is a file of the bundle: a typo is cheaper to catch before the deploy.
 * Only a warning, since the daemon has the last word. */
static void deploy_check_handler(const char *path)
{
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (strcmp(arg_runtime, "native") != 0)
                return;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0 && fstatat(fd, arg_handler, &st, 0) < 0)
                cli_warn(arg_quiet, "handler '%s' is not a file in '%s'", arg_handler, path);
}

static void deploy_notice(long status, json_t *fn, size_t bundle_len, const PackStats *st)
{
        json_t *v = json_object_get(fn, "version");
        char version[64] = "";

        if (arg_quiet)
                return;
        if (json_is_integer(v))
                (void)snprintf(version, sizeof(version), ", version %" JSON_INTEGER_FORMAT,
                               json_integer_value(v));
        fprintf(stderr, "%s function '%s'%s (", status == 201 ? "Created" : "Updated",
                json_string_value(json_object_get(fn, "name")) ?: "?", version);
        if (st->files > 0)
                fprintf(stderr, "zip of %zu files, ", st->files);
        fprintf(stderr, "%zu bytes).\n", bundle_len);
}

static int verb_deploy(char **args)
{
        _cleanup_free_ char *bundle = NULL, *code = NULL, *body = NULL, *path = NULL;
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_(json_decrefp) json_t *fn = NULL, *list = NULL;
        PackStats stats = {};
        size_t len = 0;
        int r;

        assert(args[0] && args[1]); /* run() checked the count */
        r = deploy_check_args(args[0]);
        if (r == 0)
                r = load_bundle(args[1], &bundle, &len, &stats);
        if (r != 0)
                return r;
        deploy_check_handler(args[1]);
        code = base64_encode(bundle, len);
        free(TAKE_PTR(bundle));
        if (!code || deploy_body(code, &body) < 0 ||
            asprintf(&path, "/v1/functions/%s", args[0]) < 0)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        free(TAKE_PTR(code));
        if (strlen(body) > CLI_DEPLOY_BODY_MAX)
                return cli_fail(CLI_EXIT_LOCAL,
                                "the deploy request would be %zu MiB, over the daemon's %zu MiB "
                                "limit (the bundle travels base64-encoded: keep it under 48 MiB)",
                                (strlen(body) + (1 << 20) - 1) >> 20, CLI_DEPLOY_BODY_MAX >> 20);
        r = api_call(&(HttpRequest){.method = "PUT",
                                    .path = path,
                                    .body = body,
                                    .body_len = strlen(body),
                                    .content_type = "application/json",
                                    .timeout_sec = API_TIMEOUT_SEC},
                     false, &resp);
        if (r == 0)
                r = answer_json(&resp, &fn);
        if (r != 0)
                return r;
        deploy_notice(resp.status, fn, len, &stats);
        list = json_pack("[O]", fn);
        if (!list)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        return print_functions(fn, list);
}

/* The event: --data STRING, --data @FILE, --data - / @- (stdin), or stdin when it is not a
 * terminal; else empty. */
static int read_event(char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = -EBADF;
        const char *d = arg_data, *src = "stdin";
        int r;

        if (d && strcmp(d, "-") != 0 && d[0] != '@') {
                if (strlen(d) > CLI_INVOKE_DATA_MAX)
                        return cli_fail(CLI_EXIT_LOCAL, "--data is larger than the %zu MiB limit",
                                        CLI_INVOKE_DATA_MAX >> 20);
                *ret = strdup(d);
                *ret_len = strlen(d);
                return *ret ? 0 : cli_fail(CLI_EXIT_LOCAL, "out of memory");
        }
        if (d && d[0] == '@' && strcmp(d, "@-") != 0) {
                src = d + 1;
                fd = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return cli_fail(CLI_EXIT_LOCAL, "cannot open '%s': %s", src,
                                        strerror(errno));
        } else if (!d && (isatty(STDIN_FILENO) || fcntl(STDIN_FILENO, F_GETFD) < 0)) {
                /* Nothing to read from: an empty event. */
                *ret = NULL;
                *ret_len = 0;
                return 0;
        }
        r = read_fd_full(fd >= 0 ? fd : STDIN_FILENO, CLI_INVOKE_DATA_MAX, ret, ret_len);
        if (r == -EFBIG)
                return cli_fail(CLI_EXIT_LOCAL, "%s is larger than the %zu MiB event limit", src,
                                CLI_INVOKE_DATA_MAX >> 20);
        if (r < 0)
                return cli_fail(CLI_EXIT_LOCAL, "cannot read %s: %s", src, strerror(-r));
        return 0;
}

static int write_response(const HttpResponse *resp)
{
        int r = 0;

        if (resp->body_len == 0)
                return 0;
        r = loop_write(STDOUT_FILENO, resp->body, resp->body_len);
        /* Keep the shell prompt on its own line, but never alter what a pipe receives. */
        if (r >= 0 && resp->body[resp->body_len - 1] != '\n' && isatty(STDOUT_FILENO))
                r = loop_write(STDOUT_FILENO, "\n", 1);
        if (r < 0)
                return cli_fail(CLI_EXIT_LOCAL, "cannot write to stdout: %s", strerror(-r));
        return 0;
}

static int verb_invoke(char **args)
{
        _cleanup_free_ char *event = NULL, *path = NULL;
        _cleanup_(http_response_done) HttpResponse resp = {};
        size_t len = 0;
        int r;

        r = check_name(VERB_INVOKE, args[0]);
        if (r == 0)
                r = read_event(&event, &len);
        if (r != 0)
                return r;
        if (asprintf(&path, "/v1/functions/%s/invoke", args[0]) < 0)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        r = api_call(&(HttpRequest){.method = "POST",
                                    .path = path,
                                    .body = event,
                                    .body_len = len,
                                    .content_type = "application/octet-stream",
                                    .header = arg_log_tail ? "X-Fnbox-Log: Tail" : NULL,
                                    .timeout_sec = INVOKE_TIMEOUT_SEC},
                     true, &resp);
        if (r == 0)
                r = write_response(&resp);
        if (r == 0 && arg_log_tail)
                print_log_result(&resp, true);
        return r;
}

static void on_stop_signal(int sig)
{
        stop_requested = 1;
}

/* SIGINT and SIGTERM end `logs -f` with exit status 0. No SA_RESTART, so the sleep between two
 * requests returns at once; a request in flight notices through HttpRequest.cancel. */
static int install_stop_handlers(void)
{
        struct sigaction sa = {.sa_handler = on_stop_signal};

        if (sigemptyset(&sa.sa_mask) < 0 || sigaction(SIGINT, &sa, NULL) < 0 ||
            sigaction(SIGTERM, &sa, NULL) < 0)
                return cli_fail(CLI_EXIT_LOCAL, "cannot handle SIGINT and SIGTERM: %s",
                                strerror(errno));
        return 0;
}

/* Sleeps msec, or less once stop_requested is set. */
static void sleep_msec(unsigned msec)
{
        struct timespec ts = {.tv_sec = msec / 1000, .tv_nsec = (long)(msec % 1000) * 1000000L};

        while (!stop_requested)
                if (nanosleep(&ts, &ts) == 0 || errno != EINTR)
                        return;
}

/* GETs the last `tail` lines of the log of function name, of what came after cursor `after` (0:
 * all). Returns 0 with the answer and its X-Fnbox-Log-Cursor, -ECANCELED when a stop signal came,
 * or an exit code. */
static int logs_fetch(const char *name, uint64_t tail, uint64_t after, HttpResponse *ret,
                      uint64_t *ret_cursor)
{
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_free_ char *path = NULL;
        char buf[32];
        const char *v;
        uint64_t cursor;
        size_t l;
        int r;

        r = after > 0 ? asprintf(&path, "/v1/functions/%s/logs?after=%" PRIu64 "&tail=%" PRIu64,
                                 name, after, tail)
                      : asprintf(&path, "/v1/functions/%s/logs?tail=%" PRIu64, name, tail);
        if (r < 0)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        r = api_call(&(HttpRequest){.method = "GET",
                                    .path = path,
                                    .timeout_sec = API_TIMEOUT_SEC,
                                    .cancel = arg_follow ? &stop_requested : NULL},
                     false, &resp);
        if (r != 0)
                return r;
        if (http_response_header(&resp, "X-Fnbox-Log-Cursor", &v, &l) < 0 || l >= sizeof(buf))
                return cli_fail(CLI_EXIT_API, "the daemon's answer has no X-Fnbox-Log-Cursor");
        memcpy(buf, v, l);
        buf[l] = '\0';
        if (parse_uint64(buf, &cursor) < 0 || cursor > INT64_MAX)
                return cli_fail(CLI_EXIT_API, "the daemon's X-Fnbox-Log-Cursor is not a cursor");
        *ret = resp;
        resp = (HttpResponse){};
        *ret_cursor = cursor;
        return 0;
}

/* -o json: {"function", "cursor", "log"}, pretty, or one compact line each with -f. Invalid
 * UTF-8 in the log (a function may print anything) becomes '?', as JSON needs. */
static int logs_print_json(const char *name, const HttpResponse *resp, uint64_t cursor)
{
        _cleanup_free_ char *text = utf8_sanitize(resp->body ?: "", resp->body_len);
        _cleanup_(json_decrefp) json_t *o = NULL;
        int r = -EIO;

        if (text)
                o = json_pack("{s:s, s:I, s:s}", "function", name, "cursor", (json_int_t)cursor,
                              "log", text);
        if (!o)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        if (!arg_follow)
                r = cli_print_json(o);
        else if (json_dumpf(o, stdout, JSON_COMPACT) == 0 && fputc('\n', stdout) != EOF &&
                 fflush(stdout) == 0)
                r = 0;
        return r < 0 ? cli_fail(CLI_EXIT_LOCAL, "cannot write to stdout: %s", strerror(-r)) : 0;
}

static int logs_print(const char *name, const HttpResponse *resp, uint64_t cursor)
{
        int r = 0;

        if (arg_output == OUTPUT_JSON)
                return logs_print_json(name, resp, cursor);
        /* As is: the log is the function's own bytes, like `invoke`'s response. */
        if (resp->body_len > 0)
                r = loop_write(STDOUT_FILENO, resp->body, resp->body_len);
        return r < 0 ? cli_fail(CLI_EXIT_LOCAL, "cannot write to stdout: %s", strerror(-r)) : 0;
}

static int verb_logs(char **args)
{
        _cleanup_(http_response_done) HttpResponse resp = {};
        uint64_t cursor = 0;
        int r;

        r = check_name(VERB_LOGS, args[0]);
        if (r == 0 && arg_follow)
                r = install_stop_handlers();
        if (r == 0)
                r = logs_fetch(args[0], (uint64_t)arg_tail, 0, &resp, &cursor);
        if (r == 0 && (!arg_follow || resp.body_len > 0))
                r = logs_print(args[0], &resp, cursor);
        /* Each round asks only for what came after the cursor; the daemon's cap on lines per
         * answer is far above what half a second of invocations writes. */
        while (r == 0 && arg_follow) {
                http_response_done(&resp);
                sleep_msec(LOGS_POLL_MSEC);
                if (stop_requested)
                        break;
                r = logs_fetch(args[0], LOGS_TAIL_MAX, cursor, &resp, &cursor);
                if (r == 0 && resp.body_len > 0)
                        r = logs_print(args[0], &resp, cursor);
        }
        return r == -ECANCELED ? 0 : r;
}

static int verb_list(void)
{
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_(json_decrefp) json_t *root = NULL;
        json_t *fns;
        int r;

        r = api_call(&(HttpRequest){.method = "GET",
                                    .path = "/v1/functions",
                                    .timeout_sec = API_TIMEOUT_SEC},
                     false, &resp);
        if (r == 0)
                r = answer_json(&resp, &root);
        if (r != 0)
                return r;
        fns = json_object_get(root, "functions");
        if (!json_is_array(fns))
                return cli_fail(CLI_EXIT_API, "the daemon's answer has no 'functions' list");
        return print_functions(root, fns);
}

static int verb_get(char **args)
{
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_(json_decrefp) json_t *fn = NULL, *list = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        r = check_name(VERB_GET, args[0]);
        if (r != 0)
                return r;
        if (asprintf(&path, "/v1/functions/%s", args[0]) < 0)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        r = api_call(&(HttpRequest){.method = "GET", .path = path, .timeout_sec = API_TIMEOUT_SEC},
                     false, &resp);
        if (r == 0)
                r = answer_json(&resp, &fn);
        if (r != 0)
                return r;
        list = json_pack("[O]", fn);
        if (!list)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        return print_functions(fn, list);
}

static int verb_delete(char **args)
{
        _cleanup_(http_response_done) HttpResponse resp = {};
        _cleanup_free_ char *path = NULL;
        int r;

        r = check_name(VERB_DELETE, args[0]);
        if (r != 0)
                return r;
        if (asprintf(&path, "/v1/functions/%s", args[0]) < 0)
                return cli_fail(CLI_EXIT_LOCAL, "out of memory");
        r = api_call(
            &(HttpRequest){.method = "DELETE", .path = path, .timeout_sec = API_TIMEOUT_SEC}, false,
            &resp);
        if (r != 0)
                return r;
        if (!arg_quiet)
                fprintf(stderr, "Deleted function '%s'.\n", args[0]);
        return 0;
}

static int verb_version(void)
{
        if (arg_output == OUTPUT_JSON)
                puts("{\n  \"version\": \"" FNBOX_VERSION "\"\n}");
        else
                puts("fnbox " FNBOX_VERSION);
        return 0;
}

static void print_main_help(void)
{
        printf("Usage: fnbox [OPTIONS] COMMAND [ARGS]\n"
               "\n"
               "Deploy and invoke functions on an fnboxd daemon (its /v1 API).\n"
               "\n"
               "Commands:\n");
        for (size_t i = 0; i < _VERB_MAX; i++)
                printf("  %-18s %s\n", verbs[i].synopsis, verbs[i].summary);
        printf("\n%s", global_help);
}

static int verb_help(const char *topic)
{
        Verb verb;

        if (!topic) {
                print_main_help();
                return 0;
        }
        verb = verb_from_string(topic);
        if (verb < 0)
                return usage_error(VERB_HELP, "unknown command '%s'", topic);
        printf("Usage: fnbox [OPTIONS] %s\n\n%s\nGlobal options and exit codes: 'fnbox help'.\n",
               verbs[verb].usage, verbs[verb].help);
        return 0;
}

static int run(char **pos, size_t n)
{
        Verb verb;

        if (arg_version)
                return verb_version();
        if (n == 0)
                return arg_help ? verb_help(NULL) : usage_error(_VERB_INVALID, "no command given");
        verb = verb_from_string(pos[0]);
        if (verb < 0)
                return usage_error(_VERB_INVALID, "unknown command '%s'", pos[0]);
        if (arg_help)
                return verb_help(verb == VERB_HELP && n > 1 ? pos[1] : verbs[verb].name);
        pos++, n--;
        if (n < verbs[verb].min_args)
                return usage_error(verb, "missing argument for '%s'", verbs[verb].name);
        if (n > verbs[verb].max_args)
                return usage_error(verb, "unexpected argument '%s'", pos[verbs[verb].max_args]);
        for (size_t v = 0; v < _VERB_MAX; v++)
                if (arg_verb_opt[v] && v != (size_t)verb)
                        return usage_error(verb, "option '--%s' applies only to '%s'",
                                           option_name(arg_verb_opt[v]), verbs[v].name);
        switch (verb) {
        case VERB_DEPLOY:
                return verb_deploy(pos);
        case VERB_INVOKE:
                return verb_invoke(pos);
        case VERB_LOGS:
                return verb_logs(pos);
        case VERB_LIST:
                return verb_list();
        case VERB_GET:
                return verb_get(pos);
        case VERB_DELETE:
                return verb_delete(pos);
        case VERB_VERSION:
                return verb_version();
        default:
                return verb_help(n > 0 ? pos[0] : NULL);
        }
}

int main(int argc, char **argv)
{
        _cleanup_free_ char **pos = NULL;
        size_t n = 0;
        int r;

        r = parse_argv(argc, argv, &pos, &n);
        if (r == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                r = cli_fail(CLI_EXIT_LOCAL, "cannot initialize libcurl");
        else if (r == 0) {
                r = run(pos, n);
                curl_global_cleanup();
        }
        json_decref(arg_env);
        if (fflush(stdout) != 0 && r == 0)
                r = cli_fail(CLI_EXIT_LOCAL, "cannot write to stdout: %s", strerror(errno));
        return r;
}
