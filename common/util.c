/* SPDX-License-Identifier: Apache-2.0 */
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

usec_t now_usec(void)
{
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / NSEC_PER_USEC;
}

usec_t now_realtime_usec(void)
{
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        return (usec_t)ts.tv_sec * USEC_PER_SEC + (usec_t)ts.tv_nsec / NSEC_PER_USEC;
}

int read_fd_full(int fd, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *buf = NULL;
        /* Read up to one byte past max: that is how a file of exactly max bytes is told from a
         * longer one without trusting st_size (procfs and sysfs report 0 or 4096). */
        size_t limit = max < SIZE_MAX - 1 ? max + 1 : SIZE_MAX - 1;
        size_t n = 0, cap = MIN((size_t)4096, limit);

        buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k;
                if (n == cap) {
                        char *nb;
                        if (cap >= limit)
                                break;
                        cap = cap > limit / 2 ? limit : cap * 2;
                        nb = realloc(buf, cap + 1);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                }
                k = read(fd, buf + n, cap - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        if (n > max)
                return -EFBIG;
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = n;
        return 0;
}

int read_file_at(int dir_fd, const char *path, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

        if (fd < 0)
                return negative_errno();
        return read_fd_full(fd, max, ret, ret_len);
}

int loop_write(int fd, const void *buf, size_t len)
{
        const char *p = buf;
        while (len > 0) {
                ssize_t k = write(fd, p, len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += k;
                len -= (size_t)k;
        }
        return 0;
}

int write_string_file(const char *path, const char *s)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        ssize_t k;

        if (fd < 0)
                return negative_errno();
        k = write(fd, s, strlen(s));
        if (k < 0)
                return negative_errno();
        if ((size_t)k != strlen(s))
                return -EIO;
        return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
        char tmp[PATH_MAX];
        _cleanup_close_ int fd = -EBADF;
        int r;

        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
                return -ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return negative_errno();
        r = loop_write(fd, data, len);
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = negative_errno();
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0)
                (void)unlink(tmp);
        return r;
}

int opendir_at(int dir_fd, const char *path, int extra_flags, DIR **ret)
{
        int fd = openat(dir_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | extra_flags);
        DIR *d;

        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                int r = negative_errno();
                (void)close(fd);
                return r;
        }
        *ret = d;
        return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
        char buf[PATH_MAX];
        size_t l = strlen(path);

        if (l == 0 || l >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, path, l + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *p = '/';
        }
        if (mkdir(buf, mode) < 0) {
                struct stat st;
                if (errno != EEXIST)
                        return negative_errno();
                /* EEXIST says nothing about the type: a file there is not a directory. */
                if (stat(buf, &st) < 0)
                        return negative_errno();
                if (!S_ISDIR(st.st_mode))
                        return -ENOTDIR;
        }
        return 0;
}

int rm_rf_at(int dir_fd, const char *name)
{
        struct stat st, parent;
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISDIR(st.st_mode))
                return RET_NERRNO(unlinkat(dir_fd, name, 0));
        if (fstat(dir_fd, &parent) >= 0 && parent.st_dev != st.st_dev)
                return -EXDEV; /* a mount point: never descend */
        r = opendir_at(dir_fd, name, O_NOFOLLOW, &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                int k;
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                k = rm_rf_at(dirfd(d), de->d_name);
                if (k < 0 && r == 0)
                        r = k;
        }
        (void)closedir(d);
        if (unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && r == 0)
                r = negative_errno();
        return r;
}

int random_bytes(void *buf, size_t len)
{
        char *p = buf;
        while (len > 0) {
                ssize_t k = getrandom(p, len, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += k;
                len -= (size_t)k;
        }
        return 0;
}

void hex_encode(const void *data, size_t len, char *out)
{
        static const char digits[] = "0123456789abcdef";
        const unsigned char *p = data;
        for (size_t i = 0; i < len; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * len] = '\0';
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const void *data, size_t len)
{
        const unsigned char *p = data;
        size_t olen = 4 * ((len + 2) / 3);
        char *out = malloc(olen + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t)p[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t)p[i + 1] << 8;
                if (i + 2 < len)
                        v |= p[i + 2];
                *o++ = b64_alphabet[(v >> 18) & 63];
                *o++ = b64_alphabet[(v >> 12) & 63];
                *o++ = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
                *o++ = i + 2 < len ? b64_alphabet[v & 63] : '=';
        }
        *o = '\0';
        return out;
}

static int b64_value(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int base64_decode(const char *s, size_t len, void **ret, size_t *ret_len)
{
        _cleanup_free_ unsigned char *out = malloc(len / 4 * 3 + 3);
        uint32_t acc = 0;
        size_t n = 0, nchars = 0, pad = 0;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                int v;
                if (c == '\r' || c == '\n')
                        continue;
                if (c == '=') {
                        pad++;
                        nchars++;
                        continue;
                }
                if (pad > 0) /* data after padding */
                        return -EINVAL;
                v = b64_value(c);
                if (v < 0)
                        return -EINVAL;
                acc = (acc << 6) | (uint32_t)v;
                nchars++;
                if (nchars % 4 == 0) {
                        out[n++] = (unsigned char)(acc >> 16);
                        out[n++] = (unsigned char)(acc >> 8);
                        out[n++] = (unsigned char)acc;
                        acc = 0;
                }
        }
        if (nchars % 4 != 0 || pad > 2)
                return -EINVAL;
        if (pad > 0) {
                /* The final quantum: acc holds 4 - pad sextets. */
                if (pad == 1) {
                        out[n++] = (unsigned char)(acc >> 10);
                        out[n++] = (unsigned char)(acc >> 2);
                } else {
                        out[n++] = (unsigned char)(acc >> 4);
                }
        }
        *ret = TAKE_PTR(out);
        *ret_len = n;
        return 0;
}

bool name_is_valid(const char *s)
{
        size_t l = 0;
        for (; s[l]; l++) {
                char c = s[l];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-'))
                        return false;
        }
        return l >= 1 && l <= 64;
}

int parse_uint64(const char *s, uint64_t *ret)
{
        uint64_t v = 0;
        if (!s || !*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t)(*s - '0');
        }
        *ret = v;
        return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if there is none. */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
        size_t need;
        uint32_t cp;

        if (s[0] < 0x80)
                return s[0] != 0;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                need = 2, cp = s[0] & 0x1f;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                need = 3, cp = s[0] & 0x0f;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                need = 4, cp = s[0] & 0x07;
        else
                return 0;
        if (n < need)
                return 0;
        for (size_t k = 1; k < need; k++) {
                if ((s[k] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are not valid. */
        if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return need;
}

char *utf8_sanitize(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        char *out = malloc(len + 1);
        size_t i = 0;

        if (!out)
                return NULL;
        while (i < len) {
                size_t k = utf8_sequence(p + i, len - i);
                if (k == 0) {
                        out[i++] = '?';
                        continue;
                }
                memcpy(out + i, p + i, k);
                i += k;
        }
        out[len] = '\0';
        return out;
}
