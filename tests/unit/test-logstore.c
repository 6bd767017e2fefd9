/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "logstore.h"

static char *tail(LogStore *s, const char *fn, size_t lines, uint64_t after, uint64_t *cursor)
{
        char *out = NULL;

        assert_int_equal(logstore_tail(s, fn, lines, after, &out, cursor), 0);
        return out;
}

static void test_tail_lines_across_entries(void **state)
{
        LogStore *s = logstore_new(1024);
        uint64_t cursor = 0;
        char *t;

        assert_int_equal(logstore_append(s, "f", "a\nb\n", 4), 1);
        assert_int_equal(logstore_append(s, "f", "c\nd", 3), 2); /* no final newline */
        t = tail(s, "f", 3, 0, &cursor);
        assert_string_equal(t, "b\nc\nd\n");
        assert_int_equal(cursor, 2);
        free(t);
        t = tail(s, "f", 100, 0, NULL);
        assert_string_equal(t, "a\nb\nc\nd\n");
        free(t);
        t = tail(s, "f", 0, 0, NULL);
        assert_string_equal(t, "");
        free(t);
        logstore_free(s);
}

static void test_follow_with_cursor(void **state)
{
        LogStore *s = logstore_new(1024);
        uint64_t cursor = 0;
        char *t;

        logstore_append(s, "f", "one\n", 4);
        t = tail(s, "f", 10, 0, &cursor);
        free(t);
        assert_int_equal(cursor, 1);
        /* Nothing new: empty, cursor unchanged. */
        t = tail(s, "f", 10, cursor, &cursor);
        assert_string_equal(t, "");
        assert_int_equal(cursor, 1);
        free(t);
        logstore_append(s, "g", "other\n", 6); /* another function's entry */
        logstore_append(s, "f", "two\n", 4);
        t = tail(s, "f", 10, cursor, &cursor);
        assert_string_equal(t, "two\n");
        assert_int_equal(cursor, 3);
        free(t);
        logstore_free(s);
}

static void test_bounded_oldest_go_first(void **state)
{
        LogStore *s = logstore_new(10);
        char big[64];
        char *t;

        logstore_append(s, "f", "11111\n", 6);
        logstore_append(s, "f", "22222\n", 6); /* 12 bytes > 10: the first goes */
        t = tail(s, "f", 10, 0, NULL);
        assert_string_equal(t, "22222\n");
        free(t);
        memset(big, 'x', sizeof(big));
        logstore_append(s, "f", big, sizeof(big)); /* cut to the budget, keeps only itself */
        t = tail(s, "f", 10, 0, NULL);
        assert_int_equal(strlen(t), 11); /* 10 bytes and the added newline */
        free(t);
        logstore_free(s);
}

static void test_unknown_and_removed(void **state)
{
        LogStore *s = logstore_new(1024);
        char *t = NULL;

        assert_int_equal(logstore_tail(s, "nope", 10, 0, &t, NULL), -ENOENT);
        logstore_append(s, "f", "x\n", 2);
        logstore_remove(s, "f");
        assert_int_equal(logstore_tail(s, "f", 10, 0, &t, NULL), -ENOENT);
        logstore_free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_tail_lines_across_entries),
            cmocka_unit_test(test_follow_with_cursor),
            cmocka_unit_test(test_bounded_oldest_go_first),
            cmocka_unit_test(test_unknown_and_removed),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
