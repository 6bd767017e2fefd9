/* SPDX-License-Identifier: Apache-2.0 */
/* The uploaded bundle: bundle_extract() of arbitrary bytes into a fresh directory, with small
 * limits so that bombs stop early. Layout, made once per process:
 *
 *   ${TMPDIR:-/tmp}/fnbox-fuzz-bundle-XXXXXX/s1/s2/dest   (dest: made and removed per input)
 *
 * s1, s2 and the top directory are sentinels: an entry that escapes dest through "..", up to
 * three levels, lands in one of them, and each must hold exactly its one child afterwards. That
 * costs three readdir()s an input. A success must also leave only what DESIGN.md decision 8
 * allows: regular files 0644/0755, directories 0755, symlinks that resolve inside dest, and no
 * more bytes or entries than the limits. No fd may outlive an input. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle.h"
#include "fuzz.h"
#include "macro.h"
#include "util.h"

static const BundleLimits small_limits = {
    .max_bytes = 4u << 20,
    .max_entries = 256,
    .max_path = 1024,
    .max_depth = 32,
};

static char top[PATH_MAX / 2];
static char dest[PATH_MAX];
static char dest_real[PATH_MAX];

typedef struct Walk {
        uint64_t bytes; /* st_size of every regular file */
} Walk;

static void remove_top(void)
{
        (void)rm_rf_at(AT_FDCWD, top);
}

static void setup(void)
{
        const char *tmp = getenv("TMPDIR");
        char path[sizeof(dest)];

        /* Every input creates and removes files: on tmpfs (TMPDIR=/dev/shm) that is ~10x
         * faster than on ext4. */
        FUZZ_CHECK(snprintf(top, sizeof(top), "%s/fnbox-fuzz-bundle-XXXXXX",
                            tmp && *tmp ? tmp : "/tmp") < (int)sizeof(top));
        FUZZ_CHECK(mkdtemp(top));
        (void)snprintf(path, sizeof(path), "%s/s1", top);
        FUZZ_CHECK(mkdir(path, 0700) >= 0);
        (void)snprintf(path, sizeof(path), "%s/s1/s2", top);
        FUZZ_CHECK(mkdir(path, 0700) >= 0);
        (void)snprintf(dest, sizeof(dest), "%s/s1/s2/dest", top);
        (void)atexit(remove_top);
}

/* true if dir holds exactly one entry, named only. */
static bool holds_only(const char *dir, const char *only)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;
        bool ok = true;

        FUZZ_CHECK(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                n++;
                if (strcmp(de->d_name, only) != 0) {
                        fprintf(stderr, "escaped the bundle: %s/%s\n", dir, de->d_name);
                        ok = false;
                }
        }
        (void)closedir(d);
        return ok && n == 1;
}

static void check_sentinels(void)
{
        char path[sizeof(dest)];

        FUZZ_CHECK(holds_only(top, "s1"));
        (void)snprintf(path, sizeof(path), "%s/s1", top);
        FUZZ_CHECK(holds_only(path, "s2"));
        (void)snprintf(path, sizeof(path), "%s/s1/s2", top);
        FUZZ_CHECK(holds_only(path, "dest"));
}

/* A symlink in the result must resolve inside dest, or not at all (dangling inside). */
static void check_symlink(const char *path)
{
        char resolved[PATH_MAX];
        size_t n = strlen(dest_real);

        if (!realpath(path, resolved))
                return;
        if (strncmp(resolved, dest_real, n) != 0 || (resolved[n] != '/' && resolved[n] != '\0')) {
                fprintf(stderr, "symlink %s resolves outside the bundle: %s\n", path, resolved);
                FUZZ_CHECK(!"symlink escapes the bundle");
        }
}

static void walk(const char *dir, Walk *w)
{
        DIR *d = opendir(dir);
        struct dirent *de;

        FUZZ_CHECK(d);
        while ((de = readdir(d))) {
                char path[PATH_MAX];
                struct stat st;
                mode_t perm;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                FUZZ_CHECK(snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) <
                           (int)sizeof(path));
                FUZZ_CHECK(lstat(path, &st) >= 0);
                perm = st.st_mode & 07777;
                if (S_ISREG(st.st_mode)) {
                        FUZZ_CHECK(perm == 0644 || perm == 0755);
                        w->bytes += (uint64_t)st.st_size;
                } else if (S_ISDIR(st.st_mode)) {
                        FUZZ_CHECK(perm == 0755);
                        walk(path, w);
                } else {
                        FUZZ_CHECK(S_ISLNK(st.st_mode));
                        check_symlink(path);
                }
        }
        (void)closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static int lowest_fd = -1;
        BundleStats stats = {};
        FnError err = {};
        Walk w = {};
        int r;

        if (lowest_fd < 0) {
                setup();
                lowest_fd = fuzz_lowest_free_fd();
        }
        FUZZ_CHECK(mkdir(dest, 0700) >= 0);
        FUZZ_CHECK(realpath(dest, dest_real));

        r = bundle_extract(data, size, dest, &small_limits, &stats, &err);
        if (r >= 0) {
                walk(dest, &w);
                FUZZ_CHECK(stats.entries > 0 && stats.entries <= small_limits.max_entries);
                FUZZ_CHECK(stats.bytes <= small_limits.max_bytes);
                /* Sizes on disk, holes included, are what the byte cap promises to bound. */
                FUZZ_CHECK(w.bytes <= stats.bytes);
        } else {
                FUZZ_CHECK(err.code == r);
                FUZZ_CHECK(err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof(err.msg)));
        }
        check_sentinels();
        FUZZ_CHECK(rm_rf_at(AT_FDCWD, dest) >= 0);
        FUZZ_CHECK(fuzz_lowest_free_fd() == lowest_fd);
        return 0;
}
