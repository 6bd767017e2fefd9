/* SPDX-License-Identifier: Apache-2.0 */
#include "cli-internal.h"

#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "config.h"

/* Only the header lines we show with `invoke -i` or use (the log cursor, the 4 KiB log tail in
 * base64); a hostile server cannot make us hold more. */
#define FNBOX_HEADERS_MAX ((size_t)16 * 1024)
#define CONNECT_TIMEOUT_SEC 5L

DEFINE_CLEANUP_FUNC(CURL *, curl_easy_cleanup);
DEFINE_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all);

typedef struct Buffer {
        char *data;
        size_t len, cap, max;
        bool overflow;
} Buffer;

static int buffer_append(Buffer *b, const void *p, size_t n)
{
        if (n > b->max - b->len) {
                b->overflow = true;
                return -EFBIG;
        }
        if (b->len + n + 1 > b->cap) {
                size_t cap = MAX(MAX(b->cap * 2, b->len + n + 1), (size_t)4096);
                char *d = realloc(b->data, cap);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

static size_t body_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        Buffer *b = userdata;
        size_t n = size * nmemb;

        /* A short count makes curl stop with CURLE_WRITE_ERROR. */
        return buffer_append(b, ptr, n) < 0 ? 0 : n;
}

static bool header_is_shown(const char *line, size_t n)
{
        static const char prefix[] = "x-fnbox-", timing[] = "server-timing:";

        return (n > strlen(prefix) && strncasecmp(line, prefix, strlen(prefix)) == 0) ||
               (n >= strlen(timing) && strncasecmp(line, timing, strlen(timing)) == 0);
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *userdata)
{
        Buffer *h = userdata;
        size_t n = size * nitems, l = n;

        /* A new status line (after a 100 Continue) starts a new header block. */
        if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                h->len = 0;
                if (h->data)
                        h->data[0] = '\0';
                return n;
        }
        while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == '\n'))
                l--;
        if (header_is_shown(line, l) && buffer_append(h, line, l) >= 0)
                (void)buffer_append(h, "\n", 1);
        return n;
}

static int curl_error_to_errno(CURLcode cc)
{
        switch (cc) {
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
                return -EHOSTUNREACH;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_ABORTED_BY_CALLBACK:
                return -ECANCELED;
        default:
                return -EIO;
        }
}

#define SETOPT(c, opt, val)                                                                        \
        do {                                                                                       \
                CURLcode _cc = curl_easy_setopt((c), (opt), (val));                                \
                if (_cc != CURLE_OK)                                                               \
                        return fn_error_set(reterr, -EINVAL, "curl: cannot set %s: %s", #opt,      \
                                            curl_easy_strerror(_cc));                              \
        } while (0)

static int add_header(struct curl_slist **list, const char *h)
{
        struct curl_slist *n = curl_slist_append(*list, h);

        if (!n)
                return -ENOMEM;
        *list = n;
        return 0;
}

static int build_headers(const CliEndpoint *ep, const HttpRequest *req, struct curl_slist **ret)
{
        _cleanup_(curl_slist_free_allp) struct curl_slist *list = NULL;
        char h[512];
        int r;

        /* The daemon answers at once; waiting for "100 Continue" would only add a round trip. */
        r = add_header(&list, "Expect:");
        if (r < 0)
                return r;
        if (req->content_type) {
                (void)snprintf(h, sizeof(h), "Content-Type: %s", req->content_type);
                r = add_header(&list, h);
                if (r < 0)
                        return r;
        }
        if (req->header) {
                r = add_header(&list, req->header);
                if (r < 0)
                        return r;
        }
        if (ep->token) {
                _cleanup_free_ char *auth = NULL;
                if (asprintf(&auth, "Authorization: Bearer %s", ep->token) < 0)
                        return -ENOMEM;
                r = add_header(&list, auth);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(list);
        return 0;
}

/* curl calls this at least once a second, also while it waits for the answer. */
static int progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
        const volatile sig_atomic_t *cancel = userdata;

        /* Non-zero makes curl stop with CURLE_ABORTED_BY_CALLBACK. */
        return *cancel ? 1 : 0;
}

static int setup_request(CURL *c, const CliEndpoint *ep, const HttpRequest *req, const char *url,
                         struct curl_slist *headers, FnError *reterr)
{
        SETOPT(c, CURLOPT_URL, url);
        SETOPT(c, CURLOPT_PROTOCOLS_STR, "http,https");
        SETOPT(c, CURLOPT_NOSIGNAL, 1L);
        SETOPT(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_SEC);
        SETOPT(c, CURLOPT_TIMEOUT, req->timeout_sec);
        SETOPT(c, CURLOPT_USERAGENT, "fnbox/" FNBOX_VERSION);
        SETOPT(c, CURLOPT_HTTPHEADER, headers);
        if (ep->unix_socket)
                SETOPT(c, CURLOPT_UNIX_SOCKET_PATH, ep->unix_socket);
        if (strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0) {
                SETOPT(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
                SETOPT(c, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
        }
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0)
                SETOPT(c, CURLOPT_CUSTOMREQUEST, req->method);
        if (req->cancel) {
                SETOPT(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
                SETOPT(c, CURLOPT_XFERINFODATA, (void *)req->cancel);
                SETOPT(c, CURLOPT_NOPROGRESS, 0L);
        }
        return 0;
}

int cli_http_request(const CliEndpoint *ep, const HttpRequest *req, HttpResponse *ret,
                     FnError *reterr)
{
        _cleanup_(curl_easy_cleanupp) CURL *c = NULL;
        _cleanup_(curl_slist_free_allp) struct curl_slist *headers = NULL;
        _cleanup_free_ char *url = NULL;
        Buffer body = {.max = CLI_RESPONSE_MAX}, hdrs = {.max = FNBOX_HEADERS_MAX};
        char errbuf[CURL_ERROR_SIZE] = "";
        long status = 0;
        CURLcode cc;
        int r;

        if (asprintf(&url, "%s%s", ep->base_url, req->path) < 0)
                return fn_error_set(reterr, -ENOMEM, "out of memory");
        c = curl_easy_init();
        if (!c)
                return fn_error_set(reterr, -ENOMEM, "cannot initialize libcurl");
        r = build_headers(ep, req, &headers);
        if (r < 0)
                return fn_error_set(reterr, r, "out of memory");
        r = setup_request(c, ep, req, url, headers, reterr);
        if (r < 0)
                return r;
        SETOPT(c, CURLOPT_ERRORBUFFER, errbuf);
        SETOPT(c, CURLOPT_WRITEFUNCTION, body_cb);
        SETOPT(c, CURLOPT_WRITEDATA, &body);
        SETOPT(c, CURLOPT_HEADERFUNCTION, header_cb);
        SETOPT(c, CURLOPT_HEADERDATA, &hdrs);

        cc = curl_easy_perform(c);
        if (cc == CURLE_OK)
                cc = curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK) {
                free(body.data);
                free(hdrs.data);
                if (cc == CURLE_ABORTED_BY_CALLBACK)
                        return fn_error_set(reterr, -ECANCELED, "%s: interrupted", ep->display);
                if (body.overflow)
                        return fn_error_set(reterr, -EFBIG, "%s: the answer exceeds %zu MiB",
                                            ep->display, CLI_RESPONSE_MAX >> 20);
                return fn_error_set(reterr, curl_error_to_errno(cc), "%s: %s", ep->display,
                                    errbuf[0] ? errbuf : curl_easy_strerror(cc));
        }
        *ret = (HttpResponse){
            .status = status,
            .body = body.data,
            .body_len = body.len,
            .fnbox_headers = hdrs.data,
        };
        return 0;
}

int http_response_header(const HttpResponse *r, const char *name, const char **ret, size_t *ret_len)
{
        size_t l = strlen(name);

        for (const char *p = r->fnbox_headers; p && *p;) {
                const char *eol = strchrnul(p, '\n');
                if ((size_t)(eol - p) > l && p[l] == ':' && strncasecmp(p, name, l) == 0) {
                        const char *v = p + l + 1, *end = eol;
                        while (v < end && (*v == ' ' || *v == '\t'))
                                v++;
                        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                                end--;
                        *ret = v;
                        *ret_len = (size_t)(end - v);
                        return 0;
                }
                p = *eol ? eol + 1 : eol;
        }
        return -ENOENT;
}

void http_response_done(HttpResponse *r)
{
        if (!r)
                return;
        free(r->body);
        free(r->fnbox_headers);
        *r = (HttpResponse){};
}
