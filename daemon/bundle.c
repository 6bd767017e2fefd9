/* SPDX-License-Identifier: Apache-2.0 */
#include "bundle.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <search.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "log.h"
#include "macro.h"
#include "util.h"

const BundleLimits bundle_default_limits = {
    .max_bytes = 256ULL << 20,
    .max_entries = 10000,
    .max_path = 1024,
    .max_depth = 32,
};

/* libarchive's SECURE_NOABSOLUTEPATHS refuses every absolute path, including the ones we build
 * ourselves by prefixing dest_dir (we may not chdir into it). Our own check rejects absolute
 * entry paths before they are prefixed, so the flag would add nothing but breakage. OWNER, PERM,
 * XATTR, ACL, FFLAGS and TIME stay off: owners are never restored, modes are ours. */
#define BUNDLE_EXTRACT_FLAGS                                                                       \
        (ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |                       \
         ARCHIVE_EXTRACT_NO_OVERWRITE)

/* libarchive reports "Unrecognized archive format" with its private ARCHIVE_ERRNO_FILE_FORMAT,
 * which is EILSEQ on POSIX systems. */
#define ERRNO_FILE_FORMAT EILSEQ

/* Entry names are truncated in messages so the rule still fits in FnError.msg. */
#define DISPLAY_MAX 96

typedef enum NodeType {
        NODE_DIR,
        NODE_FILE,
        NODE_SYMLINK,
} NodeType;

/* One explicit entry already extracted, keyed by its normalized relative path. */
typedef struct Node {
        NodeType type;
        char path[];
} Node;

typedef struct Extract {
        const BundleLimits *lim;
        char root[PATH_MAX]; /* canonical dest_dir */
        size_t root_len;
        int root_fd;
        void *tree; /* tsearch() of Node, for duplicates and symlink prefixes */
        uint64_t bytes;
        uint64_t entries;
        struct archive *in;
        struct archive *out;
        FnError *reterr;
        char disp[DISPLAY_MAX + 4]; /* printable name of the current entry */
} Extract;

static int node_compare(const void *a, const void *b)
{
        return strcmp(((const Node *)a)->path, ((const Node *)b)->path);
}

static void extract_done(Extract *x)
{
        tdestroy(x->tree, free);
        x->tree = NULL;
        if (x->out)
                (void)archive_write_free(x->out);
        if (x->in)
                (void)archive_read_free(x->in);
        x->root_fd = safe_close(x->root_fd);
}

/* Copies s into buf for messages: at most DISPLAY_MAX bytes, control bytes as '?'. */
static void display_name(const char *s, char *buf)
{
        size_t i = 0;

        for (; s[i] && i < DISPLAY_MAX; i++)
                buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
        if (s[i]) {
                memcpy(buf + i, "...", 3);
                i += 3;
        }
        buf[i] = '\0';
}

/* true if s is valid UTF-8 without control characters (C0, DEL). */
static bool string_is_clean(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;

        while (*p) {
                unsigned n;
                uint32_t cp;

                if (*p < 0x20 || *p == 0x7f)
                        return false;
                if (*p < 0x80) {
                        p++;
                        continue;
                }
                if ((*p & 0xe0) == 0xc0) {
                        n = 1;
                        cp = *p & 0x1f;
                } else if ((*p & 0xf0) == 0xe0) {
                        n = 2;
                        cp = *p & 0x0f;
                } else if ((*p & 0xf8) == 0xf0) {
                        n = 3;
                        cp = *p & 0x07;
                } else {
                        return false;
                }
                for (unsigned i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3f);
                }
                /* Overlong forms, surrogates and values beyond Unicode. */
                if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
                    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                        return false;
                p += n + 1;
        }
        return true;
}

static int entry_error(Extract *x, int code, const char *rule)
{
        return fn_error_set(x->reterr, code, "entry '%s': %s", x->disp, rule);
}

/* Checks an entry path and writes it to out without a leading "./" and trailing '/'. Returns 1
 * when the entry names the bundle root itself ("./" as written by `tar -C dir .`), 0 when it
 * is an ordinary path, or -EINVAL. */
static int normalize_path(Extract *x, const char *raw, char *out, size_t *ret_depth)
{
        const char *p = raw;
        size_t len = strlen(raw), depth = 0;
        char msg[64];

        if (len == 0)
                return entry_error(x, -EINVAL, "empty path");
        if (len > x->lim->max_path) {
                (void)snprintf(msg, sizeof(msg), "path longer than %" PRIu64 " bytes",
                               x->lim->max_path);
                return entry_error(x, -EINVAL, msg);
        }
        /* out and the prefixed path are PATH_MAX buffers, whatever limits the caller chose. */
        if (x->root_len + 1 + len >= PATH_MAX)
                return entry_error(x, -ENAMETOOLONG, "path too long for the code store");
        if (!string_is_clean(raw))
                return entry_error(x, -EINVAL, "path has control characters or invalid UTF-8");
        if (raw[0] == '/')
                return entry_error(x, -EINVAL, "absolute path");
        if (strcmp(p, ".") == 0 || strcmp(p, "./") == 0)
                return 1;
        if (strncmp(p, "./", 2) == 0)
                p += 2;
        len = strlen(p);
        if (len > 0 && p[len - 1] == '/')
                len--;
        memcpy(out, p, len);
        out[len] = '\0';

        for (const char *c = out;; c++) {
                const char *end = strchrnul(c, '/');
                size_t n = (size_t)(end - c);

                if (n == 2 && c[0] == '.' && c[1] == '.')
                        return entry_error(x, -EINVAL, "path escapes the bundle");
                if (n == 0 || (n == 1 && c[0] == '.'))
                        return entry_error(x, -EINVAL, "path has an empty or '.' component");
                depth++;
                if (!*end)
                        break;
                c = end;
        }
        if (depth > x->lim->max_depth) {
                (void)snprintf(msg, sizeof(msg), "path deeper than %" PRIu64 " components",
                               x->lim->max_depth);
                return entry_error(x, -EINVAL, msg);
        }
        *ret_depth = depth;
        return 0;
}

/* A symlink may only point inside the bundle, judged lexically from the entry's directory
 * (parent_depth components below the root). Every ".." must come before the first name:
 * "d/s/.." could leave the root when d/s is itself a symlink to a shallower place, while in
 * "../../a/b" each ".." walks up real directories (entries never go through symlinks). */
static int check_symlink_target(Extract *x, const char *target, size_t parent_depth)
{
        char msg[DISPLAY_MAX + 64], tdisp[DISPLAY_MAX + 4];
        size_t ups = 0;
        bool named = false;

        if (!target || !*target)
                return entry_error(x, -EINVAL, "symlink has an empty target");
        display_name(target, tdisp);
        if (strlen(target) > x->lim->max_path || !string_is_clean(target)) {
                (void)snprintf(msg, sizeof(msg),
                               "symlink target '%s' is too long or has "
                               "control characters",
                               tdisp);
                return entry_error(x, -EINVAL, msg);
        }
        for (const char *c = target;; c++) {
                const char *end = strchrnul(c, '/');
                size_t n = (size_t)(end - c);

                if (n == 2 && c[0] == '.' && c[1] == '.') {
                        if (named) {
                                (void)snprintf(msg, sizeof(msg),
                                               "symlink target '%s' has '..' after a name", tdisp);
                                return entry_error(x, -EINVAL, msg);
                        }
                        ups++;
                } else if (n > 0 && !(n == 1 && c[0] == '.')) {
                        named = true;
                }
                if (!*end)
                        break;
                c = end;
        }
        if (target[0] == '/' || ups > parent_depth) {
                (void)snprintf(msg, sizeof(msg), "symlink target '%s' escapes the bundle", tdisp);
                return entry_error(x, -EINVAL, msg);
        }
        return 0;
}

static const Node *tree_find(Extract *x, const char *path)
{
        size_t len = strlen(path);
        _cleanup_free_ Node *key = malloc(sizeof(Node) + len + 1);
        void *found;

        if (!key)
                return NULL;
        memcpy(key->path, path, len + 1);
        found = tfind(key, &x->tree, node_compare);
        return found ? *(Node **)found : NULL;
}

static int tree_add(Extract *x, const char *path, NodeType type)
{
        size_t len = strlen(path);
        _cleanup_free_ Node *n = malloc(sizeof(Node) + len + 1);
        void *slot;

        if (!n)
                return -ENOMEM;
        n->type = type;
        memcpy(n->path, path, len + 1);
        slot = tsearch(n, &x->tree, node_compare);
        if (!slot)
                return -ENOMEM;
        if (*(Node **)slot != n)
                return -EEXIST;
        TAKE_PTR(n);
        return 0;
}

/* Refuses an entry that repeats an earlier one, or whose parent is an earlier file or symlink
 * (writing through a symlink is the classic escape; libarchive refuses it too, this names it). */
static int check_conflicts(Extract *x, char *rel, NodeType type)
{
        char msg[DISPLAY_MAX + 64], pdisp[DISPLAY_MAX + 4];
        const Node *n;
        struct stat st;

        for (char *s = strchr(rel, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                n = tree_find(x, rel);
                if (n && n->type != NODE_DIR) {
                        display_name(rel, pdisp);
                        *s = '/';
                        (void)snprintf(msg, sizeof(msg), "path goes through the %s '%s'",
                                       n->type == NODE_SYMLINK ? "symlink" : "file", pdisp);
                        return entry_error(x, -EINVAL, msg);
                }
                *s = '/';
        }
        if (tree_find(x, rel))
                return entry_error(x, -EINVAL, "duplicate entry");
        /* A directory created implicitly for an earlier entry may become explicit, nothing else
         * may replace it (NO_OVERWRITE would silently drop the entry). */
        if (fstatat(x->root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
            !(type == NODE_DIR && S_ISDIR(st.st_mode)))
                return entry_error(x, -EINVAL, "conflicts with a directory of an earlier entry");
        return 0;
}

/* Maps the archive's type to ours, refusing everything but files, directories and symlinks. */
static int entry_type(Extract *x, struct archive_entry *e, NodeType *ret)
{
        if (archive_entry_hardlink(e))
                return entry_error(x, -EINVAL, "hard links are not allowed");
        switch (archive_entry_filetype(e)) {
        case AE_IFREG:
                *ret = NODE_FILE;
                return 0;
        case AE_IFDIR:
                *ret = NODE_DIR;
                return 0;
        case AE_IFLNK:
                *ret = NODE_SYMLINK;
                return 0;
        case AE_IFCHR:
        case AE_IFBLK:
                return entry_error(x, -EINVAL, "device nodes are not allowed");
        case AE_IFIFO:
                return entry_error(x, -EINVAL, "FIFOs are not allowed");
        case AE_IFSOCK:
                return entry_error(x, -EINVAL, "sockets are not allowed");
        default:
                return entry_error(x, -EINVAL, "unsupported entry type");
        }
}

static int budget_exceeded(Extract *x)
{
        char msg[64];

        (void)snprintf(msg, sizeof(msg), "bundle expands to more than %" PRIu64 " bytes",
                       x->lim->max_bytes);
        return entry_error(x, -EINVAL, msg);
}

/* Charges n bytes against max_bytes before they are written, so a bomb stops at the cap. */
static int charge(Extract *x, uint64_t n)
{
        if (n > x->lim->max_bytes - x->bytes)
                return budget_exceeded(x);
        x->bytes += n;
        return 0;
}

static int archive_failure(Extract *x, struct archive *a, const char *what)
{
        char msg[160];
        int e = archive_errno(a);

        (void)snprintf(msg, sizeof(msg), "%s: %s", what,
                       archive_error_string(a) ?: "unknown error");
        /* Disk trouble keeps its errno; anything the archive did wrong is the client's. */
        return entry_error(x, (e == ENOSPC || e == EDQUOT || e == EIO) ? -e : -EINVAL, msg);
}

/* Streams the entry's data blocks to disk. Holes in sparse entries count as bytes too, so the
 * cap bounds the apparent size of what lands on disk, not only the blocks. */
static int copy_data(Extract *x, struct archive_entry *e)
{
        int64_t expected = 0;
        int r;

        if (archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
            (uint64_t)archive_entry_size(e) > x->lim->max_bytes - x->bytes)
                return budget_exceeded(x);
        for (;;) {
                const void *buf;
                size_t size;
                int64_t off;

                r = archive_read_data_block(x->in, &buf, &size, &off);
                if (r == ARCHIVE_EOF)
                        break;
                if (r != ARCHIVE_OK)
                        return archive_failure(x, x->in, "bundle is truncated or corrupt");
                if (off < expected)
                        return entry_error(x, -EINVAL, "overlapping data blocks");
                r = charge(x, (uint64_t)(off - expected) + size);
                if (r < 0)
                        return r;
                if (archive_write_data_block(x->out, buf, size, off) != ARCHIVE_OK)
                        return archive_failure(x, x->out, "cannot write data");
                expected = off + (int64_t)size;
        }
        /* finish_entry extends the file to its declared size. */
        if (archive_entry_size_is_set(e) && archive_entry_size(e) > expected)
                return charge(x, (uint64_t)(archive_entry_size(e) - expected));
        return 0;
}

/* libarchive applies the umask to files it creates; set the normalized mode exactly. */
static int fix_file_mode(Extract *x, const char *rel, mode_t mode)
{
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = openat(x->root_fd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return fn_error_set(x->reterr, negative_errno(), "entry '%s': cannot open: %m",
                                    x->disp);
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return entry_error(x, -EIO, "not a regular file after extraction");
        if (fchmod(fd, mode) < 0)
                return fn_error_set(x->reterr, negative_errno(), "entry '%s': cannot chmod: %m",
                                    x->disp);
        return 0;
}

/* Builds the entry libarchive writes: only what we chose to keep (path, type, normalized mode,
 * size, symlink target) — no owner, xattrs, ACLs, fflags, times or sparse maps. */
static struct archive_entry *clean_entry(Extract *x, struct archive_entry *e, const char *rel,
                                         NodeType type, mode_t mode)
{
        struct archive_entry *c = NULL;
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/%s", x->root, rel) < 0)
                return NULL;
        c = archive_entry_new();
        if (!c)
                return NULL;
        archive_entry_copy_pathname(c, path);
        if (type == NODE_DIR) {
                archive_entry_set_filetype(c, AE_IFDIR);
        } else if (type == NODE_SYMLINK) {
                archive_entry_set_filetype(c, AE_IFLNK);
                archive_entry_copy_symlink(c, archive_entry_symlink(e));
        } else {
                archive_entry_set_filetype(c, AE_IFREG);
                if (archive_entry_size_is_set(e))
                        archive_entry_set_size(c, archive_entry_size(e));
        }
        archive_entry_set_perm(c, mode);
        return c;
}

static int extract_entry(Extract *x, struct archive_entry *e)
{
        char rel[PATH_MAX], msg[64];
        const char *raw = archive_entry_pathname(e);
        struct archive_entry *c;
        size_t depth = 0;
        NodeType type = NODE_FILE;
        mode_t mode;
        int r, is_root;

        display_name(raw ?: "", x->disp);
        if (++x->entries > x->lim->max_entries) {
                (void)snprintf(msg, sizeof(msg), "bundle has more than %" PRIu64 " entries",
                               x->lim->max_entries);
                return entry_error(x, -EINVAL, msg);
        }
        if (!raw)
                return fn_error_set(x->reterr, -EINVAL, "entry #%" PRIu64 ": unreadable path",
                                    x->entries);
        is_root = normalize_path(x, raw, rel, &depth);
        if (is_root < 0)
                return is_root;
        r = entry_type(x, e, &type);
        if (r < 0)
                return r;
        if (is_root) {
                if (type != NODE_DIR)
                        return entry_error(x, -EINVAL, "path names the bundle root");
                return 0;
        }
        /* A setuid or setgid file in a bundle has no honest use in a function that runs as an
         * unprivileged uid with no_new_privs; refuse it rather than guess. Sticky is dropped. */
        if (type != NODE_SYMLINK && (archive_entry_perm(e) & (S_ISUID | S_ISGID)))
                return entry_error(x, -EINVAL, "setuid and setgid bits are not allowed");
        if (type == NODE_SYMLINK) {
                r = check_symlink_target(x, archive_entry_symlink(e), depth - 1);
                if (r < 0)
                        return r;
        }
        r = check_conflicts(x, rel, type);
        if (r < 0)
                return r;
        r = tree_add(x, rel, type);
        if (r < 0)
                return fn_error_set(x->reterr, r, "entry '%s': out of memory", x->disp);

        mode = (type == NODE_DIR || (archive_entry_perm(e) & 0111)) ? 0755 : 0644;
        c = clean_entry(x, e, rel, type, mode);
        if (!c)
                return fn_error_set(x->reterr, -ENOMEM, "entry '%s': out of memory", x->disp);
        r = archive_write_header(x->out, c);
        archive_entry_free(c);
        if (r != ARCHIVE_OK)
                return archive_failure(x, x->out, "cannot create");
        if (type == NODE_FILE) {
                r = copy_data(x, e);
                if (r < 0)
                        return r;
        }
        if (archive_write_finish_entry(x->out) != ARCHIVE_OK)
                return archive_failure(x, x->out, "cannot finish");
        return type == NODE_FILE ? fix_file_mode(x, rel, mode) : 0;
}

/* After extraction: every directory (also the ones libarchive made implicitly, with 0777 minus
 * the umask) becomes 0755, and anything that is not a file, directory or symlink fails. */
static int finalize_dir(Extract *x, int dir_fd, unsigned level)
{
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (level > x->lim->max_depth + 1)
                return fn_error_set(x->reterr, -ELOOP, "extracted tree is deeper than allowed");
        /* dest_dir itself stays as the caller made it. */
        if (level > 0 && fchmod(dir_fd, 0755) < 0)
                return fn_error_set(x->reterr, negative_errno(), "cannot chmod a directory: %m");
        r = opendir_at(dir_fd, ".", 0, &d);
        if (r < 0)
                return r;
        while (r >= 0 && (de = readdir(d))) {
                struct stat st;
                _cleanup_close_ int sub = -EBADF;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = negative_errno();
                } else if (S_ISDIR(st.st_mode)) {
                        sub = openat(dirfd(d), de->d_name,
                                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        r = sub < 0 ? negative_errno() : finalize_dir(x, sub, level + 1);
                } else if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
                        r = fn_error_set(x->reterr, -EINVAL, "unexpected file type in the bundle");
                }
        }
        (void)closedir(d);
        return r;
}

static int extract_open(Extract *x, const void *data, size_t len, const char *dest_dir)
{
        if (!realpath(dest_dir, x->root))
                return fn_error_set(x->reterr, negative_errno(), "cannot resolve '%s': %m",
                                    dest_dir);
        x->root_len = strlen(x->root);
        x->root_fd = open(x->root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (x->root_fd < 0)
                return fn_error_set(x->reterr, negative_errno(), "cannot open '%s': %m", dest_dir);

        x->in = archive_read_new();
        x->out = archive_write_disk_new();
        if (!x->in || !x->out)
                return fn_error_set(x->reterr, -ENOMEM, "out of memory");
        /* Only the formats we accept: most libarchive CVEs live in the others. */
        if (archive_read_support_filter_gzip(x->in) != ARCHIVE_OK ||
            archive_read_support_format_zip(x->in) != ARCHIVE_OK ||
            archive_read_support_format_tar(x->in) != ARCHIVE_OK ||
            archive_write_disk_set_options(x->out, BUNDLE_EXTRACT_FLAGS) != ARCHIVE_OK)
                return fn_error_set(x->reterr, -ENOMEM, "cannot set up the extractor");
        if (archive_read_open_memory(x->in, data, len) != ARCHIVE_OK) {
                if (archive_errno(x->in) == ERRNO_FILE_FORMAT)
                        return fn_error_set(x->reterr, -EINVAL, "not a zip or tar.gz bundle");
                return fn_error_set(x->reterr, -EINVAL, "bundle is truncated or corrupt: %s",
                                    archive_error_string(x->in) ?: "unknown error");
        }
        return 0;
}

static int extract_all(Extract *x)
{
        struct archive_entry *e;
        int r;

        for (;;) {
                r = archive_read_next_header(x->in, &e);
                if (r == ARCHIVE_EOF)
                        break;
                /* WARN is for things like a name that did not convert to the locale; the name
                 * is checked below either way. */
                if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
                        if (x->entries == 0 && archive_errno(x->in) == ERRNO_FILE_FORMAT)
                                return fn_error_set(x->reterr, -EINVAL,
                                                    "not a zip or tar.gz bundle");
                        return fn_error_set(
                            x->reterr, -EINVAL,
                            "bundle is truncated or corrupt after %" PRIu64 " entries: %s",
                            x->entries, archive_error_string(x->in) ?: "unknown error");
                }
                r = extract_entry(x, e);
                if (r < 0)
                        return r;
        }
        if (x->entries == 0)
                return fn_error_set(x->reterr, -EINVAL, "bundle is empty");
        if (archive_write_close(x->out) != ARCHIVE_OK)
                return fn_error_set(x->reterr, -EIO, "cannot finish extraction: %s",
                                    archive_error_string(x->out) ?: "unknown error");
        return finalize_dir(x, x->root_fd, 0);
}

int bundle_extract(const void *data, size_t len, const char *dest_dir, const BundleLimits *lim,
                   BundleStats *ret_stats, FnError *reterr)
{
        _cleanup_free_ Extract *x = NULL;
        int r;

        if (!dest_dir)
                return fn_error_set(reterr, -EINVAL, "no destination directory");
        if (!data || len == 0)
                return fn_error_set(reterr, -EINVAL, "bundle is empty");
        x = calloc(1, sizeof(*x));
        if (!x)
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        x->lim = lim ?: &bundle_default_limits;
        x->root_fd = -EBADF;
        x->reterr = reterr;

        r = extract_open(x, data, len, dest_dir);
        if (r >= 0)
                r = extract_all(x);
        extract_done(x);
        if (r < 0) {
                log_debug("Bundle extraction into '%s' failed: %s", dest_dir,
                          reterr ? reterr->msg : "");
                return r;
        }
        if (ret_stats)
                *ret_stats = (BundleStats){.bytes = x->bytes, .entries = x->entries};
        return 0;
}
