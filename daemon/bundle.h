/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Hostile-bundle extraction (DESIGN.md decision 8): zip and tar (plain or gzip) only, through
 * libarchive with the secure-extract flags, plus our own caps. Only regular files and
 * directories; symlinks only when their target, resolved lexically inside the bundle, stays
 * inside; no hard links, devices, FIFOs or sockets; modes normalized to 0644/0755 (executable
 * bit kept), no setuid/setgid/sticky; owners not restored. */

typedef struct BundleLimits {
        uint64_t max_bytes;   /* total bytes written (actual, not header sizes) */
        uint64_t max_entries; /* entries of any type */
        uint64_t max_path;    /* length of an entry's path */
        uint64_t max_depth;   /* path components */
} BundleLimits;

/* The defaults: 256 MiB written, 10000 entries, path 1024 bytes, depth 32. */
extern const BundleLimits bundle_default_limits;

typedef struct BundleStats {
        uint64_t bytes;
        uint64_t entries;
} BundleStats;

/* Extracts data (a zip or a tar/tar.gz) into the empty directory dest_dir, which the caller
 * created 0700. On any error returns -errno with reterr naming the entry and the rule it broke
 * (e.g. "entry '../x': path escapes the bundle"); the caller removes dest_dir. Blocking. */
int bundle_extract(const void *data, size_t len, const char *dest_dir, const BundleLimits *lim,
                   BundleStats *ret_stats, FnError *reterr);
