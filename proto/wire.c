/* SPDX-License-Identifier: Apache-2.0 */
#include "wire.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "macro.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

#define WIRE_MAGIC 'F'
#define WIRE_FLAGS_KNOWN (WIRE_FLAG_MEMFD | WIRE_FLAG_FD)
/* What the receiver insists on: without SHRINK a sender could truncate the file under our mapping
 * (SIGBUS in the daemon); without WRITE it could change bytes while protobuf-c parses them. */
#define WIRE_SEALS_REQUIRED (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
#define WIRE_SEALS_SENT (WIRE_SEALS_REQUIRED | F_SEAL_SEAL)
/* A valid packet carries at most two fds. The control buffer has room for more so that we see,
 * and close, what a broken peer attached; fds beyond the buffer are discarded by the kernel
 * (MSG_CTRUNC). */
#define WIRE_FDS_MAX 8
/* Small envelopes (all control messages) are framed on the stack. */
#define WIRE_STACK_FRAME 4096u

typedef struct FdList {
        int fds[WIRE_FDS_MAX];
        size_t n;
} FdList;

static void fd_list_done(FdList *l)
{
        for (size_t i = 0; i < l->n; i++)
                l->fds[i] = safe_close(l->fds[i]);
        l->n = 0;
}

static void header_encode(uint8_t *h, uint8_t flags, uint32_t len)
{
        h[0] = WIRE_MAGIC;
        h[1] = flags;
        h[2] = 0;
        h[3] = 0;
        h[4] = (uint8_t)(len & 0xffu);
        h[5] = (uint8_t)((len >> 8) & 0xffu);
        h[6] = (uint8_t)((len >> 16) & 0xffu);
        h[7] = (uint8_t)((len >> 24) & 0xffu);
}

static uint32_t header_length(const uint8_t *h)
{
        return (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;
}

static int send_packet(int sock, const void *buf, size_t len, const int *fds, size_t n_fds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 2)];
        } control;
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        assert(n_fds <= 2);
        if (n_fds > 0) {
                struct cmsghdr *cmsg;

                memset(&control, 0, sizeof(control));
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                cmsg = CMSG_FIRSTHDR(&mh);
                cmsg->cmsg_level = SOL_SOCKET;
                cmsg->cmsg_type = SCM_RIGHTS;
                cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
        }

        for (;;) {
                ssize_t k = sendmsg(sock, &mh, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                /* SEQPACKET sends all or nothing; anything else is a kernel surprise. */
                return (size_t)k == len ? 0 : -EIO;
        }
}

static int memfd_new(void)
{
        int fd = memfd_create("fnbox-wire", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
        /* COMPAT(kernel < 6.3): no MFD_NOEXEC_SEAL; remove the retry when 6.3 is the floor. */
        if (fd < 0 && errno == EINVAL)
                fd = memfd_create("fnbox-wire", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        return fd < 0 ? negative_errno() : fd;
}

/* Packs env straight into a fresh memfd (no intermediate buffer) and seals it. */
static int memfd_pack(const Fnbox__Envelope *env, size_t len, int *ret_fd)
{
        _cleanup_close_ int fd = -EBADF;
        void *p;
        size_t n;

        fd = memfd_new();
        if (fd < 0)
                return fd;
        if (ftruncate(fd, (off_t)len) < 0)
                return negative_errno();
        p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return negative_errno();
        n = fnbox__envelope__pack(env, p);
        /* The writable mapping must be gone before F_SEAL_WRITE, or the kernel says EBUSY. */
        (void)munmap(p, len);
        if (n != len)
                return -EIO;
        if (fcntl(fd, F_ADD_SEALS, WIRE_SEALS_SENT) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int send_inline(int sock, const Fnbox__Envelope *env, size_t len, int extra_fd)
{
        uint8_t stack[WIRE_STACK_FRAME];
        _cleanup_free_ uint8_t *heap = NULL;
        uint8_t *frame = stack;

        if (WIRE_HEADER_SIZE + len > sizeof(stack)) {
                heap = malloc(WIRE_HEADER_SIZE + len);
                if (!heap)
                        return -ENOMEM;
                frame = heap;
        }
        header_encode(frame, extra_fd >= 0 ? WIRE_FLAG_FD : 0, (uint32_t)len);
        if (fnbox__envelope__pack(env, frame + WIRE_HEADER_SIZE) != len)
                return -EIO;
        return send_packet(sock, frame, WIRE_HEADER_SIZE + len, &extra_fd, extra_fd >= 0 ? 1 : 0);
}

static int send_memfd(int sock, const Fnbox__Envelope *env, size_t len, int extra_fd)
{
        _cleanup_close_ int memfd = -EBADF;
        uint8_t header[WIRE_HEADER_SIZE];
        int fds[2];
        int r;

        r = memfd_pack(env, len, &memfd);
        if (r < 0)
                return r;
        fds[0] = memfd;
        fds[1] = extra_fd;
        header_encode(header, WIRE_FLAG_MEMFD | (extra_fd >= 0 ? WIRE_FLAG_FD : 0), (uint32_t)len);
        return send_packet(sock, header, sizeof(header), fds, extra_fd >= 0 ? 2 : 1);
}

int wire_send(int sock, const Fnbox__Envelope *env, int extra_fd)
{
        size_t len;

        assert(env);
        len = fnbox__envelope__get_packed_size(env);
        if (len > WIRE_MESSAGE_MAX)
                return -EMSGSIZE;
        if (len <= WIRE_INLINE_MAX)
                return send_inline(sock, env, len, extra_fd);
        return send_memfd(sock, env, len, extra_fd);
}

/* Collects every SCM_RIGHTS fd of mh into fds, so that all of them get closed on any error. */
static void collect_fds(struct msghdr *mh, FdList *fds)
{
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                size_t n;
                const uint8_t *data;

                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                data = CMSG_DATA(c);
                for (size_t i = 0; i < n; i++) {
                        int fd;

                        memcpy(&fd, data + i * sizeof(int), sizeof(int));
                        if (fds->n < WIRE_FDS_MAX)
                                fds->fds[fds->n++] = fd;
                        else
                                (void)safe_close(fd);
                }
        }
}

/* Receives one packet into buf. Returns its length (0 on EOF) or -errno; the fds it carried are
 * in fds even when the packet is refused, for the caller to close. */
static ssize_t recv_packet(int sock, uint8_t *buf, size_t size, FdList *fds)
{
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * WIRE_FDS_MAX)];
        } control;
        struct iovec iov = {.iov_base = buf, .iov_len = size};
        struct msghdr mh = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = control.buf,
            .msg_controllen = sizeof(control.buf),
        };
        ssize_t n;

        for (;;) {
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
                if (n >= 0)
                        break;
                if (errno != EINTR)
                        return negative_errno();
        }
        collect_fds(&mh, fds);
        /* A truncated packet or fd list means the peer broke the framing contract. */
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
                return -EBADMSG;
        return n;
}

static int unpack(const uint8_t *data, size_t len, Fnbox__Envelope **ret)
{
        Fnbox__Envelope *env;

        env = fnbox__envelope__unpack(NULL, len, len > 0 ? data : (const uint8_t *)"");
        if (!env)
                return -EBADMSG;
        *ret = env;
        return 0;
}

/* The memfd must be sealed (so its size and bytes are fixed while we read them) and exactly as
 * long as the header says; then it is mapped read-only and unpacked in place. */
static int unpack_memfd(int fd, uint32_t len, Fnbox__Envelope **ret)
{
        struct stat st;
        void *p;
        int seals, r;

        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || (seals & WIRE_SEALS_REQUIRED) != WIRE_SEALS_REQUIRED)
                return -EBADMSG;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size != (off_t)len)
                return -EBADMSG;
        if (len == 0)
                return unpack(NULL, 0, ret);
        p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return -EBADMSG;
        r = unpack(p, len, ret);
        (void)munmap(p, len);
        return r;
}

static int parse_packet(const uint8_t *buf, size_t n, FdList *fds, Fnbox__Envelope **ret_env,
                        int *ret_fd)
{
        Fnbox__Envelope *env = NULL;
        uint8_t flags;
        uint32_t len;
        size_t want_fds;
        int r;

        if (n < WIRE_HEADER_SIZE || buf[0] != WIRE_MAGIC || buf[2] != 0 || buf[3] != 0)
                return -EBADMSG;
        flags = buf[1];
        if (flags & ~WIRE_FLAGS_KNOWN)
                return -EBADMSG;
        len = header_length(buf);
        want_fds = !!(flags & WIRE_FLAG_MEMFD) + !!(flags & WIRE_FLAG_FD);
        if (fds->n != want_fds)
                return -EBADMSG;

        if (flags & WIRE_FLAG_MEMFD) {
                if (n != WIRE_HEADER_SIZE || len > WIRE_MESSAGE_MAX)
                        return -EBADMSG;
                r = unpack_memfd(fds->fds[0], len, &env);
        } else {
                if (len > WIRE_INLINE_MAX || n - WIRE_HEADER_SIZE != len)
                        return -EBADMSG;
                r = unpack(buf + WIRE_HEADER_SIZE, len, &env);
        }
        if (r < 0)
                return r;

        /* Success: the memfd (if any) is closed by the caller; the extra fd is handed over. */
        *ret_fd = (flags & WIRE_FLAG_FD) ? TAKE_FD(fds->fds[want_fds - 1]) : -EBADF;
        *ret_env = env;
        return 0;
}

int wire_recv(int sock, Fnbox__Envelope **ret, int *ret_fd)
{
        _cleanup_free_ uint8_t *buf = NULL;
        FdList fds = {.n = 0};
        Fnbox__Envelope *env = NULL;
        int extra = -EBADF;
        ssize_t n;
        int r;

        assert(ret);
        /* One byte more than the largest valid inline packet is not needed: MSG_TRUNC reports
         * anything that did not fit. */
        buf = malloc(WIRE_HEADER_SIZE + WIRE_INLINE_MAX);
        if (!buf)
                return -ENOMEM;

        n = recv_packet(sock, buf, WIRE_HEADER_SIZE + WIRE_INLINE_MAX, &fds);
        if (n == 0)
                r = -ECONNRESET;
        else if (n < 0)
                r = (int)n;
        else
                r = parse_packet(buf, (size_t)n, &fds, &env, &extra);
        fd_list_done(&fds);
        if (r < 0)
                return r;

        if (ret_fd)
                *ret_fd = extra;
        else
                (void)safe_close(extra);
        *ret = env;
        return 0;
}

void wire_envelope_free(Fnbox__Envelope *env)
{
        if (env)
                fnbox__envelope__free_unpacked(env, NULL);
}
