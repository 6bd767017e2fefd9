/* SPDX-License-Identifier: Apache-2.0 */
/* The registry against a real SQLite database and code store in a temporary state dir. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "registry.h"
#include "util.h"

typedef struct Ent {
        const char *path;
        const char *data; /* NULL: a directory, or a symlink when link is set */
        const char *link;
        mode_t mode; /* 0: 0755 */
} Ent;

typedef struct Bundle {
        char *buf;
        size_t len;
} Bundle;

typedef struct Ctx {
        char tmp[64];
        char state[128];
        char real_state[PATH_MAX];
        Registry *reg;
} Ctx;

static Bundle build_zip(const Ent *ents, size_t n)
{
        struct archive *a = archive_write_new();
        Bundle b = {.buf = malloc(1 << 20)};

        assert_non_null(b.buf);
        assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
        assert_int_equal(archive_write_open_memory(a, b.buf, 1 << 20, &b.len), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, ents[i].path);
                if (ents[i].link) {
                        archive_entry_set_filetype(e, AE_IFLNK);
                        archive_entry_set_symlink(e, ents[i].link);
                } else if (!ents[i].data) {
                        archive_entry_set_filetype(e, AE_IFDIR);
                } else {
                        archive_entry_set_filetype(e, AE_IFREG);
                        archive_entry_set_size(e, (la_int64_t)strlen(ents[i].data));
                }
                archive_entry_set_perm(e, ents[i].mode                    ? ents[i].mode
                                          : ents[i].data || !ents[i].link ? 0755
                                                                          : 0777);
                assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
                if (ents[i].data)
                        assert_int_equal(archive_write_data(a, ents[i].data, strlen(ents[i].data)),
                                         (la_ssize_t)strlen(ents[i].data));
                archive_entry_free(e);
        }
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        return b;
}

static Bundle bundle_a(void)
{
        const Ent e[] = {{.path = "handler.so", .data = "version A"},
                         {.path = "lib/helper.txt", .data = "help"}};
        return build_zip(e, ELEMENTSOF(e));
}

static Bundle bundle_b(void)
{
        const Ent e[] = {{.path = "handler.so", .data = "version B"}};
        return build_zip(e, ELEMENTSOF(e));
}

static void bundle_done(Bundle *b)
{
        free(b->buf);
        b->buf = NULL;
}

static void sha256_of(const Bundle *b, char out[65])
{
        unsigned char md[32];
        unsigned int n = 0;

        assert_int_equal(EVP_Digest(b->buf, b->len, md, &n, EVP_sha256(), NULL), 1);
        hex_encode(md, n, out);
}

static void spec_init(FunctionSpec *s, const char *name, const char *handler)
{
        *s = (FunctionSpec){.memory_mb = 128, .timeout_ms = 3000};
        snprintf(s->name, sizeof(s->name), "%s", name);
        snprintf(s->runtime, sizeof(s->runtime), "native");
        snprintf(s->handler, sizeof(s->handler), "%s", handler);
}

static void spec_add_env(FunctionSpec *s, const char *k, const char *v)
{
        s->env = reallocarray(s->env, s->n_env + 1, sizeof(FunctionEnv));
        assert_non_null(s->env);
        s->env[s->n_env].key = strdup(k);
        s->env[s->n_env].value = strdup(v);
        s->n_env++;
}

static int put(Ctx *c, const FunctionSpec *s, const Bundle *b, bool *created, Function **f,
               FnError *err)
{
        *err = (FnError){0};
        return registry_put(c->reg, s, b->buf, b->len, created, f, err);
}

static Function *put_ok(Ctx *c, const char *name, const Bundle *b, bool want_created)
{
        FunctionSpec s;
        FnError err;
        Function *f = NULL;
        bool created = !want_created;
        int r;

        spec_init(&s, name, "handler.so");
        r = put(c, &s, b, &created, &f, &err);
        if (r < 0)
                fail_msg("put %s: %d %s", name, r, err.msg);
        assert_true(created == want_created);
        function_spec_done(&s);
        return f;
}

static bool path_exists(const char *p)
{
        struct stat st;
        return lstat(p, &st) == 0;
}

/* Names in state/code, sorted into one string "a,b,". */
static void code_entries(Ctx *c, char *out, size_t size)
{
        char p[256];
        struct dirent **list = NULL;
        int n;

        snprintf(p, sizeof(p), "%s/code", c->state);
        n = scandir(p, &list, NULL, alphasort);
        assert_true(n >= 0);
        out[0] = '\0';
        for (int i = 0; i < n; i++) {
                if (strcmp(list[i]->d_name, ".") != 0 && strcmp(list[i]->d_name, "..") != 0) {
                        strncat(out, list[i]->d_name, size - strlen(out) - 2);
                        strcat(out, ",");
                }
                free(list[i]);
        }
        free(list);
}

static void reopen(Ctx *c)
{
        FnError err = {0};

        c->reg = registry_free(c->reg);
        assert_int_equal(registry_open(c->state, &c->reg, &err), 0);
}

static int ctx_setup(void **state)
{
        Ctx *c = calloc(1, sizeof(Ctx));
        FnError err = {0};

        if (!c)
                return -1;
        strcpy(c->tmp, "/tmp/fnbox-test-registry-XXXXXX");
        assert_non_null(mkdtemp(c->tmp));
        snprintf(c->state, sizeof(c->state), "%s/state", c->tmp);
        assert_int_equal(registry_open(c->state, &c->reg, &err), 0);
        assert_non_null(realpath(c->state, c->real_state));
        *state = c;
        return 0;
}

static int ctx_teardown(void **state)
{
        Ctx *c = *state;

        registry_free(c->reg);
        assert_int_equal(rm_rf_at(AT_FDCWD, c->tmp), 0);
        free(c);
        return 0;
}

static void test_open_layout(void **state)
{
        Ctx *c = *state;
        char p[256];
        struct stat st;
        sqlite3 *db;
        sqlite3_stmt *s;

        assert_int_equal(stat(c->state, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        snprintf(p, sizeof(p), "%s/fnbox.db", c->state);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 0077, 0);

        /* WAL is a property of the file; the schema version is recorded for migrations. */
        assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
        sqlite3_finalize(s);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(s, 0), 2); /* every migration applied */
        sqlite3_finalize(s);
        sqlite3_close(db);
}

static void test_put_get_list_delete(void **state)
{
        Ctx *c = *state;
        Bundle a = bundle_a(), b = bundle_b();
        FunctionSpec s;
        Function *f = NULL, *g = NULL, **list = NULL;
        FnError err;
        bool created = false;
        char sha[65], dir[PATH_MAX + 128], *content = NULL;
        size_t n = 0, len = 0;
        struct stat st;

        spec_init(&s, "alpha", "handler.so:handle");
        s.memory_mb = 256;
        s.timeout_ms = 1500;
        spec_add_env(&s, "ZED", "last");
        spec_add_env(&s, "ALPHA", "first=1");
        assert_int_equal(put(c, &s, &a, &created, &f, &err), 0);
        assert_true(created);
        sha256_of(&a, sha);
        assert_string_equal(f->code_sha256, sha);
        assert_int_equal(f->code_size, a.len);
        assert_int_equal(f->version, 1);
        assert_true(f->created_usec > 0);
        assert_int_equal(f->created_usec, f->updated_usec);
        snprintf(dir, sizeof(dir), "%s/code/%s", c->real_state, sha);
        assert_string_equal(f->code_dir, dir);
        assert_int_equal(stat(dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);
        snprintf(dir, sizeof(dir), "%s/handler.so", f->code_dir);
        assert_int_equal(read_file_at(AT_FDCWD, dir, 4096, &content, &len), 0);
        assert_string_equal(content, "version A");
        free(content);

        assert_int_equal(registry_get(c->reg, "alpha", &g), 0);
        assert_string_equal(g->spec.name, "alpha");
        assert_string_equal(g->spec.runtime, "native");
        assert_string_equal(g->spec.handler, "handler.so:handle");
        assert_int_equal(g->spec.memory_mb, 256);
        assert_int_equal(g->spec.timeout_ms, 1500);
        assert_int_equal(g->spec.n_env, 2); /* order as deployed */
        assert_string_equal(g->spec.env[0].key, "ZED");
        assert_string_equal(g->spec.env[0].value, "last");
        assert_string_equal(g->spec.env[1].key, "ALPHA");
        assert_string_equal(g->spec.env[1].value, "first=1");
        assert_string_equal(g->code_dir, f->code_dir);
        f = function_free(f);
        g = function_free(g);
        function_spec_done(&s);

        f = put_ok(c, "beta", &b, true);
        f = function_free(f);
        assert_int_equal(registry_list(c->reg, &list, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(list[0]->spec.name, "alpha");
        assert_string_equal(list[1]->spec.name, "beta");
        function_list_free(list, n);

        assert_int_equal(registry_delete(c->reg, "alpha"), 0);
        assert_int_equal(registry_get(c->reg, "alpha", &g), -ENOENT);
        assert_int_equal(registry_delete(c->reg, "alpha"), -ENOENT);
        assert_int_equal(registry_get(c->reg, "nope", &g), -ENOENT);
        snprintf(dir, sizeof(dir), "%s/code/%s", c->real_state, sha);
        assert_false(path_exists(dir)); /* alpha's code is used by no one now */
        assert_int_equal(registry_list(c->reg, &list, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0]->spec.name, "beta");
        function_list_free(list, n);

        assert_int_equal(registry_delete(c->reg, "beta"), 0);
        assert_int_equal(registry_list(c->reg, &list, &n), 0);
        assert_int_equal(n, 0);
        function_list_free(list, n);
        bundle_done(&a);
        bundle_done(&b);
}

static void test_update(void **state)
{
        Ctx *c = *state;
        Bundle a = bundle_a(), b = bundle_b();
        Function *v1 = put_ok(c, "fn", &a, true), *v2 = NULL, *v3 = NULL;
        char sha_b[65], old_dir[PATH_MAX + 128], listing[512], want[80];

        snprintf(old_dir, sizeof(old_dir), "%s", v1->code_dir);
        v2 = put_ok(c, "fn", &b, false);
        sha256_of(&b, sha_b);
        assert_int_equal(v2->version, 2);
        assert_string_equal(v2->code_sha256, sha_b);
        assert_int_equal(v2->code_size, b.len);
        assert_int_equal(v2->created_usec, v1->created_usec);
        assert_true(v2->updated_usec >= v1->updated_usec);
        assert_false(path_exists(old_dir));
        assert_true(path_exists(v2->code_dir));
        code_entries(c, listing, sizeof(listing));
        snprintf(want, sizeof(want), "%s,", sha_b);
        assert_string_equal(listing, want);

        /* Same bundle again: still a new version, same code. */
        v3 = put_ok(c, "fn", &b, false);
        assert_int_equal(v3->version, 3);
        assert_string_equal(v3->code_dir, v2->code_dir);
        assert_true(path_exists(v3->code_dir));
        function_free(v1);
        function_free(v2);
        function_free(v3);
        bundle_done(&a);
        bundle_done(&b);
}

static void test_same_bundle_shares_code(void **state)
{
        Ctx *c = *state;
        Bundle a = bundle_a();
        Function *f1 = put_ok(c, "one", &a, true), *f2 = NULL;
        struct stat st1, st2;
        char listing[512];

        assert_int_equal(stat(f1->code_dir, &st1), 0);
        f2 = put_ok(c, "two", &a, true);
        assert_string_equal(f1->code_dir, f2->code_dir);
        assert_int_equal(stat(f2->code_dir, &st2), 0);
        assert_int_equal(st1.st_ino, st2.st_ino); /* not extracted again */
        code_entries(c, listing, sizeof(listing));
        assert_int_equal(strlen(listing), 65); /* one directory */

        assert_int_equal(registry_delete(c->reg, "one"), 0);
        assert_true(path_exists(f2->code_dir)); /* still used by "two" */
        assert_int_equal(registry_delete(c->reg, "two"), 0);
        assert_false(path_exists(f2->code_dir));
        function_free(f1);
        function_free(f2);
        bundle_done(&a);
}

static void expect_put_fails_rt(Ctx *c, const char *name, const char *runtime, const char *handler,
                                const Bundle *b, const char *want)
{
        FunctionSpec s;
        FnError err;
        Function *f = NULL;
        bool created = false;
        int r;

        spec_init(&s, name, handler);
        snprintf(s.runtime, sizeof(s.runtime), "%s", runtime);
        r = put(c, &s, b, &created, &f, &err);
        if (r != -EINVAL || !strstr(err.msg, want))
                fail_msg("%s %s: want -EINVAL '%s', got %d '%s'", runtime, handler, want, r,
                         err.msg);
        assert_null(f);
        function_spec_done(&s);
}

static void expect_put_fails(Ctx *c, const char *name, const char *handler, const Bundle *b,
                             const char *want)
{
        expect_put_fails_rt(c, name, "native", handler, b, want);
}

static void expect_put_ok_rt(Ctx *c, const char *name, const char *runtime, const char *handler,
                             const Bundle *b)
{
        FunctionSpec s;
        FnError err;
        Function *f = NULL;
        int r;

        spec_init(&s, name, handler);
        snprintf(s.runtime, sizeof(s.runtime), "%s", runtime);
        r = put(c, &s, b, NULL, &f, &err);
        if (r < 0)
                fail_msg("%s %s: want success, got %d '%s'", runtime, handler, r, err.msg);
        assert_string_equal(f->spec.runtime, runtime);
        assert_string_equal(f->spec.handler, handler);
        function_free(f);
        function_spec_done(&s);
}

static void test_bad_bundle_keeps_old_version(void **state)
{
        const Ent slip[] = {{.path = "handler.so", .data = "evil"},
                            {.path = "../escape", .data = "x"}};
        Ctx *c = *state;
        Bundle a = bundle_a(), bad = build_zip(slip, ELEMENTSOF(slip));
        Bundle junk = {.buf = strdup("definitely not an archive"), .len = 25};
        Function *v1 = put_ok(c, "fn", &a, true), *now = NULL;
        char listing[512], want[80], content_path[PATH_MAX + 128], *content = NULL;
        size_t len;

        expect_put_fails(c, "fn", "handler.so", &bad, "entry '../escape': path escapes the bundle");
        expect_put_fails(c, "fn", "handler.so", &junk, "not a zip or tar.gz bundle");

        assert_int_equal(registry_get(c->reg, "fn", &now), 0);
        assert_int_equal(now->version, 1);
        assert_string_equal(now->code_sha256, v1->code_sha256);
        snprintf(content_path, sizeof(content_path), "%s/handler.so", now->code_dir);
        assert_int_equal(read_file_at(AT_FDCWD, content_path, 4096, &content, &len), 0);
        assert_string_equal(content, "version A");
        free(content);
        /* Only the old code: no staging directory, no half-extracted new one, nothing outside. */
        code_entries(c, listing, sizeof(listing));
        snprintf(want, sizeof(want), "%s,", v1->code_sha256);
        assert_string_equal(listing, want);
        snprintf(content_path, sizeof(content_path), "%s/escape", c->state);
        assert_false(path_exists(content_path));
        snprintf(content_path, sizeof(content_path), "%s/code/escape", c->state);
        assert_false(path_exists(content_path));
        function_free(v1);
        function_free(now);
        bundle_done(&a);
        bundle_done(&bad);
        bundle_done(&junk);
}

static void test_handler_checks(void **state)
{
        const Ent odd[] = {{.path = "real.so", .data = "x"},
                           {.path = "link.so", .link = "real.so"},
                           {.path = "dir.so/", .data = NULL},
                           {.path = "lib/deep.so", .data = "y"}};
        Ctx *c = *state;
        Bundle a = bundle_a(), o = build_zip(odd, ELEMENTSOF(odd));
        Function *f = NULL, *g = NULL;
        char listing[512];

        expect_put_fails(c, "fn", "missing.so", &a,
                         "handler file 'missing.so' not found in the bundle");
        expect_put_fails(c, "fn", "missing.so:sym", &a,
                         "handler file 'missing.so' not found in the bundle");
        assert_int_equal(registry_get(c->reg, "fn", &g), -ENOENT);
        code_entries(c, listing, sizeof(listing));
        assert_string_equal(listing, ""); /* the extraction was thrown away */

        expect_put_fails(c, "fn", "link.so", &o, "handler file 'link.so' is a symlink");
        expect_put_fails(c, "fn", "dir.so", &o, "handler file 'dir.so' is not a regular file");
        expect_put_fails(c, "fn", "../handler.so", &o, "handler file '../handler.so' escapes");
        expect_put_fails(c, "fn", "/etc/passwd", &o, "handler file '/etc/passwd' escapes");

        /* A bad handler on code another function already uses leaves that code alone. */
        f = put_ok(c, "user", &a, true);
        expect_put_fails(c, "fn", "lib", &a, "handler file 'lib' is not a regular file");
        assert_true(path_exists(f->code_dir));

        /* Nested handler path and a symbol are fine. */
        {
                FunctionSpec s;
                FnError err;
                spec_init(&s, "nested", "lib/deep.so:entry");
                assert_int_equal(put(c, &s, &o, NULL, &g, &err), 0);
                assert_string_equal(g->spec.handler, "lib/deep.so:entry");
                function_spec_done(&s);
        }
        function_free(f);
        function_free(g);
        bundle_done(&a);
        bundle_done(&o);
}

/* Each process runtime needs its entry point in the bundle: the deploy fails with a 400 that
 * says what is missing, instead of every invocation failing later. */
static void test_runtime_bundle_checks(void **state)
{
        const Ent tutorial[] = {{.path = "bootstrap", .data = "#!/bin/sh\n"},
                                {.path = "function.sh", .data = "function handler () { :; }"}};
        const Ent not_exec[] = {{.path = "bootstrap", .data = "#!/bin/sh\n", .mode = 0644},
                                {.path = "function.sh", .data = "x"}};
        const Ent nested[] = {{.path = "bin/bootstrap", .data = "#!/bin/sh\n"}};
        const Ent dir[] = {{.path = "bootstrap/", .data = NULL}, {.path = "x", .data = "x"}};
        const Ent link[] = {{.path = "real", .data = "#!/bin/sh\n"},
                            {.path = "bootstrap", .link = "real"}};
        const Ent python[] = {{.path = "app.py", .data = "def handler(e, c): return e"},
                              {.path = "pkg/sub/mod.py", .data = "x"},
                              {.path = "lib/__init__.py", .data = ""},
                              {.path = "dirmod.py/", .data = NULL}};
        const Ent node[] = {{.path = "index.js", .data = "exports.handler = async e => e"},
                            {.path = "esm.mjs", .data = "export const handler = 1"},
                            {.path = "legacy.cjs", .data = "x"},
                            {.path = "src/app.js", .data = "x"}};
        Ctx *c = *state;
        Bundle t = build_zip(tutorial, ELEMENTSOF(tutorial));
        Bundle ne = build_zip(not_exec, ELEMENTSOF(not_exec));
        Bundle n = build_zip(nested, ELEMENTSOF(nested));
        Bundle d = build_zip(dir, ELEMENTSOF(dir));
        Bundle l = build_zip(link, ELEMENTSOF(link));
        Bundle py = build_zip(python, ELEMENTSOF(python));
        Bundle js = build_zip(node, ELEMENTSOF(node));
        static const char no_bootstrap[] = "bundle has no executable 'bootstrap' at its root";

        expect_put_ok_rt(c, "bash", "provided", "function.handler", &t);
        expect_put_ok_rt(c, "bash2", "provided.al2023", "anything", &t);
        expect_put_fails_rt(c, "f", "provided", "function.handler", &ne, no_bootstrap);
        expect_put_fails_rt(c, "f", "provided.al2", "function.handler", &n, no_bootstrap);
        expect_put_fails_rt(c, "f", "provided", "function.handler", &d, no_bootstrap);
        expect_put_fails_rt(c, "f", "provided", "function.handler", &py, no_bootstrap);
        expect_put_fails_rt(c, "f", "provided", "x", &l, "'bootstrap' is a symlink");

        expect_put_ok_rt(c, "py1", "python3", "app.handler", &py);
        expect_put_ok_rt(c, "py2", "python3", "pkg/sub/mod.handler", &py);
        expect_put_ok_rt(c, "py3", "python3", "pkg.sub.mod.handler", &py);
        expect_put_ok_rt(c, "py4", "python3", "lib.handler", &py); /* a package */
        expect_put_fails_rt(c, "f", "python3", "main.handler", &py,
                            "handler 'main.handler': the bundle has no module file 'main.py'");
        expect_put_fails_rt(c, "f", "python3", "pkg.other.handler", &py,
                            "the bundle has no module file 'pkg/other.py'");
        expect_put_fails_rt(c, "f", "python3", "dirmod.handler", &py, "no module file 'dirmod.py'");
        expect_put_fails_rt(c, "f", "python3", "index.handler", &js, "no module file");

        expect_put_ok_rt(c, "js1", "nodejs", "index.handler", &js);
        expect_put_ok_rt(c, "js2", "nodejs", "esm.handler", &js);
        expect_put_ok_rt(c, "js3", "nodejs", "legacy.handler", &js);
        expect_put_ok_rt(c, "js4", "nodejs", "src/app.handler", &js);
        expect_put_ok_rt(c, "js5", "nodejs", "index.nested.fn", &js);
        expect_put_fails_rt(c, "f", "nodejs", "app.handler", &js,
                            "handler 'app.handler': the bundle has no 'app.js', 'app.mjs' or "
                            "'app.cjs'");
        expect_put_fails_rt(c, "f", "nodejs", "app.handler", &py, "no 'app.js'");

        bundle_done(&t);
        bundle_done(&ne);
        bundle_done(&n);
        bundle_done(&d);
        bundle_done(&l);
        bundle_done(&py);
        bundle_done(&js);
}

static void test_invalid_spec(void **state)
{
        Ctx *c = *state;
        Bundle a = bundle_a();
        FunctionSpec s;
        FnError err;
        Function *f = NULL;

        spec_init(&s, "bad/name", "handler.so");
        assert_int_equal(put(c, &s, &a, NULL, &f, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "invalid function name"));
        spec_init(&s, "ok", "handler.so");
        s.memory_mb = 1;
        assert_int_equal(put(c, &s, &a, NULL, &f, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "memory_mb"));
        spec_init(&s, "ok", "handler.so");
        spec_add_env(&s, "K", "1");
        spec_add_env(&s, "K", "2");
        assert_int_equal(put(c, &s, &a, NULL, &f, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "env key 'K' appears twice"));
        function_spec_done(&s);
        assert_null(f);
        assert_int_equal(registry_get(c->reg, "ok", &f), -ENOENT);
        bundle_done(&a);
}

static void test_persistence(void **state)
{
        Ctx *c = *state;
        Bundle a = bundle_a(), b = bundle_b();
        Function *f1 = put_ok(c, "keep", &a, true), *f2 = put_ok(c, "keep", &b, false), *g = NULL;
        FunctionSpec s;
        FnError err;

        spec_init(&s, "env", "handler.so");
        spec_add_env(&s, "A", "1");
        assert_int_equal(put(c, &s, &a, NULL, NULL, &err), 0);
        function_spec_done(&s);

        reopen(c);
        assert_int_equal(registry_get(c->reg, "keep", &g), 0);
        assert_int_equal(g->version, 2);
        assert_string_equal(g->code_sha256, f2->code_sha256);
        assert_string_equal(g->code_dir, f2->code_dir);
        assert_int_equal(g->created_usec, f1->created_usec);
        assert_true(path_exists(g->code_dir));
        g = function_free(g);
        assert_int_equal(registry_get(c->reg, "env", &g), 0);
        assert_int_equal(g->spec.n_env, 1);
        assert_string_equal(g->spec.env[0].key, "A");
        assert_string_equal(g->spec.env[0].value, "1");
        assert_true(path_exists(g->code_dir)); /* the sweep at open kept used code */
        function_free(g);
        function_free(f1);
        function_free(f2);
        bundle_done(&a);
        bundle_done(&b);
}

static void test_leftovers_removed_at_open(void **state)
{
        Ctx *c = *state;
        Bundle a = bundle_a();
        Function *f = put_ok(c, "used", &a, true);
        char p[PATH_MAX], listing[512], want[80];

        snprintf(p, sizeof(p), "%s/code/.staging-AbC123", c->state);
        assert_int_equal(mkdir(p, 0700), 0);
        strcat(p, "/half-written.so");
        assert_int_equal(write_file_atomic(p, "x", 1, 0644), 0);
        snprintf(p, sizeof(p), "%s/code/%064d", c->state, 0); /* orphan: no row names it */
        assert_int_equal(mkdir(p, 0755), 0);

        reopen(c);
        code_entries(c, listing, sizeof(listing));
        snprintf(want, sizeof(want), "%s,", f->code_sha256);
        assert_string_equal(listing, want);
        function_free(f);
        bundle_done(&a);
}

static void read_token(const char *path, char *out, size_t size)
{
        char *buf = NULL;
        size_t len = 0;

        assert_int_equal(read_file_at(AT_FDCWD, path, 4096, &buf, &len), 0);
        assert_true(len < size);
        memcpy(out, buf, len + 1);
        free(buf);
}

/* The raw token must not be stored anywhere in the database files. */
static void assert_not_in_db(Ctx *c, const char *token)
{
        static const char *const suffixes[] = {"", "-wal"};

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                char p[256], *buf = NULL;
                size_t len = 0;

                snprintf(p, sizeof(p), "%s/fnbox.db%s", c->state, suffixes[i]);
                if (read_file_at(AT_FDCWD, p, 64 << 20, &buf, &len) < 0)
                        continue;
                assert_null(memmem(buf, len, token, strlen(token)));
                free(buf);
        }
}

static void test_tokens(void **state)
{
        Ctx *c = *state;
        char path[256], token[128], again[128], wrong[128], prefix[128], longer[160];
        struct stat st;
        FnError err = {0};

        snprintf(path, sizeof(path), "%s/admin.token", c->state);
        assert_int_equal(registry_check_token(c->reg, "anything"), -EACCES); /* none yet */
        assert_int_equal(registry_ensure_admin_token(c->reg, path, &err), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        read_token(path, token, sizeof(token));
        assert_int_equal(strlen(token), 64);
        assert_int_equal(strspn(token, "0123456789abcdef"), 64);

        assert_int_equal(registry_check_token(c->reg, token), 0);
        snprintf(wrong, sizeof(wrong), "%s", token);
        wrong[10] = wrong[10] == 'a' ? 'b' : 'a';
        assert_int_equal(registry_check_token(c->reg, wrong), -EACCES);
        assert_int_equal(registry_check_token(c->reg, ""), -EACCES);
        assert_int_equal(registry_check_token(c->reg, NULL), -EACCES);
        snprintf(prefix, sizeof(prefix), "%.63s", token);
        assert_int_equal(registry_check_token(c->reg, prefix), -EACCES);
        snprintf(longer, sizeof(longer), "%sx", token);
        assert_int_equal(registry_check_token(c->reg, longer), -EACCES);
        assert_not_in_db(c, token);

        /* A second start keeps the file and the token. */
        assert_int_equal(registry_ensure_admin_token(c->reg, path, &err), 0);
        read_token(path, again, sizeof(again));
        assert_string_equal(again, token);
        reopen(c);
        assert_int_equal(registry_check_token(c->reg, token), 0);

        /* The operator replaces the file (editor newline included): the old token dies. */
        assert_int_equal(write_file_atomic(path, "my-own-token\n", 13, 0600), 0);
        assert_int_equal(registry_ensure_admin_token(c->reg, path, &err), 0);
        assert_int_equal(registry_check_token(c->reg, "my-own-token"), 0);
        assert_int_equal(registry_check_token(c->reg, token), -EACCES);

        assert_int_equal(write_file_atomic(path, "\n", 1, 0600), 0);
        assert_int_equal(registry_ensure_admin_token(c->reg, path, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "holds no valid token"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, ctx_setup, ctx_teardown)
            T(test_open_layout),
            T(test_put_get_list_delete),
            T(test_update),
            T(test_same_bundle_shares_code),
            T(test_bad_bundle_keeps_old_version),
            T(test_handler_checks),
            T(test_runtime_bundle_checks),
            T(test_invalid_spec),
            T(test_persistence),
            T(test_leftovers_removed_at_open),
            T(test_tokens),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
