/* SPDX-License-Identifier: Apache-2.0 */
/* hello-mhd: the fastest answer libmicrohttpd gives on this host, the baseline fnbox-bench puts
 * fnboxd's warm path next to. Built like fnboxd's HTTP side: one thread, MHD_USE_EPOLL with the
 * application driving MHD's epoll fd, and the answer queued on a later access-handler callback
 * (queueing on the first one makes libmicrohttpd 0.9.75 close every connection, see DESIGN.md).
 * Any method and path answers 200 "hello"; a request body is read and dropped.
 *
 * Usage: hello-mhd [--port N]   (0, the default, picks a free port)
 * Prints "PORT <n>" on stdout once listening, then serves until SIGTERM or SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <microhttpd.h>

#include "util.h"

static char hello_body[] = "hello";

/* con_cls is set to this on the first callback of each request. */
static int seen_marker;

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
        struct MHD_Response *resp = cls;

        if (!*con_cls) {
                *con_cls = &seen_marker;
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                *upload_data_size = 0;
                return MHD_YES;
        }
        return MHD_queue_response(conn, MHD_HTTP_OK, resp);
}

static int parse_args(int argc, char **argv, uint16_t *ret_port)
{
        static const struct option opts[] = {
            {"port", required_argument, NULL, 'p'},
            {"help", no_argument, NULL, 'h'},
            {},
        };
        uint64_t port = 0;
        int c;

        while ((c = getopt_long(argc, argv, "p:h", opts, NULL)) >= 0) {
                switch (c) {
                case 'p':
                        if (parse_uint64(optarg, &port) < 0 || port > 65535) {
                                fprintf(stderr, "hello-mhd: bad port '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'h':
                        printf("Usage: hello-mhd [--port N]\n");
                        return 0;
                default:
                        return -EINVAL;
                }
        }
        *ret_port = (uint16_t)port;
        return 1;
}

int main(int argc, char **argv)
{
        struct MHD_Daemon *mhd;
        struct MHD_Response *resp;
        const union MHD_DaemonInfo *info;
        _cleanup_close_ int ep = -EBADF, sig_fd = -EBADF;
        struct epoll_event ev;
        sigset_t mask;
        uint16_t port = 0;
        bool done = false;
        int r;

        r = parse_args(argc, argv, &port);
        if (r <= 0)
                return r < 0 ? 2 : 0;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        (void)sigprocmask(SIG_BLOCK, &mask, NULL);
        (void)signal(SIGPIPE, SIG_IGN);
        sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

        resp =
            MHD_create_response_from_buffer(strlen(hello_body), hello_body, MHD_RESPMEM_PERSISTENT);
        if (!resp || sig_fd < 0)
                return 1;
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
        mhd = MHD_start_daemon(MHD_USE_EPOLL, port, NULL, NULL, on_access, resp,
                               MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_TIMEOUT,
                               30u, MHD_OPTION_END);
        if (!mhd) {
                fprintf(stderr, "hello-mhd: cannot listen on port %u\n", port);
                return 1;
        }
        info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
        port = info ? info->port : 0;
        info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_EPOLL_FD);
        ep = epoll_create1(EPOLL_CLOEXEC);
        if (!info || ep < 0)
                return 1;
        ev = (struct epoll_event){.events = EPOLLIN, .data.fd = info->epoll_fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, info->epoll_fd, &ev) < 0)
                return 1;
        ev = (struct epoll_event){.events = EPOLLIN, .data.fd = sig_fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, sig_fd, &ev) < 0)
                return 1;
        printf("PORT %u\n", port);
        (void)fflush(stdout);

        /* The same shape as fnboxd's loop: wait on MHD's epoll fd, run MHD, repeat. */
        while (!done) {
                MHD_UNSIGNED_LONG_LONG ms;
                int timeout = -1, n;

                if (MHD_get_timeout(mhd, &ms) == MHD_YES)
                        timeout = ms > 60000 ? 60000 : (int)ms;
                n = epoll_wait(ep, &ev, 1, timeout);
                if (n < 0 && errno != EINTR)
                        break;
                if (n > 0 && ev.data.fd == sig_fd)
                        done = true;
                (void)MHD_run(mhd);
        }
        MHD_stop_daemon(mhd);
        MHD_destroy_response(resp);
        return 0;
}
