/* SPDX-License-Identifier: Apache-2.0 */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
        ST_HEAD,
        ST_BODY_START,
        ST_LENGTH,
        ST_CHUNK_SIZE,
        ST_CHUNK_DATA,
        ST_CHUNK_CRLF,
        ST_TRAILERS,
        ST_DONE,
};

/* RFC 9110 tchar. */
static bool is_tchar(char c)
{
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
                return true;
        return c && strchr("!#$%&'*+-.^_`|~", c);
}

static bool is_ows(char c)
{
        return c == ' ' || c == '\t';
}

/* The end of the head (the index just past its empty line) searched from `from`. */
static bool find_head_end(const char *buf, size_t len, size_t from, size_t *ret)
{
        for (size_t i = from; i < len; i++) {
                if (buf[i] != '\n')
                        continue;
                if (i + 1 < len && buf[i + 1] == '\n') {
                        *ret = i + 2;
                        return true;
                }
                if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
                        *ret = i + 3;
                        return true;
                }
        }
        return false;
}

/* "chunked", "close, keep-alive": the comma-separated tokens of a header value. */
static bool list_has_token(const char *v, const char *token)
{
        size_t tl = strlen(token);

        while (*v) {
                const char *end;
                size_t l;

                while (*v == ',' || is_ows(*v))
                        v++;
                end = v;
                while (*end && *end != ',')
                        end++;
                l = (size_t)(end - v);
                while (l > 0 && is_ows(v[l - 1]))
                        l--;
                if (l == tl && strncasecmp(v, token, tl) == 0)
                        return true;
                v = end;
        }
        return false;
}

static int parse_content_length(HttpRequest *req, const char *v)
{
        uint64_t n = 0;
        size_t digits = 0;

        for (; *v; v++, digits++) {
                if (*v < '0' || *v > '9' || digits >= 15)
                        return -400;
                n = n * 10 + (uint64_t)(*v - '0');
        }
        if (digits == 0 || (req->has_length && req->content_length != n))
                return -400;
        req->has_length = true;
        req->content_length = n;
        return 0;
}

static int parse_header(HttpRequest *req, char *buf, char *line, char *colon, char *end)
{
        char *v = colon + 1, *name = line;

        if (colon == line)
                return -400;
        for (char *p = line; p < colon; p++)
                if (!is_tchar(*p))
                        return -400;
        *colon = '\0';
        while (v < end && is_ows(*v))
                v++;
        while (end > v && is_ows(end[-1]))
                end--;
        for (char *p = v; p < end; p++) {
                if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
                        return -400;
        }
        *end = '\0';

        if (strcasecmp(name, "content-length") == 0)
                return parse_content_length(req, v);
        if (strcasecmp(name, "transfer-encoding") == 0) {
                if (req->chunked || strcasecmp(v, "chunked") != 0)
                        return strcasecmp(v, "chunked") == 0 ? -400 : -501;
                req->chunked = true;
        } else if (strcasecmp(name, "connection") == 0) {
                if (list_has_token(v, "close"))
                        req->keep_alive = false;
                else if (list_has_token(v, "keep-alive"))
                        req->keep_alive = true;
        } else if (strcasecmp(name, "expect") == 0) {
                req->expect_continue = strcasecmp(v, "100-continue") == 0;
        } else if (strcasecmp(name, "lambda-runtime-function-error-type") == 0) {
                req->error_type_off = (size_t)(v - buf);
                req->error_type_len = (size_t)(end - v);
        }
        return 0;
}

static int parse_request_line(HttpRequest *req, char *buf, char *line, char *end)
{
        char *sp1 = memchr(line, ' ', (size_t)(end - line)), *sp2, *target, *q;
        size_t mlen;

        if (!sp1 || sp1 == line)
                return -400;
        mlen = (size_t)(sp1 - line);
        for (char *p = line; p < sp1; p++)
                if (!is_tchar(*p))
                        return -400;
        target = sp1 + 1;
        sp2 = memchr(target, ' ', (size_t)(end - target));
        if (!sp2 || sp2 == target || *target != '/')
                return -400;
        for (char *p = target; p < sp2; p++)
                if ((unsigned char)*p <= 0x20 || *p == 0x7f)
                        return -400;
        if ((size_t)(end - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/", 5) != 0 || sp2[7] != '.' ||
            sp2[6] < '0' || sp2[6] > '9' || sp2[8] < '0' || sp2[8] > '9')
                return -400;
        if (sp2[6] != '1' || (sp2[8] != '0' && sp2[8] != '1'))
                return -505;
        req->keep_alive = sp2[8] == '1';

        if (mlen == 3 && memcmp(line, "GET", 3) == 0)
                req->method = HTTP_METHOD_GET;
        else if (mlen == 4 && memcmp(line, "POST", 4) == 0)
                req->method = HTTP_METHOD_POST;
        else
                req->method = HTTP_METHOD_OTHER;
        q = memchr(target, '?', (size_t)(sp2 - target));
        if (!q)
                q = sp2;
        *q = '\0';
        req->path_off = (size_t)(target - buf);
        req->path_len = (size_t)(q - target);
        return 0;
}

/* Parses buf[0..end), the complete head. */
static int parse_head(HttpRequest *req, char *buf, size_t end)
{
        char *p = buf, *stop = buf + end;
        bool first = true;
        int r;

        if (memchr(buf, '\0', end))
                return -400;
        while (p < stop) {
                char *nl = memchr(p, '\n', (size_t)(stop - p)), *le, *next;

                if (!nl)
                        return -400; /* cannot happen: the head ends with an empty line */
                next = nl + 1;
                le = nl;
                if (le > p && le[-1] == '\r')
                        le--;
                if (le == p) /* the empty line */
                        break;
                if (memchr(p, '\r', (size_t)(le - p)))
                        return -400; /* a bare CR */
                if (first) {
                        r = parse_request_line(req, buf, p, le);
                        first = false;
                } else {
                        char *colon;

                        if (is_ows(*p))
                                return -400; /* obsolete line folding */
                        colon = memchr(p, ':', (size_t)(le - p));
                        if (!colon)
                                return -400;
                        r = parse_header(req, buf, p, colon, le);
                }
                if (r < 0)
                        return r;
                p = next;
        }
        if (first || (req->chunked && req->has_length))
                return -400;
        return 0;
}

static int hex_value(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* One "SIZE[;ext]\r\n" line at buf[pos..nl]. */
static int parse_chunk_size(const char *line, const char *nl, uint64_t *ret)
{
        uint64_t n = 0;
        size_t digits = 0;
        const char *p = line;

        for (; p < nl && hex_value(*p) >= 0; p++, digits++) {
                if (digits >= 15)
                        return -400;
                n = n << 4 | (uint64_t)hex_value(*p);
        }
        if (digits == 0)
                return -400;
        while (p < nl && is_ows(*p))
                p++;
        if (p < nl && *p == ';') /* chunk extensions: ignored, but no control characters */
                for (; p < nl && *p != '\r'; p++)
                        if ((unsigned char)*p < 0x20 && *p != '\t')
                                return -400;
        if (p < nl && *p == '\r')
                p++;
        if (p != nl)
                return -400;
        *ret = n;
        return 0;
}

int http_parse(HttpRequest *req, char *buf, size_t len, size_t body_max)
{
        for (;;) {
                switch (req->state) {
                case ST_HEAD: {
                        size_t end;
                        int r;

                        if (!find_head_end(buf, len, req->pos, &end)) {
                                if (len > HTTP_HEAD_MAX)
                                        return -431;
                                /* A terminator is at most 3 bytes and starts with '\n'. */
                                req->pos = len >= 2 ? len - 2 : 0;
                                return HTTP_PARSE_MORE;
                        }
                        if (end > HTTP_HEAD_MAX)
                                return -431;
                        r = parse_head(req, buf, end);
                        if (r < 0)
                                return r;
                        req->head_len = end;
                        req->pos = end;
                        req->state = ST_BODY_START;
                        return HTTP_PARSE_HEAD;
                }
                case ST_BODY_START:
                        if (req->has_length && req->content_length > body_max)
                                return -413;
                        req->body_len = 0;
                        req->state = req->chunked ? ST_CHUNK_SIZE : ST_LENGTH;
                        break;
                case ST_LENGTH: {
                        uint64_t want = req->has_length ? req->content_length : 0;

                        if (len - req->head_len < want)
                                return HTTP_PARSE_MORE;
                        req->body_len = (size_t)want;
                        req->consumed = req->head_len + (size_t)want;
                        req->state = ST_DONE;
                        return HTTP_PARSE_DONE;
                }
                case ST_CHUNK_SIZE: {
                        char *nl = memchr(buf + req->pos, '\n', len - req->pos);
                        uint64_t size;
                        int r;

                        if (!nl)
                                return len - req->pos > HTTP_LINE_MAX ? -400 : HTTP_PARSE_MORE;
                        if ((size_t)(nl - (buf + req->pos)) > HTTP_LINE_MAX)
                                return -400;
                        r = parse_chunk_size(buf + req->pos, nl, &size);
                        if (r < 0)
                                return r;
                        req->pos = (size_t)(nl + 1 - buf);
                        if (size == 0) {
                                req->line_bytes = 0;
                                req->state = ST_TRAILERS;
                        } else if (size > body_max || req->body_len + size > body_max)
                                return -413;
                        else {
                                req->chunk_left = size;
                                req->state = ST_CHUNK_DATA;
                        }
                        break;
                }
                case ST_CHUNK_DATA: {
                        size_t n = len - req->pos;

                        if (n > req->chunk_left)
                                n = (size_t)req->chunk_left;
                        if (n == 0)
                                return HTTP_PARSE_MORE;
                        /* Decoded bytes never overtake the raw ones: dest <= src. */
                        memmove(buf + req->head_len + req->body_len, buf + req->pos, n);
                        req->body_len += n;
                        req->pos += n;
                        req->chunk_left -= n;
                        if (req->chunk_left > 0)
                                return HTTP_PARSE_MORE;
                        req->state = ST_CHUNK_CRLF;
                        break;
                }
                case ST_CHUNK_CRLF:
                        if (len - req->pos < 1)
                                return HTTP_PARSE_MORE;
                        if (buf[req->pos] == '\n')
                                req->pos += 1;
                        else if (buf[req->pos] != '\r')
                                return -400;
                        else if (len - req->pos < 2)
                                return HTTP_PARSE_MORE;
                        else if (buf[req->pos + 1] != '\n')
                                return -400;
                        else
                                req->pos += 2;
                        req->state = ST_CHUNK_SIZE;
                        break;
                case ST_TRAILERS: {
                        char *line = buf + req->pos;
                        char *nl = memchr(line, '\n', len - req->pos);

                        if (!nl)
                                return req->line_bytes + (len - req->pos) > HTTP_LINE_MAX
                                           ? -400
                                           : HTTP_PARSE_MORE;
                        req->line_bytes += (size_t)(nl + 1 - line);
                        if (req->line_bytes > HTTP_LINE_MAX)
                                return -400;
                        req->pos = (size_t)(nl + 1 - buf);
                        if (nl == line || (nl == line + 1 && line[0] == '\r')) {
                                req->consumed = req->pos;
                                req->state = ST_DONE;
                                return HTTP_PARSE_DONE;
                        }
                        break; /* a trailer field: ignored */
                }
                case ST_DONE:
                        return HTTP_PARSE_DONE;
                default:
                        return -400;
                }
        }
}

/* ---- JSON ---------------------------------------------------------------------------------- */

typedef struct Json {
        const char *s;
        size_t len, pos;
} Json;

static void json_ws(Json *j)
{
        while (j->pos < j->len && j->s[j->pos] && strchr(" \t\r\n", j->s[j->pos]))
                j->pos++;
}

static int json_hex4(Json *j, uint32_t *ret)
{
        uint32_t v = 0;

        if (j->len - j->pos < 4)
                return -EINVAL;
        for (int i = 0; i < 4; i++) {
                int h = hex_value(j->s[j->pos + (size_t)i]);

                if (h < 0)
                        return -EINVAL;
                v = v << 4 | (uint32_t)h;
        }
        j->pos += 4;
        *ret = v;
        return 0;
}

static size_t utf8_put(char *out, uint32_t c)
{
        if (c < 0x80) {
                out[0] = (char)c;
                return 1;
        }
        if (c < 0x800) {
                out[0] = (char)(0xc0 | c >> 6);
                out[1] = (char)(0x80 | (c & 0x3f));
                return 2;
        }
        if (c < 0x10000) {
                out[0] = (char)(0xe0 | c >> 12);
                out[1] = (char)(0x80 | (c >> 6 & 0x3f));
                out[2] = (char)(0x80 | (c & 0x3f));
                return 3;
        }
        out[0] = (char)(0xf0 | c >> 18);
        out[1] = (char)(0x80 | (c >> 12 & 0x3f));
        out[2] = (char)(0x80 | (c >> 6 & 0x3f));
        out[3] = (char)(0x80 | (c & 0x3f));
        return 4;
}

/* A string starting at the opening quote. With out (at least as large as the raw string, which
 * no decoded form exceeds), decodes it there; *ret_len gets the decoded length. */
static int json_string(Json *j, char *out, size_t *ret_len)
{
        size_t o = 0;

        if (j->pos >= j->len || j->s[j->pos] != '"')
                return -EINVAL;
        j->pos++;
        while (j->pos < j->len) {
                char c = j->s[j->pos++];
                uint32_t u, lo;

                if (c == '"') {
                        if (ret_len)
                                *ret_len = o;
                        return 0;
                }
                if ((unsigned char)c < 0x20)
                        return -EINVAL;
                if (c != '\\') {
                        if (out)
                                out[o] = c;
                        o++;
                        continue;
                }
                if (j->pos >= j->len)
                        return -EINVAL;
                c = j->s[j->pos++];
                switch (c) {
                case '"':
                case '\\':
                case '/':
                        break;
                case 'b':
                        c = '\b';
                        break;
                case 'f':
                        c = '\f';
                        break;
                case 'n':
                        c = '\n';
                        break;
                case 'r':
                        c = '\r';
                        break;
                case 't':
                        c = '\t';
                        break;
                case 'u':
                        if (json_hex4(j, &u) < 0)
                                return -EINVAL;
                        if (u >= 0xd800 && u <= 0xdbff && j->len - j->pos >= 6 &&
                            j->s[j->pos] == '\\' && j->s[j->pos + 1] == 'u') {
                                size_t save = j->pos;

                                j->pos += 2;
                                if (json_hex4(j, &lo) == 0 && lo >= 0xdc00 && lo <= 0xdfff)
                                        u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                                else
                                        j->pos = save;
                        }
                        if (u >= 0xd800 && u <= 0xdfff)
                                u = 0xfffd;
                        else if (u == 0)
                                u = '?';
                        /* Six escaped bytes (twelve for a pair) never decode to more. */
                        if (out)
                                o += utf8_put(out + o, u);
                        else
                                o += utf8_put((char[4]){0}, u);
                        continue;
                default:
                        return -EINVAL;
                }
                if (out)
                        out[o] = c;
                o++;
        }
        return -EINVAL;
}

static bool is_scalar_char(char c)
{
        return c && strchr("0123456789+-.eEtruefalsn", c);
}

/* Skips any value. Nesting is only counted, not checked: enough to find the next member. */
static int json_skip(Json *j)
{
        size_t depth = 0;

        do {
                char c;

                json_ws(j);
                if (j->pos >= j->len)
                        return -EINVAL;
                c = j->s[j->pos];
                if (c == '"') {
                        if (json_string(j, NULL, NULL) < 0)
                                return -EINVAL;
                } else if (c == '{' || c == '[') {
                        depth++;
                        j->pos++;
                } else if (c == '}' || c == ']') {
                        if (depth == 0)
                                return -EINVAL;
                        depth--;
                        j->pos++;
                } else if (depth > 0 && (c == ',' || c == ':'))
                        j->pos++;
                else if (is_scalar_char(c)) {
                        while (j->pos < j->len && is_scalar_char(j->s[j->pos]))
                                j->pos++;
                } else
                        return -EINVAL;
        } while (depth > 0);
        return 0;
}

int json_get_string(const char *s, size_t len, const char *key, char **ret)
{
        Json j = {.s = s, .len = len};
        size_t klen = strlen(key);

        json_ws(&j);
        if (j.pos >= j.len || s[j.pos] != '{')
                return -EINVAL;
        j.pos++;
        json_ws(&j);
        if (j.pos < j.len && s[j.pos] == '}')
                return -ENOENT;
        for (;;) {
                size_t kstart, klen_raw, vstart, vlen;
                bool match;
                char *out;

                json_ws(&j);
                kstart = j.pos;
                if (json_string(&j, NULL, NULL) < 0)
                        return -EINVAL;
                /* Keys with escapes never match: ours are plain ASCII. */
                klen_raw = j.pos - kstart - 2;
                match = klen_raw == klen && memcmp(s + kstart + 1, key, klen) == 0;
                json_ws(&j);
                if (j.pos >= j.len || s[j.pos] != ':')
                        return -EINVAL;
                j.pos++;
                json_ws(&j);
                if (match && j.pos < j.len && s[j.pos] == '"') {
                        vstart = j.pos;
                        if (json_string(&j, NULL, NULL) < 0)
                                return -EINVAL;
                        out = malloc(j.pos - vstart + 1);
                        if (!out)
                                return -ENOMEM;
                        j.pos = vstart;
                        (void)json_string(&j, out, &vlen);
                        out[vlen] = '\0';
                        *ret = out;
                        return 0;
                }
                if (json_skip(&j) < 0)
                        return -EINVAL;
                if (match)
                        return -ENOENT;
                json_ws(&j);
                if (j.pos < j.len && s[j.pos] == ',') {
                        j.pos++;
                        continue;
                }
                if (j.pos < j.len && s[j.pos] == '}')
                        return -ENOENT;
                return -EINVAL;
        }
}

int json_append_string(char *out, size_t size, size_t *pos, const char *s)
{
        size_t p = *pos;
        int r = 0;

#define PUT(c)                                                                                     \
        do {                                                                                       \
                if (p + 1 >= size) {                                                               \
                        r = -ENOBUFS;                                                              \
                        goto done;                                                                 \
                }                                                                                  \
                out[p++] = (c);                                                                    \
        } while (0)

        PUT('"');
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\') {
                        PUT('\\');
                        PUT((char)c);
                } else if (c == '\n') {
                        PUT('\\');
                        PUT('n');
                } else if (c == '\t') {
                        PUT('\\');
                        PUT('t');
                } else if (c < 0x20 || c == 0x7f) {
                        char esc[8];

                        (void)snprintf(esc, sizeof(esc), "\\u%04x", c);
                        for (char *e = esc; *e; e++)
                                PUT(*e);
                } else
                        PUT((char)c);
        }
        PUT('"');
#undef PUT
done:
        if (size > 0)
                out[p < size ? p : size - 1] = '\0';
        *pos = p;
        return r;
}
