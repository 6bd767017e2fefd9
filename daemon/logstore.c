/* SPDX-License-Identifier: Apache-2.0 */
#include "logstore.h"

#include <string.h>

typedef struct Entry {
        uint64_t seq;
        size_t len;
        struct Entry *next;
        char text[]; /* len bytes, not NUL-terminated */
} Entry;

typedef struct FnLog {
        char name[65];
        Entry *head, *tail; /* oldest first */
        size_t bytes;
        struct FnLog *next;
} FnLog;

struct LogStore {
        size_t bytes_per_function;
        uint64_t seq;
        FnLog *fns;
};

LogStore *logstore_new(size_t bytes_per_function)
{
        LogStore *s = calloc(1, sizeof(*s));

        if (s)
                s->bytes_per_function = bytes_per_function;
        return s;
}

static void fnlog_free(FnLog *f)
{
        while (f->head) {
                Entry *e = f->head;
                f->head = e->next;
                free(e);
        }
        free(f);
}

LogStore *logstore_free(LogStore *s)
{
        if (!s)
                return NULL;
        while (s->fns) {
                FnLog *f = s->fns;
                s->fns = f->next;
                fnlog_free(f);
        }
        free(s);
        return NULL;
}

static FnLog *fnlog_find(const LogStore *s, const char *function)
{
        for (FnLog *f = s->fns; f; f = f->next)
                if (strcmp(f->name, function) == 0)
                        return f;
        return NULL;
}

uint64_t logstore_append(LogStore *s, const char *function, const char *text, size_t len)
{
        FnLog *f = fnlog_find(s, function);
        Entry *e;

        /* One entry never takes more than the whole budget of its function. */
        if (len > s->bytes_per_function)
                len = s->bytes_per_function;
        if (!f) {
                f = calloc(1, sizeof(*f));
                if (!f)
                        return 0;
                (void)snprintf(f->name, sizeof(f->name), "%s", function);
                f->next = s->fns;
                s->fns = f;
        }
        e = malloc(sizeof(*e) + len);
        if (!e)
                return 0;
        e->seq = ++s->seq;
        e->len = len;
        e->next = NULL;
        memcpy(e->text, text, len);
        if (f->tail)
                f->tail->next = e;
        else
                f->head = e;
        f->tail = e;
        f->bytes += len;
        while (f->bytes > s->bytes_per_function && f->head != f->tail) {
                Entry *old = f->head;
                f->head = old->next;
                f->bytes -= old->len;
                free(old);
        }
        return e->seq;
}

int logstore_tail(const LogStore *s, const char *function, size_t lines, uint64_t after, char **ret,
                  uint64_t *ret_cursor)
{
        const FnLog *f = fnlog_find(s, function);
        size_t total = 0, start_off, n = 0, skip;
        uint64_t cursor = after;
        char *buf, *p;

        if (!f)
                return -ENOENT;
        for (const Entry *e = f->head; e; e = e->next)
                if (e->seq > after) {
                        total += e->len + 1; /* room for a missing final newline */
                        cursor = e->seq;
                }
        buf = malloc(total + 1);
        if (!buf)
                return -ENOMEM;
        p = buf;
        for (const Entry *e = f->head; e; e = e->next) {
                if (e->seq <= after)
                        continue;
                memcpy(p, e->text, e->len);
                p += e->len;
                if (e->len > 0 && e->text[e->len - 1] != '\n')
                        *p++ = '\n';
        }
        *p = '\0';
        /* Keep the last `lines` lines. */
        start_off = (size_t)(p - buf);
        for (skip = start_off; skip > 0; skip--) {
                if (buf[skip - 1] == '\n' && skip != start_off) {
                        if (++n == lines)
                                break;
                }
        }
        if (lines == 0)
                skip = start_off;
        if (skip > 0)
                memmove(buf, buf + skip, start_off - skip + 1);
        *ret = buf;
        if (ret_cursor)
                *ret_cursor = cursor;
        return 0;
}

void logstore_remove(LogStore *s, const char *function)
{
        for (FnLog **pp = &s->fns; *pp; pp = &(*pp)->next)
                if (strcmp((*pp)->name, function) == 0) {
                        FnLog *f = *pp;
                        *pp = f->next;
                        fnlog_free(f);
                        return;
                }
}
