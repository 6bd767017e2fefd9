/* SPDX-License-Identifier: Apache-2.0 */
#include "cli-internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "util.h"

/* Recursion guard: a deeper tree would be refused by the daemon anyway (it allows 32). */
#define PACK_DEPTH_MAX 64U
#define PACK_CHUNK ((size_t)64 * 1024)

DEFINE_CLEANUP_FUNC(struct archive_entry *, archive_entry_free);

typedef struct Packer {
        struct archive *a;
        char *buf;
        size_t len, cap, max;
        bool overflow, quiet;
        PackStats stats;
        FnError *err;
} Packer;

static bool has_suffix(const char *s, const char *suffix)
{
        size_t l = strlen(s), k = strlen(suffix);

        return l > k && strcasecmp(s + l - k, suffix) == 0;
}

bool cli_is_bundle_name(const char *path)
{
        return has_suffix(path, ".zip") || has_suffix(path, ".tar.gz") || has_suffix(path, ".tgz");
}

int cli_read_bundle_file(const char *path, size_t max, char **ret, size_t *ret_len, FnError *reterr)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        bool zip = has_suffix(path, ".zip");
        struct stat st;
        size_t len = 0;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return fn_error_set(reterr, negative_errno(), "cannot open '%s': %m", path);
        if (fstat(fd, &st) < 0)
                return fn_error_set(reterr, negative_errno(), "cannot stat '%s': %m", path);
        if (!S_ISREG(st.st_mode))
                return fn_error_set(reterr, -EINVAL, "'%s' is not a regular file", path);
        r = read_fd_full(fd, max, &buf, &len);
        if (r == -EFBIG)
                return fn_error_set(reterr, r, "'%s' is larger than the %zu MiB bundle limit", path,
                                    max >> 20);
        if (r < 0)
                return fn_error_set(reterr, r, "cannot read '%s': %s", path, strerror(-r));
        /* Local file header, or the end record of an empty archive. */
        if (zip && !(len >= 4 && (memcmp(buf, "PK\3\4", 4) == 0 || memcmp(buf, "PK\5\6", 4) == 0)))
                return fn_error_set(reterr, -EINVAL, "'%s' is not a zip file", path);
        if (!zip && !(len >= 2 && memcmp(buf, "\x1f\x8b", 2) == 0))
                return fn_error_set(reterr, -EINVAL, "'%s' is not a gzip-compressed tar file",
                                    path);
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static la_ssize_t packer_write(struct archive *a, void *userdata, const void *data, size_t n)
{
        Packer *p = userdata;

        if (n > p->max - p->len) {
                p->overflow = true;
                archive_set_error(a, EFBIG, "bundle too large");
                return -1;
        }
        if (p->len + n > p->cap) {
                size_t cap = MIN(MAX(MAX(p->cap * 2, p->len + n), (size_t)65536), p->max);
                char *b = realloc(p->buf, cap);
                if (!b) {
                        archive_set_error(a, ENOMEM, "out of memory");
                        return -1;
                }
                p->buf = b;
                p->cap = cap;
        }
        memcpy(p->buf + p->len, data, n);
        p->len += n;
        return (la_ssize_t)n;
}

static int packer_archive_error(Packer *p, const char *path)
{
        if (p->overflow)
                return fn_error_set(p->err, -EFBIG, "the zip exceeds the %zu MiB bundle limit",
                                    p->max >> 20);
        return fn_error_set(p->err, -EIO, "cannot pack '%s': %s", path,
                            archive_error_string(p->a) ?: "archive error");
}

static int pack_header(Packer *p, const char *path, mode_t type, mode_t perm, int64_t size,
                       const struct stat *st, const char *link_target)
{
        _cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();

        if (!e)
                return fn_error_set(p->err, -ENOMEM, "out of memory");
        archive_entry_set_pathname(e, path);
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, perm);
        archive_entry_set_size(e, size);
        archive_entry_set_mtime(e, st->st_mtim.tv_sec, 0);
        if (link_target)
                archive_entry_set_symlink(e, link_target);
        /* ARCHIVE_WARN (e.g. a name that is not valid in the locale's charset) still wrote it. */
        if (archive_write_header(p->a, e) < ARCHIVE_WARN)
                return packer_archive_error(p, path);
        return 0;
}

static int pack_file(Packer *p, int dir_fd, const char *name, const char *path)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *chunk = NULL;
        struct stat st;
        off_t total = 0;
        int r;

        /* O_NONBLOCK: should the file have become a FIFO since fstatat(), do not hang on it. */
        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return fn_error_set(p->err, negative_errno(), "cannot open '%s': %m", path);
        if (fstat(fd, &st) < 0)
                return fn_error_set(p->err, negative_errno(), "cannot stat '%s': %m", path);
        if (!S_ISREG(st.st_mode))
                return fn_error_set(p->err, -EINVAL, "'%s' changed while packing", path);
        r = pack_header(p, path, AE_IFREG, (st.st_mode & 0111) ? 0755 : 0644, st.st_size, &st,
                        NULL);
        if (r < 0)
                return r;
        chunk = malloc(PACK_CHUNK);
        if (!chunk)
                return fn_error_set(p->err, -ENOMEM, "out of memory");
        for (;;) {
                ssize_t k = read(fd, chunk, PACK_CHUNK);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return fn_error_set(p->err, negative_errno(), "cannot read '%s': %m", path);
                if (k == 0)
                        break;
                total += k;
                if (total > st.st_size)
                        break;
                if (archive_write_data(p->a, chunk, (size_t)k) < 0)
                        return packer_archive_error(p, path);
        }
        if (total != st.st_size)
                return fn_error_set(p->err, -EIO, "'%s' changed size while packing", path);
        p->stats.files++;
        return 0;
}

/* Whether a symlink at entry path `path` with `target`, resolved by name only, stays inside the
 * packed directory. Absolute targets never do: they name the host, not the bundle. */
static bool link_stays_inside(const char *path, const char *target)
{
        long depth = 0;

        if (target[0] == '/' || target[0] == '\0')
                return false;
        for (const char *s = path; *s; s++)
                if (*s == '/')
                        depth++;
        for (const char *s = target; *s;) {
                size_t l = strcspn(s, "/");
                if (l == 2 && s[0] == '.' && s[1] == '.') {
                        if (--depth < 0)
                                return false;
                } else if (l > 0 && !(l == 1 && s[0] == '.')) {
                        depth++;
                }
                s += l;
                if (*s == '/')
                        s++;
        }
        return true;
}

static int pack_symlink(Packer *p, int dir_fd, const char *name, const char *path,
                        const struct stat *st)
{
        char target[PATH_MAX];
        ssize_t k;

        k = readlinkat(dir_fd, name, target, sizeof(target) - 1);
        if (k < 0)
                return fn_error_set(p->err, negative_errno(), "cannot read link '%s': %m", path);
        target[k] = '\0';
        if (!link_stays_inside(path, target)) {
                cli_warn(p->quiet, "skipping symlink '%s' -> '%s': it points outside the directory",
                         path, target);
                p->stats.skipped++;
                return 0;
        }
        p->stats.links++;
        return pack_header(p, path, AE_IFLNK, 0777, 0, st, target);
}

static void names_free(char **names, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

static int name_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of dir_fd except . and .., sorted so that the same tree gives the same zip. */
static int list_dir(int dir_fd, char ***ret, size_t *ret_n)
{
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        DIR *d;
        int r = 0;

        r = opendir_at(dir_fd, ".", 0, &d);
        if (r < 0)
                return r;
        while ((errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (n == cap) {
                        char **nn = realloc(names, (cap = MAX(cap * 2, (size_t)16)) * sizeof(*nn));
                        if (!nn) {
                                r = -ENOMEM;
                                break;
                        }
                        names = nn;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        if (r == 0 && errno != 0)
                r = negative_errno();
        (void)closedir(d);
        if (r < 0) {
                names_free(names, n);
                return r;
        }
        if (n > 0)
                qsort(names, n, sizeof(*names), name_cmp);
        *ret = names;
        *ret_n = n;
        return 0;
}

static int pack_tree(Packer *p, int dir_fd, const char *prefix, unsigned depth);

static int pack_entry(Packer *p, int dir_fd, const char *name, const char *path, unsigned depth)
{
        _cleanup_close_ int sub = -EBADF;
        struct stat st;
        int r;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return fn_error_set(p->err, negative_errno(), "cannot stat '%s': %m", path);
        if (S_ISREG(st.st_mode))
                return pack_file(p, dir_fd, name, path);
        if (S_ISLNK(st.st_mode))
                return pack_symlink(p, dir_fd, name, path, &st);
        if (!S_ISDIR(st.st_mode)) {
                cli_warn(p->quiet, "skipping '%s': not a regular file, directory or symlink", path);
                p->stats.skipped++;
                return 0;
        }
        if (depth >= PACK_DEPTH_MAX)
                return fn_error_set(p->err, -ELOOP, "'%s' is nested more than %u levels deep", path,
                                    PACK_DEPTH_MAX);
        r = pack_header(p, path, AE_IFDIR, 0755, 0, &st, NULL);
        if (r < 0)
                return r;
        p->stats.dirs++;
        sub = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
                return fn_error_set(p->err, negative_errno(), "cannot open '%s': %m", path);
        return pack_tree(p, sub, path, depth + 1);
}

static int pack_tree(Packer *p, int dir_fd, const char *prefix, unsigned depth)
{
        char **names = NULL;
        size_t n = 0;
        int r;

        r = list_dir(dir_fd, &names, &n);
        if (r < 0)
                return fn_error_set(p->err, r, "cannot list '%s': %s", prefix[0] ? prefix : ".",
                                    strerror(-r));
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s%s%s", prefix, prefix[0] ? "/" : "", names[i]) < 0) {
                        r = fn_error_set(p->err, -ENOMEM, "out of memory");
                        break;
                }
                r = pack_entry(p, dir_fd, names[i], path, depth);
        }
        names_free(names, n);
        return r;
}

static int pack_start(struct archive *a, Packer *p)
{
        /* No blocking: libarchive would otherwise pad the end of the zip with zeros. */
        if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
            archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
            archive_write_open2(a, p, NULL, packer_write, NULL, NULL) != ARCHIVE_OK)
                return fn_error_set(p->err, -EIO, "cannot start a zip: %s",
                                    archive_error_string(a) ?: "archive error");
        return 0;
}

int cli_pack_directory(const char *path, size_t max, bool quiet, char **ret, size_t *ret_len,
                       PackStats *ret_stats, FnError *reterr)
{
        _cleanup_close_ int fd = -EBADF;
        Packer p = {.max = max, .quiet = quiet, .err = reterr};
        int r;

        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return fn_error_set(reterr, negative_errno(), "cannot open '%s': %m", path);
        p.a = archive_write_new();
        if (!p.a)
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        r = pack_start(p.a, &p);
        if (r >= 0)
                r = pack_tree(&p, fd, "", 0);
        if (r >= 0 && archive_write_close(p.a) != ARCHIVE_OK)
                r = packer_archive_error(&p, path);
        /* Freeing an archive that is not closed yet writes its end through packer_write, so this
         * comes before p.buf is freed. */
        (void)archive_write_free(p.a);
        if (r >= 0 && p.stats.files == 0)
                r = fn_error_set(reterr, -ENOENT, "'%s' holds no regular files to deploy", path);
        if (r < 0) {
                free(p.buf);
                return r;
        }
        *ret = p.buf;
        *ret_len = p.len;
        if (ret_stats)
                *ret_stats = p.stats;
        return 0;
}
