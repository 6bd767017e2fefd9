/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util.h"

/* ---- base64 ---- */

static void test_base64_rfc4648_vectors(void **state)
{
        /* RFC 4648 section 10. */
        static const struct {
                const char *plain, *encoded;
        } v[] = {
            {"", ""},
            {"f", "Zg=="},
            {"fo", "Zm8="},
            {"foo", "Zm9v"},
            {"foob", "Zm9vYg=="},
            {"fooba", "Zm9vYmE="},
            {"foobar", "Zm9vYmFy"},
        };

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_free_ char *enc = base64_encode(v[i].plain, strlen(v[i].plain));
                _cleanup_free_ void *dec = NULL;
                size_t len = SIZE_MAX;

                assert_non_null(enc);
                assert_string_equal(enc, v[i].encoded);
                assert_int_equal(base64_decode(v[i].encoded, strlen(v[i].encoded), &dec, &len), 0);
                assert_int_equal(len, strlen(v[i].plain));
                assert_memory_equal(dec, v[i].plain, len);
        }
}

static void test_base64_round_trip(void **state)
{
        unsigned char buf[64];

        /* Every length 0..64, so each of the three tail cases (no pad, "=", "==") occurs many
         * times, with bytes covering the whole 0..255 range including 0x00 and 0xff. */
        for (size_t n = 0; n <= sizeof(buf); n++) {
                _cleanup_free_ char *enc = NULL;
                _cleanup_free_ void *dec = NULL;
                size_t len = SIZE_MAX;

                for (size_t i = 0; i < n; i++)
                        buf[i] = (unsigned char)(i * 97 + n * 31 + (i == 0 ? 0xff : 0));
                enc = base64_encode(buf, n);
                assert_non_null(enc);
                assert_int_equal(strlen(enc), 4 * ((n + 2) / 3));
                assert_int_equal(base64_decode(enc, strlen(enc), &dec, &len), 0);
                assert_int_equal(len, n);
                if (n > 0)
                        assert_memory_equal(dec, buf, n);
        }
}

static void test_base64_decode_line_breaks(void **state)
{
        /* CR/LF are the only whitespace the contract allows (wrapped `base64` output). */
        _cleanup_free_ void *dec = NULL;
        size_t len = 0;

        assert_int_equal(base64_decode("Zm9v\r\nYmFy\n", 11, &dec, &len), 0);
        assert_int_equal(len, 6);
        assert_memory_equal(dec, "foobar", 6);
}

static void test_base64_decode_rejects(void **state)
{
        static const char *const bad[] = {
            "Zm9v!A==",   /* bad character */
            "Zm9 v",      /* space */
            "Zm9v\tYmFy", /* tab */
            "Zm-_",       /* base64url alphabet */
            "Zg==Zg==",   /* padding in the middle */
            "Zm=9",       /* data after padding */
            "Z=m9",       /* padding too early */
            "Zm9",        /* length not a multiple of 4 */
            "Zm9vY",      /* length not a multiple of 4 */
            "Z",          /* a lone sextet */
            "Z===",       /* three padding characters */
            "====",       /* only padding */
            "Zg=",        /* short padding */
            "Zm9vYmFy=",  /* padding after a full quantum */
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                void *dec = (void *)0x1;
                size_t len = 12345;

                assert_int_equal(base64_decode(bad[i], strlen(bad[i]), &dec, &len), -EINVAL);
                /* Outputs are written only on success. */
                assert_ptr_equal(dec, (void *)0x1);
                assert_int_equal(len, 12345);
        }
}

static void test_base64_decode_embedded_nul(void **state)
{
        /* len, not strlen, bounds the input: a NUL inside is a bad character. */
        void *dec = NULL;
        size_t len = 0;

        assert_int_equal(base64_decode("Zm9v\0Zm9v", 9, &dec, &len), -EINVAL);
        assert_null(dec);
}

/* ---- hex ---- */

static void test_hex_encode(void **state)
{
        static const unsigned char bytes[] = {0x00, 0xff, 0x10, 0xab, 0x09, 0xa0};
        char out[2 * sizeof(bytes) + 1];

        memset(out, 'x', sizeof(out));
        hex_encode(bytes, 0, out);
        assert_string_equal(out, "");
        hex_encode(bytes, sizeof(bytes), out);
        assert_string_equal(out, "00ff10ab09a0");
        hex_encode("abc", 3, out);
        assert_string_equal(out, "616263");
}

/* ---- names ---- */

static void test_name_is_valid(void **state)
{
        char name[80];

        assert_true(name_is_valid("echo"));
        assert_true(name_is_valid("a"));
        assert_true(name_is_valid("My_Func-2"));
        assert_true(name_is_valid("0"));

        memset(name, 'a', 64);
        name[64] = '\0';
        assert_true(name_is_valid(name));
        name[64] = 'a';
        name[65] = '\0';
        assert_false(name_is_valid(name));

        assert_false(name_is_valid(""));
        assert_false(name_is_valid("a/b"));
        assert_false(name_is_valid("/"));
        assert_false(name_is_valid("."));
        assert_false(name_is_valid(".."));
        assert_false(name_is_valid("a.b"));
        assert_false(name_is_valid("a b"));
        assert_false(name_is_valid(" a"));
        assert_false(name_is_valid("a\n"));
        assert_false(name_is_valid("caf\xc3\xa9")); /* é in UTF-8 */
        assert_false(name_is_valid("\xff"));
        assert_false(name_is_valid("a:b"));
}

/* ---- parse_uint64 ---- */

static void test_parse_uint64(void **state)
{
        static const char *const bad[] = {
            "", "-1", "+1", " 1", "1 ", "1\n", "12a", "0x10", "1.0", "1e3", "-0",
        };
        uint64_t v = 42;

        assert_int_equal(parse_uint64("0", &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(parse_uint64("007", &v), 0);
        assert_int_equal(v, 7);
        assert_int_equal(parse_uint64("18446744073709551615", &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(parse_uint64("18446744073709551614", &v), 0);
        assert_true(v == UINT64_MAX - 1);

        v = 42;
        assert_int_equal(parse_uint64("18446744073709551616", &v), -ERANGE);
        assert_int_equal(parse_uint64("18446744073709551620", &v), -ERANGE);
        assert_int_equal(parse_uint64("99999999999999999999", &v), -ERANGE);
        assert_int_equal(parse_uint64("184467440737095516150", &v), -ERANGE);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(parse_uint64(bad[i], &v), -EINVAL);
        assert_int_equal(parse_uint64(NULL, &v), -EINVAL);
        assert_int_equal(v, 42);
}

/* ---- filesystem helpers, each test in its own temp dir ---- */

typedef struct TmpDir {
        char path[PATH_MAX];
        int fd;
} TmpDir;

static int tmpdir_setup(void **state)
{
        TmpDir *t = calloc(1, sizeof(*t));

        if (!t)
                return -1;
        strcpy(t->path, "/tmp/test-util-XXXXXX");
        if (!mkdtemp(t->path)) {
                free(t);
                return -1;
        }
        t->fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (t->fd < 0) {
                free(t);
                return -1;
        }
        *state = t;
        return 0;
}

static int tmpdir_teardown(void **state)
{
        TmpDir *t = *state;
        char cmd[PATH_MAX + 16];
        int r;

        (void)close(t->fd);
        /* Not rm_rf_at(): cleanup must not depend on the code under test. */
        (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->path);
        r = system(cmd);
        free(t);
        return r == 0 ? 0 : -1;
}

static void path_join(char *out, const TmpDir *t, const char *rel)
{
        int n = snprintf(out, PATH_MAX, "%s/%s", t->path, rel);
        assert_true(n > 0 && n < PATH_MAX);
}

static void make_file(const TmpDir *t, const char *rel, const char *content)
{
        _cleanup_close_ int fd = openat(t->fd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(loop_write(fd, content, strlen(content)), 0);
}

static bool exists_at(int dir_fd, const char *rel)
{
        struct stat st;
        return fstatat(dir_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void test_mkdir_p(void **state)
{
        TmpDir *t = *state;
        char p[PATH_MAX];
        struct stat st;
        mode_t old = umask(0);

        path_join(p, t, "a/b/c/d");
        assert_int_equal(mkdir_p(p, 0750), 0);
        assert_int_equal(fstatat(t->fd, "a/b/c/d", &st, 0), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0750);
        assert_int_equal(fstatat(t->fd, "a", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0750);

        /* Existing directories are fine, trailing and double slashes too. */
        assert_int_equal(mkdir_p(p, 0750), 0);
        path_join(p, t, "a//b/e/");
        assert_int_equal(mkdir_p(p, 0700), 0);
        assert_int_equal(fstatat(t->fd, "a/b/e", &st, 0), 0);
        assert_true(S_ISDIR(st.st_mode));
        (void)umask(old);

        /* A regular file in the way is an error, in the middle and at the end. */
        make_file(t, "file", "x");
        path_join(p, t, "file/sub");
        assert_int_equal(mkdir_p(p, 0755), -ENOTDIR);
        path_join(p, t, "file");
        assert_int_equal(mkdir_p(p, 0755), -ENOTDIR);

        assert_int_equal(mkdir_p("", 0755), -EINVAL);
}

static void test_rm_rf_at(void **state)
{
        TmpDir *t = *state;
        char p[PATH_MAX];

        /* root/ holds nested dirs and files plus symlinks to a directory and a file outside
         * root/; rm_rf_at must remove the links, never what they point to. */
        path_join(p, t, "root/a/b/c");
        assert_int_equal(mkdir_p(p, 0755), 0);
        path_join(p, t, "root/empty");
        assert_int_equal(mkdir_p(p, 0755), 0);
        path_join(p, t, "outside/inner");
        assert_int_equal(mkdir_p(p, 0755), 0);
        make_file(t, "root/top", "1");
        make_file(t, "root/a/b/c/deep", "2");
        make_file(t, "root/a/mid", "3");
        make_file(t, "outside/keep", "precious");
        make_file(t, "outside/inner/keep2", "precious");
        path_join(p, t, "outside");
        assert_int_equal(symlinkat(p, t->fd, "root/a/dirlink"), 0);
        assert_int_equal(symlinkat("../../outside", t->fd, "root/a/rellink"), 0);
        path_join(p, t, "outside/keep");
        assert_int_equal(symlinkat(p, t->fd, "root/filelink"), 0);

        assert_int_equal(rm_rf_at(t->fd, "root"), 0);
        assert_false(exists_at(t->fd, "root"));
        assert_true(exists_at(t->fd, "outside/keep"));
        assert_true(exists_at(t->fd, "outside/inner/keep2"));

        /* A missing name is already removed. */
        assert_int_equal(rm_rf_at(t->fd, "root"), 0);

        /* A symlink given by name is removed itself, its target kept. */
        assert_int_equal(symlinkat("outside", t->fd, "toplink"), 0);
        assert_int_equal(rm_rf_at(t->fd, "toplink"), 0);
        assert_false(exists_at(t->fd, "toplink"));
        assert_true(exists_at(t->fd, "outside/inner/keep2"));

        /* A plain file. */
        make_file(t, "plain", "x");
        assert_int_equal(rm_rf_at(t->fd, "plain"), 0);
        assert_false(exists_at(t->fd, "plain"));
}

static void test_rm_rf_at_mount(void **state)
{
        TmpDir *t = *state;
        char p[PATH_MAX];
        int r;

        path_join(p, t, "root/mnt");
        assert_int_equal(mkdir_p(p, 0755), 0);
        if (mount("fnbox-test", p, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k") < 0) {
                /* Needs CAP_SYS_ADMIN; the rest of this file does not. */
                skip();
                return;
        }
        make_file(t, "root/mnt/on-other-fs", "kept");
        make_file(t, "root/sibling", "gone");

        r = rm_rf_at(t->fd, "root");
        assert_true(exists_at(t->fd, "root/mnt/on-other-fs"));
        (void)umount2(p, MNT_DETACH);
        assert_int_equal(r, -EXDEV);
        assert_false(exists_at(t->fd, "root/sibling"));
}

static void test_read_file_at(void **state)
{
        TmpDir *t = *state;
        char big[10001];
        char *buf = (char *)0x1;
        size_t len = 777;

        memset(big, 'q', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        big[100] = '\0';
        make_file(t, "f100", big);
        big[100] = 'q';
        make_file(t, "f10000", big);
        make_file(t, "empty", "");

        /* Exactly max bytes is allowed; one more is -EFBIG. */
        assert_int_equal(read_file_at(t->fd, "f100", 100, &buf, &len), 0);
        assert_int_equal(len, 100);
        assert_int_equal(buf[100], '\0');
        assert_int_equal(strspn(buf, "q"), 100);
        free(buf);
        buf = (char *)0x1;
        len = 777;
        assert_int_equal(read_file_at(t->fd, "f100", 99, &buf, &len), -EFBIG);
        assert_int_equal(read_file_at(t->fd, "f100", 10, &buf, &len), -EFBIG);
        assert_int_equal(read_file_at(t->fd, "f100", 0, &buf, &len), -EFBIG);
        assert_ptr_equal(buf, (char *)0x1);
        assert_int_equal(len, 777);

        /* Past the first internal buffer (4 KiB), at and around the limit. */
        assert_int_equal(read_file_at(t->fd, "f10000", 10000, &buf, &len), 0);
        assert_int_equal(len, 10000);
        assert_int_equal(strlen(buf), 10000);
        free(buf);
        assert_int_equal(read_file_at(t->fd, "f10000", 1 << 20, &buf, &len), 0);
        assert_int_equal(len, 10000);
        free(buf);
        buf = (char *)0x1;
        assert_int_equal(read_file_at(t->fd, "f10000", 9999, &buf, &len), -EFBIG);
        assert_int_equal(read_file_at(t->fd, "f10000", 4096, &buf, &len), -EFBIG);
        assert_ptr_equal(buf, (char *)0x1);

        assert_int_equal(read_file_at(t->fd, "empty", 0, &buf, &len), 0);
        assert_int_equal(len, 0);
        assert_string_equal(buf, "");
        free(buf);

        assert_int_equal(read_file_at(t->fd, "missing", 100, &buf, NULL), -ENOENT);
}

static void test_write_file_atomic(void **state)
{
        TmpDir *t = *state;
        char p[PATH_MAX];
        struct stat st;
        _cleanup_free_ char *buf = NULL;
        size_t len;
        mode_t old;

        path_join(p, t, "out");
        /* The mode is exact, whatever the umask. */
        old = umask(077);
        assert_int_equal(write_file_atomic(p, "hello world", 11, 0644), 0);
        (void)umask(old);
        assert_int_equal(stat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_int_equal(read_file_at(t->fd, "out", 100, &buf, &len), 0);
        assert_int_equal(len, 11);
        assert_memory_equal(buf, "hello world", 11);
        free(TAKE_PTR(buf));

        /* Replacing: shorter binary content, a new mode, and the old inode left intact (a
         * reader holding the old file never sees a half-written one). */
        assert_int_equal(linkat(t->fd, "out", t->fd, "old-link", 0), 0);
        assert_int_equal(write_file_atomic(p, "a\0b", 3, 0600), 0);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(read_file_at(t->fd, "out", 100, &buf, &len), 0);
        assert_int_equal(len, 3);
        assert_memory_equal(buf, "a\0b", 3);
        free(TAKE_PTR(buf));
        assert_int_equal(read_file_at(t->fd, "old-link", 100, &buf, &len), 0);
        assert_string_equal(buf, "hello world");
        assert_false(exists_at(t->fd, "out.tmp"));

        path_join(p, t, "no-such-dir/out");
        assert_int_equal(write_file_atomic(p, "x", 1, 0644), -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_base64_rfc4648_vectors),
            cmocka_unit_test(test_base64_round_trip),
            cmocka_unit_test(test_base64_decode_line_breaks),
            cmocka_unit_test(test_base64_decode_rejects),
            cmocka_unit_test(test_base64_decode_embedded_nul),
            cmocka_unit_test(test_hex_encode),
            cmocka_unit_test(test_name_is_valid),
            cmocka_unit_test(test_parse_uint64),
            cmocka_unit_test_setup_teardown(test_mkdir_p, tmpdir_setup, tmpdir_teardown),
            cmocka_unit_test_setup_teardown(test_rm_rf_at, tmpdir_setup, tmpdir_teardown),
            cmocka_unit_test_setup_teardown(test_rm_rf_at_mount, tmpdir_setup, tmpdir_teardown),
            cmocka_unit_test_setup_teardown(test_read_file_at, tmpdir_setup, tmpdir_teardown),
            cmocka_unit_test_setup_teardown(test_write_file_atomic, tmpdir_setup, tmpdir_teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
