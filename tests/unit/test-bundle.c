/* SPDX-License-Identifier: Apache-2.0 */
/* Hostile-bundle extraction: archives are built in memory with libarchive's writer, extracted
 * into PARENT/dest, and every rejection is checked for its message and for leaving nothing
 * behind: once the caller removes dest, PARENT (the sentinel) must be empty again. */
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
#include <sys/sysmacros.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "bundle.h"
#include "util.h"

#define OUT_MAX (16u << 20)

typedef enum Fmt {
        FMT_ZIP,
        FMT_TGZ,
} Fmt;

typedef struct Ent {
        const char *path;
        mode_t type; /* AE_IF*; 0 means a regular file */
        mode_t perm;
        const char *data;  /* regular file contents, or NULL */
        size_t zeros;      /* or this many zero bytes */
        const char *link;  /* symlink target */
        const char *hard;  /* hard link target */
        bool unknown_size; /* zip: no size in the local header (data descriptor) */
} Ent;

typedef struct Box {
        char parent[64];
        char dest[128];
        int parent_fd;
        void *buf;
        size_t len;
} Box;

static void write_entry(struct archive *a, const Ent *en)
{
        struct archive_entry *e = archive_entry_new();
        size_t size = en->data ? strlen(en->data) : en->zeros;

        archive_entry_set_pathname(e, en->path);
        archive_entry_set_filetype(e, en->type ? en->type : AE_IFREG);
        archive_entry_set_perm(e, en->perm ? en->perm : 0644);
        if (en->link)
                archive_entry_set_symlink(e, en->link);
        if (en->hard)
                archive_entry_set_hardlink(e, en->hard);
        if (en->type == AE_IFCHR)
                archive_entry_set_rdev(e, makedev(1, 3));
        if (!en->type || en->type == AE_IFREG) {
                if (en->unknown_size)
                        archive_entry_unset_size(e);
                else
                        archive_entry_set_size(e, (la_int64_t)size);
        }
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (en->data)
                assert_int_equal(archive_write_data(a, en->data, size), (la_ssize_t)size);
        if (en->zeros) {
                static const char zero[65536];
                for (size_t done = 0; done < en->zeros;) {
                        size_t n = MIN(sizeof(zero), en->zeros - done);
                        assert_int_equal(archive_write_data(a, zero, n), (la_ssize_t)n);
                        done += n;
                }
        }
        archive_entry_free(e);
}

/* Builds a zip (deflate) or a pax tar.gz holding ents into box->buf. */
static void build(Box *box, Fmt fmt, const Ent *ents, size_t n)
{
        struct archive *a = archive_write_new();
        size_t used = 0;

        free(box->buf);
        box->buf = malloc(OUT_MAX);
        assert_non_null(box->buf);
        if (fmt == FMT_ZIP) {
                assert_int_equal(archive_write_set_format_zip(a), ARCHIVE_OK);
                assert_int_equal(archive_write_zip_set_compression_deflate(a), ARCHIVE_OK);
        } else {
                assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
                assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
        }
        assert_int_equal(archive_write_open_memory(a, box->buf, OUT_MAX, &used), ARCHIVE_OK);
        for (size_t i = 0; i < n; i++)
                write_entry(a, &ents[i]);
        assert_int_equal(archive_write_close(a), ARCHIVE_OK);
        archive_write_free(a);
        box->len = used;
}

static size_t count_dir(const char *path)
{
        DIR *d = opendir(path);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

/* Sum of st_size below dir_fd (files only). */
static uint64_t tree_bytes(int dir_fd)
{
        DIR *d = fdopendir(fcntl(dir_fd, F_DUPFD_CLOEXEC, 3));
        struct dirent *de;
        uint64_t sum = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                struct stat st;
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                assert_int_equal(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
                if (S_ISREG(st.st_mode)) {
                        sum += (uint64_t)st.st_size;
                } else if (S_ISDIR(st.st_mode)) {
                        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        assert_true(fd >= 0);
                        sum += tree_bytes(fd);
                        close(fd);
                }
        }
        closedir(d);
        return sum;
}

static int box_setup(void **state)
{
        Box *box = calloc(1, sizeof(Box));

        if (!box)
                return -1;
        strcpy(box->parent, "/tmp/fnbox-test-bundle-XXXXXX");
        assert_non_null(mkdtemp(box->parent));
        snprintf(box->dest, sizeof(box->dest), "%s/dest", box->parent);
        assert_int_equal(mkdir(box->dest, 0700), 0);
        box->parent_fd = open(box->parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(box->parent_fd >= 0);
        *state = box;
        return 0;
}

static int box_teardown(void **state)
{
        Box *box = *state;

        close(box->parent_fd);
        assert_int_equal(rm_rf_at(AT_FDCWD, box->parent), 0);
        free(box->buf);
        free(box);
        return 0;
}

static int extract(Box *box, const BundleLimits *lim, BundleStats *stats, FnError *err)
{
        *err = (FnError){0};
        return bundle_extract(box->buf, box->len, box->dest, lim ? lim : &bundle_default_limits,
                              stats, err);
}

/* The extraction fails with -EINVAL and a message containing want; after the caller removes
 * dest nothing is left in the sentinel parent. */
static void expect_reject(Box *box, const BundleLimits *lim, const char *want)
{
        FnError err;
        int r = extract(box, lim, NULL, &err);

        if (r != -EINVAL || !strstr(err.msg, want))
                fail_msg("want -EINVAL with '%s', got %d '%s'", want, r, err.msg);
        assert_int_equal(err.code, -EINVAL);
        assert_int_equal(rm_rf_at(box->parent_fd, "dest"), 0);
        assert_int_equal(count_dir(box->parent), 0);
        assert_int_equal(mkdir(box->dest, 0700), 0);
}

static void reject_both(Box *box, const Ent *ents, size_t n, const BundleLimits *lim,
                        const char *want)
{
        build(box, FMT_ZIP, ents, n);
        expect_reject(box, lim, want);
        build(box, FMT_TGZ, ents, n);
        expect_reject(box, lim, want);
}

static mode_t mode_of(const Box *box, const char *rel)
{
        char p[PATH_MAX];
        struct stat st;

        snprintf(p, sizeof(p), "%s/%s", box->dest, rel);
        assert_int_equal(lstat(p, &st), 0);
        return st.st_mode;
}

static void assert_content(const Box *box, const char *rel, const char *want)
{
        char p[PATH_MAX], *got = NULL;
        size_t len = 0;

        snprintf(p, sizeof(p), "%s/%s", box->dest, rel);
        assert_int_equal(read_file_at(AT_FDCWD, p, 1 << 20, &got, &len), 0);
        assert_string_equal(got, want);
        free(got);
}

static void check_good(Box *box, Fmt fmt)
{
        const Ent ents[] = {
            {.path = "handler.so", .perm = 0755, .data = "\177ELF handler"},
            {.path = "lib/data.txt", .perm = 0600, .data = "data"},
            {.path = "sticky", .perm = 01755, .data = "s"},
            {.path = "plain", .perm = 0666, .data = "g"},
            {.path = "conf/", .type = AE_IFDIR, .perm = 0700},
            {.path = "conf/a.json", .perm = 0644, .data = "{}"},
            {.path = "link.so", .type = AE_IFLNK, .perm = 0777, .link = "handler.so"},
            {.path = "lib/up", .type = AE_IFLNK, .perm = 0777, .link = "../conf/./a.json"},
            {.path = "lib/dot", .type = AE_IFLNK, .perm = 0777, .link = ".."},
        };
        BundleStats stats = {0};
        FnError err;
        char link[PATH_MAX], target[PATH_MAX];
        ssize_t k;
        mode_t old = umask(0077); /* modes must not depend on the daemon's umask */

        build(box, fmt, ents, ELEMENTSOF(ents));
        assert_int_equal(extract(box, NULL, &stats, &err), 0);
        umask(old);
        assert_int_equal(stats.entries, ELEMENTSOF(ents));
        assert_int_equal(stats.bytes, strlen("\177ELF handler") + 4 + 1 + 1 + 2);

        assert_content(box, "handler.so", "\177ELF handler");
        assert_content(box, "lib/data.txt", "data");
        assert_content(box, "conf/a.json", "{}");
        assert_content(box, "lib/up", "{}"); /* through the in-bundle symlink */
        assert_int_equal(mode_of(box, "handler.so"), S_IFREG | 0755);
        assert_int_equal(mode_of(box, "lib/data.txt"), S_IFREG | 0644);
        assert_int_equal(mode_of(box, "sticky"), S_IFREG | 0755); /* sticky dropped */
        assert_int_equal(mode_of(box, "plain"), S_IFREG | 0644);  /* no x bit: 0644 */
        assert_int_equal(mode_of(box, "conf"), S_IFDIR | 0755);
        assert_int_equal(mode_of(box, "lib"), S_IFDIR | 0755); /* created implicitly */
        assert_int_equal(mode_of(box, "."), S_IFDIR | 0700);   /* the caller's, untouched */
        assert_true(S_ISLNK(mode_of(box, "link.so")));
        snprintf(link, sizeof(link), "%s/link.so", box->dest);
        k = readlink(link, target, sizeof(target) - 1);
        assert_true(k > 0);
        target[k] = '\0';
        assert_string_equal(target, "handler.so");
        /* Nothing outside dest. */
        assert_int_equal(count_dir(box->parent), 1);
}

static void test_good_zip(void **state)
{
        check_good(*state, FMT_ZIP);
}

static void test_good_tgz(void **state)
{
        check_good(*state, FMT_TGZ);
}

static void test_dot_slash_root(void **state)
{
        /* What `tar czf b.tgz -C dir .` writes. */
        const Ent ents[] = {
            {.path = "./", .type = AE_IFDIR, .perm = 0755},
            {.path = "./handler.so", .perm = 0755, .data = "x"},
            {.path = "./sub/", .type = AE_IFDIR, .perm = 0755},
            {.path = "./sub/f", .data = "y"},
        };
        Box *box = *state;
        FnError err;

        build(box, FMT_TGZ, ents, ELEMENTSOF(ents));
        assert_int_equal(extract(box, NULL, NULL, &err), 0);
        assert_content(box, "handler.so", "x");
        assert_content(box, "sub/f", "y");
}

static void test_zip_slip(void **state)
{
        const Ent ents[] = {{.path = "ok", .data = "1"}, {.path = "../evil", .data = "x"}};

        reject_both(*state, ents, ELEMENTSOF(ents), NULL,
                    "entry '../evil': path escapes the bundle");
}

static void test_nested_dotdot(void **state)
{
        const Ent ents[] = {{.path = "a/../../x", .data = "x"}};

        reject_both(*state, ents, ELEMENTSOF(ents), NULL,
                    "entry 'a/../../x': path escapes the bundle");
}

static void test_absolute(void **state)
{
        char abs[64], want[128];
        Ent ents[] = {{.path = abs, .data = "x"}};

        snprintf(abs, sizeof(abs), "/tmp/fnbox-test-abs-%d", (int)getpid());
        snprintf(want, sizeof(want), "entry '%s': absolute path", abs);
        reject_both(*state, ents, ELEMENTSOF(ents), NULL, want);
        assert_int_equal(access(abs, F_OK), -1);
}

static void test_symlink_out_absolute(void **state)
{
        const Ent ents[] = {{.path = "etc", .type = AE_IFLNK, .link = "/etc"},
                            {.path = "etc/passwd", .data = "root::0:0::/:/bin/sh"}};

        reject_both(*state, ents, ELEMENTSOF(ents), NULL,
                    "entry 'etc': symlink target '/etc' escapes the bundle");
}

static void test_symlink_out_relative(void **state)
{
        const Ent up2[] = {{.path = "out", .type = AE_IFLNK, .link = "../.."}};
        const Ent deep[] = {{.path = "a/b/l", .type = AE_IFLNK, .link = "../../../x"}};
        const Ent late[] = {{.path = "d/s", .type = AE_IFLNK, .link = ".."},
                            {.path = "t", .type = AE_IFLNK, .link = "d/s/.."}};

        reject_both(*state, up2, ELEMENTSOF(up2), NULL,
                    "entry 'out': symlink target '../..' escapes the bundle");
        reject_both(*state, deep, ELEMENTSOF(deep), NULL,
                    "entry 'a/b/l': symlink target '../../../x' escapes the bundle");
        /* d/s points at the root, so d/s/.. would be the parent of the root. */
        reject_both(*state, late, ELEMENTSOF(late), NULL,
                    "entry 't': symlink target 'd/s/..' has '..' after a name");
}

static void test_write_through_symlink(void **state)
{
        const Ent dir_link[] = {{.path = "sub/", .type = AE_IFDIR},
                                {.path = "l", .type = AE_IFLNK, .link = "sub"},
                                {.path = "l/x", .data = "x"}};
        const Ent file_link[] = {{.path = "target.txt", .data = "t"},
                                 {.path = "l", .type = AE_IFLNK, .link = "target.txt"},
                                 {.path = "l", .data = "overwrite"}};

        reject_both(*state, dir_link, ELEMENTSOF(dir_link), NULL,
                    "entry 'l/x': path goes through the symlink 'l'");
        reject_both(*state, file_link, ELEMENTSOF(file_link), NULL, "entry 'l': duplicate entry");
}

static void test_hard_link(void **state)
{
        const Ent ents[] = {{.path = "shadow", .type = AE_IFREG, .hard = "/etc/shadow"}};
        Box *box = *state;

        build(box, FMT_TGZ, ents, ELEMENTSOF(ents));
        expect_reject(box, NULL, "entry 'shadow': hard links are not allowed");
}

static void test_char_device(void **state)
{
        const Ent ents[] = {{.path = "null", .type = AE_IFCHR, .perm = 0666}};
        Box *box = *state;

        build(box, FMT_TGZ, ents, ELEMENTSOF(ents));
        expect_reject(box, NULL, "entry 'null': device nodes are not allowed");
}

static void test_fifo(void **state)
{
        const Ent ents[] = {{.path = "fifo", .type = AE_IFIFO, .perm = 0644}};
        Box *box = *state;

        build(box, FMT_TGZ, ents, ELEMENTSOF(ents));
        expect_reject(box, NULL, "entry 'fifo': FIFOs are not allowed");
}

static void test_setuid(void **state)
{
        const Ent suid[] = {{.path = "suid", .perm = 04755, .data = "s"}};
        const Ent sgid[] = {{.path = "dir/sgid", .perm = 02644, .data = "g"}};
        Box *box = *state;

        build(box, FMT_ZIP, suid, ELEMENTSOF(suid));
        expect_reject(box, NULL, "entry 'suid': setuid and setgid bits are not allowed");
        build(box, FMT_TGZ, sgid, ELEMENTSOF(sgid));
        expect_reject(box, NULL, "entry 'dir/sgid': setuid and setgid bits are not allowed");
}

/* Cuts a zip before its central directory, so the streaming reader sees entries whose size is
 * only known at their end. */
static void cut_central_directory(Box *box)
{
        const char *p = box->buf;

        for (size_t i = 0; i + 4 <= box->len; i++)
                if (memcmp(p + i, "PK\1\2", 4) == 0) {
                        box->len = i;
                        return;
                }
        fail_msg("no central directory");
}

static void test_zip_bomb(void **state)
{
        const BundleLimits lim = {
            .max_bytes = 1 << 20, .max_entries = 100, .max_path = 100, .max_depth = 8};
        const Ent big[] = {{.path = "bomb.bin", .zeros = 8u << 20}};
        const Ent many[] = {{.path = "a", .zeros = 600 << 10}, {.path = "b", .zeros = 600 << 10}};
        const Ent stream[] = {{.path = "bomb.bin", .zeros = 8u << 20, .unknown_size = true}};
        Box *box = *state;
        FnError err;
        uint64_t on_disk;

        reject_both(box, big, ELEMENTSOF(big), &lim, "bundle expands to more than 1048576 bytes");
        reject_both(box, many, ELEMENTSOF(many), &lim,
                    "entry 'b': bundle expands to more than 1048576 bytes");

        /* No size in the header: the cap must stop the stream while it is being written. */
        build(box, FMT_ZIP, stream, ELEMENTSOF(stream));
        assert_true(box->len < 64 << 10); /* highly compressible */
        cut_central_directory(box);
        assert_int_equal(extract(box, &lim, NULL, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "entry 'bomb.bin': bundle expands to more than"));
        {
                int fd = open(box->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                assert_true(fd >= 0);
                on_disk = tree_bytes(fd);
                close(fd);
        }
        assert_true(on_disk > 0);
        assert_true(on_disk <= lim.max_bytes);
        assert_int_equal(rm_rf_at(box->parent_fd, "dest"), 0);
        assert_int_equal(count_dir(box->parent), 0);
}

static void test_too_many_entries(void **state)
{
        const BundleLimits lim = {
            .max_bytes = 1 << 20, .max_entries = 3, .max_path = 100, .max_depth = 8};
        const Ent ents[] = {{.path = "1", .data = "1"},
                            {.path = "2", .data = "2"},
                            {.path = "3/", .type = AE_IFDIR},
                            {.path = "4", .data = "4"}};

        reject_both(*state, ents, ELEMENTSOF(ents), &lim,
                    "entry '4': bundle has more than 3 entries");
}

static void test_too_long_path(void **state)
{
        char path[1100];
        Ent ents[] = {{.path = path, .data = "x"}};

        /* Components of 100 bytes, 1099 bytes in all: only the total is over the limit. */
        for (size_t i = 0; i < sizeof(path) - 1; i++)
                path[i] = (i % 101 == 100) ? '/' : 'p';
        path[sizeof(path) - 1] = '\0';
        reject_both(*state, ents, ELEMENTSOF(ents), NULL, "path longer than 1024 bytes");
}

static void test_too_deep(void **state)
{
        char path[128] = "";
        Ent ents[] = {{.path = path, .data = "x"}};

        for (int i = 0; i < 32; i++)
                strcat(path, "d/");
        strcat(path, "f"); /* 33 components */
        reject_both(*state, ents, ELEMENTSOF(ents), NULL, "path deeper than 32 components");
}

static void test_duplicate(void **state)
{
        const Ent files[] = {{.path = "handler.so", .data = "good"},
                             {.path = "handler.so", .data = "evil"}};
        const Ent dirs[] = {{.path = "d/", .type = AE_IFDIR}, {.path = "d/", .type = AE_IFDIR}};
        const Ent implicit[] = {{.path = "a/b", .data = "b"}, {.path = "a", .data = "a"}};

        reject_both(*state, files, ELEMENTSOF(files), NULL, "entry 'handler.so': duplicate entry");
        reject_both(*state, dirs, ELEMENTSOF(dirs), NULL, "entry 'd/': duplicate entry");
        reject_both(*state, implicit, ELEMENTSOF(implicit), NULL,
                    "entry 'a': conflicts with a directory of an earlier entry");
}

static void test_bad_names(void **state)
{
        const Ent nl[] = {{.path = "a\nb", .data = "x"}};
        const Ent dot[] = {{.path = "a/./b", .data = "x"}};
        const Ent empty[] = {{.path = "a//b", .data = "x"}};

        reject_both(*state, nl, ELEMENTSOF(nl), NULL,
                    "entry 'a?b': path has control characters or invalid UTF-8");
        reject_both(*state, dot, ELEMENTSOF(dot), NULL, "path has an empty or '.' component");
        reject_both(*state, empty, ELEMENTSOF(empty), NULL, "path has an empty or '.' component");
}

static void test_empty(void **state)
{
        Box *box = *state;

        build(box, FMT_TGZ, NULL, 0);
        expect_reject(box, NULL, "bundle is empty");
        build(box, FMT_ZIP, NULL, 0);
        expect_reject(box, NULL, "bundle is empty");
        box->len = 0;
        expect_reject(box, NULL, "bundle is empty");
}

static void test_garbage(void **state)
{
        static const char junk[] = "#!/bin/sh\necho this is not an archive at all\n";
        Box *box = *state;

        free(box->buf);
        box->buf = strdup(junk);
        box->len = sizeof(junk) - 1;
        expect_reject(box, NULL, "not a zip or tar.gz bundle");
}

static void test_truncated(void **state)
{
        const Ent ents[] = {{.path = "handler.so", .perm = 0755, .zeros = 300000},
                            {.path = "more.txt", .data = "more"}};
        Box *box = *state;

        build(box, FMT_TGZ, ents, ELEMENTSOF(ents));
        box->len /= 2;
        expect_reject(box, NULL, "truncated or corrupt");
        build(box, FMT_TGZ, ents, ELEMENTSOF(ents));
        box->len = 20; /* inside the gzip header */
        expect_reject(box, NULL, "truncated or corrupt");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, box_setup, box_teardown)
            T(test_good_zip),
            T(test_good_tgz),
            T(test_dot_slash_root),
            T(test_zip_slip),
            T(test_nested_dotdot),
            T(test_absolute),
            T(test_symlink_out_absolute),
            T(test_symlink_out_relative),
            T(test_write_through_symlink),
            T(test_hard_link),
            T(test_char_device),
            T(test_fifo),
            T(test_setuid),
            T(test_zip_bomb),
            T(test_too_many_entries),
            T(test_too_long_path),
            T(test_too_deep),
            T(test_duplicate),
            T(test_bad_names),
            T(test_empty),
            T(test_garbage),
            T(test_truncated),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
