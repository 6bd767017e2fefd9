/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static int max_level = LOG_LEVEL_INFO;
static const char *log_ident = "fnbox";

void log_set_max_level(int level)
{
        max_level = level;
}

int log_get_max_level(void)
{
        return max_level;
}

void log_set_ident(const char *ident)
{
        log_ident = ident;
}

static const char *level_name(int level)
{
        switch (level) {
        case LOG_LEVEL_ERROR:
                return "error";
        case LOG_LEVEL_WARNING:
                return "warning";
        case LOG_LEVEL_INFO:
                return "info";
        default:
                return "debug";
        }
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
{
        char buf[2048];
        size_t n = 0;
        const char *p;
        va_list ap;
        int saved = errno;

        error = abs(error);
        /* Expand %m ourselves so it follows our error argument, not errno. */
        for (p = fmt; *p && n + 1 < sizeof(buf); p++) {
                if (p[0] == '%' && p[1] == 'm') {
                        const char *s = strerror(error);
                        size_t l = strlen(s);
                        /* Escape '%' in the message for the vsnprintf below. */
                        for (size_t i = 0; i < l && n + 2 < sizeof(buf); i++) {
                                if (s[i] == '%')
                                        buf[n++] = '%';
                                buf[n++] = s[i];
                        }
                        p++;
                        continue;
                }
                buf[n++] = *p;
        }
        buf[n] = '\0';

        char msg[4096];
        va_start(ap, fmt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        (void)vsnprintf(msg, sizeof(msg), buf, ap);
#pragma GCC diagnostic pop
        va_end(ap);

        if (max_level >= LOG_LEVEL_DEBUG)
                fprintf(stderr, "%s[%d] %s: %s (%s:%d)\n", log_ident, (int)getpid(),
                        level_name(level), msg, file, line);
        else
                fprintf(stderr, "%s: %s: %s\n", log_ident, level_name(level), msg);
        errno = saved;
        return -error;
}
