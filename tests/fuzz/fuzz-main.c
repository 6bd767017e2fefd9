/* SPDX-License-Identifier: Apache-2.0 */
/* Replay driver for builds without libFuzzer: runs every file named on the command line, or
 * found directly in a directory named there, through LLVMFuzzerTestOneInput, and reports TAP.
 * This is how each `meson test` turns the committed corpus (seeds plus every crash ever found)
 * into a regression test. A crash or a failed FUZZ_CHECK kills the process, which ends the TAP
 * stream early: meson reports the test as failed, naming the last file started. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "macro.h"
#include "util.h"

/* Corpus files are small; anything bigger than libFuzzer's own -max_len ceiling is a mistake. */
#define REPLAY_FILE_MAX (16u * 1024u * 1024u)

typedef struct PathList {
        char **paths;
        size_t n;
} PathList;

static void path_list_done(PathList *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->paths[i]);
        free(l->paths);
        l->paths = NULL;
        l->n = 0;
}

static int path_list_add(PathList *l, char *path)
{
        char **p = reallocarray(l->paths, l->n + 1, sizeof(char *));

        if (!p) {
                free(path);
                return -ENOMEM;
        }
        l->paths = p;
        l->paths[l->n++] = path;
        return 0;
}

static int no_dotfiles(const struct dirent *de)
{
        return de->d_name[0] != '.';
}

/* Adds the regular files of dir in a stable (sorted) order. */
static int add_dir(PathList *l, const char *dir)
{
        struct dirent **des = NULL;
        int n, r = 0;

        n = scandir(dir, &des, no_dotfiles, alphasort);
        if (n < 0)
                return negative_errno();
        for (int i = 0; i < n; i++) {
                char *path = NULL;
                struct stat st;

                if (r >= 0 && asprintf(&path, "%s/%s", dir, des[i]->d_name) < 0)
                        r = -ENOMEM;
                if (r >= 0 && stat(path, &st) >= 0 && S_ISREG(st.st_mode))
                        r = path_list_add(l, TAKE_PTR(path));
                free(path);
                free(des[i]);
        }
        free(des);
        return r;
}

static int collect(PathList *l, int argc, char **argv)
{
        for (int i = 1; i < argc; i++) {
                struct stat st;
                char *copy;
                int r;

                if (stat(argv[i], &st) < 0)
                        return negative_errno();
                if (S_ISDIR(st.st_mode)) {
                        r = add_dir(l, argv[i]);
                } else {
                        copy = strdup(argv[i]);
                        r = copy ? path_list_add(l, copy) : -ENOMEM;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Runs one file. The input gets a heap buffer of exactly its size, as under libFuzzer, so that
 * ASan builds catch a read one byte past the end. */
static int run_one(const char *path)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_free_ uint8_t *exact = NULL;
        size_t len;
        int r;

        r = read_file_at(AT_FDCWD, path, REPLAY_FILE_MAX, &buf, &len);
        if (r < 0)
                return r;
        exact = malloc(len > 0 ? len : 1);
        if (!exact)
                return -ENOMEM;
        memcpy(exact, buf, len);
        (void)LLVMFuzzerTestOneInput(exact, len);
        return 0;
}

/* "corpus/wire/ready" reads better in TAP output than the absolute path meson passes. */
static const char *display_name(const char *path)
{
        const char *p = path + strlen(path);
        int slashes = 0;

        while (p > path) {
                if (p[-1] == '/' && ++slashes == 2)
                        break;
                p--;
        }
        return p;
}

int main(int argc, char **argv)
{
        _cleanup_(path_list_done) PathList l = {};
        int r, failed = 0;

        r = collect(&l, argc, argv);
        if (r < 0) {
                printf("Bail out! cannot list the corpus: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        if (l.n == 0) {
                printf("1..0 # SKIP no corpus files\n");
                return EXIT_SUCCESS;
        }
        printf("1..%zu\n", l.n);
        for (size_t i = 0; i < l.n; i++) {
                /* Flushed first, so that the name of the input that crashes is on record. */
                (void)fflush(stdout);
                fprintf(stderr, "running %s\n", l.paths[i]);
                r = run_one(l.paths[i]);
                if (r < 0) {
                        printf("not ok %zu - %s # cannot read: %s\n", i + 1,
                               display_name(l.paths[i]), strerror(-r));
                        failed++;
                        continue;
                }
                printf("ok %zu - %s\n", i + 1, display_name(l.paths[i]));
        }
        return failed > 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
