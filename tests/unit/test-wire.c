/* SPDX-License-Identifier: Apache-2.0 */
/* Framing of the daemon <-> agent channel: round trips through both the inline and the memfd
 * path, fd passing, and refusal (without crashes or fd leaks) of every kind of broken packet a
 * hostile agent could send. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "wire.h"

DEFINE_CLEANUP_FUNC(Fnbox__Envelope *, wire_envelope_free);

typedef struct Pair {
        int a; /* sender */
        int b; /* receiver */
} Pair;

static Pair pair_new(int extra_type)
{
        int sv[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | extra_type, 0, sv), 0);
        return (Pair){.a = sv[0], .b = sv[1]};
}

static void pair_done(Pair *p)
{
        p->a = safe_close(p->a);
        p->b = safe_close(p->b);
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1; /* the directory's own fd */
}

static void send_invoke(int sock, const char *id, const void *payload, size_t len, int extra_fd)
{
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__Invoke inv = FNBOX__INVOKE__INIT;

        inv.request_id = (char *)id;
        inv.payload.data = (uint8_t *)payload;
        inv.payload.len = len;
        inv.deadline_unix_ms = 1234567;
        env.msg_case = FNBOX__ENVELOPE__MSG_INVOKE;
        env.invoke = &inv;
        assert_int_equal(wire_send(sock, &env, extra_fd), 0);
}

static void *pattern(size_t len)
{
        uint8_t *p = malloc(len);

        assert_non_null(p);
        for (size_t i = 0; i < len; i++)
                p[i] = (uint8_t)(i * 131 + (i >> 12));
        return p;
}

static void expect_invoke(int sock, const char *id, const void *payload, size_t len)
{
        _cleanup_(wire_envelope_freep) Fnbox__Envelope *env = NULL;
        int fd = 12345;

        assert_int_equal(wire_recv(sock, &env, &fd), 0);
        assert_int_equal(fd, -EBADF);
        assert_int_equal(env->msg_case, FNBOX__ENVELOPE__MSG_INVOKE);
        assert_string_equal(env->invoke->request_id, id);
        assert_int_equal(env->invoke->deadline_unix_ms, 1234567);
        assert_int_equal(env->invoke->payload.len, len);
        if (len > 0)
                assert_memory_equal(env->invoke->payload.data, payload, len);
}

/* Raw receive on the test side, to see how wire_send framed something. */
static ssize_t raw_recv(int sock, uint8_t *buf, size_t size, int *fds, size_t *n_fds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov = {.iov_base = buf, .iov_len = size};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = control.buf,
                            .msg_controllen = sizeof(control.buf)};
        ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

        *n_fds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                memcpy(fds + *n_fds, CMSG_DATA(c), k * sizeof(int));
                *n_fds += k;
        }
        return n;
}

static void raw_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 32)];
        } control;
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        assert_true(n_fds <= 32);
        if (n_fds > 0) {
                struct cmsghdr *c;

                memset(&control, 0, sizeof(control));
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static void header(uint8_t *h, uint8_t magic, uint8_t flags, uint32_t len)
{
        h[0] = magic;
        h[1] = flags;
        h[2] = h[3] = 0;
        h[4] = (uint8_t)len;
        h[5] = (uint8_t)(len >> 8);
        h[6] = (uint8_t)(len >> 16);
        h[7] = (uint8_t)(len >> 24);
}

/* A valid packed Envelope (a Shutdown), for frames that are wrong only in their framing. */
static size_t packed_shutdown(uint8_t *out, size_t size)
{
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__Shutdown sd = FNBOX__SHUTDOWN__INIT;

        sd.reserved = 7;
        env.msg_case = FNBOX__ENVELOPE__MSG_SHUTDOWN;
        env.shutdown = &sd;
        assert_true(fnbox__envelope__get_packed_size(&env) <= size);
        return fnbox__envelope__pack(&env, out);
}

static int memfd_with(const void *data, size_t len, unsigned seals)
{
        int fd = memfd_create("test-wire", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t)len);
        if (seals)
                assert_int_equal(fcntl(fd, F_ADD_SEALS, seals), 0);
        return fd;
}

static void test_round_trip_small(void **state)
{
        Pair p = pair_new(0);
        uint8_t buf[128];
        int fds[4];
        size_t n_fds;
        ssize_t n;

        send_invoke(p.a, "req-1", "hello", 5, -EBADF);
        expect_invoke(p.b, "req-1", "hello", 5);

        /* Small messages travel inline: one packet, header + envelope, no fd. */
        send_invoke(p.a, "req-2", "", 0, -EBADF);
        n = raw_recv(p.b, buf, sizeof(buf), fds, &n_fds);
        assert_true(n > (ssize_t)WIRE_HEADER_SIZE);
        assert_int_equal(buf[0], 'F');
        assert_int_equal(buf[1], 0);
        assert_int_equal(n_fds, 0);
        assert_int_equal((uint32_t)buf[4] | (uint32_t)buf[5] << 8, n - WIRE_HEADER_SIZE);
        pair_done(&p);
}

static void test_round_trip_large_uses_sealed_memfd(void **state)
{
        Pair p = pair_new(0);
        size_t len = 100 * 1024;
        _cleanup_free_ void *payload = pattern(len);
        uint8_t buf[64];
        int fds[4];
        size_t n_fds;
        int seals;
        struct stat st;
        ssize_t n;

        send_invoke(p.a, "big", payload, len, -EBADF);
        expect_invoke(p.b, "big", payload, len);

        send_invoke(p.a, "big", payload, len, -EBADF);
        n = raw_recv(p.b, buf, sizeof(buf), fds, &n_fds);
        assert_int_equal(n, WIRE_HEADER_SIZE);
        assert_int_equal(buf[1], WIRE_FLAG_MEMFD);
        assert_int_equal(n_fds, 1);
        seals = fcntl(fds[0], F_GET_SEALS);
        assert_int_equal(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL),
                         F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
        assert_int_equal(fstat(fds[0], &st), 0);
        assert_int_equal(st.st_size, (uint32_t)buf[4] | (uint32_t)buf[5] << 8 |
                                         (uint32_t)buf[6] << 16 | (uint32_t)buf[7] << 24);
        assert_true(st.st_size > (off_t)len);
        close(fds[0]);
        pair_done(&p);
}

static void test_round_trip_6mib(void **state)
{
        Pair p = pair_new(0);
        size_t len = 6 * 1024 * 1024;
        _cleanup_free_ void *payload = pattern(len);
        int before = count_fds();

        send_invoke(p.a, "six", payload, len, -EBADF);
        expect_invoke(p.b, "six", payload, len);
        assert_int_equal(count_fds(), before);
        pair_done(&p);
}

/* The inline/memfd switch is exactly at WIRE_INLINE_MAX packed bytes. */
static void test_inline_threshold(void **state)
{
        Pair p = pair_new(0);
        _cleanup_free_ void *payload = pattern(WIRE_INLINE_MAX);
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__Invoke inv = FNBOX__INVOKE__INIT;
        _cleanup_free_ uint8_t *buf = malloc(WIRE_HEADER_SIZE + WIRE_INLINE_MAX + 16);
        int fds[4];
        size_t n_fds;
        ssize_t n;

        inv.request_id = (char *)"t";
        inv.deadline_unix_ms = 1234567;
        env.msg_case = FNBOX__ENVELOPE__MSG_INVOKE;
        env.invoke = &inv;
        inv.payload.data = payload;
        inv.payload.len = WIRE_INLINE_MAX;
        while (fnbox__envelope__get_packed_size(&env) > WIRE_INLINE_MAX)
                inv.payload.len--;
        assert_int_equal(fnbox__envelope__get_packed_size(&env), WIRE_INLINE_MAX);

        assert_int_equal(wire_send(p.a, &env, -EBADF), 0);
        n = raw_recv(p.b, buf, WIRE_HEADER_SIZE + WIRE_INLINE_MAX + 16, fds, &n_fds);
        assert_int_equal(n, WIRE_HEADER_SIZE + WIRE_INLINE_MAX);
        assert_int_equal(buf[1], 0);
        assert_int_equal(n_fds, 0);

        inv.payload.len++;
        assert_int_equal(wire_send(p.a, &env, -EBADF), 0);
        n = raw_recv(p.b, buf, WIRE_HEADER_SIZE + WIRE_INLINE_MAX + 16, fds, &n_fds);
        assert_int_equal(n, WIRE_HEADER_SIZE);
        assert_int_equal(buf[1], WIRE_FLAG_MEMFD);
        assert_int_equal(n_fds, 1);
        close(fds[0]);

        /* And both sizes round-trip through wire_recv. */
        inv.payload.len--;
        assert_int_equal(wire_send(p.a, &env, -EBADF), 0);
        expect_invoke(p.b, "t", payload, inv.payload.len);
        inv.payload.len++;
        assert_int_equal(wire_send(p.a, &env, -EBADF), 0);
        expect_invoke(p.b, "t", payload, inv.payload.len);
        pair_done(&p);
}

static void test_send_too_big(void **state)
{
        Pair p = pair_new(SOCK_NONBLOCK);
        size_t len = WIRE_MESSAGE_MAX;
        _cleanup_free_ void *payload = calloc(1, len);
        Fnbox__Envelope env = FNBOX__ENVELOPE__INIT;
        Fnbox__Invoke inv = FNBOX__INVOKE__INIT;
        Fnbox__Envelope *got = NULL;

        assert_non_null(payload);
        inv.payload.data = payload;
        inv.payload.len = len;
        env.msg_case = FNBOX__ENVELOPE__MSG_INVOKE;
        env.invoke = &inv;
        assert_int_equal(wire_send(p.a, &env, -EBADF), -EMSGSIZE);
        /* Nothing was sent. */
        assert_int_equal(wire_recv(p.b, &got, NULL), -EAGAIN);
        pair_done(&p);
}

static void check_extra_fd(size_t payload_len)
{
        Pair p = pair_new(0);
        _cleanup_free_ void *payload = pattern(payload_len);
        _cleanup_(wire_envelope_freep) Fnbox__Envelope *env = NULL;
        int pipefd[2], got = -EBADF;
        char c = 0;
        int before;

        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        before = count_fds();
        send_invoke(p.a, "fd", payload, payload_len, pipefd[1]);
        assert_int_equal(wire_recv(p.b, &env, &got), 0);
        assert_int_equal(env->msg_case, FNBOX__ENVELOPE__MSG_INVOKE);
        assert_int_equal(env->invoke->payload.len, payload_len);
        assert_memory_equal(env->invoke->payload.data, payload, payload_len);
        /* A new fd for the same pipe, close-on-exec, and nothing else left behind. */
        assert_true(got >= 0);
        assert_int_not_equal(got, pipefd[1]);
        assert_int_equal(count_fds(), before + 1);
        assert_true(fcntl(got, F_GETFD) & FD_CLOEXEC);
        assert_int_equal(write(got, "x", 1), 1);
        assert_int_equal(read(pipefd[0], &c, 1), 1);
        assert_int_equal(c, 'x');
        close(got);
        close(pipefd[0]);
        close(pipefd[1]);
        pair_done(&p);
}

static void test_extra_fd_inline(void **state)
{
        check_extra_fd(10);
}

static void test_extra_fd_with_memfd(void **state)
{
        check_extra_fd(200 * 1024);
}

static void test_extra_fd_dropped_when_not_wanted(void **state)
{
        Pair p = pair_new(0);
        _cleanup_(wire_envelope_freep) Fnbox__Envelope *env = NULL;
        int pipefd[2];
        int before;

        assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
        before = count_fds();
        send_invoke(p.a, "x", "y", 1, pipefd[1]);
        assert_int_equal(wire_recv(p.b, &env, NULL), 0);
        assert_int_equal(count_fds(), before);
        close(pipefd[0]);
        close(pipefd[1]);
        pair_done(&p);
}

static void test_eof(void **state)
{
        Pair p = pair_new(0);
        Fnbox__Envelope *env = NULL;
        int fd = 77;

        p.a = safe_close(p.a);
        assert_int_equal(wire_recv(p.b, &env, &fd), -ECONNRESET);
        assert_null(env);
        assert_int_equal(fd, 77);
        pair_done(&p);
}

static void test_nonblocking_empty(void **state)
{
        Pair p = pair_new(SOCK_NONBLOCK);
        Fnbox__Envelope *env = NULL;

        assert_int_equal(wire_recv(p.b, &env, NULL), -EAGAIN);
        assert_null(env);
        /* And a message sent afterwards is still received. */
        send_invoke(p.a, "later", "z", 1, -EBADF);
        expect_invoke(p.b, "later", "z", 1);
        pair_done(&p);
}

/* Sends one raw packet (fds are the test's and are closed here after sending), expects
 * -EBADMSG, no fd leak, untouched outputs, and that the channel still carries the next good
 * message (so a refusal is about that one packet, not a corrupted stream). */
static void expect_refused(const void *buf, size_t len, int *fds, size_t n_fds)
{
        Pair p = pair_new(0);
        Fnbox__Envelope *env = NULL;
        int fd = 77, before;

        before = count_fds();
        raw_send(p.a, buf, len, fds, n_fds);
        for (size_t i = 0; i < n_fds; i++)
                close(fds[i]);
        before -= (int)n_fds;
        assert_int_equal(wire_recv(p.b, &env, &fd), -EBADMSG);
        assert_null(env);
        assert_int_equal(fd, 77);
        assert_int_equal(count_fds(), before);

        send_invoke(p.a, "next", "ok", 2, -EBADF);
        expect_invoke(p.b, "next", "ok", 2);
        pair_done(&p);
}

static void test_refuse_short_header(void **state)
{
        uint8_t h[WIRE_HEADER_SIZE];

        header(h, 'F', 0, 0);
        expect_refused(h, 5, NULL, 0);
        expect_refused(h, 1, NULL, 0);
}

static void test_refuse_bad_header_bytes(void **state)
{
        uint8_t pkt[WIRE_HEADER_SIZE + 64];
        size_t n = packed_shutdown(pkt + WIRE_HEADER_SIZE, 64);

        header(pkt, 'X', 0, (uint32_t)n);
        expect_refused(pkt, WIRE_HEADER_SIZE + n, NULL, 0);

        header(pkt, 'F', 0x80, (uint32_t)n); /* unknown flag */
        expect_refused(pkt, WIRE_HEADER_SIZE + n, NULL, 0);

        header(pkt, 'F', 0, (uint32_t)n);
        pkt[3] = 1; /* reserved byte */
        expect_refused(pkt, WIRE_HEADER_SIZE + n, NULL, 0);

        /* The same packet with a correct header is accepted (the cases above fail only on the
         * header). */
        {
                Pair p = pair_new(0);
                _cleanup_(wire_envelope_freep) Fnbox__Envelope *env = NULL;

                header(pkt, 'F', 0, (uint32_t)n);
                raw_send(p.a, pkt, WIRE_HEADER_SIZE + n, NULL, 0);
                assert_int_equal(wire_recv(p.b, &env, NULL), 0);
                assert_int_equal(env->msg_case, FNBOX__ENVELOPE__MSG_SHUTDOWN);
                assert_int_equal(env->shutdown->reserved, 7);
                pair_done(&p);
        }
}

static void test_refuse_length_mismatch(void **state)
{
        uint8_t pkt[WIRE_HEADER_SIZE + 64];
        size_t n = packed_shutdown(pkt + WIRE_HEADER_SIZE, 64);

        header(pkt, 'F', 0, (uint32_t)n + 1);
        expect_refused(pkt, WIRE_HEADER_SIZE + n, NULL, 0);
        header(pkt, 'F', 0, (uint32_t)n - 1);
        expect_refused(pkt, WIRE_HEADER_SIZE + n, NULL, 0);
        header(pkt, 'F', 0, UINT32_MAX);
        expect_refused(pkt, WIRE_HEADER_SIZE + n, NULL, 0);
}

static void test_refuse_over_cap(void **state)
{
        size_t len = WIRE_INLINE_MAX + 100;
        _cleanup_free_ uint8_t *pkt = calloc(1, WIRE_HEADER_SIZE + len);
        uint8_t h[WIRE_HEADER_SIZE];
        int fds[1];

        /* An inline packet larger than any valid one (the header agrees with the size). */
        assert_non_null(pkt);
        header(pkt, 'F', 0, (uint32_t)len);
        expect_refused(pkt, WIRE_HEADER_SIZE + len, NULL, 0);

        /* A memfd frame announcing more than WIRE_MESSAGE_MAX; the memfd is sparse. */
        fds[0] = memfd_create("test-wire", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        assert_true(fds[0] >= 0);
        assert_int_equal(ftruncate(fds[0], (off_t)WIRE_MESSAGE_MAX + 1), 0);
        assert_int_equal(fcntl(fds[0], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE), 0);
        header(h, 'F', WIRE_FLAG_MEMFD, WIRE_MESSAGE_MAX + 1);
        expect_refused(h, sizeof(h), fds, 1);
}

static void test_refuse_garbage_protobuf(void **state)
{
        static const uint8_t bad_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                             0xff, 0xff, 0xff, 0xff, 0xff};
        static const uint8_t bad_length[] = {0x22, 0x7f, 0x01}; /* invoke, 127 bytes, 1 given */
        static const uint8_t bad_wire_type[] = {0x0f, 0x00};
        uint8_t pkt[WIRE_HEADER_SIZE + sizeof(bad_varint)];
        int fds[1];

        header(pkt, 'F', 0, sizeof(bad_varint));
        memcpy(pkt + WIRE_HEADER_SIZE, bad_varint, sizeof(bad_varint));
        expect_refused(pkt, WIRE_HEADER_SIZE + sizeof(bad_varint), NULL, 0);

        header(pkt, 'F', 0, sizeof(bad_length));
        memcpy(pkt + WIRE_HEADER_SIZE, bad_length, sizeof(bad_length));
        expect_refused(pkt, WIRE_HEADER_SIZE + sizeof(bad_length), NULL, 0);

        header(pkt, 'F', 0, sizeof(bad_wire_type));
        memcpy(pkt + WIRE_HEADER_SIZE, bad_wire_type, sizeof(bad_wire_type));
        expect_refused(pkt, WIRE_HEADER_SIZE + sizeof(bad_wire_type), NULL, 0);

        /* Garbage in a correctly sealed memfd, with an extra fd: both fds are closed. */
        fds[0] = memfd_with(bad_varint, sizeof(bad_varint),
                            F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
        {
                int two[2] = {fds[0], dup(fds[0])};

                header(pkt, 'F', WIRE_FLAG_MEMFD | WIRE_FLAG_FD, sizeof(bad_varint));
                expect_refused(pkt, WIRE_HEADER_SIZE, two, 2);
        }
}

static void test_refuse_memfd_without_fd(void **state)
{
        uint8_t h[WIRE_HEADER_SIZE];

        header(h, 'F', WIRE_FLAG_MEMFD, 100);
        expect_refused(h, sizeof(h), NULL, 0);
}

static void test_refuse_memfd_not_sealed(void **state)
{
        uint8_t env[64];
        size_t n = packed_shutdown(env, sizeof(env));
        uint8_t h[WIRE_HEADER_SIZE];
        int fds[1];

        header(h, 'F', WIRE_FLAG_MEMFD, (uint32_t)n);
        fds[0] = memfd_with(env, n, 0);
        expect_refused(h, sizeof(h), fds, 1);
        /* Sealed against shrinking and growing but still writable. */
        fds[0] = memfd_with(env, n, F_SEAL_SHRINK | F_SEAL_GROW);
        expect_refused(h, sizeof(h), fds, 1);
        /* Not a memfd at all. */
        {
                int pipefd[2];

                assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
                close(pipefd[1]);
                expect_refused(h, sizeof(h), pipefd, 1);
        }
}

static void test_refuse_memfd_size_mismatch(void **state)
{
        uint8_t env[64];
        size_t n = packed_shutdown(env, sizeof(env));
        uint8_t h[WIRE_HEADER_SIZE];
        unsigned seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
        int fds[1];

        header(h, 'F', WIRE_FLAG_MEMFD, (uint32_t)n + 1);
        fds[0] = memfd_with(env, n, seals);
        expect_refused(h, sizeof(h), fds, 1);
        header(h, 'F', WIRE_FLAG_MEMFD, (uint32_t)n - 1);
        fds[0] = memfd_with(env, n, seals);
        expect_refused(h, sizeof(h), fds, 1);

        /* Inline bytes after a memfd header are not allowed either. */
        {
                uint8_t pkt[WIRE_HEADER_SIZE + 4] = {0};

                header(pkt, 'F', WIRE_FLAG_MEMFD, (uint32_t)n);
                fds[0] = memfd_with(env, n, seals);
                expect_refused(pkt, sizeof(pkt), fds, 1);
        }

        /* The correct frame built by hand is accepted. */
        {
                Pair p = pair_new(0);
                _cleanup_(wire_envelope_freep) Fnbox__Envelope *got = NULL;
                int before = count_fds();

                header(h, 'F', WIRE_FLAG_MEMFD, (uint32_t)n);
                fds[0] = memfd_with(env, n, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
                raw_send(p.a, h, sizeof(h), fds, 1);
                close(fds[0]);
                assert_int_equal(wire_recv(p.b, &got, NULL), 0);
                assert_int_equal(got->msg_case, FNBOX__ENVELOPE__MSG_SHUTDOWN);
                assert_int_equal(count_fds(), before);
                pair_done(&p);
        }
}

static void test_refuse_unexpected_fds(void **state)
{
        uint8_t pkt[WIRE_HEADER_SIZE + 64];
        size_t n = packed_shutdown(pkt + WIRE_HEADER_SIZE, 64);
        int fds[20];

        /* An fd the header does not announce. */
        header(pkt, 'F', 0, (uint32_t)n);
        fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        expect_refused(pkt, WIRE_HEADER_SIZE + n, fds, 1);

        /* WIRE_FLAG_FD without the fd. */
        header(pkt, 'F', WIRE_FLAG_FD, (uint32_t)n);
        expect_refused(pkt, WIRE_HEADER_SIZE + n, NULL, 0);

        /* More fds than any valid packet, even more than the receiver's control buffer. */
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        expect_refused(pkt, WIRE_HEADER_SIZE + n, fds, ELEMENTSOF(fds));
        for (size_t i = 0; i < 3; i++)
                fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        header(pkt, 'F', WIRE_FLAG_FD, (uint32_t)n);
        expect_refused(pkt, WIRE_HEADER_SIZE + n, fds, 3);
}

static void test_free_null(void **state)
{
        wire_envelope_free(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip_small),
            cmocka_unit_test(test_round_trip_large_uses_sealed_memfd),
            cmocka_unit_test(test_round_trip_6mib),
            cmocka_unit_test(test_inline_threshold),
            cmocka_unit_test(test_send_too_big),
            cmocka_unit_test(test_extra_fd_inline),
            cmocka_unit_test(test_extra_fd_with_memfd),
            cmocka_unit_test(test_extra_fd_dropped_when_not_wanted),
            cmocka_unit_test(test_eof),
            cmocka_unit_test(test_nonblocking_empty),
            cmocka_unit_test(test_refuse_short_header),
            cmocka_unit_test(test_refuse_bad_header_bytes),
            cmocka_unit_test(test_refuse_length_mismatch),
            cmocka_unit_test(test_refuse_over_cap),
            cmocka_unit_test(test_refuse_garbage_protobuf),
            cmocka_unit_test(test_refuse_memfd_without_fd),
            cmocka_unit_test(test_refuse_memfd_not_sealed),
            cmocka_unit_test(test_refuse_memfd_size_mismatch),
            cmocka_unit_test(test_refuse_unexpected_fds),
            cmocka_unit_test(test_free_null),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
