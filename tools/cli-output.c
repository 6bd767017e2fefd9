/* SPDX-License-Identifier: Apache-2.0 */
#include "cli-internal.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

enum {
        COL_NAME,
        COL_RUNTIME,
        COL_HANDLER,
        COL_MEMORY,
        COL_TIMEOUT,
        COL_VERSION,
        COL_UPDATED,
        _COL_MAX,
};

static const char *const column_titles[_COL_MAX] = {
    "NAME", "RUNTIME", "HANDLER", "MEMORY", "TIMEOUT", "VERSION", "UPDATED",
};

/* A table cell; longer values are cut, this is for people (-o json has everything). */
typedef char Cell[96];

/* Each message is formatted first and written with one call, so lines never interleave. */
int cli_fail(int code, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;

        va_start(ap, fmt);
        (void)vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        (void)fflush(stdout);
        fprintf(stderr, "fnbox: %s\n", buf);
        return code;
}

void cli_warn(bool quiet, const char *fmt, ...)
{
        char buf[1024];
        va_list ap;

        if (quiet)
                return;
        va_start(ap, fmt);
        (void)vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        fprintf(stderr, "fnbox: warning: %s\n", buf);
}

int cli_print_json(json_t *j)
{
        if (json_dumpf(j, stdout, JSON_INDENT(2)) < 0 || fputc('\n', stdout) == EOF)
                return -EIO;
        return 0;
}

/* Copies s into a cell, replacing control characters: names and handlers come from the daemon
 * and must not drive the terminal. */
static void cell_set(Cell c, const char *s)
{
        size_t n = 0;

        for (; *s && n + 1 < sizeof(Cell); s++) {
                char ch = *s;
                if ((unsigned char)ch < 0x20 || ch == 0x7f)
                        ch = '?';
                c[n++] = ch;
        }
        c[n] = '\0';
}

static void cell_from_json(Cell c, json_t *v, const char *unit)
{
        if (json_is_string(v))
                cell_set(c, json_string_value(v));
        else if (json_is_integer(v))
                (void)snprintf(c, sizeof(Cell), "%" JSON_INTEGER_FORMAT "%s", json_integer_value(v),
                               unit);
        else
                cell_set(c, "-");
}

/* "2024-05-01T12:00:00.123Z" (the daemon's RFC 3339) is shown as is, to the second; a number is
 * taken as Unix time in seconds, milliseconds or microseconds by its magnitude. */
static void cell_from_time(Cell c, json_t *v)
{
        struct tm tm;
        time_t t;

        if (json_is_string(v)) {
                const char *s = json_string_value(v), *dot = strchr(s, '.');
                cell_set(c, s);
                if (dot && (size_t)(dot - s) < sizeof(Cell) - 2 && strchr(dot, 'Z')) {
                        c[dot - s] = 'Z';
                        c[dot - s + 1] = '\0';
                }
                return;
        }
        if (!json_is_integer(v)) {
                cell_set(c, "-");
                return;
        }
        t = (time_t)json_integer_value(v);
        if (t > 100000000000000LL)
                t /= 1000000;
        else if (t > 100000000000LL)
                t /= 1000;
        if (!gmtime_r(&t, &tm) || strftime(c, sizeof(Cell), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                cell_set(c, "-");
}

static void row_from_function(Cell row[_COL_MAX], json_t *f)
{
        cell_from_json(row[COL_NAME], json_object_get(f, "name"), "");
        cell_from_json(row[COL_RUNTIME], json_object_get(f, "runtime"), "");
        cell_from_json(row[COL_HANDLER], json_object_get(f, "handler"), "");
        cell_from_json(row[COL_MEMORY], json_object_get(f, "memory_mb"), "MB");
        cell_from_json(row[COL_TIMEOUT], json_object_get(f, "timeout_ms"), "ms");
        cell_from_json(row[COL_VERSION], json_object_get(f, "version"), "");
        cell_from_time(row[COL_UPDATED], json_object_get(f, "updated_at"));
}

static void print_row(Cell row[_COL_MAX], const size_t width[_COL_MAX])
{
        for (size_t i = 0; i < _COL_MAX; i++) {
                if (i + 1 < _COL_MAX)
                        printf("%-*s  ", (int)width[i], row[i]);
                else
                        printf("%s\n", row[i]);
        }
}

int cli_print_function_table(json_t *fns)
{
        _cleanup_free_ Cell(*rows)[_COL_MAX] = NULL;
        size_t n = json_array_size(fns), width[_COL_MAX];
        Cell titles[_COL_MAX];

        rows = calloc(MAX(n, (size_t)1), sizeof(*rows));
        if (!rows)
                return -ENOMEM;
        for (size_t i = 0; i < _COL_MAX; i++) {
                cell_set(titles[i], column_titles[i]);
                width[i] = strlen(titles[i]);
        }
        for (size_t r = 0; r < n; r++) {
                row_from_function(rows[r], json_array_get(fns, r));
                for (size_t i = 0; i < _COL_MAX; i++)
                        width[i] = MAX(width[i], strlen(rows[r][i]));
        }
        print_row(titles, width);
        for (size_t r = 0; r < n; r++)
                print_row(rows[r], width);
        return ferror(stdout) ? -EIO : 0;
}

int cli_print_function_names(json_t *fns)
{
        size_t i;
        json_t *f;

        json_array_foreach (fns, i, f) {
                Cell c;
                cell_from_json(c, json_object_get(f, "name"), "");
                puts(c);
        }
        return ferror(stdout) ? -EIO : 0;
}

/* The first line of a non-JSON body, cut and cleaned, for answers from something that is not
 * fnboxd (a proxy, another server on the port). */
static void body_excerpt(const HttpResponse *r, char *buf, size_t size)
{
        size_t n = 0;

        for (size_t i = 0; i < r->body_len && n + 1 < size && n < 120; i++) {
                char ch = r->body[i];
                if (ch == '\n' || ch == '\r')
                        break;
                if ((unsigned char)ch < 0x20 || ch == 0x7f)
                        ch = '?';
                buf[n++] = ch;
        }
        buf[n] = '\0';
}

void cli_describe_error(const HttpResponse *r, char *buf, size_t size)
{
        json_t *root = NULL, *err;
        const char *type = NULL, *msg = NULL;
        char excerpt[128];

        if (r->body_len > 0)
                root = json_loadb(r->body, r->body_len, 0, NULL);
        err = json_object_get(root, "error");
        if (json_is_object(err)) {
                type = json_string_value(json_object_get(err, "type"));
                msg = json_string_value(json_object_get(err, "message"));
        } else if (json_is_string(err)) {
                msg = json_string_value(err);
        }
        if (msg && type)
                (void)snprintf(buf, size, "%s (%s, HTTP %ld)", msg, type, r->status);
        else if (msg)
                (void)snprintf(buf, size, "%s (HTTP %ld)", msg, r->status);
        else {
                body_excerpt(r, excerpt, sizeof(excerpt));
                (void)snprintf(buf, size, "the daemon answered HTTP %ld%s%s", r->status,
                               excerpt[0] ? ": " : "", excerpt);
        }
        json_decref(root);
        /* The message is the daemon's text; keep it from driving the terminal. */
        for (char *p = buf; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = '?';
}
