/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "macro.h"
#include "sandbox-internal.h"

/* Networking of a sandbox: a network namespace of its own with only a loopback interface.
 * Nothing in it can reach the host or another sandbox; the agent's Runtime API listens on the
 * sandbox's own 127.0.0.1. The namespace is either made by clone3(CLONE_NEWNET) or taken from the
 * daemon's pool of pre-made ones (sandbox_net_make()), which saves the 0.4-0.5 ms that making
 * one costs on the spawn path; a pooled namespace goes to exactly one sandbox. (Egress through a
 * veth pair, if it ever comes, is set up from the daemon with libnl, which belongs in this file
 * too.) */

int sandbox_net_loopback_up(void)
{
        /* Runs in the child between clone and exec, where nothing may allocate. libnl builds
         * every netlink message in malloc'd buffers; the SIOCSIFFLAGS ioctl on a throwaway
         * AF_INET socket flips IFF_UP with two syscalls and no memory. */
        struct ifreq ifr;
        _cleanup_close_ int fd = -EBADF;

        memset(&ifr, 0, sizeof(ifr));
        memcpy(ifr.ifr_name, "lo", sizeof("lo"));
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                return negative_errno();
        if (ifr.ifr_flags & IFF_UP)
                return 0;
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                return negative_errno();
        return 0;
}

int sandbox_net_make(int orig_fd, int *ret)
{
        _cleanup_close_ int fd = -EBADF;
        int r;

        /* A network namespace belongs to the process that makes it only while it is in it:
         * unshare, take an fd (which keeps it alive), set it up, and go back. Sockets keep the
         * namespace they were made in, so the daemon's listening sockets are not affected; a
         * socket made meanwhile would land in the new namespace, which is why the daemon must be
         * single-threaded here. */
        if (unshare(CLONE_NEWNET) < 0)
                return negative_errno();
        fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        r = fd < 0 ? negative_errno() : sandbox_net_loopback_up();
        if (setns(orig_fd, CLONE_NEWNET) < 0)
                return -ENOTRECOVERABLE;
        if (r < 0)
                return r;
        *ret = TAKE_FD(fd);
        return 0;
}
