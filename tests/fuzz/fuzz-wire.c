/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's side of the agent channel: wire_recv() on packets a hostile agent controls
 * completely, including the fds it attaches. Byte 0 of an input is a mode (what to attach), the
 * rest is the packet as the agent would send() it; see the MODE_* bits. Checks: no crash, no
 * leak (ASan), no fd leak (lowest free fd stable across inputs), and on success a non-NULL
 * envelope and no fd out of nothing. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuzz.h"
#include "macro.h"
#include "util.h"
#include "wire.h"

/* Bits 0-1: the first fd attached. */
#define MODE_FD_MASK 0x3u
#define MODE_FD_NONE 0x0u
#define MODE_FD_SEALED_MEMFD 0x1u   /* sealed like wire_send's, holding the data after byte 8 */
#define MODE_FD_UNSEALED_MEMFD 0x2u /* the same bytes, but writable: must be refused */
#define MODE_FD_DEVNULL 0x3u        /* an fd that is no memfd at all */
/* Bit 2: attach /dev/null as a second fd (the "extra fd" of WIRE_FLAG_FD). */
#define MODE_EXTRA_DEVNULL 0x4u
/* Bit 3: send only the first 8 bytes (the header), as wire_send does for memfd messages. */
#define MODE_HEADER_ONLY 0x8u

#define WIRE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)

static int memfd_with(const uint8_t *data, size_t len, bool seal)
{
        _cleanup_close_ int fd = -EBADF;

        fd = memfd_create("fuzz-wire", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(loop_write(fd, data, len) >= 0);
        if (seal)
                FUZZ_CHECK(fcntl(fd, F_ADD_SEALS, WIRE_SEALS) >= 0);
        return TAKE_FD(fd);
}

static int open_devnull(void)
{
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

        FUZZ_CHECK(fd >= 0);
        return fd;
}

/* Sends buf as one packet with fds. Returns false if the kernel refused it (e.g. larger than
 * the socket buffer): then nothing is queued. Our copies of the fds are closed either way. */
static bool send_packet(int sock, const uint8_t *buf, size_t len, int *fds, size_t n_fds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 2)];
        } control = {};
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t k;

        if (n_fds > 0) {
                struct cmsghdr *c;

                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        k = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        for (size_t i = 0; i < n_fds; i++)
                fds[i] = safe_close(fds[i]);
        return k >= 0;
}

/* Empties the receive queue (closing any fds in it), so that no input sees the previous one's
 * leftovers even if wire_recv() failed before reading its packet. */
static void drain(int sock)
{
        for (;;) {
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * 8)];
                } control;
                char byte;
                struct iovec iov = {.iov_base = &byte, .iov_len = 1};
                struct msghdr mh = {.msg_iov = &iov,
                                    .msg_iovlen = 1,
                                    .msg_control = control.buf,
                                    .msg_controllen = sizeof(control.buf)};

                if (recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0)
                        return;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                        for (size_t i = 0; i < n; i++) {
                                int fd;

                                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                (void)safe_close(fd);
                        }
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* One socketpair for the whole run: creating it is the expensive part of an input. Both
         * ends are non-blocking, so a packet the kernel dropped cannot hang the fuzzer. */
        static int sv[2] = {-EBADF, -EBADF};
        static int lowest_fd = -1;
        Fnbox__Envelope *env = NULL;
        int fds[2], extra = -EBADF, r;
        size_t n_fds = 0, len, body_off;
        const uint8_t *pkt;
        unsigned mode;

        if (size < 1)
                return 0;
        if (sv[0] < 0)
                FUZZ_CHECK(
                    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) >= 0);
        mode = data[0];
        pkt = data + 1;
        len = size - 1;
        body_off = MIN(len, (size_t)WIRE_HEADER_SIZE);

        switch (mode & MODE_FD_MASK) {
        case MODE_FD_SEALED_MEMFD:
        case MODE_FD_UNSEALED_MEMFD:
                fds[n_fds++] = memfd_with(pkt + body_off, len - body_off,
                                          (mode & MODE_FD_MASK) == MODE_FD_SEALED_MEMFD);
                break;
        case MODE_FD_DEVNULL:
                fds[n_fds++] = open_devnull();
                break;
        default:
                break;
        }
        if (mode & MODE_EXTRA_DEVNULL)
                fds[n_fds++] = open_devnull();
        if (mode & MODE_HEADER_ONLY)
                len = body_off;

        if (send_packet(sv[0], pkt, len, fds, n_fds)) {
                r = wire_recv(sv[1], &env, &extra);
                /* A packet is queued, so "nothing waiting" would be a lie. */
                FUZZ_CHECK(r != -EAGAIN);
                if (r >= 0) {
                        FUZZ_CHECK(env);
                        FUZZ_CHECK(extra < 0 || n_fds > 0);
                        FUZZ_CHECK(extra < 0 || fcntl(extra, F_GETFD) >= 0);
                        wire_envelope_free(env);
                        extra = safe_close(extra);
                } else {
                        FUZZ_CHECK(extra == -EBADF);
                }
        }
        drain(sv[1]);

        if (lowest_fd < 0)
                lowest_fd = fuzz_lowest_free_fd();
        FUZZ_CHECK(fuzz_lowest_free_fd() == lowest_fd);
        return 0;
}
