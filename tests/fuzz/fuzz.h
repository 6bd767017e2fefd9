/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The libFuzzer entry point every tests/fuzz/fuzz-<target>.c defines. It is called by libFuzzer
 * (-Dfuzz=true with clang) or by fuzz-main.c, which replays tests/fuzz/corpus/<target>/. data is
 * exactly size bytes, not NUL-terminated. Returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant in a harness is a finding: abort() so that libFuzzer saves the input as a
 * crash and the replay driver's TAP stream ends early (the test fails). Unlike assert(), this
 * stays on under NDEBUG. */
#define FUZZ_CHECK(expr)                                                                           \
        do {                                                                                       \
                if (!(expr)) {                                                                     \
                        fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__,      \
                                #expr);                                                            \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

/* The lowest free fd number. The kernel hands out the lowest free number, so an fd leaked by
 * one input raises this for every later input: comparing it across inputs finds leaks for the
 * cost of one dup. */
static inline int fuzz_lowest_free_fd(void)
{
        int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0);

        FUZZ_CHECK(fd >= 0);
        (void)close(fd);
        return fd;
}
