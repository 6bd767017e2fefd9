/* SPDX-License-Identifier: Apache-2.0 */
#include "registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "bundle.h"
#include "log.h"
#include "util.h"

#define SHA256_HEX_LEN 64
#define TOKEN_BYTES 32      /* 256 bits of randomness */
#define TOKEN_MAX 1024      /* longest token we hash; longer ones are refused unread */
#define TOKEN_FILE_MAX 4096 /* the token file is read whole */
#define ADMIN_TENANT "admin"
#define STAGING_PREFIX ".staging-"

/* Schema migrations; PRAGMA user_version counts the ones applied. Append, never edit. */
static const char *const migrations[] = {
    "CREATE TABLE functions ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  runtime TEXT NOT NULL,"
    "  handler TEXT NOT NULL,"
    "  memory_mb INTEGER NOT NULL,"
    "  timeout_ms INTEGER NOT NULL,"
    "  env_json TEXT NOT NULL,"
    "  code_sha256 TEXT NOT NULL,"
    "  code_size INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  created_usec INTEGER NOT NULL,"
    "  updated_usec INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX functions_code_sha256 ON functions(code_sha256);"
    "CREATE TABLE tokens ("
    "  sha256 TEXT PRIMARY KEY NOT NULL,"
    "  tenant TEXT NOT NULL,"
    "  created_usec INTEGER NOT NULL"
    ") STRICT;",
    "ALTER TABLE functions ADD COLUMN keep_alive_ms INTEGER NOT NULL DEFAULT 600000;"
    "ALTER TABLE functions ADD COLUMN max_concurrency INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE functions ADD COLUMN min_instances INTEGER NOT NULL DEFAULT 0;",
};

#define FUNCTION_COLUMNS                                                                           \
        "name, runtime, handler, memory_mb, timeout_ms, env_json, code_sha256, code_size, "        \
        "version, created_usec, updated_usec, keep_alive_ms, max_concurrency, min_instances"

enum {
        STMT_BEGIN,
        STMT_COMMIT,
        STMT_ROLLBACK,
        STMT_GET,
        STMT_LIST,
        STMT_INSERT,
        STMT_UPDATE,
        STMT_DELETE,
        STMT_CODE_REFS,
        STMT_TOKEN_GET,
        STMT_TOKEN_PUT,
        STMT_TOKEN_DROP_OTHERS,
        _STMT_MAX,
};

static const char *const stmt_sql[_STMT_MAX] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_GET] = "SELECT " FUNCTION_COLUMNS " FROM functions WHERE name = ?1",
    [STMT_LIST] = "SELECT " FUNCTION_COLUMNS " FROM functions ORDER BY name",
    [STMT_INSERT] = "INSERT INTO functions (" FUNCTION_COLUMNS ") "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9, ?10, ?11, ?12)",
    [STMT_UPDATE] = "UPDATE functions SET runtime = ?2, handler = ?3, memory_mb = ?4, "
                    "timeout_ms = ?5, env_json = ?6, code_sha256 = ?7, code_size = ?8, "
                    "version = version + 1, updated_usec = ?9, keep_alive_ms = ?10, "
                    "max_concurrency = ?11, min_instances = ?12 WHERE name = ?1",
    [STMT_DELETE] = "DELETE FROM functions WHERE name = ?1",
    [STMT_CODE_REFS] = "SELECT count(*) FROM functions WHERE code_sha256 = ?1",
    [STMT_TOKEN_GET] = "SELECT sha256 FROM tokens WHERE sha256 = ?1",
    [STMT_TOKEN_PUT] = ("INSERT OR IGNORE INTO tokens (sha256, tenant, created_usec) "
                        "VALUES (?1, ?2, ?3)"),
    [STMT_TOKEN_DROP_OTHERS] = "DELETE FROM tokens WHERE tenant = ?1 AND sha256 <> ?2",
};

struct Registry {
        char *state_dir; /* absolute, canonical */
        char *code_path; /* state_dir/code */
        int code_fd;
        sqlite3 *db;
        sqlite3_stmt *stmt[_STMT_MAX];
        char last_token[TOKEN_MAX + 1]; /* "" or the token that last matched */
        bool (*code_in_use)(const char *sha, void *userdata);
        void *code_in_use_userdata;
};

void function_spec_done(FunctionSpec *spec)
{
        if (!spec)
                return;
        for (size_t i = 0; i < spec->n_env; i++) {
                free(spec->env[i].key);
                free(spec->env[i].value);
        }
        free(spec->env);
        spec->env = NULL;
        spec->n_env = 0;
}

Function *function_free(Function *f)
{
        if (!f)
                return NULL;
        function_spec_done(&f->spec);
        free(f);
        return NULL;
}

void function_list_free(Function **list, size_t n)
{
        if (!list)
                return;
        for (size_t i = 0; i < n; i++)
                function_free(list[i]);
        free(list);
}

static int sqlite_errno(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
        case SQLITE_PERM:
                return -EROFS;
        default:
                return -EIO;
        }
}

/* Resets a statement when it goes out of scope, so no read transaction stays open. */
static void stmt_resetp(sqlite3_stmt **s)
{
        if (*s) {
                (void)sqlite3_reset(*s);
                (void)sqlite3_clear_bindings(*s);
        }
}
#define _cleanup_stmt_ _cleanup_(stmt_resetp)

static sqlite3_stmt *stmt(Registry *r, int id)
{
        return r->stmt[id];
}

/* Runs a statement that returns no rows. */
static int stmt_exec(Registry *r, int id)
{
        _cleanup_stmt_ sqlite3_stmt *s = stmt(r, id);
        int rc = sqlite3_step(s);

        if (rc != SQLITE_DONE) {
                log_debug("SQL '%s' failed: %s", stmt_sql[id], sqlite3_errmsg(r->db));
                return sqlite_errno(rc);
        }
        return 0;
}

static int tx_begin(Registry *r)
{
        return stmt_exec(r, STMT_BEGIN);
}

static int tx_end(Registry *r, int result)
{
        if (result >= 0) {
                result = stmt_exec(r, STMT_COMMIT);
                if (result >= 0)
                        return result;
        }
        if (!sqlite3_get_autocommit(r->db))
                (void)stmt_exec(r, STMT_ROLLBACK);
        return result;
}

static int sha256_hex(const void *data, size_t len, char out[SHA256_HEX_LEN + 1])
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;

        if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
                return -EIO;
        hex_encode(md, md_len, out);
        return 0;
}

static bool is_sha256_hex(const char *s)
{
        size_t i = 0;

        for (; s[i]; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return i == SHA256_HEX_LEN;
}

/* ---- the code store ---------------------------------------------------------------------- */

static int code_refs(Registry *r, const char *sha, uint64_t *ret)
{
        _cleanup_stmt_ sqlite3_stmt *s = stmt(r, STMT_CODE_REFS);
        int rc;

        (void)sqlite3_bind_text(s, 1, sha, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return sqlite_errno(rc);
        *ret = (uint64_t)sqlite3_column_int64(s, 0);
        return 0;
}

/* Removes code/<sha> when no function uses it any more. Best effort: a leftover directory
 * is reused by the next deploy of the same bundle or collected at the next open. */
static void code_gc(Registry *r, const char *sha)
{
        uint64_t n = 1;
        int k;

        if (!is_sha256_hex(sha) || code_refs(r, sha, &n) < 0 || n > 0)
                return;
        /* A retired version may still be mounted at /var/task in a live sandbox: removing its
         * files would pull them from under it. registry_collect_code() retries later. */
        if (r->code_in_use && r->code_in_use(sha, r->code_in_use_userdata))
                return;
        k = rm_rf_at(r->code_fd, sha);
        if (k < 0)
                log_debug_errno(k, "Failed to remove code directory %s, ignoring: %m", sha);
}

/* At open: staging directories are what a crash mid-deploy left behind, and code directories
 * no row names are what a crash between rename and commit left behind. */
static int code_store_sweep(Registry *r)
{
        struct dirent *de;
        DIR *d;
        int k = opendir_at(r->code_fd, ".", 0, &d);

        if (k < 0)
                return k;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, STAGING_PREFIX, strlen(STAGING_PREFIX)) == 0)
                        (void)rm_rf_at(r->code_fd, de->d_name);
                else if (is_sha256_hex(de->d_name))
                        code_gc(r, de->d_name);
        }
        (void)closedir(d);
        return 0;
}

/* Looks up `file` below the code directory dir_fd. openat2 refuses "..", absolute paths and every
 * symlink on the way, so the daemon never looks outside the extracted tree. Returns 0 and *ret,
 * -ENOENT if there is no such file, or another error with reterr set (what names the file in
 * messages, e.g. "handler file"). */
static int stat_beneath(int dir_fd, const char *file, const char *what, struct stat *ret,
                        FnError *reterr)
{
        struct open_how how = {
            /* No O_NOFOLLOW: with it a trailing symlink would be opened as the link
             * itself; RESOLVE_NO_SYMLINKS alone fails it with ELOOP like any other. */
            .flags = O_PATH | O_CLOEXEC,
            .resolve =
                RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        _cleanup_close_ int fd = -EBADF;

        fd = (int)syscall(SYS_openat2, dir_fd, file, &how, sizeof(how));
        if (fd < 0 && errno == ELOOP)
                return fn_error_set(reterr, -EINVAL, "%s '%s' is a symlink or goes through one",
                                    what, file);
        if (fd < 0 && errno == EXDEV)
                return fn_error_set(reterr, -EINVAL, "%s '%s' escapes the bundle", what, file);
        if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ENAMETOOLONG))
                return -ENOENT;
        if (fd < 0)
                return fn_error_set(reterr, negative_errno(), "cannot open %s '%s'", what, file);
        if (fstat(fd, ret) < 0)
                return fn_error_set(reterr, negative_errno(), "cannot stat %s '%s'", what, file);
        return 0;
}

/* 1 if `file` is a regular file below dir_fd, 0 if it is absent (or not a regular file), or an
 * error with reterr set. */
static int has_regular_file(int dir_fd, const char *file, const char *what, FnError *reterr)
{
        struct stat st;
        int k = stat_beneath(dir_fd, file, what, &st, reterr);

        if (k == -ENOENT)
                return 0;
        if (k < 0)
                return k;
        return S_ISREG(st.st_mode);
}

/* native: the FILE of "FILE.so[:SYMBOL]" must be a regular file. */
static int check_native(int dir_fd, const FunctionSpec *spec, FnError *reterr)
{
        char file[sizeof(spec->handler)];
        struct stat st;
        int k;

        memcpy(file, spec->handler, sizeof(file));
        file[strcspn(file, ":")] = '\0';
        if (!*file)
                return fn_error_set(reterr, -EINVAL, "handler '%s' names no file", spec->handler);
        k = stat_beneath(dir_fd, file, "handler file", &st, reterr);
        if (k == -ENOENT)
                return fn_error_set(reterr, -EINVAL, "handler file '%s' not found in the bundle",
                                    file);
        if (k < 0)
                return k;
        if (!S_ISREG(st.st_mode))
                return fn_error_set(reterr, -EINVAL, "handler file '%s' is not a regular file",
                                    file);
        return 0;
}

/* provided: Lambda runs /var/task/bootstrap. The extractor keeps the executable bit of files
 * that had one, so a bundle zipped without it is caught here rather than at the first invoke. */
static int check_provided(int dir_fd, FnError *reterr)
{
        struct stat st;
        int k = stat_beneath(dir_fd, "bootstrap", "file", &st, reterr);

        if (k < 0 && k != -ENOENT)
                return k;
        if (k == -ENOENT || !S_ISREG(st.st_mode) || !(st.st_mode & 0111))
                return fn_error_set(reterr, -EINVAL,
                                    "bundle has no executable 'bootstrap' at its root");
        return 0;
}

/* python3: "pkg/mod.fn" or "pkg.mod.fn" needs pkg/mod.py or pkg/mod/__init__.py. */
static int check_python(int dir_fd, const FunctionSpec *spec, FnError *reterr)
{
        char module[sizeof(spec->handler)], file[sizeof(spec->handler) + 16];
        char *dot;
        int k;

        memcpy(module, spec->handler, sizeof(module));
        dot = strrchr(module, '.');
        if (!dot || dot == module)
                return fn_error_set(reterr, -EINVAL, "handler '%s' names no module", spec->handler);
        *dot = '\0';
        for (char *p = module; *p; p++)
                if (*p == '.')
                        *p = '/';
        (void)snprintf(file, sizeof(file), "%s.py", module);
        k = has_regular_file(dir_fd, file, "module file", reterr);
        if (k == 0) {
                (void)snprintf(file, sizeof(file), "%s/__init__.py", module);
                k = has_regular_file(dir_fd, file, "module file", reterr);
        }
        if (k < 0)
                return k;
        if (k == 0)
                return fn_error_set(reterr, -EINVAL,
                                    "handler '%s': the bundle has no module file '%s.py'",
                                    spec->handler, module);
        return 0;
}

/* nodejs: "dir/file.export" needs dir/file.js, .mjs or .cjs. */
static int check_nodejs(int dir_fd, const FunctionSpec *spec, FnError *reterr)
{
        static const char *const exts[] = {".js", ".mjs", ".cjs"};
        char base[sizeof(spec->handler)], file[sizeof(spec->handler) + 8];
        char *slash, *dot;

        memcpy(base, spec->handler, sizeof(base));
        slash = strrchr(base, '/');
        dot = strchr(slash ? slash + 1 : base, '.');
        if (!dot)
                return fn_error_set(reterr, -EINVAL, "handler '%s' names no file", spec->handler);
        *dot = '\0';
        for (size_t i = 0; i < ELEMENTSOF(exts); i++) {
                int k;

                (void)snprintf(file, sizeof(file), "%s%s", base, exts[i]);
                k = has_regular_file(dir_fd, file, "handler file", reterr);
                if (k != 0)
                        return k < 0 ? k : 0;
        }
        return fn_error_set(reterr, -EINVAL,
                            "handler '%s': the bundle has no '%s.js', '%s.mjs' or '%s.cjs'",
                            spec->handler, base, base, base);
}

/* What the runtime will load must be in the extracted tree at dir_name. */
static int check_handler(Registry *r, const char *dir_name, const FunctionSpec *spec,
                         FnError *reterr)
{
        _cleanup_close_ int dir_fd = -EBADF;

        dir_fd = openat(r->code_fd, dir_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                return fn_error_set(reterr, negative_errno(), "cannot open the code directory");
        if (strcmp(spec->runtime, "native") == 0)
                return check_native(dir_fd, spec, reterr);
        if (strncmp(spec->runtime, "provided", 8) == 0)
                return check_provided(dir_fd, reterr);
        if (strcmp(spec->runtime, "python3") == 0)
                return check_python(dir_fd, spec, reterr);
        if (strcmp(spec->runtime, "nodejs") == 0)
                return check_nodejs(dir_fd, spec, reterr);
        return 0;
}

/* Makes the staged tree readable by the sandbox user and durable before it is renamed into
 * place, so a committed row never names a half-written directory after a crash. syncfs is one
 * call for up to 10000 files; deploys are rare. */
static int seal_staging(Registry *r, const char *name)
{
        _cleanup_close_ int fd =
            openat(r->code_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0 || fchmod(fd, 0755) < 0 || syncfs(fd) < 0)
                return negative_errno();
        return 0;
}

/* Makes sure code/<sha> holds the extracted bundle and the handler file. *ret_new tells
 * whether this call created it (so a failed commit can remove it again). */
static int code_store_add(Registry *r, const char *sha, const void *bundle, size_t len,
                          const FunctionSpec *spec, bool *ret_new, FnError *reterr)
{
        _cleanup_free_ char *staging = NULL;
        const char *name;
        struct stat st;
        int k;

        if (fstatat(r->code_fd, sha, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                if (!S_ISDIR(st.st_mode))
                        return fn_error_set(reterr, -EIO, "code store entry %s is damaged", sha);
                *ret_new = false;
                return check_handler(r, sha, spec, reterr);
        }
        if (errno != ENOENT)
                return fn_error_set(reterr, negative_errno(), "cannot look up code %s", sha);

        if (asprintf(&staging, "%s/" STAGING_PREFIX "XXXXXX", r->code_path) < 0)
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        if (!mkdtemp(staging))
                return fn_error_set(reterr, negative_errno(), "cannot create a staging directory");
        name = strrchr(staging, '/') + 1;

        k = bundle_extract(bundle, len, staging, &bundle_default_limits, NULL, reterr);
        if (k >= 0)
                k = check_handler(r, name, spec, reterr);
        if (k >= 0) {
                k = seal_staging(r, name);
                if (k < 0)
                        (void)fn_error_set(reterr, k, "cannot sync the extracted code");
        }
        if (k >= 0 && renameat(r->code_fd, name, r->code_fd, sha) < 0)
                k = fn_error_set(reterr, negative_errno(), "cannot move the code into place");
        if (k < 0) {
                (void)rm_rf_at(r->code_fd, name);
                return k;
        }
        (void)fsync(r->code_fd);
        *ret_new = true;
        return 0;
}

/* ---- rows -------------------------------------------------------------------------------- */

static int env_to_json(const FunctionSpec *spec, char **ret, FnError *reterr)
{
        json_t *obj = json_object();
        char *s = NULL;
        int k = 0;

        if (!obj)
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        for (size_t i = 0; i < spec->n_env && k >= 0; i++) {
                const FunctionEnv *e = &spec->env[i];

                if (!e->key || !e->value || !*e->key || strlen(e->key) > FUNCTION_ENV_KEY_MAX ||
                    strlen(e->value) > FUNCTION_ENV_VALUE_MAX)
                        k = fn_error_set(reterr, -EINVAL, "env entry %zu is empty or too long", i);
                else if (json_object_get(obj, e->key))
                        k = fn_error_set(reterr, -EINVAL, "env key '%s' appears twice", e->key);
                else if (json_object_set_new(obj, e->key, json_string(e->value)) < 0)
                        k = fn_error_set(reterr, -EINVAL, "env entry %zu is not valid UTF-8", i);
        }
        if (k >= 0) {
                s = json_dumps(obj, JSON_COMPACT);
                if (!s)
                        k = fn_error_set(reterr, -ENOMEM, "out of memory");
        }
        json_decref(obj);
        if (k < 0)
                return k;
        *ret = s;
        return 0;
}

static int env_from_json(const char *text, FunctionSpec *spec)
{
        json_t *obj = json_loads(text, JSON_REJECT_DUPLICATES, NULL), *v;
        const char *key;
        int k = 0;

        if (!json_is_object(obj)) {
                json_decref(obj);
                return -EIO;
        }
        spec->env = calloc(MAX(json_object_size(obj), 1), sizeof(FunctionEnv));
        if (!spec->env)
                k = -ENOMEM;
        json_object_foreach (obj, key, v) {
                FunctionEnv *e;

                if (k < 0)
                        break;
                if (!json_is_string(v)) {
                        k = -EIO;
                        break;
                }
                e = &spec->env[spec->n_env];
                e->key = strdup(key);
                e->value = strdup(json_string_value(v));
                spec->n_env++;
                if (!e->key || !e->value)
                        k = -ENOMEM;
        }
        json_decref(obj);
        return k;
}

static int copy_column(sqlite3_stmt *s, int col, char *dst, size_t size)
{
        const char *v = (const char *)sqlite3_column_text(s, col);

        if (!v || strlen(v) >= size)
                return -EIO;
        strcpy(dst, v);
        return 0;
}

/* Builds a Function from a row of FUNCTION_COLUMNS. */
static int function_from_row(Registry *r, sqlite3_stmt *s, Function **ret)
{
        _cleanup_(function_freep) Function *f = calloc(1, sizeof(Function));
        const char *env;
        int k;

        if (!f)
                return -ENOMEM;
        if (copy_column(s, 0, f->spec.name, sizeof(f->spec.name)) < 0 ||
            copy_column(s, 1, f->spec.runtime, sizeof(f->spec.runtime)) < 0 ||
            copy_column(s, 2, f->spec.handler, sizeof(f->spec.handler)) < 0 ||
            copy_column(s, 6, f->code_sha256, sizeof(f->code_sha256)) < 0)
                return -EIO;
        f->spec.memory_mb = (uint32_t)sqlite3_column_int64(s, 3);
        f->spec.timeout_ms = (uint32_t)sqlite3_column_int64(s, 4);
        f->code_size = (uint64_t)sqlite3_column_int64(s, 7);
        f->version = (uint64_t)sqlite3_column_int64(s, 8);
        f->created_usec = (usec_t)sqlite3_column_int64(s, 9);
        f->updated_usec = (usec_t)sqlite3_column_int64(s, 10);
        f->spec.keep_alive_ms = (uint32_t)sqlite3_column_int64(s, 11);
        f->spec.max_concurrency = (uint32_t)sqlite3_column_int64(s, 12);
        f->spec.min_instances = (uint32_t)sqlite3_column_int64(s, 13);
        env = (const char *)sqlite3_column_text(s, 5);
        k = env_from_json(env ?: "", &f->spec);
        if (k < 0)
                return k;
        if ((size_t)snprintf(f->code_dir, sizeof(f->code_dir), "%s/%s", r->code_path,
                             f->code_sha256) >= sizeof(f->code_dir))
                return -ENAMETOOLONG;
        *ret = TAKE_PTR(f);
        return 0;
}

int registry_get(Registry *r, const char *name, Function **ret)
{
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int rc;

        if (!r || !name || !ret)
                return -EINVAL;
        s = stmt(r, STMT_GET);
        (void)sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return sqlite_errno(rc);
        return function_from_row(r, s, ret);
}

int registry_list(Registry *r, Function ***ret, size_t *ret_n)
{
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        Function **list = NULL;
        size_t n = 0, cap = 0;
        int rc, k = 0;

        if (!r || !ret || !ret_n)
                return -EINVAL;
        s = stmt(r, STMT_LIST);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                if (n == cap) {
                        Function **nl = reallocarray(list, cap ? cap * 2 : 16, sizeof(*list));
                        if (!nl) {
                                k = -ENOMEM;
                                break;
                        }
                        list = nl;
                        cap = cap ? cap * 2 : 16;
                }
                k = function_from_row(r, s, &list[n]);
                if (k < 0)
                        break;
                n++;
        }
        if (k >= 0 && rc != SQLITE_DONE)
                k = sqlite_errno(rc);
        if (k >= 0 && !list) {
                list = calloc(1, sizeof(*list)); /* an empty list is still a list */
                if (!list)
                        k = -ENOMEM;
        }
        if (k < 0) {
                function_list_free(list, n);
                return k;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

static int validate_spec(const FunctionSpec *spec, FnError *reterr)
{
        if (strnlen(spec->name, sizeof(spec->name)) == sizeof(spec->name) ||
            !name_is_valid(spec->name))
                return fn_error_set(reterr, -EINVAL, "invalid function name");
        if (strnlen(spec->runtime, sizeof(spec->runtime)) == sizeof(spec->runtime) ||
            !*spec->runtime)
                return fn_error_set(reterr, -EINVAL, "invalid runtime");
        if (strnlen(spec->handler, sizeof(spec->handler)) == sizeof(spec->handler) ||
            !*spec->handler)
                return fn_error_set(reterr, -EINVAL, "invalid handler");
        if (spec->memory_mb < FUNCTION_MEMORY_MIN_MB || spec->memory_mb > FUNCTION_MEMORY_MAX_MB)
                return fn_error_set(reterr, -EINVAL, "memory_mb must be between %d and %d",
                                    FUNCTION_MEMORY_MIN_MB, FUNCTION_MEMORY_MAX_MB);
        if (spec->timeout_ms < FUNCTION_TIMEOUT_MIN_MS ||
            spec->timeout_ms > FUNCTION_TIMEOUT_MAX_MS)
                return fn_error_set(reterr, -EINVAL, "timeout_ms must be between %d and %d",
                                    FUNCTION_TIMEOUT_MIN_MS, FUNCTION_TIMEOUT_MAX_MS);
        if (spec->n_env > FUNCTION_ENV_MAX || (spec->n_env > 0 && !spec->env))
                return fn_error_set(reterr, -EINVAL, "more than %d env variables",
                                    FUNCTION_ENV_MAX);
        return 0;
}

/* Writes the row in one transaction. On success *ret_old_sha is the code the function had
 * before ("" if it is new). */
static int store_row(Registry *r, const FunctionSpec *spec, const char *env_json, const char *sha,
                     size_t len, char ret_old_sha[SHA256_HEX_LEN + 1])
{
        char old[SHA256_HEX_LEN + 1] = "";
        int k, rc;

        k = tx_begin(r);
        if (k < 0)
                return k;
        {
                _cleanup_stmt_ sqlite3_stmt *s = stmt(r, STMT_GET);

                (void)sqlite3_bind_text(s, 1, spec->name, -1, SQLITE_STATIC);
                rc = sqlite3_step(s);
                if (rc == SQLITE_ROW)
                        k = copy_column(s, 6, old, sizeof(old));
                else if (rc != SQLITE_DONE)
                        k = sqlite_errno(rc);
        }
        if (k >= 0) {
                _cleanup_stmt_ sqlite3_stmt *s = stmt(r, *old ? STMT_UPDATE : STMT_INSERT);

                (void)sqlite3_bind_text(s, 1, spec->name, -1, SQLITE_STATIC);
                (void)sqlite3_bind_text(s, 2, spec->runtime, -1, SQLITE_STATIC);
                (void)sqlite3_bind_text(s, 3, spec->handler, -1, SQLITE_STATIC);
                (void)sqlite3_bind_int64(s, 4, spec->memory_mb);
                (void)sqlite3_bind_int64(s, 5, spec->timeout_ms);
                (void)sqlite3_bind_text(s, 6, env_json, -1, SQLITE_STATIC);
                (void)sqlite3_bind_text(s, 7, sha, -1, SQLITE_STATIC);
                (void)sqlite3_bind_int64(s, 8, (sqlite3_int64)len);
                (void)sqlite3_bind_int64(s, 9, (sqlite3_int64)now_realtime_usec());
                (void)sqlite3_bind_int64(s, 10, spec->keep_alive_ms);
                (void)sqlite3_bind_int64(s, 11, spec->max_concurrency);
                (void)sqlite3_bind_int64(s, 12, spec->min_instances);
                rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        k = sqlite_errno(rc);
        }
        k = tx_end(r, k);
        if (k < 0)
                return k;
        strcpy(ret_old_sha, old);
        return 0;
}

int registry_put(Registry *r, const FunctionSpec *spec, const void *bundle, size_t len,
                 bool *ret_created, Function **ret, FnError *reterr)
{
        _cleanup_free_ char *env_json = NULL;
        char sha[SHA256_HEX_LEN + 1], old[SHA256_HEX_LEN + 1];
        bool extracted = false;
        int k;

        if (!r || !spec)
                return fn_error_set(reterr, -EINVAL, "no function");
        k = validate_spec(spec, reterr);
        if (k < 0)
                return k;
        if (!bundle || len == 0)
                return fn_error_set(reterr, -EINVAL, "bundle is empty");
        k = env_to_json(spec, &env_json, reterr);
        if (k < 0)
                return k;
        if (sha256_hex(bundle, len, sha) < 0)
                return fn_error_set(reterr, -EIO, "cannot hash the bundle");

        k = code_store_add(r, sha, bundle, len, spec, &extracted, reterr);
        if (k < 0)
                return k;
        k = store_row(r, spec, env_json, sha, len, old);
        if (k < 0) {
                log_debug_errno(k, "Failed to store function '%s': %s", spec->name,
                                sqlite3_errmsg(r->db));
                if (extracted)
                        code_gc(r, sha);
                return fn_error_set(reterr, k, "cannot store function '%s'", spec->name);
        }
        if (*old && strcmp(old, sha) != 0)
                code_gc(r, old);

        if (ret) {
                k = registry_get(r, spec->name, ret);
                if (k < 0)
                        return fn_error_set(reterr, k, "cannot read back function '%s'",
                                            spec->name);
        }
        if (ret_created)
                *ret_created = !*old;
        return 0;
}

int registry_delete(Registry *r, const char *name)
{
        char sha[SHA256_HEX_LEN + 1] = "";
        int k, rc;

        if (!r || !name)
                return -EINVAL;
        k = tx_begin(r);
        if (k < 0)
                return k;
        {
                _cleanup_stmt_ sqlite3_stmt *s = stmt(r, STMT_GET);

                (void)sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
                rc = sqlite3_step(s);
                if (rc == SQLITE_DONE)
                        k = -ENOENT;
                else if (rc != SQLITE_ROW)
                        k = sqlite_errno(rc);
                else
                        k = copy_column(s, 6, sha, sizeof(sha));
        }
        if (k >= 0) {
                _cleanup_stmt_ sqlite3_stmt *s = stmt(r, STMT_DELETE);

                (void)sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
                rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        k = sqlite_errno(rc);
        }
        k = tx_end(r, k);
        if (k < 0)
                return k;
        code_gc(r, sha);
        return 0;
}

/* ---- tokens ------------------------------------------------------------------------------ */

/* Reads the token from an existing file, or creates the file with a new random token. */
static int admin_token_load(const char *path, char **ret, FnError *reterr)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int k;

        k = read_file_at(AT_FDCWD, path, TOKEN_FILE_MAX, &buf, &len);
        if (k == -ENOENT) {
                unsigned char raw[TOKEN_BYTES];

                buf = malloc((size_t)2 * TOKEN_BYTES + 1);
                if (!buf)
                        return fn_error_set(reterr, -ENOMEM, "out of memory");
                k = random_bytes(raw, sizeof(raw));
                if (k < 0)
                        return fn_error_set(reterr, k, "cannot get random bytes");
                hex_encode(raw, sizeof(raw), buf);
                explicit_bzero(raw, sizeof(raw));
                k = write_file_atomic(path, buf, (size_t)2 * TOKEN_BYTES, 0600);
                if (k < 0)
                        return fn_error_set(reterr, k, "cannot write token file '%s': %s", path,
                                            strerror(-k));
                *ret = TAKE_PTR(buf);
                return 0;
        }
        if (k < 0)
                return fn_error_set(reterr, k, "cannot read token file '%s': %s", path,
                                    strerror(-k));
        /* An operator may have written the file with an editor: drop the trailing newline. */
        while (len > 0 && strchr(" \t\r\n", buf[len - 1]))
                buf[--len] = '\0';
        if (len == 0 || len > TOKEN_MAX || strlen(buf) != len || strpbrk(buf, " \t\r\n"))
                return fn_error_set(reterr, -EINVAL, "token file '%s' holds no valid token", path);
        *ret = TAKE_PTR(buf);
        return 0;
}

int registry_ensure_admin_token(Registry *r, const char *token_path, FnError *reterr)
{
        _cleanup_free_ char *token = NULL;
        char sha[SHA256_HEX_LEN + 1];
        int k, rc;

        if (!r || !token_path)
                return fn_error_set(reterr, -EINVAL, "no token path");
        explicit_bzero(r->last_token, sizeof(r->last_token)); /* the admin token may change */
        k = admin_token_load(token_path, &token, reterr);
        if (k < 0)
                return k;
        k = sha256_hex(token, strlen(token), sha);
        explicit_bzero(token, strlen(token));
        if (k < 0)
                return fn_error_set(reterr, k, "cannot hash the token");

        /* The file is the truth: a token replaced in the file stops working at the next start. */
        k = tx_begin(r);
        if (k >= 0) {
                _cleanup_stmt_ sqlite3_stmt *s = stmt(r, STMT_TOKEN_DROP_OTHERS);

                (void)sqlite3_bind_text(s, 1, ADMIN_TENANT, -1, SQLITE_STATIC);
                (void)sqlite3_bind_text(s, 2, sha, -1, SQLITE_STATIC);
                rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        k = sqlite_errno(rc);
        }
        if (k >= 0) {
                _cleanup_stmt_ sqlite3_stmt *s = stmt(r, STMT_TOKEN_PUT);

                (void)sqlite3_bind_text(s, 1, sha, -1, SQLITE_STATIC);
                (void)sqlite3_bind_text(s, 2, ADMIN_TENANT, -1, SQLITE_STATIC);
                (void)sqlite3_bind_int64(s, 3, (sqlite3_int64)now_realtime_usec());
                rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        k = sqlite_errno(rc);
        }
        k = tx_end(r, k);
        if (k < 0)
                return fn_error_set(reterr, k, "cannot store the admin token");
        return 0;
}

int registry_check_token(Registry *r, const char *token)
{
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        char sha[SHA256_HEX_LEN + 1];
        const char *stored;

        if (!r || !token || !*token || strnlen(token, TOKEN_MAX + 1) > TOKEN_MAX)
                return -EACCES;
        /* The last token that matched is remembered: every API request checks one, and this
         * spares the hash and the database on the hot path. The comparison is constant-time
         * over the remembered length (tokens have one length, 64 hex digits, so it tells
         * nothing). A rotated token (a new file and a restart, or
         * registry_ensure_admin_token) clears it. */
        if (r->last_token[0] && strlen(token) == strlen(r->last_token) &&
            CRYPTO_memcmp(r->last_token, token, strlen(token)) == 0)
                return 0;
        if (sha256_hex(token, strlen(token), sha) < 0)
                return -EACCES;
        /* Only digests are stored. The index lookup can at most tell an attacker how the
         * SHA-256 of their guess sorts against stored digests, which says nothing about a
         * token; the final comparison is constant-time anyway. */
        s = stmt(r, STMT_TOKEN_GET);
        (void)sqlite3_bind_text(s, 1, sha, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_ROW)
                return -EACCES;
        stored = (const char *)sqlite3_column_text(s, 0);
        if (!stored || strlen(stored) != SHA256_HEX_LEN ||
            CRYPTO_memcmp(stored, sha, SHA256_HEX_LEN) != 0)
                return -EACCES;
        (void)snprintf(r->last_token, sizeof(r->last_token), "%s", token);
        return 0;
}

/* ---- open and close ---------------------------------------------------------------------- */

static int db_user_version(Registry *r, int *ret)
{
        sqlite3_stmt *s = NULL;
        int rc;

        rc = sqlite3_prepare_v2(r->db, "PRAGMA user_version", -1, &s, NULL);
        if (rc == SQLITE_OK) {
                rc = sqlite3_step(s);
                if (rc == SQLITE_ROW)
                        *ret = sqlite3_column_int(s, 0);
        }
        (void)sqlite3_finalize(s);
        return rc == SQLITE_ROW ? 0 : sqlite_errno(rc);
}

static int db_migrate(Registry *r, FnError *reterr)
{
        int version = 0, k;

        k = db_user_version(r, &version);
        if (k < 0)
                return fn_error_set(reterr, k, "cannot read the database schema version");
        if (version < 0 || (size_t)version > ELEMENTSOF(migrations))
                return fn_error_set(reterr, -EPROTO,
                                    "database schema version %d is newer than this fnboxd (%zu)",
                                    version, ELEMENTSOF(migrations));
        for (size_t v = (size_t)version; v < ELEMENTSOF(migrations); v++) {
                char bump[64];
                int rc;

                /* Fixed strings only: nothing here comes from a client. */
                (void)snprintf(bump, sizeof(bump), "PRAGMA user_version = %zu", v + 1);
                rc = sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
                if (rc == SQLITE_OK)
                        rc = sqlite3_exec(r->db, migrations[v], NULL, NULL, NULL);
                if (rc == SQLITE_OK)
                        rc = sqlite3_exec(r->db, bump, NULL, NULL, NULL);
                if (rc == SQLITE_OK)
                        rc = sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
                if (rc != SQLITE_OK) {
                        k = fn_error_set(reterr, sqlite_errno(rc),
                                         "cannot migrate the database to version %zu: %s", v + 1,
                                         sqlite3_errmsg(r->db));
                        if (!sqlite3_get_autocommit(r->db))
                                (void)sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
                        return k;
                }
        }
        return 0;
}

static int db_open(Registry *r, FnError *reterr)
{
        _cleanup_free_ char *path = NULL;
        sqlite3_stmt *s = NULL;
        int fd;
        bool wal;
        int rc, k;

        if (asprintf(&path, "%s/fnbox.db", r->state_dir) < 0)
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        /* Create it 0600 ourselves: SQLite would use 0644, and its -wal/-shm copy the mode. */
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return fn_error_set(reterr, negative_errno(), "cannot create '%s': %m", path);
        (void)close(fd);

        rc = sqlite3_open_v2(path, &r->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                 SQLITE_OPEN_NOFOLLOW,
                             NULL);
        if (rc != SQLITE_OK)
                return fn_error_set(reterr, sqlite_errno(rc), "cannot open '%s': %s", path,
                                    r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
        (void)sqlite3_extended_result_codes(r->db, 1);
        (void)sqlite3_busy_timeout(r->db, 5000);
        (void)sqlite3_db_config(r->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);

        rc = sqlite3_prepare_v2(r->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
        wal = rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW &&
              strcmp((const char *)sqlite3_column_text(s, 0) ?: "", "wal") == 0;
        (void)sqlite3_finalize(s);
        if (!wal)
                return fn_error_set(reterr, -EIO, "cannot switch '%s' to WAL mode", path);
        /* FULL: every write here is a deploy, a delete or a token, all rare, and an
         * acknowledged deploy must survive a power cut. */
        rc = sqlite3_exec(r->db,
                          "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
                          "PRAGMA trusted_schema = OFF;",
                          NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return fn_error_set(reterr, sqlite_errno(rc), "cannot configure '%s'", path);
        k = db_migrate(r, reterr);
        if (k < 0)
                return k;
        for (int i = 0; i < _STMT_MAX; i++) {
                rc = sqlite3_prepare_v3(r->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                        &r->stmt[i], NULL);
                if (rc != SQLITE_OK)
                        return fn_error_set(reterr, sqlite_errno(rc), "cannot prepare SQL: %s",
                                            sqlite3_errmsg(r->db));
        }
        return 0;
}

int registry_open(const char *state_dir, Registry **ret, FnError *reterr)
{
        _cleanup_(registry_freep) Registry *r = NULL;
        int k;

        if (!state_dir || !*state_dir || !ret)
                return fn_error_set(reterr, -EINVAL, "no state directory");
        r = calloc(1, sizeof(Registry));
        if (!r)
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        r->code_fd = -EBADF;

        k = mkdir_p(state_dir, 0700);
        if (k < 0)
                return fn_error_set(reterr, k, "cannot create state directory '%s': %s", state_dir,
                                    strerror(-k));
        r->state_dir = realpath(state_dir, NULL);
        if (!r->state_dir)
                return fn_error_set(reterr, negative_errno(), "cannot resolve '%s': %m", state_dir);
        if (asprintf(&r->code_path, "%s/code", r->state_dir) < 0) {
                r->code_path = NULL;
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        }
        /* code/<64 hex>/<entry path> must fit in PATH_MAX. */
        if (strlen(r->code_path) + 1 + SHA256_HEX_LEN + 1 + bundle_default_limits.max_path >=
            PATH_MAX)
                return fn_error_set(reterr, -ENAMETOOLONG, "state directory path is too long");
        if (mkdir(r->code_path, 0700) < 0 && errno != EEXIST)
                return fn_error_set(reterr, negative_errno(), "cannot create '%s': %m",
                                    r->code_path);
        r->code_fd = open(r->code_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (r->code_fd < 0)
                return fn_error_set(reterr, negative_errno(), "cannot open '%s': %m", r->code_path);
        k = db_open(r, reterr);
        if (k < 0)
                return k;
        k = code_store_sweep(r);
        if (k < 0)
                return fn_error_set(reterr, k, "cannot clean up '%s'", r->code_path);
        *ret = TAKE_PTR(r);
        return 0;
}

Registry *registry_free(Registry *r)
{
        if (!r)
                return NULL;
        for (int i = 0; i < _STMT_MAX; i++)
                (void)sqlite3_finalize(r->stmt[i]);
        if (r->db)
                (void)sqlite3_close(r->db);
        r->code_fd = safe_close(r->code_fd);
        free(r->code_path);
        free(r->state_dir);
        explicit_bzero(r->last_token, sizeof(r->last_token));
        free(r);
        return NULL;
}

void registry_set_code_in_use(Registry *r, bool (*in_use)(const char *sha, void *userdata),
                              void *userdata)
{
        r->code_in_use = in_use;
        r->code_in_use_userdata = userdata;
}

int registry_collect_code(Registry *r)
{
        return code_store_sweep(r);
}
