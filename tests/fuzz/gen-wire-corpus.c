/* SPDX-License-Identifier: Apache-2.0 */
/* Writes the seed corpus of fuzz-wire into DIR: each message type as wire_send() really frames
 * it (captured from a socketpair), in the input format of fuzz-wire.c (a mode byte, then the
 * packet; for memfd modes the memfd holds the bytes after the 8-byte header), plus a few
 * broken variants. Run: build/tests/fuzz/gen-wire-corpus tests/fuzz/corpus/wire */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "macro.h"
#include "util.h"
#include "wire.h"

/* Keep in sync with fuzz-wire.c. */
#define MODE_FD_NONE 0x0u
#define MODE_FD_SEALED_MEMFD 0x1u
#define MODE_FD_UNSEALED_MEMFD 0x2u
#define MODE_FD_DEVNULL 0x3u
#define MODE_EXTRA_DEVNULL 0x4u
#define MODE_HEADER_ONLY 0x8u

#define PACKET_MAX (WIRE_HEADER_SIZE + WIRE_INLINE_MAX)

static const char *out_dir;

static int write_seed(const char *name, uint8_t mode, const uint8_t *pkt, size_t len)
{
        _cleanup_free_ uint8_t *buf = malloc(len + 1);
        _cleanup_free_ char *path = NULL;

        if (!buf || asprintf(&path, "%s/%s", out_dir, name) < 0)
                return -ENOMEM;
        buf[0] = mode;
        memcpy(buf + 1, pkt, len);
        return write_file_atomic(path, buf, len + 1, 0644);
}

/* Sends env through wire_send() and returns the packet and the number of fds it carried. */
static int capture(const Fnbox__Envelope *env, int extra_fd, uint8_t *pkt, size_t *ret_len,
                   size_t *ret_fds)
{
        _cleanup_close_ int a = -EBADF, b = -EBADF;
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov = {.iov_base = pkt, .iov_len = PACKET_MAX};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = control.buf,
                            .msg_controllen = sizeof(control.buf)};
        size_t n_fds = 0;
        ssize_t n;
        int sv[2], r;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return negative_errno();
        a = sv[0];
        b = sv[1];
        r = wire_send(a, env, extra_fd);
        if (r < 0)
                return r;
        n = recvmsg(b, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return negative_errno();
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                for (size_t i = 0; i < k; i++) {
                        int fd;

                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        (void)safe_close(fd);
                        n_fds++;
                }
        }
        *ret_len = (size_t)n;
        *ret_fds = n_fds;
        return 0;
}

/* The seed for env as wire_send() frames it inline (with /dev/null as the extra fd if asked). */
static int seed(const char *name, const Fnbox__Envelope *env, bool with_fd)
{
        static uint8_t pkt[PACKET_MAX];
        _cleanup_close_ int devnull = -EBADF;
        size_t len, n_fds;
        int r;

        if (with_fd) {
                devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (devnull < 0)
                        return negative_errno();
        }
        r = capture(env, devnull, pkt, &len, &n_fds);
        if (r < 0)
                return r;
        if (n_fds != (with_fd ? 1u : 0u))
                return -EPROTO;
        return write_seed(name, with_fd ? MODE_FD_DEVNULL : MODE_FD_NONE, pkt, len);
}

/* The same message framed the way wire_send() does for big envelopes: the header alone in the
 * packet, the envelope in a sealed memfd. Small here, to keep the corpus small; the receiver
 * accepts any length up to WIRE_MESSAGE_MAX on that path. */
static int seed_memfd(const char *name, const Fnbox__Envelope *env, bool with_fd, bool sealed)
{
        size_t len = fnbox__envelope__get_packed_size(env);
        _cleanup_free_ uint8_t *pkt = malloc(WIRE_HEADER_SIZE + len);
        uint8_t mode;

        if (!pkt)
                return -ENOMEM;
        pkt[0] = 'F';
        pkt[1] = WIRE_FLAG_MEMFD | (with_fd ? WIRE_FLAG_FD : 0);
        pkt[2] = pkt[3] = 0;
        for (unsigned i = 0; i < 4; i++)
                pkt[4 + i] = (uint8_t)(len >> (8 * i));
        (void)fnbox__envelope__pack(env, pkt + WIRE_HEADER_SIZE);
        mode = (sealed ? MODE_FD_SEALED_MEMFD : MODE_FD_UNSEALED_MEMFD) | MODE_HEADER_ONLY |
               (with_fd ? MODE_EXTRA_DEVNULL : 0);
        return write_seed(name, mode, pkt, WIRE_HEADER_SIZE + len);
}

/* Broken framings of one valid inline packet. */
static int seed_broken(const Fnbox__Envelope *env)
{
        static uint8_t pkt[PACKET_MAX];
        size_t len, n_fds;
        int r;

        r = capture(env, -EBADF, pkt, &len, &n_fds);
        if (r < 0)
                return r;
        if ((r = write_seed("bad-short-header", MODE_FD_NONE, pkt, 5)) < 0 ||
            (r = write_seed("bad-truncated-body", MODE_FD_NONE, pkt, len - 1)) < 0 ||
            (r = write_seed("bad-fd-not-announced", MODE_FD_DEVNULL, pkt, len)) < 0 ||
            (r = write_seed("bad-empty-packet", MODE_FD_NONE, pkt, 0)) < 0)
                return r;
        pkt[0] = 'G';
        if ((r = write_seed("bad-magic", MODE_FD_NONE, pkt, len)) < 0)
                return r;
        pkt[0] = 'F';
        pkt[1] = 0x80;
        if ((r = write_seed("bad-flags", MODE_FD_NONE, pkt, len)) < 0)
                return r;
        pkt[1] = WIRE_FLAG_FD;
        if ((r = write_seed("bad-fd-missing", MODE_FD_NONE, pkt, len)) < 0)
                return r;
        pkt[1] = WIRE_FLAG_MEMFD;
        if ((r = write_seed("bad-memfd-is-devnull", MODE_FD_DEVNULL | MODE_HEADER_ONLY, pkt, len)) <
            0)
                return r;
        pkt[1] = 0;
        pkt[7] = 0x7f; /* length far beyond the packet */
        return write_seed("bad-length", MODE_FD_NONE, pkt, len);
}

int main(int argc, char **argv)
{
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__Ready ready = FNBOX__READY__INIT;
        Fnbox__Init init = FNBOX__INIT__INIT;
        Fnbox__EnvVar ev[2] = {FNBOX__ENV_VAR__INIT, FNBOX__ENV_VAR__INIT};
        Fnbox__EnvVar *evp[2] = {&ev[0], &ev[1]};
        Fnbox__InitResult ires = FNBOX__INIT_RESULT__INIT;
        Fnbox__Invoke inv = FNBOX__INVOKE__INIT;
        Fnbox__Result res = FNBOX__RESULT__INIT;
        Fnbox__Shutdown sd = FNBOX__SHUTDOWN__INIT;
        static uint8_t payload[] = "{\"hello\":\"world\"}";
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: %s DIR\n", argv[0]);
                return 2;
        }
        out_dir = argv[1];
        if (mkdir_p(out_dir, 0755) < 0)
                return 1;

        r = seed("empty-envelope", &env, false);

        ready.agent_pid = 1;
        ready.agent_version = "0.1.0";
        ready.ready_usec = 123456789;
        env.msg_case = FNBOX__ENVELOPE__MSG_READY;
        env.ready = &ready;
        if (r >= 0)
                r = seed("ready-with-log-fd", &env, true);
        if (r >= 0)
                r = seed_memfd("ready-memfd-with-log-fd", &env, true, true);

        ev[0].key = "GREETING";
        ev[0].value = "hello";
        ev[1].key = "EMPTY";
        ev[1].value = "";
        init.runtime = "native";
        init.handler = "lib/echo.so:handle";
        init.function_name = "echo";
        init.function_version = "3";
        init.memory_mb = 128;
        init.timeout_ms = 3000;
        init.n_env = 2;
        init.env = evp;
        env.msg_case = FNBOX__ENVELOPE__MSG_INIT;
        env.init = &init;
        if (r >= 0)
                r = seed("init", &env, false);

        ires.ok = false;
        ires.error_type = "HandlerNotFound";
        ires.error_message = "dlsym(handle): undefined symbol";
        ires.init_usec = 4200;
        env.msg_case = FNBOX__ENVELOPE__MSG_INIT_RESULT;
        env.init_result = &ires;
        if (r >= 0)
                r = seed("init-result-error", &env, false);
        ires.ok = true;
        ires.error_type = ires.error_message = "";
        if (r >= 0)
                r = seed("init-result-ok", &env, false);

        inv.request_id = "0123456789abcdef0123456789abcdef";
        inv.payload.data = payload;
        inv.payload.len = sizeof(payload) - 1;
        inv.deadline_unix_ms = 1700000000000ULL;
        env.msg_case = FNBOX__ENVELOPE__MSG_INVOKE;
        env.invoke = &inv;
        if (r >= 0)
                r = seed("invoke", &env, false);
        if (r >= 0)
                r = seed_memfd("invoke-memfd", &env, false, true);
        if (r >= 0)
                r = seed_memfd("bad-invoke-memfd-unsealed", &env, false, false);

        res.request_id = inv.request_id;
        res.status = FNBOX__STATUS__STATUS_OK;
        res.payload = inv.payload;
        res.run_usec = 17;
        env.msg_case = FNBOX__ENVELOPE__MSG_RESULT;
        env.result = &res;
        if (r >= 0)
                r = seed("result-ok", &env, false);
        res.status = FNBOX__STATUS__STATUS_FUNCTION_ERROR;
        res.payload.len = 0;
        res.error_type = "FunctionError";
        res.error_message = "boom";
        if (r >= 0)
                r = seed("result-function-error", &env, false);

        env.msg_case = FNBOX__ENVELOPE__MSG_SHUTDOWN;
        env.shutdown = &sd;
        if (r >= 0)
                r = seed("shutdown", &env, false);
        if (r >= 0)
                r = seed_broken(&env);
        if (r < 0) {
                fprintf(stderr, "gen-wire-corpus: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}
