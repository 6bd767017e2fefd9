/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <dirent.h>
#include <stddef.h>
#include <sys/types.h>

#include "macro.h"

/* CLOCK_MONOTONIC / CLOCK_REALTIME in microseconds. */
usec_t now_usec(void);
usec_t now_realtime_usec(void);

/* Reads a whole file (at most max bytes; -EFBIG beyond) into a NUL-terminated buffer the caller
 * frees. dir_fd may be AT_FDCWD. */
int read_file_at(int dir_fd, const char *path, size_t max, char **ret, size_t *ret_len);
/* The same from an open fd (a pipe, stdin...), read to EOF. */
int read_fd_full(int fd, size_t max, char **ret, size_t *ret_len);
/* Writes a string to an existing file (cgroupfs/procfs style: one write, no O_CREAT). */
int write_string_file(const char *path, const char *s);
/* Creates or truncates path with mode and writes len bytes, then fsyncs it. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Loops write() until all is written. */
int loop_write(int fd, const void *buf, size_t len);

/* Opens a directory stream on dir_fd/path (path "." for dir_fd itself, which may be an O_PATH
 * fd) with a file position of its own, so the caller's fd is neither consumed nor moved.
 * extra_flags: e.g. O_NOFOLLOW. The caller closedir()s *ret. */
int opendir_at(int dir_fd, const char *path, int extra_flags, DIR **ret);

/* mkdir -p with mode for each missing component. */
int mkdir_p(const char *path, mode_t mode);
/* Removes a tree below dirfd/name without following symlinks or crossing mounts. */
int rm_rf_at(int dir_fd, const char *name);

/* Fills buf with len random bytes from getrandom(). */
int random_bytes(void *buf, size_t len);

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void hex_encode(const void *data, size_t len, char *out);

/* Standard base64 (RFC 4648, with padding). encode returns a malloc'd NUL-terminated string or
 * NULL on OOM. decode is strict: rejects bad characters, bad padding and whitespace other than
 * CR/LF; returns -EINVAL or -ENOMEM, the result is malloc'd. */
char *base64_encode(const void *data, size_t len);
int base64_decode(const char *s, size_t len, void **ret, size_t *ret_len);

/* true if s is 1..64 chars of [A-Za-z0-9_-] (function names). */
bool name_is_valid(const char *s);

/* Parses a decimal unsigned integer with no sign, no spaces, no trailing garbage. */
int parse_uint64(const char *s, uint64_t *ret);

/* A malloc'd, NUL-terminated copy of len bytes with every byte that is not part of valid UTF-8
 * (or is NUL) replaced by '?', so JSON encoders accept it. NULL on OOM. */
char *utf8_sanitize(const char *s, size_t len);
